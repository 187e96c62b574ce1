"""Live music: the ring regenerates the loop continuously while the player plays it.

Two threads share the work (`run`), and neither drops any:
- the engine thread ticks the ring; every completion is offered to the player;
- a feeder thread keeps the audio output a safe lead ahead, decoding only the block
  about to be heard.
(`step` does both on one thread, for deterministic tests.)

Changing the loop length starts a ring of the new shape (a RingSet), and so does a
prompt whose conditioning sequence has a new length (a complete ACE-Step folder's
length follows its token counts; live_conditioning.py); the old ring admits nothing
new but finishes (and plays) everything in flight, then is retired, so sweeping the
loop length or typing prompts does not pile up rings. Shrinking the ring's depth
compacts rows and drains the rest. So no admitted slot is ever discarded, and the
`discarded_slots` counter measures it rather than assumes it.

The folder's tasks play live too (the `task` parameter): a repaint redraws bars of the
loop playing (or of the --source file) and keeps the rest of it exactly; a cover redraws
it from its audio tokens. Each is built at admission as `demon render music` builds it.

Audio is the model's own format end to end: its sample rate and channels (48 kHz
stereo for ACE-Step 1.5) from the decode windows through the crossfade to the sink
and the taps (the web page), never normalised per block. The `gain` is applied where
samples leave for the device (output_stage.py), so it is heard one device block after
a change, not a decode lead later.
"""

from __future__ import annotations

import collections
import random
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from engine import InputError, Propagation, Ring, StateStore, StepState, request_from_state
from engine.onsets import OnsetTracker
from engine.ring_set import RingSet

from ..memory import release_freed_memory
from ..ring_streams import slot_view
from ..thread_priority import raise_priority
from ..timings import p50_p99_ms, quantile
from .live_conditioning import LiveConditioning
from .live_params import loop_frames, repaint_frames
from .models import MusicModels
from .player import Loop, LoopPlayer
from .render import source_latents
from .task_inputs import keep_source
from .tasks import MusicTask, check_task_strength

DEVICE_CONTROLS = frozenset({"gain"})  # output-class parameters applied at the device (output_stage.py)
BLOCK_FRAMES = 8  # latent frames decoded per output block (0.32 s at 25 frames/s)
MIN_LEAD_S = 0.3  # audio kept buffered ahead of the device at the least
LEAD_TICKS = 2.5  # ...and this many times the slowest recent work that holds the output back
# A new loop is spliced in this many times its slowest recent splice render ahead of the
# device; a render that still ends too late is thrown away and tried again further ahead,
# so the margin can be thin: it never costs an underflow.
SPLICE_MARGIN = 1.25
LINK_TOLERANCE_S = 0.02  # drift from Link's timeline corrected by a jump of the playhead


@dataclass
class LiveCounters:
    ticks: int = 0
    completions: int = 0
    blocks: int = 0  # blocks rendered and written (spliced ones included)
    deadline_misses: int = 0  # blocks that took longer to decode than the audio buffered ahead of them
    rings: int = 0  # rings created (one per loop or conditioning length that found no live ring of it)
    link_jumps: int = 0  # playhead moves onto Link's timeline
    swaps_spliced: int = 0  # new loops spliced in ahead of the buffered audio (written over it)
    splices_late: int = 0  # splice renders thrown away: the device reached the splice first


class BeatClock(Protocol):
    """A shared beat timeline (Ableton Link) that bar-aligned loops lock to."""

    def follow_tempo(self) -> None: ...

    def position(self, seconds_ahead: float, sample_rate: int) -> int: ...


