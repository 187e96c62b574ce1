"""Guidance: the denoiser wrapper the ring calls once per chunk of rows.

In the manner of k-diffusion's CFGDenoiser it owns what turns a raw denoiser into
the ring's prediction: each row's conditioning (prompt A, optional prompt B) and
their blend, the null condition, the doubled batch [conditional rows; null rows]
and the rule that combines the two halves. Rules are siblings under one base: plain
classifier-free guidance (CFG) and adaptive projected guidance (APG), whose momentum
is per slot: a column of `self.table` that the slot hooks below move with its row.
`LiveGuidance`, the ring's default, runs the rule each tick's `guidance_rule` names.

The null condition may name only some of the conditioning keys (ACE-Step's replaces
the text alone): a key it leaves out keeps the row's own value in the null half.
"""

from __future__ import annotations

import abc
from typing import Mapping

import torch

from .denoiser import AfterGuidance, Denoiser
from .errors import InputError
from .request import Request
from .slot_table import RowLife, SlotTable
from .solvers import apg_combine, cfg_combine, per_row
from .tick_params import GuidanceRule, TickParams


class Guidance(abc.ABC):
    """The shared part of every guidance rule; a rule supplies `combine`."""

    def __init__(
        self,
        denoiser: Denoiser,
        capacity: int,
        latent_shape: tuple[int, ...],
        dtype: torch.dtype,
        null_cond: Mapping[str, torch.Tensor] | None = None,
        *,
        frame_dim: int = 0,
    ):
        self.denoiser = denoiser
        self._after = denoiser.after_guidance if isinstance(denoiser, AfterGuidance) else None
        self.capacity = capacity
        self.latent_shape = latent_shape
        self.dtype = dtype
        self.frame_dim = frame_dim  # the time axis of a row, for rules that normalise over it
        self.table = SlotTable(capacity)  # per-slot state; a rule may declare more columns
        self.has_b = self.table.column((), dtype, RowLife.BOOKKEEPING)
        self.shapes: dict[str, tuple[int, ...]] | None = None  # known from the first request or the null
        self.cond_a: dict[str, torch.Tensor] = {}
        self.cond_b: dict[str, torch.Tensor] = {}
        self._x_in = torch.zeros((2 * capacity, *latent_shape), dtype=dtype)
        self._sigma_in = torch.zeros(2 * capacity, dtype=dtype)
        self._cond_in: dict[str, torch.Tensor] = {}
        self.null: dict[str, torch.Tensor] | None = None
        # True while the shapes come from the null alone: the first request may then add
        # the keys the null leaves to each row
        self._open = False
        if null_cond is not None:
            self._bind({k: tuple(v.shape) for k, v in null_cond.items()})
            self.null = {k: v.to(dtype).clone() for k, v in null_cond.items()}
            self._open = True
        # set by `prepare` for the tick's chunks
        self._cond: dict[str, torch.Tensor] = {}
        self._guided = False
        self.scale = 1.0
        self.rule = GuidanceRule.CFG

    @abc.abstractmethod
    def combine(self, v_cond: torch.Tensor, v_null: torch.Tensor, rows: slice) -> torch.Tensor:
        """The guided prediction for `rows` from their conditional and null halves."""

    # ---- per tick and per chunk ----------------------------------------------------------

    def prepare(self, rows: int, params: TickParams) -> bool:
        """Blend the conditioning of rows [0, rows) for this tick; returns whether it
        runs guided (a scale other than 1 and a null condition to guide against)."""
        self._cond = self._blended(rows, params.prompt_blend)
        self.scale = params.guidance
        self.rule = params.guidance_rule
        self._guided = params.guidance != 1.0 and self.null is not None
        return self._guided

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, rows: slice) -> torch.Tensor:
        """The prediction for `rows` (one chunk), whose latents and sigmas are x, sigma."""
        cond = {k: c[rows] for k, c in self._cond.items()}
        v = self._guided_prediction(x, sigma, cond, rows)
        return v if self._after is None else self._after(v, x, sigma, cond)

    def _guided_prediction(self, x: torch.Tensor, sigma: torch.Tensor, cond: dict[str, torch.Tensor],
                           rows: slice) -> torch.Tensor:
        if not self._guided:
            return self.denoiser.denoise(x, sigma, cond)
        n = x.shape[0]
        x_in, sigma_in = self._x_in[: 2 * n], self._sigma_in[: 2 * n]
        x_in[:n].copy_(x)
        x_in[n:].copy_(x)
        sigma_in[:n].copy_(sigma)
        sigma_in[n:].copy_(sigma)
        cond_in = {}
        for k, buf in self._cond_in.items():
            buf[:n].copy_(cond[k])
            null = self.null.get(k)
            buf[n : 2 * n].copy_(cond[k] if null is None else null.expand_as(buf[n : 2 * n]))
            cond_in[k] = buf[: 2 * n]
        out = self.denoiser.denoise(x_in, sigma_in, cond_in)
        return self.combine(out[:n], out[n:], rows)

    def _blended(self, rows: int, weight: float) -> dict[str, torch.Tensor]:
        if not self.cond_a:
            return {}
        if not bool(self.has_b[:rows].any()):
            return {k: a[:rows] for k, a in self.cond_a.items()}
        w = self.has_b[:rows] * weight
        return {k: a[:rows] + per_row(w, a[:rows]) * (self.cond_b[k][:rows] - a[:rows]) for k, a in self.cond_a.items()}

    # ---- conditioning shapes -------------------------------------------------------------

    def check_cond(self, cond: Mapping[str, torch.Tensor]) -> None:
        """Refuse conditioning whose shapes differ from the ring's; the first one sets them
        (keeping the null's: it may add keys the null leaves out, never change one)."""
        shapes = {k: tuple(v.shape) for k, v in cond.items()}
        if self.shapes is None or (self._open and all(shapes.get(k) == s for k, s in self.shapes.items())):
            self._bind(shapes)
            self._open = False
        elif shapes != self.shapes:
            raise InputError("cond", f"shapes {shapes} do not match the ring's {self.shapes}")

    def _bind(self, shapes: dict[str, tuple[int, ...]]) -> None:
        """Declare the columns and buffers of every key not bound yet."""
        self.shapes = self.shapes if self.shapes is not None else {}
        cap = self.capacity
        for k, s in shapes.items():
            if k in self.shapes:
                continue
            self.shapes[k] = s
            self.cond_a[k] = self.table.column(s, self.dtype, RowLife.PAYLOAD)
            self.cond_b[k] = self.table.column(s, self.dtype, RowLife.PAYLOAD)
            self._cond_in[k] = torch.zeros((2 * cap, *s), dtype=self.dtype)

    # ---- slot hooks ------------------------------------------------------------------------

    def place(self, row: int, request: Request) -> None:
        for k, t in request.cond.items():
            self.cond_a[k][row].copy_(t)
        self.has_b[row] = 1.0 if request.cond_b is not None else 0.0
        for k, t in (request.cond_b or {}).items():
            self.cond_b[k][row].copy_(t)

    def move(self, src: int, dst: int) -> None:
        self.table.move(src, dst)

    def clear(self, row: int) -> None:
        self.table.clear(row)


