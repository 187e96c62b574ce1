"""Block motion between frames, and the causal temporal blend it drives (`steady`).

Compression error and noise change from frame to frame while the scene only moves.
Blending each frame with the previous (blended) frame carried along the motion averages
that error away over time (a recursive, motion-compensated filter) and steadies the
picture, where the motion explains the new frame; where it does not (occlusions, new
content, motion beyond the search's reach), the blend's weight falls to zero and the
frame is left as it is. It only looks back: its state is one frame, so memory stays flat
and nothing waits for a later frame. The stream blends its LR input (`steady_input`);
the general functions take any frame size, block and search scale.

Motion is a shift per block, found by exhaustive search over integer shifts of luma
(sum of absolute differences, the matcher the flicker measure in quality.py uses too),
refined to a fraction of a pixel by a parabola through the costs, and interpolated
between block centres: scenes move by fractions of a pixel, and a frame carried by the
nearest whole pixel blurs what the blend averages.
"""

from __future__ import annotations

import functools
from typing import Callable

import torch
import torch.nn.functional as F

# The defaults, for a blend at the output (the stream's before it moved to the input): 8x8
# blocks searched on luma at half resolution, a third of the time of a full-resolution
# search at 1080p and as good on the held-out clips then (+0.237 dB against +0.240 at 2x,
# +0.262 against +0.246 at 4x).
BLOCK = 8  # pixels per side of a motion block
SEARCH_SCALE = 2
RADIUS = 2  # search pixels each way, so the search reaches REACH frame pixels: faster motion is left unblended
REACH = RADIUS * SEARCH_SCALE
TOLERANCE = 0.05  # mean absolute mismatch (0..1 units) at which a block's blend weight falls to 1/e
LUMA = (0.299, 0.587, 0.114)


