"""Flow-matching sigma schedules: small pure functions and one frozen dataclass.

Sigma is the flow-matching time t in [0, 1]: x_t = (1 - t) * x0 + t * noise.
ACE-Step shifts uniform timesteps with t' = s*t / (1 + (s - 1)*t).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from .errors import InputError

MAX_STEPS = 1000


def shift_sigma(t: float, shift: float) -> float:
    """ACE-Step's timestep shift: s*t / (1 + (s-1)*t). Maps [0,1] onto [0,1]."""
    return shift * t / (1.0 + (shift - 1.0) * t)


def unshift_sigma(sigma: float, shift: float) -> float:
    """Inverse of `shift_sigma`: the uniform timestep whose shifted value is `sigma`."""
    return sigma / (shift - (shift - 1.0) * sigma)


@dataclass(frozen=True)
class Schedule:
    """Sigmas of one request, strictly decreasing, from its start strength to 0.

    `sigmas` has `steps + 1` entries; the last is 0, so a completed schedule leaves
    the clean latent.
    """

    sigmas: tuple[float, ...]

    def __post_init__(self) -> None:
        validate_sigmas(self.sigmas)

    @property
    def steps(self) -> int:
        return len(self.sigmas) - 1

    @property
    def start(self) -> float:
        return self.sigmas[0]

    def as_tensor(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.tensor(self.sigmas, dtype=dtype)


def validate_sigmas(sigmas: Sequence[float]) -> None:
    """Raise InputError naming `sigmas` unless they run strictly down from (0, 1] to 0."""
    if len(sigmas) < 2:
        raise InputError("sigmas", f"need at least 2 values (start and 0), got {len(sigmas)}")
    if len(sigmas) - 1 > MAX_STEPS:
        raise InputError("sigmas", f"at most {MAX_STEPS} steps, got {len(sigmas) - 1}")
    for i, s in enumerate(sigmas):
        if not math.isfinite(s):
            raise InputError("sigmas", f"value {i} is not finite ({s})")
    if not 0.0 < sigmas[0] <= 1.0:
        raise InputError("sigmas", f"start must lie in (0, 1], got {sigmas[0]}")
    if sigmas[-1] != 0.0:
        raise InputError("sigmas", f"must end at 0, got {sigmas[-1]}")
    for i in range(1, len(sigmas)):
        if not sigmas[i] < sigmas[i - 1]:
            raise InputError(
                "sigmas",
                f"must decrease strictly; value {i} ({sigmas[i]}) follows {sigmas[i - 1]}",
            )


def flow_schedule(steps: int, strength: float = 1.0, shift: float = 1.0) -> Schedule:
    """`steps` Euler steps from sigma=`strength` down to 0 on ACE-Step's shifted grid.

    The steps are uniform in unshifted time, starting at the unshifted time whose
    shifted sigma equals `strength`; so strength=1 is text-to-X from pure noise and
    strength<1 (audio-to-audio) walks the tail of the same curve.
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= MAX_STEPS:
        raise InputError("steps", f"must be an integer in 1..{MAX_STEPS}, got {steps!r}")
    if not (isinstance(strength, (int, float)) and 0.0 < strength <= 1.0):
        raise InputError("strength", f"must lie in (0, 1], got {strength!r}")
    if not (isinstance(shift, (int, float)) and math.isfinite(shift) and shift > 0.0):
        raise InputError("shift", f"must be a positive number, got {shift!r}")
    t0 = unshift_sigma(float(strength), float(shift))
    sigmas = [shift_sigma(t0 * (steps - i) / steps, float(shift)) for i in range(steps)]
    sigmas[0] = float(strength)  # exact start despite the round trip through unshift
    return Schedule(tuple(sigmas) + (0.0,))


def custom_schedule(sigmas: Sequence[float]) -> Schedule:
    """A schedule from an explicit sigma list (e.g. a turbo model's fixed table)."""
    values = tuple(float(s) for s in sigmas)
    if values and values[-1] != 0.0:
        values = values + (0.0,)
    return Schedule(values)
