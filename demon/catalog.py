"""What demon knows of all its pipelines at once: their names, the parameter registry
each one's live engine runs on (what the page, OSC and `demon params` show), which of
those parameters its commands take as flags, and every exportable part of the shipped
house models (`demon build-trt`, bench/backends.py).

A pipeline knows only itself; the list of all of them lives here, at the composition root.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from pipelines.music.live_params import LIVE_MUSIC_PARAMS
from pipelines.video_sr.params import VIDEO_SR_PARAMS
from pipelines.voice.params import VOICE_PARAMS

if TYPE_CHECKING:
    from trt_builds.export import ExportSpec

PIPELINES = ("music", "video-sr", "voice")
LIVE_REGISTRIES = {"music": LIVE_MUSIC_PARAMS, "video-sr": VIDEO_SR_PARAMS, "voice": VOICE_PARAMS}
# The registry parameters each pipeline's commands (`demon live <kind>`, and `demon render
# <kind>` where it runs on that registry) take as flags; the page and OSC show them all.
PARAM_FLAGS = {
    "music": ("prompt_a", "prompt_b", "prompt_blend", "guidance", "guidance_rule", "strength", "steps", "shift",
              "seed", "solver", "depth", "loop_seconds", "loop_bars", "bpm", "language", "key", "time_signature",
              "task", "repaint_from", "repaint_to", "gain", "crossfade_ms", "source_blend", "noise_injection"),
    "video-sr": ("steps", "strength", "seed", "velocity_scale", "detail", "steady"),
    "voice": ("strength", "steps", "seed", "solver", "source_blend", "noise_injection", "chunk_ms", "context_ms",
              "overlap_ms", "vad_db", "gain"),
}


def music_specs(folder: Path | None = None) -> Iterator[ExportSpec]:
    """Every exportable part of a music model folder (a complete ACE-Step 1.5 folder or the
    house layout; the shipped house models by default)."""
    from pipelines.music.models import load_music_models

    music = load_music_models(folder)
    yield music.export_spec()
    yield from music.ort_parts().values()


def house_specs(which: tuple[str, ...] = PIPELINES) -> Iterator[ExportSpec]:
    """Every exportable part of the shipped house models (a pipeline without models raises
    ModelFolderError: the caller says so or skips it)."""
    if "music" in which:
        yield from music_specs()
    if "video-sr" in which:
        from pipelines.video_sr.checkpoint import load_video_sr

        for scale in (4, 2):
            video = load_video_sr(None, scale)
            yield from video.ort_parts().values()
            yield video.export_spec()
    if "voice" in which:
        from pipelines.voice.checkpoint import load_voice

        voice, _ = load_voice()
        yield voice.export_spec()
        yield from voice.ort_parts().values()  # the encoder, then the decoder
