"""The Ring: `depth` slots of in-flight requests, denoised together one tick at a time.

One tick = take the latest StepState once (as TickParams), admit waiting requests
into free rows, one batched prediction over the occupied rows (each at its own sigma,
through the guidance wrapper), then each row's solver step. Every slot that finishes
in the tick is returned. The parts live beside it: the rows in slots.py (on
slot_table.py), admission.py, guidance.py, solver_table.py, tick_params.py, and
chunk-size tuning in tuning.py.

The denoiser always sees a fixed, padded batch: max(depth, highest occupied row + 1)
rows, or chunks of `max_batch` rows where one large batch costs more per row than
several small ones (long latents on a CPU). A request run alone at the same depth
and chunking therefore gives bit-identical latents (../shared/DESIGN.md,
"Invariant (parity)").
"""

from __future__ import annotations

import time
from typing import Callable, Mapping

import torch

from .admission import Admitter, RequestFactory
from .denoiser import Denoiser
from .errors import InputError
from .guidance import Guidance, LiveGuidance
from .request import Request
from .retarget import PendingRetarget
from .ring_outputs import Completion, RingCounters
from .schedule import Schedule
from .slots import SlotProgress, SlotRows
from .solver_table import solve
from .solvers import per_row, x0_prediction
from .state import StateStore, StepState
from .tick_params import TickParams, TickParamsReader
from .trace import Admission, SlotTrace, TickTrace, Trace


