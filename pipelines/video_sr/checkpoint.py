"""The video SR model folder: one safetensors file per module and a card.

    FOLDER/house.json              the card: config, scales, default start sigma, metrics
    FOLDER/decoder.safetensors     CausalDecoder
    FOLDER/refiner.safetensors     SRDenoiser (shared by every scale)
    FOLDER/upsampler_x2.safetensors, upsampler_x4.safetensors
    FOLDER/encoder.safetensors     Encoder (training targets only; kept to continue training)

A missing folder, file or scale is a ModelFolderError naming it; weights load only
from safetensors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from engine import Denoiser, TorchDenoiser

from ..errors import ModelFolderError
from ..weights import load_module, save_module
from .models import CausalDecoder, LatentUpsampler, SRConfig, SRDenoiser

HOUSE_MODELS = Path(__file__).resolve().parents[2] / "models" / "video_sr"


@dataclass(frozen=True)
class VideoSRModels:
    """What the streaming SR needs for one scale."""

    scale: int
    upsampler: LatentUpsampler
    refiner: SRDenoiser
    decoder: CausalDecoder
    sigma: float  # the start sigma that measured best on held-out clips
    card: dict
    denoiser: Denoiser | None = None  # the refiner on its backend (torch eager unless with_backend chose another)

    def __post_init__(self) -> None:
        if self.denoiser is None:
            object.__setattr__(self, "denoiser", TorchDenoiser(self.refiner, self.refiner))

    def export_spec(self):
        from ..exports import video_sr_refiner_spec

        return video_sr_refiner_spec(self.refiner)

    def ort_parts(self) -> dict:
        from ..exports import video_sr_decoder_spec, video_sr_upsampler_spec

        return {"upsampler": video_sr_upsampler_spec(self.upsampler, self.scale),
                "decoder": video_sr_decoder_spec(self.decoder)}


def save_models(folder: Path, modules: dict[str, torch.nn.Module], card: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, module in modules.items():
        save_module(module, folder / f"{name}.safetensors")
    (folder / "house.json").write_text(json.dumps(card, indent=2))


def _load(module: torch.nn.Module, path: Path) -> torch.nn.Module:
    return load_module(module, path, "train with `make video-sr-models`")


def load_video_sr(folder: Path | None, scale: int) -> VideoSRModels:
    folder = Path(folder) if folder is not None else HOUSE_MODELS
    card_path = folder / "house.json"
    if not card_path.is_file():
        raise ModelFolderError(f"{folder}: not a video SR model folder (no house.json)")
    card = json.loads(card_path.read_text())
    if scale not in card.get("scales", ()):
        raise ModelFolderError(f"{folder}: has no {scale}x upsampler (scales {card.get('scales')})")
    cfg = SRConfig(**card["config"])
    return VideoSRModels(
        scale=scale,
        upsampler=_load(LatentUpsampler(scale, cfg), folder / f"upsampler_x{scale}.safetensors"),
        refiner=_load(SRDenoiser(cfg), folder / "refiner.safetensors"),
        decoder=_load(CausalDecoder(cfg), folder / "decoder.safetensors"),
        sigma=float(card["sigma"]),
        card=card,
    )
