"""What the voice models export for the compiled backends, and the profiles they serve.

Batch is 1-16 (the ring's padded batch). The length profiles:

  voice_converter     latent frames 4-256 (opt 12 = 40 ms chunk + 80 ms context)
  voice_encoder       samples 160-10240 in whole 10 ms frames (opt 640 = one 40 ms chunk), with state
  voice_decoder       latent frames 1-64 (opt 4 = one 40 ms chunk), with its cached state

On ONNX Runtime the streaming codec halves run on it too, so a stream's whole
per-chunk work leaves torch eager.
"""

from __future__ import annotations

import torch

from trt_builds.export import BATCH, AxisProfile, CondModule, ExportSpec, PartKind, example_randn, stateful_spec

from .models import sigma_features


def voice_encoder_spec(codec) -> ExportSpec:
    profiles = {"batch": BATCH, "samples": AxisProfile(160, 640, 10240, multiple=160)}
    return stateful_spec("voice_encoder", codec.encoder.eval(), {0: "batch", 2: "samples"}, profiles,
                         lambda s: 0.1 * example_randn(s["batch"], 1, s["samples"]), kind=PartKind.ENCODER)


def voice_converter_spec(converter) -> ExportSpec:
    latent = converter.inp.in_channels
    speaker = converter.blocks[0].film.in_features - sigma_features(torch.zeros(1)).shape[-1]
    profiles = {"batch": BATCH, "frames": AxisProfile(4, 12, 256)}

    def make(s):
        b = s["batch"]
        return (example_randn(b, latent, s["frames"]), torch.rand(b),
                torch.nn.functional.normalize(example_randn(b, speaker), dim=-1))

    return ExportSpec("voice_converter", CondModule(converter, ("speaker",)).eval(), ("x", "sigma", "speaker"),
                      ("velocity",), {"x": {0: "batch", 2: "frames"}, "sigma": {0: "batch"}, "speaker": {0: "batch"}},
                      profiles, make)


def voice_decoder_spec(codec) -> ExportSpec:
    profiles = {"batch": BATCH, "frames": AxisProfile(1, 4, 64)}
    return stateful_spec("voice_decoder", codec.decoder.eval(), {0: "batch", 2: "frames"}, profiles,
                         lambda s: example_randn(s["batch"], codec.cfg.latent, s["frames"]))
