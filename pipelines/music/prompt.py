"""ACE-Step 1.5's text inputs, character for character as diffusers' AceStepPipeline writes them.

The caption goes into the SFT generation template (instruction, caption, metadata);
the lyrics into their own template (language, lyric). The text encoder was trained on
exactly these strings, so every newline matters. Pure functions, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

CAPTION_TEMPLATE = "# Instruction\n{}\n\n# Caption\n{}\n\n# Metas\n{}<|endoftext|>\n"
LYRIC_TEMPLATE = "# Languages\n{}\n\n# Lyric\n{}<|endoftext|>"

TASK_INSTRUCTIONS = {
    "text2music": "Fill the audio semantic mask based on the given conditions:",
    "repaint": "Repaint the mask area based on the given conditions:",
    "cover": "Generate audio semantic tokens based on the given conditions:",
    "extract": "Extract the {TRACK_NAME} track from the audio:",
    "extract_default": "Extract the track from the audio:",
    "lego": "Generate the {TRACK_NAME} track based on the audio context:",
    "lego_default": "Generate the track based on the audio context:",
    "complete": "Complete the input track with {TRACK_CLASSES}:",
    "complete_default": "Complete the input track:",
}
TASKS = ("text2music", "repaint", "cover", "extract", "lego", "complete")

# What AceStepPipeline.__call__ takes when a request leaves these unsaid.
DEFAULT_LANGUAGE = "en"
DEFAULT_SECONDS = 60.0
UNSET_SECONDS_TEXT = "30 seconds"  # what the metadata says for a duration <= 0


@dataclass(frozen=True)
class SongMeta:
    """The metadata a request may state; None (or blank) is written as N/A."""

    language: str = DEFAULT_LANGUAGE
    bpm: int | None = None
    key: str | None = None  # e.g. "C major" (diffusers' keyscale)
    time_signature: str | None = None  # e.g. "4" (diffusers' timesignature)


@dataclass(frozen=True)
class SongText:
    """Everything of a request that reaches the text encoder."""

    caption: str
    lyrics: str = ""
    seconds: float = DEFAULT_SECONDS
    meta: SongMeta = SongMeta()
    task: str = "text2music"


def task_instruction(task: str = "text2music", track: str | None = None,
                     classes: Sequence[str] | None = None) -> str:
    """The instruction line of `task`; an unknown task falls to text2music, as in diffusers."""
    if task in ("extract", "lego"):
        return TASK_INSTRUCTIONS[task].format(TRACK_NAME=track.upper()) if track else TASK_INSTRUCTIONS[f"{task}_default"]
    if task == "complete":
        if classes:
            return TASK_INSTRUCTIONS["complete"].format(TRACK_CLASSES=" | ".join(c.upper() for c in classes))
        return TASK_INSTRUCTIONS["complete_default"]
    return TASK_INSTRUCTIONS.get(task, TASK_INSTRUCTIONS["text2music"])


def metadata_block(meta: SongMeta, seconds: float | None) -> str:
    """The `# Metas` lines: bpm, time signature, key and scale, whole seconds."""
    bpm = str(meta.bpm) if meta.bpm is not None and meta.bpm > 0 else "N/A"
    signature = meta.time_signature if meta.time_signature and meta.time_signature.strip() else "N/A"
    key = meta.key if meta.key and meta.key.strip() else "N/A"
    duration = f"{int(seconds)} seconds" if seconds is not None and seconds > 0 else UNSET_SECONDS_TEXT
    return f"- bpm: {bpm}\n- timesignature: {signature}\n- keyscale: {key}\n- duration: {duration}\n"


def caption_text(caption: str, instruction: str, metadata: str) -> str:
    if not instruction.endswith(":"):
        instruction += ":"
    return CAPTION_TEMPLATE.format(instruction, caption, metadata)


def lyric_text(lyrics: str, language: str) -> str:
    return LYRIC_TEMPLATE.format(language, lyrics)


def format_song(song: SongText) -> tuple[str, str]:
    """(caption string, lyric string) for the tokenizer."""
    metadata = metadata_block(song.meta, song.seconds)
    return caption_text(song.caption, task_instruction(song.task), metadata), lyric_text(song.lyrics, song.meta.language)
