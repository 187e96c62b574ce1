"""Headless music rendering: text-to-music and audio-to-audio through the ring.

A complete ACE-Step folder conditions through its own encoders (conditioning.py) and
fills what the job leaves unsaid from its defaults; the house layout conditions on
MiniLM captions. `conditions` is the one place that tells them apart.
"""

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
from .codec import encode_mean
from .models import MusicModels
from .prompt import SongMeta, SongText
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
    lyrics: str = ""  # a complete folder's lyric conditioning
    meta: SongMeta = SongMeta()  # and its metadata (language, bpm, key, time signature)


def conditions(models: MusicModels, job: MusicJob, frames: int) -> tuple[dict, dict]:
    """(cond, null) of the job's one request, built once before it is submitted."""
    if models.conditioner is not None:
        song = SongText(job.prompt or "", job.lyrics, job.seconds, job.meta)
        cond = models.conditioner.cond(song, frames)
        null = models.conditioner.null(cond)
        return ({**cond, **null} if job.prompt is None else cond), null
    if job.lyrics or job.meta != SongMeta():
        raise InputError("lyrics", "the house models condition on a caption alone (no lyrics or metadata); "
                                   "use a complete ACE-Step folder (--model)")
    cfg = models.transformer.config
    context = torch.zeros(frames, cfg.in_channels - cfg.audio_acoustic_hidden_dim)
    null = {"text": null_caption(1)[0], "context": context.clone()}
    cond = {"text": encode_captions([job.prompt])[0] if job.prompt is not None else null["text"], "context": context}
    return cond, null


def job_params(models: MusicModels, job: MusicJob) -> dict:
    """The job's registry values over the folder's defaults (none for the house models)."""
    defaults = models.defaults
    if defaults is None:
        return dict(job.params)
    params = {**defaults.params(), **job.params}
    if defaults.distilled and params["guidance"] != 1.0:
        raise InputError("guidance", f"{models.card.get('folder', 'this folder')} is a turbo checkpoint: guidance "
                                     "is distilled into its weights; leave guidance at 1")
    return params


def source_latents(models: MusicModels, path: Path, frames: int) -> torch.Tensor:
    """A source file as normalised (T, C) latents, cut or looped to `frames`."""
    codec = models.codec
    audio = read_audio(path, codec.sample_rate)
    need = frames * codec.geometry.hop
    if audio.size < need:
        audio = np.tile(audio, -(-need // audio.size))
    # read as mono; a stereo model hears it on every channel
    x = torch.from_numpy(audio[:need].copy())[None, None].expand(1, codec.audio_channels, need)
    return codec.normalize(encode_mean(codec.vae, x)[0].T)


def job_frames(models: MusicModels, seconds: float) -> int:
    """Latent frames of `seconds`, as AceStepPipeline counts them: ceil(seconds * frame rate)."""
    return max(1, math.ceil(seconds * models.codec.frame_rate))


def generate_latents(models: MusicModels, job: MusicJob, progress: Progress | None = None) -> torch.Tensor:
    frames = job_frames(models, job.seconds)
    shape = (frames, models.codec.channels)
    store = StateStore(initial={**job_params(models, job), "depth": 1})
    cond, null = conditions(models, job, frames)
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
    """(T, C) normalised latents -> samples, decoded window by window: (samples,) from a
    mono model, (channels, samples) otherwise. The decoder's own level, at a fixed gain
    of 1: never normalised per window, so the level cannot jump between windows."""
    codec = models.codec
    z = codec.denormalize(latents).T[None]  # (1, C, T)
    total = z.shape[-1] * codec.geometry.hop
    block = int(DECODE_BLOCK_SECONDS * codec.sample_rate)
    decode = models.decode
    out = np.zeros((codec.audio_channels, total), dtype=np.float32)
    for start in range(0, total, block):
        stop = min(total, start + block)
        out[:, start:stop] = decode_window(decode, z, start, stop, codec.geometry)[0].numpy()
        if progress is not None:
            progress("decode", stop, total)
    return out[0] if codec.audio_channels == 1 else out


def render_music(models: MusicModels, job: MusicJob, progress: Progress | None = None) -> np.ndarray:
    """Exactly job.seconds of audio (latents cover whole frames; the tail is cut)."""
    audio = decode_audio(models, generate_latents(models, job, progress), progress)
    return audio[..., : round(job.seconds * models.codec.sample_rate)]
