"""The live music parameters: the core registry plus what only a playing loop has."""

from __future__ import annotations

from engine import CORE_PARAMS, Group as G, InputError, Param, ParamType as T, Propagation as P

from .prompt import DEFAULT_LANGUAGE
from .tasks import MusicTask

DEFAULT_PROMPT = "lofi piano and drums, 90 bpm, A minor"

# Live on a CPU starts at depth 1 and a 20 s loop: with the house turbo folder's 2 steps
# that keeps a tick near 50 ms and a change heard within a few hundred ms (README,
# Benchmarks). Both are live: a GPU raises depth and loop length.
LIVE_MUSIC_PARAMS = CORE_PARAMS.with_defaults(depth=1).extend(
    Param("prompt_a", T.TEXT, DEFAULT_PROMPT, P.REQUEST, doc="caption of prompt A", group=G.PLAY),
    Param("prompt_b", T.TEXT, "", P.REQUEST, doc="caption of prompt B (empty: no B); blended by prompt_blend",
          group=G.PLAY),
    # the song a complete ACE-Step folder reads beside the caption (the house models take none)
    Param("lyrics", T.TEXT, "", P.REQUEST, doc="lyrics, e.g. [verse] lines (empty: instrumental)", group=G.PLAY),
    Param("language", T.TEXT, DEFAULT_LANGUAGE, P.REQUEST, doc="vocal language code of the lyrics", group=G.PLAY),
    Param("key", T.TEXT, "", P.REQUEST, doc='key and scale in the prompt\'s metadata, e.g. "A minor" (empty: N/A)',
          group=G.PLAY),
    Param("time_signature", T.TEXT, "", P.REQUEST, doc='beats per bar in the metadata, e.g. "4" (empty: N/A)',
          group=G.PLAY),
    Param("loop_seconds", T.FLOAT, 20.0, P.REQUEST, 2.0, 120.0, "s",
          doc="loop length of new requests when loop_bars is 0; in-flight loops keep theirs", group=G.LOOP),
    Param("loop_bars", T.INT, 0, P.REQUEST, 0, 64, "bars",
          doc="bar-aligned loop length (4/4 at bpm, at most 120 s); 0 uses loop_seconds", group=G.LOOP),
    Param("bpm", T.FLOAT, 120.0, P.REQUEST, 40.0, 240.0, "bpm",
          doc="tempo for bar-aligned loop lengths, and a complete folder's metadata bpm (rounded)", group=G.LOOP),
    # a complete folder's tasks live: each new loop redraws bars of the loop playing (or of
    # the --source file) and keeps the rest, or covers it from its audio tokens
    Param("task", T.CHOICE, MusicTask.TEXT2MUSIC.value, P.REQUEST, choices=tuple(t.value for t in MusicTask),
          doc="text2music draws whole loops; repaint redraws bars repaint_from..repaint_to of the loop playing; "
              "cover redraws it from its audio tokens (a folder with audio_tokenizer)", group=G.PLAY),
    Param("repaint_from", T.FLOAT, 0.0, P.REQUEST, 0.0, 64.0, "bars",
          doc="first bar (from 0, 4/4 at bpm) that repaint redraws", group=G.PLAY),
    Param("repaint_to", T.FLOAT, 0.0, P.REQUEST, 0.0, 64.0, "bars",
          doc="bar where the repaint window ends; 0: the loop's end", group=G.PLAY),
    Param("gain", T.FLOAT, 1.0, P.OUTPUT, 0.0, 2.0, "x", doc="output gain", group=G.OUTPUT),
    Param("crossfade_ms", T.FLOAT, 50.0, P.OUTPUT, 5.0, 2000.0, "ms",
          doc="equal-power crossfade when a new loop is swapped in at the playhead", group=G.OUTPUT),
)


MAX_LOOP_SECONDS = 120.0


def loop_frames(values, frame_rate: int) -> int:
    """Latent frames of a loop under the given parameter values."""
    if values["loop_bars"] > 0:  # whole bars, as many as fit in MAX_LOOP_SECONDS
        bar = 4 * 60.0 / values["bpm"]
        seconds = bar * max(1, min(values["loop_bars"], int(MAX_LOOP_SECONDS // bar)))
    else:
        seconds = values["loop_seconds"]
    return max(1, round(seconds * frame_rate))


def repaint_frames(values, frame_rate: float, frames: int) -> tuple[int, int]:
    """[first, stop) latent frames of a loop of `frames` that a live repaint redraws (bars of
    4 beats at bpm; repaint_to 0: to the loop's end); a window that starts past the loop's
    end or is empty is refused, one that runs past it ends with the loop."""
    bar = 4 * 60.0 / values["bpm"] * frame_rate
    start, end = values["repaint_from"], values["repaint_to"]
    if 0 < end <= start:
        raise InputError("repaint_to", f"the window [{start:g}, {end:g}) bars is empty")
    first = round(start * bar)
    if first >= frames:
        raise InputError("repaint_from", f"bar {start:g} lies past the loop's end ({frames / bar:.2f} bars at "
                                         f"{values['bpm']:g} bpm)")
    stop = frames if end <= 0 else min(frames, round(end * bar))
    return first, max(first + 1, stop)
