"""Presets: the whole parameter state saved to and recalled from TOML."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from engine import InputError, Registry, StepState
from engine.files import write_atomic

PRESET_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # names arrive from the network: no paths (fullmatch)


def save_preset(path: Path, state: StepState) -> Path:
    """Write every parameter's value; the file appears complete or not at all."""
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError("preset", f"folder {path.parent} does not exist")
    values = {k: list(v) if isinstance(v, tuple) else v for k, v in state.values.items()}
    return write_atomic(path, tomli_w.dumps({"demon_preset": 1, "params": values}))


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


@dataclass(frozen=True)
class PresetFolder:
    """Named presets, one `NAME.toml` each, in one folder. Every front-end that saves or
    recalls presets by name (OSC, the page) goes through this, so a name is checked once."""

    root: Path

    def path(self, name: Any, field: str = "preset") -> Path:
        if not isinstance(name, str) or not PRESET_NAME.fullmatch(name):
            raise InputError(field, "a preset name is 1-64 letters, digits, '-' or '_'")
        return self.root / f"{name}.toml"

    def save(self, name: Any, state: StepState, field: str = "preset") -> Path:
        path = self.path(name, field)
        self.root.mkdir(parents=True, exist_ok=True)
        return save_preset(path, state)

    def load(self, name: Any, registry: Registry, field: str = "preset") -> dict[str, Any]:
        return load_preset(self.path(name, field), registry)

    def names(self) -> list[str]:
        return sorted(p.stem for p in self.root.glob("*.toml")) if self.root.is_dir() else []
