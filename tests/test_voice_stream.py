"""Streaming voice conversion: chunks on the ring, crossfaded borders, live sizes, gating, watchdog."""

import time

import numpy as np
import pytest
import torch

from engine import StateStore
from pipelines.voice.codec import HOP, CodecConfig, VoiceCodec
from pipelines.voice.models import Converter, VoiceConfig
from pipelines.voice.checkpoint import VoiceModels
from pipelines.voice.params import VOICE_PARAMS
from pipelines.voice.stream import StreamingVC


@pytest.fixture
def models():
    torch.manual_seed(0)
    codec = VoiceCodec(CodecConfig(width=4, latent=8)).eval()
    converter = Converter(VoiceConfig(latent=8, width=16, speaker=8, blocks=2)).eval()  # zero velocity at init
    return VoiceModels(codec, converter, latent_mean=torch.zeros(8), latent_std=torch.ones(8))


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    x = 0.3 * np.sin(2 * np.pi * np.cumsum(f0) / 16000) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    return (x + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def spoken(seed: int = 0) -> np.ndarray:
    """Real synthesised speech (espeak-ng, a corpus speaker), 16 kHz, about 2-4 s: what a
    reference must be (a sine sweep like speech_like is not speech to the detector)."""
    from pipelines.voice.data import render, sentences, speakers

    return render(speakers(4, seed)[seed % 4], " ".join(sentences(2, seed)))


def music_like(seconds: float) -> np.ndarray:
    """A chord with harmonics, pulsing twice a second: periodic like a vowel, and no speech."""
    t = np.arange(int(seconds * 16000)) / 16000
    x = sum(0.12 * np.sin(2 * np.pi * f * k * t) / k for f in (220, 277.18, 329.63) for k in (1, 2, 3))
    return (x * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t))).astype(np.float32)


def offline(models, audio: np.ndarray, warm_frames: int) -> np.ndarray:
    """The codec alone over [silence | audio], as the stream sees it."""
    pad = np.zeros(-audio.size % HOP, np.float32)
    x = torch.from_numpy(np.concatenate([np.zeros(warm_frames * HOP, np.float32), audio, pad]))[None, None]
    with torch.no_grad():
        y, _ = models.codec.decoder(models.codec.encoder(x)[0])
    return y.reshape(-1).numpy()[warm_frames * HOP :][: audio.size]


def run(vc: StreamingVC, audio: np.ndarray, block: int = 256) -> np.ndarray:
    out = [vc.push(audio[i : i + block]) for i in range(0, audio.size, block)]
    return np.concatenate(out + [vc.flush()])


def test_near_zero_strength_streams_back_the_codec_with_the_crossfade_as_the_only_delay(models):
    audio = speech_like(0.613)  # not a whole number of chunks: the end is padded, then trimmed
    vc = StreamingVC(models, torch.ones(8), watchdog=False)
    vc.store.update({"strength": 0.01, "chunk_ms": 40, "overlap_ms": 10, "vad_db": -100.0, "speech_threshold": 0.0})
    out = run(vc, audio)
    xf = HOP  # one frame held back
    assert out.size == audio.size + xf  # every input sample comes out once, delayed by the crossfade
    ref = offline(models, audio, 50)
    err = np.sqrt(np.mean((out[xf:] - ref) ** 2)) / np.sqrt(np.mean(ref**2))
    assert err < 0.05, err
    lat = vc.latency()
    assert lat["algorithmic_ms"] == 50 and lat["lookahead_ms"] == 0
    assert lat["latency_ms"] == pytest.approx(50 + lat["compute_ms"])


def test_live_size_and_step_changes_keep_every_chunk_in_order(models):
    audio = speech_like(1.0, seed=1)
    vc = StreamingVC(models, torch.ones(8), watchdog=False)
    vc.store.update({"vad_db": -100.0, "speech_threshold": 0.0, "steps": 3})
    out = [vc.push(audio[:4000])]
    assert vc.counters.rings == 1 and vc.rings.occupied == 2
    vc.store.update({"chunk_ms": 60, "context_ms": 40, "overlap_ms": 20, "steps": 1})
    out += [vc.push(audio[4000:]), vc.flush()]
    out = np.concatenate(out)
    assert vc.counters.rings == 2  # the new window shape got its own ring, the old one drained
    admitted = vc.rings.totals().admitted  # the drained old ring is retired, its counters kept in the totals
    completed = vc.rings.totals().completed
    assert admitted == completed == vc.counters.chunks and vc._order.idle
    assert out.size == audio.size + HOP  # each sample once, behind the first crossfade (the warm-up tail)
    assert np.isfinite(out).all()


