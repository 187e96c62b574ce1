"""Streaming video SR: quality over bicubic on held-out clips, speed, latency and memory.

Everything runs through the streaming path (`StreamingSR`: upsampler with cached
state, one refiner step in the ring, causal decoder), frame by frame.

- quality, per scale and per kind of picture (photo, illustration, procedural): held-out
  clips made by the corpus generator from the pictures training never saw
  (data.HELD_OUT: six photos, three illustrations, FFmpeg's mandelbrot), degraded the same way:
  psnr_gain_db and ssim_gain over bicubic (measured side by side on the same frames),
  and flicker_ratio, the temporal warping error relative to bicubic's (below 1 is
  steadier);
- fps at 480x270 -> 1920x1080 (4x) and 960x540 -> 1920x1080 (2x), with bicubic's fps
  on the same frames as the baseline and the cascade's with the steady blend off
  (its motion search is the cost); first_frame_ms (first frame in to first out,
  with the ring's allocation) and lookahead_frames (frames that had to go in after a
  frame before it came out);
- peak RSS of a whole render (read, SR, H.264 write) of a 60 s and a 600 s clip, each
  in its own process, at a small size so the 600 s one finishes in minutes.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common  # noqa: F401  (puts the repository on sys.path)
import numpy as np
import torch
from common import ROOT, emit

from pipelines.video_sr.checkpoint import load_video_sr
from pipelines.video_sr.data import HELD_OUT, ClipSpec, make_clip, photo_motion, source_kind
from pipelines.video_sr.pictures import load as picture
from pipelines.video_sr.quality import bicubic, psnr, ssim, warping_error
from pipelines.video_sr.stream import StreamingSR
from trt_builds.backends import Backend
from trt_builds.bundle import with_backend

# VmHWM, the peak RSS of this process image: getrusage's ru_maxrss would carry over the
# parent's peak across fork and exec.
RSS_CHILD = """
import sys, time
from pipelines.video_sr.checkpoint import load_video_sr
from pipelines.video_sr.render import render_video_sr
seconds, size, out = float(sys.argv[1]), sys.argv[2], sys.argv[3]
t0 = time.perf_counter()
stats = render_video_sr(load_video_sr(sys.argv[4] if sys.argv[4] != "-" else None, 4), f"testsrc2=size={size}:rate=25:duration={seconds}", out,
                        source_format="lavfi")
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(stats.frames, hwm, time.perf_counter() - t0)
"""


KINDS = ("photo", "illustration", "procedural")  # reported apart: the goal is set on photos


def held_out_clips(n: int, frames: int, size: int, scale: int, kind: str | None = None):
    """(HR, LR) uint8 clips of held-out sources (of one kind, or all), degraded as the corpus is."""
    rng = np.random.default_rng(1234)
    chosen = [s for s in HELD_OUT if kind is None or source_kind(s) == kind]
    for i in range(n):
        spec = ClipSpec(source=chosen[i % len(chosen)], seed=int(rng.integers(2**31 - 1)), frames=frames,
                        size=size, blur=float(rng.uniform(0, 1.2)), noise=float(rng.uniform(0, 4)),
                        codec="h264" if i % 2 else "jpeg", quality=int(rng.integers(20, 33)) if i % 2 else
                        int(rng.integers(25, 80)))
        hr, lrs = make_clip(spec, (scale,))
        yield hr, lrs[scale]


def to_clip(frames) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (1, 3, T, H, W) float in [0, 1]."""
    return torch.from_numpy(np.stack(frames)).permute(3, 0, 1, 2)[None].float() / 255.0


