"""Compiled backends: ONNX export parity, the ORT Denoiser, the engine cache, TensorRT's refusal."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from engine import Ring, StateStore, TorchDenoiser, request_from_state, run_alone
from pipelines.music.exports import music_decoder_spec
from pipelines.video_sr.exports import video_sr_decoder_spec, video_sr_refiner_spec
from pipelines.voice.exports import voice_converter_spec, voice_decoder_spec
from trt_builds.backends import Backend, make_denoiser
from trt_builds.cache import EngineCache, EngineKey
from trt_builds.errors import BackendError
from trt_builds.export import cached_export, export_key
from trt_builds.ort import OrtDenoiser, OrtPart

TOL = 1e-4


@pytest.fixture(scope="module")
def specs(tiny_models, tiny_video_sr, tiny_voice):
    from pipelines.music.models import load_music_models
    from pipelines.video_sr.checkpoint import load_video_sr
    from pipelines.voice.checkpoint import load_voice

    music = load_music_models(tiny_models)
    video = load_video_sr(tiny_video_sr, 4)
    voice, _ = load_voice(tiny_voice)
    return {s.name: s for s in (
        music.export_spec(), music_decoder_spec(music.codec.vae),
        video_sr_refiner_spec(video.refiner, video.cfg, 4), video_sr_decoder_spec(video.decoder, video.cfg, 4),
        voice_converter_spec(voice.converter), voice_decoder_spec(voice.codec))}


NAMES = ["music_dit", "music_vae_decoder", "video_sr_refiner_x4", "video_sr_decoder_x4", "voice_converter", "voice_decoder"]


@pytest.mark.parametrize("name", NAMES)
def test_export_parity_across_the_profile(specs, name, tmp_path):
    """The exported graph matches torch at the profile's min, at opt, and at other batch and
    length/size values than the one it was traced at (the axes are really dynamic)."""
    spec = specs[name]
    part = OrtPart(spec, cached_export(spec, tmp_path), threads=1)
    lo, opt = spec.sizes("min"), spec.sizes("opt")
    other = {k: min(p.max, p.opt + 2 * p.multiple) for k, p in spec.profiles.items()}
    other["batch"] = 5
    for sizes in (lo, opt, other):
        inputs = spec.make_inputs(sizes)
        with torch.no_grad():
            ref = spec.module(*inputs)
        ref = ref if isinstance(ref, tuple) else (ref,)
        got = part(*inputs)
        assert len(got) == len(ref) == len(spec.outputs)
        for r, g in zip(ref, got):
            assert g.shape == r.shape
            if r.numel():  # a layer that sees one frame keeps an empty state: its shape is the check
                assert float((g - r).abs().max()) <= TOL * max(1.0, float(r.abs().max())), (name, sizes)


def test_stateful_export_streams_like_torch(specs, tmp_path):
    """The voice decoder's exported state carried chunk to chunk gives the torch stream."""
    spec = specs["voice_decoder"]
    part = OrtPart(spec, cached_export(spec, tmp_path), threads=1)
    decoder = spec.module.module
    z = torch.randn(1, spec.make_inputs(spec.sizes("opt"))[0].shape[1], 12)
    state_t, state_o = None, list(spec.make_inputs({"batch": 1, "frames": 4})[1:])
    outs_t, outs_o = [], []
    for i in range(0, 12, 4):
        with torch.no_grad():
            y, state_t = decoder(z[..., i : i + 4], state_t)
        outs_t.append(y)
        y_o, *state_o = part(z[..., i : i + 4], *state_o)
        outs_o.append(y_o)
    assert float((torch.cat(outs_t, -1) - torch.cat(outs_o, -1)).abs().max()) < TOL


def test_ort_denoiser_in_the_ring_matches_eager(specs, tmp_path):
    """The ring cannot tell the backends apart: the same request through ORT equals eager within 1e-4."""
    spec = specs["voice_converter"]
    module = spec.module.module
    eager = TorchDenoiser(module, module)
    ort = make_denoiser(Backend.ORT, spec, eager, cache=tmp_path, threads=1)
    assert isinstance(ort, OrtDenoiser) and ort.name == "ort"
    x, sigma, speaker = spec.make_inputs({"batch": 3, "frames": 12})
    cond = {"speaker": speaker}
    assert float((ort.denoise(x, sigma, cond) - eager.denoise(x, sigma, cond)).abs().max()) < TOL
    state = StateStore(initial={"steps": 4, "strength": 1.0, "depth": 2}).snapshot
    request = request_from_state(state, cond={"speaker": speaker[0]}, seed=3)
    shape = tuple(x.shape[1:])
    a = run_alone(eager, request, shape, depth=2, state=state, frame_dim=1)
    b = run_alone(ort, request, shape, depth=2, state=state, frame_dim=1)
    assert float((a.latent - b.latent).abs().max()) < 1e-3


