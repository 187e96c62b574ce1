"""What every live command shares: OSC, the page, presets, a run length, the final counters.

A live rig (`rigs.Rig`: an engine and its ControlSession) offers `session`,
`live_counters()`, `view()` and `status_line()`; these helpers wire the front-ends to
it and take them down again, so each `demon live <kind>` only adds its own engine and
outputs.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .args import UsageError


def add_frontend_args(parser) -> None:
    ctl = parser.add_argument_group("control")
    ctl.add_argument("--osc-port", type=int, default=9000, help="OSC UDP port on 127.0.0.1 (0: any free; -1: off)")
    ctl.add_argument("--presets", type=Path, default=Path("presets"), help="presets folder (default ./presets)")
    ctl.add_argument("--preset", help="recall this preset at start")
    web = parser.add_argument_group("browser page")
    web.add_argument("--web", action="store_true", help="serve the performer's page over HTTP + websockets")
    web.add_argument("--web-port", type=int, default=8765, help="port of the page (default 8765; 0: any free)")
    web.add_argument("--listen", default="127.0.0.1", metavar="HOST",
                     help="address to bind the page to (default 127.0.0.1; anything else requires a token)")
    web.add_argument("--token", help="access token (generated and printed when --listen is not loopback)")
    web.add_argument("--allow-origin", action="append", default=[], metavar="URL",
                     help="another page origin allowed to connect (repeatable)")
    parser.add_argument("--run-seconds", type=float, help="stop after this long (default: until Ctrl-C)")
    parser.add_argument("--counters-out", type=Path, help="write the final live counters here as JSON")


def check_frontend_args(args) -> None:
    if not -1 <= args.osc_port <= 65535:
        raise UsageError(f"--osc-port: must lie in -1..65535, got {args.osc_port}")
    if args.run_seconds is not None and not 0 < args.run_seconds <= 86400:
        raise UsageError(f"--run-seconds: must lie in (0, 86400], got {args.run_seconds:g}")
    if not 0 <= args.web_port <= 65535:
        raise UsageError(f"--web-port: must lie in 0..65535, got {args.web_port}")
    if args.token is not None and len(args.token) < 12:
        raise UsageError("--token: use at least 12 characters")
    if args.counters_out is not None and not args.counters_out.parent.is_dir():
        raise UsageError(f"--counters-out: folder {args.counters_out.parent} does not exist")


def initial_values(args, registry, flags) -> dict[str, Any]:
    """The preset named by --preset (a name in the --presets folder, checked as OSC and the
    page check it), then the parameter flags given on the command line."""
    from controls.presets import PresetFolder

    from .args import param_values

    initial = PresetFolder(args.presets).load(args.preset, registry, "--preset") if args.preset is not None else {}
    initial.update(param_values(args, registry, flags))
    return initial


@dataclass
class FrontEnds:
    osc: Any = None
    web: Any = None
    stops: list[Callable[[], None]] = field(default_factory=list)  # more to take down, in order
    extra_counters: dict[str, Callable[[], dict]] = field(default_factory=dict)

    def stop(self) -> None:
        for stop in ([self.osc.stop] if self.osc else []) + ([self.web.stop] if self.web else []) + self.stops:
            stop()


def start_frontends(args, rig, *, learn=None) -> FrontEnds:
    """OSC on 127.0.0.1 and, with --web, the page, both on the rig's session."""
    fronts = FrontEnds()
    if args.osc_port >= 0:
        from controls.osc import OscControl, OscServer

        control = OscControl(rig.session, rig.live_counters, args.presets, learn=learn)
        fronts.osc = OscServer(control, "127.0.0.1", args.osc_port).start()
        fronts.extra_counters["osc"] = fronts.osc.control.snapshot
        print(f"OSC on udp://127.0.0.1:{fronts.osc.port} (/demon/<param>, /demon/trigger/<name>, /demon/state)",
              file=sys.stderr)
    if args.web:
        from web.server import WebConfig, WebServer

        fronts.web = WebServer(rig.session, WebConfig(args.listen, args.web_port, args.token,
                                                      tuple(args.allow_origin), presets=args.presets),
                               counters=rig.live_counters, view=rig.view).start()
        fronts.extra_counters["web"] = lambda: vars(fronts.web.counters)
        print(f"page on {fronts.web.url}", file=sys.stderr)
    return fronts


def run_live(args, rig, fronts: FrontEnds, run: Callable[[threading.Event], None]) -> int:
    """Run `run(stop)` until Ctrl-C, SIGTERM or --run-seconds; then stop the front-ends,
    write --counters-out and print the last status line."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if args.run_seconds is not None:
        timer = threading.Timer(args.run_seconds, stop.set)
        timer.daemon = True  # never keeps the process alive on its own
        timer.start()
    start = time.perf_counter()
    try:
        run(stop)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        fronts.stop()
    counters = rig.live_counters()
    counters.update({name: read() for name, read in fronts.extra_counters.items()})
    if args.counters_out is not None:
        args.counters_out.write_text(json.dumps(counters, indent=1, default=str))
    print(f"\nplayed {time.perf_counter() - start:.1f} s: {rig.status_line()}", file=sys.stderr)
    return 0
