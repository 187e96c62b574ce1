"""`demon render music`'s task flags: --task, repaint's window, cover's strength, and a
timbre reference. What needs no audio read is checked here; a window outside the
source or a reference too short is checked once the file is read (task_inputs.py)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pipelines.music.tasks import MIN_REFERENCE_SECONDS, MusicTask, RepaintWindow

from .args import UsageError


def add_task_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("tasks (a complete ACE-Step folder)")
    group.add_argument("--task", choices=[t.value for t in MusicTask], default=MusicTask.TEXT2MUSIC.value,
                       help="text2music (default; with --source, audio-to-audio), repaint: regenerate a window of "
                            "--source and keep the rest, cover: regenerate --source from its audio tokens "
                            "(a folder with audio_tokenizer); repaint and cover keep the source's length")
    group.add_argument("--repaint-start", dest="repaint_start", type=float, metavar="S",
                       help="repaint from this second of the source (default 0)")
    group.add_argument("--repaint-end", dest="repaint_end", type=float, metavar="E",
                       help="repaint up to this second (default the source's end)")
    group.add_argument("--cover-strength", dest="cover_strength", type=float, metavar="X",
                       help="1 (default): all cover; lower blends text to music in (unguided runs only)")
    group.add_argument("--reference", type=Path, metavar="FILE",
                       help=f"audio whose timbre to take (at least {MIN_REFERENCE_SECONDS:g} s; read repeated to "
                            "30 s, as three 10 s segments)")


def task_fields(args: argparse.Namespace) -> dict[str, Any]:
    """MusicJob's task fields from the flags; a flag that does not fit the task is a UsageError."""
    task = MusicTask(args.task)
    if task.needs_source and args.source is None:
        raise UsageError(f"--task {task.value}: needs --source FILE")
    if task.needs_source and args.seconds is not None:
        raise UsageError(f"--seconds: {task.value} keeps the source's length")
    if (args.repaint_start is not None or args.repaint_end is not None) and task is not MusicTask.REPAINT:
        raise UsageError("--repaint-start/--repaint-end: only with --task repaint")
    start = 0.0 if args.repaint_start is None else args.repaint_start
    if start < 0:
        raise UsageError(f"--repaint-start: must be 0 or more, got {start:g}")
    if args.repaint_end is not None and args.repaint_end <= start:
        raise UsageError(f"--repaint-end: the window [{start:g}, {args.repaint_end:g}) s is empty")
    if args.cover_strength is not None:
        if task is not MusicTask.COVER:
            raise UsageError("--cover-strength: only with --task cover")
        if not 0.0 <= args.cover_strength <= 1.0:
            raise UsageError(f"--cover-strength: must lie in [0, 1], got {args.cover_strength:g}")
    if args.reference is not None and not args.reference.is_file():
        raise UsageError(f"--reference: {args.reference} is not a readable file")
    return {"task": task, "window": RepaintWindow(start, args.repaint_end),
            "cover_strength": 1.0 if args.cover_strength is None else args.cover_strength,
            "reference": args.reference}
