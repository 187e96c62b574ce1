"""Jobs per second for 16 music jobs, side by side in one run; prints JSON lines.

    python bench/batch.py                  # the house music models, 16 jobs of 30 s
    python bench/batch.py --jobs 8 --seconds 3 --model models/music_turbo

The same jobs (one caption, 16 seeds) through:
- the plain CLI loop: `demon render music` once per job, one process each (2 threads);
- `demon batch` with 1 worker and with 2 workers, each worker on one thread
  (`scaling_2_workers` is their ratio: 2.0 is perfect scaling);
- `demon batch` with 1 worker on two threads;
- 1 worker on one thread with the ring at depth 1, 2 and 4 (`--ring-depth`): the gain
  from batching music jobs through one ring.
Each batch gets two figures: `jobs/s`, whole-command wall time with Ray's start and the
workers' model loads, as a user meets it; and `steady jobs/s`, read from the manifest's
times: the jobs that ended after every worker had finished its first call, over the
time from then to the last end (what a long batch runs at, start-up left out).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common  # noqa: F401  (puts the repository on sys.path)
from common import ROOT, emit

CAPTION = "lofi piano and drums, 84 bpm, A minor"


def timed(argv: list[str], env: dict | None = None) -> float:
    began = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:6])} ... failed:\n{proc.stderr[-2000:]}")
    return time.perf_counter() - began


def steady_rate(manifest: Path) -> float | None:
    """Jobs per second once every worker has finished its first call (None: too few calls)."""
    records = [json.loads(line) for line in manifest.read_text().splitlines()]
    first_end: dict[str, float] = {}
    for r in records:
        first_end[r["worker"]] = min(first_end.get(r["worker"], r["ended"]), r["ended"])
    warm = max(first_end.values())
    later = [r["ended"] for r in records if r["ended"] > warm]
    return round(len(later) / (max(later) - warm), 4) if later else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--steps", type=int, default=None, help="default: the folder's own")
    ap.add_argument("--model", default=None, help="music model folder (default: the house models)")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="demon-bench-batch-"))
    options = {"prompt": CAPTION, "seconds": args.seconds}
    if args.steps is not None:
        options["steps"] = args.steps
    if args.model is not None:
        options["model"] = str(Path(args.model).resolve())
    entries = [{"pipeline": "music", **options, "seed": seed, "out": f"job{seed}.wav"} for seed in range(args.jobs)]
    jobs = work / "jobs.jsonl"
    jobs.write_text("\n".join(json.dumps(e) for e in entries) + "\n")
    demon = [sys.executable, "-m", "demon"]
    runs: dict[str, float] = {}
    steady: dict[str, float | None] = {}

    def batch(name: str, *flags: str) -> None:
        out = work / name
        out.mkdir()
        runs[name] = args.jobs / timed([*demon, "batch", str(jobs), "--out", str(out), *flags])
        steady[name] = steady_rate(out / "manifest.jsonl")

    try:
        loop = work / "loop"
        loop.mkdir()
        began = time.perf_counter()
        for entry in entries:
            argv = [*demon, "render", "music", "--prompt", CAPTION, "--seconds", str(args.seconds), "--seed",
                    str(entry["seed"]), "--out", str(loop / entry["out"])]
            if args.steps is not None:
                argv += ["--steps", str(args.steps)]
            if args.model is not None:
                argv += ["--model", options["model"]]
            timed(argv, env={**os.environ, "OMP_NUM_THREADS": "2"})
        runs["cli_loop"] = args.jobs / (time.perf_counter() - began)
        batch("workers1_threads1", "--workers", "1", "--threads-per-worker", "1")
        batch("workers2_threads1", "--workers", "2", "--threads-per-worker", "1")
        batch("workers1_threads2", "--workers", "1", "--threads-per-worker", "2")
        for depth in (2, 4):
            batch(f"workers1_threads1_depth{depth}", "--workers", "1", "--threads-per-worker", "1",
                  "--ring-depth", str(depth))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    common_extra = {"jobs": args.jobs, "seconds": args.seconds, "model": args.model or "models/music"}
    for name, rate in runs.items():
        emit("batch", name, rate, "jobs/s", baseline=runs["cli_loop"], ratio=rate / runs["cli_loop"],
             steady_jobs_per_s=steady.get(name), **common_extra)

    def ratio(name: str, over: str, of: dict) -> float | None:
        return round(of[name] / of[over], 4) if of.get(name) and of.get(over) else None

    emit("batch", "scaling_2_workers", ratio("workers2_threads1", "workers1_threads1", runs), "ratio",
         steady=ratio("workers2_threads1", "workers1_threads1", steady), **common_extra)
    for depth in (2, 4):
        name = f"workers1_threads1_depth{depth}"
        emit("batch", f"ring_depth{depth}_speedup", ratio(name, "workers1_threads1", runs), "ratio",
             steady=ratio(name, "workers1_threads1", steady), **common_extra)


if __name__ == "__main__":
    main()
