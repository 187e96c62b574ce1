"""A tiny random but complete ACE-Step 1.5 folder, built in code and offline: what the
parity tests compare with diffusers, and what the benchmarks' "tiny complete folder"
figures run on.

    python -m pipelines.music.tiny_folder OUT [--variant turbo|base] [--audio 48k|16k]

Every component of a real folder is here, each tiny, with the real audio geometry:
48 kHz stereo, hop 1920 = 2*4*4*6*10, so 25 latent frames per second (or the house
models' 16 kHz mono, hop 640 = 2*4*8*10, also 25 frames per second). The tokenizer
is byte-level BPE without merges, built in code as a `Qwen2Tokenizer` (one token per
byte; `<|endoftext|>` one special token that also pads, as Qwen's does). The condition
encoder's silence latent is filled with small random values: a real folder carries
a learned one, and zeros would hide a wrong slice. `save_pretrained` writes it all.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

A = 8  # latent channels (ACE-Step 1.5 has 64)
TEXT_WIDTH = 16  # the text encoder's hidden size (Qwen3-Embedding-0.6B has 1024)
WIDTH = 32  # the DiT and condition encoder's hidden size (2048 in the 2B model)
ATTENTION = {"num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8, "rope_theta": 10000.0,
             "sliding_window": 16}
VARIANTS = ("turbo", "base")
# sample rate, audio channels and the VAE's downsampling ratios (their product is the hop)
AUDIO = {"48k": (48_000, 2, [2, 4, 4, 6, 10]), "16k": (16_000, 1, [2, 4, 8, 10])}


def build_tokenizer():
    from transformers import Qwen2Tokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    vocab = {char: i for i, char in enumerate(bytes_to_unicode().values())}
    vocab["<|endoftext|>"] = len(vocab)
    return Qwen2Tokenizer(vocab=vocab, merges=[], unk_token=None, eos_token="<|endoftext|>",
                          pad_token="<|endoftext|>")


def build_pipeline(variant: str = "turbo", seed: int = 0, audio: str = "48k"):
    """The in-memory AceStepPipeline of the tiny folder (`variant`: turbo or base; `audio`:
    48k stereo as ACE-Step 1.5, or 16k mono as the house models)."""
    from diffusers import AceStepPipeline, AutoencoderOobleck, FlowMatchEulerDiscreteScheduler
    from diffusers.models.transformers.ace_step_transformer import AceStepTransformer1DModel
    from diffusers.pipelines.ace_step import (AceStepAudioTokenDetokenizer, AceStepAudioTokenizer,
                                              AceStepConditionEncoder)
    from transformers import Qwen3Config, Qwen3Model

    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    turbo = variant == "turbo"
    tokenizer = build_tokenizer()
    torch.manual_seed(seed)
    transformer = AceStepTransformer1DModel(
        hidden_size=WIDTH, intermediate_size=64, num_hidden_layers=2, in_channels=3 * A,
        audio_acoustic_hidden_dim=A, patch_size=2, is_turbo=turbo, model_version=variant, **ATTENTION)
    text_encoder = Qwen3Model(Qwen3Config(
        hidden_size=TEXT_WIDTH, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, head_dim=8, vocab_size=len(tokenizer), max_position_embeddings=4096))
    condition_encoder = AceStepConditionEncoder(
        hidden_size=WIDTH, intermediate_size=64, text_hidden_dim=TEXT_WIDTH, timbre_hidden_dim=A,
        num_lyric_encoder_hidden_layers=2, num_timbre_encoder_hidden_layers=2, **ATTENTION)
    with torch.no_grad():
        condition_encoder.silence_latent.normal_(0.0, 0.1)
        condition_encoder.null_condition_emb.normal_(0.0, 1.0)
    pooling = {"pool_window_size": 5, "num_attention_pooler_hidden_layers": 1}
    audio_tokenizer = AceStepAudioTokenizer(
        hidden_size=WIDTH, intermediate_size=64, audio_acoustic_hidden_dim=A, fsq_dim=WIDTH,
        fsq_input_levels=[4, 4, 4], fsq_input_num_quantizers=1, **pooling, **ATTENTION)
    audio_token_detokenizer = AceStepAudioTokenDetokenizer(
        hidden_size=WIDTH, intermediate_size=64, audio_acoustic_hidden_dim=A, **pooling, **ATTENTION)
    rate, channels, ratios = AUDIO[audio]
    vae = AutoencoderOobleck(
        encoder_hidden_size=2 * A, downsampling_ratios=ratios, channel_multiples=[1] * len(ratios),
        decoder_channels=4, decoder_input_channels=A, audio_channels=channels, sampling_rate=rate)
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1, shift=1.0)
    return AceStepPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, transformer=transformer,
        condition_encoder=condition_encoder, scheduler=scheduler, audio_tokenizer=audio_tokenizer,
        audio_token_detokenizer=audio_token_detokenizer)


def build_folder(root: Path | str, variant: str = "turbo", seed: int = 0, audio: str = "48k") -> Path:
    """Save the tiny pipeline under `root` (safetensors) and return the folder."""
    from transformers.utils import logging as transformers_logging

    root = Path(root)
    pipeline = build_pipeline(variant, seed, audio)
    # transformers' save_pretrained draws a "Writing model shards" bar on stderr, and the folder is
    # built inside the first test that asks for it, whose captured stderr it would then spoil
    was_enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        pipeline.save_pretrained(str(root), safe_serialization=True)
    finally:
        if was_enabled:
            transformers_logging.enable_progress_bar()
    return root


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="Write a tiny random complete ACE-Step 1.5 folder.")
    ap.add_argument("out", type=Path)
    ap.add_argument("--variant", choices=VARIANTS, default="turbo")
    ap.add_argument("--audio", choices=tuple(AUDIO), default="48k")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    print(build_folder(args.out, args.variant, args.seed, args.audio))
    return 0


if __name__ == "__main__":
    sys.exit(main())
