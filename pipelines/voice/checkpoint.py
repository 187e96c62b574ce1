"""The voice model folder: the codec (house.json: its config and card), then the converter
and speaker encoder trained on its latents (converter.json: config, latent statistics, card),
loaded as the VoiceModels a stream runs."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

from engine import Denoiser, TorchDenoiser

from ..cards import format_metric, resumed_from, write_card
from ..weights import card_fields, load_module, read_json, save_module
from .codec import CodecConfig, VoiceCodec
from .corpus import CORPUS
from .exports import voice_converter_spec, voice_decoder_spec, voice_encoder_spec
from .models import Converter, SpeakerEncoder, VoiceConfig

HOW = "train with `make voice-models`"  # what a missing part's error advises

HOUSE_MODELS = Path(__file__).resolve().parents[2] / "models" / "voice"


@dataclass(frozen=True)
class VoiceModels:
    codec: VoiceCodec
    converter: Converter
    latent_mean: torch.Tensor  # (C,), the converter works on normalised latents
    latent_std: torch.Tensor  # (C,)
    denoiser: Denoiser | None = None  # the converter on its backend (torch eager unless with_backend chose another)
    # the streaming codec halves, `(x, state) -> (y, state)`: the codec's own modules unless a backend swapped them
    encode: Callable | None = None
    decode: Callable | None = None

    def __post_init__(self) -> None:
        if self.denoiser is None:
            object.__setattr__(self, "denoiser", TorchDenoiser(self.converter, self.converter))
        if self.encode is None:
            object.__setattr__(self, "encode", self.codec.encoder)
        if self.decode is None:
            object.__setattr__(self, "decode", self.codec.decoder)

    def export_spec(self):
        return voice_converter_spec(self.converter)

    def ort_parts(self) -> dict:
        return {"encode": voice_encoder_spec(self.codec), "decode": voice_decoder_spec(self.codec)}

    def normalize(self, z: torch.Tensor) -> torch.Tensor:
        """(C, T) codec latents -> the converter's space."""
        return (z - self.latent_mean[:, None]) / self.latent_std[:, None]

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.latent_std[:, None] + self.latent_mean[:, None]


def save_codec(folder: Path, codec: VoiceCodec, card: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    save_module(codec, folder / "codec.safetensors")
    (folder / "house.json").write_text(json.dumps({"config": asdict(codec.cfg), **card}, indent=2))


def load_codec(folder: Path | None = None) -> VoiceCodec:
    folder = Path(folder) if folder is not None else HOUSE_MODELS
    card_path = folder / "house.json"
    card = read_json(card_path, HOW)
    with card_fields(card_path):
        cfg = card["config"]
        codec = VoiceCodec(CodecConfig(**cfg))
    return load_module(codec, folder / "codec.safetensors", HOW)


def write_voice_card(folder: Path) -> Path:
    """README.md for the folder: the codec's card, then the converter's where it has been trained."""
    path = write_card(folder, "House voice models", "A causal codec at the frame rate (16 kHz mono, hop 160: 100 latent "
                      "frames/s, look-ahead 0; a DFT front end, causal convolutions over frames, a magnitude and phase "
                      "head through a two-frame inverse DFT, streaming with cached convolutions), then a speaker encoder and a "
                      "FiLM flow-matching converter trained on its latents.", CORPUS)
    conv = folder / "converter.json"
    if conv.is_file():
        card = json.loads(conv.read_text())
        lines = ["", "## Converter and speaker encoder", "", f"- config: {card['config']}",
                 f"- command: `{card['command']}`", f"- train minutes: {card['train_minutes']}",
                 f"- steps: {card['steps']}", f"- speakers seen: {len(card['speakers_seen'])} (the rest held out)"]
        if "train_minutes_total" in card:
            lines.append(f"- train minutes total: {card['train_minutes_total']}")
        lines += resumed_from(card)
        if "metrics_heldout" in card:
            lines += ["", f"Held-out metrics (`{card.get('quality_command', 'python bench/voice.py')}`):", ""]
            lines += [f"- {k}: {format_metric(v)}" for k, v in card["metrics_heldout"].items()]
        for note in card.get("notes", []):
            lines += ["", note]
        path.write_text(path.read_text() + "\n".join(lines) + "\n")
    return path


def save_voice(folder: Path, encoder: SpeakerEncoder, converter: Converter, card: dict) -> None:
    """The converter and speaker encoder beside the codec, with their card (converter.json)."""
    save_module(encoder, folder / "speaker_encoder.safetensors")
    save_module(converter, folder / "converter.safetensors")
    (folder / "converter.json").write_text(json.dumps(card, indent=2))


def load_voice(folder: Path | None = None) -> tuple[VoiceModels, SpeakerEncoder]:
    """The codec, converter and speaker encoder of a voice model folder."""
    folder = Path(folder) if folder is not None else HOUSE_MODELS
    codec = load_codec(folder)
    card_path = folder / "converter.json"
    card = read_json(card_path, HOW)
    with card_fields(card_path):
        cfg = VoiceConfig(**card["config"])
        converter, encoder = Converter(cfg), SpeakerEncoder(cfg)
        mean, std = (torch.tensor(card[k], dtype=torch.float32) for k in ("latent_mean", "latent_std"))
        if mean.shape != (cfg.latent,) or std.shape != (cfg.latent,) or not bool((std > 0).all()):
            raise ValueError(f"latent_mean and latent_std must be {cfg.latent} numbers (std > 0)")
    converter = load_module(converter, folder / "converter.safetensors", HOW)
    encoder = load_module(encoder, folder / "speaker_encoder.safetensors", HOW)
    return VoiceModels(codec, converter, mean, std), encoder
