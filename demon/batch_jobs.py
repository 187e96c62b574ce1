"""A batch's jobs: read from JSON lines or TOML, each checked as `demon render` checks its
flags, each keyed by its content so a rerun knows what is done.

    {"pipeline": "music", "prompt": "lofi piano, 84 bpm", "seconds": 30, "seed": 7, "out": "a.wav"}
    {"pipeline": "video-sr", "input": "clip.mp4", "scale": 2, "out": "clip-2x.mp4"}
    {"pipeline": "voice", "input": "line.wav", "target": "actor.wav"}

TOML holds the same entries as `[[job]]` tables. Every key but `pipeline`, `out` and the
positional `input` is the flag of that name (`cover_strength` is `--cover-strength`;
`true` is a bare switch). `out` is a file name inside the batch's folder; left out, it is
named by the job's key. Paths in entries are relative to the jobs file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import InputError
from pipelines.errors import PipelineError

from .args import UsageError
from .renders import RENDERS, render_parser

SUFFIX = {"music": ".wav", "video-sr": ".mp4", "voice": ".wav"}
POSITIONAL = {"video-sr": "input", "voice": "input"}
PATH_KEYS = ("input", "target", "source", "reference", "model", "lyrics")  # relative to the jobs file
DIGEST_CHUNK = 1 << 20


@dataclass(frozen=True)
class BatchJob:
    line: int  # where the entry starts in the jobs file
    pipeline: str
    argv: tuple[str, ...]  # `demon render ...` without --out
    out: Path  # inside the batch's folder
    key: str  # the job's content: pipeline, options, the model's and the inputs' digests

    @property
    def args(self) -> argparse.Namespace:
        return render_parser().parse_args([*self.argv, "--out", str(self.out)])

    @property
    def model_key(self) -> tuple:
        return RENDERS[self.pipeline].model_key(self.args)


class BatchFileError(Exception):
    """Entries that cannot run, each with its line number; nothing has started."""

    def __init__(self, path: Path, problems: list[tuple[int, str]]):
        self.problems = problems
        super().__init__("\n".join(f"{path}:{line}: {message}" for line, message in problems))


def read_entries(path: Path) -> list[tuple[int, Any]]:
    """(line, entry) for each job of a .jsonl or .toml file."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"JOBS: cannot read {path} ({getattr(err, 'strerror', None) or err})") from None
    if path.suffix.lower() == ".toml":
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise UsageError(f"JOBS: {path} is not valid TOML: {err}") from None
        jobs = doc.get("job")
        if not isinstance(jobs, list):
            raise UsageError(f"JOBS: {path} has no [[job]] tables")
        starts = [i + 1 for i, line in enumerate(text.splitlines()) if re.match(r"\s*\[\[\s*job\s*\]\]", line)]
        return list(zip(starts + [0] * (len(jobs) - len(starts)), jobs))
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            entries.append((number, json.loads(line)))
        except (ValueError, RecursionError) as err:
            entries.append((number, InputError("entry", f"not JSON ({err})")))
    if not entries:
        raise UsageError(f"JOBS: {path} holds no jobs")
    return entries


def entry_argv(entry: dict, base: Path) -> tuple[str, list[str], str | None]:
    """(pipeline, `demon render` argv without --out, the out name given or None)."""
    if not isinstance(entry, dict):
        raise InputError("entry", "expected an object with a \"pipeline\"")
    entry = dict(entry)
    pipeline = entry.pop("pipeline", None)
    if pipeline not in RENDERS:
        raise InputError("pipeline", f"choose from {', '.join(RENDERS)}, got {pipeline!r}")
    out = entry.pop("out", None)
    if out is not None and not isinstance(out, str):
        raise InputError("out", "a file name")
    argv = ["render", pipeline]
    positional = POSITIONAL.get(pipeline)
    if positional is not None:
        if positional not in entry:
            raise InputError(positional, "is required")
        value = _value(positional, entry.pop(positional), base)
        if value.startswith("-"):
            raise InputError(positional, f"must not start with '-', got {value!r}")
        argv.append(value)
    for name, value in entry.items():
        if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", name) or name in ("out", "help", "h"):
            raise InputError(str(name), "not an option name")
        flag = "--" + name.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is False or value is None:
            continue
        elif isinstance(value, list):
            argv += [flag, ",".join(str(v) for v in value)]
        else:
            argv += [flag, _value(name, value, base)]
    return pipeline, argv, out


