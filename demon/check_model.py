"""`demon check-model DIR`: what a music model folder holds, checked without running it.

Reads every config, builds each component on the meta device and compares it with its
safetensors headers (pipelines/music/inventory.py); nothing heavy loads. A folder that
cannot load is the same one line loading would give, and exit 2.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

LOADED_BYTES = {"float32, as demon loads it": 4, "bf16": 2}


def add_check_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", type=Path, help="a complete ACE-Step 1.5 folder (model_index.json)")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of the table")


def run_check_model(args) -> int:
    from pipelines.music.inventory import inventory  # torch and diffusers load only for real work

    found = inventory(args.folder)
    print(json.dumps(as_json(found)) if args.json else "\n".join(describe(found)))
    return 0


def size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def count(n: int) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)


def _value(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def describe(inv) -> list[str]:
    from pipelines.music.inventory import Variant

    variant = inv.variant.value + (" (guidance distilled into the weights)" if inv.variant is Variant.TURBO else "")
    w, a = inv.widths, inv.audio
    lines = [f"folder      {inv.folder}", f"variant     {variant}", "components"]
    for c in inv.components:
        params = f"{count(c.params)} params" if c.params else ""
        stored = ", ".join(f"{d} {size(b)}" for d, b in c.weights.bytes_by_dtype.items()) if c.weights else ""
        lines.append(f"  {c.name:24} {c.cls:32} {params:15} {stored}".rstrip())
        lines += [f"  {'':24} {note}" for note in c.notes]
    lines += [
        f"widths      latent channels {w.latent_channels}, DiT hidden {w.hidden_size} x {w.layers} layers, "
        f"text {w.text_width}, condition {w.condition_width}",
        f"audio       {a.sample_rate} Hz, {a.channels} channel{'s' if a.channels != 1 else ''}, hop {a.hop} "
        f"({a.frame_rate:g} latent frames/s)",
        f"tasks       {', '.join(t.value for t in inv.tasks)}",
        "defaults    " + ", ".join(f"{k} {_value(v)}" for k, v in inv.defaults.items()),
    ]
    stored = inv.weight_bytes()
    lines.append(f"weights     {count(inv.numel())} values; stored "
                 + ", ".join(f"{d} {size(b)}" for d, b in stored.items())
                 + f" = {size(sum(stored.values()))}")
    lines += [f"            in {name}: {size(inv.bytes_as(b))}" for name, b in LOADED_BYTES.items()]
    lines += [f"note        {note}" for note in inv.notes]
    return lines


def as_json(inv) -> dict:
    return {
        "folder": str(inv.folder), "variant": inv.variant.value,
        "components": [{"name": c.name, "class": c.cls, "params": c.params,
                        "bytes_by_dtype": c.weights.bytes_by_dtype if c.weights else {}, "notes": list(c.notes)}
                       for c in inv.components],
        "widths": vars(inv.widths),
        "audio": {**vars(inv.audio), "frame_rate": inv.audio.frame_rate},
        "tasks": [t.value for t in inv.tasks],
        "defaults": dict(inv.defaults),
        "weight_bytes": inv.weight_bytes(),
        "weight_bytes_loaded": {name: inv.bytes_as(b) for name, b in LOADED_BYTES.items()},
        "notes": list(inv.notes),
    }
