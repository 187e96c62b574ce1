"""Plays through sounddevice into the test PulseAudio null sink; prints JSON.

Run as a script with PULSE_SERVER set from process start (test_audio_out does
this): inside the pytest process PortAudio's ALSA-to-PulseAudio bridge stalls after
the first buffer, which this avoids.

    python tests/pulse_probe.py play SINK   # a 440 Hz tone, recorded from SINK.monitor
    python tests/pulse_probe.py slow SINK   # a callback that misses deadlines
    python tests/pulse_probe.py duplex SINK # microphone in (the sink's monitor) and out together
    python tests/pulse_probe.py unplug SINK # SINK unloaded mid-run, then loaded again
"""

import json
import subprocess
import sys
import threading
import time

import numpy as np

from pipelines.audio_out import OutputConfig, SoundDeviceSink
from pulse_server import NULL_SINK_ARGS


class Recorder:
    """parec on the sink's monitor, read by a thread. `ready()` waits for its first bytes:
    on a machine where PulseAudio has never run, a client's first connection can take
    seconds, and a tone played before the recorder is live is never heard."""

    def __init__(self, sink_name: str, rate: int = 16_000):
        self.proc = subprocess.Popen(["parec", f"--device={sink_name}.monitor", "--raw", "--format=float32le",
                                      "--channels=1", f"--rate={rate}", "--latency-msec=20"], stdout=subprocess.PIPE)
        self.chunks: list[bytes] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while chunk := self.proc.stdout.read1(4096):
            self.chunks.append(chunk)

    def ready(self, timeout: float = 30.0) -> float:
        """Seconds until the recorder delivered its first bytes."""
        start = time.monotonic()
        while not self.chunks:
            if time.monotonic() - start > timeout or self.proc.poll() is not None:
                raise RuntimeError(f"parec delivered nothing in {timeout:g} s (exit {self.proc.poll()})")
            time.sleep(0.01)
        return time.monotonic() - start

    def samples(self) -> np.ndarray:
        data = b"".join(self.chunks)
        return np.frombuffer(data[: len(data) // 4 * 4], np.float32)

    def stop(self) -> np.ndarray:
        self.proc.terminate()
        self.proc.wait(timeout=5)
        self.thread.join(timeout=5)
        return self.samples()


def play(sink_name: str) -> dict:
    rec = Recorder(sink_name)
    try:
        waited = rec.ready()
        sink = SoundDeviceSink(OutputConfig(16_000, device="pulse", blocksize=512, latency="low"))
        t = np.arange(3 * 16_000) / 16_000
        sink.write((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))
        sink.start()
        # until the tone has been heard for a second (a loaded machine's bridge may start late)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and np.count_nonzero(np.abs(rec.samples()) > 0.1) < 16_000:
            time.sleep(0.05)
        sink.stop()
    finally:
        heard = rec.stop()
    spectrum = np.abs(np.fft.rfft(heard))
    return {"played": sink.played, "heard": int(heard.size), "peak": float(np.abs(heard).max(initial=0.0)),
            "peak_hz": float(np.fft.rfftfreq(heard.size, 1 / 16_000)[spectrum.argmax()]),
            "underflows": sink.underflows, "recorder_ready_s": round(waited, 3)}


def slow(sink_name: str) -> dict:
    sink = SoundDeviceSink(OutputConfig(16_000, device="pulse", blocksize=256, latency="low"))
    sink.write(np.zeros(16_000, np.float32))
    real, calls = sink.ring.read_into, [0]

    def late(out):  # stands in for a callback that misses its deadline
        calls[0] += 1
        if 5 < calls[0] < 15:
            time.sleep(0.06)
        return real(out)

    sink.ring.read_into = late
    sink.start()
    # until the late callbacks have run and a few after them: on a loaded machine the
    # ALSA-to-PulseAudio bridge can take seconds to start calling
    deadline = time.monotonic() + 15
    while calls[0] < 25 and time.monotonic() < deadline:
        time.sleep(0.05)
    sink.stop()
    return {"played": sink.played, "underflows": sink.underflows}


def duplex(sink_name: str) -> dict:
    """A tone goes into the null sink; the duplex stream records the sink's monitor as its
    microphone and plays what it reads straight back (a pass-through worker)."""
    import os

    from pipelines.audio_duplex import DuplexConfig, SoundDeviceDuplex

    os.environ["PULSE_SOURCE"] = f"{sink_name}.monitor"  # the "pulse" ALSA device records from it
    tone = subprocess.Popen(["pacat", f"--device={sink_name}", "--format=float32le", "--channels=1", "--rate=16000",
                             "--raw"], stdin=subprocess.PIPE)
    t = np.arange(3 * 16_000) / 16_000
    tone.stdin.write((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32).tobytes())
    tone.stdin.flush()
    # 0.1 s: at PortAudio's "low" the ALSA-to-PulseAudio bridge delivers input in fits here
    io = SoundDeviceDuplex(DuplexConfig(16_000, input_device="pulse", output_device="pulse", blocksize=320,
                                        latency=0.1))
    io.start()
    # the ALSA-to-PulseAudio bridge can take a while to start delivering input here
    heard, end = [], time.time() + 5.0
    while time.time() < end and sum(b.size for b in heard) < 16_000:
        block = io.read(160)
        if block is None:
            time.sleep(0.005)
            continue
        heard.append(block)
        io.write(block)
    io.stop()
    tone.stdin.close()
    tone.wait(timeout=10)
    x = np.concatenate(heard) if heard else np.zeros(1, np.float32)
    spectrum = np.abs(np.fft.rfft(x))
    return {"read": int(x.size), "peak": float(np.abs(x).max()),
            "peak_hz": float(np.fft.rfftfreq(x.size, 1 / 16_000)[spectrum.argmax()]),
            "overflows": io.overflows, "device_latency_s": io.device_latency_s}


def wait_until(predicate, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def pactl(*args: str) -> str:
    return subprocess.run(["pactl", *args], capture_output=True, text=True, check=True, timeout=10).stdout


def unplug(sink_name: str) -> dict:
    """A tone plays; the sink is unloaded (the device vanishes), then loaded again. The
    feeder's part (keep_alive) runs on a thread as in the live engine."""
    sink = SoundDeviceSink(OutputConfig(16_000, device="pulse", blocksize=512, latency="low"))
    t = np.arange(10 * 16_000) / 16_000
    sink.write((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))
    stop = threading.Event()

    def feeder():
        while not stop.wait(0.02):
            sink.keep_alive()

    threading.Thread(target=feeder, daemon=True).start()
    sink.start()
    out = {"played_before": wait_until(lambda: sink.played >= 20, 15)}
    module = next(line.split()[0] for line in pactl("list", "short", "modules").splitlines()
                  if "module-null-sink" in line and f"sink_name={sink_name}" in line)
    pactl("unload-module", module)
    out["lost"] = wait_until(lambda: sink.device_lost == 1, 10)
    held = sink.ring.available()
    time.sleep(1.0)
    out["held_frames"], out["held_after_1s"] = held, sink.ring.available()
    out["failures_while_gone"] = sink.reopen_failures
    pactl("load-module", "module-null-sink", *NULL_SINK_ARGS)
    rec = Recorder(sink_name)
    try:
        rec.ready()
        out["reopened"] = wait_until(lambda: sink.device_reopened == 1, 15)
        out["heard_again"] = wait_until(lambda: np.count_nonzero(np.abs(rec.samples()) > 0.1) > 8000, 15)
    finally:
        stop.set()
        sink.stop()
        heard = rec.stop()
    out.update(device_lost=sink.device_lost, device_reopened=sink.device_reopened, starved=sink.starved,
               peak=float(np.abs(heard).max(initial=0.0)), played_frames_after=held - sink.ring.available())
    return out


if __name__ == "__main__":
    modes = {"play": play, "slow": slow, "duplex": duplex, "unplug": unplug}
    print(json.dumps(modes[sys.argv[1]](sys.argv[2])))
