"""`demon ...`: the command line."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from engine import CORE_PARAMS, InputError
from pipelines.errors import PipelineError
from trt_builds.cache import PRECISIONS
from trt_builds.errors import BackendError

from .args import Parser, UsageError, add_param_flags, fail, param_values
from .batch import add_batch_args, run_batch
from .catalog import LIVE_REGISTRIES, PIPELINES, house_specs, music_specs
from .check_model import add_check_model_args, run_check_model
from .live import add_live_music_args, run_live_music
from .live_video import add_live_video_sr_args, run_live_video_sr
from .live_voice import add_live_voice_args, run_live_voice
from .renders import RENDERS, add_render_kinds

DEMO_PARAMS = ("depth", "steps", "strength", "shift", "guidance", "seed", "solver")


def build_parser() -> Parser:
    parser = Parser(prog="demon", description="Real-time streaming media generation engine.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    demo = sub.add_parser("demo", help="run the streaming core on a tiny ACE-Step DiT")
    add_param_flags(demo, CORE_PARAMS, DEMO_PARAMS)
    demo.add_argument("--requests", type=int, default=8, help="how many requests to complete (1..1000)")
    demo.add_argument("--seconds", type=float, default=10.0, help="latent length in seconds (0 < s <= 600)")
    demo.add_argument("--out", type=Path, help="save the completed latents as safetensors")
    demo.set_defaults(run=_demo)

    render = sub.add_parser("render", help="render to a file, headless")
    add_render_kinds(render, run=_render)

    live = sub.add_parser("live", help="play live, steered from OSC and MIDI")
    live_kinds = live.add_subparsers(dest="kind", required=True, parser_class=Parser)
    live_music = live_kinds.add_parser("music", help="a loop regenerated continuously by the ring")
    add_live_music_args(live_music)
    live_music.set_defaults(run=run_live_music)
    live_video = live_kinds.add_parser("video-sr", help="a live source super-resolved, previewed on the page")
    add_live_video_sr_args(live_video)
    live_video.set_defaults(run=run_live_video_sr)
    live_voice = live_kinds.add_parser("voice", help="a microphone converted toward a target speaker")
    add_live_voice_args(live_voice)
    live_voice.set_defaults(run=run_live_voice)

    batch = sub.add_parser("batch", help="render a jobs file (music, video-sr, voice) on Ray: a local one, or a cluster")
    add_batch_args(batch)
    batch.set_defaults(run=run_batch)

    build = sub.add_parser("build-trt", help="export the house models to ONNX and build their TensorRT engines (cached)")
    build.add_argument("--pipelines", help=f"comma-separated: {', '.join(PIPELINES)} (default all; music with --model)")
    build.add_argument("--model", type=Path, help="a music model folder (e.g. a complete ACE-Step 1.5 folder) instead "
                                                  "of the house music models; only with the music pipeline")
    build.add_argument("--precision", choices=PRECISIONS, default="fp16", help="engine precision")
    build.add_argument("--onnx-only", action="store_true", help="export the ONNX files only (no GPU needed)")
    build.add_argument("--cache", type=Path, help="cache folder (default $DEMON_CACHE or ~/.cache/demon)")
    build.set_defaults(run=_build_trt)

    check = sub.add_parser("check-model", help="say what a music model folder holds (components, widths, audio "
                                               "format, tasks, defaults, weight memory) without running it")
    add_check_model_args(check)
    check.set_defaults(run=run_check_model)

    params = sub.add_parser("params", help="list a pipeline's parameters (also the OSC addresses /demon/<name>)")
    params.add_argument("--pipeline", choices=PIPELINES, default="music",
                        help="whose parameters, as its live page and OSC see them (default music)")
    params.add_argument("--json", action="store_true", help="one JSON object per parameter")
    params.set_defaults(run=_params)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        code = args.run(args)
        sys.stdout.flush()  # a reader that went away shows here, not in the interpreter's exit
        return code
    except (UsageError, InputError) as err:
        return fail(str(err))
    except (PipelineError, BackendError) as err:  # model folders, media files, backends: names the reason
        return fail(str(err))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`demon params | head`): stop without a word
        _drop_stdout()
        return 141  # 128 + SIGPIPE, as a shell reports a writer the pipe closed on


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush of what is still
    buffered does not fail (and print) a second time at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _params(args) -> int:
    for p in LIVE_REGISTRIES[args.pipeline]:
        if args.json:
            print(json.dumps(p.describe()))
        else:
            rng = f"{_num(p.minimum)}..{_num(p.maximum)}" if p.minimum is not None else ",".join(p.choices)
            print(f"{p.name:16} {p.group.key:7} {p.type.value:6} {p.propagation.value:8} {rng:14} {p.default!s:8} {p.doc}")
    return 0


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _demo(args) -> int:
    if not 1 <= args.requests <= 1000:
        raise UsageError(f"--requests: must lie in 1..1000, got {args.requests}")
    if not 0 < args.seconds <= 600:
        raise UsageError(f"--seconds: must lie in (0, 600], got {args.seconds:g}")
    if args.out is not None and not args.out.parent.is_dir():
        raise UsageError(f"--out: folder {args.out.parent} does not exist")
    from .demo import run_demo  # torch and diffusers load only for real work

    return run_demo(param_values(args, CORE_PARAMS, DEMO_PARAMS), requests=args.requests,
                    seconds=args.seconds, out=args.out)


def _build_trt(args) -> int:
    if args.pipelines is None:
        which = ("music",) if args.model is not None else PIPELINES
    else:
        which = tuple(p.strip() for p in args.pipelines.split(",") if p.strip())
    unknown = [p for p in which if p not in PIPELINES]
    if unknown or not which:
        raise UsageError(f"--pipelines: choose from {', '.join(PIPELINES)}, got {args.pipelines!r}")
    if args.model is not None and which != ("music",):
        raise UsageError(f"--model: a music model folder builds only the music pipeline, got --pipelines {args.pipelines}")
    if args.model is not None and not args.model.is_dir():
        raise UsageError(f"--model: folder {args.model} does not exist")
    from trt_builds.export import cached_export, default_cache

    cache = args.cache or default_cache()
    if not args.onnx_only:
        from trt_builds.tensorrt import cached_engine, require_gpu

        require_gpu("demon build-trt")  # before any export: no GPU is one line, not minutes of work first
    for spec in (music_specs(args.model) if args.model is not None else house_specs(which)):
        start = time.perf_counter()
        print(f"{spec.name}: ONNX export, profiles {spec.profile_json()}", file=sys.stderr, flush=True)
        onnx_path = cached_export(spec, cache)
        line = f"{spec.name}: {onnx_path}"
        if not args.onnx_only:
            engine, key, built = cached_engine(spec, cache, args.precision,
                                               lambda s: print(f"  {s}", file=sys.stderr, flush=True))
            line += f" -> {engine} ({'built' if built else 'cached'}, key {key.digest()})"
        print(f"{line} in {time.perf_counter() - start:.1f} s", flush=True)
    return 0


def _render(args) -> int:
    from .progress import ProgressBar  # torch and diffusers load only for real work

    kind = RENDERS[args.kind]
    kind.check(args)
    models = kind.load(args)
    with ProgressBar() as bar:
        line = kind.run(args, models, bar.update)
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
