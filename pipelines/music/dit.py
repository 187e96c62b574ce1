"""ACE-Step 1.5's DiT (diffusers' AceStepTransformer1DModel) behind the Denoiser protocol."""

from __future__ import annotations

from typing import Any, Mapping

import torch

from engine import TorchDenoiser

# A tiny configuration of the real architecture: 7.1M parameters at hidden 256 and
# 6 layers (../shared/DESIGN.md, "Budgets"); 64 latent channels at 25 frames/s as in ACE-Step 1.5.
TINY_DIT: Mapping[str, Any] = {
    "hidden_size": 256,
    "intermediate_size": 768,
    "num_hidden_layers": 6,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 64,
    "in_channels": 64 + 64 + 64,  # noisy latent + source latent + chunk mask, as ACE-Step packs them
    "audio_acoustic_hidden_dim": 64,
    "patch_size": 2,
    "sliding_window": 64,
    "encoder_hidden_size": 384,  # all-MiniLM-L6-v2 sentence embeddings
}


# The shipped house DiT: the same class sized to train here in under an hour, on the
# house VAE's 16 latent channels, conditioned on MiniLM caption tokens.
HOUSE_DIT: Mapping[str, Any] = {
    **TINY_DIT,
    "num_hidden_layers": 4,
    "in_channels": 16 * 3,
    "audio_acoustic_hidden_dim": 16,
}


def build_dit(config: Mapping[str, Any] = TINY_DIT, seed: int = 0):
    from diffusers import AceStepTransformer1DModel

    torch.manual_seed(seed)
    return AceStepTransformer1DModel(**config).eval()


def dit_call(model, x: torch.Tensor, sigma: torch.Tensor, cond: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The DiT's keyword call as `(x, sigma, cond)`.

    cond holds `text` (B, L, encoder_hidden_size) and `context` (B, T, 2*C): the
    source latent and chunk mask that ACE-Step feeds beside the noisy latent.
    """
    return model(
        hidden_states=x,
        timestep=sigma,
        timestep_r=sigma,
        encoder_hidden_states=cond["text"],
        context_latents=cond["context"],
        return_dict=False,
    )[0]


def dit_denoiser(model) -> TorchDenoiser:
    """The DiT behind `denoise(x, sigma, cond)` on torch eager."""
    return TorchDenoiser(model, lambda x, sigma, cond: dit_call(model, x, sigma, cond))


TEXT_TOKENS = 8  # caption embedding tokens handed to cross-attention


def dit_cond(frames: int, seed: int, config: Mapping[str, Any] = TINY_DIT) -> dict[str, torch.Tensor]:
    """A stand-in caption embedding and an empty context (text-to-music, no source).

    Until the music pipeline's text encoder exists, demo and benchmark conditions
    are seeded random embeddings of the right shape.
    """
    g = torch.Generator().manual_seed(seed)
    width = config.get("encoder_hidden_size") or config["hidden_size"]
    return {
        "text": torch.randn(TEXT_TOKENS, width, generator=g),
        "context": torch.zeros(frames, config["in_channels"] - config["audio_acoustic_hidden_dim"]),
    }


def dit_null_cond(frames: int, config: Mapping[str, Any] = TINY_DIT) -> dict[str, torch.Tensor]:
    """The null condition for classifier-free guidance: zero text, empty context."""
    cond = dit_cond(frames, 0, config)
    return {k: torch.zeros_like(v) for k, v in cond.items()}


def latent_shape(frames: int, config: Mapping[str, Any] = TINY_DIT) -> tuple[int, int]:
    """ACE-Step latents are (T, C): frames first, so the frame axis is 0."""
    return (frames, config["audio_acoustic_hidden_dim"])
