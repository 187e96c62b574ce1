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

import enum
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
from .exports import music_decoder_spec, music_dit_spec, song_tokens
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
        if self.conditioner is None:
            return music_dit_spec(self.transformer)
        return music_dit_spec(self.transformer, song_tokens(self.conditioner.max_tokens))

    def ort_parts(self) -> dict:
        return {"decode": music_decoder_spec(self.codec.vae)}


def _check_part(folder: Path, part: str, class_name: str) -> dict:
    """The part's config, once its class and its safetensors weights are checked."""
    path = folder / part
    config = path / "config.json"
    if not config.is_file():
        raise ModelFolderError(f"model folder {folder}: {part}/config.json is missing")
    try:
        loaded = json.loads(config.read_text())
    except json.JSONDecodeError as err:
        raise ModelFolderError(f"model folder {folder}: {part}/config.json is not JSON ({err})") from None
    found = loaded.get("_class_name")
    if found != class_name:
        raise ModelFolderError(f"model folder {folder}: {part} holds {found!r}, expected {class_name}")
    if not (path / WEIGHTS).is_file():
        raise ModelFolderError(f"model folder {folder}: {part}/{WEIGHTS} is missing (only safetensors load)")
    return loaded


def _card(path: Path) -> dict:
    card = path / "house.json"
    return json.loads(card.read_text()) if card.is_file() else {}


def _load_options() -> dict:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # low_cpu_mem_usage=False: the tiny models load directly (and diffusers does not
    # then suggest installing accelerate on every run)
    return {"local_files_only": True, "use_safetensors": True, "torch_dtype": torch.float32,
            "low_cpu_mem_usage": False}


def vae_geometry(vae, card: dict) -> DecoderGeometry:
    """The decoder's reach: from the VAE's card where it was measured once, else probed now
    (several seconds on a CPU for a real VAE)."""
    if "halo_frames" in card:
        return DecoderGeometry(hop=codec_hop(vae), halo=int(card["halo_frames"]))
    return measure_geometry(vae)


def load_codec(folder: Path | str | None = None) -> LatentCodec:
    """The VAE of a model folder (house models by default)."""
    from diffusers import AutoencoderOobleck

    folder = _folder(folder)
    _check_part(folder, "vae", "AutoencoderOobleck")
    path = folder / "vae"
    vae = AutoencoderOobleck.from_pretrained(str(path), **_load_options()).eval()
    card = _card(path)
    channels = int(vae.config.decoder_input_channels)
    geometry = vae_geometry(vae, card)
    missing = [key for key in ("latent_mean", "latent_std") if key not in card]
    if missing:
        # right for a real ACE-Step folder, whose DiT works on raw VAE latents; a house folder
        # that lost its statistics would play noise, so the load says which it did
        print(f"music model {folder}: no {' or '.join(missing)} in vae/house.json; latents are used raw "
              "(mean 0, std 1), as a real ACE-Step folder's are", file=sys.stderr, flush=True)
    mean = torch.tensor(card.get("latent_mean", [0.0] * channels))
    std = torch.tensor(card.get("latent_std", [1.0] * channels))
    return LatentCodec(vae, geometry, mean, std, card)


class Layout(enum.Enum):
    COMPLETE = "complete ACE-Step 1.5 folder"
    HOUSE = "house layout (vae + transformer, MiniLM captions)"


def folder_layout(folder: Path) -> Layout:
    """The one rule that tells the layouts apart: a complete folder has model_index.json."""
    return Layout.COMPLETE if (folder / "model_index.json").is_file() else Layout.HOUSE


def load_music_models(folder: Path | str | None = None) -> MusicModels:
    """The house models by default, or a complete ACE-Step 1.5 folder (with model_index.json)."""
    folder = _folder(folder)
    if folder_layout(folder) is Layout.COMPLETE:
        return _complete_models(folder)
    return _house_models(folder)


def _complete_models(folder: Path) -> MusicModels:
    from .conditioning import AceStepConditioner
    from .folder import load_acestep_folder

    parts = load_acestep_folder(folder)
    vae = parts.vae
    # raw latents are ACE-Step's own (no statistics to apply); the halo from the VAE's card
    # where one was measured, else probed
    channels = int(vae.config.decoder_input_channels)
    card = _card(folder / "vae")
    codec = LatentCodec(vae, vae_geometry(vae, card), torch.zeros(channels), torch.ones(channels), card)
    conditioner = AceStepConditioner(parts.tokenizer, parts.text_encoder, parts.condition_encoder, codec.frame_rate,
                                     parts.audio_tokenizer, parts.audio_token_detokenizer)
    card = {"variant": parts.variant, "folder": str(folder)}
    return MusicModels(codec, parts.transformer, card, conditioner=conditioner, defaults=parts.defaults)


def house_configs(folder: Path | str | None = None) -> dict[str, dict]:
    """The house layout's vae and transformer configs, checked against each other before
    any weight is read."""
    folder = _folder(folder)
    complete = [part for part in COMPLETE_ONLY if (folder / part).is_dir()]
    if complete:
        raise ModelFolderError(f"model folder {folder}: model_index.json is missing, though it holds "
                               f"{', '.join(complete)} of a complete ACE-Step folder")
    if not (folder / "vae" / "config.json").is_file():
        raise ModelFolderError(f"model folder {folder}: model_index.json is missing, and for the house layout "
                               "vae/config.json is missing")
    vae = _check_part(folder, "vae", "AutoencoderOobleck")
    dit = _check_part(folder, "transformer", "AceStepTransformer1DModel")
    if dit.get("audio_acoustic_hidden_dim") != vae.get("decoder_input_channels"):
        raise ModelFolderError(
            f"model folder {folder}: the transformer predicts {dit.get('audio_acoustic_hidden_dim')} latent "
            f"channels but the VAE decodes {vae.get('decoder_input_channels')}"
        )
    width = dit.get("encoder_hidden_size") or dit.get("hidden_size")
    if width != CAPTION_WIDTH:
        raise ModelFolderError(f"model folder {folder}: the transformer reads {width}-wide text but the house "
                               f"layout conditions on {CAPTION_WIDTH}-wide MiniLM captions")
    return {"vae": vae, "transformer": dit}


def _house_models(folder: Path) -> MusicModels:
    from diffusers import AceStepTransformer1DModel

    house_configs(folder)
    codec = load_codec(folder)
    path = folder / "transformer"
    dit = AceStepTransformer1DModel.from_pretrained(str(path), **_load_options()).eval()
    return MusicModels(codec, dit, _card(path))


def _folder(folder: Path | str | None) -> Path:
    folder = Path(folder) if folder is not None else HOUSE_MODELS
    if not folder.is_dir():
        raise ModelFolderError(f"model folder {folder} does not exist")
    return folder
