"""The Denoiser protocol and its torch eager backend.

`denoise(x, sigma, cond)` takes a batch of latents, one sigma per row and a mapping
of batched conditioning tensors, and returns the flow-matching velocity. The ring
never knows which backend runs.
"""

from __future__ import annotations

from typing import Callable, Mapping, Protocol, runtime_checkable

import torch

Cond = Mapping[str, torch.Tensor]


@runtime_checkable
class Denoiser(Protocol):
    name: str

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, cond: Cond) -> torch.Tensor: ...


@runtime_checkable
class AfterGuidance(Protocol):
    """A denoiser that also refines the guided prediction: `after_guidance` gets each
    row's guided velocity with its conditional conditioning, once guidance has
    combined the two halves (ACE-Step's cover blends text to music in there)."""

    def after_guidance(self, v: torch.Tensor, x: torch.Tensor, sigma: torch.Tensor, cond: Cond) -> torch.Tensor: ...


def checked_prediction(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A backend's prediction, refused loudly when its shape is not the input's."""
    if out.shape != x.shape:
        raise RuntimeError(f"denoiser returned shape {tuple(out.shape)} for input {tuple(x.shape)}")
    return out


class TorchDenoiser:
    """Torch eager backend: calls `fn(x, sigma, cond)` under inference mode.

    `fn` adapts a module's own call signature (e.g. ACE-Step's keyword arguments)
    to the protocol; `module` is kept so the backend can report and move it.
    """

    name = "torch"

    def __init__(self, module: torch.nn.Module, fn: Callable[[torch.Tensor, torch.Tensor, Cond], torch.Tensor]):
        self.module = module.eval()
        self._fn = fn

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, cond: Cond) -> torch.Tensor:
        with torch.inference_mode():
            return checked_prediction(self._fn(x, sigma, cond), x)
