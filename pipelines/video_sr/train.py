"""Train the video SR house models on the generated corpus: one cascade per scale, in timed stages.

    python -m pipelines.video_sr.train --data data/video_sr --out models/video_sr --minutes 60 --jobs 2

The latents describe the detail bicubic upsampling misses: the SR output is
bicubic(LR) + decoder(z). Per scale:
1. cascade: LatentUpsampler + CausalDecoder end to end on the final frames (per clip, the
   MSE plus the MSE of frame-to-frame differences against the truth's, so detail that is
   not in the next frame is not invented; `--loss log` averages their logs over clips,
   `--loss mse` the errors themselves); the decoder's head starts at zero, so training
   starts from bicubic;
2. encoder: Encoder onto the frozen decoder's latent space (HR residual -> z that
   decodes to it), the refiner's targets;
3. refiner: SRDenoiser, one Euler step from x_s = (1 - s) z_up + s noise (s <= SIGMA_MAX,
   one noise pattern for every frame of a clip, as the ring draws it) toward the
   encoder's latents, judged both in latent space and on the decoded frames.
Scales train in parallel processes with `--jobs 2` (one thread each: on this CPU two
single-threaded runs learn faster than one run on two threads). Weights are
safetensors (checkpoint.py); the card records, per scale, held-out PSNR against
bicubic (the mean over clips, as bench/video_sr.py measures it) for several refiner
start sigmas, detail scales and steady blends (the best of each is the default), the
flicker ratio, and the training time. `--init FOLDER` continues from a model folder;
with `--stages` only the stages named train, the others stay as it left them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.numpy import load_file

from ..cards import write_card
from ..training import Budget
from ..weights import load_module
from .checkpoint import PARTS, read_card, save_scale
from . import pictures
from .data import SCALES, lr_key
from .models import CausalDecoder, Encoder, LatentUpsampler, SRConfig, SRDenoiser
from .quality import bicubic, psnr, warping_error
from .stream import compose_clip, decoded_detail, whole_clip_reference

SIGMA_MAX = 0.5  # the refiner starts at most this far from the upsampler's estimate
# shares of each scale's budget
SPLIT = {"cascade": 0.7, "encoder": 0.1, "refiner": 0.2}
EVAL_SIGMAS = (0.01, 0.02, 0.05, 0.1, 0.25)  # 0.01: the registry's least strength, nearly the cascade alone
# Scales of the decoded detail: a network unsure of the detail it predicts does better (in
# MSE) adding less of it; the card's best becomes the `detail` default.
EVAL_DETAILS = (0.25, 0.5, 0.75, 1.0, 1.25)
# Strengths of the motion-compensated blend of each LR frame with the previous one
# (motion.steady_input); the best PSNR among those with a flicker ratio within
# FLICKER_GOAL becomes the card's `steady` default (a steadier picture is worth a little
# PSNR to a viewer).
EVAL_STEADY = (0.0, 0.25, 0.5, 0.75)
FLICKER_GOAL = 0.8  # warping error at most this share of bicubic's
TEMPORAL_WEIGHT = 0.5
LATENT_WEIGHT = 0.1  # the refiner's latent term beside its frame term
def corpus_text() -> str:
    """The card's data line: the command, what the clips are made of, and every picture by name."""
    held = sorted(pictures.HELD_OUT_PICTURES)
    trained = {}
    for p in pictures.PICTURES:
        if p.name not in pictures.HELD_OUT_PICTURES:
            trained.setdefault(p.origin, []).append(p.name)
    listed = "; ".join(f"{origin}: {', '.join(names)}" for origin, names in trained.items())
    return ("`python -m pipelines.video_sr.data --out data/video_sr --clips 1200 --frames 12 --size 128` (seed 0): "
            "pan/zoom/rotation over natural pictures (Debian's wallpaper packages, photos and illustrations, "
            "and scikit-image's and scikit-learn's photos), each first scaled down to a random shorter side of "
            "384-1080 px, over dead-leaves pictures and over FFmpeg's procedural sources (life, cellauto, "
            "testsrc2); 128x128 HR, degraded by blur, antialiased bicubic downscale (2x and 4x), noise and "
            "JPEG or H.264; training batches mirrored, transposed, reversed and colour-permuted. "
            f"Trained on ({listed}). Held out, whole pictures never drawn for training: {', '.join(held)}, "
            "and mandelbrot")


