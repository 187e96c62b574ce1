"""Fuzz every surface against a live engine playing; prints JSON lines.

    python bench/fuzz.py                    # the house turbo folder, 10x the test budget
    python bench/fuzz.py --scale 50 --model models/music

The engine plays the house models in real time into the null sink, in this process, as
`demon live music` does with its OSC, web and MIDI front-ends. First it plays alone
(`--rest-seconds`) for its tick p99 and max at rest; then each surface of
tests/fuzzing.py is fed Hypothesis's inputs through the engine's own control session.
Per surface: inputs tried, crashes (must be 0), hangs (must be 0), the slowest input,
and the engine's longest tick while that surface was fuzzed, beside the p99 at rest,
with the starved blocks and underflows it caused (must be 0).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time

import common  # noqa: F401  (puts the repository on sys.path)
from common import ROOT, emit

sys.path.insert(0, str(ROOT / "tests"))  # the fuzzed surfaces live beside the tests that use them
from fuzzing import Crash, FuzzRig  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402


def fuzz_surface(surface, examples: int) -> dict:
    tally = {"inputs": 0, "crashes": 0, "hangs": 0, "slowest_s": 0.0, "first_crash": ""}

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(surface.strategy)
    def one_input(value):
        tally["inputs"] += 1
        began = time.perf_counter()
        try:
            surface.check(value)
        except Crash as err:  # counted, not raised: the bench goes on to count them all
            hang = "a hang" in str(err)
            tally["hangs" if hang else "crashes"] += 1
            tally["first_crash"] = tally["first_crash"] or str(err)[:300]
        tally["slowest_s"] = max(tally["slowest_s"], time.perf_counter() - began)

    one_input()
    return tally


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="music model folder (default: the house turbo folder)")
    ap.add_argument("--scale", type=float, default=10.0, help="inputs per surface, as a multiple of the test budget")
    ap.add_argument("--rest-seconds", type=float, default=20.0)
    ap.add_argument("--only", default=None, help="fuzz only the surfaces whose names contain this")
    args = ap.parse_args()

    from demon.rigs import music_rig
    from pipelines.audio_out import NullSink, OutputConfig
    from pipelines.music.models import HOUSE_TURBO, load_music_models
    from pipelines.video_sr.checkpoint import HOUSE_MODELS as VIDEO_SR
    from pipelines.voice.checkpoint import HOUSE_MODELS as VOICE

    model = args.model or HOUSE_TURBO
    models = load_music_models(model)
    sink = NullSink(OutputConfig(models.codec.sample_rate, buffer_seconds=20.0, channels=models.codec.audio_channels))
    rig = music_rig(models, sink, initial=models.defaults.params())
    live = rig.engine
    stop = threading.Event()
    engine = threading.Thread(target=live.run, args=(stop,), name="engine")
    engine.start()
    fuzz = FuzzRig(rig.session, {"music": model, "video_sr": VIDEO_SR, "voice": VOICE})
    try:
        time.sleep(args.rest_seconds)
        rest = live.live_counters()
        emit("fuzz", "tick_at_rest", rest["tick_p99_ms"], "ms", tick_max_ms=rest["tick_max_ms"],
             seconds=args.rest_seconds, model=str(model))
        for surface in fuzz.surfaces():
            if args.only and args.only not in surface.name:
                continue
            live.reset_counters()  # this surface's own longest tick (the sink's starved and underflow counts stay)
            before = live.live_counters()
            tally = fuzz_surface(surface, int(args.scale * surface.examples))
            after = live.live_counters()
            emit("fuzz", surface.name, tally["crashes"], "crashes", inputs=tally["inputs"], hangs=tally["hangs"],
                 slowest_input_ms=round(1000 * tally["slowest_s"], 1), tick_max_ms=after["tick_max_ms"],
                 tick_p99_rest_ms=rest["tick_p99_ms"],
                 starved_blocks=after["starved_blocks"] - before["starved_blocks"],
                 underflows=after["underflows"] - before["underflows"], first_crash=tally["first_crash"] or None)
    finally:
        stop.set()
        engine.join(timeout=10)
        fuzz.close()


if __name__ == "__main__":
    main()
