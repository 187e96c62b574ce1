"""Presets: the whole parameter state saved to and recalled from TOML."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from engine import InputError, Registry, StepState


def save_preset(path: Path, state: StepState) -> Path:
    """Write every parameter's value; the file appears complete or not at all."""
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError("preset", f"folder {path.parent} does not exist")
    values = {k: list(v) if isinstance(v, tuple) else v for k, v in state.values.items()}
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(tomli_w.dumps({"demon_preset": 1, "params": values}))
    os.replace(tmp, path)
    return path


def load_preset(path: Path, registry: Registry) -> dict[str, Any]:
    """Validated values from a preset file (apply them with one StateStore.update)."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except OSError as err:
        raise InputError("preset", f"cannot read {path}: {err.strerror or err}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InputError("preset", f"{path} is not valid TOML: {err}") from None
    params = doc.get("params")
    if not isinstance(params, dict):
        raise InputError("preset", f"{path} has no [params] table")
    unknown = sorted(k for k in params if k not in registry)
    if unknown:
        raise InputError("preset", f"{path} names unknown parameters: {', '.join(unknown)}")
    return {name: registry.coerce(name, value) for name, value in params.items()}
