"""Headless music rendering: text-to-music and audio-to-audio through the ring."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from engine import InputError, Ring, StateStore, request_from_state
from engine.windowed import decode_window

from ..audio_io import read_audio
from .codec import FRAME_RATE, encode_mean
from .models import MusicModels
from .text import encode_captions, null_caption

MAX_SECONDS = 600.0
DECODE_BLOCK_SECONDS = 5.0  # windowed decode keeps memory flat for long renders

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass(frozen=True)
class MusicJob:
    prompt: str | None  # None: unconditional (the null condition)
    seconds: float
    params: dict  # registry values: seed, steps, strength, guidance, shift, solver...
    source: Path | None = None


def conditions(models: MusicModels, prompt: str | None, frames: int) -> tuple[dict, dict]:
    cfg = models.transformer.config
    context = torch.zeros(frames, cfg.in_channels - cfg.audio_acoustic_hidden_dim)
    null = {"text": null_caption(1)[0], "context": context.clone()}
    cond = {"text": encode_captions([prompt])[0] if prompt is not None else null["text"], "context": context}
    return cond, null


def source_latents(models: MusicModels, path: Path, frames: int) -> torch.Tensor:
    """A source file as normalised (T, C) latents, cut or looped to `frames`."""
    codec = models.codec
    audio = read_audio(path, codec.sample_rate)
    need = frames * codec.geometry.hop
    if audio.size < need:
        audio = np.tile(audio, -(-need // audio.size))
    x = torch.from_numpy(audio[:need].copy())[None, None]
    return codec.normalize(encode_mean(codec.vae, x)[0].T)


def generate_latents(models: MusicModels, job: MusicJob, progress: Progress | None = None) -> torch.Tensor:
    frames = max(1, math.ceil(job.seconds * FRAME_RATE))
    shape = (frames, models.codec.channels)
    cond, null = conditions(models, job.prompt, frames)
    store = StateStore(initial={**job.params, "depth": 1})
    source = source_latents(models, job.source, frames) if job.source is not None else None
    if source is None and store.snapshot["strength"] < 1.0:
        raise InputError("strength", "below 1 needs a source to start from (--source FILE)")
    ring = Ring(models.denoiser, shape, store=store, null_cond=null)
    request = request_from_state(store.snapshot, cond=cond, source=source)
    ring.submit(request)
    steps = request.schedule.steps
    done = []
    while not done:
        done = ring.tick()
        if progress is not None:
            progress("denoise", ring.counters.ticks, steps)
    return done[0].latent


def decode_audio(models: MusicModels, latents: torch.Tensor, progress: Progress | None = None) -> np.ndarray:
    """(T, C) normalised latents -> mono samples, decoded window by window."""
    codec = models.codec
    z = codec.denormalize(latents).T[None]  # (1, C, T)
    total = z.shape[-1] * codec.geometry.hop
    block = int(DECODE_BLOCK_SECONDS * codec.sample_rate)
    decode = models.decode
    out = np.zeros(total, dtype=np.float32)
    for start in range(0, total, block):
        stop = min(total, start + block)
        out[start:stop] = decode_window(decode, z, start, stop, codec.geometry)[0, 0].numpy()
        if progress is not None:
            progress("decode", stop, total)
    return out


def render_music(models: MusicModels, job: MusicJob, progress: Progress | None = None) -> np.ndarray:
    """Exactly job.seconds of audio (latents cover whole frames; the tail is cut)."""
    audio = decode_audio(models, generate_latents(models, job, progress), progress)
    return audio[: round(job.seconds * models.codec.sample_rate)]
