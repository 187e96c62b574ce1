"""Audio output: a sounddevice callback stream or a clock-paced null sink, both fed
from a preallocated SampleRing, plus a streaming resampler for device-rate mismatches.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass

import numpy as np

from engine import InputError

from .audio_io import LAYOUTS
from .output_stage import OutputStage
from .sample_ring import SampleRing
from .thread_priority import raise_priority


BLOCK_SECONDS = 0.016  # a device block: the gain's onset is one of these plus the device latency
REOPEN_EVERY_S = 0.5  # how often a lost output device is tried again


def block_frames(rate: int, seconds: float = BLOCK_SECONDS) -> int:
    """The power of two of frames nearest `seconds` at `rate` (128 at 8 kHz, 1024 at 48 kHz)."""
    return 1 << max(4, round(np.log2(rate * seconds)))


@dataclass(frozen=True)
class OutputConfig:
    samplerate: int  # the rate the engine produces
    device: str | int | None = None  # sounddevice's device name or index; None: the default
    device_rate: int | None = None  # force a device rate (resampled); None: the engine rate if supported
    blocksize: int | None = None  # frames per device block; None: about BLOCK_SECONDS at the device rate
    latency: float | str = "high"  # seconds, or sounddevice's "low"/"high"
    buffer_seconds: float = 12.0
    channels: int = 1


class Resampler:
    """Streaming rate conversion through FFmpeg's swresample (PyAV); keeps its filter state.

    Takes and gives (n,) mono samples, or (n, channels) frames for more channels."""

    def __init__(self, src_rate: int, dst_rate: int, channels: int = 1):
        import av

        self.src_rate, self.dst_rate, self.channels = src_rate, dst_rate, channels
        self._av = av
        if channels not in LAYOUTS:
            raise InputError("channels", f"audio output plays 1 or 2 channels, got {channels}")
        self._layout = LAYOUTS[channels]
        self._resampler = av.AudioResampler(format="flt", layout=self._layout, rate=dst_rate)
        self._pts = 0

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        # packed float: one row of interleaved frames
        data = np.ascontiguousarray(samples, np.float32).reshape(1, -1)
        frame = self._av.AudioFrame.from_ndarray(data, format="flt", layout=self._layout)
        frame.sample_rate = self.src_rate
        frame.pts = self._pts
        self._pts += len(samples)
        shape = (-1,) if self.channels == 1 else (-1, self.channels)
        out = [f.to_ndarray().reshape(shape) for f in self._resampler.resample(frame)]
        return np.concatenate(out) if out else np.zeros((0, *shape[1:]), np.float32)


def say_default_rate(what: str, engine_rate: int, device_rate: int) -> None:
    """The one line said when a device does not take the engine's rate and its own default
    is used instead (resampled; the live counters show `device_rate`)."""
    print(f"{what}: {engine_rate} Hz is not taken; using the device default {device_rate} Hz, resampled",
          file=sys.stderr, flush=True)


def wait_until(deadline: float, period: float, stop: threading.Event) -> tuple[float, bool]:
    """Sleep until `deadline` (monotonic) unless stopped. A deadline missed by more than a
    period means the process was paused: it is reported and the clock restarts from now
    rather than rushing to catch up. Returns the deadline to continue from, and whether late."""
    delay = deadline - time.monotonic()
    if delay > 0:
        stop.wait(delay)
    elif delay < -period:
        return time.monotonic(), True
    return deadline, False


class _Sink:
    """What both sinks share: the sample ring, counters and rate handling."""

    def __init__(self, config: OutputConfig, device_rate: int):
        self.config = config
        self.device_rate = device_rate
        self.ring = SampleRing(int(config.buffer_seconds * device_rate), config.channels)
        self.resampler = (Resampler(config.samplerate, device_rate, config.channels)
                          if device_rate != config.samplerate else None)
        self.underflows = 0  # PortAudio's output-underflow flags (device-level underruns)
        self.played = 0  # blocks handed to the device
        self.latency_s = 0.0
        self.blocksize = config.blocksize or block_frames(device_rate)
        self.output = OutputStage(self.blocksize)  # gain, applied block by block on the way out
        self.device_lost = 0  # times the device vanished mid-run (the stream ended without being stopped)
        self.device_reopened = 0
        self.reopen_failures = 0  # tries, every REOPEN_EVERY_S, while it was gone

    def pull(self, block: np.ndarray) -> bool:
        """The consumer's side: fill a (frames, channels) block for the device (silence
        when starved) with the output-class controls applied; False when starved."""
        full = self.ring.read_into(block)
        self.output.apply(block)
        return full

    def write(self, samples: np.ndarray) -> int:
        """Queue engine-rate samples, (n,) or (n, channels); returns engine-rate frames
        accepted (all or none)."""
        data = self.resampler(samples) if self.resampler is not None else samples
        if len(data) > self.ring.free():
            return 0
        self.ring.write(data)
        return len(samples)

    @property
    def can_splice(self) -> bool:
        """Written audio can be taken back only where the ring holds engine-rate samples: a
        resampler's filter history would leave a gap and a click at the splice."""
        return self.resampler is None

    def replace(self, start: int, samples: np.ndarray) -> bool:
        """Write engine-rate samples over the audio written at ring index `start` on
        (sample_ring.replace), unless the device is within two of its blocks of it."""
        return self.can_splice and self.ring.replace(start, samples, 2 * self.blocksize)

    def lead_s(self) -> float:
        """Seconds of audio buffered ahead of the device, its own latency included."""
        return self.ring.available() / self.device_rate + self.latency_s

    @property
    def starved(self) -> int:
        return self.ring.starved

    def keep_alive(self) -> None:
        """The feeder calls this when it has nothing to write: a sink whose device can
        vanish reopens it here."""


