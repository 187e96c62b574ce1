"""Live video SR: a source played in real time through the streaming SR, previews to taps.

The source is a file (looped), a camera (v4l2 through PyAV) or an FFmpeg graph (a
low-resolution generator). Frames are taken at the source's own clock; when the SR
cannot keep up, it always takes the newest frame the source has shown and skips (and
counts) the older ones, so the output stays live instead of drifting behind. Each finished frame goes to the taps as
a JPEG preview at a bounded rate (the web page's video view). The caller hands it the
StateStore its controls write (`default_state(models)`) and the OnsetTracker they
record changes in; each frame out reports the versions it carries there.
"""

from __future__ import annotations

import collections
import io
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

from engine import InputError, Propagation, StateStore
from engine.onsets import OnsetTracker

from ..ring_streams import slot_view
from ..timings import p50_p99_ms
from ..video_io import VideoReader
from .checkpoint import VideoSRModels
from .stream import StreamingSR

Tap = Callable[[bytes], None]


@dataclass
class LiveVideoCounters:
    frames_in: int = 0  # source frames pushed through the SR
    frames_out: int = 0
    skipped: int = 0  # source frames left out to stay live when the SR fell behind
    bad_frames: int = 0  # frames the stream refused (counted, skipped; the stream goes on)
    previews: int = 0  # JPEG previews handed to the taps
    loops: int = 0  # times a file source started over


class LiveVideoSR:
    def __init__(self, models: VideoSRModels, source: str, store: StateStore, onsets: OnsetTracker, *,
                 source_format: str | None = None, loop: bool = True, preview_hz: float = 10.0,
                 preview_width: int = 960):
        self.models = models
        self.source, self.source_format, self.loop = source, source_format, loop
        self.store = store
        self.onsets = onsets
        self.triggers = {"reset_counters": self.reset_counters}
        self.sr = StreamingSR(models, self.store)
        self.taps: list[Tap] = []
        self.counters = LiveVideoCounters()
        self.preview_period = 1.0 / preview_hz
        self.preview_width = preview_width
        self.frame_seconds: collections.deque[float] = collections.deque(maxlen=256)
        self._last_preview = 0.0

    def reset_counters(self) -> None:
        self.counters = LiveVideoCounters()
        self.frame_seconds.clear()

    def run(self, stop: threading.Event, *, max_frames: int | None = None) -> None:
        """Play the source until `stop` (or its end, when not looping)."""
        while not stop.is_set():
            with VideoReader(self.source, format=self.source_format) as reader:
                self._play(reader, stop, max_frames)
            if not self.loop or (max_frames is not None and self.counters.frames_in >= max_frames):
                break
            self.counters.loops += 1

    def _play(self, reader: VideoReader, stop: threading.Event, max_frames: int | None) -> None:
        start = t0 = None
        period = 1.0 / float(reader.info.rate)
        for frame, t in reader:
            if stop.is_set() or (max_frames is not None and self.counters.frames_in >= max_frames):
                return
            now = time.perf_counter()
            if start is None:
                start, t0 = now, t
            due = start + (t - t0)  # when the source shows this frame
            if due + period < now:  # a newer frame is already out: take that one, stay live
                self.counters.skipped += 1
                continue
            if due > now:
                stop.wait(due - now)
            self._push(frame)

    def _push(self, frame: np.ndarray) -> None:
        t = time.perf_counter()
        try:
            outs = self.sr.push(frame)
        except InputError:
            self.counters.bad_frames += 1
            return
        self.counters.frames_in += 1
        self.frame_seconds.append(time.perf_counter() - t)
        if not outs:
            return
        self.counters.frames_out += len(outs)
        now = time.perf_counter()
        request_version, step_version = self.sr.carried
        self.onsets.heard(Propagation.REQUEST, request_version, now)
        self.onsets.heard(Propagation.STEP, step_version, now)
        self.onsets.heard(Propagation.FRAME, step_version, now)
        if self.taps and now - self._last_preview >= self.preview_period:
            self._last_preview = now
            jpeg = preview_jpeg(outs[-1], self.preview_width)
            self.counters.previews += 1
            for tap in self.taps:
                tap(jpeg)

    # ---- what front-ends read -------------------------------------------------------------

    def live_counters(self) -> dict[str, Any]:
        times = sorted(self.frame_seconds)
        frame_p50_ms, frame_p99_ms = p50_p99_ms(times)
        ring = self.sr.ring
        counters = asdict(self.counters)
        counters.update(
            frame_p50_ms=frame_p50_ms, frame_p99_ms=frame_p99_ms,
            fps=round(1.0 / times[len(times) // 2], 2) if times else None,
            ring_fill=f"{ring.occupied}/{ring.depth}" if ring is not None else "0/0",
            onset_ms=self.onsets.onsets_ms(),
        )
        return counters

    def view(self) -> dict[str, Any]:
        ring = self.sr.ring
        rings = [] if ring is None else [ring]
        return {"pipeline": "video_sr",
                "ring": {"depth": ring.depth if ring is not None else 0, "slots": slot_view(rings),
                         "completed": ring.counters.completed if ring is not None else 0},
                "scale": self.sr.scale}

    def status_line(self) -> str:
        c = self.live_counters()
        return (f"frame p50 {c['frame_p50_ms']} p99 {c['frame_p99_ms']} ms | {c['fps']} fps | in {c['frames_in']} "
                f"out {c['frames_out']} skipped {c['skipped']} | fill {c['ring_fill']}")


def preview_jpeg(frame: np.ndarray, width: int, quality: int = 80) -> bytes:
    """An (H, W, 3) uint8 frame as JPEG, at most `width` wide."""
    from PIL import Image

    image = Image.fromarray(frame)
    if image.width > width:
        image = image.resize((width, max(1, round(image.height * width / image.width))), Image.BILINEAR)
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
