"""TickParams: the step- and frame-class parameters one tick runs with, typed.

Built once from the tick's StepState snapshot (and rebuilt only when its version
changes), so the tick, the solvers and the guidance read fields, not names.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import torch

from .curves import frame_view, resample_curve
from .state import StepState


class GuidanceRule(enum.Enum):
    """How the conditional and null halves combine (the registry's `guidance_rule`)."""

    CFG = "cfg"
    APG = "apg"


@dataclass(frozen=True)
class TickParams:
    version: int  # the StepState version these came from
    depth: int
    guidance: float
    guidance_rule: GuidanceRule  # how the two halves combine
    prompt_blend: float
    velocity_scale: float
    source_blend: torch.Tensor  # per-frame curve, shaped to broadcast over (B, *latent)
    noise_injection: torch.Tensor  # likewise

    @classmethod
    def of(cls, state: StepState, frames: int, latent_ndim: int, frame_dim: int) -> "TickParams":
        def curve(name: str) -> torch.Tensor:
            return frame_view(resample_curve(state[name], frames), latent_ndim, frame_dim)

        return cls(
            version=state.version,
            depth=state["depth"],
            guidance=state["guidance"],
            guidance_rule=GuidanceRule(state["guidance_rule"]),
            prompt_blend=state["prompt_blend"],
            velocity_scale=state["velocity_scale"],
            source_blend=curve("source_blend"),
            noise_injection=curve("noise_injection"),
        )


class TickParamsReader:
    """TickParams for a ring's latent layout; the curves are resampled once per version."""

    def __init__(self, frames: int, latent_ndim: int, frame_dim: int):
        self._layout = (frames, latent_ndim, frame_dim)
        self._last: TickParams | None = None

    def read(self, state: StepState) -> TickParams:
        if self._last is None or self._last.version != state.version:
            self._last = TickParams.of(state, *self._layout)
        return self._last