def test_ring_on_ort_keeps_in_flight_slots_through_a_live_change(specs, tmp_path):
    """A live step change on an ORT-backed ring discards nothing (the ring does not know the backend)."""
    spec = specs["video_sr_refiner_x4"]
    module = spec.module.module
    ort = make_denoiser(Backend.ORT, spec, TorchDenoiser(module, module), cache=tmp_path, threads=1)
    x, _, z_up = spec.make_inputs({"batch": 1, "height": 8, "width": 8})
    store = StateStore(initial={"steps": 4, "strength": 1.0, "depth": 4})
    ring = Ring(ort, tuple(x.shape[1:]), store=store,
                factory=lambda state: request_from_state(state, cond={"z_up": z_up[0]}))
    for _ in range(3):
        ring.tick()
    in_flight = set(ring.in_flight())
    assert len(in_flight) >= 3
    store.update({"steps": 2})
    done = []
    for _ in range(6):
        done += ring.tick()
    assert in_flight <= {c.request.id for c in done}
    assert all(torch.isfinite(c.latent).all() for c in done)


def test_export_is_cached_by_key(specs, tmp_path):
    spec = specs["voice_converter"]
    first = cached_export(spec, tmp_path)
    stamp = first.stat().st_mtime_ns
    assert cached_export(spec, tmp_path) == first and first.stat().st_mtime_ns == stamp
    changed_module = type(spec.module)(type(spec.module.module)(), spec.module.keys)
    changed = dataclasses.replace(spec, module=changed_module.eval())
    assert export_key(changed) != export_key(spec)


def _key(**change):
    base = dict(name="music_dit", onnx_sha256="a" * 64, profile={"batch": (1, 2, 16), "frames": (16, 750, 3000)},
                precision="fp16", trt_version="10.9.0", gpu_sm="9.0")
    return EngineKey.make(**{**base, **change})


def test_engine_cache_key_changes_with_every_part(tmp_path):
    cache = EngineCache(tmp_path)
    base = _key()
    plan = cache.store(base, b"engine-bytes", {"onnx": "x.onnx"})
    assert cache.lookup(base) == plan and cache.lookup(_key()) == plan  # same key: reused
    for change in ({"onnx_sha256": "b" * 64}, {"profile": {"batch": (1, 2, 8), "frames": (16, 750, 3000)}},
                   {"profile": {"batch": (1, 2, 16), "frames": (16, 500, 3000)}}, {"precision": "bf16"},
                   {"trt_version": "10.10.0"}, {"gpu_sm": "8.9"}):
        other = _key(**change)
        assert other.digest() != base.digest(), change
        assert cache.lookup(other) is None, change  # a new engine would be built
    meta = json.loads(cache.paths(base)[1].read_text())
    assert meta["key"]["gpu_sm"] == "9.0" and meta["key"]["precision"] == "fp16" and meta["bytes"] == 12


def test_engine_cache_distrusts_a_bad_sidecar(tmp_path):
    cache = EngineCache(tmp_path)
    key = _key()
    plan = cache.store(key, b"engine-bytes")
    sidecar = cache.paths(key)[1]
    sidecar.write_text(json.dumps({"key": _key(gpu_sm="8.0").fields(), "bytes": 12}))
    assert cache.lookup(key) is None
    cache.store(key, b"engine-bytes")
    plan.write_bytes(b"truncated")
    assert cache.lookup(key) is None
    sidecar.unlink()
    assert cache.lookup(key) is None


def test_engine_key_rejects_unknown_precision():
    with pytest.raises(ValueError, match="precision"):
        _key(precision="int3")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without an NVIDIA GPU")
def test_tensorrt_without_gpu_is_one_clear_error(specs, tmp_path):
    spec = specs["voice_converter"]
    eager = TorchDenoiser(spec.module.module, spec.module.module)
    with pytest.raises(BackendError, match="needs an NVIDIA GPU") as err:
        make_denoiser(Backend.TENSORRT, spec, eager, cache=tmp_path)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "engines").exists()


def test_unknown_backend_is_refused():
    with pytest.raises(BackendError, match="unknown backend 'onnx'.*torch, torch-compile, ort, tensorrt"):
        Backend.parse("onnx")


