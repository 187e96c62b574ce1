"""What a music request asks of the model: its task, a repaint window, a cover strength.

ACE-Step 1.5 reads its task from two places: the instruction line of the caption
(prompt.py) and the context beside the noisy latent (task_inputs.py builds it). Text
to music fills the whole clip; repaint regenerates a window of a source and keeps the
rest; cover regenerates the whole clip from the source's audio tokens. Pure values
and checks, no torch: the command line imports this to parse its flags.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from engine import InputError

MAX_SECONDS = 600.0  # the longest render, and so the longest source a repaint or cover reads
# A timbre reference is repeated to 30 s (diffusers' handling). Shorter than a second, that
# is a loop of a fragment, a buzz rather than a timbre: refused.
MIN_REFERENCE_SECONDS = 1.0


class MusicTask(enum.Enum):
    """The tasks `demon render music` runs; values are diffusers' task_type names."""

    TEXT2MUSIC = "text2music"
    REPAINT = "repaint"
    COVER = "cover"

    @property
    def needs_source(self) -> bool:
        return self is not MusicTask.TEXT2MUSIC


@dataclass(frozen=True)
class RepaintWindow:
    """[start, end) seconds of the source to regenerate; end None: to the source's end."""

    start: float = 0.0
    end: float | None = None

    def check(self, seconds: float) -> None:
        """Refuse a window that is empty or reaches outside a source of `seconds`."""
        if not 0.0 <= self.start < seconds:
            raise InputError("repaint_start", f"{self.start:g} s lies outside the source (0 to {seconds:g} s)")
        if self.end is None:
            return
        if self.end <= self.start:
            raise InputError("repaint_end", f"the window [{self.start:g}, {self.end:g}) s is empty")
        if self.end > seconds:
            raise InputError("repaint_end", f"{self.end:g} s lies outside the source (0 to {seconds:g} s)")

    def frames(self, frame_rate: float, total: int) -> tuple[int, int]:
        """[first, stop) latent frames of the window, as diffusers' chunk mask counts them:
        truncated to whole frames, and never fewer than one."""
        first = int(self.start * frame_rate)
        stop = int(self.end * frame_rate) if self.end is not None and self.end > 0 else total
        first = max(0, min(first, total - 1))
        return first, max(first + 1, min(stop, total))


def check_task_strength(task: MusicTask, strength: float) -> None:
    """Repaint and cover start from noise, as ACE-Step's do: no audio-to-audio strength."""
    if task.needs_source and strength < 1.0:
        raise InputError("strength", f"{task.value} starts from noise, as ACE-Step's does; leave it at 1")


def check_cover_strength(strength: float) -> None:
    """diffusers' audio_cover_strength: 1 is all cover; below it, text-to-music is blended in."""
    if not 0.0 <= strength <= 1.0:
        raise InputError("cover_strength", f"must lie in [0, 1], got {strength:g}")
