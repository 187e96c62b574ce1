"""`demon live music`: the engine, audio out, OSC and MIDI wired together."""

from __future__ import annotations

import sys
from pathlib import Path

from .args import UsageError, add_backend_args, add_param_flags, on_backend
from .catalog import LIVE_REGISTRIES, PARAM_FLAGS
from .frontends import add_frontend_args, check_frontend_args, initial_values, run_live, start_frontends
from .song_flags import read_lyrics


def add_live_music_args(parser) -> None:
    add_param_flags(parser, LIVE_REGISTRIES["music"], PARAM_FLAGS["music"])
    parser.add_argument("--model", type=Path,
                        help="ACE-Step 1.5 folder in diffusers layout (default: the house turbo folder, 2 steps)")
    parser.add_argument("--lyrics", type=Path, help="UTF-8 text file of lyrics, e.g. [verse] lines (a complete "
                        "folder's; default none; live as the lyrics parameter)")
    parser.add_argument("--source", type=Path, help="audio file that requests with strength < 1 start from "
                        "(default: the loop now playing)")
    out = parser.add_argument_group("audio output")
    out.add_argument("--null-audio", action="store_true", help="no sound card: a sink paced by the clock")
    out.add_argument("--list-devices", action="store_true", help="list audio devices and exit")
    out.add_argument("--device", help="output device name or index (see --list-devices)")
    out.add_argument("--samplerate", type=int, help="device rate; the engine's output is resampled to it")
    out.add_argument("--blocksize", type=int, default=None,
                     help="frames per audio callback (default: a power of two near 16 ms at the device rate)")
    out.add_argument("--latency", default="high", help="seconds, or low/high (default high)")
    ctl = parser.add_argument_group("control")
    ctl.add_argument("--midi-in", help="MIDI input port name (see `demon live music --list-midi`)")
    ctl.add_argument("--list-midi", action="store_true", help="list MIDI inputs and exit")
    ctl.add_argument("--midi-maps", type=Path, default=Path.home() / ".config" / "demon" / "midi",
                     help="folder of per-device MIDI mappings (TOML)")
    ctl.add_argument("--learn", metavar="TARGET", help="MIDI-learn TARGET (a parameter or trigger/NAME) at start")
    ctl.add_argument("--link", action="store_true",
                     help="join an Ableton Link session (needs the 'link' extra): tempo follows it and "
                          "bar-aligned loops (--loop-bars) start on its bars")
    add_backend_args(parser)
    add_frontend_args(parser)
    parser.add_argument("--max-batch", type=int, help="rows per denoiser call (default: the whole ring)")


def _check(args) -> None:
    if args.blocksize is not None and not 16 <= args.blocksize <= 16384:
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
    if args.source is not None and not args.source.is_file():
        raise UsageError(f"--source: {args.source} is not a readable file")
    if args.learn and not args.midi_in:
        raise UsageError("--learn: needs --midi-in")
    check_frontend_args(args)


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
    from pipelines.audio_out import OutputConfig, open_output
    from pipelines.music.models import HOUSE_TURBO, load_music_models

    from .rigs import music_rig

    initial = initial_values(args, LIVE_REGISTRIES["music"], PARAM_FLAGS["music"])
    if args.lyrics is not None:
        initial["lyrics"] = read_lyrics(args.lyrics)
    models = on_backend(load_music_models(args.model or HOUSE_TURBO), args)
    # the model's own format: 48 kHz stereo for ACE-Step 1.5
    sink = open_output(OutputConfig(models.codec.sample_rate, device=args.device, device_rate=args.samplerate,
                                    blocksize=args.blocksize, latency=args.latency,
                                    channels=models.codec.audio_channels), null=args.null_audio)
    rig = music_rig(models, sink, initial=initial, source=args.source, max_batch=args.max_batch)
    live = rig.engine

    midi = None
    if args.midi_in:
        map_file = mapping_path(args.midi_maps, args.midi_in)
        midi = MidiControl(rig.session, load_mapping(map_file) if map_file.is_file() else [])
        if args.learn:
            midi.learn(args.learn)
    fronts = start_frontends(args, rig, learn=midi.learn if midi else None)
    if midi is not None:
        midi_in = MidiInput(midi, args.midi_in).start()

        def close_midi() -> None:
            midi_in.stop()
            save_mapping(mapping_path(args.midi_maps, args.midi_in), args.midi_in, midi.bindings)

        fronts.stops.append(close_midi)
        fronts.extra_counters["midi"] = lambda: vars(midi.counters)
    if args.link:
        from controls.link import LinkClock

        live.link = LinkClock(rig.session, live.tempo_param).start()
        fronts.stops.append(live.link.stop)
    if fronts.web is not None:
        live.taps.append(fronts.web.audio)
    status_every = 0.5 if sys.stderr.isatty() else 0.0
    return run_live(args, rig, fronts, lambda stop: live.run(stop, status_every=status_every, status_out=sys.stderr))
