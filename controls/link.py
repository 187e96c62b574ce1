"""Ableton Link (aalink): a shared beat timeline that bar-aligned loops lock to.

The Link session's tempo and the parameter the pipeline names for it (music: `bpm`)
follow each other (a peer's change is published to the session, a local change to Link). The player asks `position()`
for the sample a block should start at, so that loop boundaries fall on Link's bars.
Without `network=True` the clock runs alone: no sockets are opened.
"""

from __future__ import annotations

from controls.server_thread import ServerThread
from controls.session import ControlSession
from engine import InputError


class LinkClock(ServerThread):
    def __init__(self, session: ControlSession, tempo: str, *, quantum: float = 4.0, network: bool = True):
        if tempo not in session.registry:
            raise InputError("link", f"tempo sync drives {tempo!r}, which this pipeline has no parameter for")
        try:
            import aalink
        except ImportError:
            raise InputError("link", "Ableton Link needs the optional 'link' extra: pip install 'demon[link]'") from None
        super().__init__("link", "link", "link", 0)
        self._aalink = aalink
        self.session = session
        self.tempo = tempo
        self.quantum = quantum
        self.network = network
        self.link = None
        self._bpm = float(session.store.snapshot[tempo])

    async def bind(self):
        self.link = self._aalink.Link(self._bpm)
        self.link.quantum = self.quantum
        self.link.enabled = self.network

        async def close() -> None:
            self.link.enabled = False

        return close

    def follow_tempo(self) -> None:
        """Two-way tempo: a change on Link (a peer) wins over a stale local value."""
        local = float(self.session.store.snapshot[self.tempo])
        shared = float(self.link.tempo)
        if abs(shared - self._bpm) > 1e-3:  # Link moved
            self._bpm = shared
            if abs(local - shared) > 1e-3:
                self.session.set(self.tempo, shared, clamp=True)
        elif abs(local - self._bpm) > 1e-3:  # the performer moved bpm here
            self._bpm = local
            self.link.tempo = local

    def position(self, seconds_ahead: float, sample_rate: int) -> int:
        """The timeline sample that plays `seconds_ahead` from now: beats x samples per beat."""
        beat = float(self.link.beat) + seconds_ahead * float(self.link.tempo) / 60.0
        return round(beat * sample_rate * 60.0 / float(self.link.tempo))
