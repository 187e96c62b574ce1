"""Live music's conditioning: built once per request, at admission, and cached by its inputs.

The folder conditions through its own encoders (conditioning.py): the caption, lyrics
and metadata (language, bpm, key, time signature, and the loop's length as the
duration) go into ACE-Step's templates. The null condition is the folder's own null
embedding in place of the text; each row keeps its own context.

Prompt A/B morph blends the two encoded sequences row by row each tick (prompt_blend is
step-class), so A and B must be of one length. ACE-Step's length follows the token
counts, so with a prompt B the pair is encoded as one batch of two, the shorter caption
padded to the longer one's tokens with the tokenizer's pad token, exactly as diffusers'
AceStepPipeline pads a batch of prompts [A, B]. So live morph differs from diffusers'
unpadded single-prompt call (it equals its batched one); a prompt A with no B is unpadded
and equals `demon render music`. The length fixes a ring's buffers: live.py keys its
rings by it, so a prompt of a new length starts a new ring (request-class) while the old
one finishes what it holds.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Callable, Generic, Hashable, TypeVar

import torch

from engine import StepState

from .conditioning import silence_context
from .models import MusicModels
from .prompt import SongMeta, SongText
from .task_inputs import check_cover, cover_context, repaint_context
from .tasks import MusicTask

TEXT_CACHE = 64  # encoded prompts kept, as the caption cache always had
CONTEXT_CACHE = 8  # contexts kept, one per loop length

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Lru(Generic[K, V]):
    """The newest `size` values made by `make`, by key."""

    def __init__(self, size: int):
        self.size = size
        self._items: collections.OrderedDict[K, V] = collections.OrderedDict()

    def get(self, key: K, make: Callable[[], V]) -> V:
        if key not in self._items:
            self._items[key] = make()
            if len(self._items) > self.size:
                self._items.popitem(last=False)
        self._items.move_to_end(key)
        return self._items[key]


@dataclass(frozen=True)
class RowConditions:
    """One request's conditioning: prompt A's, and prompt B's of the same shapes (or None)."""

    cond: dict[str, torch.Tensor]
    cond_b: dict[str, torch.Tensor] | None

    @property
    def length(self) -> int:
        """The text sequence's length, which fixes the ring's buffers."""
        return int(self.cond["text"].shape[0])


def song_text(state: StepState, caption: str, seconds: float,
              task: MusicTask = MusicTask.TEXT2MUSIC) -> SongText:
    """What a complete folder's encoders read of the live parameters, for one caption."""
    meta = SongMeta(language=state["language"], bpm=round(state["bpm"]), key=state["key"] or None,
                    time_signature=state["time_signature"] or None)
    return SongText(caption, state["lyrics"], seconds, meta, task.value)


class LiveConditioning:
    def __init__(self, models: MusicModels):
        self.conditioner = models.conditioner
        self.frame_rate = models.codec.frame_rate
        self._texts: Lru[Hashable, tuple[torch.Tensor, ...]] = Lru(TEXT_CACHE)
        self._contexts: Lru[int, torch.Tensor] = Lru(CONTEXT_CACHE)

    def request(self, state: StepState, frames: int) -> RowConditions:
        """The text-to-music conditioning of a request of `frames` latent frames under
        `state`; the encoders run only for inputs not seen lately."""
        return self._rows(state, frames, MusicTask.TEXT2MUSIC, self._contexts.get(frames, lambda: self._context(frames)))

    def from_source(self, state: StepState, task: MusicTask, source: torch.Tensor,
                    window: tuple[int, int] | None = None) -> RowConditions:
        """A repaint of `window` (frames) of `source`, (T, A) raw latents, or a cover of it:
        ACE-Step's caption for the task and its context (task_inputs.py)."""
        conditioner = self.conditioner
        if task is MusicTask.COVER:
            check_cover(conditioner)
        context = (repaint_context(source, conditioner.silence, window) if task is MusicTask.REPAINT
                   else cover_context(conditioner, source))
        return self._rows(state, source.shape[0], task, context)

    def _rows(self, state: StepState, frames: int, task: MusicTask, context: torch.Tensor) -> RowConditions:
        texts = self._encoded(state, frames, task)
        cond = {"text": texts[0], "context": context}
        # B keeps A's context: the blend of equal halves leaves it as it is
        cond_b = {"text": texts[1], "context": context} if len(texts) > 1 else None
        return RowConditions(cond, cond_b)

    def null(self, length: int) -> dict[str, torch.Tensor]:
        """The ring's null condition for rows of a text of `length` (each keeps its context)."""
        width = self.conditioner.condition_encoder.null_condition_emb.shape[-1]
        return self.conditioner.null({"text": torch.empty(length, width)})

    def _encoded(self, state: StepState, frames: int, task: MusicTask) -> tuple[torch.Tensor, ...]:
        captions = (state["prompt_a"], state["prompt_b"]) if state["prompt_b"] else (state["prompt_a"],)
        songs = tuple(song_text(state, c, frames / self.frame_rate, task) for c in captions)
        # A and B encoded together: one length, padded as diffusers pads a batch
        return self._texts.get(songs, lambda: tuple(self.conditioner.encode_batch(list(songs))))

    def _context(self, frames: int) -> torch.Tensor:
        return silence_context(self.conditioner.silence, frames).float()
