"""Headless voice conversion: a file in, a file out, through the same stream as live.

`render_voice` pushes the source through StreamingVC in device-sized blocks (the
watchdog off: offline, falling behind costs nothing) and trims the crossfade delay so
the output lines up with the input. `convert_offline` converts a whole utterance as
one window, the reference for what chunk borders cost (bench/voice.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from engine import StateStore, request_from_state, run_alone

from ..audio_io import read_audio, write_audio
from .checkpoint import VoiceModels
from .codec import HOP, SAMPLE_RATE
from .models import SpeakerEncoder
from .params import VOICE_PARAMS
from .reference import speaker_embedding
from .stream import WARM_FRAMES, StreamingVC

BLOCK = 512  # samples per push, as a sound card would deliver them


def stream_through(vc: StreamingVC, audio: np.ndarray) -> np.ndarray:
    """`audio` pushed through `vc` in device-sized blocks and flushed, aligned with the input."""
    out = np.concatenate([vc.push(audio[i : i + BLOCK]) for i in range(0, audio.size, BLOCK)] + [vc.flush()])
    return out[vc.delay : vc.delay + audio.size]


def convert_stream(models: VoiceModels, speaker: torch.Tensor, audio: np.ndarray,
                   params: Mapping[str, Any] | None = None) -> np.ndarray:
    """The stream's output for `audio`, aligned with it (the crossfade delay removed)."""
    return stream_through(StreamingVC(models, speaker, StateStore(VOICE_PARAMS, params), watchdog=False), audio)


def convert_offline(models: VoiceModels, speaker: torch.Tensor, audio: np.ndarray,
                    params: Mapping[str, Any] | None = None) -> np.ndarray:
    """The whole utterance as one window through the same converter, schedule and solver, after
    the silence the stream starts with (the codec's state is that of silence, as the stream's)."""
    state = StateStore(VOICE_PARAMS, params).snapshot
    n = -(-audio.size // HOP) * HOP
    warm = WARM_FRAMES * HOP
    x = torch.from_numpy(np.pad(audio, (warm, n - audio.size)).astype(np.float32))[None, None]
    with torch.inference_mode():
        z, _ = models.codec.encoder(x)
        silence, z = z[..., :WARM_FRAMES], models.normalize(z[0, :, WARM_FRAMES:])
    request = request_from_state(state, cond={"speaker": speaker}, source=z)
    done = run_alone(models.denoiser, request, tuple(z.shape), depth=1, state=state, frame_dim=1,
                     null_cond={"speaker": torch.zeros_like(speaker)})
    with torch.inference_mode():
        y, _ = models.codec.decoder(torch.cat([silence, models.denormalize(done.latent)[None]], dim=-1))
    return y.reshape(-1).numpy()[warm : warm + audio.size] * state["gain"]


def render_voice(models: VoiceModels, encoder: SpeakerEncoder, source: Path, target: Path, out: Path,
                 params: Mapping[str, Any] | None = None) -> dict:
    """Convert `source` toward the speaker of `target` into `out` (wav or flac, written atomically)."""
    speaker = speaker_embedding(models, encoder, read_audio(target, SAMPLE_RATE), name=str(target))
    audio = read_audio(source, SAMPLE_RATE)
    converted = convert_stream(models, speaker, audio, params)
    write_audio(out, np.clip(converted, -1.0, 1.0), SAMPLE_RATE)
    return {"seconds": audio.size / SAMPLE_RATE}
