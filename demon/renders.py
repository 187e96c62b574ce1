"""What `demon render` and `demon batch` share, per pipeline: the checks that need no
model, which loaded models a render needs, loading them, and the render into its file.

`demon render` runs the three in a row; a batch worker loads each model set once and
renders job after job with it. One code path: a batch's outputs are the one-by-one
command's, bit for bit.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from engine import CORE_PARAMS, InputError

from .args import Parser, UsageError, add_backend_args, add_param_flags, on_backend, param_values
from .catalog import LIVE_REGISTRIES, PARAM_FLAGS
from .song_flags import add_song_flags, read_lyrics, song_meta
from .task_flags import add_task_flags, task_fields

RENDER_PARAMS = ("seed", "steps", "strength", "guidance", "guidance_rule", "shift", "solver", "source_blend",
                 "noise_injection")
MAX_RENDER_SECONDS = 600.0
DEFAULT_RENDER_SECONDS = 30.0
AUDIO_SUFFIXES = (".wav", ".flac")

Progress = Callable[[str, int, int], None] | None


@dataclass(frozen=True)
class RenderKind:
    name: str
    check: Callable[[argparse.Namespace], None]  # flags and files, before any model loads: UsageError
    model_key: Callable[[argparse.Namespace], tuple]  # jobs with the same key share loaded models
    load: Callable[[argparse.Namespace], Any]
    run: Callable[[argparse.Namespace, Any, Progress], str]  # renders into args.out; says what it wrote
    # many at once through one ring of up to `depth` (music): per job, what it wrote or why not
    run_together: Callable[[list[argparse.Namespace], Any, int], list[str | Exception]] | None = None


def check_out(out: Path, suffixes: tuple[str, ...]) -> None:
    if out.suffix.lower() not in suffixes:
        raise UsageError(f"--out: use a {' or '.join(suffixes)} file, got {out.name!r}")
    if not out.parent.is_dir():
        raise UsageError(f"--out: folder {out.parent} does not exist")


def _backend_key(args) -> tuple:
    return (args.backend, args.precision)


# ---- music -------------------------------------------------------------------------------

def _music_check(args) -> None:
    if args.seconds is not None and not 0 < args.seconds <= MAX_RENDER_SECONDS:
        raise UsageError(f"--seconds: must lie in (0, {MAX_RENDER_SECONDS:g}], got {args.seconds:g}")
    check_out(args.out, AUDIO_SUFFIXES)
    if args.source is not None and not args.source.is_file():
        raise UsageError(f"--source: {args.source} is not a readable file")
    params = param_values(args, CORE_PARAMS, RENDER_PARAMS)
    if args.source is None and params.get("strength", 1.0) < 1.0:
        raise UsageError("--strength: below 1 needs --source")
    music_job(args)  # lyrics, song metadata and task flags, before any model loads


def _music_load(args):
    from pipelines.music.models import load_music_models

    return on_backend(load_music_models(args.model), args)


def music_job(args):
    """The MusicJob the flags describe (checked by `_music_check` first)."""
    from pipelines.music.render import MusicJob

    params = param_values(args, CORE_PARAMS, RENDER_PARAMS)
    lyrics, meta, tasks = read_lyrics(args.lyrics), song_meta(args), task_fields(args)
    seconds = args.seconds if args.seconds is not None or tasks["task"].needs_source else DEFAULT_RENDER_SECONDS
    return MusicJob(args.prompt, seconds, params, args.source, lyrics=lyrics, meta=meta, **tasks)


def _music_run(args, models, progress: Progress) -> str:
    from pipelines.audio_io import write_audio
    from pipelines.music.render import render_music

    start = time.perf_counter()
    audio = render_music(models, music_job(args), progress)
    write_audio(args.out, audio, models.codec.sample_rate)
    return write_music_line(args.out, audio.shape[-1], models, time.perf_counter() - start)


def _music_run_together(many: list[argparse.Namespace], models, depth: int) -> list[str | Exception]:
    from pipelines.audio_io import write_audio
    from pipelines.errors import PipelineError
    from pipelines.music.render import render_music_together

    start = time.perf_counter()
    jobs: list = []
    for args in many:
        try:
            jobs.append(music_job(args))
        except (UsageError, InputError, PipelineError) as err:
            jobs.append(err)
    todo = [i for i, job in enumerate(jobs) if not isinstance(job, Exception)]
    for i, audio in zip(todo, render_music_together(models, [jobs[i] for i in todo], depth)):
        if isinstance(audio, Exception):
            jobs[i] = audio
            continue
        try:
            write_audio(many[i].out, audio, models.codec.sample_rate)
            jobs[i] = write_music_line(many[i].out, audio.shape[-1], models, time.perf_counter() - start)
        except (UsageError, InputError, PipelineError) as err:
            jobs[i] = err
    return jobs


def write_music_line(out: Path, samples: int, models, seconds: float) -> str:
    channels = models.codec.audio_channels
    layout = "" if channels == 1 else ", " + ("stereo" if channels == 2 else f"{channels} channels")
    return (f"wrote {out} ({samples / models.codec.sample_rate:g} s at {models.codec.sample_rate} Hz{layout}) "
            f"in {seconds:.1f} s")


# ---- video SR ----------------------------------------------------------------------------

def _video_check(args) -> None:
    from pipelines.video_io import OUTPUT_SUFFIXES

    check_out(args.out, OUTPUT_SUFFIXES)
    if args.input_format is None and not Path(args.input).is_file():
        raise UsageError(f"input: {args.input} is not a readable file")
    param_values(args, LIVE_REGISTRIES["video-sr"], PARAM_FLAGS["video-sr"])


def _video_load(args):
    from pipelines.video_sr.checkpoint import load_video_sr

    return on_backend(load_video_sr(args.model, args.scale), args)


def _video_run(args, models, progress: Progress) -> str:
    from pipelines.video_sr.render import render_video_sr

    params = param_values(args, LIVE_REGISTRIES["video-sr"], PARAM_FLAGS["video-sr"])
    stats = render_video_sr(models, args.input, args.out, params, progress, source_format=args.input_format)
    return f"wrote {args.out} ({stats.frames} frames, {args.scale}x) in {stats.seconds:.1f} s ({stats.fps:.2f} fps)"


# ---- voice -------------------------------------------------------------------------------

def _voice_check(args) -> None:
    check_out(args.out, AUDIO_SUFFIXES)
    for flag, path in (("input", args.input), ("--target", args.target)):
        if not path.is_file():
            raise UsageError(f"{flag}: {path} is not a readable file")
    param_values(args, LIVE_REGISTRIES["voice"], PARAM_FLAGS["voice"])


def _voice_load(args):
    from pipelines.voice.checkpoint import load_voice

    models, encoder = load_voice(args.model)
    return on_backend(models, args), encoder


def _voice_run(args, loaded, progress: Progress) -> str:
    from pipelines.voice.render import render_voice

    models, encoder = loaded
    start = time.perf_counter()
    done = render_voice(models, encoder, args.input, args.target, args.out,
                        param_values(args, LIVE_REGISTRIES["voice"], PARAM_FLAGS["voice"]))
    took = time.perf_counter() - start
    return f"wrote {args.out} ({done['seconds']:.1f} s) in {took:.1f} s (rtf {took / max(done['seconds'], 1e-9):.2f})"


RENDERS: dict[str, RenderKind] = {
    "music": RenderKind("music", _music_check, lambda a: ("music", str(a.model), *_backend_key(a)), _music_load,
                        _music_run, _music_run_together),
    "video-sr": RenderKind("video-sr", _video_check, lambda a: ("video-sr", str(a.model), a.scale, *_backend_key(a)),
                           _video_load, _video_run),
    "voice": RenderKind("voice", _voice_check, lambda a: ("voice", str(a.model), *_backend_key(a)), _voice_load,
                        _voice_run),
}


def add_render_kinds(render: argparse.ArgumentParser, run: Callable | None = None) -> None:
    """`render music|video-sr|voice` and their flags, under `render` (the CLI's command, or
    the parser a batch reads its jobs with)."""
    from pipelines.video_io import OUTPUT_SUFFIXES as VIDEO_SUFFIXES

    kinds = render.add_subparsers(dest="kind", required=True, parser_class=Parser)
    music = kinds.add_parser("music", help="text-to-music, or audio-to-audio with --source")
    music.add_argument("--prompt", required=True, help='caption, e.g. "lofi piano and drums, 84 bpm, A minor"')
    music.add_argument("--seconds", type=float, help=f"length (0 < s <= {MAX_RENDER_SECONDS:g}; default "
                                                     f"{DEFAULT_RENDER_SECONDS:g}; repaint and cover keep the source's)")
    add_param_flags(music, CORE_PARAMS, RENDER_PARAMS)
    music.add_argument("--source", type=Path, help="audio file to start from (any format FFmpeg reads)")
    music.add_argument("--model", type=Path, help="ACE-Step 1.5 folder in diffusers layout (default: house models); "
                                                  "a complete folder's defaults fill what the flags leave unsaid")
    add_song_flags(music)
    add_task_flags(music)
    music.add_argument("--out", type=Path, required=True, help="output .wav or .flac")
    add_backend_args(music)
    music.set_defaults(run=run)
    video_sr = kinds.add_parser("video-sr", help="super-resolve a video 2x or 4x, streaming frame by frame")
    video_sr.add_argument("input", help="video file (any format FFmpeg reads), or a graph with --input-format lavfi")
    video_sr.add_argument("--scale", type=int, choices=(2, 4), default=4, help="HR / LR per side (default 4)")
    video_sr.add_argument("--input-format", help="FFmpeg input format, e.g. lavfi for a generated source")
    add_param_flags(video_sr, LIVE_REGISTRIES["video-sr"], PARAM_FLAGS["video-sr"])
    video_sr.add_argument("--model", type=Path, help="video SR model folder (default: the house models)")
    video_sr.add_argument("--out", type=Path, required=True, help=f"output {' or '.join(VIDEO_SUFFIXES)} (H.264)")
    add_backend_args(video_sr)
    video_sr.set_defaults(run=run)
    voice = kinds.add_parser("voice", help="convert a voice toward the speaker of a reference clip")
    voice.add_argument("input", type=Path, help="speech to convert (any audio file FFmpeg reads)")
    voice.add_argument("--target", type=Path, required=True, help="a few seconds of the target speaker")
    add_param_flags(voice, LIVE_REGISTRIES["voice"], PARAM_FLAGS["voice"])
    voice.add_argument("--model", type=Path, help="voice model folder (default: the house models)")
    voice.add_argument("--out", type=Path, required=True, help="output .wav or .flac")
    add_backend_args(voice)
    voice.set_defaults(run=run)


def render_parser() -> Parser:
    """A parser of `render <kind> ...` alone: what a batch job's options are checked with."""
    parser = Parser(prog="demon")
    add_render_kinds(parser.add_subparsers(dest="command", required=True, parser_class=Parser).add_parser("render"))
    return parser
