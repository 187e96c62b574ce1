"""Audio in and out together: a sounddevice duplex stream or a clock-paced stand-in.

Each callback does one copy and nothing else: the microphone block into the input ring
(or a counted overflow when the worker has fallen that far behind), the next output
block out of the output ring (or silence, counted by the ring). A worker thread
does the conversion between the two rings. Rates other than the engine's are
resampled on the worker's side, never in the callback.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from engine import InputError

from .audio_out import Resampler, device_label, say_default_rate, wait_until
from .sample_ring import SampleRing


@dataclass(frozen=True)
class DuplexConfig:
    samplerate: int  # the engine's rate
    input_device: str | int | None = None
    output_device: str | int | None = None
    device_rate: int | None = None  # None: the engine's rate where the devices take it, else their default
    blocksize: int = 160
    latency: float | str = "low"
    buffer_seconds: float = 4.0


class _Duplex:
    def __init__(self, config: DuplexConfig, device_rate: int):
        self.config = config
        self.device_rate = device_rate
        size = int(config.buffer_seconds * device_rate)
        self.input = SampleRing(size)
        self.output = SampleRing(size)
        self.overflows = 0  # microphone blocks lost because the input ring was full
        self.underflows = 0  # PortAudio's own input-overflow and output-underflow flags
        self.device_latency_s = (0.0, 0.0)  # (input, output) as the device reports them
        resample = device_rate != config.samplerate
        self._down = Resampler(device_rate, config.samplerate) if resample else None
        self._up = Resampler(config.samplerate, device_rate) if resample else None
        self._block = np.zeros((1, 1), np.float32)

    def read(self, frames: int) -> np.ndarray | None:
        """`frames` device-rate samples from the microphone, at the engine's rate; None if not there yet."""
        if self.input.available() < frames:
            return None
        if self._block.shape[0] != frames:
            self._block = np.zeros((frames, 1), np.float32)
        self.input.read_into(self._block)
        data = self._block[:, 0].copy()
        return self._down(data) if self._down is not None else data

    def write(self, samples: np.ndarray) -> int:
        data = self._up(samples) if self._up is not None else samples
        return self.output.write(data)

    @property
    def finished(self) -> bool:
        """A source that can end (a file) has ended; a device never does."""
        return False

    def _take_input(self, indata: np.ndarray) -> None:
        if self.input.write(indata) < len(indata):
            self.overflows += 1


class SoundDeviceDuplex(_Duplex):
    """An input and an output stream, each with its own one-copy callback. Two streams rather
    than one full-duplex stream: microphones and speakers are often different devices, and
    PortAudio's full duplex through ALSA's PulseAudio plugin stalls at some latencies."""

    def __init__(self, config: DuplexConfig):
        import sounddevice as sd

        devices = (config.input_device, config.output_device)
        rate = config.device_rate or config.samplerate
        try:
            sd.check_input_settings(device=devices[0], samplerate=rate, channels=1, dtype="float32")
            sd.check_output_settings(device=devices[1], samplerate=rate, channels=1, dtype="float32")
        except Exception as err:  # noqa: BLE001 - PortAudio raises several types; all mean "not this setting"
            if config.device_rate is not None:
                raise InputError("samplerate", f"the devices do not take {rate} Hz: {err}") from None
            try:
                rate = int(sd.query_devices(devices[0], "input")["default_samplerate"])
            except Exception as err2:  # noqa: BLE001
                raise InputError("device", f"cannot open audio input {devices[0]!r}: {err2}") from None
            say_default_rate(f"audio input {device_label(devices[0])} and output {device_label(devices[1])}",
                             config.samplerate, rate)
        super().__init__(config, rate)
        common = {"samplerate": rate, "blocksize": config.blocksize, "channels": 1, "dtype": "float32",
                  "latency": config.latency}
        # output opened first: through ALSA's PulseAudio plugin, an input opened before an
        # output on the same device delivers nothing here
        self._out = sd.OutputStream(device=devices[1], callback=self._on_output, **common)
        self._in = sd.InputStream(device=devices[0], callback=self._on_input, **common)
        self.device_latency_s = (float(self._in.latency), float(self._out.latency))

    def _on_input(self, indata, frames, time_info, status) -> None:
        if status.input_overflow:
            self.underflows += 1
        self._take_input(indata)

    def _on_output(self, outdata, frames, time_info, status) -> None:
        if status.output_underflow:
            self.underflows += 1
        self.output.read_into(outdata)

    def start(self) -> None:
        self._in.start()
        self._out.start()

    def stop(self) -> None:
        for stream in (self._in, self._out):
            stream.stop()
            stream.close()


class NullDuplex(_Duplex):
    """A clock-paced stand-in: plays `source` as the microphone and keeps what comes out."""

    def __init__(self, config: DuplexConfig, source: np.ndarray, loop: bool = False):
        super().__init__(config, config.device_rate or config.samplerate)
        self.source, self.loop = np.asarray(source, np.float32), loop
        self.device_latency_s = (config.blocksize / self.device_rate,) * 2
        self.heard: list[np.ndarray] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="null-duplex", daemon=True)

    def _run(self) -> None:
        n = self.config.blocksize
        period = n / self.device_rate
        out = np.zeros((n, 1), np.float32)
        pos, deadline = 0, time.monotonic()
        while not self._stop.is_set():
            if pos + n > self.source.size:
                if not self.loop:
                    break
                pos = 0
            self._take_input(self.source[pos : pos + n, None])
            self.output.read_into(out)
            self.heard.append(out[:, 0].copy())
            pos += n
            deadline, late = wait_until(deadline + period, period, self._stop)
            self.underflows += late
        self._stop.set()

    @property
    def finished(self) -> bool:
        return self._stop.is_set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
