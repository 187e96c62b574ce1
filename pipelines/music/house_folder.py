"""The house music models as a complete ACE-Step 1.5 folder: its parts, built and saved.

The folder holds what a real checkpoint holds, each tiny: the house VAE (16 kHz mono,
hop 640, 16 latent channels), the offline MiniLM as text encoder and tokenizer
(text_parts.py links it), a small condition encoder whose silence latent is the VAE's
latent of digital silence, the house DiT reading that encoder's output, and the
scheduler config ACE-Step's pipeline expects. diffusers' own AceStepPipeline loads it.
"""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

import torch

from .codec import codec_hop, encode_mean
from .dit import HOUSE_DIT
from .text_parts import link_text_parts

TEXT_WIDTH = 384  # all-MiniLM-L6-v2's hidden size
SILENCE_FRAMES = 15000  # the length of AceStepConditionEncoder's silence_latent buffer
SAVED_PARTS = ("model_index.json", "scheduler", "transformer", "condition_encoder")

HOUSE_CONDITION: Mapping[str, Any] = {
    "hidden_size": 256,
    "intermediate_size": 512,
    "text_hidden_dim": TEXT_WIDTH,
    "timbre_hidden_dim": HOUSE_DIT["audio_acoustic_hidden_dim"],
    "num_lyric_encoder_hidden_layers": 1,
    "num_timbre_encoder_hidden_layers": 1,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 64,
    "sliding_window": 64,
}

# The house DiT, reading the condition encoder's sequence; a base checkpoint (APG by default).
HOUSE_FOLDER_DIT: Mapping[str, Any] = {
    **HOUSE_DIT,
    "encoder_hidden_size": HOUSE_CONDITION["hidden_size"],
    "is_turbo": False,
    "model_version": "base",
}


def silence_latent(vae, frames: int = SILENCE_FRAMES) -> torch.Tensor:
    """(1, frames, A): the VAE's latent of digital silence, as float16 would store it.

    The encoder is a convolution, so silence gives one latent vector away from the
    padded edges: 4 s are encoded and the middle frame is tiled."""
    probe = 100
    zeros = torch.zeros(1, int(vae.config.audio_channels), probe * codec_hop(vae))
    frame = encode_mean(vae, zeros)[0, :, probe // 2]
    return frame.half().float()[None, None].expand(1, frames, frame.numel()).clone()


def load_text_parts(folder: Path):
    """(tokenizer, frozen BertModel) from folder/tokenizer and folder/text_encoder."""
    from transformers import AutoTokenizer, BertModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(str(folder / "tokenizer"), local_files_only=True)
    encoder = BertModel.from_pretrained(str(folder / "text_encoder"), local_files_only=True, use_safetensors=True,
                                        dtype=torch.float32).eval()
    encoder.requires_grad_(False)
    return tokenizer, encoder


def build_condition_encoder(silence: torch.Tensor, seed: int = 0):
    from diffusers.pipelines.ace_step import AceStepConditionEncoder

    torch.manual_seed(seed)
    encoder = AceStepConditionEncoder(**HOUSE_CONDITION)
    with torch.no_grad():
        encoder.silence_latent.copy_(silence)
    return encoder


def build_transformer(seed: int = 0):
    from diffusers import AceStepTransformer1DModel

    torch.manual_seed(seed)
    return AceStepTransformer1DModel(**HOUSE_FOLDER_DIT)


def load_trained(folder: Path):
    """(transformer, condition encoder) of a complete house folder, in float32, to train on."""
    from diffusers import AceStepTransformer1DModel
    from diffusers.pipelines.ace_step import AceStepConditionEncoder

    parts = []
    for cls, name in ((AceStepTransformer1DModel, "transformer"), (AceStepConditionEncoder, "condition_encoder")):
        parts.append(cls.from_pretrained(str(folder / name), local_files_only=True, torch_dtype=torch.float32,
                                         low_cpu_mem_usage=False))
    return tuple(parts)


def warm_start(dit, encoder, previous) -> list[str]:
    """Start from the two-part house DiT (MiniLM caption tokens through its 384-wide
    condition_embedder): its caption path becomes the text projector with an identity
    embedder, so captions reach the DiT as before; the new context channels, the lyric
    and timbre tokens and the null embedding start at zero, which the old DiT saw as
    padding. Returns the parameters that could not be copied."""
    old = previous.state_dict()
    a = int(dit.config.audio_acoustic_hidden_dim)
    skipped = []
    with torch.no_grad():
        for name, param in dit.state_dict().items():
            if name.startswith("condition_embedder."):
                continue
            if name in old and old[name].shape == param.shape:
                param.copy_(old[name])
            else:
                skipped.append(name)
        dit.proj_in_conv.weight[:, : 2 * a].zero_()
        encoder.text_projector.weight.copy_(old["condition_embedder.weight"])
        dit.condition_embedder.weight.copy_(torch.eye(dit.condition_embedder.weight.shape[0]))
        dit.condition_embedder.bias.copy_(old["condition_embedder.bias"])
        encoder.lyric_encoder.norm.weight.zero_()
        encoder.timbre_encoder.norm.weight.zero_()
        encoder.null_condition_emb.zero_()
    return skipped


def _relative_name(config: Path, folder: str, part: str) -> None:
    """A resumed model carries the path it was loaded from in its config: name it by the
    folder it is saved in, relative (no machine's paths in a shipped folder)."""
    if config.is_file():
        loaded = json.loads(config.read_text())
        if "_name_or_path" in loaded:
            config.write_text(json.dumps({**loaded, "_name_or_path": f"models/{folder}/{part}"}, indent=2) + "\n")


def save_folder(out: Path, vae_folder: Path, vae, tokenizer, text_encoder, dit, encoder) -> Path:
    """Write the complete folder: AceStepPipeline.save_pretrained's model_index.json,
    scheduler, transformer and condition encoder (float16 weights), the VAE copied as
    it is (weights and card) and the MiniLM linked from its package."""
    from diffusers import AceStepPipeline, FlowMatchEulerDiscreteScheduler

    pipe = AceStepPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
        transformer=copy.deepcopy(dit).eval().half(), condition_encoder=copy.deepcopy(encoder).eval().half(),
        scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1, shift=1.0))
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pipe.save_pretrained(tmp, safe_serialization=True)
        for part in SAVED_PARTS:
            _relative_name(Path(tmp) / part / "config.json", out.name, part)
            source, target = Path(tmp) / part, out / part
            if source.is_dir():
                shutil.rmtree(target, ignore_errors=True)
                shutil.copytree(source, target)
            else:
                shutil.copy2(source, target)
    if vae_folder.resolve() != (out / "vae").resolve():
        shutil.rmtree(out / "vae", ignore_errors=True)
        shutil.copytree(vae_folder, out / "vae", ignore=shutil.ignore_patterns("__pycache__"))
    link_text_parts(out)
    return out
