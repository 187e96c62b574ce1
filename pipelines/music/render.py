"""Headless music rendering through the ring: text to music, audio-to-audio, and the
folder's tasks (repaint, cover, a timbre reference).

The folder conditions through its own encoders (conditioning.py) and fills what the job
leaves unsaid from its defaults. A task's audio inputs are read once, before the
request is submitted (task_inputs.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from engine import CORE_PARAMS, InputError, Propagation, Ring, StateStore, request_from_state
from engine.windowed import decode_window

from .codec import encode_mean
from .models import MusicModels
from .prompt import SongMeta, SongText
from .task_inputs import (COVER_STRENGTH, PLAIN_TEXT, CoverBlend, TaskInputs, frames_of, keep_source,
                          read_model_audio, task_context, task_inputs)
from .tasks import MusicTask, RepaintWindow, check_cover_strength, check_task_strength

DECODE_BLOCK_SECONDS = 5.0  # windowed decode keeps memory flat for long renders

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass(frozen=True)
class MusicJob:
    prompt: str | None  # None: unconditional (the null condition)
    seconds: float | None  # None: the source's length (repaint and cover keep it)
    params: dict  # registry values: seed, steps, strength, guidance, shift, solver...
    source: Path | None = None  # audio-to-audio's start, or repaint's and cover's source
    lyrics: str = ""  # a complete folder's lyric conditioning
    meta: SongMeta = SongMeta()  # and its metadata (language, bpm, key, time signature)
    task: MusicTask = MusicTask.TEXT2MUSIC
    window: RepaintWindow = RepaintWindow()  # repaint's
    cover_strength: float = 1.0  # cover's: below 1 blends text to music in
    reference: Path | None = None  # timbre reference audio (a complete folder's)


def prepare(models: MusicModels, job: MusicJob) -> TaskInputs:
    """The job's checked task inputs: its source and reference read, its length known."""
    if job.window != RepaintWindow() and job.task is not MusicTask.REPAINT:
        raise InputError("repaint_start", "a repaint window needs the repaint task")
    check_cover_strength(job.cover_strength)
    if job.cover_strength != 1.0 and job.task is not MusicTask.COVER:
        raise InputError("cover_strength", "needs the cover task")
    check_task_strength(job.task, job.params.get("strength", 1.0))
    if job.seconds is None and not job.task.needs_source:
        raise InputError("seconds", "text to music needs a length")
    return task_inputs(models.codec, models.conditioner, job.task, job.seconds,
                       job.source if job.task.needs_source else None, job.window, job.reference)


def conditions(models: MusicModels, job: MusicJob, frames: int,
               inputs: TaskInputs | None = None) -> tuple[dict, dict]:
    """(cond, null) of the job's one request, built once before it is submitted
    (`inputs`: the job's prepared task inputs; None prepares them)."""
    inputs = inputs if inputs is not None else prepare(models, job)
    conditioner = models.conditioner
    song = SongText(job.prompt or "", job.lyrics, inputs.seconds, job.meta, job.task.value)
    cond = conditioner.cond(song, frames, task_context(conditioner, inputs), inputs.timbre)
    if job.task is MusicTask.COVER and job.cover_strength < 1.0:
        # the text-to-music condition CoverBlend blends in, with the same timbre
        cond[PLAIN_TEXT] = conditioner.encode(replace(song, task=MusicTask.TEXT2MUSIC.value), inputs.timbre)
        cond[COVER_STRENGTH] = torch.tensor([job.cover_strength])
    null = conditioner.null(cond)
    return ({**cond, **null} if job.prompt is None else cond), null


def job_params(models: MusicModels, job: MusicJob) -> dict:
    """The job's registry values over the folder's defaults."""
    return folder_params(models, job.params)


def folder_params(models: MusicModels, given: dict) -> dict:
    """Registry values `given` over the folder's defaults; live starts from these too."""
    defaults = models.defaults
    params = {**defaults.params(), **given}
    if defaults.distilled and params["guidance"] != 1.0:
        raise InputError("guidance", f"{models.card.get('folder', 'this folder')} is a turbo checkpoint: guidance "
                                     "is distilled into its weights; leave guidance at 1")
    return params


