"""TensorRT builds and runtime; these run only where an NVIDIA GPU and TensorRT are present."""

from __future__ import annotations

import importlib.util

import pytest
import torch

pytestmark = [
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU (torch.cuda.is_available() is False)"),
    pytest.mark.skipif(importlib.util.find_spec("tensorrt") is None, reason="needs the optional extra: pip install 'demon[tensorrt]'"),
]


@pytest.fixture(scope="module")
def converter_spec(tiny_voice):
    from pipelines.voice.exports import voice_converter_spec
    from pipelines.voice.checkpoint import load_voice

    models, _ = load_voice(tiny_voice)
    return voice_converter_spec(models.converter.cuda())


def _cuda(inputs):
    return tuple(t.cuda() for t in inputs)


def test_engine_parity_per_batch_size_with_cuda_graphs(converter_spec, tmp_path):
    from trt_builds.tensorrt import TrtPart

    part = TrtPart(converter_spec, tmp_path, precision="fp32")
    for batch in (1, 3, 16):
        inputs = _cuda(converter_spec.make_inputs({"batch": batch, "frames": 12}))
        with torch.no_grad():
            ref = converter_spec.module(*inputs)
        (got,) = part(*inputs)
        (again,) = part(*inputs)  # the captured graph replayed
        assert torch.equal(got, again)
        assert float((got - ref).abs().max()) < 1e-3
    assert len(part.graphs) == 3


def test_engine_cache_reuses_the_same_key_and_rebuilds_for_another(converter_spec, tmp_path):
    from trt_builds.tensorrt import cached_engine

    path, key, built = cached_engine(converter_spec, tmp_path, "fp16")
    assert built and path.is_file() and path.with_suffix(".json").is_file()
    again, key2, built2 = cached_engine(converter_spec, tmp_path, "fp16")
    assert (again, key2, built2) == (path, key, False)
    other, key3, built3 = cached_engine(converter_spec, tmp_path, "fp32")
    assert built3 and other != path and key3.digest() != key.digest()


def test_refit_swaps_weights_without_a_rebuild(converter_spec, tmp_path):
    import copy

    from trt_builds.tensorrt import TrtPart

    part = TrtPart(converter_spec, tmp_path, precision="fp32")
    inputs = _cuda(converter_spec.make_inputs({"batch": 2, "frames": 12}))
    other = copy.deepcopy(converter_spec.module)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.05 * torch.randn_like(p))
        ref = other(*inputs)
    part.refit(other)
    (got,) = part(*inputs)
    assert float((got - ref).abs().max()) < 1e-3


def test_tensorrt_denoiser_runs_the_ring(converter_spec, tmp_path):
    from engine import StateStore, TorchDenoiser, request_from_state, run_alone
    from trt_builds.backends import Backend, make_denoiser

    import copy

    module = copy.deepcopy(converter_spec.module.module).cpu()  # the ring's tensors live on the CPU here
    eager = TorchDenoiser(module, module)
    trt = make_denoiser(Backend.TENSORRT, converter_spec, eager, cache=tmp_path, precision="fp32")
    x, _, speaker = converter_spec.make_inputs({"batch": 1, "frames": 12})
    state = StateStore(initial={"steps": 4, "strength": 1.0, "depth": 2}).snapshot
    request = request_from_state(state, cond={"speaker": speaker[0]}, seed=3)
    a = run_alone(eager, request, tuple(x.shape[1:]), depth=2, state=state, frame_dim=1)
    b = run_alone(trt, request, tuple(x.shape[1:]), depth=2, state=state, frame_dim=1)
    assert float((a.latent - b.latent).abs().max()) < 1e-2


@pytest.fixture(scope="module")
def acestep_turbo(acestep_folders):
    from pipelines.music.models import load_music_models

    return load_music_models(acestep_folders("turbo"))


def test_complete_folder_transformer_engine_and_render(acestep_turbo, tmp_path):
    """The complete folder's DiT builds with its song-length token profile; the engine matches
    torch from one token up to the profile's longest sequence, and a render on it gives eager's
    latents."""
    from pipelines.music.render import MusicJob, generate_latents
    from trt_builds.backends import Backend
    from trt_builds.bundle import with_backend
    from trt_builds.tensorrt import TrtPart

    spec = acestep_turbo.export_spec()
    longest = spec.profiles["tokens"].max
    part = TrtPart(spec, tmp_path, precision="fp32")
    for sizes in ({"batch": 1, "frames": 16, "tokens": 1}, {"batch": 3, "frames": 50, "tokens": 225},
                  {"batch": 2, "frames": 100, "tokens": longest}):
        inputs = spec.make_inputs(sizes)
        with torch.no_grad():
            ref = spec.module(*inputs)
        (got,) = part(*_cuda(inputs))
        assert float((got.cpu() - ref).abs().max()) < 1e-3, sizes
    job = MusicJob("A calm piano piece", 1.0, {"seed": 5}, lyrics="[verse]\nSoft notes")
    trt = with_backend(acestep_turbo, Backend.TENSORRT, cache=tmp_path, precision="fp32")
    a, b = generate_latents(acestep_turbo, job), generate_latents(trt, job)
    assert float((a - b).abs().max()) < 1e-2
