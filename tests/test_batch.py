"""`demon batch` on a local Ray with 2 worker processes: the outputs equal `demon render`
run one by one, a bad job is recorded while the rest complete, a worker killed mid-run
still leaves every job done exactly once, and a rerun skips what is done."""

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

from demon.cli import main
from pipelines.audio_io import read_audio, write_audio
from pipelines.video_io import VideoReader
from test_voice_stream import spoken

SOURCE = "testsrc=size=32x24:rate=25:duration={seconds}"


def batch(jobs: Path, out: Path, *extra: str, **popen):
    argv = [sys.executable, "-m", "demon", "batch", str(jobs), "--out", str(out), "--workers", "2",
            "--threads-per-worker", "1", *extra]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def write_jobs(path: Path, entries: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(e) for e in entries) + "\n")
    return path


@contextmanager
def one_thread():
    """torch on one thread, as each worker runs (--threads-per-worker 1): a CPU sums in another order on two."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def manifest(out: Path) -> list[dict]:
    path = out / "manifest.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


@pytest.fixture(scope="module")
def jobs(tiny_models, tiny_video_sr, tiny_voice, tmp_path_factory):
    """Eight mixed jobs and one whose source cannot be read, in a jobs file."""
    root = tmp_path_factory.mktemp("batch")
    write_audio(root / "line.wav", spoken(2), 16_000)  # speech: the stream's speech gate lets it through
    write_audio(root / "actor.wav", spoken(1), 16_000)
    (root / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot audio at all")
    entries = [
        {"pipeline": "music", "model": str(tiny_models), "prompt": "synth pop, 120 bpm, C major", "seconds": 2,
         "steps": 3, "seed": seed, "out": f"music-{seed}.wav"} for seed in (1, 2, 3)
    ] + [
        {"pipeline": "music", "model": str(tiny_models), "prompt": "slow piano, 70 bpm", "seconds": 1.5, "steps": 2,
         "seed": 9, "out": "piano.flac"},
        {"pipeline": "video-sr", "model": str(tiny_video_sr), "input": SOURCE.format(seconds=1), "input_format": "lavfi",
         "scale": 2, "out": "video-2x.mp4"},
        {"pipeline": "video-sr", "model": str(tiny_video_sr), "input": SOURCE.format(seconds=0.6),
         "input_format": "lavfi", "scale": 4, "out": "video-4x.mkv"},
        {"pipeline": "voice", "model": str(tiny_voice), "input": "line.wav", "target": "actor.wav", "out": "voice-a.wav"},
        {"pipeline": "voice", "model": str(tiny_voice), "input": "line.wav", "target": "actor.wav", "chunk_ms": 40,
         "out": "voice-b.wav"},
        {"pipeline": "music", "model": str(tiny_models), "prompt": "noise", "seconds": 1, "source": "broken.wav",
         "strength": 0.5, "out": "broken.wav"},
    ]
    return write_jobs(root / "jobs.jsonl", entries), entries


def one_by_one_argv(entry: dict, base: Path, out: Path) -> list[str]:
    from demon.batch_jobs import entry_argv

    _, argv, _ = entry_argv(entry, base)
    return [*argv, "--out", str(out)]


def same_output(a: Path, b: Path) -> bool:
    if a.suffix in (".mp4", ".mkv"):
        with VideoReader(a) as ra, VideoReader(b) as rb:
            fa, fb = list(ra), list(rb)
        return len(fa) == len(fb) and all(np.array_equal(x, y) and s == t for (x, s), (y, t) in zip(fa, fb))
    return np.array_equal(read_audio(a, 16_000), read_audio(b, 16_000))


def test_a_batch_equals_render_one_by_one_records_a_bad_job_and_reruns_nothing(jobs, tmp_path):
    path, entries = jobs
    out = tmp_path / "out"
    out.mkdir()
    proc = batch(path, out)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 1, stderr[-3000:]  # one job failed
    assert "batch: 8 done, 1 failed, 0 skipped" in stdout, stdout + stderr[-3000:]
    records = manifest(out)
    by_out = {r["out"]: r for r in records}
    assert len(records) == 9 and by_out["broken.wav"]["status"] == "failed"
    assert "broken.wav" in by_out["broken.wav"]["error"] and not (out / "broken.wav").exists()
    assert {r["worker"] for r in records if r["status"] == "done"}.__len__() == 2  # both workers took jobs
    assert all(r["seconds"] > 0 and len(r["key"]) == 64 for r in records)
    assert all(0 < r["ended"] - r["began"] == pytest.approx(r["seconds"], abs=2e-3) for r in records)
    assert sorted(n for n in os.listdir(out) if n.startswith(".")) == []  # no staging file left

    alone = tmp_path / "alone"
    alone.mkdir()
    with one_thread():
        for entry in entries[:-1]:
            assert main(one_by_one_argv(entry, path.parent, alone / entry["out"])) == 0
            assert same_output(out / entry["out"], alone / entry["out"]), entry["out"]

    mtimes = {n: (out / n).stat().st_mtime_ns for n in os.listdir(out)}
    again = batch(path, out)
    stdout, stderr = again.communicate(timeout=600)
    assert "batch: 0 done, 1 failed, 8 skipped" in stdout, stdout + stderr[-2000:]
    assert len(manifest(out)) == 10  # the failed job ran again; nothing done ran twice
    assert all((out / n).stat().st_mtime_ns == t for n, t in mtimes.items() if n != "manifest.jsonl")


def test_a_worker_killed_mid_run_leaves_every_job_done_exactly_once(jobs, tmp_path):
    path, entries = jobs
    good = write_jobs(path.parent / "good.jsonl", entries[:-1])
    out = tmp_path / "out"
    out.mkdir()
    proc = batch(good, out, start_new_session=True)
    try:
        end = time.monotonic() + 300
        while time.monotonic() < end and not manifest(out):  # workers up, models loaded, a job done
            time.sleep(0.1)
        pids = subprocess.run(["pgrep", "-s", str(proc.pid), "-f", "RenderWorker"], capture_output=True,
                              text=True).stdout.split()
        assert pids, "no worker process found"
        os.kill(int(pids[0]), signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0 and "batch: 8 done, 0 failed" in stdout, stdout + stderr[-3000:]
    done = [r["key"] for r in manifest(out) if r["status"] == "done"]
    assert len(done) == len(set(done)) == 8
    assert sorted(n for n in os.listdir(out) if n != "manifest.jsonl") == sorted(e["out"] for e in entries[:-1])


@pytest.mark.parametrize("line,needle", [
    ('{"pipeline": "painting", "out": "x.png"}', "pipeline: choose from"),
    ('{"pipeline": "music", "seconds": 2}', "--prompt"),
    ('{"pipeline": "music", "prompt": "a", "steps": 900}', "--steps"),
    ('{"pipeline": "music", "prompt": "a", "out": "../escape.wav"}', "plain file name"),
    ('{"pipeline": "voice", "input": "nope.wav", "target": "nope.wav"}', "not a readable file"),
    ("not json", "not JSON"),
    ('{"pipeline": "music", "prompt": "a", "help": true}', "not an option name"),
    ('{"pipeline": "video-sr", "input": "--help"}', "must not start with '-'"),
    ('{"pipeline": "music", "prompt": "a", "bpm": 9000}', "--bpm"),
])
def test_bad_entries_are_reported_with_their_line_before_any_work(tmp_path, capsys, line, needle):
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text('# a comment line\n{"pipeline": "music", "prompt": "fine", "seconds": 1}\n' + line + "\n")
    out = tmp_path / "out"
    out.mkdir()
    assert main(["batch", str(jobs), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{jobs}:3: " in err and needle in err, err
    assert os.listdir(out) == []  # nothing started


def test_music_jobs_through_one_ring_equal_the_one_by_one_renders_within_rounding(jobs, tmp_path):
    """--ring-depth 3: the three music jobs of one length and settings run as one ring of
    three slots; the denoiser batches their rows, so they match within float rounding."""
    path, entries = jobs
    same = write_jobs(path.parent / "same.jsonl", entries[:3])
    out = tmp_path / "out"
    out.mkdir()
    proc = batch(same, out, "--ring-depth", "3")
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0 and "batch: 3 done" in stdout, stdout + stderr[-3000:]
    assert len({r["worker"] for r in manifest(out)}) == 1  # one worker, one ring
    with one_thread():
        for entry in entries[:3]:
            alone = tmp_path / f"alone-{entry['out']}"
            assert main(one_by_one_argv(entry, path.parent, alone)) == 0
            a, b = read_audio(out / entry["out"], 16_000), read_audio(alone, 16_000)
            assert a.shape == b.shape and np.abs(a - b).max() < 1e-3, np.abs(a - b).max()


def test_ctrl_c_stops_keeps_what_finished_and_leaves_no_partial_output(jobs, tmp_path):
    path, entries = jobs
    good = write_jobs(path.parent / "ctrl-c.jsonl", entries[:-1])
    out = tmp_path / "out"
    out.mkdir()
    # SIGINT as a shell's foreground job has it: a runner in the background starts its children with it ignored
    proc = batch(good, out, start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        end = time.monotonic() + 300
        while time.monotonic() < end and not manifest(out):
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)  # the driver alone, as a terminal's Ctrl-C reaches it first
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and "interrupted" in stdout, stdout + stderr[-2000:]
    done = {r["out"] for r in manifest(out) if r["status"] == "done"}
    left = set(os.listdir(out))
    assert done and done <= left and not [n for n in left if n.startswith(".")]  # kept what finished; no staging file
    assert left - done - {"manifest.jsonl"} <= {e["out"] for e in entries}  # at most whole outputs a rerun redoes
