"""Streaming layers, after acids-ircam's cached_conv: a convolution streams by replacing its
left padding with a cache of the previous block, and every layer reports its geometry.

The protocol: a streaming layer is called `layer(x, state) -> (y, state)`, where state None
is the start of a stream (as if zeros came before it), and has a `geometry` (StreamGeometry):
how far back and ahead an output step reads, and how many input steps make one output step.
A chain of layers reports the composed geometry, so a model's look-ahead and receptive
field are read off its layers, never written down beside them.

Time is the third axis, after batch and channels, in every layout: (B, C, T) audio and
latents, (B, C, T, H, W) video. A block streamed with its state equals the same samples run
in one call, whatever the block sizes (whole strides of the layers only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Iterable, Protocol

import torch
import torch.nn as nn

TIME = 2  # the time axis: (B, C, T, ...)


@dataclass(frozen=True)
class StreamGeometry:
    """What one output step of a layer (or a chain) reads, in the layer's input steps.

    An output step owns `ratio` input steps (the stride; 1/f after repeating by f), reads
    `context` steps before them (its receptive field beyond its own steps: the cache) and
    `delay` steps after them (its look-ahead: 0 for a causal layer).
    """

    context: Fraction = Fraction(0)
    delay: Fraction = Fraction(0)
    ratio: Fraction = Fraction(1)

    def then(self, after: StreamGeometry) -> StreamGeometry:
        """This layer followed by `after`: `after`'s reach counts in this layer's output steps."""
        return StreamGeometry(self.context + after.context * self.ratio, self.delay + after.delay * self.ratio,
                              self.ratio * after.ratio)

    @property
    def halo(self) -> int:
        """Whole input steps a window needs before its first own step, so that its output equals the whole run."""
        return math.ceil(self.context)

    @property
    def lookahead(self) -> int:
        """Whole input steps an output waits for after its own."""
        return math.ceil(self.delay)


def chain(geometries: Iterable[StreamGeometry]) -> StreamGeometry:
    """The geometry of layers run one after another, in the first one's input steps."""
    total = StreamGeometry()
    for g in geometries:
        total = total.then(g)
    return total


class Streaming(Protocol):
    geometry: StreamGeometry

    def __call__(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]: ...


class CachedConv(nn.Module):
    """A convolution whose time padding is the cache of the input before this block.

    `conv` pads nothing along time; its time kernel, dilation and stride fix the cache: the
    input steps before a block that the block's first output still reads. Subclasses say how
    the convolution runs on [cache | block] (`convolve`), e.g. with spatial padding.
    """

    def __init__(self, conv: nn.Module):
        super().__init__()
        kernel, dilation, stride, pad = conv.kernel_size[0], conv.dilation[0], conv.stride[0], conv.padding[0]
        if pad != 0:
            raise ValueError(f"a cached convolution pads time with its cache, not with {pad} zeros")
        self.conv = conv
        self.context = (kernel - 1) * dilation + 1 - stride
        if self.context < 0:
            raise ValueError(f"a time kernel of {kernel} with stride {stride} skips input steps")
        self.geometry = StreamGeometry(context=Fraction(self.context), ratio=Fraction(stride))

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, T, ...) -> (y, state: the last `context` input steps, the next block's padding)."""
        if state is None:
            state = x.new_zeros(*x.shape[:TIME], self.context, *x.shape[TIME + 1 :])
        full = torch.cat([state, x], dim=TIME)
        # the cache is a value of the past, never a path for gradients
        return self.convolve(full), full[:, :, full.shape[TIME] - self.context :].detach()

    def convolve(self, full: torch.Tensor) -> torch.Tensor:
        return self.conv(full)


class CachedSequence(nn.ModuleList):
    """Streaming layers run in order, each with its own state (a list, one entry per layer).

    A ModuleList, so parameters keep the names `<index>.<name>` of a plain list of layers.
    """

    def forward(self, x: torch.Tensor, state: list | None = None) -> tuple[torch.Tensor, list]:
        new = []
        for i, layer in enumerate(self):
            x, s = layer(x, None if state is None else state[i])
            new.append(s)
        return x, new

    @property
    def geometry(self) -> StreamGeometry:
        return chain(layer.geometry for layer in self)


class Pointwise(nn.Module):
    """A stateless layer that maps each step on its own (an activation): no cache, no reach."""

    geometry = StreamGeometry()

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor, state: None = None) -> tuple[torch.Tensor, None]:
        return self.fn(x), None


class Repeat(nn.Module):
    """Upsampling in time by repeating each step `factor` times: stateless, each output reads one input."""

    def __init__(self, factor: int):
        super().__init__()
        self.factor = factor
        self.geometry = StreamGeometry(ratio=Fraction(1, factor))

    def forward(self, x: torch.Tensor, state: None = None) -> tuple[torch.Tensor, None]:
        return x.repeat_interleave(self.factor, dim=TIME), None
