"""Distil a base house folder into a turbo one: few steps, guidance in the weights.

    python -m pipelines.music.distill_turbo --teacher models/music --out build/music_turbo --minutes 40

The teacher is the base folder run as it plays: `--teacher-steps` Euler steps on the
shifted grid with APG at `--guidance` (a doubled batch). The student (a copy of the
teacher's transformer, `is_turbo`) learns to land where the teacher lands in
`--steps` steps of the same grid, one row per slot and no guidance batch:

    at each student sigma s_k the target velocity is (x_k - x_{k+1}) / (s_k - s_{k+1}),
    the teacher's own states at the student's sigmas (the grids nest: the teacher's
    steps are a multiple of the student's), so its Euler steps follow the teacher's
    trajectory; every step after the first also starts once from the student's own
    state (detached) and aims at the teacher's next one, so its errors do not compound.

The transformer is called as diffusers' AceStepPipeline calls a turbo checkpoint, with
`timestep_r = timestep`: the distilled step size is implied by the grid, not by r, so
the folder plays the same in diffusers and here. The condition encoder is the teacher's,
unchanged. Teacher trajectories are drawn first (they cost the most: every one is
`--teacher-steps` doubled calls) and reused across the student's epochs.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.schedule import flow_schedule
from engine.solvers import apg_combine

from ..training import Budget
from .cards import write_card
from .conditioning import TIMBRE_SECONDS
from .folder_data import FolderData, prepare
from .house_folder import load_text_parts, load_trained, save_folder
from .models import load_codec
from .train_folder import draw_batch

TITLE = "House music turbo DiT (distilled from the base house DiT)"
SHARED_PARTS = ("vae", "condition_encoder")  # the teacher's, unchanged by distillation


@dataclass
class Trajectories:
    """One drawn batch: its conditioning and the teacher's states at the student's sigmas."""

    cond: torch.Tensor  # (B, L, H)
    context: torch.Tensor  # (B, T, 2A)
    states: torch.Tensor  # (K + 1, B, T, A): noise, ..., the teacher's final latents


def student_sigmas(steps: int, shift: float) -> list[float]:
    return list(flow_schedule(steps, 1.0, shift).sigmas)


def teacher_states(dit, cond, null, context, noise, steps: int, every: int, shift: float, guidance: float):
    """The teacher's states every `every` of its `steps` Euler steps (noise first, the
    end last), under APG as AceStepPipeline guides a base checkpoint."""
    sigmas = student_sigmas(steps, shift)
    x, momentum = noise, torch.zeros_like(noise)
    states = [x]
    b = noise.shape[0]
    with torch.no_grad():
        for i in range(steps):
            t = torch.full((2 * b,), sigmas[i])
            v = dit(hidden_states=torch.cat([x, x]), timestep=t, timestep_r=t,
                    encoder_hidden_states=torch.cat([cond, null]), context_latents=torch.cat([context, context]),
                    return_dict=False)[0]
            v_cond, v_null = v.chunk(2)
            v, momentum = apg_combine(v_cond, v_null, guidance, momentum, norm_dim=1)
            x = x + (sigmas[i + 1] - sigmas[i]) * v
            if (i + 1) % every == 0:
                states.append(x)
    return torch.stack(states)


def draw_trajectories(dit, encoder, prepared: FolderData, args, timbre_frames: int, gen) -> Trajectories:
    with torch.no_grad():
        x0, cond, context = draw_batch(encoder, prepared, args, timbre_frames, gen)
    null = encoder.null_condition_emb.expand_as(cond)
    noise = torch.randn(x0.shape, generator=gen)
    states = teacher_states(dit, cond, null, context, noise, args.teacher_steps, args.teacher_steps // args.steps,
                            args.shift, args.guidance)
    return Trajectories(cond.detach(), context.detach().contiguous(), states)


def velocity(model, x: torch.Tensor, sigma: float, batch: Trajectories) -> torch.Tensor:
    t = torch.full((x.shape[0],), sigma)
    return model(hidden_states=x, timestep=t, timestep_r=t, encoder_hidden_states=batch.cond,
                 context_latents=batch.context, return_dict=False)[0]


def student_loss(student, batch: Trajectories, sigmas: list[float]) -> torch.Tensor:
    """Mean squared error of the student's velocities against the teacher's steps: from
    the teacher's states, and (after the first step) from the student's own rollout."""
    states, losses = batch.states, []
    own = states[0]
    for k in range(len(sigmas) - 1):
        step = sigmas[k] - sigmas[k + 1]
        v = velocity(student, states[k], sigmas[k], batch)
        losses.append(((v - (states[k] - states[k + 1]) / step) ** 2).mean())
        if k > 0:
            v = velocity(student, own, sigmas[k], batch)
            losses.append(((v - (own - states[k + 1]) / step) ** 2).mean())
        own = (own - step * v).detach()
    return torch.stack(losses).mean()


def gap(student, batches: list[Trajectories], sigmas: list[float]) -> float:
    """RMS distance between the student's result in its steps and the teacher's end."""
    errs = []
    with torch.no_grad():
        for batch in batches:
            x = batch.states[0]
            for k in range(len(sigmas) - 1):
                x = x + (sigmas[k + 1] - sigmas[k]) * velocity(student, x, sigmas[k], batch)
            errs.append(float(((x - batch.states[-1]) ** 2).mean()))
    return math.sqrt(sum(errs) / len(errs))


def link_shared(out: Path, teacher: Path) -> None:
    """The parts distillation leaves as they were become relative links to the teacher's,
    so a shipped turbo folder beside its base holds only its own transformer."""
    for part in SHARED_PARTS:
        target = out / part
        shutil.rmtree(target)
        target.symlink_to(os.path.relpath(teacher.resolve() / part, out.resolve()), target_is_directory=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("data/music"))
    ap.add_argument("--teacher", type=Path, default=Path("models/music"), help="the base house folder")
    ap.add_argument("--out", type=Path, required=True, help="the turbo folder to write")
    ap.add_argument("--init", type=Path, default=None, help="resume a turbo folder's transformer instead of the teacher's")
    ap.add_argument("--steps", type=int, default=2, help="the student's steps")
    ap.add_argument("--teacher-steps", type=int, default=8)
    ap.add_argument("--guidance", type=float, default=7.0, help="the teacher's APG scale, distilled in")
    ap.add_argument("--shift", type=float, default=3.0)
    ap.add_argument("--teacher-minutes", type=float, default=15.0, help="time spent drawing teacher trajectories")
    ap.add_argument("--minutes", type=float, default=30.0, help="time spent training the student")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--repaint", type=float, default=0.25)
    ap.add_argument("--meta", type=float, default=0.4)
    ap.add_argument("--inst", type=float, default=0.25)
    ap.add_argument("--clips", type=int, default=None)
    ap.add_argument("--cache", type=Path, default=None, help="the clips' latents (safetensors), as train_folder's")
    ap.add_argument("--held-out", type=int, default=4, help="teacher batches kept aside to measure the gap")
    ap.add_argument("--link-teacher", action="store_true",
                    help="link the teacher's vae/ and condition_encoder/ (unchanged) instead of copying them")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    argv = argv if argv is not None else sys.argv[1:]
    if args.steps < 1 or args.teacher_steps % args.steps:
        ap.error(f"--teacher-steps ({args.teacher_steps}) must be a multiple of --steps ({args.steps})")

    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    start = time.time()
    tokenizer, text_encoder = load_text_parts(args.teacher)
    codec = load_codec(args.teacher)
    prepared = prepare(args.data, args.clips, codec.vae, tokenizer, text_encoder, cache=args.cache)
    teacher, encoder = (part.eval().requires_grad_(False) for part in load_trained(args.teacher))
    timbre_frames = math.ceil(TIMBRE_SECONDS * codec.frame_rate)

    batches: list[Trajectories] = []
    while time.time() - start < args.teacher_minutes * 60 or len(batches) <= args.held_out:
        batches.append(draw_trajectories(teacher, encoder, prepared, args, timbre_frames, gen))
    held, batches = batches[: args.held_out], batches[args.held_out :]
    teacher_minutes = (time.time() - start) / 60
    print(f"distill: {len(batches)} teacher batches of {args.batch} ({teacher_minutes:.1f} min)", file=sys.stderr)

    student = copy.deepcopy(teacher) if args.init is None else load_trained(args.init)[0]
    student.register_to_config(is_turbo=True, model_version="turbo")
    student.train().requires_grad_(True)
    sigmas = student_sigmas(args.steps, args.shift)
    before = gap(student, held, sigmas)
    opt = torch.optim.AdamW(student.parameters(), lr=args.lr, weight_decay=0.0)
    budget = Budget(args.minutes, args.lr, warmup_steps=50)
    while budget.running():
        batch = batches[int(torch.randint(len(batches), (1,), generator=gen))]
        budget.update(opt, student, student_loss(student, batch, sigmas), every=25)
    student.eval()
    after = gap(student, held, sigmas)
    print(json.dumps({"gap_before": before, "gap_after": after}), file=sys.stderr)

    save_folder(args.out, args.teacher / "vae", codec.vae, tokenizer, text_encoder, student, encoder)
    if args.link_teacher:
        link_shared(args.out, args.teacher)
    teacher_card = json.loads((args.teacher / "transformer" / "house.json").read_text())
    card = {
        "summary": (f"The base house DiT distilled to {args.steps} steps (shift {args.shift:g}) with APG "
                    f"{args.guidance:g} in its weights: a turbo checkpoint (is_turbo), one row per slot and no "
                    f"guidance batch. Its teacher: {args.teacher_steps} steps of the base folder under APG."),
        "distilled_steps": args.steps,
        "distilled_shift": args.shift,
        "teacher": {"folder": str(args.teacher), "steps": args.teacher_steps, "guidance": args.guidance,
                    "card": {k: teacher_card.get(k) for k in ("command", "train_minutes_total", "train_minutes")}},
        "teacher_batches": len(batches) + len(held),
        "batch": args.batch,
        "teacher_minutes": round(teacher_minutes, 1),
        "train_minutes": round(budget.elapsed / 60, 1),
        "steps": budget.step,
        "gap_rms_heldout": {"before": round(before, 4), "after": round(after, 4),
                            "note": f"RMS latent distance of the student's {args.steps}-step result from the "
                                    f"teacher's {args.teacher_steps}-step result, {len(held)} batches of "
                                    f"{args.batch} kept out of training (before: the student it started "
                                    f"from, {'the teacher itself' if args.init is None else args.init}, in "
                                    f"{args.steps} steps without guidance)"},
        "weights_dtype": "float16",
        "command": "python -m pipelines.music.distill_turbo " + " ".join(argv),
        "loss_log": budget.log[-20:],
    }
    (args.out / "transformer" / "house.json").write_text(json.dumps(card, indent=2))
    write_card(args.out / "transformer", TITLE, card["summary"])
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
