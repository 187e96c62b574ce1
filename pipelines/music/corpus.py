"""Reading the generated music corpus back: audio arrays and their metadata."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .data import read_wav


def load_split(root: Path, split: str) -> tuple[np.ndarray, list[dict]]:
    """All clips of one split as a (clips, samples) float32 array, and their rows."""
    meta = root / "metadata.jsonl"
    if not meta.is_file():
        raise FileNotFoundError(f"{meta} is missing: generate the corpus with `python -m pipelines.music.data`")
    rows = [json.loads(line) for line in meta.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r["split"] == split]
    if not rows:
        raise ValueError(f"{meta}: no clips in split {split!r}")
    audio = np.stack([read_wav(root / r["path"]) for r in rows]).astype(np.float32)
    return audio, rows
