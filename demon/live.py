"""`demon live music`: the engine, audio out, OSC and MIDI wired together."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from pathlib import Path

from .args import UsageError

LIVE_FLAGS = ("prompt_a", "prompt_b", "prompt_blend", "guidance", "strength", "steps", "shift", "seed", "solver",
              "depth", "loop_seconds", "loop_bars", "bpm", "gain", "crossfade_ms", "source_blend", "noise_injection")


def add_live_music_args(parser) -> None:
    from pipelines.music.live_params import LIVE_MUSIC_PARAMS

    from .args import add_param_flags

    add_param_flags(parser, LIVE_MUSIC_PARAMS, LIVE_FLAGS)
    parser.add_argument("--model", type=Path, help="ACE-Step 1.5 folder in diffusers layout (default: house models)")
    parser.add_argument("--source", type=Path, help="audio file that requests with strength < 1 start from "
                        "(default: the loop now playing)")
    out = parser.add_argument_group("audio output")
    out.add_argument("--null-audio", action="store_true", help="no sound card: a sink paced by the clock")
    out.add_argument("--list-devices", action="store_true", help="list audio devices and exit")
    out.add_argument("--device", help="output device name or index (see --list-devices)")
    out.add_argument("--samplerate", type=int, help="device rate; the engine's output is resampled to it")
    out.add_argument("--blocksize", type=int, default=512, help="frames per audio callback (default 512)")
    out.add_argument("--latency", default="high", help="seconds, or low/high (default high)")
    ctl = parser.add_argument_group("control")
    ctl.add_argument("--osc-port", type=int, default=9000, help="OSC UDP port on 127.0.0.1 (0: any free; -1: off)")
    ctl.add_argument("--midi-in", help="MIDI input port name (see `demon live music --list-midi`)")
    ctl.add_argument("--list-midi", action="store_true", help="list MIDI inputs and exit")
    ctl.add_argument("--midi-maps", type=Path, default=Path.home() / ".config" / "demon" / "midi",
                     help="folder of per-device MIDI mappings (TOML)")
    ctl.add_argument("--learn", metavar="TARGET", help="MIDI-learn TARGET (a parameter or trigger/NAME) at start")
    ctl.add_argument("--link", action="store_true",
                     help="join an Ableton Link session (needs the 'link' extra): tempo follows it and "
                          "bar-aligned loops (--loop-bars) start on its bars")
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
    parser.add_argument("--max-batch", type=int, help="rows per denoiser call (default: the whole ring)")


def _check(args) -> None:
    if args.blocksize < 16 or args.blocksize > 16384:
        raise UsageError(f"--blocksize: must lie in 16..16384, got {args.blocksize}")
    if args.latency not in ("low", "high"):
        try:
            args.latency = float(args.latency)
        except ValueError:
            raise UsageError(f"--latency: expected seconds or low/high, got {args.latency!r}") from None
        if not 0 < args.latency <= 2:
            raise UsageError(f"--latency: must lie in (0, 2] s, got {args.latency:g}")
    if args.samplerate is not None and not 8000 <= args.samplerate <= 192000:
        raise UsageError(f"--samplerate: must lie in 8000..192000, got {args.samplerate}")
    if not -1 <= args.osc_port <= 65535:
        raise UsageError(f"--osc-port: must lie in -1..65535, got {args.osc_port}")
    if args.run_seconds is not None and not 0 < args.run_seconds <= 86400:
        raise UsageError(f"--run-seconds: must lie in (0, 86400], got {args.run_seconds:g}")
    if args.source is not None and not args.source.is_file():
        raise UsageError(f"--source: {args.source} is not a readable file")
    if not 0 <= args.web_port <= 65535:
        raise UsageError(f"--web-port: must lie in 0..65535, got {args.web_port}")
    if args.token is not None and len(args.token) < 12:
        raise UsageError("--token: use at least 12 characters")
    if args.learn and not args.midi_in:
        raise UsageError("--learn: needs --midi-in")
    if args.counters_out is not None and not args.counters_out.parent.is_dir():
        raise UsageError(f"--counters-out: folder {args.counters_out.parent} does not exist")


def run_live_music(args) -> int:
    if args.list_devices:
        from pipelines.audio_out import list_devices

        print(list_devices())
        return 0
    if args.list_midi:
        import mido

        print("\n".join(mido.get_input_names()) or "no MIDI inputs")
        return 0
    _check(args)
    from controls.midi import MidiControl, MidiInput, load_mapping, mapping_path, save_mapping
    from controls.osc import OscControl, OscServer
    from controls.presets import load_preset
    from pipelines.audio_out import OutputConfig, open_output
    from pipelines.music.live import LiveMusic
    from pipelines.music.live_params import LIVE_MUSIC_PARAMS
    from pipelines.music.models import load_music_models

    from .args import param_values

    initial = load_preset(args.presets / f"{args.preset}.toml", LIVE_MUSIC_PARAMS) if args.preset else {}
    initial.update(param_values(args, LIVE_MUSIC_PARAMS, LIVE_FLAGS))
    models = load_music_models(args.model)
    sink = open_output(OutputConfig(models.codec.sample_rate, device=args.device, device_rate=args.samplerate,
                                    blocksize=args.blocksize, latency=args.latency), null=args.null_audio)
    live = LiveMusic(models, sink, initial=initial, source=args.source, max_batch=args.max_batch)

    midi = midi_in = None
    if args.midi_in:
        map_file = mapping_path(args.midi_maps, args.midi_in)
        midi = MidiControl(live.session, load_mapping(map_file) if map_file.is_file() else [])
        midi_in = MidiInput(midi, args.midi_in).start()
        if args.learn:
            midi.learn(args.learn)
    osc = None
    if args.osc_port >= 0:
        control = OscControl(live.session, live.live_counters, args.presets, learn=midi.learn if midi else None)
        osc = OscServer(control, "127.0.0.1", args.osc_port).start()
        print(f"OSC on udp://127.0.0.1:{osc.port} (/demon/<param>, /demon/trigger/<name>, /demon/state)",
              file=sys.stderr)

    link = None
    if args.link:
        from controls.link import LinkClock

        link = LinkClock(live.session).start()
        live.link = link
    web = None
    if args.web:
        from web.server import WebConfig, WebServer

        web = WebServer(live.session, WebConfig(args.listen, args.web_port, args.token, tuple(args.allow_origin),
                                                presets=args.presets),
                        counters=live.live_counters, view=live.view).start()
        live.taps.append(web.audio)
        print(f"page on {web.url}", file=sys.stderr)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if args.run_seconds is not None:
        timer = threading.Timer(args.run_seconds, stop.set)
        timer.daemon = True  # never keeps the process alive on its own
        timer.start()
    start = time.perf_counter()
    try:
        live.run(stop, status_every=0.5 if sys.stderr.isatty() else 0.0, status_out=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        if osc is not None:
            osc.stop()
        if web is not None:
            web.stop()
        if link is not None:
            link.stop()
        if midi_in is not None:
            midi_in.stop()
            save_mapping(mapping_path(args.midi_maps, args.midi_in), args.midi_in, midi.bindings)
    counters = live.live_counters()
    if osc is not None:
        counters["osc"] = osc.control.snapshot()
    if midi is not None:
        counters["midi"] = vars(midi.counters)
    if web is not None:
        counters["web"] = vars(web.counters)
    if args.counters_out is not None:
        args.counters_out.write_text(json.dumps(counters, indent=1, default=str))
    print(f"\nplayed {time.perf_counter() - start:.1f} s: {live.status_line()}", file=sys.stderr)
    return 0

