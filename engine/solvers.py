"""Pure solver maths for flow matching, batched with one sigma per row.

Convention (ACE-Step, diffusers' FlowMatchEulerDiscreteScheduler):
    x_sigma = (1 - sigma) * x0 + sigma * noise,   v = noise - x0.

Every function takes per-row sigmas of shape (B,) and broadcasts them over the
remaining axes. No hidden state: a slot can sit anywhere in its own schedule.
Ops are kept as separate multiplies and adds (no fused alpha) so a row's result does
not depend on where it sits in the batch.
"""

from __future__ import annotations

import torch


def per_row(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """View (B,) as (B, 1, 1, ...) to broadcast against `like` of shape (B, ...)."""
    return values.view(values.shape[0], *([1] * (like.dim() - 1)))


def x0_prediction(x: torch.Tensor, v: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Clean-sample estimate: x0 = x - sigma * v."""
    return x - per_row(sigma, x) * v


def noise_prediction(x: torch.Tensor, v: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Noise estimate: eps = x + (1 - sigma) * v."""
    return x + per_row(1.0 - sigma, x) * v


def euler_step(
    x: torch.Tensor, v: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor
) -> torch.Tensor:
    """Deterministic flow ODE step: x + (sigma_next - sigma) * v."""
    return x + per_row(sigma_next - sigma, x) * v


def noised(clean: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Put `clean` at noise level `sigma`: (1 - sigma) * clean + sigma * noise."""
    return per_row(1.0 - sigma, clean) * clean + per_row(sigma, clean) * noise


def sde_step(
    x0: torch.Tensor,
    eps: torch.Tensor,
    fresh: torch.Tensor,
    sigma_next: torch.Tensor,
    *,
    eta: torch.Tensor,
    source: torch.Tensor | None = None,
    blend: torch.Tensor | None = None,
) -> torch.Tensor:
    """Re-noise step with per-frame source blending and noise injection.

    x0' = (1 - blend) * x0 + blend * source   (blend: 1 keeps the source frame exactly)
    n   = sqrt(1 - eta^2) * eps + eta * fresh (eta: 1 is fresh noise, 0 the ODE path)
    x   = (1 - sigma_next) * x0' + sigma_next * n

    `eta` and `blend` broadcast against x0 (a per-frame curve shaped for the frame
    axis, per row). With eta = 0 and blend = 0 this equals `euler_step`.
    """
    target = x0 if source is None or blend is None else (1.0 - blend) * x0 + blend * source
    keep = torch.sqrt(torch.clamp(1.0 - eta * eta, min=0.0))
    mixed = keep * eps + eta * fresh
    return noised(target, mixed, sigma_next)


def cfg_combine(v_cond: torch.Tensor, v_null: torch.Tensor, guidance: float) -> torch.Tensor:
    """Classifier-free guidance: v_null + g * (v_cond - v_null); g = 1 returns v_cond's value."""
    return v_null + guidance * (v_cond - v_null)


def apg_combine(
    v_cond: torch.Tensor,
    v_null: torch.Tensor,
    guidance: float,
    momentum: torch.Tensor,
    *,
    norm_dim: int,
    beta: float = -0.75,
    norm_threshold: float = 2.5,
    eta: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Adaptive projected guidance as ACE-Step's pipeline applies it; returns (v, momentum').

    m' = (v_cond - v_null) + beta * m          the rows' running difference (zeros at birth)
    d  = m' * min(1, norm_threshold / |m'|)    |.| over `norm_dim` (time), per row and channel
    d  = d_orth + eta * d_par                  parts across and along v_cond, split in float64
    v  = v_cond + (guidance - 1) * d           g = 1 returns v_cond; the scale means what CFG's does

    Every row is independent, so a slot's result does not depend on its neighbours; the
    caller keeps m' for the row's next guided step.
    """
    new_momentum = (v_cond - v_null) + beta * momentum
    diff = new_momentum
    if norm_threshold > 0:
        norm = diff.norm(p=2, dim=(norm_dim,), keepdim=True)
        diff = diff * (norm_threshold / norm).clamp(max=1.0)
    # the projection runs in float64, as the reference does, then returns to the rows' dtype
    d64 = diff.double()
    unit = torch.nn.functional.normalize(v_cond.double(), dim=(norm_dim,))
    par64 = (d64 * unit).sum(dim=(norm_dim,), keepdim=True) * unit
    orth = (d64 - par64).to(diff.dtype)
    update = orth + eta * par64.to(diff.dtype)
    return v_cond + (guidance - 1.0) * update, new_momentum
