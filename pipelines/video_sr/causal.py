"""Causal video convolutions with cached temporal state (the streaming layers of cached_conv.py).

A CausalConv3d with temporal kernel kt sees the current frame and the kt - 1 before
it, never a later one. Run on a whole clip it pads the start with zeros; run frame by
frame it keeps the last kt - 1 input frames as its state. Both give the same output
(the invariant test_video_sr_causal checks), so a stream costs one frame of work per
frame, with no look-ahead. Space is padded with zeros inside the convolution (no
padded copy of the frame is made), time only by the cache.

Frame by frame, the kt frames are stacked as channels (time-major) into one 2D
convolution in channels-last layout: oneDNN runs a few-channel convolution there 3-4x
faster than in NCHW, and the layout carries from layer to layer, so a stream pays for it
once, at the input.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..cached_conv import TIME, CachedConv, StreamGeometry

NHWC = torch.channels_last


class CausalConv3d(CachedConv):
    def __init__(self, cin: int, cout: int, kernel: int = 3, time_kernel: int = 2, stride: int = 1):
        pad = kernel // 2
        super().__init__(nn.Conv3d(cin, cout, (time_kernel, kernel, kernel), stride=(1, stride, stride),
                                   padding=(0, pad, pad)))

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if x.shape[TIME] != 1:  # a whole clip (training, the offline reference): conv3d
            return super().forward(x, state)
        if state is None:
            state = x.new_zeros(*x.shape[:TIME], self.context, *x.shape[TIME + 1 :])
        frames = [state[:, :, i] for i in range(self.context)] + [x[:, :, 0]]
        stacked = (torch.cat(frames, 1) if len(frames) > 1 else frames[0]).contiguous(memory_format=NHWC)
        conv = self.conv
        # conv3d's weight (out, in, time, kh, kw) as a 2D weight over time-major stacked channels
        weight = conv.weight.transpose(1, 2).reshape(conv.out_channels, -1, *conv.kernel_size[1:])
        y = F.conv2d(stacked, weight, conv.bias, stride=conv.stride[1:], padding=conv.padding[1:])
        new_state = torch.cat([state, x], TIME)[:, :, 1:] if self.context > 1 else (x if self.context else state)
        return y[:, :, None], new_state.detach()


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
