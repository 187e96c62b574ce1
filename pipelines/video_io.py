"""Video through PyAV, one frame at a time: read anything FFmpeg reads, write H.264 atomically.

Reading yields (RGB frame, presentation time in seconds) and never holds more than
the decoder's own buffers, so memory stays flat however long the input is. Times are
kept: a variable-frame-rate input gives an output with the same timestamps. Writing
goes to a temporary name beside the target and is renamed only when complete; a
failed or interrupted write leaves nothing that looks finished.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from engine.files import StagedFile

from .errors import MediaFileError
from .stage_clock import StageClock

TIME_BASE = Fraction(1, 90_000)  # MPEG's clock: fine enough for any input's timestamps
DEFAULT_RATE = Fraction(25)
OUTPUT_SUFFIXES = (".mp4", ".mkv", ".mov")


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    rate: Fraction  # average frame rate (the nominal one where the container gives none)
    frames: int | None  # from the container, when it knows
    seconds: float | None


class VideoReader:
    """Frames of the first video stream of a file, a device (v4l2) or a lavfi graph."""

    def __init__(self, source: str | Path, *, format: str | None = None, clock: StageClock | None = None):
        import av

        self.source = str(source)
        self.clock = clock if clock is not None else StageClock()  # "decode" and "colour" (to RGB)
        try:
            self._container = av.open(self.source, format=format)
        except (av.FFmpegError, OSError) as err:
            raise MediaFileError(f"{source}: cannot open ({_reason(err)})") from None
        if not self._container.streams.video:
            self._container.close()
            raise MediaFileError(f"{source}: has no video stream")
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        self._stream = stream
        rate = stream.average_rate or stream.guessed_rate or DEFAULT_RATE
        seconds = (float(stream.duration * stream.time_base) if stream.duration
                   else self._container.duration / 1e6 if self._container.duration else None)
        self.info = VideoInfo(stream.codec_context.width, stream.codec_context.height, Fraction(rate),
                              stream.frames or None, seconds)
        self.frames_read = 0

    def __iter__(self) -> Iterator[tuple[np.ndarray, float]]:
        import av

        last = None
        frames = self._container.decode(self._stream)
        try:
            while True:
                with self.clock("decode"):
                    frame = next(frames, None)
                if frame is None:
                    break
                t = frame.time
                if t is None:  # no timestamp: place it one nominal frame after the last
                    t = 0.0 if last is None else last + 1.0 / float(self.info.rate)
                last = t
                self.frames_read += 1
                with self.clock("colour"):
                    rgb = frame.to_ndarray(format="rgb24")
                yield rgb, t
        except av.FFmpegError as err:
            raise MediaFileError(f"{self.source}: cannot decode frame {self.frames_read} ({_reason(err)})") from None
        if self.frames_read == 0:
            raise MediaFileError(f"{self.source}: the video stream has no frames")

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class VideoWriter:
    """H.264 (yuv420p) into mp4/mkv/mov; frames carry their own times."""

    def __init__(self, path: Path | str, width: int, height: int, rate: Fraction = DEFAULT_RATE, *, crf: int = 18,
                 clock: StageClock | None = None):
        import av

        self.path = Path(path)
        self.clock = clock if clock is not None else StageClock()  # "colour" (to YUV) and "encode"
        if self.path.suffix.lower() not in OUTPUT_SUFFIXES:
            raise MediaFileError(f"{path}: unsupported output format (use {', '.join(OUTPUT_SUFFIXES)})")
        if not self.path.parent.is_dir():
            raise MediaFileError(f"{path}: folder {self.path.parent} does not exist")
        if width % 2 or height % 2:
            raise MediaFileError(f"{path}: H.264 yuv420p needs even sizes, got {width}x{height}")
        self._file = StagedFile(self.path)
        try:
            container_format = self.path.suffix.lower().lstrip(".").replace("mkv", "matroska")
            self._container = av.open(str(self._file.tmp), mode="w", format=container_format)
            self._stream = self._container.add_stream("libx264", rate=rate)
            self._stream.width, self._stream.height = width, height
            self._stream.pix_fmt = "yuv420p"
            self._stream.time_base = TIME_BASE
            self._stream.codec_context.time_base = TIME_BASE
            self._stream.options = {"crf": str(crf), "preset": "veryfast"}
        except BaseException:
            self._file.discard()
            raise
        self._last_pts = -1
        self.frames = 0

    def write(self, frame: np.ndarray, seconds: float) -> None:
        import av

        with self.clock("colour"):  # what the encoder would do itself, done here to be timed apart
            video = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24").reformat(format="yuv420p")
        pts = max(round(seconds / TIME_BASE), self._last_pts + 1)  # strictly increasing, whatever the input
        video.pts, video.time_base = pts, TIME_BASE
        self._last_pts = pts
        try:
            with self.clock("encode"):
                for packet in self._stream.encode(video):
                    self._container.mux(packet)
        except OSError as err:  # a full disk or a file-size limit: the partial file goes, one line says why
            self.abort()
            raise self._cannot_write(err) from None
        self.frames += 1

    def close(self) -> Path:
        """Finish the file and give it its name."""
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
            self._file.commit()
        except OSError as err:
            self.abort()
            raise self._cannot_write(err) from None
        except BaseException:
            self.abort()
            raise
        return self.path

    def _cannot_write(self, err: OSError) -> MediaFileError:
        return MediaFileError(f"cannot write {self.path}: {_reason(err)}")

    def abort(self) -> None:
        """Drop the partial file."""
        try:
            self._container.close()
        except Exception:  # noqa: BLE001 - the file is being thrown away
            pass
        self._file.discard()


class WriterThread:
    """A VideoWriter fed from its own thread, so that encoding frame t overlaps the work on
    frame t + 1 (PyAV releases the GIL while FFmpeg converts and encodes). At most `depth`
    frames wait: a slower encoder holds the producer back instead of growing a queue. An
    error in the thread is raised at the next write or at close; nothing is lost silently."""

    def __init__(self, writer: VideoWriter, depth: int = 2):
        self.writer = writer
        self.path = writer.path
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="video-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:  # after an error the rest is drained, not written
                try:
                    self.writer.write(*item)
                except BaseException as err:  # noqa: BLE001 - handed to the producer's thread
                    self._error = err

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def write(self, frame: np.ndarray, seconds: float) -> None:
        self._raise()
        self._queue.put((frame, seconds))

    def close(self) -> Path:
        self._queue.put(None)
        self._thread.join()
        self._raise()
        return self.writer.close()

    def abort(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self.writer.abort()

    @property
    def frames(self) -> int:
        return self.writer.frames


def _reason(err: Exception) -> str:
    return getattr(err, "strerror", None) or str(err).splitlines()[0]
