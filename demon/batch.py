"""`demon batch JOBS --out DIR`: many renders on Ray, locally or on a cluster.

Each worker is a Ray actor that loads a pipeline's models once and renders job after
job with them (demon/renders.py: the code `demon render` runs). Jobs are handed out a
group at a time: jobs that share a model go to the same worker together. Ray restarts a
worker process that dies and retries its group on the new one, a bounded number of
times; a job that fails is recorded and the rest go on. Each output appears in DIR only
when complete; DIR/manifest.jsonl records every job's end, and a rerun skips the jobs
whose key (their content) is recorded done with its output present.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import InputError
from pipelines.errors import PipelineError

from .args import UsageError
from .batch_jobs import BatchFileError, BatchJob, load_jobs
from .progress import ProgressBar

MANIFEST = "manifest.jsonl"
OBJECT_STORE_BYTES = 200 * 2**20


def add_batch_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("jobs", type=Path, help="jobs file: JSON lines or TOML ([[job]] tables), one render each")
    parser.add_argument("--out", type=Path, required=True, help="folder for the outputs and manifest.jsonl")
    parser.add_argument("--address", help="join a Ray cluster: auto, or ray://HOST:PORT (default: start a local Ray "
                                          "sized to this machine)")
    parser.add_argument("--workers", type=int, help="worker processes (default: one per core)")
    parser.add_argument("--threads-per-worker", type=int, help="torch threads (and Ray CPUs) per worker "
                                                               "(default: cores / workers)")
    parser.add_argument("--gpus-per-worker", type=float, default=0.0, help="GPUs each worker is scheduled on")
    parser.add_argument("--retries", type=int, default=2, help="times a dead worker's jobs are retried (default 2)")
    parser.add_argument("--ring-depth", type=int, default=1,
                        help="music jobs that share a model, length and step-wise settings run this many at once "
                             "through one ring (default 1: each equals `demon render` bit for bit; deeper batches "
                             "the denoiser, equal within float rounding)")
    parser.add_argument("--dashboard", action="store_true", help="start Ray's dashboard (off by default)")


@dataclass(frozen=True)
class Plan:
    workers: int
    threads: int
    gpus: float


def plan(args, cores: int) -> Plan:
    if not 1 <= args.ring_depth <= 64:
        raise UsageError(f"--ring-depth: must lie in 1..64, got {args.ring_depth}")
    if args.retries < 0:
        raise UsageError(f"--retries: must be 0 or more, got {args.retries}")
    if args.gpus_per_worker < 0:
        raise UsageError(f"--gpus-per-worker: must be 0 or more, got {args.gpus_per_worker:g}")
    workers = args.workers
    threads = args.threads_per_worker
    if workers is not None and workers < 1:
        raise UsageError(f"--workers: must be 1 or more, got {workers}")
    if threads is not None and threads < 1:
        raise UsageError(f"--threads-per-worker: must be 1 or more, got {threads}")
    if workers is None:
        workers = max(1, cores // (threads or 1))
    threads = threads or max(1, cores // workers)
    if args.address is None and workers * threads > cores:
        # a local Ray could never place the extra workers, and the batch would wait for them forever
        raise UsageError(f"--workers {workers} x --threads-per-worker {threads} needs {workers * threads} cores; "
                         f"this machine has {cores}")
    return Plan(workers, threads, args.gpus_per_worker)


# ---- the worker (a Ray actor) ---------------------------------------------------------------

class RenderWorker:
    """Loads each model set once (the two most recent are kept) and renders groups of jobs."""

    KEEP = 2

    def __init__(self, threads: int):
        import torch

        torch.set_num_threads(threads)
        self.loaded: dict[tuple, Any] = {}
        self.name = f"{socket.gethostname()}:{os.getpid()}"

    def pid(self) -> int:
        return os.getpid()

    def run(self, jobs: list[BatchJob], depth: int = 1) -> list[dict]:
        """Records of `jobs` (one model set): through one ring of up to `depth` where the
        pipeline renders many at once, else one after another."""
        from .renders import RENDERS

        kind = RENDERS[jobs[0].pipeline]
        if depth > 1 and len(jobs) > 1 and kind.run_together is not None:
            began = time.time()
            outcomes = self._guarded(lambda: kind.run_together([j.args for j in jobs], self._models(jobs[0]), depth))
            if isinstance(outcomes, Exception):  # the models did not load: every job says why
                outcomes = [outcomes] * len(jobs)
            return [self._record(job, outcome, began, time.time(), len(jobs)) for job, outcome in zip(jobs, outcomes)]
        records = []
        for job in jobs:
            began = time.time()
            outcome = self._guarded(lambda: kind.run(job.args, self._models(job), None))
            records.append(self._record(job, outcome, began, time.time()))
        return records

    def _models(self, job: BatchJob):
        from .renders import RENDERS

        kind = RENDERS[job.pipeline]
        key = kind.model_key(job.args)
        if key not in self.loaded:
            while len(self.loaded) >= self.KEEP:
                self.loaded.pop(next(iter(self.loaded)))
            self.loaded[key] = kind.load(job.args)
        return self.loaded[key]

    @staticmethod
    def _guarded(work):
        """What `work` returns, or the exception that one job's failure raised."""
        from trt_builds.errors import BackendError

        try:
            return work()
        except (UsageError, InputError, PipelineError, BackendError) as err:
            return err
        except Exception as err:  # noqa: BLE001 - one job's bug is recorded; the batch goes on
            return RuntimeError(f"{type(err).__name__}: {err}")

    def _record(self, job: BatchJob, outcome, began: float, ended: float, shared_by: int = 1) -> dict:
        """`seconds` is the job's share of the call that ran it (a ring of N: a Nth each);
        `began` and `ended` (Unix time) bound that call, model loading included."""
        failed = isinstance(outcome, Exception)
        return {"key": job.key, "line": job.line, "pipeline": job.pipeline, "status": "failed" if failed else "done",
                "out": job.out.name, "seconds": round((ended - began) / shared_by, 3), "began": round(began, 3),
                "ended": round(ended, 3), "worker": self.name, "error": str(outcome) if failed else None}


