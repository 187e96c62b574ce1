"""The video SR model folder: one set of networks per scale, and one card.

    FOLDER/house.json                 the card: "scales" and, per scale, "x2"/"x4": its config,
                                      default start sigma, training time and held-out metrics
    FOLDER/x4/upsampler.safetensors   LatentUpsampler (4x)
    FOLDER/x4/refiner.safetensors     SRDenoiser
    FOLDER/x4/decoder.safetensors     CausalDecoder
    FOLDER/x4/encoder.safetensors     Encoder (training targets only; kept to continue training)
    FOLDER/x2/...                     the same for 2x

Each scale is a whole cascade of its own, so the two train side by side on one core
each. A missing folder, file or scale is a ModelFolderError naming it; weights load
only from safetensors.
"""

from __future__ import annotations

import fcntl
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from engine import Denoiser, TorchDenoiser
from engine.files import write_atomic

from ..errors import ModelFolderError
from ..weights import card_fields, load_module, read_json, save_module
from .exports import video_sr_decoder_spec, video_sr_refiner_spec, video_sr_upsampler_spec
from .models import CausalDecoder, LatentUpsampler, SRConfig, SRDenoiser

HOUSE_MODELS = Path(__file__).resolve().parents[2] / "models" / "video_sr"
PARTS = ("encoder", "upsampler", "refiner", "decoder")


@dataclass(frozen=True)
class VideoSRModels:
    """What the streaming SR needs for one scale."""

    scale: int
    cfg: SRConfig
    upsampler: LatentUpsampler
    refiner: SRDenoiser
    decoder: CausalDecoder
    sigma: float  # the start sigma that measured best on held-out clips
    card: dict  # this scale's entry of the card
    detail: float = 1.0  # the detail scale that measured best on held-out clips (cards before it: 1)
    steady: float = 0.0  # the temporal blend that measured best on held-out clips (cards before it: off)
    denoiser: Denoiser | None = None  # the refiner on its backend (torch eager unless with_backend chose another)

    def __post_init__(self) -> None:
        if self.denoiser is None:
            object.__setattr__(self, "denoiser", TorchDenoiser(self.refiner, self.refiner))

    def export_spec(self):
        return video_sr_refiner_spec(self.refiner, self.cfg, self.scale)

    def ort_parts(self) -> dict:
        return {"upsampler": video_sr_upsampler_spec(self.upsampler, self.scale),
                "decoder": video_sr_decoder_spec(self.decoder, self.cfg, self.scale)}


def save_scale(folder: Path, scale: int, cfg: SRConfig, modules: dict[str, torch.nn.Module], entry: dict) -> None:
    """Write one scale's networks and merge its entry into the card (another scale's training
    may write its own entry at the same time: the card is updated under a lock)."""
    missing = set(PARTS) - set(modules)
    if missing:
        raise ValueError(f"a {scale}x model set needs {sorted(missing)}")
    sub = folder / f"x{scale}"
    sub.mkdir(parents=True, exist_ok=True)
    for name, module in modules.items():
        save_module(module, sub / f"{name}.safetensors")
    with open(folder / ".house.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = folder / "house.json"
        card = json.loads(path.read_text()) if path.is_file() else {}
        card[f"x{scale}"] = {"config": asdict(cfg), **entry}
        card["scales"] = sorted({*card.get("scales", ()), scale})
        write_atomic(path, json.dumps(card, indent=2))


def read_card(folder: Path) -> dict:
    path = folder / "house.json"
    if not path.is_file():
        raise ModelFolderError(f"{folder}: not a video SR model folder (no house.json)")
    return read_json(path)


def _load(module: torch.nn.Module, path: Path) -> torch.nn.Module:
    return load_module(module, path, "train with `make video-sr-models`")


def load_video_sr(folder: Path | None, scale: int) -> VideoSRModels:
    folder = Path(folder) if folder is not None else HOUSE_MODELS
    card = read_card(folder)
    entry, scales = card.get(f"x{scale}"), card.get("scales")
    if not isinstance(scales, list) or scale not in scales or not isinstance(entry, dict):
        raise ModelFolderError(f"{folder}: has no {scale}x models (scales {scales})")
    with card_fields(folder / "house.json", f"x{scale} entry"):
        cfg = SRConfig(**entry["config"])
        sigma = float(entry["sigma"])
        detail = float(entry.get("detail", 1.0))
        steady = float(entry.get("steady", 0.0))
    sub = folder / f"x{scale}"
    return VideoSRModels(
        scale=scale, cfg=cfg,
        upsampler=_load(LatentUpsampler(scale, cfg), sub / "upsampler.safetensors"),
        refiner=_load(SRDenoiser(cfg), sub / "refiner.safetensors"),
        decoder=_load(CausalDecoder(cfg), sub / "decoder.safetensors"),
        sigma=sigma, detail=detail, steady=steady, card=entry,
    )
