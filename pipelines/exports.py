"""What each house model exports for the compiled backends, and the profiles it serves.

One ExportSpec per denoiser and per decoder window. Batch is 1-16 everywhere (the ring's
padded batch; guidance doubles the rows, so depth 8 with guidance fills it). The length
or size profiles:

  music_dit           frames 16-3000 (opt 750 = 30 s at 25 frames/s), even (patch size 2);
                      caption tokens 1-64 (opt 24, the padded caption length)
  music_vae_decoder   latent frames 1-3000 (opt 64: one tick of playback plus its halo)
  video_sr_refiner    latent grid 8-288 x 8-512 (opt 270 x 480: 1920x1080 out, from 480x270 at 4x
                      or 960x540 at 2x)
  video_sr_decoder    one frame, the same grid, with its cached temporal state
  video_sr_upsampler  one LR frame (the latent grid times 4 / scale), with its cached state
  voice_converter     latent frames 4-256 (opt 12 = 40 ms chunk + 80 ms context)
  voice_encoder       samples 160-10240 in whole 10 ms frames (opt 640 = one 40 ms chunk), with state
  voice_decoder       latent frames 1-64 (opt 4 = one 40 ms chunk), with its cached state

On ONNX Runtime the streaming parts (voice encoder and decoder, video upsampler and
decoder) run on it too, so a stream's whole per-chunk work leaves torch eager.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterator, Mapping

import torch

from trt_builds.backends import Backend, make_denoiser
from trt_builds.export import BATCH, AxisProfile, ExportSpec, PartKind, stateful_spec


class CondModule(torch.nn.Module):
    """(x, sigma, *cond tensors) positional, for export, around a `forward(x, sigma, cond dict)`."""

    def __init__(self, module: torch.nn.Module, keys: tuple[str, ...], call: Callable | None = None):
        super().__init__()
        self.module = module
        self.keys = keys
        self.call = call

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, *conds: torch.Tensor) -> torch.Tensor:
        cond = dict(zip(self.keys, conds))
        return self.call(self.module, x, sigma, cond) if self.call else self.module(x, sigma, cond)


LATENT_GRID = {"batch": BATCH, "height": AxisProfile(8, 270, 288), "width": AxisProfile(8, 480, 512)}


def _randn(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape)))


def music_dit_spec(dit) -> ExportSpec:
    from .music.dit import dit_call

    cfg = dit.config
    c, ctx = cfg.audio_acoustic_hidden_dim, cfg.in_channels - cfg.audio_acoustic_hidden_dim
    width = cfg.encoder_hidden_size or cfg.hidden_size
    profiles = {"batch": BATCH, "frames": AxisProfile(16, 750, 3000, multiple=cfg.patch_size),
                "tokens": AxisProfile(1, 24, 64)}

    def make(s: Mapping[str, int]):
        b, t = s["batch"], s["frames"]
        return (_randn(b, t, c), torch.rand(b, generator=torch.Generator().manual_seed(b)),
                _randn(b, s["tokens"], width), _randn(b, t, ctx))

    return ExportSpec("music_dit", CondModule(dit, ("text", "context"), dit_call).eval(),
                      ("x", "sigma", "text", "context"), ("velocity",),
                      {"x": {0: "batch", 1: "frames"}, "sigma": {0: "batch"}, "text": {0: "batch", 1: "tokens"},
                       "context": {0: "batch", 1: "frames"}}, profiles, make)


class _Decoder(torch.nn.Module):
    def __init__(self, decoder: torch.nn.Module):
        super().__init__()
        self.decoder = decoder

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)


def music_decoder_spec(vae) -> ExportSpec:
    c = int(vae.config.decoder_input_channels)
    profiles = {"batch": BATCH, "frames": AxisProfile(1, 64, 3000)}
    return ExportSpec("music_vae_decoder", _Decoder(vae.decoder).eval(), ("x",), ("audio",),
                      {"x": {0: "batch", 2: "frames"}}, profiles,
                      lambda s: (_randn(s["batch"], c, s["frames"]),), kind=PartKind.DECODER)


def video_sr_refiner_spec(refiner, cfg, scale: int) -> ExportSpec:
    profiles = LATENT_GRID
    axes = {0: "batch", 2: "height", 3: "width"}

    def make(s):
        shape = (s["batch"], cfg.latent_channels, s["height"], s["width"])
        return _randn(*shape), torch.rand(s["batch"]), _randn(*shape)

    return ExportSpec(f"video_sr_refiner_x{scale}", CondModule(refiner, ("z_up",)).eval(), ("x", "sigma", "z_up"),
                      ("velocity",), {"x": axes, "sigma": {0: "batch"}, "z_up": axes}, profiles, make)


def video_sr_decoder_spec(decoder, cfg, scale: int) -> ExportSpec:
    profiles = LATENT_GRID
    return stateful_spec(f"video_sr_decoder_x{scale}", decoder.eval(), {0: "batch", 3: "height", 4: "width"}, profiles,
                         lambda s: _randn(s["batch"], cfg.latent_channels, 1, s["height"], s["width"]))


def video_sr_upsampler_spec(upsampler, scale: int) -> ExportSpec:
    f = 4 // scale  # LR pixels per latent cell
    profiles = {"batch": BATCH, **{k: AxisProfile(p.min * f, p.opt * f, p.max * f, multiple=f)
                                  for k, p in LATENT_GRID.items() if k != "batch"}}
    return stateful_spec(f"video_sr_upsampler_x{scale}", upsampler.eval(), {0: "batch", 3: "height", 4: "width"},
                         profiles, lambda s: torch.rand(s["batch"], 3, 1, s["height"], s["width"]), kind=PartKind.ENCODER)


def voice_encoder_spec(codec) -> ExportSpec:
    profiles = {"batch": BATCH, "samples": AxisProfile(160, 640, 10240, multiple=160)}
    return stateful_spec("voice_encoder", codec.encoder.eval(), {0: "batch", 2: "samples"}, profiles,
                         lambda s: 0.1 * _randn(s["batch"], 1, s["samples"]), kind=PartKind.ENCODER)


def voice_converter_spec(converter) -> ExportSpec:
    from .voice.models import sigma_features

    latent = converter.inp.in_channels
    speaker = converter.blocks[0].film.in_features - sigma_features(torch.zeros(1)).shape[-1]
    profiles = {"batch": BATCH, "frames": AxisProfile(4, 12, 256)}

    def make(s):
        b = s["batch"]
        return _randn(b, latent, s["frames"]), torch.rand(b), torch.nn.functional.normalize(_randn(b, speaker), dim=-1)

    return ExportSpec("voice_converter", CondModule(converter, ("speaker",)).eval(), ("x", "sigma", "speaker"),
                      ("velocity",), {"x": {0: "batch", 2: "frames"}, "sigma": {0: "batch"}, "speaker": {0: "batch"}},
                      profiles, make)


def voice_decoder_spec(codec) -> ExportSpec:
    profiles = {"batch": BATCH, "frames": AxisProfile(1, 4, 64)}
    return stateful_spec("voice_decoder", codec.decoder.eval(), {0: "batch", 2: "frames"}, profiles,
                         lambda s: _randn(s["batch"], codec.cfg.latent, s["frames"]))


def with_backend(models, backend: Backend, **options):
    """The same model bundle with its denoiser on `backend` (one line of error where it cannot run)."""
    if backend is Backend.TORCH:
        return models
    models = dataclasses.replace(models, denoiser=make_denoiser(backend, models.export_spec(), models.denoiser, **options))
    if backend is Backend.ORT:  # the codec/decoder parts too, so the whole per-tick work leaves torch eager
        from trt_builds.export import cached_export, default_cache
        from trt_builds.ort import OrtPart, OrtStateful

        cache, threads = options.get("cache") or default_cache(), options.get("threads")
        parts = {}
        for field, spec in models.ort_parts().items():
            if len(spec.outputs) > 1:  # a streaming part: (x, state) -> (y, state)
                parts[field] = OrtStateful(spec, cache, threads)
            else:
                part = OrtPart(spec, cached_export(spec, cache), threads)
                parts[field] = lambda z, part=part: part(z)[0]
        models = dataclasses.replace(models, **parts)
    return models


def house_specs(which: tuple[str, ...] = ("music", "video-sr", "voice")) -> Iterator[ExportSpec]:
    """Every exportable part of the shipped house models (a pipeline without models is skipped by the caller)."""
    if "music" in which:
        from .music.models import load_music_models

        m = load_music_models()
        yield music_dit_spec(m.transformer)
        yield music_decoder_spec(m.codec.vae)
    if "video-sr" in which:
        from .video_sr.checkpoint import load_video_sr

        for scale in (4, 2):
            v = load_video_sr(None, scale)
            yield from v.ort_parts().values()
            yield v.export_spec()
    if "voice" in which:
        from .voice.checkpoint import load_voice

        models, _ = load_voice()
        yield voice_converter_spec(models.converter)
        yield voice_encoder_spec(models.codec)
        yield voice_decoder_spec(models.codec)
