"""The music codec: diffusers' AutoencoderOobleck (ACE-Step 1.5's VAE class).

The house configuration is a tiny one at 16 kHz mono and 25 latent frames/s (hop
640 = 2*4*8*10, all even strides so a window of frames decodes to exactly
frames*hop samples), with 16 latent channels (ACE-Step 1.5 has 64; a base width of 128 channels at
the full sample rate, which 64 latents would need, does not train in an hour here). An
8 kHz variant (hop 2*4*4*10, a 40-channel decoder) trained 45 minutes from scratch kept
no key at all (README, Benchmarks), so the shipped 16 kHz one stays the recipe.
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping

import torch

from engine.windowed import DecoderGeometry, measure_halo

# diffusers' Oobleck still uses torch's deprecated weight_norm; the warning says nothing
# a user of demon can act on.
warnings.filterwarnings("ignore", message=r".*torch\.nn\.utils\.weight_norm.*is deprecated", category=FutureWarning)

SAMPLE_RATE = 16_000
FRAME_RATE = 25
HOP = SAMPLE_RATE // FRAME_RATE

TINY_CODEC: Mapping[str, Any] = {
    "encoder_hidden_size": 32,
    "downsampling_ratios": [2, 4, 8, 10],
    "channel_multiples": [1, 2, 4, 8],
    "decoder_channels": 24,
    "decoder_input_channels": 16,  # the encoder emits 32 = 16 means + 16 scales
    "audio_channels": 1,
    "sampling_rate": SAMPLE_RATE,
}


def build_codec(config: Mapping[str, Any] = TINY_CODEC, seed: int = 0):
    from diffusers import AutoencoderOobleck

    torch.manual_seed(seed)
    return AutoencoderOobleck(**config).eval()


def codec_hop(model) -> int:
    hop = 1
    for r in model.config.downsampling_ratios:
        hop *= r
    return hop


def decoder_fn(model):
    """(B, C, T) latents -> (B, audio_channels, T * hop) samples, no autograd."""

    def decode(z: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model.decoder(z)

    return decode


def encode_mean(model, audio: torch.Tensor) -> torch.Tensor:
    """(B, audio_channels, N) samples -> (B, C, N / hop) latent means (deterministic)."""
    with torch.inference_mode():
        h = model.encoder(audio)
        mean, _ = h.chunk(2, dim=1)
    return mean


def measure_geometry(model) -> DecoderGeometry:
    hop = codec_hop(model)
    return DecoderGeometry(hop=hop, halo=measure_halo(decoder_fn(model), model.config.decoder_input_channels, hop))
