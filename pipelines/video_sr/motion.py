"""Block motion between frames, and the causal temporal blend it drives (`steady`).

Compression error and noise change from frame to frame while the scene only moves.
Blending each output frame with the previous output frame carried along the motion
averages that error away over time (a recursive, motion-compensated filter) and
steadies the picture, where the motion explains the new frame; where it does not
(occlusions, new content, motion beyond the search radius), the blend's weight falls
to zero and the frame is left as it is. It only looks back: its state is one output
frame, so memory stays flat and nothing waits for a later frame.

Motion is integer shifts per 8x8 block of luma, found by exhaustive search (sum of
absolute differences), the same matcher the flicker measure (quality.py) uses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

BLOCK = 8  # pixels per side of a motion block
RADIUS = 3  # the search reaches this many pixels each way: faster motion is left unblended
TOLERANCE = 0.06  # mean absolute mismatch (0..1 units) at which a block's blend weight falls to 1/e
LUMA = (0.299, 0.587, 0.114)


def block_flow(prev: torch.Tensor, cur: torch.Tensor, block: int = 8, radius: int = 4) -> torch.Tensor:
    """Integer motion per block, (N, 2, H/block, W/block) as (dy, dx): the shift of `prev`
    that best matches `cur` (sum of absolute differences, exhaustive search)."""
    n, _, h, w = cur.shape
    padded = F.pad(prev, (radius,) * 4, mode="replicate")
    best = torch.full((n, h // block, w // block), float("inf"))
    flow = torch.zeros(n, 2, h // block, w // block)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            shifted = padded[..., radius + dy : radius + dy + h, radius + dx : radius + dx + w]
            sad = F.avg_pool2d((shifted - cur).abs().sum(1, keepdim=True), block)[:, 0]
            better = sad < best
            best = torch.where(better, sad, best)
            flow[:, 0] = torch.where(better, float(dy), flow[:, 0])
            flow[:, 1] = torch.where(better, float(dx), flow[:, 1])
    return flow


def warp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """x carried along a block flow: out(y, x) = x(y + dy, x + dx), replicated at the borders."""
    h, w = x.shape[-2:]
    full = F.interpolate(flow, size=(h, w), mode="nearest")
    ys, xs = torch.meshgrid(torch.arange(h, dtype=x.dtype), torch.arange(w, dtype=x.dtype), indexing="ij")
    gy = (ys + full[:, 0]).clamp(0, h - 1) / (h - 1) * 2 - 1
    gx = (xs + full[:, 1]).clamp(0, w - 1) / (w - 1) * 2 - 1
    return F.grid_sample(x, torch.stack([gx, gy], dim=-1), mode="nearest", align_corners=True)


def luma(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB -> (N, 1, H, W)."""
    return (x * x.new_tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)


def steady_blend(prev: torch.Tensor, cur: torch.Tensor, steady: float, tolerance: float = TOLERANCE,
                 block: int = BLOCK, radius: int = RADIUS) -> torch.Tensor:
    """The frame `cur` (N, 3, H, W) with up to `steady` (0..1) of the previous output `prev`
    carried along the motion blended in, per block by how well the carried frame matches."""
    if steady <= 0:
        return cur
    h, w = cur.shape[-2:]
    ph, pw = -h % block, -w % block  # whole blocks: pad, then crop back
    p, c = (F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x for x in (prev, cur))
    carried = warp(p, block_flow(luma(p), luma(c), block, radius))
    mismatch = F.avg_pool2d((carried - c).abs().mean(1, keepdim=True), block)
    # smooth across blocks (bilinear), so a weight step does not draw the block grid
    weight = F.interpolate(steady * torch.exp(-((mismatch / tolerance) ** 2)), size=c.shape[-2:],
                           mode="bilinear", align_corners=False)
    return (c + weight * (carried - c))[..., :h, :w]


def steady_clip(clip: torch.Tensor, steady: float, **kw) -> torch.Tensor:
    """The blend run over a whole clip (B, 3, T, H, W), each frame against the previous
    blended one: the offline reference the stream matches frame for frame."""
    out = [clip[:, :, 0]]
    for t in range(1, clip.shape[2]):
        out.append(steady_blend(out[-1], clip[:, :, t], steady, **kw))
    return torch.stack(out, dim=2)