class LiveMusic:
    """Reads its StateStore (a LIVE_MUSIC_PARAMS registry) and reports what it plays to
    `onsets`; whoever writes the store records its changes there."""

    tempo_param = "bpm"  # the parameter a tempo sync drives

    def __init__(self, models: MusicModels, sink, store: StateStore, onsets: OnsetTracker, *,
                 source: Path | None = None, max_batch: int | None = None):
        self.models = models
        self.sink = sink
        self.store = store
        self.onsets = onsets
        self.triggers = {"retake": self._retake, "reset_counters": self.reset_counters}
        self.codec = models.codec
        self.sample_rate = self.codec.sample_rate
        self.channels = self.codec.audio_channels
        if sink.config.channels != self.channels:
            raise ValueError(f"the sink plays {sink.config.channels} channels, the model gives {self.channels}")
        self.block = BLOCK_FRAMES * self.codec.geometry.hop
        self.denoiser = models.denoiser
        self.max_batch = max_batch
        self.player = LoopPlayer(models.decode, self.codec.geometry, self.channels)
        self.counters = LiveCounters()
        self.tick_seconds: collections.deque[float] = collections.deque(maxlen=100_000)  # every tick, for benchmarks
        self._recent_ticks: collections.deque[float] = collections.deque(maxlen=256)  # for the lead
        self._slow_tick = 0.0  # p99 of the recent ticks
        self._tick_max = 0.0  # the slowest tick since the counters were reset
        self._shape: tuple[int, ...] = ()  # (live rings, depth, loop frames) at the last tick
        self._recent_decodes: collections.deque[float] = collections.deque(maxlen=64)  # of blocks that decoded
        self._slow_decode = 0.0
        self._recent_splices: collections.deque[float] = collections.deque(maxlen=32)  # splice render seconds
        self._contiguous_from = 0  # ring index since which the output is one stretch of the timeline
        self._source_path = source
        self._source_cache: dict[int, torch.Tensor] = {}
        self.conditioning = LiveConditioning(models)
        state = self.store.snapshot
        # the text length of the newest request made: with the loop length, the ring it goes to
        self._length = self.conditioning.request(state, loop_frames(state, self.codec.frame_rate)).length
        self.rings = RingSet(self._new_ring)
        self.link: BeatClock | None = None  # bar-aligned loops lock to its beat
        # callables(samples, sample_rate) given the audio the device played, (n,) or (n, channels), at the
        # device's rate and gain (the web page's audio)
        self.taps: list = []
        self.rings.use(self._key(state)).factory = self._factory
        self._current_latent: torch.Tensor | None = None  # normalised (T, C), the source of strength < 1
        self._kept: dict[int, tuple[torch.Tensor, tuple[int, int]]] = {}  # repaints in flight: source, window
        sink.output.source = self._output_controls
        if not sink.can_splice:
            print(f"audio output resampled ({self.sample_rate} -> {sink.device_rate} Hz): a new loop waits behind "
                  "the decode lead instead of being swapped in ahead of it", file=sys.stderr, flush=True)
        self._tapped = 0  # frames of device output already handed to the taps
        self._stamps_seen = 0  # the device's version stamps already turned into onsets

    def _output_controls(self) -> tuple[float, int]:
        """The gain the device applies to its next block (called from the audio callback:
        one lock-free read of the newest snapshot)."""
        state = self.store.snapshot
        return state["gain"], state.version

    # ---- controls ----------------------------------------------------------------------

    def _retake(self) -> dict[str, int]:
        return {"seed": random.randrange(2**31 - 1)}  # published by the caller, like any change

    def reset_counters(self) -> None:
        self.counters = LiveCounters(rings=len(self.rings))
        self.tick_seconds.clear()
        self._tick_max = 0.0
        self._recent_ticks.clear()
        self.player.superseded = 0

    # ---- rings and requests ----------------------------------------------------------------

    @property
    def ring(self) -> Ring:
        """The ring of the current loop length (older ones may still be draining)."""
        return self.rings.current

    def _key(self, state: StepState) -> tuple[int, int, int]:
        """A ring's key: loop frames, latent channels and the conditioning's text length."""
        return loop_frames(state, self.codec.frame_rate), self.codec.channels, self._length

    def _new_ring(self, key: tuple[int, ...]) -> Ring:
        frames, channels, length = key
        null = self.conditioning.null(length)
        ring = Ring(self.denoiser, (frames, channels), store=self.store, null_cond=null, max_batch=self.max_batch)
        self.counters.rings += 1
        return ring

    def _factory(self, state: StepState):
        frames = loop_frames(state, self.codec.frame_rate)
        if frames != self.ring.frames:
            return None  # the next engine step switches rings
        task = MusicTask(state["task"])
        check_task_strength(task, state["strength"])
        window = repaint_frames(state, self.codec.frame_rate, frames) if task is MusicTask.REPAINT else None
        source = None
        if task.needs_source or state["strength"] < 1.0:
            source = self._source(frames)
            if source is None:
                field = "task" if task.needs_source else "strength"
                raise InputError(field, "needs a source: a --source file or a loop already playing")
        # encoded here, at admission, or found cached
        rows = (self.conditioning.request(state, frames) if not task.needs_source
                else self.conditioning.from_source(state, task, self.codec.denormalize(source), window))
        if rows.length != self.rings.key[2]:
            self._length = rows.length
            return None  # a new text length: the next engine step switches rings
        if not task.needs_source:
            return request_from_state(state, cond=rows.cond, cond_b=rows.cond_b, source=source)
        request = request_from_state(state, cond=rows.cond, cond_b=rows.cond_b)
        if window is not None:
            self._kept[request.id] = (source, window)
        return request

    def _source(self, frames: int) -> torch.Tensor | None:
        """The file source, or else the loop now playing, fitted to `frames` by tiling."""
        if self._source_path is not None:
            if frames not in self._source_cache:
                self._source_cache[frames] = source_latents(self.models, self._source_path, frames)
            return self._source_cache[frames]
        if self._current_latent is None:
            return None
        index = torch.arange(frames) % self._current_latent.shape[0]
        return self._current_latent.index_select(0, index)

    # ---- the engine loop -------------------------------------------------------------------

    def target_lead(self, threaded: bool = False) -> float:
        """Audio to keep buffered: enough to ride out the slowest recent work that can
        hold the output back: a block's decode when a feeder thread runs beside the
        ticks, a whole tick when one thread does both."""
        slow = self._slow_decode if threaded else max(self._slow_tick, self._slow_decode)
        ceiling = 0.8 * self.sink.ring.capacity / self.sink.device_rate
        return min(ceiling, max(MIN_LEAD_S, LEAD_TICKS * slow + self.block / self.sample_rate))

    def splice_ahead_s(self) -> float:
        """How far ahead of the device a new loop is spliced in: far enough for its render
        to end first (a cold engine, with no splice timed yet, takes the lead's floor)."""
        if not self._recent_splices:
            return MIN_LEAD_S
        return SPLICE_MARGIN * max(self._recent_splices)

    def _splice(self) -> bool:
        """A waiting loop is heard now, not a lead later: its first block is rendered,
        crossfaded in from the audio already buffered at a point just ahead of the device,
        and written over the buffered audio from there on. False when nothing was done:
        no loop waits, too little is buffered to splice into (the next block swaps it in),
        or a resampler sits in the path."""
        if not (self.sink.can_splice and self.player.swap_waiting()):
            return False
        state = self.store.snapshot
        ring = self.sink.ring
        fade = int(state["crossfade_ms"] * self.sample_rate / 1000.0)
        n = max(self.block, fade)
        written = ring.written
        # past the blocks the device may be copying, by the render's margin
        ahead = 2 * self.sink.blocksize + int(self.splice_ahead_s() * self.sink.device_rate)
        start = max(ring.played + ahead, self._contiguous_from)
        if start + fade > written or start + n - ring.played > ring.capacity:
            return False
        at = self.player.position - (written - start)  # the timeline position of ring index `start`
        if self._off_link(at, (start - ring.played) / self.sink.device_rate + self.sink.latency_s, state):
            return False  # the next block jumps back onto Link's beat and swaps the loop in there
        t0 = time.perf_counter()
        spliced = self.player.splice(at, ring.peek(start, fade), n)
        if spliced is None:
            return False
        samples, loop = spliced
        self._recent_splices.append(time.perf_counter() - t0)
        if not self.sink.replace(start, samples):  # the device got there during the render
            self.player.restore(loop)
            self.counters.splices_late += 1
            return True
        self.player.commit(at, n, loop, fade)
        heard_at = time.perf_counter() + (start - ring.played) / self.sink.device_rate + self.sink.latency_s
        self.counters.swaps_spliced += 1
        self.counters.blocks += 1
        self._report_device()
        self._forward_taps()
        self._heard(state, loop, heard_at)
        return True

    def _feed_some(self, lead_wanted: float) -> bool:
        """Feed what is due: a waiting loop spliced in, or a block when the lead is short.
        False when nothing was."""
        if self._splice():
            return True
        if self.sink.lead_s() < lead_wanted:
            self._feed()
            return True
        return False

    def step(self) -> str:
        """One unit of single-threaded engine work: 'fed', 'ticked' or 'idle' (tests use this)."""
        if self._feed_some(self.target_lead()):
            return "fed"
        if self._tick():
            return "ticked"
        return "idle"

    def _feed(self) -> None:
        """Render and queue the next block."""
        n = self.block
        if self.sink.ring.free() < n * self.sink.device_rate // self.sample_rate + 64:
            return  # the output is full; rendering now would move the playhead past unplayed audio
        lead = self.sink.lead_s()
        if self.link is not None:
            self._follow_link(lead)
        state = self.store.snapshot
        crossfade = int(state["crossfade_ms"] * self.sample_rate / 1000.0)
        decoding = self.player.current is not None or self.player.swap_waiting()
        t0 = time.perf_counter()
        samples, started = self.player.render(n, crossfade)
        decode_s = time.perf_counter() - t0
        if self.counters.blocks and decode_s > lead:
            self.counters.deadline_misses += 1  # the device ran out before this block was ready
        if decoding:  # silence before the first loop costs nothing and says nothing of a decode
            self._recent_decodes.append(decode_s)
            self._slow_decode = max(self._recent_decodes)
        self.sink.write(samples)
        heard_at = time.perf_counter() + lead
        self.counters.blocks += 1
        self._report_device()
        self._forward_taps()
        self._heard(state, started, heard_at)

    def _heard(self, state: StepState, started: Loop | None, heard_at: float) -> None:
        """Onsets of what a written block carries: the crossfade (read when a swap's first
        block is rendered) and, where a loop starts in it, the changes that loop carries."""
        self.onsets.heard(Propagation.OUTPUT, state.version, heard_at, only=lambda n: n not in DEVICE_CONTROLS)
        if started is not None:
            self.onsets.heard(Propagation.STEP, started.final_version, heard_at)
            self.onsets.heard(Propagation.FRAME, started.final_version, heard_at)
            self.onsets.heard(Propagation.REQUEST, started.request_version, heard_at)

    def _forward_taps(self) -> None:
        """Hand the taps what the device has played since the last call, at the device's
        rate and gain: the page hears what the device hears, never audio a swap took back."""
        if not self.taps:
            self._tapped = self.sink.ring.played
            return
        frames, self._tapped = self.sink.ring.played_since(self._tapped)
        if len(frames):
            samples = (frames[:, 0] if self.channels == 1 else frames) * self.store.snapshot["gain"]
            for tap in self.taps:
                tap(samples, self.sink.device_rate)

    def _report_device(self) -> None:
        """Onsets of the controls the device applies: heard when the first block that
        carried them leaves, plus the device's own latency."""
        stamps, self._stamps_seen = self.sink.output.heard_since(self._stamps_seen)
        if not stamps and self.sink.output.heard is not None:
            # again (resolving is idempotent): a change recorded just after its version's
            # first block left is still resolved at that block
            stamps = [self.sink.output.heard]
        for version, at in stamps:
            self.onsets.heard(Propagation.OUTPUT, version, at + self.sink.latency_s, only=DEVICE_CONTROLS.__contains__)

    def _off_link(self, position: int, seconds_ahead: float, state: StepState) -> bool:
        """Would audio written at `position` play off Link's timeline (bar-aligned loops only)?"""
        if self.link is None or state["loop_bars"] == 0:
            return False
        return abs(self.link.position(seconds_ahead, self.sample_rate) - position) > LINK_TOLERANCE_S * self.sample_rate

    def _follow_link(self, lead: float) -> None:
        """Keep the playhead on Link's timeline so bar-aligned loops start on its bars."""
        self.link.follow_tempo()
        if self._off_link(self.player.position, lead, self.store.snapshot):
            self.player.position = self.link.position(lead, self.sample_rate)  # at start or after a tempo change
            self._contiguous_from = self.sink.ring.written  # no splice reaches back across it
            self.counters.link_jumps += 1

    def _tick(self) -> bool:
        self.rings.use(self._key(self.store.snapshot))  # a new length: the old ring finishes what it holds
        t0 = time.perf_counter()
        if not self.rings.tick(self._complete):
            return False
        seconds = time.perf_counter() - t0
        shape = (len(self.rings), self.ring.depth, self.ring.frames)
        if shape != self._shape:  # a ring was born or retired: free the old one's tensors and pages
            self._shape = shape
            release_freed_memory()
        self.tick_seconds.append(seconds)
        self._tick_max = max(self._tick_max, seconds)
        self._recent_ticks.append(seconds)
        self._slow_tick = quantile(self._recent_ticks, 0.99)
        self.counters.ticks += 1
        return True

    def _complete(self, ring: Ring, completions) -> None:
        for completion in completions:
            final_version = ring.trace.last().state_version
            latent = completion.latent
            kept = self._kept.pop(completion.request.id, None)
            if kept is not None:  # a repaint: the source outside its window, exactly
                latent = keep_source(latent, *kept)
            self._current_latent = latent
            z = self.codec.denormalize(latent).T[None].contiguous()
            self.player.offer(Loop(z, completion.request.params_version, final_version, completion.request.id))
            self.counters.completions += 1

    def run(self, stop, status_every: float = 0.0, status_out=None) -> None:
        """Play until `stop` (a threading.Event) is set.

        A feeder thread keeps the output fed while this thread ticks the ring, so the
        lead (and with it every onset) need not cover a whole tick. The output starts
        once the first lead is buffered, so start-up is not an underflow.
        """
        while self.sink.lead_s() < self.target_lead(threaded=True) and self.sink.ring.free() > 2 * self.block:
            self._feed()
        feeder = threading.Thread(target=self._feed_loop, args=(stop,), name="feeder", daemon=True)
        self.sink.start()
        feeder.start()
        last = time.perf_counter()
        try:
            while not stop.is_set():
                if not self._tick():
                    time.sleep(0.005)
                if status_every and status_out is not None and time.perf_counter() - last >= status_every:
                    last = time.perf_counter()
                    print("\r" + self.status_line(), end="", file=status_out, flush=True)
        finally:
            stop.set()
            feeder.join(timeout=5.0)
            self.sink.stop()

    def _feed_loop(self, stop) -> None:
        raise_priority("audio feeder")  # it must win the CPU over the ticks and the rest of the machine
        block_s = self.block / self.sample_rate
        while not stop.is_set():
            if not self._feed_some(self.target_lead(threaded=True)):
                self.sink.keep_alive()
                self._report_device()
                self._forward_taps()
                self.player.arrived.wait(block_s / 4)  # a completion wakes it at once
                self.player.arrived.clear()

    def view(self) -> dict[str, Any]:
        """What a front-end draws: the ring's slots in their schedules and the completions so far,
        the loop playing (its request, where it faded in) and the playhead."""
        current, swap = self.player.current, self.player.last_swap
        period = current.frames * self.codec.geometry.hop if current is not None else 0
        return {"pipeline": "music",
                "ring": {"depth": self.ring.depth, "slots": slot_view([self.ring]),
                         "completed": self.rings.totals().completed},
                "sample_rate": self.sample_rate, "channels": self.channels, "playhead": self.player.position,
                "loop_samples": period, "loop_request": current.request_id if current is not None else None,
                "swap": None if swap is None else {"at": swap.at, "fade": swap.fade, "request": swap.request_id},
                "next_waiting": self.player.swap_waiting()}

    # ---- counters ----------------------------------------------------------------------

    def live_counters(self) -> dict[str, Any]:
        """The counters, with tick p50/p99 over the last 256 ticks (cheap enough for 10 Hz polling)."""
        tick_p50_ms, tick_p99_ms = p50_p99_ms(self._recent_ticks)
        totals = self.rings.totals()  # retired rings included
        counters = asdict(self.counters)
        counters.update(
            # admitted work that neither finished nor is running
            discarded_slots=totals.admitted - totals.completed - self.rings.occupied,
            superseded=self.player.superseded,
            underflows=self.sink.underflows,
            device_lost=self.sink.device_lost,
            device_reopened=self.sink.device_reopened,
            device_rate=self.sink.device_rate,  # differs from the model's where the device's default was taken
            starved_blocks=self.sink.starved,
            ring_fill=f"{self.ring.occupied}/{self.ring.depth}",
            queued=self.ring.queued,
            rejected_requests=totals.rejected,
            tick_p50_ms=tick_p50_ms,
            tick_p99_ms=tick_p99_ms,
            tick_max_ms=round(1000 * self._tick_max, 1),
            lead_s=round(self.sink.lead_s(), 3),
            lead_target_s=round(self.target_lead(threaded=True), 3),  # what the feeder keeps buffered
            onset_ms=self.onsets.onsets_ms(),
        )
        return counters

    def status_line(self) -> str:
        c = self.live_counters()
        onsets = c["onset_ms"]
        onset = " ".join(f"{k}={v:.0f}" for k, v in sorted(onsets.items())[:4])
        return (f"tick p50 {c['tick_p50_ms']} p99 {c['tick_p99_ms']} ms | fill {c['ring_fill']} | "
                f"lead {c['lead_s']:.2f}s | loops {c['completions']} | underflows {c['underflows']} "
                f"starved {c['starved_blocks']} misses {c['deadline_misses']} | onset ms {onset}")
