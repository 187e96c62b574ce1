"""The engine cache: one built engine per key, with a sidecar saying what it was built from.

A key is everything that makes an engine valid: the ONNX file's checksum, the shape
profile, the precision, the TensorRT version and the GPU's SM. Change any of them and
the key (so the file name) changes; the same key finds the same engine. The sidecar
repeats the key's fields; an engine whose sidecar is missing or disagrees is not used
(it is rebuilt, and the cache says so), so a renamed or half-written file is never trusted.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from engine.files import write_atomic

PRECISIONS = ("fp32", "fp16", "bf16")


@dataclass(frozen=True)
class EngineKey:
    name: str
    onnx_sha256: str
    profile: tuple[tuple[str, int, int, int], ...]  # (axis profile name, min, opt, max), sorted
    precision: str
    trt_version: str
    gpu_sm: str  # compute capability, e.g. "9.0"

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")

    @classmethod
    def make(cls, name: str, onnx_sha256: str, profile: dict[str, list[int] | tuple[int, int, int]],
             precision: str, trt_version: str, gpu_sm: str) -> "EngineKey":
        rows = tuple(sorted((k, int(v[0]), int(v[1]), int(v[2])) for k, v in profile.items()))
        return cls(name, onnx_sha256, rows, precision, trt_version, gpu_sm)

    def fields(self) -> dict:
        d = asdict(self)
        d["profile"] = [list(r) for r in self.profile]
        return d

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.fields(), sort_keys=True).encode()).hexdigest()[:20]


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class EngineCache:
    def __init__(self, root: Path, write: Callable[[str], None] = _to_stderr):
        self.root = Path(root) / "engines"
        self.write = write  # where a skipped entry is reported

    def paths(self, key: EngineKey) -> tuple[Path, Path]:
        stem = f"{key.name}-{key.digest()}"
        return self.root / f"{stem}.plan", self.root / f"{stem}.json"

    def lookup(self, key: EngineKey) -> Path | None:
        plan, sidecar = self.paths(key)
        if not plan.is_file():
            return None
        if not sidecar.is_file():
            self.write(f"engine cache: {plan.name} has no sidecar (a store that did not finish); rebuilding")
            return None
        meta = self._read(sidecar)
        if meta is None:
            return None
        if meta.get("key") != key.fields() or meta.get("bytes") != plan.stat().st_size:
            self.write(f"engine cache: {plan.name} does not match its sidecar (renamed or half-written); rebuilding")
            return None
        return plan

    def store(self, key: EngineKey, engine: bytes, extra: dict | None = None) -> Path:
        """Write the engine, then its sidecar (both atomically): a crash leaves no trusted entry."""
        plan, sidecar = self.paths(key)
        self.root.mkdir(parents=True, exist_ok=True)
        write_atomic(plan, engine)
        meta = {"key": key.fields(), "bytes": len(engine), **(extra or {})}
        write_atomic(sidecar, json.dumps(meta, indent=2))
        return plan

    def entries(self) -> list[dict]:
        out = []
        for sidecar in sorted(self.root.glob("*.json")):
            meta = self._read(sidecar)
            if meta is not None:
                out.append(meta | {"file": sidecar.with_suffix(".plan").name})
        return out

    def _read(self, sidecar: Path) -> dict | None:
        """A sidecar's contents, or None (said) when it cannot be read: that entry is not used."""
        try:
            meta = json.loads(sidecar.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            self.write(f"engine cache: skipping {sidecar}: unreadable ({err})")
            return None
        if not isinstance(meta, dict):
            self.write(f"engine cache: skipping {sidecar}: not a JSON object")
            return None
        return meta

