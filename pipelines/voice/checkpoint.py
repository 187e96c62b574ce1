"""The voice model folder: the codec as safetensors beside its card (house.json, with the config)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from ..errors import ModelFolderError
from ..weights import load_module, save_module
from .codec import CodecConfig, VoiceCodec

HOUSE_MODELS = Path(__file__).resolve().parents[2] / "models" / "voice"


def save_codec(folder: Path, codec: VoiceCodec, card: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    save_module(codec, folder / "codec.safetensors")
    (folder / "house.json").write_text(json.dumps({"config": asdict(codec.cfg), **card}, indent=2))


def load_codec(folder: Path | None = None) -> VoiceCodec:
    folder = Path(folder) if folder is not None else HOUSE_MODELS
    card_path = folder / "house.json"
    if not card_path.is_file():
        raise ModelFolderError(f"{card_path}: missing (train with `make voice-models`)")
    cfg = json.loads(card_path.read_text())["config"]
    codec = VoiceCodec(CodecConfig(**{**cfg, "strides": tuple(cfg["strides"])}))
    return load_module(codec, folder / "codec.safetensors", "train with `make voice-models`")