def test_ort_dit_pads_odd_lengths_as_the_model_does(specs, tmp_path):
    """The DiT export takes even lengths (patch size 2); an odd ring length is zero-padded and
    cropped outside the graph exactly as ACE-Step pads inside, so ORT equals eager."""
    spec = specs["music_dit"]
    eager_module = spec.module
    ort = OrtDenoiser(spec, tmp_path, threads=1)
    x, sigma, text, context = spec.make_inputs({"batch": 2, "frames": 21, "tokens": 24})
    with torch.no_grad():
        ref = eager_module(x, sigma, text, context)
    got = ort.denoise(x, sigma, {"text": text, "context": context})
    assert got.shape == x.shape
    assert float((got - ref).abs().max()) < TOL * max(1.0, float(ref.abs().max()))


def test_cli_renders_on_ort_like_eager_and_refuses_tensorrt_here(tiny_models, tmp_path, capsys, monkeypatch):
    from demon.cli import main
    from pipelines.audio_io import read_audio

    monkeypatch.setenv("DEMON_CACHE", str(tmp_path / "cache"))
    outs = {}
    for backend in ("torch", "ort"):
        out = tmp_path / f"{backend}.wav"
        assert main(["render", "music", "--prompt", "lofi piano, 84 bpm, A minor", "--seconds", "1", "--steps", "2",
                     "--model", str(tiny_models), "--out", str(out), "--backend", backend]) == 0
        outs[backend] = read_audio(out, 16000)
    assert abs(outs["torch"] - outs["ort"]).max() < 1e-3
    if not torch.cuda.is_available():
        capsys.readouterr()
        out = tmp_path / "trt.wav"
        assert main(["render", "music", "--prompt", "x", "--seconds", "1", "--model", str(tiny_models),
                     "--out", str(out), "--backend", "tensorrt"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("demon: error: --backend tensorrt needs an NVIDIA GPU") and "\n" not in err
        assert not out.exists()


def test_build_trt_cli(tmp_path, capsys, monkeypatch):
    """--onnx-only exports the house parts into the cache (no GPU needed) and a second run reuses them;
    without --onnx-only a machine with no GPU gets one line and exit 2."""
    from demon.cli import main

    cache = tmp_path / "cache"
    assert main(["build-trt", "--pipelines", "video-sr", "--onnx-only", "--cache", str(cache)]) == 0
    files = sorted(p.name for p in (cache / "onnx").glob("*.onnx"))
    assert [f.split("-")[0] for f in files] == [f"video_sr_{part}_x{scale}" for part in ("decoder", "refiner", "upsampler")
                                                for scale in (2, 4)]
    stamps = {p: p.stat().st_mtime_ns for p in (cache / "onnx").glob("*.onnx")}
    assert main(["build-trt", "--pipelines", "video-sr", "--onnx-only", "--cache", str(cache)]) == 0
    assert {p: p.stat().st_mtime_ns for p in (cache / "onnx").glob("*.onnx")} == stamps
    capsys.readouterr()
    assert main(["build-trt", "--pipelines", "music,nope", "--cache", str(cache)]) == 2
    assert "--pipelines: choose from" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["build-trt", "--pipelines", "video-sr", "--cache", str(cache)]) == 2
        err = capsys.readouterr().err.strip()
        assert err == ("demon: error: demon build-trt needs an NVIDIA GPU with CUDA; none is visible here "
                       "(torch.cuda.is_available() is False)")


def test_voice_stream_on_ort_matches_torch(tiny_voice, tmp_path):
    """--backend ort moves the converter and the streaming codec halves; the stream's output stays
    the torch stream's (within float rounding), chunk borders and crossfades included."""
    import numpy as np

    from engine import StateStore
    from trt_builds.bundle import with_backend
    from pipelines.voice.checkpoint import load_voice
    from pipelines.voice.params import VOICE_PARAMS
    from pipelines.voice.render import stream_through
    from pipelines.voice.stream import StreamingVC
    from trt_builds.ort import OrtStateful

    models, _ = load_voice(tiny_voice)
    ort = with_backend(models, Backend.ORT, cache=tmp_path, threads=1)
    assert isinstance(ort.encode, OrtStateful) and isinstance(ort.decode, OrtStateful)
    t = np.arange(16000 * 2) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 150 * t) * (t % 0.5 < 0.3)).astype(np.float32)
    speaker = torch.nn.functional.normalize(torch.randn(models.converter.blocks[0].film.in_features - 32), dim=0)
    outs = [stream_through(StreamingVC(m, speaker, StateStore(VOICE_PARAMS, {"seed": 1, "speech_threshold": 0.0}),
                                      watchdog=False), audio)
            for m in (models, ort)]
    assert outs[0].shape == outs[1].shape and np.abs(outs[0]).max() > 0.01
    assert np.abs(outs[0] - outs[1]).max() < 1e-3


