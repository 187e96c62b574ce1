"""Loading the music models: a complete ACE-Step 1.5 folder, or the shipped house models.

A complete folder has `model_index.json` and every component of diffusers'
AceStepPipeline (folder.py loads it): its text and condition encoders condition the
DiT, its latents are raw VAE latents, and it carries its own defaults.

The house layout (until the house models become a complete folder too) has only

    FOLDER/vae/config.json + diffusion_pytorch_model.safetensors          (AutoencoderOobleck)
    FOLDER/transformer/config.json + diffusion_pytorch_model.safetensors  (AceStepTransformer1DModel)

conditioned on MiniLM caption tokens (text.py), with `house.json` beside each config
(the card: metrics, training command, and for the VAE the latent statistics and the
measured decoder halo). `load_music_models` is the one place that tells them apart.
A missing or wrong folder is a clear error, never a download.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable
from pathlib import Path

import torch

from engine import Denoiser
from engine.windowed import DecoderGeometry

from ..errors import ModelFolderError
from .codec import codec_hop, decoder_fn, measure_geometry
from .dit import dit_denoiser
from .exports import music_decoder_spec, music_dit_spec
from .text import WIDTH as CAPTION_WIDTH

if TYPE_CHECKING:
    from .conditioning import AceStepConditioner
    from .folder import FolderDefaults

HOUSE_MODELS = Path(__file__).resolve().parents[2] / "models" / "music"
WEIGHTS = "diffusion_pytorch_model.safetensors"
# a folder holding any of these is a complete ACE-Step folder, never the house layout
COMPLETE_ONLY = ("text_encoder", "condition_encoder", "tokenizer", "scheduler")


@dataclass(frozen=True)
class LatentCodec:
    """The VAE with what the engine needs to know about it."""

    vae: torch.nn.Module
    geometry: DecoderGeometry
    latent_mean: torch.Tensor  # (C,), to normalise latents for the DiT
    latent_std: torch.Tensor  # (C,)
    card: dict

    @property
    def sample_rate(self) -> int:
        return int(self.vae.config.sampling_rate)

    @property
    def channels(self) -> int:
        """Latent channels."""
        return int(self.vae.config.decoder_input_channels)

    @property
    def audio_channels(self) -> int:
        return int(self.vae.config.audio_channels)

    @property
    def frame_rate(self) -> float:
        """Latent frames per second, as AceStepPipeline computes it (sample rate / hop)."""
        return self.sample_rate / self.geometry.hop

    def normalize(self, z: torch.Tensor) -> torch.Tensor:
        """(.., T, C) raw VAE latents -> the DiT's latent space."""
        return (z - self.latent_mean) / self.latent_std

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.latent_std + self.latent_mean


@dataclass(frozen=True)
class MusicModels:
    codec: LatentCodec
    transformer: torch.nn.Module
    card: dict
    denoiser: Denoiser | None = None  # the DiT on its backend (torch eager unless with_backend chose another)
    decode: Callable | None = None  # (B, C, T) latents -> (B, audio channels, T * hop); the VAE decoder unless swapped
    conditioner: AceStepConditioner | None = None  # a complete folder's; None: the house MiniLM captions
    defaults: FolderDefaults | None = None  # a complete folder's; None: the registry's own

    def __post_init__(self) -> None:
        if self.denoiser is None:
            object.__setattr__(self, "denoiser", dit_denoiser(self.transformer))
        if self.decode is None:
            object.__setattr__(self, "decode", decoder_fn(self.codec.vae))

    def export_spec(self):
        return music_dit_spec(self.transformer)

    def ort_parts(self) -> dict:
        return {"decode": music_decoder_spec(self.codec.vae)}


def _check_part(folder: Path, part: str, class_name: str) -> Path:
    path = folder / part
    config = path / "config.json"
    if not config.is_file():
        raise ModelFolderError(f"model folder {folder}: {part}/config.json is missing")
    try:
        found = json.loads(config.read_text()).get("_class_name")
    except json.JSONDecodeError as err:
        raise ModelFolderError(f"model folder {folder}: {part}/config.json is not JSON ({err})") from None
    if found != class_name:
        raise ModelFolderError(f"model folder {folder}: {part} holds {found!r}, expected {class_name}")
    if not (path / WEIGHTS).is_file():
        raise ModelFolderError(f"model folder {folder}: {part}/{WEIGHTS} is missing (only safetensors load)")
    return path


