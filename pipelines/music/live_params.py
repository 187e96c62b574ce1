"""The live music parameters: the core registry plus what only a playing loop has."""

from __future__ import annotations

from engine import CORE_PARAMS, Param, ParamType as T, Propagation as P

from .prompt import DEFAULT_LANGUAGE

DEFAULT_PROMPT = "lofi piano and drums, 90 bpm, A minor"

# Live on a CPU starts at depth 1: on 60 s latents batching gains little here (README,
# Benchmarks), and one slot keeps a tick near 150 ms and onsets shortest. Raise it live.
LIVE_MUSIC_PARAMS = CORE_PARAMS.with_defaults(depth=1).extend(
    Param("prompt_a", T.TEXT, DEFAULT_PROMPT, P.REQUEST, doc="caption of prompt A"),
    Param("prompt_b", T.TEXT, "", P.REQUEST, doc="caption of prompt B (empty: no B); blended by prompt_blend"),
    # the song a complete ACE-Step folder reads beside the caption (the house models take none)
    Param("lyrics", T.TEXT, "", P.REQUEST, doc="lyrics, e.g. [verse] lines (empty: instrumental)"),
    Param("language", T.TEXT, DEFAULT_LANGUAGE, P.REQUEST, doc="vocal language code of the lyrics"),
    Param("key", T.TEXT, "", P.REQUEST, doc='key and scale in the prompt\'s metadata, e.g. "A minor" (empty: N/A)'),
    Param("time_signature", T.TEXT, "", P.REQUEST, doc='beats per bar in the metadata, e.g. "4" (empty: N/A)'),
    Param("loop_seconds", T.FLOAT, 60.0, P.REQUEST, 2.0, 120.0, "s",
          doc="loop length of new requests when loop_bars is 0; in-flight loops keep theirs"),
    Param("loop_bars", T.INT, 0, P.REQUEST, 0, 64, "bars",
          doc="bar-aligned loop length (4/4 at bpm, at most 120 s); 0 uses loop_seconds"),
    Param("bpm", T.FLOAT, 120.0, P.REQUEST, 40.0, 240.0, "bpm",
          doc="tempo for bar-aligned loop lengths, and a complete folder's metadata bpm (rounded)"),
    Param("gain", T.FLOAT, 1.0, P.OUTPUT, 0.0, 2.0, "x", doc="output gain"),
    Param("crossfade_ms", T.FLOAT, 50.0, P.OUTPUT, 5.0, 2000.0, "ms",
          doc="equal-power crossfade when a new loop is swapped in at the playhead"),
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