SUMMARY = ("One cascade of four tiny causal networks per scale (latent grid HR/4): a causal latent upsampler, "
           "a one-step flow-matching refiner that runs in the ring, a causal decoder with cached state that "
           "adds detail onto bicubic (luma detail where `detail_channels` is 1), and a per-frame encoder "
           "(training targets only); before them a motion-compensated blend of each LR frame with the previous "
           "one (`steady`, no network). No look-ahead. "
           "Metrics: held-out PSNR (dB, mean over clips) against bicubic, the cascade without the refiner, "
           "with the refiner from several start sigmas, then with the decoded detail scaled, then with the steady "
           "blend (`sigma`, `detail` and `steady` are the defaults), and the flicker ratio against bicubic's.")


def load_clips(root: Path, split: str) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """(N, 3, T, H, W) uint8 HR clips and, per scale, their LR clips."""
    hr, lr = [], {s: [] for s in SCALES}
    for line in (root / "metadata.jsonl").read_text().splitlines():
        meta = json.loads(line)
        if meta["split"] == split:
            clip = load_file(str(root / meta["file"]))
            hr.append(clip["hr"])
            for s in SCALES:
                lr[s].append(clip[lr_key(s)])
    if not hr:
        raise FileNotFoundError(f"no {split} clips under {root} (make video-sr-data)")
    to = lambda a: torch.from_numpy(np.stack(a)).permute(0, 4, 1, 2, 3).contiguous()  # noqa: E731
    return to(hr), {s: to(v) for s, v in lr.items()}


def batch(hr: torch.Tensor, lr: torch.Tensor, size: int, frames: int, rng: np.random.Generator,
          augment: bool = True):
    """A random batch of `frames`-long windows, as float in [0, 1]. Augmented (the same way for
    HR and LR): mirrored, transposed, played backwards, colour channels permuted, so a few
    photos teach the degradation rather than their own content."""
    idx = rng.integers(0, len(hr), size)
    t0 = rng.integers(0, hr.shape[2] - frames + 1, size)
    pick = lambda x: torch.stack([x[i, :, t : t + frames] for i, t in zip(idx, t0)]).float() / 255.0  # noqa: E731
    x, low = pick(hr), pick(lr)
    if augment:
        for dim in (-1, -2, 2):
            if rng.random() < 0.5:
                x, low = x.flip(dim), low.flip(dim)
        if rng.random() < 0.5 and x.shape[-1] == x.shape[-2]:
            x, low = x.transpose(-1, -2), low.transpose(-1, -2)
        perm = torch.from_numpy(rng.permutation(3))
        x, low = x[:, perm], low[:, perm]
    return x.contiguous(), low.contiguous()


def clip_errors(y: torch.Tensor, x: torch.Tensor, temporal_weight: float = TEMPORAL_WEIGHT) -> torch.Tensor:
    """Per clip: MSE + temporal_weight * MSE of frame-to-frame differences (flicker the truth
    does not have costs)."""
    mse = (y - x).square().mean((1, 2, 3, 4))
    dy, dx = y[:, :, 1:] - y[:, :, :-1], x[:, :, 1:] - x[:, :, :-1]
    return mse + temporal_weight * (dy - dx).square().mean((1, 2, 3, 4))


# How clips' errors combine into the loss. "log" makes each clip count by its PSNR, as the
# benchmark averages them, rather than by its error (a chaotic clip's error is a hundred
# times a photo's); "mse" lets the hardest clips lead.
FRAME_LOSSES = {
    "log": lambda y, x, w: (clip_errors(y, x, w) + 1e-5).log().mean(),
    "mse": lambda y, x, w: clip_errors(y, x, w).mean(),
}


def clip_psnr(out: torch.Tensor, truth: torch.Tensor) -> float:
    """Mean over clips of each clip's PSNR (bench/video_sr.py's measure)."""
    return float(np.mean([psnr(out[i : i + 1], truth[i : i + 1]) for i in range(len(truth))]))


def frames_to_clip(z: torch.Tensor, b: int) -> torch.Tensor:
    """(B*T, C, h, w) -> (B, C, T, h, w)."""
    return z.reshape(b, -1, *z.shape[1:]).transpose(1, 2)


