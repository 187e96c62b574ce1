"""Causal video convolutions with cached temporal state (the streaming layers of cached_conv.py).

A CausalConv3d with temporal kernel kt sees the current frame and the kt - 1 before
it, never a later one. Run on a whole clip it pads the start with zeros; run frame by
frame it keeps the last kt - 1 input frames as its state. Both give the same output
(the invariant test_video_sr_causal checks), so a stream costs one frame of work per
frame, with no look-ahead. Space is padded as usual (replicate), time only by the cache.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..cached_conv import TIME, CachedConv, StreamGeometry


class CausalConv3d(CachedConv):
    def __init__(self, cin: int, cout: int, kernel: int = 3, time_kernel: int = 2, stride: int = 1):
        super().__init__(nn.Conv3d(cin, cout, (time_kernel, kernel, kernel), stride=(1, stride, stride)))
        self.pad = kernel // 2

    def convolve(self, full: torch.Tensor) -> torch.Tensor:
        """[cache | block] (B, C, T, H, W) -> (B, C', T - context, H', W')."""
        if full.shape[TIME] == self.context + 1:  # streaming: one 2D conv over the frames stacked as channels
            return self._one_frame(full)
        return self.conv(F.pad(full, (self.pad, self.pad, self.pad, self.pad, 0, 0), mode="replicate"))

    def _one_frame(self, full: torch.Tensor) -> torch.Tensor:
        """The same output as conv3d for a window of exactly time_kernel frames, about 3x faster
        on a CPU (conv3d with a 2-frame depth is poorly served by its kernels)."""
        b, c, t, h, w = full.shape
        stacked = F.pad(full.reshape(b, c * t, h, w), (self.pad,) * 4, mode="replicate")
        # the stacked channels are (C, T)-major, as the weight's (in, time) axes flatten
        weight = self.conv.weight.reshape(self.conv.out_channels, c * t, *self.conv.kernel_size[1:])
        y = F.conv2d(stacked, weight, self.conv.bias, stride=self.conv.stride[1:])
        return y[:, :, None]


class CausalBlock(nn.Module):
    """Residual: causal conv, SiLU, causal conv."""

    def __init__(self, channels: int, time_kernel: int = 2):
        super().__init__()
        self.a = CausalConv3d(channels, channels, 3, time_kernel)
        self.b = CausalConv3d(channels, channels, 3, time_kernel)

    @property
    def geometry(self) -> StreamGeometry:
        return self.a.geometry.then(self.b.geometry)  # the skip path reads the current frame only

    def forward(self, x: torch.Tensor, state: list | None = None) -> tuple[torch.Tensor, list]:
        sa, sb = state if state is not None else (None, None)
        h, sa = self.a(x, sa)
        h, sb = self.b(F.silu(h), sb)
        return x + h, [sa, sb]
