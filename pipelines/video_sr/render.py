"""Headless video SR: a file (or any PyAV source) in, an H.264 file out, frame by frame."""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from ..video_io import VideoReader, VideoWriter, WriterThread
from .checkpoint import VideoSRModels
from .stream import StreamingSR, default_state

Progress = Callable[[str, int, int], None]  # (stage, done, total); total 0 when unknown


@dataclass(frozen=True)
class RenderStats:
    frames: int
    seconds: float  # wall time
    first_frame_s: float  # from the first LR frame read to the first HR frame written
    stages_ms: dict[str, float] = field(default_factory=dict)  # milliseconds per frame of each stage

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def render_video_sr(models: VideoSRModels, source: Path | str, out: Path, params: Mapping[str, Any] | None = None,
                    progress: Progress | None = None, *, source_format: str | None = None,
                    max_frames: int | None = None) -> RenderStats:
    """Super-resolve every frame of `source` into `out`. The output keeps the input's
    timestamps; it appears under its name only when complete. Encoding runs on its own
    thread beside the SR (its stages' times overlap the others' in the stats)."""
    store = default_state(models)
    if params:
        store.update(params)  # validated by the registry: InputError names the parameter
    sr = StreamingSR(models, store)
    start = time.perf_counter()
    first = None
    times: collections.deque[float] = collections.deque()  # timestamps of frames still in flight
    writer: WriterThread | None = None

    def emit(frames, rate) -> None:
        nonlocal first, writer
        for frame in frames:
            if writer is None:  # sized by the first output (HR = LR x scale: always even)
                writer = WriterThread(VideoWriter(out, frame.shape[1], frame.shape[0], rate, clock=sr.clock))
                first = time.perf_counter() - start
            writer.write(frame, times.popleft())

    with VideoReader(source, format=source_format, clock=sr.clock) as reader:
        try:
            for frame, t in reader:
                times.append(t)
                emit(sr.push(frame), reader.info.rate)
                if progress is not None:
                    total = reader.info.frames or 0
                    progress("frames", reader.frames_read, max(total, reader.frames_read) if total else 0)
                if max_frames is not None and reader.frames_read >= max_frames:
                    break
            emit(sr.flush(), reader.info.rate)
            if writer is not None:
                writer.close()
        except BaseException:  # nothing half-written is left looking complete
            if writer is not None:
                writer.abort()
            raise
    return RenderStats(sr.frames_out, time.perf_counter() - start, first or 0.0, sr.clock.ms_per_frame(sr.frames_out))