def test_quiet_and_broken_chunks_pass_as_silence_and_the_stream_goes_on(models):
    vc = StreamingVC(models, torch.ones(8))
    silent = vc.push(np.zeros(3200, np.float32))
    assert vc.counters.gated == vc.counters.chunks == 5 and not silent.any()
    bad = speech_like(0.08)
    bad[100] = np.nan
    assert np.isfinite(vc.push(bad)).all() and vc.counters.nonfinite_input == 1
    loud = vc.push(spoken(0)[:8000])
    assert np.abs(loud).max() > 0 and np.isfinite(loud).all()


def test_the_speech_gate_silences_music_passes_speech_and_turns_off_at_zero(models):
    """Silero's detector gates chunks with no speech, however loud; at speech_threshold 0 the
    level gate alone decides (a singer's setting). Its compute is reported apart."""
    music = music_like(2.0)
    vc = StreamingVC(models, torch.ones(8), watchdog=False)
    out = run(vc, music)
    assert vc.counters.no_speech >= 0.95 * vc.counters.chunks and np.abs(out).max() < 1e-6
    speech = spoken(1)
    vc = StreamingVC(models, torch.ones(8), watchdog=False)
    out = run(vc, speech)
    assert vc.counters.no_speech <= 0.3 * vc.counters.chunks and np.abs(out).max() > 0.01
    assert 0 < vc.latency()["vad_compute_ms"] < vc.latency()["compute_ms"]
    vc = StreamingVC(models, torch.ones(8), StateStore(VOICE_PARAMS, {"speech_threshold": 0.0}), watchdog=False)
    out = run(vc, music)
    assert vc.counters.no_speech == 0 and np.abs(out).max() > 0.01


def test_the_watchdog_grows_the_chunk_when_compute_falls_behind(models):
    vc = StreamingVC(models, torch.ones(8))
    vc.store.update({"vad_db": -100.0, "speech_threshold": 0.0, "chunk_ms": 20})
    slow = vc.denoiser.denoise
    vc.denoiser.denoise = lambda *a: (time.sleep(0.03), slow(*a))[1]  # 30 ms of work per 20 ms chunk
    run(vc, speech_like(0.6))
    assert vc.counters.watchdog_grows >= 1 and vc.store.snapshot["chunk_ms"] > 20


def test_stream_and_offline_conversion_agree_away_from_chunk_borders(models):
    from pipelines.voice.render import convert_offline, convert_stream

    audio = speech_like(0.5, seed=3)
    params = {"strength": 0.01, "vad_db": -100.0, "speech_threshold": 0.0}
    streamed, whole = convert_stream(models, torch.ones(8), audio, params), convert_offline(models, torch.ones(8), audio, params)
    assert streamed.size == whole.size == audio.size
    err = np.sqrt(np.mean((streamed - whole) ** 2)) / np.sqrt(np.mean(whole**2))
    assert err < 0.05, err


def test_a_reference_must_be_long_enough_and_speech(models):
    from pipelines.voice.models import SpeakerEncoder, VoiceConfig
    from pipelines.voice.reference import ReferenceError, speaker_embedding
    from pipelines.voice.vad import speech_seconds

    encoder = SpeakerEncoder(VoiceConfig(latent=8, width=16, speaker=8)).eval()
    speech = spoken()
    assert speech_seconds(speech) > 0.6 * speech.size / 16000  # most of a sentence is heard as speech
    emb = speaker_embedding(models, encoder, speech)
    assert emb.shape == (8,) and abs(float(emb.norm()) - 1) < 1e-5
    noise = np.random.default_rng(0).standard_normal(32000).astype(np.float32) * 0.2
    # music, noise and silence are each refused in one line saying how much speech was found;
    # a chord is periodic like a vowel, which the earlier periodicity check took for a voice
    for bad, needle in ((speech[:12800], "too short"), (np.zeros(32000, np.float32), "only 0.00 s of speech found"),
                        (noise, "only 0.00 s of speech found"), (music_like(4.0), r"only 0\.\d\d s of speech found")):
        with pytest.raises(ReferenceError, match=needle) as err:
            speaker_embedding(models, encoder, bad)
        assert "\n" not in str(err.value)