def quality(models, args, kind: str) -> dict:
    rows = []
    n = args.clips if kind == "photo" else max(2, args.clips // 2)
    for hr, lr in held_out_clips(n, args.frames, args.size, models.scale, kind):
        sr = StreamingSR(models)
        out = [f for frame in lr for f in sr.push(frame)] + sr.flush()
        truth, ours, base = to_clip(hr), to_clip(out), bicubic(to_clip(lr), models.scale)
        rows.append((psnr(ours, truth), psnr(base, truth), ssim(ours, truth), ssim(base, truth),
                     warping_error(ours, truth), warping_error(base, truth)))
    m = np.array(rows).mean(axis=0)
    return {"psnr_db": m[0], "psnr_bicubic_db": m[1], "ssim": m[2], "ssim_bicubic": m[3],
            "warp_error": m[4], "warp_error_bicubic": m[5], "clips": n}


def _timed_pushes(sr: StreamingSR, clip, first: int = 0) -> tuple[list[float], list[int]]:
    """Seconds each push took, and after each the frames pushed after the newest finished one
    (`first`: the frames the stream took before these)."""
    times, lag = [], []
    for i, frame in enumerate(clip, start=first):
        t = time.perf_counter()
        sr.push(frame)
        times.append(time.perf_counter() - t)
        lag.append(i - (sr.frames_out - 1))
    return times, lag


def speed(models, lr_size: tuple[int, int], frames: int) -> dict:
    w, h = lr_size
    clip = _pan(frames + 1, h, w)
    off = StreamingSR(models)
    off.store.set("steady", 0.0)
    steady_off, _ = _timed_pushes(off, clip)
    sr = StreamingSR(models)
    times, lag = _timed_pushes(sr, clip[:1])  # the first push includes the ring's allocation
    sr.clock.seconds.clear()  # the stages from the second frame on
    more, more_lag = _timed_pushes(sr, clip[1:], first=1)
    times, lag = times + more, lag + more_lag
    base = []
    for frame in clip[1:]:
        x = torch.from_numpy(frame).permute(2, 0, 1)[None, :, None].float() / 255.0
        t = time.perf_counter()
        (bicubic(x, models.scale) * 255).round().to(torch.uint8)
        base.append(time.perf_counter() - t)
    assert sr.frames_out == len(clip)
    return {"fps": 1.0 / statistics.median(times[1:]), "fps_bicubic": 1.0 / statistics.median(base),
            "fps_steady_off": 1.0 / statistics.median(steady_off[1:]), "first_frame_ms": 1000 * times[0],
            "lookahead_frames": max(lag), "stages_ms": sr.clock.ms_per_frame(len(clip) - 1)}


def stages(models, lr_size: tuple[int, int], frames: int, work: Path) -> tuple[dict[str, float], float]:
    """A whole render of an H.264 file at `lr_size` (the held-out pan): milliseconds per
    frame of each stage (decode, colour, convert, the networks, bicubic, motion search,
    blend, encode) and the render's frames per second, first frame included."""
    from fractions import Fraction

    from pipelines.video_io import VideoWriter
    from pipelines.video_sr.render import render_video_sr

    w, h = lr_size
    source = work / f"lr_{w}x{h}.mp4"
    writer = VideoWriter(source, w, h, Fraction(25))
    for i, frame in enumerate(_pan(frames, h, w)):
        writer.write(frame, i / 25)
    writer.close()
    stats = render_video_sr(models, source, work / f"sr_{w}x{h}.mp4")
    return stats.stages_ms, stats.fps


def _pan(frames: int, h: int, w: int) -> list[np.ndarray]:
    """A held-out photo panned and zoomed, h x w."""
    big = photo_motion(picture("chelsea"), frames, max(h, w), np.random.default_rng(0))
    return [np.ascontiguousarray(f[:h, :w]) for f in big]


def peak_rss(seconds: float, size: str, out: str, model: str | None) -> tuple[int, float, float]:
    proc = subprocess.run([sys.executable, "-c", RSS_CHILD, str(seconds), size, out, model or "-"], capture_output=True, text=True,
                          cwd=ROOT, timeout=3600, check=True)
    frames, kib, wall = proc.stdout.split()
    return int(frames), int(kib) / 1024, float(wall)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=12, help="held-out clips per scale")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=128, help="HR clips are size x size")
    ap.add_argument("--speed-frames", type=int, default=8)
    ap.add_argument("--rss-seconds", default="60,600")
    ap.add_argument("--rss-size", default="48x32", help="LR size of the memory runs (4x)")
    ap.add_argument("--model", default=None, help="model folder (default: the house models)")
    ap.add_argument("--stage-frames", type=int, default=24, help="frames of the per-stage render")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: quality,speed,stages,rss")
    ap.add_argument("--backend", default="torch", help="torch, torch-compile or ort (the refiner; on ort the "
                    "upsampler and decoder too)")
    args = ap.parse_args()
    skip = set(args.skip.split(","))
    if "quality" not in skip:
        from pipelines.video_sr.pictures import MissingPictures, require_pictures

        try:
            require_pictures()  # the held-out pictures include the wallpaper packages'
        except MissingPictures as err:
            raise SystemExit(f"bench/video_sr.py: {err} (or --skip quality)") from None
    torch.manual_seed(0)
    for scale, lr_size in ((4, (480, 270)), (2, (960, 540))):
        models = with_backend(load_video_sr(args.model, scale), Backend.parse(args.backend))
        tag = {"scale": scale, "steps": 1, "strength": models.sigma, "detail": models.detail,
               "steady": models.steady, "backend": args.backend}
        for kind in KINDS if "quality" not in skip else ():
            q = quality(models, args, kind)
            data = {"kind": kind, "clips": q["clips"], "frames": args.frames, "hr_size": args.size,
                    "held_out": [s for s in HELD_OUT if source_kind(s) == kind]}
            emit("video_sr", "psnr_gain_db", q["psnr_db"] - q["psnr_bicubic_db"], "dB", baseline=q["psnr_bicubic_db"],
                 psnr_db=round(q["psnr_db"], 3), **tag, **data)
            emit("video_sr", "ssim_gain", q["ssim"] - q["ssim_bicubic"], "", baseline=q["ssim_bicubic"],
                 ssim=round(q["ssim"], 4), kind=kind, **tag)
            emit("video_sr", "flicker_ratio", q["warp_error"] / q["warp_error_bicubic"], "",
                 baseline=q["warp_error_bicubic"], warp_error=round(q["warp_error"], 5), kind=kind, **tag)
        if "speed" not in skip:
            s = speed(models, lr_size, args.speed_frames)
            size = f"{lr_size[0]}x{lr_size[1]}->{lr_size[0] * scale}x{lr_size[1] * scale}"
            emit("video_sr", "fps", s["fps"], "frames/s", baseline=s["fps_bicubic"], ratio=s["fps"] / s["fps_bicubic"],
                 fps_steady_off=round(s["fps_steady_off"], 3), size=size, **tag)
            emit("video_sr", "first_frame_ms", s["first_frame_ms"], "ms", size=size, **tag)
            emit("video_sr", "lookahead_frames", s["lookahead_frames"], "frames", size=size, **tag)
            for stage, ms in s["stages_ms"].items():  # the stream alone, frames in memory
                emit("video_sr", f"stream_stage_{stage}_ms", ms, "ms/frame", size=size, **tag)
        if "stages" not in skip:
            size = f"{lr_size[0]}x{lr_size[1]}->{lr_size[0] * scale}x{lr_size[1] * scale}"
            with tempfile.TemporaryDirectory() as work:
                per_stage, fps = stages(models, lr_size, args.stage_frames, Path(work))
            for stage, ms in per_stage.items():
                emit("video_sr", f"stage_{stage}_ms", ms, "ms/frame", size=size, **tag)
            emit("video_sr", "render_fps", fps, "frames/s", size=size, frames=args.stage_frames,
                 stages_ms_sum=round(sum(per_stage.values()), 1), **tag)
    if "rss" not in skip:
        out = ROOT / "out"
        out.mkdir(exist_ok=True)
        for seconds in [float(s) for s in args.rss_seconds.split(",")]:
            frames, mib, wall = peak_rss(seconds, args.rss_size, str(out / f"bench_rss_{seconds:g}s.mp4"), args.model)
            emit("video_sr", "peak_rss_mib", mib, "MiB", clip_seconds=seconds, frames=frames, lr_size=args.rss_size,
                 scale=4, wall_s=round(wall, 1))


if __name__ == "__main__":
    main()
