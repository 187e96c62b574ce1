"""Causal video convolutions with cached temporal state.

A CausalConv3d with temporal kernel kt sees the current frame and the kt - 1 before
it, never a later one. Run on a whole clip it pads the start with zeros; run frame by
frame it keeps the last kt - 1 input frames as its state. Both give the same output
(the invariant test_video_sr_causal checks), so a stream costs one frame of work per
frame, with no look-ahead.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class CausalConv3d(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int = 3, time_kernel: int = 2, stride: int = 1):
        super().__init__()
        self.time_kernel = time_kernel
        self.pad = kernel // 2
        self.conv = nn.Conv3d(cin, cout, (time_kernel, kernel, kernel), stride=(1, stride, stride))

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, T, H, W) -> (y (B, C', T, H', W'), state: the last time_kernel - 1 input frames)."""
        past = self.time_kernel - 1
        if state is None:
            state = x.new_zeros(x.shape[0], x.shape[1], past, x.shape[3], x.shape[4])
        full = torch.cat([state, x], dim=2)
        if x.shape[2] == 1:  # streaming: one output frame is one 2D conv over the frames stacked as channels
            y = self._one_frame(full)
        else:
            y = self.conv(F.pad(full, (self.pad, self.pad, self.pad, self.pad, 0, 0), mode="replicate"))
        return y, full[:, :, full.shape[2] - past :].detach() if past else full[:, :, :0]

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

    def forward(self, x: torch.Tensor, state: list | None = None) -> tuple[torch.Tensor, list]:
        sa, sb = state if state is not None else (None, None)
        h, sa = self.a(x, sa)
        h, sb = self.b(F.silu(h), sb)
        return x + h, [sa, sb]