class Ring:
    def __init__(
        self,
        denoiser: Denoiser,
        latent_shape: tuple[int, ...],
        *,
        depth: int | None = None,
        store: StateStore | None = None,
        frame_dim: int = 0,
        null_cond: Mapping[str, torch.Tensor] | None = None,
        factory: RequestFactory | None = None,
        admit_per_tick: int | None = 1,
        max_batch: int | None = None,
        max_queue: int = 1024,
        trace_len: int = 4096,
        dtype: torch.dtype = torch.float32,
        guidance: type[Guidance] = LiveGuidance,
    ):
        self.denoiser = denoiser
        self.store = store if store is not None else StateStore()
        self.capacity = int(self.store.registry["depth"].maximum)
        if depth is not None:
            self.store.set("depth", depth)  # validates: depth 0 is an InputError naming `depth`
        self.latent_shape = tuple(int(n) for n in latent_shape)
        if not self.latent_shape or min(self.latent_shape) < 1:
            raise InputError("latent_shape", f"needs positive sizes, got {latent_shape!r}")
        if not 0 <= frame_dim < len(self.latent_shape):
            raise InputError("frame_dim", f"must index latent_shape {self.latent_shape}, got {frame_dim}")
        if admit_per_tick is not None and admit_per_tick < 1:
            raise InputError("admit_per_tick", f"must be at least 1 or None, got {admit_per_tick}")
        if max_batch is not None and (max_batch < 1 or self.capacity % max_batch):
            raise InputError("max_batch", f"must divide the ring capacity {self.capacity}, got {max_batch}")
        self.max_batch = max_batch
        self.frame_dim = frame_dim
        self.frames = self.latent_shape[frame_dim]
        self.dtype = dtype
        self.trace = Trace(trace_len)
        self.counters = RingCounters()
        self.last_error: InputError | None = None
        self.params = TickParamsReader(self.frames, len(self.latent_shape), frame_dim)
        self.guidance = guidance(denoiser, self.capacity, self.latent_shape, dtype, null_cond, frame_dim=frame_dim)
        self.rows = SlotRows(self.capacity, self.latent_shape, dtype, hooks=(self.guidance,))
        self.admission = Admitter(
            self.rows, self.latent_shape, depth=self.store.snapshot["depth"], check_cond=self.guidance.check_cond,
            reject=self._reject, factory=factory, admit_per_tick=admit_per_tick, max_queue=max_queue,
            completed=lambda: self.counters.completed,
        )
        self._tick = 0
        self._retarget = PendingRetarget()

    # ---- queries ---------------------------------------------------------------------

    @property
    def depth(self) -> int:
        return self.admission.depth

    @property
    def occupied(self) -> int:
        return self.rows.count()

    @property
    def queued(self) -> int:
        return len(self.admission.queue)

    @property
    def factory(self) -> RequestFactory | None:
        return self.admission.factory

    @factory.setter
    def factory(self, factory: RequestFactory | None) -> None:
        self.admission.factory = factory

    def in_flight(self) -> dict[int, tuple[int, int, float]]:
        """request id -> (row, step, current sigma) for every occupied slot."""
        return self.rows.in_flight()

    def progress(self) -> list[SlotProgress]:
        """Each occupied slot's request, row, step of steps, sigma and schedule (for front-ends)."""
        return self.rows.progress()

    def row_latent(self, request_id: int) -> torch.Tensor:
        """A copy of an in-flight request's current latent (for previews and tests)."""
        return self.rows.lat[self.rows.row_of(request_id)].clone()

    # ---- changes from any thread -------------------------------------------------------

    def submit(self, request: Request) -> int:
        """Queue a request for admission; bad input raises InputError naming the field."""
        return self.admission.submit(request)

    def set_depth(self, depth: int) -> None:
        """Ask for a new depth; applied at the next tick without losing in-flight slots."""
        self.store.set("depth", depth)

    def retarget(self, schedule_for: Callable[[Request], Schedule]) -> None:
        """Move every in-flight slot onto a new schedule at the next tick.

        Each slot keeps its progress fraction: it is re-noised from its last x0
        estimate to the new schedule's sigma at that fraction, never zeroed or
        dropped. For changes (strength, steps) that must reach in-flight work.
        """
        self._retarget.ask(schedule_for)

    # ---- the tick ----------------------------------------------------------------------

    def tick(self) -> list[Completion]:
        t_start = time.perf_counter()
        state = self.store.snapshot  # the one read of shared state this tick
        params = self.params.read(state)
        self.admission.apply_depth(params.depth)
        self.counters.retargeted += self._retarget.apply(self.rows, self._reject)
        admitted = self.admission.admit(state, self._tick + 1)
        self.counters.admitted += len(admitted)
        b = self._batch_rows()
        self._tick += 1
        self.counters.ticks += 1
        if b == 0:
            self._record(params, 0, False, (), admitted, (), 0.0, t_start)
            return []

        rows, slots = self.rows, self.rows.slots[:b]
        occupied = [r for r in range(b) if slots[r] is not None]
        x = rows.lat[:b]
        sigma, sigma_next = rows.sigmas_at(b)
        guided = self.guidance.prepare(b, params)
        if params.guidance != 1.0 and not guided:
            self.counters.guidance_unavailable += 1
        v, model_s = self._predict(x, sigma, b)
        if params.velocity_scale != 1.0:
            v = v * params.velocity_scale
        x0 = x0_prediction(x, v, sigma)
        new = solve(rows, b, x, v, x0, sigma, sigma_next, params)
        finite = torch.isfinite(new).flatten(1).all(1)
        if not bool(finite.all()):
            # A model that returns NaN/inf for a row must not poison its slot: the row
            # keeps its last finite latent, the event is counted, the tick goes on.
            self.counters.nonfinite += sum(not bool(finite[r]) for r in occupied)
            keep = per_row(finite, new)
            new = torch.where(keep, new, x)
            x0 = torch.where(keep, x0, rows.x0[:b])
        # Free rows have sigma = sigma_next = 0 and are rewritten on admission, so the
        # whole batch is stored without masking.
        rows.lat[:b].copy_(new)
        rows.x0[:b].copy_(x0)

        slots_trace = tuple(
            SlotTrace(r, slots[r].request.id, int(rows.step[r]), float(sigma[r]), float(sigma_next[r])) for r in occupied
        )
        rows.step[:b] += rows.occupied[:b]
        done = [r for r in occupied if int(rows.step[r]) >= int(rows.nsteps[r])]
        completions = [self._finish(r) for r in done]
        self._record(params, b, guided, slots_trace, admitted, tuple(c.request.id for c in completions), model_s, t_start)
        return completions

    def run_until_idle(self, max_ticks: int = 100_000) -> list[Completion]:
        """Tick until nothing is queued or in flight (factory requests are not drawn)."""
        factory, self.factory = self.factory, None
        out: list[Completion] = []
        try:
            for _ in range(max_ticks):
                if not self.queued and self.occupied == 0:
                    return out
                out.extend(self.tick())
        finally:
            self.factory = factory
        raise RuntimeError(f"ring did not drain within {max_ticks} ticks")

    # ---- internals ---------------------------------------------------------------------

    def _reject(self, err: InputError) -> None:
        self.counters.rejected += 1
        self.last_error = err

    def _batch_rows(self) -> int:
        """Rows run this tick: max(depth, highest occupied row + 1), rounded up to
        whole denoiser chunks."""
        last = self.rows.last_occupied()
        if last < 0:
            return 0
        rows = max(self.depth, last + 1)
        if self.max_batch is not None and rows > self.max_batch:
            rows = -(-rows // self.max_batch) * self.max_batch
        return rows

    def _predict(self, x: torch.Tensor, sigma: torch.Tensor, b: int) -> tuple[torch.Tensor, float]:
        """Velocity for rows [0, b), in calls of `chunk` rows each, and the seconds spent in them.

        Every call has the same shape for a given depth, so a solo run at that depth
        sees identical kernels; chunks holding no occupied slot are skipped.
        """
        chunk = min(self.max_batch or b, b)
        model_s = 0.0
        v = self.rows.v[:b]
        for lo in range(0, b, chunk):
            hi = lo + chunk
            if not bool(self.rows.occupied[lo:hi].any()):
                v[lo:hi].zero_()
                continue
            t0 = time.perf_counter()
            out = self.guidance.denoise(x[lo:hi], sigma[lo:hi], slice(lo, hi))
            model_s += time.perf_counter() - t0
            v[lo:hi].copy_(out)
        return v, model_s

    def _finish(self, row: int) -> Completion:
        latent = self.rows.lat[row].clone()
        slot = self.rows.free(row)
        self.counters.completed += 1
        return Completion(slot.request, latent, slot.schedule, slot.admitted_tick, self._tick)

    def _record(self, params: TickParams, b: int, guided: bool, slots: tuple[SlotTrace, ...],
                admitted: tuple[Admission, ...], finished: tuple[int, ...], model_s: float, t_start: float) -> None:
        self.trace.append(
            TickTrace(
                tick=self._tick, state_version=params.version, batch=b, depth=self.depth, guided=guided,
                chunk=min(self.max_batch or b, b),
                slots=slots, admitted=admitted, finished=finished, model_s=model_s,
                tick_s=time.perf_counter() - t_start,
            )
        )


def run_alone(
    denoiser: Denoiser,
    request: Request,
    latent_shape: tuple[int, ...],
    *,
    depth: int,
    state: StepState | None = None,
    frame_dim: int = 0,
    null_cond: Mapping[str, torch.Tensor] | None = None,
    max_batch: int | None = None,
) -> Completion:
    """Run one request to completion in an otherwise empty ring of the same depth and
    chunking: the same denoiser call shape, so the reference for bit-identical parity."""
    store = StateStore(state.registry, state.values) if state is not None else StateStore()
    ring = Ring(denoiser, latent_shape, depth=depth, store=store, frame_dim=frame_dim, null_cond=null_cond,
                max_batch=max_batch)
    ring.submit(request)
    (completion,) = ring.run_until_idle()
    return completion