class SoundDeviceSink(_Sink):
    def __init__(self, config: OutputConfig):
        import sounddevice as sd

        self._sd = sd
        rate = config.device_rate or config.samplerate
        try:
            sd.check_output_settings(device=config.device, samplerate=rate, channels=config.channels, dtype="float32")
        except Exception as err:  # noqa: BLE001 - PortAudio raises several types; all mean "not this setting"
            if config.device_rate is not None:
                raise InputError("samplerate", f"device {config.device!r} does not take {rate} Hz: {err}") from None
            rate = self._device_default_rate(config)
            say_default_rate(f"audio output {device_label(config.device)}", config.samplerate, rate)
        super().__init__(config, rate)
        self._generation = 0  # the stream that is meant to be playing; an older one's end is no loss
        self._lost = threading.Event()
        self._lost_at: float | None = None
        self._next_try = 0.0
        self._stopped = False
        self._device_lock = threading.Lock()  # keep_alive (the feeder) against stop (the engine's thread)
        self._stream = self._open()

    def _open(self):
        generation = self._generation
        stream = self._sd.OutputStream(samplerate=self.device_rate, blocksize=self.blocksize, device=self.config.device,
                                       channels=self.config.channels, dtype="float32", latency=self.config.latency,
                                       callback=self._callback, finished_callback=lambda: self._ended(generation))
        self.latency_s = float(stream.latency)
        return stream

    def _ended(self, generation: int) -> None:
        """PortAudio's thread: a stream ended. Unless it was stopped on purpose, the device
        went away (a PulseAudio or PipeWire sink unloaded or restarted, the server's device
        unplugged). PortAudio lists devices once, at start: a device it opens directly (an
        ALSA hw: interface) that is replugged is not found again until the process restarts."""
        if generation == self._generation:
            self._lost.set()

    def keep_alive(self) -> None:
        """Reopen a lost device, once every REOPEN_EVERY_S until it plays again. Meanwhile the
        ring keeps what was rendered: playing resumes where the device stopped."""
        if not self._lost.is_set():
            return
        with self._device_lock:
            if not self._stopped:
                self._reopen(time.monotonic())

    def _reopen(self, now: float) -> None:
        if self._lost_at is None:
            self._lost_at = now
            self.device_lost += 1
            print(f"audio output {device_label(self.config.device)} is gone; reopening it every "
                  f"{REOPEN_EVERY_S:g} s (rendered audio is kept)", file=sys.stderr, flush=True)
            self._close_quietly()
        if now < self._next_try:
            return
        self._next_try = now + REOPEN_EVERY_S
        self._generation += 1
        self._lost.clear()  # before start: a stream that dies at once sets it again
        try:
            self._stream = self._open()
            self._stream.start()
        except Exception:  # noqa: BLE001 - PortAudio raises several types; the device is not back yet
            self.reopen_failures += 1
            self._close_quietly()
            self._lost.set()
            return
        self.device_reopened += 1
        print(f"audio output {device_label(self.config.device)} reopened after {now - self._lost_at:.1f} s",
              file=sys.stderr, flush=True)
        self._lost_at = None

    def _close_quietly(self) -> None:
        try:
            self._stream.close()
        except Exception:  # noqa: BLE001 - the device is already gone
            pass

    def _device_default_rate(self, config: OutputConfig) -> int:
        try:
            info = self._sd.query_devices(config.device, "output")
            rate = int(info["default_samplerate"])
            self._sd.check_output_settings(device=config.device, samplerate=rate, channels=config.channels,
                                           dtype="float32")
        except Exception as err:  # noqa: BLE001
            raise InputError("device", f"cannot open audio output {config.device!r}: {err}") from None
        return rate

    def _callback(self, outdata, frames, time_info, status) -> None:
        if status.output_underflow:
            self.underflows += 1
        self.pull(outdata)
        self.played += 1

    def start(self) -> None:
        self._stream.start()

    def stop(self) -> None:
        with self._device_lock:
            self._stopped = True
            self._generation += 1  # this end is on purpose
            if self._lost.is_set():
                self._close_quietly()
                return
            self._stream.stop()
            self._stream.close()


class NullSink(_Sink):
    """Consumes blocks at the real-time rate on its own clock, for machines without audio."""

    def __init__(self, config: OutputConfig):
        super().__init__(config, config.device_rate or config.samplerate)
        self.latency_s = self.blocksize / self.device_rate
        self._block = np.zeros((self.blocksize, config.channels), dtype=np.float32)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="null-audio", daemon=True)

    def _run(self) -> None:
        raise_priority("null audio clock")  # stands in for a device: its clock must not lag a busy machine
        period = self.blocksize / self.device_rate
        deadline = time.monotonic()
        while not self._stop.is_set():
            deadline += period
            self.pull(self._block)
            self.played += 1
            deadline, late = wait_until(deadline, period, self._stop)
            self.underflows += late

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)


def device_label(device: str | int | None) -> str:
    return "(default)" if device is None else repr(device)


def open_output(config: OutputConfig, *, null: bool = False) -> _Sink:
    return NullSink(config) if null else SoundDeviceSink(config)


def list_devices() -> str:
    import sounddevice as sd

    return str(sd.query_devices())