def train_scale(args, scale: int) -> dict:
    """Train one scale's cascade; returns its card entry (the weights are written)."""
    torch.manual_seed(args.seed + scale)
    rng = np.random.default_rng([args.seed, scale])
    hr, lrs = load_clips(args.data, "train")
    lr = lrs[scale]
    test_hr, test_lr = load_clips(args.data, "test")
    if args.init is not None:
        cfg = SRConfig(**read_card(args.init)[f"x{scale}"]["config"])
    else:
        cfg = SRConfig(width=args.width, blocks=args.blocks, time_kernel=args.time_kernel,
                       block_time_kernel=args.block_time_kernel,
                       latent_channels=args.latent_channels, detail_channels=args.detail_channels)
    modules = new_modules(cfg, scale)
    enc, up, dec, refiner = (modules[k] for k in ("encoder", "upsampler", "decoder", "refiner"))
    if args.init is not None:
        load_modules(modules, args.init, scale, "a model folder to continue from")
    minutes, steps = {}, {}
    frame_loss = lambda y, x: FRAME_LOSSES[args.loss](y, x, args.temporal_weight)  # noqa: E731

    def stage(name: str, trained, loss_fn) -> None:
        if name not in args.stages:  # kept as --init left it
            return
        params = [p for m in trained for p in m.parameters()]
        opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
        share = SPLIT[name] / sum(SPLIT[s] for s in args.stages)
        budget = Budget(args.minutes * share, args.lr, warmup_steps=50)
        holder = torch.nn.ModuleList(trained)  # one module for gradient clipping
        for m in trained:
            m.train().requires_grad_(True)
        while budget.running():
            budget.update(opt, holder, loss_fn())
        minutes[name], steps[name] = round(budget.elapsed / 60, 1), budget.step
        for m in trained:
            m.requires_grad_(False).eval()
        print(f"x{scale} {name}: {budget.step} steps", file=sys.stderr, flush=True)

    def cascade_loss():
        x, low = batch(hr, lr, args.batch, args.frames, rng)
        return frame_loss(bicubic(low, scale) + dec(up(low)[0])[0], x)

    def encoder_loss():
        x, low = batch(hr, lr, args.batch, args.frames, rng)
        r = x - bicubic(low, scale)
        # luma detail (one channel) goes onto R, G and B alike, as the stream adds it
        return F.mse_loss(dec(enc(r))[0].expand_as(r), r)

    def refiner_loss():
        x, low = batch(hr, lr, args.batch, args.frames, rng)
        base = bicubic(low, scale)
        with torch.no_grad():
            target = enc(x - base).transpose(1, 2).flatten(0, 1)
            z_up = up(low)[0].transpose(1, 2).flatten(0, 1)
        b, t = x.shape[0], x.shape[2]
        s = (torch.rand(b) * SIGMA_MAX).repeat_interleave(t).view(-1, 1, 1, 1)
        noise = torch.randn(b, *target.shape[1:]).repeat_interleave(t, dim=0)  # one pattern per clip
        xs = (1 - s) * z_up + s * noise
        z0 = xs - s * refiner(xs, s.flatten(), {"z_up": z_up})  # one Euler step to sigma 0
        y = base + dec(frames_to_clip(z0, b))[0]
        return frame_loss(y, x) + LATENT_WEIGHT * F.mse_loss(z0, target)

    stage("cascade", [up, dec], cascade_loss)
    stage("encoder", [enc], encoder_loss)
    stage("refiner", [refiner], refiner_loss)

    m, sigma, detail, steady = heldout_metrics(modules, test_hr, test_lr[scale], scale)
    entry = {"sigma": sigma, "detail": detail, "steady": steady, "train_minutes": minutes, "steps": steps,
             "metrics_heldout": m, "command": _command(args.argv)}
    save_scale(args.out, scale, cfg, modules, entry)
    print(json.dumps({f"x{scale}": m}), flush=True)
    return entry


def new_modules(cfg: SRConfig, scale: int) -> dict[str, torch.nn.Module]:
    """One scale's four networks, freshly initialised, by part name (PARTS)."""
    return {"encoder": Encoder(cfg), "upsampler": LatentUpsampler(scale, cfg), "decoder": CausalDecoder(cfg),
            "refiner": SRDenoiser(cfg)}


def load_modules(modules: dict[str, torch.nn.Module], folder: Path, scale: int, what: str) -> None:
    """Each part's weights from a model folder (a bad file is a ModelFolderError naming `what`)."""
    for name, m in modules.items():
        load_module(m, folder / f"x{scale}" / f"{name}.safetensors", what)


