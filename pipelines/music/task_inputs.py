"""A task's audio inputs, built as diffusers' AceStepPipeline builds them: once per request.

- The source (repaint, cover) and the timbre reference are read in the model's own
  format: resampled to the VAE's rate, up- or down-mixed to its channels.
- Repaint's context is the source's latents with the folder's silence latent inside
  the window, beside a chunk mask of ones inside the window and zeros outside.
- Cover's context is the source's latents through the audio tokenizer and back
  through its detokenizer (what the source sounds like at 5 tokens a second), beside
  ones. With a cover strength below 1 the prediction is blended with text to music's
  (CoverBlend).
- A timbre reference is repeated to at least 30 s; three 10 s segments (front,
  middle, back) make the 30 s the timbre encoder reads.

Encoding: diffusers draws `vae.encode(x).latent_dist.sample()` from the global torch
RNG, so its repaint and cover are not reproducible from the request's seed. Here audio
is encoded to the posterior MEAN (codec.encode_mean, as audio-to-audio and training
already do): the same seed and files give the same music every time. The parity test
runs diffusers with the VAE's sample replaced by that same mean, so it compares equal
inputs, and differs from stock diffusers in that one draw only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine import InputError

from ..audio_io import MAX_READ_SECONDS, read_audio
from .codec import encode_mean
from .conditioning import AceStepConditioner, tiled
from .models import LatentCodec
from .tasks import MAX_SECONDS, MIN_REFERENCE_SECONDS, MusicTask, RepaintWindow

REFERENCE_SECONDS = 30  # what the timbre encoder reads
REFERENCE_SEGMENT_SECONDS = 10  # in three segments: front, middle, back
PLAIN_TEXT = "plain_text"  # a cover's text-to-music condition, for strength below 1
COVER_STRENGTH = "cover_strength"


def frames_of(codec: LatentCodec, seconds: float) -> int:
    """Latent frames of `seconds`, as AceStepPipeline counts them: ceil(seconds * frame rate)."""
    return max(1, math.ceil(seconds * codec.frame_rate))


def read_model_audio(codec: LatentCodec, path: Path, max_seconds: float = MAX_READ_SECONDS) -> np.ndarray:
    """(channels, samples) of an audio file at the VAE's rate and channel count."""
    audio = read_audio(path, codec.sample_rate, max_seconds, channels=codec.audio_channels)
    return audio[None] if audio.ndim == 1 else audio


def encode_audio(codec: LatentCodec, audio: np.ndarray) -> torch.Tensor:
    """(channels, samples) -> (frames, latent channels) raw latents (the posterior mean);
    a last partial frame is padded with silence."""
    hop = codec.geometry.hop
    padded = np.pad(audio, ((0, 0), (0, -audio.shape[-1] % hop)))
    return encode_mean(codec.vae, torch.from_numpy(padded)[None])[0].T


@dataclass(frozen=True)
class Source:
    """A task's source: its raw latents and its length in seconds."""

    latents: torch.Tensor  # (frames, latent channels), raw VAE latents
    seconds: float


def read_source(codec: LatentCodec, path: Path) -> Source:
    audio = read_model_audio(codec, path, MAX_SECONDS)  # the source's length is the render's
    return Source(encode_audio(codec, audio), audio.shape[-1] / codec.sample_rate)


def reference_timbre(codec: LatentCodec, path: Path) -> torch.Tensor:
    """(30 s of frames, latent channels): the timbre encoder's input from a reference file."""
    audio = read_model_audio(codec, path)
    rate = codec.sample_rate
    if audio.shape[-1] < MIN_REFERENCE_SECONDS * rate:
        raise InputError("reference", f"{path} is {audio.shape[-1] / rate:.2f} s; a timbre reference needs "
                                      f"at least {MIN_REFERENCE_SECONDS:g} s")
    return encode_audio(codec, reference_segments(audio, rate))


def reference_segments(audio: np.ndarray, rate: int) -> np.ndarray:
    """(channels, 30 s): the audio repeated to at least 30 s, then its first, middle and
    last 10 s, as diffusers' prepare_reference_audio_latents cuts them."""
    need = REFERENCE_SECONDS * rate
    if audio.shape[-1] < need:
        audio = np.tile(audio, (1, math.ceil(need / audio.shape[-1])))
    segment, total = REFERENCE_SEGMENT_SECONDS * rate, audio.shape[-1]
    middle = total // 3
    back = max(total - segment, 0)
    return np.concatenate([audio[:, :segment], audio[:, middle : middle + segment], audio[:, back : back + segment]],
                          axis=-1)


# ---- contexts: the (frames, 2 x latent channels) input beside the noisy latent --------------


