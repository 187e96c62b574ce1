"""The Ring: `depth` slots of in-flight requests, denoised together one tick at a time.

One tick = take the latest StepState once, admit waiting requests into free slots,
one batched denoiser call over the occupied rows (each at its own sigma), then each
row's solver step. Every slot that finishes in the tick is returned.

All per-slot state lives in tensors preallocated for the maximum depth: latents, the
last x0 estimate, the source, a sigma table (one schedule per row), step counters
and masks. The denoiser always sees a fixed, padded batch: max(depth, highest
occupied row + 1) rows, or chunks of `max_batch` rows where one large batch costs
more per row than several small ones (long latents on a CPU). A request run alone
at the same depth and chunking therefore gives bit-identical latents (DESIGN.md,
"Invariant (parity)").
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch

from .curves import frame_view, resample_curve
from .denoiser import Denoiser
from .errors import InputError
from .request import Request, Solver
from .schedule import MAX_STEPS, Schedule
from .solvers import cfg_combine, euler_step, noise_prediction, noised, per_row, sde_step, x0_prediction
from .state import StateStore, StepState
from .trace import Admission, SlotTrace, TickTrace, Trace

RequestFactory = Callable[[StepState], "Request | None"]


@dataclass(frozen=True)
class Completion:
    request: Request
    latent: torch.Tensor  # (*latent_shape), owned by the caller
    schedule: Schedule  # the schedule it finished on (differs from the request's after a retarget)
    admitted_tick: int
    finished_tick: int


@dataclass
class RingCounters:
    ticks: int = 0
    admitted: int = 0
    completed: int = 0
    rejected: int = 0  # submissions refused for bad input
    retargeted: int = 0  # in-flight slots re-noised onto a new schedule
    guidance_unavailable: int = 0  # ticks where guidance != 1 but no null condition exists
    nonfinite: int = 0  # slot steps whose result was NaN/inf and was not applied


@dataclass
class _Slot:
    request: Request
    generator: torch.Generator
    schedule: Schedule
    admitted_tick: int


@dataclass
class _Pending:
    """Changes from other threads, applied by the ring thread at the start of a tick."""

    retarget: Callable[[Request], Schedule] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


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
    ):
        self.denoiser = denoiser
        self.store = store if store is not None else StateStore()
        depth_param = self.store.registry["depth"]
        self.capacity = int(depth_param.maximum)
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
        self.factory = factory
        self.admit_per_tick = admit_per_tick
        self.max_queue = max_queue
        self.dtype = dtype
        self.trace = Trace(trace_len)
        self.counters = RingCounters()
        self.last_error: InputError | None = None

        cap, shape = self.capacity, self.latent_shape
        self._lat = torch.zeros((cap, *shape), dtype=dtype)
        self._x0 = torch.zeros((cap, *shape), dtype=dtype)
        self._v = torch.zeros((cap, *shape), dtype=dtype)
        self._src = torch.zeros((cap, *shape), dtype=dtype)
        self._fresh = torch.zeros((cap, *shape), dtype=dtype)
        self._xin = torch.zeros((2 * cap, *shape), dtype=dtype)  # CFG doubles the batch
        self._sin = torch.zeros(2 * cap, dtype=dtype)
        self._table = torch.zeros((cap, MAX_STEPS + 1), dtype=dtype)
        self._step = torch.zeros(cap, dtype=torch.int64)
        self._nsteps = torch.zeros(cap, dtype=torch.int64)
        self._occupied = torch.zeros(cap, dtype=torch.bool)
        self._sde = torch.zeros(cap, dtype=torch.bool)
        self._has_src = torch.zeros(cap, dtype=self.dtype)
        self._has_b = torch.zeros(cap, dtype=self.dtype)
        self._slots: list[_Slot | None] = [None] * cap
        self._depth = self.store.snapshot["depth"]
        self._head = 0
        self._tick = 0
        self._queue: collections.deque[Request] = collections.deque()
        self._pending = _Pending()
        self._curve_cache: tuple[int, dict[str, torch.Tensor]] = (-1, {})

        self._cond_shapes: dict[str, tuple[int, ...]] | None = None
        self._cond_a: dict[str, torch.Tensor] = {}
        self._cond_b: dict[str, torch.Tensor] = {}
        self._cond_in: dict[str, torch.Tensor] = {}
        self._null: dict[str, torch.Tensor] | None = None
        if null_cond is not None:
            self._alloc_cond({k: tuple(v.shape) for k, v in null_cond.items()})
            self._null = {k: v.to(dtype).clone() for k, v in null_cond.items()}

    # ---- queries ---------------------------------------------------------------------

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def occupied(self) -> int:
        return sum(s is not None for s in self._slots)

    @property
    def queued(self) -> int:
        return len(self._queue)

    def in_flight(self) -> dict[int, tuple[int, int, float]]:
        """request id -> (row, step, current sigma) for every occupied slot."""
        out = {}
        for row, slot in enumerate(self._slots):
            if slot is not None:
                step = int(self._step[row])
                out[slot.request.id] = (row, step, float(self._table[row, step]))
        return out

    def row_latent(self, request_id: int) -> torch.Tensor:
        """A copy of an in-flight request's current latent (for previews and tests)."""
        for row, slot in enumerate(self._slots):
            if slot is not None and slot.request.id == request_id:
                return self._lat[row].clone()
        raise KeyError(request_id)

    # ---- changes from any thread -------------------------------------------------------

    def submit(self, request: Request) -> int:
        """Queue a request for admission; bad input raises InputError naming the field."""
        try:
            self._validate(request)
            if len(self._queue) >= self.max_queue:
                raise InputError("queue", f"admission queue is full ({self.max_queue} requests)")
        except InputError as err:
            self.counters.rejected += 1
            self.last_error = err
            raise
        self._queue.append(request)
        return request.id

    def set_depth(self, depth: int) -> None:
        """Ask for a new depth; applied at the next tick without losing in-flight slots."""
        self.store.set("depth", depth)

    def retarget(self, schedule_for: Callable[[Request], Schedule]) -> None:
        """Move every in-flight slot onto a new schedule at the next tick.

        Each slot keeps its progress fraction: it is re-noised from its last x0
        estimate to the new schedule's sigma at that fraction, never zeroed or
        dropped. For changes (strength, steps) that must reach in-flight work.
        """
        with self._pending.lock:
            self._pending.retarget = schedule_for

    def tune_max_batch(self, repeats: int = 2) -> dict[int, float]:
        """Time the denoiser at chunk sizes 1, 2, 4, ... up to the depth and keep the
        fastest per row. Returns seconds per row for each size tried.

        Only while the ring is empty: a new chunk size changes the call shape, and so
        the bitwise parity reference of work already in flight.
        """
        if self.occupied:
            raise InputError("max_batch", "can only be tuned while the ring is empty")
        if self._cond_shapes is None:
            raise InputError("cond", "shapes are unknown until a request or a null condition is given")
        per_row: dict[int, float] = {}
        sizes = [n for n in (1, 2, 4, 8, 16) if n <= self._depth]
        guidance = self.store.snapshot["guidance"]
        guided = guidance != 1.0 and self._null is not None
        gen = torch.Generator().manual_seed(0)
        for round_ in range(repeats + 1):
            for n in sizes:
                x = self._lat[:n]  # the ring is empty: its rows are scratch
                torch.randn(x.shape, generator=gen, dtype=self.dtype, out=x)
                sigma = self._table[:n, 0].fill_(0.5)
                cond = {k: c[:n] for k, c in self._cond_a.items()}
                t0 = time.perf_counter()
                if guided:
                    self._guided_call(x, sigma, cond, guidance)
                else:
                    self.denoiser.denoise(x, sigma, cond)
                if round_ > 0:  # round 0 warms kernels and the allocator up
                    per_row[n] = min(per_row.get(n, float("inf")), (time.perf_counter() - t0) / n)
        self._table[:n].zero_()
        self.max_batch = min(per_row, key=per_row.get)
        return per_row

    # ---- the tick ----------------------------------------------------------------------

    def tick(self) -> list[Completion]:
        t_start = time.perf_counter()
        state = self.store.snapshot  # the one read of shared state this tick
        self._apply_depth(state["depth"])
        self._apply_retarget()
        admitted = self._admit(state)
        b = self._batch_rows()
        self._tick += 1
        self.counters.ticks += 1
        if b == 0:
            self._record(state, 0, False, (), admitted, (), 0.0, t_start)
            return []

        rows = [r for r in range(b) if self._slots[r] is not None]
        x = self._lat[:b]
        idx = self._step[:b].unsqueeze(1)
        sigma = self._table[:b].gather(1, idx).squeeze(1)
        sigma_next = self._table[:b].gather(1, idx + 1).squeeze(1)

        v, guided, model_s = self._predict(x, sigma, b, state)
        if state["velocity_scale"] != 1.0:
            v = v * state["velocity_scale"]
        x0 = x0_prediction(x, v, sigma)
        new = euler_step(x, v, sigma, sigma_next)
        sde_rows = [r for r in rows if bool(self._sde[r])]
        if sde_rows:
            new = self._sde_update(new, x, v, x0, sigma, sigma_next, sde_rows, b, state)
        finite = torch.isfinite(new).flatten(1).all(1)
        if not bool(finite.all()):
            # A model that returns NaN/inf for a row must not poison its slot: the row
            # keeps its last finite latent, the event is counted, the tick goes on.
            bad = [r for r in rows if not bool(finite[r])]
            self.counters.nonfinite += len(bad)
            keep = per_row(finite, new)
            new = torch.where(keep, new, x)
            x0 = torch.where(keep, x0, self._x0[:b])
        # Empty rows have sigma = sigma_next = 0 and are rewritten on admission, so
        # the whole batch is stored without masking.
        self._lat[:b].copy_(new)
        self._x0[:b].copy_(x0)

        slots_trace = tuple(
            SlotTrace(r, self._slots[r].request.id, int(self._step[r]), float(sigma[r]), float(sigma_next[r]))
            for r in rows
        )
        self._step[:b] += self._occupied[:b]
        done = [r for r in rows if int(self._step[r]) >= int(self._nsteps[r])]
        completions = [self._finish(r) for r in done]
        self._record(state, b, guided, slots_trace, admitted, tuple(c.request.id for c in completions), model_s, t_start)
        return completions

    def run_until_idle(self, max_ticks: int = 100_000) -> list[Completion]:
        """Tick until nothing is queued or in flight (factory requests are not drawn)."""
        factory, self.factory = self.factory, None
        out: list[Completion] = []
        try:
            for _ in range(max_ticks):
                if not self._queue and self.occupied == 0:
                    return out
                out.extend(self.tick())
        finally:
            self.factory = factory
        raise RuntimeError(f"ring did not drain within {max_ticks} ticks")

    # ---- internals ---------------------------------------------------------------------

    def _validate(self, request: Request) -> None:
        if not isinstance(request, Request):
            raise InputError("request", f"expected a Request, got {type(request).__name__}")
        if request.source is not None and tuple(request.source.shape) != self.latent_shape:
            raise InputError(
                "source",
                f"latent shape {tuple(request.source.shape)} does not match the ring's {self.latent_shape}",
            )
        shapes = {k: tuple(v.shape) for k, v in request.cond.items()}
        if self._cond_shapes is None:
            self._alloc_cond(shapes)
        elif shapes != self._cond_shapes:
            raise InputError("cond", f"shapes {shapes} do not match the ring's {self._cond_shapes}")

    def _alloc_cond(self, shapes: dict[str, tuple[int, ...]]) -> None:
        cap = self.capacity
        self._cond_shapes = dict(shapes)
        self._cond_a = {k: torch.zeros((cap, *s), dtype=self.dtype) for k, s in shapes.items()}
        self._cond_b = {k: torch.zeros((cap, *s), dtype=self.dtype) for k, s in shapes.items()}
        self._cond_in = {k: torch.zeros((2 * cap, *s), dtype=self.dtype) for k, s in shapes.items()}

    def _apply_depth(self, depth: int) -> None:
        if depth == self._depth:
            return
        if depth < self._depth:
            self._compact(depth)
        self._depth = depth
        self._head %= depth

    def _compact(self, depth: int) -> None:
        """Move slots that sit at rows >= depth into free rows below it."""
        free = [r for r in range(depth) if self._slots[r] is None]
        for src in range(depth, self.capacity):
            if self._slots[src] is None or not free:
                continue
            self._move_row(src, free.pop(0))

    def _move_row(self, src: int, dst: int) -> None:
        tensors = [self._lat, self._x0, self._src, self._table, self._step, self._nsteps, self._occupied,
                   self._sde, self._has_src, self._has_b, *self._cond_a.values(), *self._cond_b.values()]
        for t in tensors:
            t[dst] = t[src]
        self._clear_row(src)
        self._slots[dst], self._slots[src] = self._slots[src], None

    def _clear_row(self, row: int) -> None:
        self._table[row].zero_()
        self._step[row] = 0
        self._nsteps[row] = 0
        self._occupied[row] = False
        self._sde[row] = False
        self._has_src[row] = 0.0
        self._has_b[row] = 0.0

    def _batch_rows(self) -> int:
        """Rows run this tick: max(depth, highest occupied row + 1), rounded up to
        whole denoiser chunks."""
        last = max((r for r, s in enumerate(self._slots) if s is not None), default=-1)
        if last < 0:
            return 0
        rows = max(self._depth, last + 1)
        if self.max_batch is not None and rows > self.max_batch:
            rows = -(-rows // self.max_batch) * self.max_batch
        return rows

    def _admit(self, state: StepState) -> tuple[Admission, ...]:
        limit = self.admit_per_tick or self.capacity
        admitted = []
        start = self._head
        for offset in range(self._depth):
            if len(admitted) >= limit:
                break
            row = (start + offset) % self._depth
            if self._slots[row] is not None:
                continue
            request = self._next_request(state)
            if request is None:
                break
            self._place(row, request)
            self._head = (row + 1) % self._depth
            sched = self._slots[row].schedule
            admitted.append(Admission(self._tick + 1, row, request.id, request.params_version, sched.steps, sched.start))
        self.counters.admitted += len(admitted)
        return tuple(admitted)

    def _next_request(self, state: StepState) -> Request | None:
        if self._queue:
            return self._queue.popleft()
        if self.factory is None:
            return None
        try:
            request = self.factory(state)
            if request is not None:
                self._validate(request)
        except InputError as err:
            # A bad live request must not stop the tick loop: count it, keep serving.
            self.counters.rejected += 1
            self.last_error = err
            return None
        return request

    def _place(self, row: int, request: Request) -> None:
        gen = request.generator()
        sched = request.schedule
        self._load_schedule(row, sched, 0)
        self._occupied[row] = True
        self._sde[row] = request.solver is Solver.SDE
        if request.source is not None:
            self._src[row].copy_(request.source)
            self._has_src[row] = 1.0
        else:
            self._src[row].zero_()
            self._has_src[row] = 0.0
        for k, t in request.cond.items():
            self._cond_a[k][row].copy_(t)
        self._has_b[row] = 1.0 if request.cond_b is not None else 0.0
        for k, t in (request.cond_b or {}).items():
            self._cond_b[k][row].copy_(t)
        self._x0[row].copy_(self._src[row])
        self._renoise(row, gen)
        self._slots[row] = _Slot(request, gen, sched, self._tick + 1)

    def _load_schedule(self, row: int, schedule: Schedule, step: int) -> None:
        self._table[row].zero_()
        self._table[row, : len(schedule.sigmas)] = schedule.as_tensor(self.dtype)
        self._step[row] = step
        self._nsteps[row] = schedule.steps

    def _renoise(self, row: int, generator: torch.Generator) -> None:
        """Latent of `row` = its x0 estimate noised to its current sigma with fresh noise."""
        noise = self._fresh[row : row + 1]
        torch.randn(noise.shape, generator=generator, dtype=self.dtype, out=noise)
        sigma = self._table[row : row + 1].gather(1, self._step[row : row + 1, None]).squeeze(1)
        self._lat[row : row + 1].copy_(noised(self._x0[row : row + 1], noise, sigma))

    def _apply_retarget(self) -> None:
        with self._pending.lock:
            schedule_for, self._pending.retarget = self._pending.retarget, None
        if schedule_for is None:
            return
        for row, slot in enumerate(self._slots):
            if slot is None:
                continue
            try:
                new = schedule_for(slot.request)
                if not isinstance(new, Schedule):
                    raise InputError("schedule", f"retarget gave {type(new).__name__}, not a Schedule")
            except InputError as err:
                self.counters.rejected += 1
                self.last_error = err
                continue  # the slot keeps its schedule
            step, n = int(self._step[row]), int(self._nsteps[row])
            k = min(round(step / n * new.steps), new.steps - 1)
            self._load_schedule(row, new, k)
            self._renoise(row, slot.generator)
            slot.schedule = new
            self.counters.retargeted += 1

    def _cond_rows(self, b: int, state: StepState) -> dict[str, torch.Tensor]:
        if not self._cond_a:
            return {}
        if not bool(self._has_b[:b].any()):
            return {k: a[:b] for k, a in self._cond_a.items()}
        weight = self._has_b[:b] * state["prompt_blend"]
        return {k: a[:b] + per_row(weight, a[:b]) * (self._cond_b[k][:b] - a[:b]) for k, a in self._cond_a.items()}

    def _predict(self, x: torch.Tensor, sigma: torch.Tensor, b: int, state: StepState):
        """Velocity for rows [0, b), in denoiser calls of `chunk` rows each.

        Every call has the same shape for a given depth, so a solo run at that depth
        sees identical kernels; chunks holding no occupied slot are skipped.
        """
        cond = self._cond_rows(b, state)
        guidance = state["guidance"]
        guided = guidance != 1.0 and self._null is not None
        if guidance != 1.0 and self._null is None:
            self.counters.guidance_unavailable += 1
        chunk = min(self.max_batch or b, b)
        model_s = 0.0
        v = self._v[:b]
        for lo in range(0, b, chunk):
            hi = lo + chunk
            if not bool(self._occupied[lo:hi].any()):
                v[lo:hi].zero_()
                continue
            rows_cond = {k: c[lo:hi] for k, c in cond.items()}
            t0 = time.perf_counter()
            if guided:
                out = self._guided_call(x[lo:hi], sigma[lo:hi], rows_cond, guidance)
            else:
                out = self.denoiser.denoise(x[lo:hi], sigma[lo:hi], rows_cond)
            model_s += time.perf_counter() - t0
            v[lo:hi].copy_(out)
        return v, guided, model_s

    def _guided_call(self, x, sigma, cond, guidance):
        """One denoiser call over [cond rows; null rows], combined by CFG."""
        n = x.shape[0]
        xin, sin = self._xin[: 2 * n], self._sin[: 2 * n]
        xin[:n].copy_(x)
        xin[n:].copy_(x)
        sin[:n].copy_(sigma)
        sin[n:].copy_(sigma)
        cin = {}
        for k, buf in self._cond_in.items():
            buf[:n].copy_(cond[k])
            buf[n : 2 * n].copy_(self._null[k].expand_as(buf[n : 2 * n]))
            cin[k] = buf[: 2 * n]
        out = self.denoiser.denoise(xin, sin, cin)
        return cfg_combine(out[:n], out[n:], guidance)

    def _curves(self, state: StepState) -> dict[str, torch.Tensor]:
        version, cached = self._curve_cache
        if version != state.version:
            ndim = len(self.latent_shape)
            cached = {
                name: frame_view(resample_curve(state[name], self.frames), ndim, self.frame_dim)
                for name in ("source_blend", "noise_injection")
            }
            self._curve_cache = (state.version, cached)
        return cached

    def _sde_update(self, new, x, v, x0, sigma, sigma_next, sde_rows, b, state):
        for r in sde_rows:
            torch.randn(self._fresh[r : r + 1].shape, generator=self._slots[r].generator,
                        dtype=self.dtype, out=self._fresh[r : r + 1])
        curves = self._curves(state)
        blend = curves["source_blend"] * per_row(self._has_src[:b], x)
        renoised = sde_step(
            x0, noise_prediction(x, v, sigma), self._fresh[:b], sigma_next,
            eta=curves["noise_injection"], source=self._src[:b], blend=blend,
        )
        return torch.where(per_row(self._sde[:b], x), renoised, new)

    def _finish(self, row: int) -> Completion:
        slot = self._slots[row]
        completion = Completion(slot.request, self._lat[row].clone(), slot.schedule, slot.admitted_tick, self._tick)
        self._slots[row] = None
        self._clear_row(row)
        self.counters.completed += 1
        return completion

    def _record(self, state, b, guided, slots, admitted, finished, model_s, t_start) -> None:
        self.trace.append(
            TickTrace(
                tick=self._tick, state_version=state.version, batch=b, depth=self._depth, guided=guided,
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
