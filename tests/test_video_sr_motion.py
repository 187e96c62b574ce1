"""The steady blend (motion.py): it averages frame-to-frame error along the motion, and leaves
alone what the motion does not explain (cuts, motion beyond its reach), so it never ghosts."""

import pytest
import torch

from pipelines.video_sr.motion import RADIUS, REACH, block_flow, steady_blend, steady_clip
from pipelines.video_sr.quality import warping_error


def _texture(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """(1, 3, H, W): smooth random texture (blurred noise), as a photo's detail."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, h // 4 + 2, w // 4 + 2, generator=g)
    return torch.nn.functional.interpolate(x, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


def _pan(frames: int, step: int, noise: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A texture panned `step` pixels a frame, clean and with fresh noise in every frame: (1, 3, T, H, W)."""
    big = _texture(40, 40 + step * frames, seed)
    clean = torch.stack([big[..., step * (frames - t) : step * (frames - t) + 40] for t in range(frames)], dim=2)
    g = torch.Generator().manual_seed(seed + 1)
    return clean, (clean + noise * torch.randn(clean.shape, generator=g)).clamp(0, 1)


def test_block_flow_finds_the_shift():
    clean, _ = _pan(2, 2, 0.0)
    flow = block_flow(clean[:, :, 0], clean[:, :, 1])
    inner = flow[..., 1:-1, 1:-1]  # off the edge, where content enters
    assert (inner[:, 0] == 0).all() and (inner[:, 1] == -2).all()


def test_subpixel_flow_finds_a_half_pixel_shift():
    fine = _texture(80, 80)
    half = lambda x: torch.nn.functional.avg_pool2d(x, 2)  # noqa: E731
    a, b = half(fine), half(torch.roll(fine, 1, dims=-1))  # b is a moved right by half a pixel
    flow = block_flow(a, b, 8, RADIUS, subpixel=True)[..., 1:-1, 1:-1]
    assert torch.equal(block_flow(a, b, 8, RADIUS), block_flow(a, b, 8, RADIUS).round())  # integer by default
    assert (flow[:, 1] + 0.5).abs().max() < 0.1 and flow[:, 0].abs().max() < 0.1


@pytest.mark.parametrize("step", [0, 2])
def test_steady_averages_noise_away_along_the_motion(step):
    clean, noisy = _pan(10, step, 0.03)
    steadied = steady_clip(noisy, 0.75)
    err = lambda x: (x[:, :, 4:, 8:-8, 8:-8] - clean[:, :, 4:, 8:-8, 8:-8]).square().mean()  # noqa: E731
    assert err(steadied) < 0.5 * err(noisy)
    assert warping_error(steadied, clean) < 0.6 * warping_error(noisy, clean)  # and it flickers less
    assert torch.equal(steady_clip(noisy, 0.0), noisy)  # 0 is off


def test_a_cut_or_motion_beyond_reach_is_left_alone():
    a, b = _texture(40, 40, 1), _texture(40, 40, 2)
    assert (steady_blend(a, b, 1.0) - b).abs().max() < 0.02  # a new scene: nothing of the old one shows
    far = REACH + 4
    moved = torch.roll(a, far, dims=-1)
    assert (steady_blend(a, moved, 1.0) - moved)[..., far:].abs().max() < 0.02


def test_any_frame_size_keeps_its_shape():
    clean, noisy = _pan(3, 1, 0.02)
    odd = noisy[..., :37, :29]
    out = steady_clip(odd, 0.5)
    assert out.shape == odd.shape and torch.isfinite(out).all()
    assert not torch.equal(out[:, :, 2], odd[:, :, 2])