def heldout_metrics(modules: dict[str, torch.nn.Module], test_hr: torch.Tensor, test_lr: torch.Tensor,
                    scale: int) -> tuple[dict, float, float, float]:
    """Held-out PSNR (mean over clips) of bicubic, the autoencoder (the refiner's target), the
    cascade without the refiner, the whole cascade from each start sigma, then at the best
    sigma with the decoded detail scaled by each of EVAL_DETAILS, then at the best detail with
    each steady blend of EVAL_STEADY, with each one's flicker ratio (warping error against
    bicubic's, mean over clips); and the best sigma, detail and steady (the best PSNR within
    the flicker goal)."""
    enc, up, dec, refiner = (modules[k].eval() for k in ("encoder", "upsampler", "decoder", "refiner"))
    with torch.no_grad():
        low, target = test_lr.float() / 255.0, test_hr.float() / 255.0
        base = bicubic(low, scale)
        m = {"psnr_bicubic": clip_psnr(base, target),
             "psnr_autoencoder": clip_psnr(base + dec(enc(target - base))[0], target),
             "psnr_cascade_only": clip_psnr(base + dec(up(low)[0])[0], target)}
        for sigma in EVAL_SIGMAS:
            m[f"psnr_sr_sigma_{sigma:g}"] = clip_psnr(whole_clip_reference(up, refiner, dec, low, sigma), target)
    sigma = max(EVAL_SIGMAS, key=lambda s: m[f"psnr_sr_sigma_{s:g}"])
    added = decoded_detail(up, refiner, dec, low, sigma)  # once: each detail scale only rescales it
    for detail in EVAL_DETAILS:
        m[f"psnr_sr_detail_{detail:g}"] = clip_psnr(compose_clip(low, added, detail), target)
    detail = max(EVAL_DETAILS, key=lambda d: m[f"psnr_sr_detail_{d:g}"])
    with torch.no_grad():  # the stream's own path: the blend changes what the networks see
        steadied = {s: whole_clip_reference(up, refiner, dec, low, sigma, detail=detail, steady=s) for s in EVAL_STEADY}
    # as bench/video_sr.py: the mean over clips of the warping error, against bicubic's
    def flicker(x: torch.Tensor) -> float:
        return float(np.mean([warping_error(x[i : i + 1], target[i : i + 1]) for i in range(len(target))]))

    base_flicker = flicker(base)
    for s, out in steadied.items():
        m[f"psnr_sr_steady_{s:g}"] = clip_psnr(out, target)
        m[f"flicker_steady_{s:g}"] = flicker(out) / base_flicker
    # the best PSNR among the blends steady enough (the flicker goal), else the steadiest
    steady_enough = [s for s in EVAL_STEADY if m[f"flicker_steady_{s:g}"] <= FLICKER_GOAL]
    steady = (max(steady_enough, key=lambda s: m[f"psnr_sr_steady_{s:g}"]) if steady_enough
              else min(EVAL_STEADY, key=lambda s: m[f"flicker_steady_{s:g}"]))
    m["psnr_sr"] = m[f"psnr_sr_steady_{steady:g}"]
    m["psnr_gain_db"] = m["psnr_sr"] - m["psnr_bicubic"]
    m["flicker_ratio"] = m[f"flicker_steady_{steady:g}"]
    return m, sigma, detail, steady


def evaluate_folder(args, scale: int) -> None:
    """Re-measure a model folder's held-out metrics, start sigma, detail and steady; weights untouched."""
    entry = read_card(args.evaluate)[f"x{scale}"]
    cfg = SRConfig(**entry["config"])
    modules = new_modules(cfg, scale)
    load_modules(modules, args.evaluate, scale, "a model folder to evaluate")
    test_hr, test_lr = load_clips(args.data, "test")
    metrics, sigma, detail, steady = heldout_metrics(modules, test_hr, test_lr[scale], scale)
    save_scale(args.evaluate, scale, cfg, modules,
               {**entry, "sigma": sigma, "detail": detail, "steady": steady, "metrics_heldout": metrics})
    print(json.dumps({f"x{scale}": metrics}), flush=True)


