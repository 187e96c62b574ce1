"""A request's conditioning as ACE-Step 1.5 builds it: once, when the request is made.

The caption string runs through the whole text encoder (its last hidden state); the
lyric string only through its embedding table (the condition encoder's lyric encoder
gives it context). The condition encoder then joins lyrics, timbre and caption into
the sequence the DiT cross-attends to. Without reference audio the timbre comes from
the first 30 s of the folder's learned silence latent, and text-to-music's context is
that silence latent beside a chunk mask of ones. The null condition for guidance is
the folder's own `null_condition_emb`, the same vector at every position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .prompt import SongText, format_song

TIMBRE_SECONDS = 30.0  # the silence-latent slice that stands in for reference audio
MAX_TEXT_TOKENS = 256  # AceStepPipeline.__call__'s max_text_length
MAX_LYRIC_TOKENS = 2048  # and max_lyric_length


def tiled(silence: torch.Tensor, frames: int) -> torch.Tensor:
    """(T, A): the first T frames of the silence latent, tiled when it is too short."""
    rows = silence.shape[0]
    return silence[:frames] if rows >= frames else silence.repeat(-(-frames // rows), 1)[:frames]


def silence_context(silence: torch.Tensor, frames: int) -> torch.Tensor:
    """(T, 2A) text-to-music context: the silence latent (tiled when too short) beside ones."""
    src = tiled(silence, frames)
    return torch.cat([src, torch.ones_like(src)], dim=-1)


@dataclass(frozen=True)
class AceStepConditioner:
    """The folder's tokenizer, text encoder and condition encoder, and its latent frame rate."""

    tokenizer: object
    text_encoder: torch.nn.Module
    condition_encoder: torch.nn.Module
    frame_rate: float  # latent frames per second (sample rate / hop)
    audio_tokenizer: torch.nn.Module | None = None  # cover needs both; a folder may lack them
    audio_token_detokenizer: torch.nn.Module | None = None

    @property
    def max_tokens(self) -> int:
        """The longest sequence `encode` gives: lyrics and caption at their caps, one timbre token."""
        return MAX_LYRIC_TOKENS + 1 + MAX_TEXT_TOKENS

    @property
    def silence(self) -> torch.Tensor:
        """(15000, A): the learned silence latent."""
        return self.condition_encoder.silence_latent[0]

    def _tokens(self, texts: list[str], limit: int) -> tuple[torch.Tensor, torch.Tensor]:
        batch = self.tokenizer(texts, padding="longest", truncation=True, max_length=limit, return_tensors="pt")
        return batch.input_ids, batch.attention_mask.bool()

    def encode(self, song: SongText, timbre: torch.Tensor | None = None) -> torch.Tensor:
        """(L, H) the sequence the DiT cross-attends to: lyrics, timbre, caption. `timbre`:
        a reference's (30 s of frames, A) latents; None: the silence latent's first 30 s."""
        return self.encode_batch([song], timbre)[0]

    def encode_batch(self, songs: list[SongText], timbre: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L, H) for several songs at once, as diffusers encodes a batch of prompts: each
        text padded with the tokenizer's pad token to the batch's longest, so every row has
        one length (a batch of one is unpadded)."""
        texts = [format_song(song) for song in songs]
        caption_ids, caption_mask = self._tokens([caption for caption, _ in texts], MAX_TEXT_TOKENS)
        lyric_ids, lyric_mask = self._tokens([lyrics for _, lyrics in texts], MAX_LYRIC_TOKENS)
        if timbre is None:
            timbre = self.silence[: math.ceil(TIMBRE_SECONDS * self.frame_rate)]
        n = len(songs)
        with torch.inference_mode():
            # no attention mask to the text encoder: diffusers passes none
            caption_states = self.text_encoder(input_ids=caption_ids).last_hidden_state
            lyric_states = self.text_encoder.get_input_embeddings()(lyric_ids)
            states, _ = self.condition_encoder(
                text_hidden_states=caption_states, text_attention_mask=caption_mask,
                lyric_hidden_states=lyric_states, lyric_attention_mask=lyric_mask,
                refer_audio_acoustic_hidden_states_packed=timbre[None].expand(n, -1, -1),
                refer_audio_order_mask=torch.arange(n),
            )
        return states.float()

    def cond(self, song: SongText, frames: int, context: torch.Tensor | None = None,
             timbre: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The ring's per-row conditioning of one request of `frames` latent frames: a task's
        `context` (task_inputs.py), or text to music's; a reference's `timbre`, or none."""
        if context is None:
            with torch.inference_mode():
                context = silence_context(self.silence, frames).float()
        return {"text": self.encode(song, timbre), "context": context}

    def null(self, cond: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The guidance's null half for `cond`: the folder's null embedding at every
        position of the text. It names the text alone: the null half keeps each row's
        own context, as diffusers duplicates it."""
        with torch.inference_mode():
            text = self.condition_encoder.null_condition_emb[0, 0].float().expand_as(cond["text"]).clone()
        return {"text": text}
