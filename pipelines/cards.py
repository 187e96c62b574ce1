"""Model cards: a README.md beside each house model, written from its house.json."""

from __future__ import annotations

import json
from pathlib import Path


def write_card(folder: Path, title: str, summary: str, corpus: str, card: dict | None = None) -> Path:
    """`card` is what to show, when it is not the folder's house.json as it stands."""
    card = card if card is not None else json.loads((folder / "house.json").read_text())
    lines = [f"# {title}", "", summary, "", f"- data: {corpus}"]
    for key in ("command", "train_minutes", "train_minutes_total", "prep_minutes", "steps", "batch", "clips", "parameters",
                "weights_dtype", "hop", "halo_frames", "scales", "sigma", "detail", "steady", "networks"):
        if key in card:
            lines.append(f"- {key.replace('_', ' ')}: `{card[key]}`" if key == "command" else
                         f"- {key.replace('_', ' ')}: {format_metric(card[key])}")
    lines += resumed_from(card)
    lines.append("- machine: 2-core AMD EPYC, torch 2.13.0 CPU")
    if "metrics_heldout" in card:
        lines += ["", "Held-out metrics:", ""]
        lines += [f"- {k}: {format_metric(v)}" for k, v in card["metrics_heldout"].items()]
    for note in card.get("notes", []):
        lines += ["", note]
    path = folder / "README.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def resumed_from(card: dict) -> list[str]:
    """One line per run a model resumed from (`card["before"]`), first to last."""
    lines = []
    for stage in card.get("before", []):
        held = stage.get("metrics_heldout")
        lines.append(f"- resumed from: `{stage.get('command')}` ({stage.get('train_minutes')} min, "
                     f"{stage.get('steps')} steps" + (f", {stage['clips']} clips" if "clips" in stage else "") + ")"
                     + (f"; held-out then: {format_metric(held)}" if held else ""))
    return lines


def format_metric(value) -> str:
    if isinstance(value, dict):  # e.g. one group of metrics per scale
        return ", ".join(f"{k} {format_metric(v)}" for k, v in value.items())
    return f"{value:.4g}" if isinstance(value, float) else str(value)
