"""`demon render music`'s song flags: lyrics from a file, and the metadata ACE-Step's
prompt template carries (language, bpm, key, time signature). Unsaid, each takes
diffusers' AceStepPipeline default."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipelines.music.prompt import DEFAULT_LANGUAGE, SongMeta

from .args import UsageError

MAX_LYRICS_BYTES = 256 * 1024  # far beyond the 2048 lyric tokens the model reads
MAX_TEXT = 100


def add_song_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("song (a complete ACE-Step folder)")
    group.add_argument("--lyrics", type=Path, help="UTF-8 text file of lyrics, e.g. [verse] lines (default none)")
    group.add_argument("--language", help=f"vocal language code (default {DEFAULT_LANGUAGE})")
    group.add_argument("--bpm", type=int, help="tempo in the prompt's metadata (default N/A)")
    group.add_argument("--key", help='key and scale in the metadata, e.g. "A minor" (default N/A)')
    group.add_argument("--time-signature", dest="time_signature", help='beats per bar, e.g. "4" (default N/A)')


def read_lyrics(path: Path | None) -> str:
    """The lyrics file's text less trailing whitespace (a file's last newline is no lyric);
    anything that is not readable UTF-8 text is a UsageError."""
    if path is None:
        return ""
    if not path.is_file():
        raise UsageError(f"--lyrics: {path} is not a readable file")
    data = path.read_bytes()
    if len(data) > MAX_LYRICS_BYTES:
        raise UsageError(f"--lyrics: {path} is larger than {MAX_LYRICS_BYTES // 1024} KB; lyrics are a text file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UsageError(f"--lyrics: {path} is not UTF-8 text (byte {err.start})") from None
    if "\x00" in text:
        raise UsageError(f"--lyrics: {path} is not text (it holds NUL bytes)")
    return text.rstrip()


def song_meta(args: argparse.Namespace) -> SongMeta:
    for flag, value in (("--language", args.language), ("--key", args.key), ("--time-signature", args.time_signature)):
        if value is not None and not (0 < len(value.strip()) <= MAX_TEXT):
            raise UsageError(f"{flag}: expected 1..{MAX_TEXT} characters, got {value!r:.60}")
    if args.bpm is not None and not 1 <= args.bpm <= 999:
        raise UsageError(f"--bpm: must lie in 1..999, got {args.bpm}")
    return SongMeta(language=args.language if args.language is not None else DEFAULT_LANGUAGE, bpm=args.bpm,
                    key=args.key, time_signature=args.time_signature)
