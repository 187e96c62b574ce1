"""Windowed decode against full decode, for clips of growing length.

For each clip length, times a full decode of the clip and the decode one tick needs
in live play (the samples of one tick of playback plus the measured halo), side by
side, and checks that the window equals the full decode inside it.

Prints JSON lines: windowed_speedup (full / window time) and max_abs_diff.
"""

from __future__ import annotations

import argparse
import statistics
import time

import common  # noqa: F401  (puts the repository on sys.path)
import torch
from common import emit

from engine.windowed import decode_window
from pipelines.music.codec import FRAME_RATE, build_codec, decoder_fn, measure_geometry


def load():
    """The house VAE if it is there, else a random one of the same configuration."""
    try:
        from pipelines.music.models import load_codec

        codec = load_codec()
        return codec.vae, codec.geometry, "house"
    except (ValueError, OSError):
        vae = build_codec()
        return vae, measure_geometry(vae), "random-init"


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", default="30,60,120,600", help="clip lengths in seconds")
    ap.add_argument("--tick-seconds", type=float, default=0.5, help="playback one tick must decode")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    vae, geom, which = load()
    decode = decoder_fn(vae)
    sr = int(vae.config.sampling_rate)
    channels = int(vae.config.decoder_input_channels)
    tick = int(args.tick_seconds * sr)
    gen = torch.Generator().manual_seed(0)
    decode(torch.randn(1, channels, 64, generator=gen))  # warm up
    for seconds in [float(s) for s in args.lengths.split(",")]:
        frames = round(seconds * FRAME_RATE)
        z = torch.randn(1, channels, frames, generator=gen)
        start = (frames * geom.hop) // 2 + 123  # a window in the middle, off the frame grid
        full_s = timed(lambda: decode(z), 1 if seconds > 120 else args.repeats)
        window_s = timed(lambda: decode_window(decode, z, start, start + tick, geom), args.repeats * 5)
        full = decode(z)
        diff = 0.0
        for s0 in (0, start, frames * geom.hop - tick):  # the edges and the middle
            part = decode_window(decode, z, s0, s0 + tick, geom)
            diff = max(diff, (part - full[..., s0 : s0 + tick]).abs().max().item())
        del full
        extra = {"clip_seconds": seconds, "tick_seconds": args.tick_seconds, "halo_frames": geom.halo,
                 "model": which}
        emit("decode", "windowed_speedup", full_s / window_s, "x", baseline=full_s, ratio=full_s / window_s,
             window_ms=round(window_s * 1e3, 2), **extra)
        emit("decode", "max_abs_diff", diff, "abs", **extra)


if __name__ == "__main__":
    main()
