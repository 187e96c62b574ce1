"""`demon live voice`: the microphone converted toward a target speaker, to the speakers."""

from __future__ import annotations

import sys
from pathlib import Path

from .args import UsageError, add_param_flags, add_backend_args, on_backend
from .catalog import LIVE_REGISTRIES, PARAM_FLAGS
from .frontends import add_frontend_args, check_frontend_args, initial_values, run_live, start_frontends


def add_live_voice_args(parser) -> None:
    parser.add_argument("--target", type=Path, required=True, help="a few seconds of the target speaker")
    parser.add_argument("--model", type=Path, help="voice model folder (default: the house models)")
    add_param_flags(parser, LIVE_REGISTRIES["voice"], PARAM_FLAGS["voice"])
    audio = parser.add_argument_group("audio")
    audio.add_argument("--input-device", help="microphone (name or index; see `demon live music --list-devices`)")
    audio.add_argument("--output-device", help="speakers (name or index)")
    audio.add_argument("--samplerate", type=int, help="device rate; converted to and from 16 kHz")
    audio.add_argument("--blocksize", type=int, default=160, help="frames per audio callback (default 160)")
    audio.add_argument("--null-audio", metavar="FILE", type=Path,
                       help="no sound card: FILE plays as the microphone at real-time pace")
    add_backend_args(parser)
    add_frontend_args(parser)


def run_live_voice(args) -> int:
    check_frontend_args(args)
    if not args.target.is_file():
        raise UsageError(f"--target: {args.target} is not a readable file")
    if args.null_audio is not None and not args.null_audio.is_file():
        raise UsageError(f"--null-audio: {args.null_audio} is not a readable file")
    if not 16 <= args.blocksize <= 8192:
        raise UsageError(f"--blocksize: must lie in 16..8192, got {args.blocksize}")
    if args.samplerate is not None and not 8000 <= args.samplerate <= 192000:
        raise UsageError(f"--samplerate: must lie in 8000..192000, got {args.samplerate}")
    from pipelines.audio_duplex import DuplexConfig, NullDuplex, SoundDeviceDuplex
    from pipelines.audio_io import read_audio
    from pipelines.voice.checkpoint import load_voice
    from pipelines.voice.codec import SAMPLE_RATE
    from pipelines.voice.reference import speaker_embedding

    from .rigs import voice_rig

    models, encoder = load_voice(args.model)
    models = on_backend(models, args)
    speaker = speaker_embedding(models, encoder, read_audio(args.target, SAMPLE_RATE), name=str(args.target))
    config = DuplexConfig(SAMPLE_RATE, args.input_device, args.output_device, args.samplerate, args.blocksize)
    if args.null_audio is not None:
        duplex = NullDuplex(config, read_audio(args.null_audio, config.device_rate or SAMPLE_RATE))
    else:
        duplex = SoundDeviceDuplex(config)
    rig = voice_rig(models, speaker, duplex, initial=initial_values(args, LIVE_REGISTRIES["voice"], PARAM_FLAGS["voice"]),
                    target=args.target.name)
    fronts = start_frontends(args, rig)
    print("converting: latency is reported on exit and over OSC (/demon/counters)", file=sys.stderr)
    return run_live(args, rig, fronts, rig.engine.run)
