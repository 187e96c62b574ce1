"""The loop player: decodes the current loop window by window as the playhead moves
and swaps a new completion in at the playhead with an equal-power crossfade.

Every loop shares one timeline: a loop of P samples plays its sample `pos % P` at
global position `pos`, so a new loop (even of another length) enters in time. Only
the samples about to be played are decoded (engine.windowed.decode_loop_window),
so the cost per block does not depend on the loop's length.

Blocks come in the decoder's own format: (n,) samples from a mono model, (n, channels)
frames from a stereo one (48 kHz stereo for ACE-Step 1.5), as the sample ring takes them.
The level is the decoder's: never normalised per block, so it cannot jump from one
block to the next (the gain is applied later, at the device: output_stage.py).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
import torch

from engine.windowed import Decode, DecoderGeometry, decode_loop_window


@dataclass(frozen=True)
class Loop:
    latents: torch.Tensor  # (1, C, T) decoder-ready (denormalised) latents
    request_version: int  # StepState version its request was born from
    final_version: int  # StepState version of the tick that finished it
    request_id: int = -1

    @property
    def frames(self) -> int:
        return int(self.latents.shape[-1])


@dataclass
class _Fade:
    old: Loop
    new: Loop
    done: int
    total: int


class LoopPlayer:
    def __init__(self, decode: Decode, geometry: DecoderGeometry, channels: int = 1):
        self.decode = decode
        self.geometry = geometry
        self.channels = channels  # audio channels the decoder gives
        self.current: Loop | None = None
        self.position = 0  # global playhead, in samples
        self.superseded = 0  # completions replaced by a newer one before they were heard
        self._next: Loop | None = None
        self._fade: _Fade | None = None
        self._lock = threading.Lock()  # offer() runs on the engine thread, render() on the feeder
        self.arrived = threading.Event()  # set by offer(): the feeder wakes to swap it in
        self.settled = 0  # the position where the last swap's crossfade ended: audio before it is final

    def offer(self, loop: Loop) -> None:
        """The newest completion waits to be swapped in at the next block."""
        with self._lock:
            if self._next is not None:
                self.superseded += 1
            self._next = loop
        self.arrived.set()

    def swap_waiting(self) -> bool:
        """A completion waits and no crossfade is under way: the next render swaps it in."""
        return self._next is not None and self._fade is None

    def rewindable(self) -> int:
        """Samples the playhead may move back: not into a crossfade already rendered,
        whose end would then be written over by the next swap's start."""
        return 0 if self._fade is not None else max(0, self.position - self.settled)

    def rewind(self, samples: int) -> None:
        """Move the playhead back over audio the output took back (sink.rewind), so the
        next render writes those positions again (with a waiting loop swapped in)."""
        if samples > self.rewindable():
            raise ValueError(f"cannot rewind {samples} samples: {self.rewindable()} are free of a crossfade")
        self.position -= samples

    def render(self, n: int, crossfade_samples: int) -> tuple[np.ndarray, Loop | None]:
        """The next `n` samples, and the loop that became audible in them (if one did)."""
        started = None
        if self._fade is None and self._next is not None:
            with self._lock:
                started, self._next = self._next, None
            if self.current is None:
                self.current = started
                self.settled = self.position
            else:
                self._fade = _Fade(self.current, started, 0, max(1, crossfade_samples))
        if self.current is None:
            self.position += n
            return np.zeros(self._block_shape(n), np.float32), started
        if self._fade is None:
            out = self._segment(self.current, n)
        else:
            out = self._crossfaded(n)
        self.position += n
        return out.astype(np.float32, copy=False), started

    def _crossfaded(self, n: int) -> np.ndarray:
        fade = self._fade
        t = (fade.done + np.arange(n)) / fade.total
        t = np.clip(t, 0.0, 1.0)
        if self.channels > 1:
            t = t[:, None]  # one gain per frame, on every channel
        g_out, g_in = np.cos(0.5 * math.pi * t), np.sin(0.5 * math.pi * t)
        old = self._segment(fade.old, n) if fade.done < fade.total else 0.0
        out = g_out * old + g_in * self._segment(fade.new, n)
        fade.done += n
        if fade.done >= fade.total:
            self.current, self._fade = fade.new, None
            self.settled = self.position + n - (fade.done - fade.total)  # where the fade ended
        return out

    def _segment(self, loop: Loop, n: int) -> np.ndarray:
        """Samples [position, position + n) of `loop` tiled forever."""
        period = loop.frames * self.geometry.hop
        out = np.empty(self._block_shape(n), np.float32)
        done = 0
        while done < n:  # blocks longer than the loop wrap several times
            start = (self.position + done) % period
            take = min(n - done, period)
            window = decode_loop_window(self.decode, loop.latents, start, start + take, self.geometry)[0].numpy()
            if window.shape[0] != self.channels:
                raise ValueError(f"the decoder gives {window.shape[0]} audio channels, the player plays {self.channels}")
            out[done : done + take] = window[0] if self.channels == 1 else window.T
            done += take
        return out

    def _block_shape(self, n: int) -> tuple[int, ...]:
        return (n,) if self.channels == 1 else (n, self.channels)
