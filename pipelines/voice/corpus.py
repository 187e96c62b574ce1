"""Reading the voice corpus back: rows of metadata.jsonl and their audio."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from ..audio_io import read_audio
from .data import SAMPLE_RATE

Row = dict


def rows(root: Path, keep: Callable[[Row], bool] = lambda r: True) -> list[Row]:
    meta = root / "metadata.jsonl"
    if not meta.is_file():
        raise FileNotFoundError(f"{meta} is missing: generate the corpus with `make voice-data`")
    return [r for r in (json.loads(line) for line in meta.read_text().splitlines() if line.strip()) if keep(r)]


def training(r: Row) -> bool:
    """Seen speakers saying seen sentences: everything else is held out."""
    return not r["speaker_held_out"] and not r["sentence_held_out"]


def audio(root: Path, row: Row) -> np.ndarray:
    return read_audio(root / row["path"], SAMPLE_RATE)


# how the cards name the corpus
CORPUS = ("`python -m pipelines.voice.data --speakers 20 --human-variants 4 --sentences 100` (seed 0), 16 kHz: "
          "20 espeak-ng formant voices, and 4 speakers each of 7 voices made from recordings of people (flite's "
          "kal16, awb, rms and slt; Festival's kal and ked diphones and us-slt-hts), each variant with its own rate, "
          "vocal-tract and pitch factor; held out: every fifth espeak-ng speaker, the rms and ked voices whole, and "
          "every fifth sentence")
