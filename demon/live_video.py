"""`demon live video-sr`: a live source through the streaming SR, previewed on the page."""

from __future__ import annotations

import sys
from pathlib import Path

from .args import UsageError, add_param_flags, add_backend_args, on_backend
from .catalog import LIVE_REGISTRIES, PARAM_FLAGS
from .frontends import add_frontend_args, check_frontend_args, initial_values, run_live, start_frontends


def add_live_video_sr_args(parser) -> None:
    src = parser.add_argument_group("source")
    src.add_argument("--source", default="testsrc2=size=320x180:rate=25",
                     help="video file (looped), camera device (e.g. /dev/video0 with --source-format v4l2) or an "
                          "FFmpeg graph with --source-format lavfi (default: FFmpeg's testsrc2 at 320x180)")
    src.add_argument("--source-format", default=None,
                     help="FFmpeg input format: lavfi, v4l2... (default: lavfi for the default source)")
    src.add_argument("--no-loop", action="store_true", help="stop at the end of a file instead of starting over")
    parser.add_argument("--scale", type=int, choices=(2, 4), default=4, help="HR / LR per side (default 4)")
    parser.add_argument("--model", type=Path, help="video SR model folder (default: the house models)")
    add_param_flags(parser, LIVE_REGISTRIES["video-sr"], PARAM_FLAGS["video-sr"])
    parser.add_argument("--preview-hz", type=float, default=10.0, help="JPEG previews per second to the page")
    parser.add_argument("--preview-width", type=int, default=960, help="previews are scaled down to this width")
    add_backend_args(parser)
    add_frontend_args(parser)


def run_live_video_sr(args) -> int:
    check_frontend_args(args)
    if not 0 < args.preview_hz <= 60:
        raise UsageError(f"--preview-hz: must lie in (0, 60], got {args.preview_hz:g}")
    if not 16 <= args.preview_width <= 3840:
        raise UsageError(f"--preview-width: must lie in 16..3840, got {args.preview_width}")
    source_format = args.source_format
    if source_format is None and "=" in args.source and not Path(args.source).exists():
        source_format = "lavfi"  # an FFmpeg graph such as the default testsrc2
    elif source_format is None and not Path(args.source).is_file():
        raise UsageError(f"--source: {args.source} is not a readable file (a device needs --source-format)")
    from pipelines.video_sr.checkpoint import load_video_sr

    from .rigs import video_sr_rig

    models = on_backend(load_video_sr(args.model, args.scale), args)
    rig = video_sr_rig(models, args.source, initial=initial_values(args, LIVE_REGISTRIES["video-sr"], PARAM_FLAGS["video-sr"]),
                       source_format=source_format, loop=not args.no_loop, preview_hz=args.preview_hz,
                       preview_width=args.preview_width)
    fronts = start_frontends(args, rig)
    if fronts.web is not None:
        rig.engine.taps.append(fronts.web.video)
    elif args.osc_port < 0:
        print("no --web and OSC off: counters only (see --counters-out)", file=sys.stderr)
    return run_live(args, rig, fronts, rig.engine.run)
