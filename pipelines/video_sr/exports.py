"""What the video SR models export for the compiled backends, and the profiles they serve.

Batch is 1-16 (the ring's padded batch). The size profiles:

  video_sr_refiner    latent grid 8-288 x 8-512 (opt 270 x 480: 1920x1080 out, from 480x270 at 4x
                      or 960x540 at 2x)
  video_sr_decoder    one frame, the same grid, with its cached temporal state
  video_sr_upsampler  one LR frame (the latent grid times 4 / scale), with its cached state

On ONNX Runtime the streaming parts (upsampler and decoder) run on it too, so a
stream's whole per-frame work leaves torch eager.
"""

from __future__ import annotations

import torch

from trt_builds.export import BATCH, AxisProfile, CondModule, ExportSpec, PartKind, example_randn, stateful_spec

LATENT_GRID = {"batch": BATCH, "height": AxisProfile(8, 270, 288), "width": AxisProfile(8, 480, 512)}


def video_sr_refiner_spec(refiner, cfg, scale: int) -> ExportSpec:
    profiles = LATENT_GRID
    axes = {0: "batch", 2: "height", 3: "width"}

    def make(s):
        shape = (s["batch"], cfg.latent_channels, s["height"], s["width"])
        return example_randn(*shape), torch.rand(s["batch"]), example_randn(*shape)

    return ExportSpec(f"video_sr_refiner_x{scale}", CondModule(refiner, ("z_up",)).eval(), ("x", "sigma", "z_up"),
                      ("velocity",), {"x": axes, "sigma": {0: "batch"}, "z_up": axes}, profiles, make)


def video_sr_decoder_spec(decoder, cfg, scale: int) -> ExportSpec:
    profiles = LATENT_GRID
    return stateful_spec(f"video_sr_decoder_x{scale}", decoder.eval(), {0: "batch", 3: "height", 4: "width"}, profiles,
                         lambda s: example_randn(s["batch"], cfg.latent_channels, 1, s["height"], s["width"]))


def video_sr_upsampler_spec(upsampler, scale: int) -> ExportSpec:
    f = 4 // scale  # LR pixels per latent cell
    profiles = {"batch": BATCH, **{k: AxisProfile(p.min * f, p.opt * f, p.max * f, multiple=f)
                                  for k, p in LATENT_GRID.items() if k != "batch"}}
    return stateful_spec(f"video_sr_upsampler_x{scale}", upsampler.eval(), {0: "batch", 3: "height", 4: "width"},
                         profiles, lambda s: torch.rand(s["batch"], 3, 1, s["height"], s["width"]), kind=PartKind.ENCODER)