# ---- the manifest ----------------------------------------------------------------------------

def done_keys(folder: Path) -> set[tuple[str, str]]:
    """(key, output name) of the jobs recorded done whose output is still there."""
    path = folder / MANIFEST
    if not path.is_file():
        return set()
    done = set()
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut short by a crash: that job is simply done again
        if isinstance(record, dict) and record.get("status") == "done" and (folder / str(record.get("out"))).is_file():
            done.add((record.get("key"), record.get("out")))
    return done


def append_record(folder: Path, record: dict) -> None:
    with open(folder / MANIFEST, "a") as manifest:
        manifest.write(json.dumps(record) + "\n")
        manifest.flush()
        os.fsync(manifest.fileno())


def drop_staging(jobs: list[BatchJob]) -> None:
    """Temporary files a killed or interrupted worker left beside the outputs."""
    for job in jobs:
        for stale in job.out.parent.glob(f".{job.out.name}.*.part"):
            stale.unlink(missing_ok=True)


def groups_of(jobs: list[BatchJob], depth: int) -> list[list[BatchJob]]:
    """What one worker call takes: up to `depth` jobs that share a model where the pipeline
    runs many through one ring (music), else one job (the workers share them out)."""
    from .renders import RENDERS

    by_model: dict[tuple, list[BatchJob]] = {}
    for job in jobs:
        by_model.setdefault(job.model_key, []).append(job)
    groups = []
    for same in by_model.values():
        size = depth if RENDERS[same[0].pipeline].run_together is not None else 1
        groups += [same[i:i + size] for i in range(0, len(same), size)]
    return groups


# ---- the driver ------------------------------------------------------------------------------

def run_batch(args) -> int:
    folder = args.out.resolve()  # workers, on a cluster too, write where this names
    args.jobs = args.jobs.resolve()
    if not args.jobs.is_file():
        raise UsageError(f"JOBS: {args.jobs} is not a readable file")
    if not folder.is_dir():
        raise UsageError(f"--out: folder {folder} does not exist")
    cores = os.cpu_count() or 1
    setup = plan(args, cores)
    try:
        jobs = load_jobs(args.jobs, folder)
    except BatchFileError as err:
        raise UsageError(f"bad jobs, nothing started:\n{err}") from None
    done = done_keys(folder)
    todo = [job for job in jobs if (job.key, job.out.name) not in done]
    skipped = len(jobs) - len(todo)
    tally = {"done": 0, "failed": 0}
    began = time.perf_counter()
    interrupted = False
    if todo:
        try:
            _run_on_ray(args, setup, todo, folder, tally)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            drop_staging(todo)
    took = time.perf_counter() - began
    print(f"batch: {tally['done']} done, {tally['failed']} failed, {skipped} skipped"
          f"{', interrupted' if interrupted else ''} in {took:.1f} s ({folder / MANIFEST})")
    return 130 if interrupted else (1 if tally["failed"] else 0)


def _run_on_ray(args, setup: Plan, todo: list[BatchJob], folder: Path, tally: dict) -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no network at run time: Ray's usage report stays off
    import ray
    from ray.exceptions import RayActorError

    if args.address is None:
        # jobs and records are small: a small object store, so a container's small /dev/shm suffices
        ray.init(num_cpus=os.cpu_count(), include_dashboard=args.dashboard, logging_level="ERROR",
                 log_to_driver=False, configure_logging=False, object_store_memory=OBJECT_STORE_BYTES)
    else:
        ray.init(address=args.address, include_dashboard=args.dashboard, logging_level="ERROR", log_to_driver=False)
    worker_class = ray.remote(num_cpus=setup.threads, num_gpus=setup.gpus, max_restarts=args.retries,
                              max_task_retries=args.retries)(RenderWorker)
    workers = min(setup.workers, len(todo))
    idle = deque(worker_class.remote(setup.threads) for _ in range(workers))
    queue = deque(groups_of(todo, args.ring_depth))
    pending: dict[Any, tuple[Any, list[BatchJob]]] = {}
    try:
        with ProgressBar() as bar:
            while queue or pending:
                while idle and queue:
                    worker, group = idle.popleft(), queue.popleft()
                    pending[worker.run.remote(group, args.ring_depth)] = (worker, group)
                (ready,), _ = ray.wait(list(pending), num_returns=1)
                worker, group = pending.pop(ready)
                try:
                    records = ray.get(ready)
                except RayActorError as err:  # died more often than --retries allows: its jobs fail, a fresh one goes on
                    reason = f"worker died {args.retries + 1} times ({str(err).splitlines()[0][:160]})"
                    records = [{"key": j.key, "line": j.line, "pipeline": j.pipeline, "status": "failed",
                                "out": j.out.name, "seconds": None, "began": None, "ended": None, "worker": None,
                                "error": reason} for j in group]
                    worker = worker_class.remote(setup.threads)
                idle.append(worker)
                for record in records:
                    append_record(folder, record)
                    tally[record["status"]] += 1
                    if record["status"] == "failed":
                        print(f"\njob on line {record['line']} failed: {record['error']}", file=sys.stderr, flush=True)
                bar.update("jobs", tally["done"] + tally["failed"], len(todo))
    finally:
        for worker, _ in pending.values():
            ray.kill(worker)
        ray.shutdown()
