"""The music models' cards: the shared card writer with the music corpus named."""

from __future__ import annotations

from pathlib import Path

from ..cards import write_card as _write_card

CORPUS = ("fluidsynth renders (fluid-soundfont-gm) of random but musical MIDI from "
          "`python -m pipelines.music.data --clips 1600 --seconds 10` (seed 0): 16 kHz mono, "
          "10 s clips, held-out split by (style, key) pairs")


def write_card(folder: Path, title: str, summary: str) -> Path:
    return _write_card(folder, title, summary, CORPUS)
