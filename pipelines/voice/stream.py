"""Streaming voice conversion: audio in, converted audio out, a chunk at a time on the ring.

    samples --causal encoder (cached state)--> latents, normalised
    [context frames | chunk frames] --a Request: noised to `strength`, denoised toward
        the target speaker embedding, per-frame source blend--> converted window
    last crossfade+chunk frames --causal decoder from a saved state--> audio,
        crossfaded with the tail held back from the previous chunk

Each chunk is one slot of the ring; with k steps the ring holds k consecutive chunks
at different steps (depth follows steps), and chunks leave in order. A change of
chunk, context or crossfade size starts a ring of the new window shape at the next
cut (a RingSet); the old ring finishes what it holds, so nothing in flight is
dropped, and is then retired.

Latency (`latency()`), device excluded: the chunk (its last sample must arrive), plus
the crossfade held back, plus the compute of a chunk; the look-ahead is 0 (the
converter sees the chunk and the context before it, never audio after it). Chunks that
are quiet (below `vad_db`) or hold no speech skip the ring and come out as silence:
Silero's detector (vad.py) reads the input as it arrives, in 32 ms windows, and a chunk
passes while a window of the last HANGOVER_MS reached `speech_threshold`. The detector
never waits for audio (a chunk is judged on the windows complete when it is cut), so it
adds no algorithmic latency; its compute is part of the chunk's and reported apart. A
watchdog grows the chunk by a frame when the recent compute exceeds 80% of a chunk's
duration.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass

import numpy as np
import torch

from engine import Ring, StateStore, request_from_state
from engine.ring_set import RingSet

from ..ring_streams import InOrder, depth_follows_steps
from ..timings import quantile
from .checkpoint import VoiceModels
from .codec import HOP, LOOKAHEAD_SAMPLES, SAMPLE_RATE
from .params import VOICE_PARAMS
from .vad import WINDOW, SpeechDetector

FRAME_MS = 1000 * HOP // SAMPLE_RATE  # 10 ms
WATCHDOG_SHARE = 0.8  # compute above this share of the chunk's duration grows the chunk
# the stream starts after this much silence (the longest context), so its first chunks see
# the codec's state of silence, not of zeros inside the network
WARM_FRAMES = int(VOICE_PARAMS["context_ms"].maximum) // FRAME_MS
HANGOVER_MS = 200  # the speech gate stays open this long after the last speech window: word ends, short pauses


@dataclass
class VoiceCounters:
    chunks: int = 0
    gated: int = 0  # chunks passed as silence: quiet, or no speech
    no_speech: int = 0  # of those, the ones the speech detector closed
    nonfinite_input: int = 0  # chunks whose samples held NaN/inf, replaced by silence
    watchdog_grows: int = 0
    rings: int = 0


@dataclass(frozen=True)
class _Cut:
    """The window geometry of one chunk, fixed when it is cut."""

    chunk: int  # frames
    context: int
    crossfade: int


class StreamingVC:
    def __init__(self, models: VoiceModels, speaker: torch.Tensor, store: StateStore | None = None, *,
                 watchdog: bool = True):
        self.models = models
        self.speaker = speaker.detach().reshape(-1).float()
        self.store = store if store is not None else StateStore(VOICE_PARAMS)
        self.denoiser = models.denoiser
        self.counters = VoiceCounters()
        self.watchdog = watchdog  # off for offline renders, where falling behind costs nothing
        self.compute_s: collections.deque[float] = collections.deque(maxlen=64)
        self.vad_s: collections.deque[float] = collections.deque(maxlen=64)  # the detector's share of compute_s
        self.vad = SpeechDetector()
        # speech probabilities of the windows of the last HANGOVER_MS
        self._speech = collections.deque(maxlen=max(1, HANGOVER_MS * SAMPLE_RATE // (1000 * WINDOW)))
        self.rings = RingSet(self._new_ring)  # by window shape; an old one drains after a resize
        self._inbox = np.zeros(0, np.float32)
        self._source = collections.deque(maxlen=WARM_FRAMES)  # recent normalised source frames (C,)
        self._order: InOrder[tuple[_Cut, bool], torch.Tensor] = InOrder()  # chunks: (geometry, gated) -> window
        self._enc_state = None
        self._dec_state = None  # decoder state at the start of the held-back tail
        self._tail = np.zeros(0, np.float32)  # decoded samples held back for the next crossfade
        self._held = 0  # frames of tail the last cut will hold back
        self._warm_up(WARM_FRAMES)

    # ---- the stream ----------------------------------------------------------------------

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Mono float32 samples at 16 kHz in -> the converted samples now finished."""
        self._inbox = np.concatenate([self._inbox, np.asarray(samples, np.float32).reshape(-1)])
        out = []
        while True:
            cut = self._geometry()
            need = cut.chunk * HOP
            if self._inbox.size < need:
                break
            t0 = time.perf_counter()
            chunk, self._inbox = self._inbox[:need], self._inbox[need:]
            self._cut(chunk, cut)
            out += self._tick()
            self.compute_s.append(time.perf_counter() - t0)
            if self.watchdog:
                self._watchdog()
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def flush(self) -> np.ndarray:
        """The end of a stream: the last partial chunk (padded with silence, trimmed back),
        everything in flight and the held-back tail."""
        pad = -self._inbox.size % (self._geometry().chunk * HOP) if self._inbox.size else 0
        out = [self.push(np.zeros(pad, np.float32))] if pad else []
        self.rings.drain(lambda ring, done: out.extend(self._collect(done)))
        out.append(self._tail)
        self._tail = np.zeros(0, np.float32)
        audio = np.concatenate(out)
        return audio[: audio.size - pad]

    @property
    def delay(self) -> int:
        """Samples the output runs behind the input (the crossfade held back since the start)."""
        return self._delay

    def latency(self) -> dict[str, float]:
        """Algorithmic latency (chunk + overlap + look-ahead) plus compute, device excluded, in ms."""
        cut = self._geometry()
        compute = 1000 * float(np.median(self.compute_s)) if self.compute_s else 0.0
        algorithmic = (cut.chunk + cut.crossfade) * FRAME_MS
        vad = 1000 * float(np.median(self.vad_s)) if self.vad_s else 0.0
        return {"chunk_ms": cut.chunk * FRAME_MS, "overlap_ms": cut.crossfade * FRAME_MS,
                "lookahead_ms": 1000 * LOOKAHEAD_SAMPLES / SAMPLE_RATE,
                "algorithmic_ms": float(algorithmic), "compute_ms": compute, "vad_compute_ms": vad,
                "latency_ms": algorithmic + compute}

    # ---- internals ---------------------------------------------------------------------

    def _geometry(self) -> _Cut:
        """The next cut's window: its context reaches back over the tail the previous cut holds."""
        s = self.store.snapshot
        chunk = max(1, s["chunk_ms"] // FRAME_MS)
        context = max(1, s["context_ms"] // FRAME_MS, self._held)
        return _Cut(chunk, context, min(s["overlap_ms"] // FRAME_MS, context, chunk))

    def _warm_up(self, frames: int) -> None:
        """The stream starts after `frames` of silence: context and decoder state are real; the
        held-back tail is that silence, gated like any quiet chunk."""
        with torch.inference_mode():
            z, self._enc_state = self.models.encode(torch.zeros(1, 1, frames * HOP), None)
            self._source.extend(self.models.normalize(z[0]).T)
            xf = self._held = self._geometry().crossfade
            _, self._dec_state = self.models.decode(z[..., : frames - xf], None)
        self._tail = np.zeros(xf * HOP, np.float32)
        self._delay = self._tail.size

    def _speech_gate(self, chunk: np.ndarray) -> bool:
        """True where the chunk is to be gated for holding no speech (the detector reads it either way,
        so that its state follows the input when it is turned back on)."""
        t0 = time.perf_counter()
        self._speech.extend(self.vad.push(chunk))
        self.vad_s.append(time.perf_counter() - t0)
        threshold = self.store.snapshot["speech_threshold"]
        return threshold > 0 and not any(p >= threshold for p in self._speech)

    def _cut(self, chunk: np.ndarray, cut: _Cut) -> None:
        if not np.isfinite(chunk).all():
            self.counters.nonfinite_input += 1
            chunk = np.zeros_like(chunk)
        rms = float(np.sqrt(np.mean(chunk.astype(np.float64) ** 2)))
        no_speech = self._speech_gate(chunk)
        gated = no_speech or 20 * np.log10(rms + 1e-12) < self.store.snapshot["vad_db"]
        self.counters.no_speech += no_speech
        with torch.inference_mode():
            z, self._enc_state = self.models.encode(torch.from_numpy(chunk)[None, None], self._enc_state)
        frames = self.models.normalize(z[0])  # (C, N)
        context = list(self._source)[-cut.context :]
        window = torch.cat([torch.stack(context, dim=1), frames], dim=1)
        self._source.extend(frames.T)
        number = self._order.enter((cut, gated))
        self._held = cut.crossfade
        self.counters.chunks += 1
        if gated:  # no conversion: the source goes to the decoder only to keep its state going
            self.counters.gated += 1
            self._order.finish(number, window)
            return
        ring = self.rings.use((self.models.latent_mean.numel(), window.shape[1]))
        state = self.store.snapshot
        request = request_from_state(state, cond={"speaker": self.speaker}, source=window,
                                     seed=(state["seed"] + number) % 2**31)  # fresh noise every chunk
        ring.submit(request)
        self._order.awaits(number, request.id)

    def _new_ring(self, shape: tuple[int, ...]) -> Ring:
        ring = Ring(self.denoiser, shape, store=self.store, frame_dim=1,
                    null_cond={"speaker": torch.zeros_like(self.speaker)})
        self.counters.rings += 1
        return ring

    def _tick(self) -> list[np.ndarray]:
        depth_follows_steps(self.store)
        out: list[np.ndarray] = []
        self.rings.tick(lambda ring, done: out.extend(self._collect(done)))
        return out + self._collect([])

    def _collect(self, completions) -> list[np.ndarray]:
        for c in completions:
            self._order.complete(c, c.latent)
        # the decoder is causal with state: strictly in order
        return [self._decode(window, cut, silent=gated) for (cut, gated), window in self._order.release()]

    def _decode(self, window: torch.Tensor, cut: _Cut, *, silent: bool) -> np.ndarray:
        """Decode [crossfade | chunk] frames from the state saved before the tail, crossfade
        the tail held back, hold back the new tail."""
        xf, n = len(self._tail) // HOP, cut.chunk
        z = self.models.denormalize(window[:, window.shape[1] - n - xf :])[None]
        with torch.inference_mode():
            body, self._dec_state = self.models.decode(z[..., : n + xf - cut.crossfade], self._dec_state)
            tail, _ = self.models.decode(z[..., n + xf - cut.crossfade :], self._dec_state)
        # each chunk's audio carries its own gain; the held-back tail already has its chunk's
        gain = 0.0 if silent else self.store.snapshot["gain"]
        body, tail = body.reshape(-1).numpy() * gain, tail.reshape(-1).numpy() * gain
        if xf:
            fade = np.sin(0.5 * np.pi * (np.arange(xf * HOP) + 0.5) / (xf * HOP)).astype(np.float32) ** 2
            body[: xf * HOP] = fade * body[: xf * HOP] + (1.0 - fade) * self._tail
        self._tail = tail
        return body

    def _watchdog(self) -> None:
        budget = self._geometry().chunk * FRAME_MS / 1000.0
        recent = quantile(self.compute_s, 0.9)
        limit = VOICE_PARAMS["chunk_ms"].maximum
        if len(self.compute_s) >= 8 and recent > WATCHDOG_SHARE * budget and self.store.snapshot["chunk_ms"] < limit:
            self.store.set("chunk_ms", self.store.snapshot["chunk_ms"] + FRAME_MS, clamp=True)
            self.counters.watchdog_grows += 1
            self.compute_s.clear()  # judge the new size on its own
