"""Training data for the house folder: raw VAE latents and frozen text features, once.

Each clip's caption is written into ACE-Step's prompt template four ways (with its
metadata or N/A, for text-to-music or repaint) and run through the frozen MiniLM
exactly as the pipeline runs it at inference: one caption, no padding, no attention
mask. Captions of equal token length share a bucket, so a batch drawn from one
bucket needs no padding and the condition encoder sees what it will see when it
plays. The lyric strings (no lyrics, or "[inst]") go through the embedding table only.
The latents, the slow part, may be cached to a safetensors file and grown run by run.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .codec import encode_mean
from .corpus import load_split
from .prompt import SongMeta, SongText, format_song

VARIANTS = tuple((meta, task) for meta in (False, True) for task in ("text2music", "repaint"))
LYRICS = ("", "[inst]")
LANGUAGE = "en"
TIME_SIGNATURE = "4"  # every corpus clip is in 4/4


@dataclass(frozen=True)
class Bucket:
    clips: torch.Tensor  # (n,) clip indices
    states: torch.Tensor  # (n, L, text width) float16 caption states


@dataclass(frozen=True)
class FolderData:
    latents: torch.Tensor  # (N, T, A) raw VAE latents (means)
    buckets: dict[tuple[bool, str], list[Bucket]]  # per (metadata?, task)
    lyrics: dict[str, torch.Tensor]  # lyric text -> (1, Ll, text width) embeddings
    rows: list[dict]
    seconds: float


def song_of(row: dict, seconds: float, with_meta: bool, task: str, lyrics: str = "") -> SongText:
    meta = (SongMeta(LANGUAGE, int(row["tempo"]), f"{row['key']} {row['scale']}", TIME_SIGNATURE) if with_meta
            else SongMeta(LANGUAGE))
    return SongText(row["caption"], lyrics, seconds, meta, task)


def encode_latents(vae, audio: np.ndarray, batch: int = 16, minutes: float | None = None) -> torch.Tensor:
    """(N, samples) mono audio -> (n, T, A) raw latents: all N, or the first batches that
    fit in `minutes` (the encoder is the slow part of preparing on a shared CPU)."""
    out = []
    channels = int(vae.config.audio_channels)
    start = time.time()
    for i in range(0, len(audio), batch):
        if minutes is not None and out and time.time() - start > minutes * 60:
            break
        x = torch.from_numpy(audio[i : i + batch])[:, None].expand(-1, channels, -1)
        out.append(encode_mean(vae, x).transpose(1, 2).clone())  # out of inference mode: autograd reads it
        print(f"\rlatents {min(i + batch, len(audio))}/{len(audio)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return torch.cat(out)


def caption_buckets(tokenizer, text_encoder, captions: list[str], batch: int = 64) -> list[Bucket]:
    """Caption strings -> their last hidden states, grouped by token length (each group
    runs unpadded, so every row equals a one-caption run)."""
    ids = [tokenizer([c], return_tensors="pt").input_ids[0] for c in captions]
    by_length: dict[int, list[int]] = {}
    for i, row in enumerate(ids):
        by_length.setdefault(len(row), []).append(i)
    buckets = []
    for length, members in sorted(by_length.items()):
        states = []
        for j in range(0, len(members), batch):
            chunk = torch.stack([ids[k] for k in members[j : j + batch]])
            with torch.no_grad():
                states.append(text_encoder(input_ids=chunk).last_hidden_state.half())
        buckets.append(Bucket(torch.tensor(members), torch.cat(states)))
    return buckets


def lyric_states(tokenizer, text_encoder, lyrics: str) -> torch.Tensor:
    _, text = format_song(SongText("", lyrics, meta=SongMeta(LANGUAGE)))
    ids = tokenizer([text], return_tensors="pt").input_ids
    with torch.no_grad():
        return text_encoder.get_input_embeddings()(ids).float()


def cached_latents(cache: Path | None, data: Path, vae) -> torch.Tensor | None:
    """The latents saved in `cache` for the first clips of `data`'s train split, or None
    when there is no cache or it was made from other data or another VAE."""
    if cache is None or not cache.is_file():
        return None
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(cache), "pt") as f:
        meta = f.metadata() or {}
    if meta.get("data") != str(data) or meta.get("vae") != vae_stamp(vae):
        print(f"{cache} holds latents of other data or another VAE; encoding afresh", file=sys.stderr)
        return None
    return load_file(str(cache))["latents"]


def vae_stamp(vae) -> str:
    """A short fingerprint of the VAE's weights: cached latents belong to one VAE."""
    with torch.no_grad():
        total = sum(float(p.double().sum()) for p in vae.parameters())
    return f"{sum(p.numel() for p in vae.parameters())}:{total:.6e}"


def prepare(data: Path, clips: int | None, vae, tokenizer, text_encoder,
            encode_minutes: float | None = None, cache: Path | None = None) -> FolderData:
    """Latents of the first `clips` train clips (those in `cache` reused, the rest encoded
    for at most `encode_minutes`, the cache then grown: safetensors, so a later run picks
    up where this one stopped) and every caption's text features (cheap: always fresh)."""
    audio, rows = load_split(data, "train", int(vae.config.sampling_rate))
    audio, rows = audio[:clips], rows[:clips]
    seconds = audio.shape[1] / int(vae.config.sampling_rate)
    latents = cached_latents(cache, data, vae)
    if latents is None or len(latents) < len(audio):
        have = 0 if latents is None else len(latents)
        fresh = encode_latents(vae, audio[have:], minutes=encode_minutes)
        latents = fresh if latents is None else torch.cat([latents, fresh])
        if cache is not None:
            from safetensors.torch import save_file

            save_file({"latents": latents.contiguous()}, str(cache), metadata={"data": str(data), "vae": vae_stamp(vae)})
    latents = latents[: len(audio)]
    rows = rows[: len(latents)]
    del audio
    buckets = {}
    for with_meta, task in VARIANTS:
        captions = [format_song(song_of(r, seconds, with_meta, task))[0] for r in rows]
        buckets[(with_meta, task)] = caption_buckets(tokenizer, text_encoder, captions)
    lyrics = {text: lyric_states(tokenizer, text_encoder, text) for text in LYRICS}
    return FolderData(latents, buckets, lyrics, rows, seconds)


def draw(prepared: FolderData, with_meta: bool, task: str, batch: int, gen: torch.Generator):
    """(clip indices (B,), caption states (B, L, W) float32) from one bucket, chosen in
    proportion to its size, rows drawn with replacement."""
    buckets = prepared.buckets[(with_meta, task)]
    sizes = torch.tensor([len(b.clips) for b in buckets], dtype=torch.float)
    bucket = buckets[int(torch.multinomial(sizes, 1, generator=gen))]
    pick = torch.randint(0, len(bucket.clips), (batch,), generator=gen)
    return bucket.clips[pick], bucket.states[pick].float()
