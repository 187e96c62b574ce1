"""Guidance: the denoiser wrapper the ring calls once per chunk of rows.

In the manner of k-diffusion's CFGDenoiser it owns what turns a raw denoiser into
the ring's prediction: each row's conditioning (prompt A, optional prompt B) and
their blend, the null condition, the doubled batch [conditional rows; null rows]
and the rule that combines the two halves. Rules are siblings under one base: plain
classifier-free guidance here; one with per-slot state (APG's momentum) declares
its own columns in `self.table`, and the slot hooks below move and clear them.
"""

from __future__ import annotations

import abc
from typing import Mapping

import torch

from .denoiser import Denoiser
from .errors import InputError
from .request import Request
from .slot_table import RowLife, SlotTable
from .solvers import cfg_combine, per_row
from .tick_params import TickParams


class Guidance(abc.ABC):
    """The shared part of every guidance rule; a rule supplies `combine`."""

    def __init__(
        self,
        denoiser: Denoiser,
        capacity: int,
        latent_shape: tuple[int, ...],
        dtype: torch.dtype,
        null_cond: Mapping[str, torch.Tensor] | None = None,
    ):
        self.denoiser = denoiser
        self.capacity = capacity
        self.latent_shape = latent_shape
        self.dtype = dtype
        self.table = SlotTable(capacity)  # per-slot state; a rule may declare more columns
        self.has_b = self.table.column((), dtype, RowLife.BOOKKEEPING)
        self.shapes: dict[str, tuple[int, ...]] | None = None  # known from the first request or the null
        self.cond_a: dict[str, torch.Tensor] = {}
        self.cond_b: dict[str, torch.Tensor] = {}
        self._x_in = torch.zeros((2 * capacity, *latent_shape), dtype=dtype)
        self._sigma_in = torch.zeros(2 * capacity, dtype=dtype)
        self._cond_in: dict[str, torch.Tensor] = {}
        self.null: dict[str, torch.Tensor] | None = None
        if null_cond is not None:
            self._bind({k: tuple(v.shape) for k, v in null_cond.items()})
            self.null = {k: v.to(dtype).clone() for k, v in null_cond.items()}
        # set by `prepare` for the tick's chunks
        self._cond: dict[str, torch.Tensor] = {}
        self._guided = False
        self.scale = 1.0

    @abc.abstractmethod
    def combine(self, v_cond: torch.Tensor, v_null: torch.Tensor, rows: slice) -> torch.Tensor:
        """The guided prediction for `rows` from their conditional and null halves."""

    # ---- per tick and per chunk ----------------------------------------------------------

    def prepare(self, rows: int, params: TickParams) -> bool:
        """Blend the conditioning of rows [0, rows) for this tick; returns whether it
        runs guided (a scale other than 1 and a null condition to guide against)."""
        self._cond = self._blended(rows, params.prompt_blend)
        self.scale = params.guidance
        self._guided = params.guidance != 1.0 and self.null is not None
        return self._guided

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, rows: slice) -> torch.Tensor:
        """The prediction for `rows` (one chunk), whose latents and sigmas are x, sigma."""
        cond = {k: c[rows] for k, c in self._cond.items()}
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
            buf[n : 2 * n].copy_(self.null[k].expand_as(buf[n : 2 * n]))
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
        """Refuse conditioning whose shapes differ from the ring's; the first one sets them."""
        shapes = {k: tuple(v.shape) for k, v in cond.items()}
        if self.shapes is None:
            self._bind(shapes)
        elif shapes != self.shapes:
            raise InputError("cond", f"shapes {shapes} do not match the ring's {self.shapes}")

    def _bind(self, shapes: dict[str, tuple[int, ...]]) -> None:
        self.shapes = dict(shapes)
        cap = self.capacity
        self.cond_a = {k: self.table.column(s, self.dtype, RowLife.PAYLOAD) for k, s in shapes.items()}
        self.cond_b = {k: self.table.column(s, self.dtype, RowLife.PAYLOAD) for k, s in shapes.items()}
        self._cond_in = {k: torch.zeros((2 * cap, *s), dtype=self.dtype) for k, s in shapes.items()}

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
    """Classifier-free guidance: v_null + scale * (v_cond - v_null)."""

    def combine(self, v_cond: torch.Tensor, v_null: torch.Tensor, rows: slice) -> torch.Tensor:
        return cfg_combine(v_cond, v_null, self.scale)
