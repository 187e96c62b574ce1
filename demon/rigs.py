"""Each live engine wired to the ControlSession its front-ends talk to.

A pipeline reads its StateStore and reports to an OnsetTracker when output carrying a
version is heard; it never sees a front-end. Here, at the composition root, the store,
the tracker and the session are built, and the engine's triggers handed to the session.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

from controls.session import ControlSession
from engine import StateStore
from engine.onsets import OnsetTracker


class LiveEngine(Protocol):
    store: StateStore
    triggers: Mapping[str, Callable]

    def live_counters(self) -> dict[str, Any]: ...

    def view(self) -> dict[str, Any]: ...

    def status_line(self) -> str: ...


@dataclass(frozen=True)
class Rig:
    """What `demon live` front-ends steer and read: an engine and its session."""

    engine: LiveEngine
    session: ControlSession

    def live_counters(self) -> dict[str, Any]:
        return {**self.engine.live_counters(), "controls": asdict(self.session.counters)}

    def view(self) -> dict[str, Any]:
        return self.engine.view()

    def status_line(self) -> str:
        return self.engine.status_line()


def music_rig(models, sink, *, initial: Mapping[str, Any] | None = None, source: Path | None = None,
              max_batch: int | None = None) -> Rig:
    from pipelines.memory import freeze_loaded
    from pipelines.music.live import LiveMusic
    from pipelines.music.live_params import LIVE_MUSIC_PARAMS
    from pipelines.music.render import folder_params

    freeze_loaded()  # the loaded models live as long as the engine: the cyclic collector need not scan them

    # a complete folder's own defaults (steps, shift, guidance and its rule) under the preset and flags
    store, onsets = StateStore(LIVE_MUSIC_PARAMS, folder_params(models, dict(initial or {}))), OnsetTracker()
    engine = LiveMusic(models, sink, store, onsets, source=source, max_batch=max_batch)
    return Rig(engine, ControlSession(store, engine.triggers, onsets))


def video_sr_rig(models, source: str, *, initial: Mapping[str, Any] | None = None, source_format: str | None = None,
                 loop: bool = True, preview_hz: float = 10.0, preview_width: int = 960) -> Rig:
    from pipelines.video_sr.live import LiveVideoSR
    from pipelines.video_sr.stream import default_state

    store, onsets = default_state(models), OnsetTracker()  # the model card's best start values...
    if initial:
        store.update(initial)  # ...under the preset and the flags
    engine = LiveVideoSR(models, source, store, onsets, source_format=source_format, loop=loop,
                         preview_hz=preview_hz, preview_width=preview_width)
    return Rig(engine, ControlSession(store, engine.triggers, onsets))


def voice_rig(models, speaker, duplex, *, initial: Mapping[str, Any] | None = None, target: str = "") -> Rig:
    from pipelines.voice.live import LiveVoice
    from pipelines.voice.params import VOICE_PARAMS

    store = StateStore(VOICE_PARAMS, initial)
    engine = LiveVoice(models, speaker, duplex, store, target=target)
    return Rig(engine, ControlSession(store, engine.triggers))