def repaint_mask(frames: int, channels: int, window: tuple[int, int]) -> torch.Tensor:
    """(frames, channels): 1 inside the window (generate), 0 outside (keep)."""
    mask = torch.zeros(frames, channels)
    mask[window[0] : window[1]] = 1.0
    return mask


def repaint_context(source: torch.Tensor, silence: torch.Tensor, window: tuple[int, int]) -> torch.Tensor:
    """The source outside the window, the silence latent inside it, beside the mask."""
    mask = repaint_mask(source.shape[0], source.shape[1], window)
    kept = torch.where(mask > 0.5, tiled(silence, source.shape[0]), source)
    return torch.cat([kept, mask], dim=-1)


def check_cover(conditioner: AceStepConditioner) -> None:
    if conditioner.audio_tokenizer is None:
        raise InputError("task", "cover needs the folder's audio_tokenizer and audio_token_detokenizer, "
                                 "which this folder does not have")


def cover_context(conditioner: AceStepConditioner, source: torch.Tensor) -> torch.Tensor:
    """The source through the audio tokenizer and detokenizer (padded with silence to
    whole tokens, then cut back), beside ones."""
    tokenizer, detokenizer = conditioner.audio_tokenizer, conditioner.audio_token_detokenizer
    with torch.inference_mode():
        quantized, _ = tokenizer.tokenize(source[None], conditioner.condition_encoder.silence_latent)
        heard = detokenizer(quantized)[0, : source.shape[0]].float()
    return torch.cat([heard, torch.ones_like(heard)], dim=-1)


def keep_source(latents: torch.Tensor, source: torch.Tensor, window: tuple[int, int]) -> torch.Tensor:
    """A repaint's result: the generated window, the source's own latents elsewhere.
    (The model draws the whole clip; a trained one draws the kept part near the source,
    but only the source itself keeps it unchanged.)"""
    out = source.clone()
    out[window[0] : window[1]] = latents[window[0] : window[1]]
    return out


@dataclass(frozen=True)
class TaskInputs:
    """What a request's task adds to its conditioning, built once before it is submitted."""

    task: MusicTask
    frames: int
    seconds: float
    source: Source | None = None  # repaint and cover
    window: tuple[int, int] | None = None  # repaint's frames
    timbre: torch.Tensor | None = None  # a reference's; None: the silence latent's


def task_inputs(codec: LatentCodec, conditioner: AceStepConditioner, task: MusicTask, seconds: float | None,
                source: Path | None, window: RepaintWindow, reference: Path | None) -> TaskInputs:
    """Read and check a request's audio inputs; `seconds` None: the source's length."""
    timbre = reference_timbre(codec, reference) if reference is not None else None
    if not task.needs_source:
        return TaskInputs(task, frames_of(codec, seconds), seconds, timbre=timbre)
    if task is MusicTask.COVER:
        check_cover(conditioner)
    if source is None:
        raise InputError("task", f"{task.value} needs a source (--source FILE)")
    if seconds is not None:
        raise InputError("seconds", f"{task.value} keeps the source's length; give no length")
    found = read_source(codec, source)
    frames = found.latents.shape[0]
    if task is MusicTask.REPAINT:
        window.check(found.seconds)
        return TaskInputs(task, frames, found.seconds, found, window.frames(codec.frame_rate, frames), timbre)
    return TaskInputs(task, frames, found.seconds, found, timbre=timbre)


def task_context(conditioner: AceStepConditioner, inputs: TaskInputs) -> torch.Tensor | None:
    """The task's context, or None for text to music's (the silence latent beside ones)."""
    if inputs.task is MusicTask.REPAINT:
        return repaint_context(inputs.source.latents, conditioner.silence, inputs.window)
    if inputs.task is MusicTask.COVER:
        return cover_context(conditioner, inputs.source.latents)
    return None


class CoverBlend:
    """diffusers' audio_cover_strength s: s x the cover's guided prediction + (1 - s) x the
    unguided prediction under the text-to-music condition, from one extra call of the
    denoiser for the rows that hold such a condition, after guidance (the ring's
    AfterGuidance hook), as diffusers blends after its guidance."""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, cond) -> torch.Tensor:
        return self.inner.denoise(x, sigma, _own(cond))

    def after_guidance(self, v: torch.Tensor, x: torch.Tensor, sigma: torch.Tensor, cond) -> torch.Tensor:
        if PLAIN_TEXT not in cond:
            return v
        plain = self.inner.denoise(x, sigma, {**_own(cond), "text": cond[PLAIN_TEXT]})
        s = cond[COVER_STRENGTH].reshape(-1, *([1] * (x.dim() - 1)))
        return s * v + (1.0 - s) * plain


def _own(cond) -> dict:
    """The conditioning the DiT reads: without the blend's own entries."""
    return {k: v for k, v in cond.items() if k not in (PLAIN_TEXT, COVER_STRENGTH)}
