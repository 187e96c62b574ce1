"""What the music models export for the compiled backends, and the profiles they serve.

Batch is 1-16 (the ring's padded batch; guidance doubles the rows, so depth 8 with
guidance fills it). The length profiles:

  music_dit           frames 16-3000 (opt 750 = 30 s at 25 frames/s), even (patch size 2);
                      condition tokens: the folder's sequence of lyrics, one timbre token
                      and caption 1-2305 (each at its tokenizer cap: 2048 + 1 + 256; opt
                      512, a caption with a verse or two of lyrics)
  music_vae_decoder   latent frames 1-3000 (opt 64: one tick of playback plus its halo)
"""

from __future__ import annotations

from typing import Mapping

import torch

from trt_builds.export import BATCH, AxisProfile, CondModule, ExportSpec, PartKind, example_randn

from .dit import dit_call


SONG_TOKENS_OPT = 512


def song_tokens(max_tokens: int) -> AxisProfile:
    """The folder's condition sequence, up to the longest its conditioner gives."""
    return AxisProfile(1, min(SONG_TOKENS_OPT, max_tokens), max_tokens)


def music_dit_spec(dit, tokens: AxisProfile) -> ExportSpec:
    cfg = dit.config
    c, ctx = cfg.audio_acoustic_hidden_dim, cfg.in_channels - cfg.audio_acoustic_hidden_dim
    width = cfg.encoder_hidden_size or cfg.hidden_size
    profiles = {"batch": BATCH, "frames": AxisProfile(16, 750, 3000, multiple=cfg.patch_size), "tokens": tokens}

    def make(s: Mapping[str, int]):
        b, t = s["batch"], s["frames"]
        return (example_randn(b, t, c), torch.rand(b, generator=torch.Generator().manual_seed(b)),
                example_randn(b, s["tokens"], width), example_randn(b, t, ctx))

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
                      lambda s: (example_randn(s["batch"], c, s["frames"]),), kind=PartKind.DECODER)
