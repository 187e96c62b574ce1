"""Audio out: the sample ring, real playback into a PulseAudio null sink, resampling."""

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pipelines.sample_ring import SampleRing
from pipelines.audio_out import NullSink, OutputConfig, Resampler, SoundDeviceSink


def test_sample_ring_copies_whole_blocks_across_the_wrap_or_writes_silence():
    ring = SampleRing(10)
    out = np.full((4, 1), 9.0, np.float32)
    assert not ring.read_into(out) and ring.starved == 1 and not out.any()
    assert ring.write(np.arange(7, dtype=np.float32)) == 7
    assert ring.read_into(out) and out[:, 0].tolist() == [0, 1, 2, 3]
    assert ring.write(np.arange(7, 14, dtype=np.float32)) == 7  # wraps around the end
    assert ring.write(np.ones(5, np.float32)) == 0  # full: nothing is overwritten
    got = []
    while ring.read_into(out):
        got += out[:, 0].tolist()
    assert got == [4, 5, 6, 7, 8, 9, 10, 11] and ring.available() == 2 and ring.starved == 2


def test_sample_ring_takes_back_written_frames_only_clear_of_the_consumer():
    ring = SampleRing(10)
    ring.write(np.arange(8, dtype=np.float32))
    ring.read_into(np.zeros((4, 1), np.float32))
    ring.write(np.arange(8, 12, dtype=np.float32))  # wraps: frames 4..11 buffered
    assert ring.peek(6, 4)[:, 0].tolist() == [6, 7, 8, 9]  # across the wrap
    with pytest.raises(ValueError, match="not buffered"):
        ring.peek(10, 4)
    assert not ring.replace(6, np.full(2, -1, np.float32), guard=3) and ring.written == 12  # the consumer may be there
    assert not ring.replace(7, np.zeros(8, np.float32), guard=3)  # it would not fit
    assert ring.replace(7, np.full(2, -1, np.float32), guard=3) and ring.written == 9 and ring.available() == 5
    out = np.zeros((5, 1), np.float32)
    assert ring.read_into(out) and out[:, 0].tolist() == [4, 5, 6, -1, -1]


def test_resampler_keeps_pitch_and_length():
    rs = Resampler(16_000, 48_000)
    t = np.arange(16_000) / 16_000
    out = np.concatenate([rs(np.sin(2 * np.pi * 440 * t[i : i + 1000]).astype(np.float32)) for i in range(0, 16_000, 1000)])
    assert abs(out.size - 48_000) < 200
    spectrum = np.abs(np.fft.rfft(out[:32_768]))
    assert abs(np.fft.rfftfreq(32_768, 1 / 48_000)[spectrum.argmax()] - 440) < 3


def test_null_sink_consumes_in_real_time():
    sink = NullSink(OutputConfig(16_000, blocksize=400))
    sink.write(np.zeros(16_000, np.float32))
    sink.start()
    time.sleep(0.5)
    sink.stop()
    consumed = 16_000 - sink.ring.available()
    assert 0.3 * 16_000 <= consumed <= 0.8 * 16_000 and sink.starved == 0


def _probe(pulse, mode):
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("pulse_probe.py")), mode, pulse["sink"]],
                          env={**pulse["env"], "PYTHONPATH": str(Path(__file__).parents[1])},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_plays_through_portaudio_into_the_null_sink(pulse_null_sink):
    got = _probe(pulse_null_sink, "play")
    # The ALSA-to-PulseAudio bridge does not keep a steady clock on a loaded machine,
    # so this checks what arrived at the sink, not how fast.
    assert got["played"] >= 4 and got["heard"] > 2000, got
    assert abs(got["peak_hz"] - 440) < 5 and 0.2 < got["peak"] < 0.35, got


def test_a_duplex_stream_hears_the_microphone_through_portaudio(pulse_null_sink):
    got = _probe(pulse_null_sink, "duplex")
    assert got["read"] > 8000 and abs(got["peak_hz"] - 440) < 5 and got["peak"] > 0.1, got


def test_a_slow_callback_is_counted_from_portaudios_underflow_flag(pulse_null_sink):
    got = _probe(pulse_null_sink, "slow")
    assert got["underflows"] > 0, got


def test_a_vanished_sink_is_counted_kept_and_reopened_when_it_returns(pulse_null_sink):
    """The PulseAudio sink is unloaded mid-run, then loaded again: the stream's end is
    counted, the rendered audio waits in the ring, and the tone plays on once it is back."""
    got = _probe(pulse_null_sink, "unplug")
    assert got["played_before"] and got["lost"] and got["device_lost"] == 1, got
    assert got["held_after_1s"] == got["held_frames"] > 0, got  # nothing consumed (or lost) while gone
    assert got["reopened"] and got["device_reopened"] == 1 and got["heard_again"], got
    assert got["played_frames_after"] > 0 and got["starved"] == 0, got


def test_an_unsupported_forced_rate_is_a_clear_error(pulse_null_sink):
    from engine import InputError

    with pytest.raises(InputError, match="samplerate|device"):
        SoundDeviceSink(OutputConfig(16_000, device="no such device", device_rate=48_000))


def test_device_rate_mismatch_is_resampled(pulse_null_sink):
    sink = SoundDeviceSink(OutputConfig(16_000, device="pulse", device_rate=48_000))
    assert sink.device_rate == 48_000 and sink.resampler is not None
    sink.write(np.zeros(1600, np.float32))
    assert abs(sink.ring.available() - 4800) < 200
    sink._stream.close()


@pytest.fixture
def rate_refusing_devices(monkeypatch):
    """sounddevice with devices that take only their default 44.1 kHz (no stream is opened)."""
    import sounddevice as sd

    def check(device=None, samplerate=None, **_):
        if samplerate != 44_100:
            raise sd.PortAudioError("Invalid sample rate")

    class Stream:
        latency = 0.01

        def __init__(self, **_):
            pass

    for name in ("check_output_settings", "check_input_settings"):
        monkeypatch.setattr(sd, name, check)
    monkeypatch.setattr(sd, "query_devices", lambda device=None, kind=None: {"default_samplerate": 44_100.0})
    monkeypatch.setattr(sd, "OutputStream", Stream)
    monkeypatch.setattr(sd, "InputStream", Stream)


def test_the_device_default_rate_is_said_once_when_the_engine_rate_is_refused(rate_refusing_devices, capsys):
    from pipelines.audio_duplex import DuplexConfig, SoundDeviceDuplex

    sink = SoundDeviceSink(OutputConfig(16_000))
    assert sink.device_rate == 44_100 and sink.resampler is not None
    duplex = SoundDeviceDuplex(DuplexConfig(16_000))
    assert duplex.device_rate == 44_100
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all("16000 Hz is not taken; using the device default 44100 Hz" in line for line in err)
    assert err[0].startswith("audio output (default)") and err[1].startswith("audio input (default) and output")
