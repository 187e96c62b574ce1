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
        y = self.conv(F.pad(full, (self.pad, self.pad, self.pad, self.pad, 0, 0), mode="replicate"))
        return y, full[:, :, full.shape[2] - past :].detach() if past else full[:, :, :0]


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