def _value(name: str, value: Any, base: Path) -> str:
    if isinstance(value, (dict, list)):
        raise InputError(name, "expected a single value")
    text = str(value)
    if name in PATH_KEYS and text and not Path(text).is_absolute():
        candidate = base / text
        if candidate.exists():
            return str(candidate)
    return text


def out_path(folder: Path, name: str | None, pipeline: str, key: str) -> Path:
    if name is None:
        return folder / f"{pipeline}-{key[:16]}{SUFFIX[pipeline]}"
    path = Path(name)
    if path.is_absolute() or ".." in path.parts or len(path.parts) != 1 or name.startswith("."):
        raise InputError("out", f"a plain file name inside the output folder, got {name!r}")
    return folder / path


def load_jobs(path: Path, folder: Path) -> list[BatchJob]:
    """Every job of the file, checked; a BatchFileError lists every bad entry."""
    parser = render_parser()
    digests = Digests()
    jobs, problems, outs = [], [], {}
    for line, entry in read_entries(path):
        try:
            if isinstance(entry, InputError):
                raise entry
            pipeline, argv, name = entry_argv(entry, path.parent)
            probe = folder / f"probe{SUFFIX[pipeline] if name is None else Path(name).suffix}"
            args = parser.parse_args([*argv, "--out", str(probe)])
            RENDERS[pipeline].check(args)
            key = job_key(pipeline, argv, args, digests)
            out = out_path(folder, name, pipeline, key)
            if out in outs:
                raise InputError("out", f"{out.name} is also the output of line {outs[out]}")
            outs[out] = line
            jobs.append(BatchJob(line, pipeline, tuple(argv), out, key))
        except (UsageError, InputError, PipelineError) as err:
            problems.append((line, str(err)))
    if problems:
        raise BatchFileError(path, problems)
    return jobs


# ---- keys ------------------------------------------------------------------------------------

class Digests:
    """sha256 of files and folders, each read once per batch."""

    def __init__(self):
        self._seen: dict[Path, str] = {}

    def of(self, path: Path) -> str:
        path = path.resolve()
        if path not in self._seen:
            h = hashlib.sha256()
            files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            for f in files:
                h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode())
                with open(f, "rb") as stream:
                    while chunk := stream.read(DIGEST_CHUNK):
                        h.update(chunk)
            self._seen[path] = h.hexdigest()
        return self._seen[path]


def job_key(pipeline: str, argv: list[str], args: argparse.Namespace, digests: Digests) -> str:
    """The job's content: the same key means the same output, so a rerun may skip it."""
    from pipelines.music.models import HOUSE_MODELS as MUSIC
    from pipelines.video_sr.checkpoint import HOUSE_MODELS as VIDEO_SR
    from pipelines.voice.checkpoint import HOUSE_MODELS as VOICE

    model = args.model or {"music": MUSIC, "video-sr": VIDEO_SR, "voice": VOICE}[pipeline]
    files = {name: str(value) for name in PATH_KEYS
             if name != "model" and isinstance(value := getattr(args, name, None), (str, Path)) and Path(value).is_file()}
    inputs = {name: digests.of(Path(value)) for name, value in files.items()}
    digested = set(files.values()) | ({str(args.model)} if args.model is not None else set())
    # a file's path gives way to its digest (the same file elsewhere is the same job); other values stay
    content = {"pipeline": pipeline, "argv": [a for a in argv if a not in digested],
               "model": digests.of(Path(model)), "inputs": inputs}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