def test_cli_renders_a_voice_file_and_refuses_bad_input_in_one_line(tiny_voice, tmp_path):
    import subprocess
    import sys

    from pipelines.audio_io import read_audio, write_audio

    write_audio(tmp_path / "src.wav", speech_like(1.0), 16000)
    write_audio(tmp_path / "ref.flac", spoken(1), 16000)
    base = [sys.executable, "-m", "demon.cli", "render", "voice", "--model", str(tiny_voice)]
    ok = subprocess.run(base + [str(tmp_path / "src.wav"), "--target", str(tmp_path / "ref.flac"),
                                "--out", str(tmp_path / "out.wav")], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert read_audio(tmp_path / "out.wav", 16000).size == 16000
    write_audio(tmp_path / "short.wav", speech_like(0.5), 16000)
    write_audio(tmp_path / "music.wav", music_like(4.0), 16000)  # the case periodicity let through
    write_audio(tmp_path / "noise.wav", np.random.default_rng(0).standard_normal(48000).astype(np.float32) * 0.2, 16000)
    write_audio(tmp_path / "silence.wav", np.zeros(48000, np.float32), 16000)
    refused = [([str(tmp_path / "src.wav"), "--target", str(tmp_path / f"{name}.wav")], "s of speech found")
               for name in ("music", "noise", "silence")]
    for argv, needle in (*refused,
                         ([str(tmp_path / "src.wav"), "--target", str(tmp_path / "short.wav")], "too short"),
                         ([str(tmp_path / "nope.wav"), "--target", str(tmp_path / "ref.flac")], "not a readable file"),
                         ([str(tmp_path / "src.wav"), "--target", str(tmp_path / "ref.flac"), "--chunk-ms", "5"],
                          "--chunk-ms: 5 is outside")):
        bad = subprocess.run(base + argv + ["--out", str(tmp_path / "bad.wav")], capture_output=True, text=True,
                             timeout=120)
        assert bad.returncode == 2 and needle in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert not (tmp_path / "bad.wav").exists()


def test_live_voice_runs_a_clock_paced_duplex_and_reports_its_latency(models):
    import threading

    from demon.rigs import voice_rig
    from pipelines.audio_duplex import DuplexConfig, NullDuplex

    duplex = NullDuplex(DuplexConfig(16000, blocksize=160), speech_like(1.0))
    rig = voice_rig(models, torch.ones(8), duplex, initial={"vad_db": -100.0, "speech_threshold": 0.0})
    live = rig.engine
    stop = threading.Event()
    thread = threading.Thread(target=live.run, args=(stop,))
    thread.start()
    rig.session.set("strength", 0.3)  # a control reaches the stream's store
    thread.join(timeout=20)
    c = live.live_counters()
    assert c["samples_in"] == 16000 and c["input_overflows"] == 0
    # 25 chunks of 40 ms, fewer if the watchdog had to grow them on a busy machine
    assert (c["chunks"] == 25) == (c["watchdog_grows"] == 0) and c["chunks"] >= 16000 // 160 // 10
    assert c["algorithmic_ms"] == c["chunk_ms"] + 10 and c["device_ms"] == 20.0
    assert c["latency_ms"] == pytest.approx(c["algorithmic_ms"] + c["compute_ms"], abs=0.1)
    heard = np.concatenate(duplex.heard)
    assert np.abs(heard).max() > 0  # converted audio reached the output
    assert live.store.snapshot["strength"] == 0.3


def test_cli_live_voice_runs_without_a_sound_card_and_writes_its_counters(tiny_voice, tmp_path):
    import json
    import subprocess
    import sys

    from pipelines.audio_io import write_audio

    write_audio(tmp_path / "mic.wav", speech_like(1.0), 16000)
    write_audio(tmp_path / "ref.wav", spoken(1), 16000)
    proc = subprocess.run([sys.executable, "-m", "demon.cli", "live", "voice", "--target", str(tmp_path / "ref.wav"),
                           "--model", str(tiny_voice), "--null-audio", str(tmp_path / "mic.wav"), "--osc-port", "-1",
                           "--counters-out", str(tmp_path / "c.json")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    counters = json.loads((tmp_path / "c.json").read_text())
    assert counters["samples_in"] == 16000 and counters["chunks"] > 0 and "latency" in proc.stderr


def test_gain_scales_every_output_sample_once_crossfades_included(models):
    from pipelines.voice.render import convert_stream

    audio = speech_like(0.4, seed=7)
    full = convert_stream(models, torch.ones(8), audio, {"vad_db": -100.0, "speech_threshold": 0.0, "gain": 1.0})
    half = convert_stream(models, torch.ones(8), audio, {"vad_db": -100.0, "speech_threshold": 0.0, "gain": 0.5})
    assert np.allclose(half, 0.5 * full, atol=1e-6)