def block_costs(prev: torch.Tensor, cur: torch.Tensor, block: int, radius: int) -> torch.Tensor:
    """Mean absolute difference per block for every integer shift of `prev` against `cur`:
    (N, K, K, H/block, W/block) with K = 2 radius + 1, indexed [dy + radius, dx + radius]."""
    n, _, h, w = cur.shape
    padded = F.pad(prev, (radius,) * 4, mode="replicate")
    k = 2 * radius + 1
    diffs = cur.new_empty(n, k * k, h, w)
    for i in range(k * k):  # one difference per shift, then every shift's block means in one pass
        dy, dx = divmod(i, k)
        shifted = padded[..., dy : dy + h, dx : dx + w]
        if cur.shape[1] == 1:  # luma: no channel sum to make
            torch.sub(shifted, cur, out=diffs[:, i : i + 1])
        else:
            torch.sum((shifted - cur).abs_(), 1, out=diffs[:, i])
    if cur.shape[1] == 1:
        diffs.abs_()
    return F.avg_pool2d(diffs, block).view(n, k, k, h // block, w // block)


def block_flow(prev: torch.Tensor, cur: torch.Tensor, block: int = 8, radius: int = 4,
               subpixel: bool = False) -> torch.Tensor:
    """Motion per block, (N, 2, H/block, W/block) as (dy, dx): the shift of `prev` that best
    matches `cur` (exhaustive search; the first of equal costs). Integer, or with `subpixel`
    refined along each axis by the parabola through the best cost and its two neighbours
    (within half a pixel; none at the search's edge)."""
    costs = block_costs(prev, cur, block, radius)
    n, k = costs.shape[:2]
    flat = costs.flatten(1, 2)
    best = flat.argmin(1)  # (N, h, w)
    by, bx = best // k, best % k
    flow = torch.stack([by - radius, bx - radius], 1).to(cur.dtype)
    if not subpixel:
        return flow
    at = lambda y, x: flat.gather(1, (y.clamp(0, k - 1) * k + x.clamp(0, k - 1))[:, None])[:, 0]  # noqa: E731
    c0 = at(by, bx)
    for axis, (b, step) in enumerate(((by, (1, 0)), (bx, (0, 1)))):
        minus, plus = at(by - step[0], bx - step[1]), at(by + step[0], bx + step[1])
        curve = minus - 2 * c0 + plus
        offset = (0.5 * (minus - plus) / curve.clamp_min(1e-9)).clamp(-0.5, 0.5)
        inside = (b > 0) & (b < k - 1) & (curve > 1e-9)
        flow[:, axis] += torch.where(inside, offset, torch.zeros_like(offset))
    return flow


def warp(x: torch.Tensor, flow: torch.Tensor, smooth: bool = False) -> torch.Tensor:
    """x carried along a block flow: out(y, x) = x(y + dy, x + dx), replicated at the borders.
    Blockwise and nearest by default (integer flows, as the flicker measure uses them); with
    `smooth`, the flow is interpolated between block centres and x sampled bilinearly
    (fractional flows, no block seams)."""
    h, w = x.shape[-2:]
    full = F.interpolate(flow, size=(h, w), mode="bilinear" if smooth else "nearest",
                         **({"align_corners": False} if smooth else {}))
    return carry(x, full, smooth)


@functools.lru_cache(maxsize=4)
def _pixel_grid(h: int, w: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Each pixel's (y, x), made once per frame size: a stream asks for the same one every frame."""
    return torch.meshgrid(torch.arange(h, dtype=dtype), torch.arange(w, dtype=dtype), indexing="ij")


def carry(x: torch.Tensor, full: torch.Tensor, smooth: bool = True) -> torch.Tensor:
    """x (N, C, H, W) sampled at each pixel plus its flow (N, 2, H, W) as (dy, dx)."""
    h, w = x.shape[-2:]
    ys, xs = _pixel_grid(h, w, x.dtype)
    gy = (ys + full[:, 0]).clamp_(0, h - 1).mul_(2 / max(h - 1, 1)).sub_(1)
    gx = (xs + full[:, 1]).clamp_(0, w - 1).mul_(2 / max(w - 1, 1)).sub_(1)
    return F.grid_sample(x, torch.stack([gx, gy], dim=-1), mode="bilinear" if smooth else "nearest",
                         align_corners=True)


def luma(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB -> (N, 1, H, W)."""
    return torch.einsum("nchw,c->nhw", x, x.new_tensor(LUMA))[:, None]


def _whole_blocks(x: torch.Tensor, block: int) -> torch.Tensor:
    """x padded (replicate) to whole blocks; callers crop back."""
    ph, pw = -x.shape[-2] % block, -x.shape[-1] % block
    return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x


def _per_pixel(per_block: torch.Tensor, block: int, size: tuple[int, int]) -> torch.Tensor:
    """A field on the block grid interpolated between block centres to each pixel of a frame
    of `size` (the grid covers the frame padded to whole blocks; the padding is cut off)."""
    return F.interpolate(per_block, scale_factor=block, mode="bilinear", align_corners=False)[..., : size[0], : size[1]]


def steady_flow(prev: torch.Tensor, cur: torch.Tensor, block: int = BLOCK, radius: int = RADIUS,
                search_scale: int = SEARCH_SCALE) -> torch.Tensor:
    """The block motion from the previous output to `cur` (N, 3, H, W): searched on luma at
    1 / search_scale resolution, refined to a fraction of a pixel; in frame pixels, one
    vector per block of the frame padded to whole blocks."""
    small = [_whole_blocks(luma(x), block) for x in (prev, cur)]
    if search_scale > 1:
        small = [F.avg_pool2d(x, search_scale) for x in small]
    return search_scale * block_flow(*small, block // search_scale, radius, subpixel=True)


def steady_apply(prev: torch.Tensor, cur: torch.Tensor, flow: torch.Tensor, steady: float,
                 tolerance: float = TOLERANCE, block: int = BLOCK) -> torch.Tensor:
    """`cur` with up to `steady` of `prev` carried along `flow` blended in, per block by how
    well the carried frame matches."""
    size = cur.shape[-2:]
    change = carry(prev, _per_pixel(flow, block, size)) - cur
    # partial blocks at the edge average their own pixels (ceil_mode divides by those present)
    mismatch = F.avg_pool2d(change.abs().mean(1, keepdim=True), block, ceil_mode=True)
    # smooth across blocks (bilinear), so a weight step does not draw the block grid
    weight = _per_pixel(steady * torch.exp(-((mismatch / tolerance) ** 2)), block, size)
    return cur + weight * change


def steady_blend(prev: torch.Tensor, cur: torch.Tensor, steady: float, tolerance: float = TOLERANCE,
                 block: int = BLOCK, radius: int = RADIUS, search_scale: int = SEARCH_SCALE) -> torch.Tensor:
    """The frame `cur` (N, 3, H, W) with up to `steady` (0..1) of the previous output `prev`
    carried along the motion blended in, per block by how well the carried frame matches."""
    if steady <= 0:
        return cur
    return steady_apply(prev, cur, steady_flow(prev, cur, block, radius, search_scale), steady, tolerance, block)


def _recursive(clip: torch.Tensor, blend: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """`blend(previous out, frame)` over a whole clip (B, 3, T, H, W), each frame against the
    previous blended one, as a stream runs it frame by frame."""
    out = [clip[:, :, 0]]
    for t in range(1, clip.shape[2]):
        out.append(blend(out[-1], clip[:, :, t]))
    return torch.stack(out, dim=2)


def steady_clip(clip: torch.Tensor, steady: float, **kw) -> torch.Tensor:
    """The blend run over a whole clip (B, 3, T, H, W): the offline reference of a blend
    frame by frame."""
    return _recursive(clip, lambda prev, cur: steady_blend(prev, cur, steady, **kw))


# The stream steadies its low-resolution input, before the networks and the upscale see it:
# the compression error lives there, and a frame there has 1 / scale^2 of the output's pixels
# (at 1080p out the blend at the output took 130 ms a frame; here it takes a few). Motion is
# searched on the latent grid (HR / 4) in 4x4 blocks (16 output pixels), RADIUS each way (8
# output pixels a frame). Measured on bench/video_sr.py's 12 held-out clips with the width-32
# models shipped then (+dB over bicubic, flicker ratio): at the output +0.43 / 0.67 (4x),
# +0.65 / 0.71 (2x); at the input, steady 0.75 and tolerance 0.03, +0.40 / 0.72 (4x),
# +0.54 / 0.70 (2x) (tolerance 0.05: +0.38 / 0.67 and +0.38 / 0.66).
INPUT_TOLERANCE = 0.03


def steady_input(prev: torch.Tensor, cur: torch.Tensor, steady: float, scale: int) -> torch.Tensor:
    """The LR frame `cur` (N, 3, h, w) at `scale`x SR, with up to `steady` of the previous
    steadied LR frame `prev` carried along the motion blended in, rounded to 8 bits (the
    stream's upscale reads it as uint8; the offline path rounds the same)."""
    search = 4 // scale  # LR pixels per latent cell
    out = steady_blend(prev, cur, steady, INPUT_TOLERANCE, block=4 * search, radius=RADIUS, search_scale=search)
    return (out * 255).round_().div_(255)


def steady_input_clip(clip: torch.Tensor, steady: float, scale: int) -> torch.Tensor:
    """steady_input over a whole LR clip (B, 3, T, h, w), each frame against the previous
    steadied one: the offline reference the stream matches."""
    return _recursive(clip, lambda prev, cur: steady_input(prev, cur, steady, scale) if steady > 0 else cur)
