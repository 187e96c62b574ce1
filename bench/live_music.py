"""Live music under load: the house turbo folder (as `demon live music` plays), random control changes at 20 Hz.

`--model DIR` plays another folder; each starts from its own defaults (steps, shift,
guidance), and a turbo one, whose guidance is in its weights, gets no guidance moves.

For each depth, runs the live engine in real time into the clock-paced null sink
(the same engine and output ring as `demon live music --null-audio`) while a
control thread changes random parameters of every class through the control session.

Prints one JSON line per depth and metric: tick_p50_ms, tick_p99_ms,
completions_per_s, step_onset_ms, request_onset_ms and output_onset_ms (the gain,
applied at the device; p50, with p99 beside), discarded_slots and underflows (silence
the output had to play, plus device flags).
"""

from __future__ import annotations

import argparse
import random
import threading
import time

import common  # noqa: F401  (puts the repository on sys.path)
from common import emit

from demon.rigs import music_rig
from engine import Propagation
from pipelines.audio_out import NullSink, OutputConfig
from pipelines.music.models import HOUSE_TURBO, load_music_models
from pipelines.timings import quantile

CAPTIONS = ("lofi piano and drums, 84 bpm, A minor", "synth pop, 128 bpm, C major",
            "rock guitar and drums, 110 bpm, E minor", "acoustic folk, 96 bpm, G major")


STEP_KNOBS = ("guidance", "prompt_blend", "velocity_scale")


def random_change(rng: random.Random, step_knobs: tuple[str, ...] = STEP_KNOBS) -> dict:
    """One control move, as a performer's hands would make: mostly step-class, some requests."""
    kind = rng.random()
    if kind < 0.45:
        return {rng.choice(step_knobs):
                rng.uniform(1.0, 4.0) if rng.random() < 0.4 else rng.uniform(0.0, 1.0) + 0.5}
    if kind < 0.6:
        return {rng.choice(("source_blend", "noise_injection")): [rng.random() for _ in range(4)]}
    if kind < 0.8:
        return {"strength": rng.uniform(0.5, 1.0)}
    if kind < 0.9:
        return {"seed": rng.randrange(2**31 - 1)}
    return {"gain": rng.uniform(0.5, 1.2)}


def run_depth(models, depth: int, args) -> dict:
    sink = NullSink(OutputConfig(models.codec.sample_rate, buffer_seconds=20.0, channels=models.codec.audio_channels))
    # the folder's own defaults (turbo: no guidance; base, the house models included: APG)
    defaults = models.defaults.params()
    distilled = models.defaults.distilled
    knobs = tuple(k for k in STEP_KNOBS if not (distilled and k == "guidance"))
    given = {"steps": args.steps} if args.steps is not None else {}
    if args.loop_seconds is not None:
        given["loop_seconds"] = args.loop_seconds
    rig = music_rig(models, sink, initial={**defaults, **given, "depth": depth,
                                           "prompt_a": CAPTIONS[0], "prompt_b": CAPTIONS[1]},
                    max_batch=args.max_batch)
    live = rig.engine
    stop = threading.Event()
    engine = threading.Thread(target=live.run, args=(stop,), name="engine")
    rng = random.Random(depth)
    engine.start()
    start = time.perf_counter()
    changes = rejected = 0
    while time.perf_counter() - start < args.minutes * 60:
        try:
            rig.session.update(random_change(rng, knobs), clamp=True)
            changes += 1
        except Exception:  # noqa: BLE001 - counted; the generator only makes valid moves
            rejected += 1
        time.sleep(1.0 / args.rate)
    elapsed = time.perf_counter() - start
    stop.set()
    engine.join()
    counters = live.live_counters()
    ticks = list(live.tick_seconds)
    step = live.onsets.class_onsets(Propagation.STEP)
    request = live.onsets.class_onsets(Propagation.REQUEST)
    output = live.onsets.class_onsets(Propagation.OUTPUT)
    return {
        "tick_p50_ms": 1000 * quantile(ticks, 0.5), "tick_p99_ms": 1000 * quantile(ticks, 0.99),
        "completions_per_s": counters["completions"] / elapsed,
        "step_onset_ms": 1000 * (quantile(step, 0.5) or float("nan")),
        "step_onset_p99_ms": 1000 * (quantile(step, 0.99) or float("nan")),
        "request_onset_ms": 1000 * (quantile(request, 0.5) or float("nan")),
        "request_onset_p99_ms": 1000 * (quantile(request, 0.99) or float("nan")),
        "output_onset_ms": 1000 * (quantile(output, 0.5) or float("nan")),
        "output_onset_p99_ms": 1000 * (quantile(output, 0.99) or float("nan")),
        "discarded_slots": counters["discarded_slots"],
        "underflows": counters["starved_blocks"] + counters["underflows"],
        "deadline_misses": counters["deadline_misses"],
        "swaps_spliced": counters["swaps_spliced"], "splices_late": counters["splices_late"],
        "changes": changes, "rejected_changes": rejected, "seconds": elapsed,
        "loop_seconds": rig.session.store.snapshot["loop_seconds"], "steps": rig.session.store.snapshot["steps"],
        "onsets_measured": len(step) + len(request) + len(output),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=5.0, help="run length per depth")
    ap.add_argument("--depths", default="1,2,4,8")
    ap.add_argument("--loop-seconds", type=float, default=None, help="loop length (default: the live default)")
    ap.add_argument("--steps", type=int, default=None, help="steps per loop (default: the folder's own)")
    ap.add_argument("--rate", type=float, default=20.0, help="control changes per second")
    ap.add_argument("--max-batch", type=int, default=None)
    ap.add_argument("--model", default=None, help="model folder (default: the house turbo folder, as live plays)")
    args = ap.parse_args()
    models = load_music_models(args.model or HOUSE_TURBO)
    for depth in [int(d) for d in args.depths.split(",")]:
        result = run_depth(models, depth, args)
        units = {"tick_p50_ms": "ms", "tick_p99_ms": "ms", "completions_per_s": "1/s", "step_onset_ms": "ms",
                 "request_onset_ms": "ms", "output_onset_ms": "ms", "discarded_slots": "slots", "underflows": "blocks"}
        extra = {k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()
                 if k not in units and k != "loop_seconds"}
        for metric, unit in units.items():
            emit("live_music", metric, result[metric], unit, depth=depth, loop_seconds=result["loop_seconds"],
                 minutes=args.minutes, **(extra if metric == "tick_p50_ms" else {}),
                 **({"model": args.model} if args.model else {}))


if __name__ == "__main__":
    main()
