"""Model cards: a README.md beside each house model, written from its house.json."""

from __future__ import annotations

import json
from pathlib import Path

CORPUS = ("fluidsynth renders (fluid-soundfont-gm) of random but musical MIDI from "
          "`python -m pipelines.music.data --clips 1600 --seconds 10` (seed 0): 16 kHz mono, "
          "10 s clips, held-out split by (style, key) pairs")


def write_card(folder: Path, title: str, summary: str) -> Path:
    card = json.loads((folder / "house.json").read_text())
    lines = [f"# {title}", "", summary, "", f"- data: {CORPUS}"]
    for key in ("command", "train_minutes", "prep_minutes", "steps", "batch", "clips", "parameters",
                "weights_dtype", "hop", "halo_frames"):
        if key in card:
            lines.append(f"- {key.replace('_', ' ')}: `{card[key]}`" if key == "command" else
                         f"- {key.replace('_', ' ')}: {card[key]}")
    lines.append("- machine: 2-core AMD EPYC, torch 2.13.0 CPU")
    if "metrics_heldout" in card:
        lines += ["", "Held-out metrics:", ""]
        lines += [f"- {k}: {v:.4g}" for k, v in card["metrics_heldout"].items()]
    for note in card.get("notes", []):
        lines += ["", note]
    path = folder / "README.md"
    path.write_text("\n".join(lines) + "\n")
    return path