def test_video_stream_on_ort_matches_torch(tiny_video_sr, tmp_path):
    import numpy as np

    from trt_builds.bundle import with_backend
    from pipelines.video_sr.checkpoint import load_video_sr
    from pipelines.video_sr.stream import StreamingSR

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (20, 28, 3), dtype=np.uint8) for _ in range(4)]
    for scale in (2, 4):
        models = load_video_sr(tiny_video_sr, scale)
        outs = []
        for m in (models, with_backend(models, Backend.ORT, cache=tmp_path, threads=1)):
            sr = StreamingSR(m)
            out = [y for f in frames for y in sr.push(f)] + sr.flush()
            outs.append(np.stack(out).astype(int))
        assert outs[0].shape == outs[1].shape == (4, 20 * scale, 28 * scale, 3)
        assert np.abs(outs[0] - outs[1]).max() <= 1  # uint8 rounding of float-identical frames


def test_engine_cache_says_why_it_skips_an_entry(tmp_path):
    said = []
    cache = EngineCache(tmp_path, said.append)
    key = _key()
    cache.store(key, b"engine-bytes")
    cache.paths(key)[1].write_text("{not json")
    assert cache.lookup(key) is None and cache.entries() == []
    assert len(said) == 2 and all("unreadable" in line for line in said)
    cache.store(key, b"engine-bytes")
    cache.paths(key)[0].write_bytes(b"truncated")
    assert cache.lookup(key) is None and "does not match" in said[-1]
    cache.paths(key)[1].unlink()
    assert cache.lookup(key) is None and "no sidecar" in said[-1]


def test_a_complete_folders_dit_exports_for_song_length_conditions(acestep_folders, tmp_path):
    """A complete folder's DiT cross-attends to lyrics, a timbre token and the caption (225 tokens
    for a short prompt here, far past the house's 64 caption tokens): its export's token profile
    reaches the conditioner's longest sequence, and a render on ORT gives eager's latents."""
    from pipelines.music.models import load_music_models
    from pipelines.music.render import MusicJob, conditions, generate_latents, job_frames
    from trt_builds.bundle import with_backend

    models = load_music_models(acestep_folders("turbo"))
    spec = models.export_spec()
    assert spec.profiles["tokens"].max == models.conditioner.max_tokens == 2048 + 1 + 256
    job = MusicJob("A calm piano piece with soft strings", 1.0, {"seed": 5},
                   lyrics="[verse]\nSoft notes in the morning\n[chorus]\nLa la la")
    cond, _ = conditions(models, job, job_frames(models, job.seconds))
    assert 64 < cond["text"].shape[0] <= spec.profiles["tokens"].max
    ort = with_backend(models, Backend.ORT, cache=tmp_path, threads=1)
    assert isinstance(ort.denoiser, OrtDenoiser)
    eager, got = generate_latents(models, job), generate_latents(ort, job)
    diff = float((got - eager).abs().max())
    print(f"complete turbo folder, 8 steps: max |ort - eager| = {diff:.3g}")
    assert got.shape == eager.shape == (25, 8)
    assert diff <= TOL * max(1.0, float(eager.abs().max()))


def test_build_trt_exports_a_complete_folder(acestep_folders, tmp_path, capsys):
    """`demon build-trt --model DIR --onnx-only` exports that folder's music parts (not the house's),
    with the song-length token profile; --model with another pipeline is one line and exit 2."""
    from demon.cli import main

    cache = tmp_path / "cache"
    assert main(["build-trt", "--model", str(acestep_folders("turbo")), "--onnx-only", "--cache", str(cache)]) == 0
    assert sorted(p.name.split("-")[0] for p in (cache / "onnx").glob("*.onnx")) == ["music_dit", "music_vae_decoder"]
    assert "'tokens': [1, 512, 2305]" in capsys.readouterr().err
    for argv in (["--pipelines", "video-sr"], ["--pipelines", "music,voice"]):
        assert main(["build-trt", "--model", str(acestep_folders("turbo")), "--onnx-only", *argv]) == 2
        assert capsys.readouterr().err.startswith("demon: error: --model: a music model folder builds only the music")
