"""Plays through sounddevice into the test PulseAudio null sink; prints JSON.

Run as a script with PULSE_SERVER set from process start (test_audio_out does
this): inside the pytest process PortAudio's ALSA-to-PulseAudio bridge stalls after
the first buffer, which this avoids.

    python tests/pulse_probe.py play SINK   # a 440 Hz tone, recorded from SINK.monitor
    python tests/pulse_probe.py slow SINK   # a callback that misses deadlines
"""

import json
import subprocess
import sys
import time

import numpy as np

from pipelines.audio_out import OutputConfig, SoundDeviceSink


def play(sink_name: str) -> dict:
    rec = subprocess.Popen(["parec", f"--device={sink_name}.monitor", "--raw", "--format=float32le", "--channels=1",
                            "--rate=16000", "--latency-msec=20"], stdout=subprocess.PIPE)
    time.sleep(0.3)
    sink = SoundDeviceSink(OutputConfig(16_000, device="pulse", blocksize=512, latency="low"))
    t = np.arange(3 * 16_000) / 16_000
    sink.write((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))
    sink.start()
    time.sleep(1.5)
    sink.stop()
    time.sleep(0.5)
    rec.terminate()
    heard = np.frombuffer(rec.communicate(timeout=5)[0], np.float32)
    spectrum = np.abs(np.fft.rfft(heard))
    return {"played": sink.played, "heard": int(heard.size), "peak": float(np.abs(heard).max(initial=0.0)),
            "peak_hz": float(np.fft.rfftfreq(heard.size, 1 / 16_000)[spectrum.argmax()]),
            "underflows": sink.underflows}


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
    time.sleep(1.5)
    sink.stop()
    return {"played": sink.played, "underflows": sink.underflows}


if __name__ == "__main__":
    print(json.dumps({"play": play, "slow": slow}[sys.argv[1]](sys.argv[2])))