class CFG(Guidance):
    """Classifier-free guidance: v_null + scale * (v_cond - v_null), whatever the tick's rule."""

    def combine(self, v_cond: torch.Tensor, v_null: torch.Tensor, rows: slice) -> torch.Tensor:
        return cfg_combine(v_cond, v_null, self.scale)


class APG(Guidance):
    """Adaptive projected guidance as ACE-Step's pipeline runs it (`apg_combine`), whatever
    the tick's rule.

    Each slot's momentum is a column of the table: it moves with its row on compaction,
    starts at zero when a request is placed (free rows may have run guidance while tuning)
    and changes only on the row's guided ticks, as the reference's buffer does. The column
    is declared on the first APG tick, so a ring that never runs APG holds none.
    """

    momentum: torch.Tensor | None = None

    def combine(self, v_cond: torch.Tensor, v_null: torch.Tensor, rows: slice) -> torch.Tensor:
        if self.momentum is None:  # zero for every row: none has run APG yet
            self.momentum = self.table.column(self.latent_shape, self.dtype, RowLife.PAYLOAD)
        v, momentum = apg_combine(v_cond, v_null, self.scale, self.momentum[rows], norm_dim=self.frame_dim + 1)
        self.momentum[rows].copy_(momentum)
        return v

    def place(self, row: int, request: Request) -> None:
        super().place(row, request)
        if self.momentum is not None:
            self.momentum[row].zero_()


class LiveGuidance(APG):
    """The rule each tick's `guidance_rule` names, switched live with nothing flushed.

    APG's momentum is kept per slot whichever rule runs; it advances only on ticks that
    run APG, so a slot switched to APG resumes from its own last APG tick (or zero).
    """

    def combine(self, v_cond: torch.Tensor, v_null: torch.Tensor, rows: slice) -> torch.Tensor:
        if self.rule is GuidanceRule.APG:
            return super().combine(v_cond, v_null, rows)
        return cfg_combine(v_cond, v_null, self.scale)