def source_latents(models: MusicModels, path: Path, frames: int) -> torch.Tensor:
    """An audio-to-audio source file as normalised (T, C) latents, cut or looped to
    `frames`; read at the VAE's rate and in its channels."""
    codec = models.codec
    audio = read_model_audio(codec, path)
    need = frames * codec.geometry.hop
    if audio.shape[-1] < need:
        audio = np.tile(audio, (1, -(-need // audio.shape[-1])))
    x = torch.from_numpy(audio[:, :need].copy())[None]
    return codec.normalize(encode_mean(codec.vae, x)[0].T)


def job_frames(models: MusicModels, seconds: float) -> int:
    """Latent frames of `seconds`, as AceStepPipeline counts them: ceil(seconds * frame rate)."""
    return frames_of(models.codec, seconds)


def generate_latents(models: MusicModels, job: MusicJob, progress: Progress | None = None,
                     inputs: TaskInputs | None = None) -> torch.Tensor:
    """The ring's latents of the job: the model's own draw of the whole clip (a repaint
    keeps the source outside its window only in `render_latents`)."""
    inputs = inputs if inputs is not None else prepare(models, job)
    return generate_together(models, [_Prepared.of(models, job, inputs)], progress)[0]


@dataclass(frozen=True)
class _Prepared:
    """A job ready to submit: its registry values, conditions and start."""

    job: MusicJob
    inputs: TaskInputs
    params: dict
    cond: dict
    null: dict
    source: torch.Tensor | None
    blend: bool  # a cover blended with text to music (its own denoiser wrapper)

    @classmethod
    def of(cls, models: MusicModels, job: MusicJob, inputs: TaskInputs) -> "_Prepared":
        params = job_params(models, job)
        cond, null = conditions(models, job, inputs.frames, inputs)
        audio_to_audio = job.source is not None and not job.task.needs_source
        source = source_latents(models, job.source, inputs.frames) if audio_to_audio else None
        if source is None and params.get("strength", 1.0) < 1.0:
            raise InputError("strength", "below 1 needs a source to start from (--source FILE)")
        blend = job.task is MusicTask.COVER and job.cover_strength < 1.0
        return cls(job, inputs, params, cond, null, source, blend)

    def shares_ring_with(self, other: "_Prepared") -> bool:
        """Jobs one ring can run together: one latent shape, one denoiser, one null
        condition, and the same values of every parameter a tick reads for all slots."""
        shared = [p.name for p in CORE_PARAMS if p.propagation is not Propagation.REQUEST]
        return (self.inputs.frames == other.inputs.frames and not self.blend and not other.blend
                and all(self.params.get(n) == other.params.get(n) for n in shared)
                and self.null.keys() == other.null.keys()
                and all(torch.equal(self.null[k], other.null[k]) for k in self.null))


def generate_together(models: MusicModels, jobs: list[_Prepared], progress: Progress | None = None) -> list[torch.Tensor]:
    """The latents of jobs that share a ring (`_Prepared.shares_ring_with`), run as one
    ring of their number: each slot keeps its own seed, steps, shift, strength and
    solver. A ring of one is `demon render`'s; a deeper one batches the denoiser's rows,
    which on a CPU sums in another order (equal within float rounding, not bit for bit)."""
    first = jobs[0]
    store = StateStore(initial={**first.params, "depth": len(jobs)})
    denoiser = CoverBlend(models.denoiser) if first.blend else models.denoiser
    # every job is here at once: seat them all on the first tick, so the rows step in lockstep
    # (admitting one a tick, as a live ring does, would run empty rows while the others wait)
    ring = Ring(denoiser, (first.inputs.frames, models.codec.channels), store=store, null_cond=first.null,
                admit_per_tick=None)
    requests = []
    for job in jobs:
        store.update({p.name: job.params[p.name] for p in CORE_PARAMS
                      if p.propagation is Propagation.REQUEST and p.name in job.params and p.name != "depth"})
        requests.append(request_from_state(store.snapshot, cond=job.cond, source=job.source))
        ring.submit(requests[-1])
    steps = max(r.schedule.steps for r in requests)
    done: dict[int, torch.Tensor] = {}
    while len(done) < len(jobs):
        for completion in ring.tick():
            done[completion.request.id] = completion.latent
        if progress is not None:
            progress("denoise", ring.counters.ticks, steps)
    return [done[r.id] for r in requests]


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


def render_latents(models: MusicModels, job: MusicJob,
                   progress: Progress | None = None) -> tuple[torch.Tensor, TaskInputs]:
    """The job's finished latents (a repaint's keep the source outside the window) and its inputs."""
    inputs = prepare(models, job)
    return _finished(models, inputs, generate_latents(models, job, progress, inputs)), inputs


def _finished(models: MusicModels, inputs: TaskInputs, latents: torch.Tensor) -> torch.Tensor:
    if inputs.task is MusicTask.REPAINT:
        return keep_source(latents, models.codec.normalize(inputs.source.latents), inputs.window)
    return latents


def _audio(models: MusicModels, inputs: TaskInputs, latents: torch.Tensor, progress: Progress | None) -> np.ndarray:
    audio = decode_audio(models, latents, progress)
    return audio[..., : round(inputs.seconds * models.codec.sample_rate)]


def render_music(models: MusicModels, job: MusicJob, progress: Progress | None = None) -> np.ndarray:
    """Exactly the job's seconds of audio, or its source's (latents cover whole frames;
    the tail is cut)."""
    latents, inputs = render_latents(models, job, progress)
    return _audio(models, inputs, latents, progress)


def render_music_together(models: MusicModels, jobs: list[MusicJob], depth: int) -> list[np.ndarray | InputError]:
    """Many jobs' audio, those that can share a ring run in rings of up to `depth` (a
    batch's throughput; depth 1 is `render_music` job by job, bit for bit). A job whose
    inputs are refused gets its InputError in its place; the others go on."""
    from ..errors import PipelineError

    ready: list[_Prepared | InputError | PipelineError] = []
    for job in jobs:
        try:
            ready.append(_Prepared.of(models, job, prepare(models, job)))
        except (InputError, PipelineError) as err:
            ready.append(err)
    rings: list[list[int]] = []
    for i, job in enumerate(ready):
        if isinstance(job, Exception):
            continue
        home = next((r for r in rings if len(r) < depth and ready[r[0]].shares_ring_with(job)), None)
        if home is None:
            rings.append([i])
        else:
            home.append(i)
    out: list = list(ready)
    for ring in rings:
        for i, latents in zip(ring, generate_together(models, [ready[i] for i in ring])):
            inputs = ready[i].inputs
            out[i] = _audio(models, inputs, _finished(models, inputs, latents), None)
    return out
