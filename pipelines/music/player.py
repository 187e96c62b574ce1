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


@dataclass(frozen=True)
class Swap:
    """Where the last loop came in: its first sample on the timeline, its crossfade length."""

    at: int
    fade: int
    request_id: int


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
        self.last_swap: Swap | None = None  # what a front-end draws: where the playing loop faded in
        self._next: Loop | None = None
        self._fade: _Fade | None = None
        self._lock = threading.Lock()  # offer() runs on the engine thread, render() on the feeder
        self.arrived = threading.Event()  # set by offer(): the feeder wakes to swap it in

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

    def splice(self, at: int, old: np.ndarray, n: int) -> tuple[np.ndarray, Loop] | None:
        """The waiting loop's samples [at, at + n), crossfaded in from `old`, the audio
        already written from `at` on (its length is the fade), for the output to write
        over what it buffered (a swap heard now, not a decode lead later).

        The waiting loop is taken but the player is unchanged until commit(at, n, loop);
        if the output could not take the splice, restore(loop) puts it back."""
        if self.current is None or not self.swap_waiting() or len(old) > n or at + len(old) > self.position:
            return None
        with self._lock:
            loop, self._next = self._next, None
        new = self._segment(loop, n, at)
        fade = len(old)
        if fade:
            g_out, g_in = self._equal_power(np.arange(fade) / fade)
            new[:fade] = g_out * old.reshape(self._block_shape(fade)) + g_in * new[:fade]
        return new, loop

    def commit(self, at: int, n: int, loop: Loop, fade: int = 0) -> None:
        """The output took a splice (crossfaded over `fade` samples): `loop` plays from `at`,
        and rendering goes on after it."""
        self.current, self.position = loop, at + n
        self.last_swap = Swap(at, fade, loop.request_id)

    def restore(self, loop: Loop) -> None:
        """A splice the output could not take: its loop waits again (unless a newer one came)."""
        with self._lock:
            if self._next is None:
                self._next = loop
            else:
                self.superseded += 1

    def render(self, n: int, crossfade_samples: int) -> tuple[np.ndarray, Loop | None]:
        """The next `n` samples, and the loop that became audible in them (if one did)."""
        started = None
        if self._fade is None and self._next is not None:
            with self._lock:
                started, self._next = self._next, None
            if self.current is None:
                self.current = started
                self.last_swap = Swap(self.position, 0, started.request_id)
            else:
                self._fade = _Fade(self.current, started, 0, max(1, crossfade_samples))
                self.last_swap = Swap(self.position, self._fade.total, started.request_id)
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
        g_out, g_in = self._equal_power(np.clip((fade.done + np.arange(n)) / fade.total, 0.0, 1.0))
        old = self._segment(fade.old, n) if fade.done < fade.total else 0.0
        out = g_out * old + g_in * self._segment(fade.new, n)
        fade.done += n
        if fade.done >= fade.total:
            self.current, self._fade = fade.new, None
        return out

    def _equal_power(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gains of the old and new loop at fade positions t in [0, 1], one per frame on every channel."""
        if self.channels > 1:
            t = t[:, None]
        return np.cos(0.5 * math.pi * t), np.sin(0.5 * math.pi * t)

    def _segment(self, loop: Loop, n: int, at: int | None = None) -> np.ndarray:
        """Samples [at, at + n) of `loop` tiled forever (at the playhead by default)."""
        at = self.position if at is None else at
        period = loop.frames * self.geometry.hop
        out = np.empty(self._block_shape(n), np.float32)
        done = 0
        while done < n:  # blocks longer than the loop wrap several times
            start = (at + done) % period
            take = min(n - done, period)
            window = decode_loop_window(self.decode, loop.latents, start, start + take, self.geometry)[0].numpy()
            if window.shape[0] != self.channels:
                raise ValueError(f"the decoder gives {window.shape[0]} audio channels, the player plays {self.channels}")
            out[done : done + take] = window[0] if self.channels == 1 else window.T
            done += take
        return out

    def _block_shape(self, n: int) -> tuple[int, ...]:
        return (n,) if self.channels == 1 else (n, self.channels)
