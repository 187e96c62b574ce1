"""Shared by the benchmark scripts: the machine's name and one JSON object a line."""

from __future__ import annotations

import json
import os
import platform
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python bench/x.py` from the repository root
    sys.path.insert(0, str(ROOT))


@lru_cache(maxsize=1)
def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads)"


def emit(bench: str, metric: str, value: float, unit: str, *, baseline: float | None = None,
         ratio: float | None = None, **extra: Any) -> None:
    record = {"bench": bench, "metric": metric, "value": _round(value), "unit": unit,
              "baseline": _round(baseline), "ratio": _round(ratio), "machine": machine(), **extra}
    print(json.dumps(record), flush=True)


def _round(x: float | None) -> float | None:
    return None if x is None else float(f"{x:.6g}")