def write_house_card(folder: Path) -> None:
    """The README beside the models, from every scale's entry (each records the command that made it)."""
    card = read_card(folder)
    scales = card["scales"]
    view = {"command": "; ".join(f"x{s}: {card[f'x{s}']['command']}" for s in scales), "scales": scales,
            "train_minutes": {f"x{s}": card[f"x{s}"]["train_minutes"] for s in scales},
            "steps": {f"x{s}": card[f"x{s}"].get("steps") for s in scales},
            "sigma": {f"x{s}": card[f"x{s}"]["sigma"] for s in scales},
            "detail": {f"x{s}": card[f"x{s}"].get("detail", 1.0) for s in scales},
            "steady": {f"x{s}": card[f"x{s}"].get("steady", 0.0) for s in scales},
            "metrics_heldout": {f"x{s}": card[f"x{s}"]["metrics_heldout"] for s in scales},
            "networks": {f"x{s}": card[f"x{s}"]["config"] for s in scales},
            "notes": card.get("notes", [])}
    write_card(folder, "House video SR models", SUMMARY, corpus_text(), card=view)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("data/video_sr"))
    ap.add_argument("--out", type=Path, default=Path("models/video_sr"))
    ap.add_argument("--minutes", type=float, default=60.0, help="per scale")
    ap.add_argument("--scales", type=int, nargs="+", default=list(SCALES), choices=SCALES)
    ap.add_argument("--jobs", type=int, default=1, help="scales trained at once, one process and thread each")
    ap.add_argument("--init", type=Path, default=None,
                    help="continue from this model folder (its networks' config, not --width/--latent-channels)")
    ap.add_argument("--evaluate", type=Path, default=None, metavar="FOLDER",
                    help="no training: re-measure this model folder's held-out metrics, start sigma, detail and steady")
    ap.add_argument("--stages", nargs="+", choices=list(SPLIT), default=list(SPLIT),
                    help="train only these stages (the others as --init left them), sharing the minutes")
    ap.add_argument("--width", type=int, default=SRConfig.width, help="new networks only")
    ap.add_argument("--latent-channels", type=int, default=SRConfig.latent_channels, help="new networks only")
    ap.add_argument("--blocks", type=int, default=SRConfig.blocks, help="new networks only")
    ap.add_argument("--time-kernel", type=int, default=SRConfig.time_kernel, help="the stems'; new networks only")
    ap.add_argument("--block-time-kernel", type=int, default=SRConfig.block_time_kernel,
                    help="the residual blocks'; new networks only")
    ap.add_argument("--detail-channels", type=int, choices=(1, 3), default=SRConfig.detail_channels,
                    help="new networks only: 1 adds detail to luma alone")
    ap.add_argument("--loss", choices=sorted(FRAME_LOSSES), default="log", help="how clips' errors combine")
    ap.add_argument("--temporal-weight", type=float, default=TEMPORAL_WEIGHT,
                    help="weight of the frame-to-frame difference error beside the frames' own (flicker)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)  # at 2e-3 a cascade diverged for a while
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    for flag, folder in (("--init", args.init), ("--evaluate", args.evaluate)):
        if folder is not None and not all((folder / f"x{s}" / f"{p}.safetensors").is_file()
                                          for s in args.scales for p in PARTS):
            ap.error(f"{flag} {folder}: not a video SR model folder with scales {args.scales}")
    if set(args.stages) != set(SPLIT) and args.init is None:
        ap.error("--stages without every stage needs --init (the stages left out would stay untrained)")
    scales = sorted(set(args.scales))
    if args.evaluate is not None:
        for scale in scales:
            evaluate_folder(args, scale)
        write_house_card(args.evaluate)
        return 0
    if args.jobs > 1 and len(scales) > 1:
        return _parallel(args, scales)
    for scale in scales:
        train_scale(args, scale)
    write_house_card(args.out)
    return 0


def _command(argv: list[str]) -> str:
    return "python -m pipelines.video_sr.train " + " ".join(argv)


def _parallel(args, scales: list[int]) -> int:
    """Each scale in its own single-threaded process; the card once all have finished."""
    base, skip = [], False
    for token in args.argv:  # each child trains one scale: drop --jobs and --scales with their values
        if token.startswith("--"):
            skip = token.split("=")[0] in ("--jobs", "--scales")
        if not skip:
            base.append(token)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-m", "pipelines.video_sr.train", *base, "--scales", str(s)], env=env)
             for s in scales]
    codes = [p.wait() for p in procs]
    if any(codes):
        print(f"video SR training failed (exit codes {codes})", file=sys.stderr)
        return 1
    write_house_card(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