def _card(path: Path) -> dict:
    card = path / "house.json"
    return json.loads(card.read_text()) if card.is_file() else {}


def _load_options() -> dict:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # low_cpu_mem_usage=False: the tiny models load directly (and diffusers does not
    # then suggest installing accelerate on every run)
    return {"local_files_only": True, "use_safetensors": True, "torch_dtype": torch.float32,
            "low_cpu_mem_usage": False}


def load_codec(folder: Path | str | None = None) -> LatentCodec:
    """The VAE of a model folder (house models by default)."""
    from diffusers import AutoencoderOobleck

    folder = _folder(folder)
    path = _check_part(folder, "vae", "AutoencoderOobleck")
    vae = AutoencoderOobleck.from_pretrained(str(path), **_load_options()).eval()
    card = _card(path)
    channels = int(vae.config.decoder_input_channels)
    if "halo_frames" in card:
        geometry = DecoderGeometry(hop=codec_hop(vae), halo=int(card["halo_frames"]))
    else:
        geometry = measure_geometry(vae)
    missing = [key for key in ("latent_mean", "latent_std") if key not in card]
    if missing:
        # right for a real ACE-Step folder, whose DiT works on raw VAE latents; a house folder
        # that lost its statistics would play noise, so the load says which it did
        print(f"music model {folder}: no {' or '.join(missing)} in vae/house.json; latents are used raw "
              "(mean 0, std 1), as a real ACE-Step folder's are", file=sys.stderr, flush=True)
    mean = torch.tensor(card.get("latent_mean", [0.0] * channels))
    std = torch.tensor(card.get("latent_std", [1.0] * channels))
    return LatentCodec(vae, geometry, mean, std, card)


def load_music_models(folder: Path | str | None = None) -> MusicModels:
    """The house models by default, or a complete ACE-Step 1.5 folder (with model_index.json)."""
    folder = _folder(folder)
    if (folder / "model_index.json").is_file():
        return _complete_models(folder)
    return _house_models(folder)


def _complete_models(folder: Path) -> MusicModels:
    from .conditioning import AceStepConditioner
    from .folder import load_acestep_folder

    parts = load_acestep_folder(folder)
    vae = parts.vae
    # raw latents are ACE-Step's own (no statistics to apply); the halo is measured
    channels = int(vae.config.decoder_input_channels)
    codec = LatentCodec(vae, measure_geometry(vae), torch.zeros(channels), torch.ones(channels), {})
    conditioner = AceStepConditioner(parts.tokenizer, parts.text_encoder, parts.condition_encoder, codec.frame_rate)
    card = {"variant": parts.variant, "folder": str(folder)}
    return MusicModels(codec, parts.transformer, card, conditioner=conditioner, defaults=parts.defaults)


def _house_models(folder: Path) -> MusicModels:
    from diffusers import AceStepTransformer1DModel

    complete = [part for part in COMPLETE_ONLY if (folder / part).is_dir()]
    if complete:
        raise ModelFolderError(f"model folder {folder}: model_index.json is missing, though it holds "
                               f"{', '.join(complete)} of a complete ACE-Step folder")
    if not (folder / "vae" / "config.json").is_file():
        raise ModelFolderError(f"model folder {folder}: model_index.json is missing, and for the house layout "
                               "vae/config.json is missing")
    codec = load_codec(folder)
    path = _check_part(folder, "transformer", "AceStepTransformer1DModel")
    dit = AceStepTransformer1DModel.from_pretrained(str(path), **_load_options()).eval()
    if int(dit.config.audio_acoustic_hidden_dim) != codec.channels:
        raise ModelFolderError(
            f"model folder {folder}: the transformer predicts {dit.config.audio_acoustic_hidden_dim} latent "
            f"channels but the VAE decodes {codec.channels}"
        )
    width = dit.config.encoder_hidden_size or dit.config.hidden_size
    if int(width) != CAPTION_WIDTH:
        raise ModelFolderError(f"model folder {folder}: the transformer reads {width}-wide text but the house "
                               f"layout conditions on {CAPTION_WIDTH}-wide MiniLM captions")
    return MusicModels(codec, dit, _card(path))


def _folder(folder: Path | str | None) -> Path:
    folder = Path(folder) if folder is not None else HOUSE_MODELS
    if not folder.is_dir():
        raise ModelFolderError(f"model folder {folder} does not exist")
    return folder
