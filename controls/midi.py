"""MIDI control: CC (7-bit and 14-bit pairs), NRPN, note triggers, MIDI learn, and
per-device mappings saved as TOML.

A controller's value 0..1 maps onto the parameter's registry range (integers round,
choices pick by position). The rtmidi callback thread only calls `MidiControl.feed`,
which never raises: bad or unmapped messages are counted.
"""

from __future__ import annotations

import re
import sys
import threading
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import tomli_w

from engine import InputError, ParamType
from engine.files import write_atomic

from .session import ControlSession
from .targets import trigger_name

NRPN_MSB, NRPN_LSB, DATA_MSB, DATA_LSB = 99, 98, 6, 38


@dataclass(frozen=True)
class Binding:
    kind: str  # "cc" | "cc14" | "nrpn" | "note"
    channel: int  # 0..15
    number: int  # CC number (MSB for cc14), NRPN number (0..16383), or note
    target: str  # a parameter name, or "trigger/<name>"


@dataclass
class MidiCounters:
    messages: int = 0
    applied: int = 0
    unmapped: int = 0
    rejected: int = 0  # mapped, but the session refused the value
    learned: int = 0
    disconnects: int = 0
    reconnects: int = 0
    reconnect_failures: int = 0  # the device was listed again but would not open (retried each poll)


class MidiControl:
    def __init__(self, session: ControlSession, bindings: list[Binding] | None = None):
        self.session = session
        self.counters = MidiCounters()
        self._lock = threading.Lock()
        self._bindings: dict[tuple[str, int, int], Binding] = {}
        self._learning: str | None = None
        self._cc: dict[tuple[int, int], int] = {}  # last 7-bit value per (channel, cc)
        self._nrpn: dict[int, int] = {}  # selected NRPN number per channel
        for b in bindings or []:
            self.bind(b)

    # ---- mapping -----------------------------------------------------------------------

    def bind(self, binding: Binding) -> None:
        self._check_target(binding.target)
        with self._lock:
            for key, old in list(self._bindings.items()):
                if old.target == binding.target:
                    del self._bindings[key]
            self._bindings[(binding.kind, binding.channel, binding.number)] = binding

    def learn(self, target: str) -> None:
        """The next CC, NRPN or note that arrives is bound to `target`."""
        self._check_target(target)
        self._learning = target

    @property
    def bindings(self) -> list[Binding]:
        with self._lock:
            return list(self._bindings.values())

    def _check_target(self, target: str) -> None:
        trigger = trigger_name(target)
        if trigger is not None:
            if trigger not in self.session.triggers:
                raise InputError(target, "unknown trigger")
            return
        if self.session.registry[target].type is ParamType.TEXT:
            raise InputError(target, "text parameters cannot follow a controller")

    # ---- input -------------------------------------------------------------------------

    def feed(self, msg) -> None:
        """Handle one mido message (the rtmidi thread calls this)."""
        self.counters.messages += 1
        try:
            if msg.type == "control_change":
                self._control_change(msg.channel, msg.control, msg.value)
            elif msg.type == "note_on" and msg.velocity > 0:
                self._note(msg.channel, msg.note, msg.velocity)
            else:
                self.counters.unmapped += 1
        except InputError:
            self.counters.rejected += 1

    def _control_change(self, ch: int, cc: int, value: int) -> None:
        self._cc[(ch, cc)] = value
        if cc in (NRPN_MSB, NRPN_LSB):
            self._nrpn[ch] = (self._cc.get((ch, NRPN_MSB), 0) << 7) | self._cc.get((ch, NRPN_LSB), 0)
            return
        if cc in (DATA_MSB, DATA_LSB) and ch in self._nrpn:
            number = self._nrpn[ch]
            data = (self._cc.get((ch, DATA_MSB), 0) << 7) | (self._cc.get((ch, DATA_LSB), 0) if cc == DATA_LSB else 0)
            if self._take_learn("nrpn", ch, number):
                return
            self._apply(self._bindings.get(("nrpn", ch, number)), data / 16383.0)
            return
        if 32 <= cc < 64 and ("cc14", ch, cc - 32) in self._bindings:
            msb = self._cc.get((ch, cc - 32), 0)
            self._apply(self._bindings[("cc14", ch, cc - 32)], ((msb << 7) | value) / 16383.0)
            return
        if 32 <= cc < 64 and ("cc", ch, cc - 32) in self._bindings:
            # an LSB after a learned MSB: the controller sends 14-bit pairs, so upgrade the binding
            with self._lock:
                old = self._bindings.pop(("cc", ch, cc - 32))
                self._bindings[("cc14", ch, cc - 32)] = Binding("cc14", ch, cc - 32, old.target)
            self._control_change(ch, cc, value)
            return
        if self._take_learn("cc", ch, cc):
            return
        if ("cc14", ch, cc) in self._bindings:  # the MSB of a pair: apply now, the LSB refines it
            self._apply(self._bindings[("cc14", ch, cc)], (value << 7) / 16383.0)
            return
        self._apply(self._bindings.get(("cc", ch, cc)), value / 127.0)

    def _note(self, ch: int, note: int, velocity: int) -> None:
        if self._take_learn("note", ch, note):
            return
        self._apply(self._bindings.get(("note", ch, note)), velocity / 127.0)

    def _take_learn(self, kind: str, ch: int, number: int) -> bool:
        target, self._learning = self._learning, None
        if target is None:
            return False
        self.bind(Binding(kind, ch, number, target))
        self.counters.learned += 1
        return True

    def _apply(self, binding: Binding | None, x: float) -> None:
        if binding is None:
            self.counters.unmapped += 1
            return
        trigger = trigger_name(binding.target)
        if trigger is not None:
            self.session.trigger(trigger)
        else:
            self.session.set(binding.target, scale(self.session.registry[binding.target], x), clamp=True)
        self.counters.applied += 1


def scale(param, x: float) -> Any:
    """A controller position 0..1 as a value of `param`."""
    x = min(1.0, max(0.0, x))
    if param.type is ParamType.CHOICE:
        return param.choices[min(len(param.choices) - 1, int(x * len(param.choices)))]
    if param.type is ParamType.BOOL:
        return x >= 0.5
    value = param.minimum + x * (param.maximum - param.minimum)
    if param.type is ParamType.INT:
        return int(round(value))
    if param.type is ParamType.CURVE:
        return [value]
    return value


# ---- mappings on disk ---------------------------------------------------------------------


def mapping_path(folder: Path, device: str) -> Path:
    """One file per device: its name made safe for a file name."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", device).strip("._") or "device"
    return Path(folder) / f"{safe}.toml"


def save_mapping(path: Path, device: str, bindings: list[Binding]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, tomli_w.dumps({"device": device, "bindings": [asdict(b) for b in bindings]}))


def load_mapping(path: Path) -> list[Binding]:
    try:
        doc = tomllib.loads(Path(path).read_text())
        return [Binding(str(b["kind"]), int(b["channel"]), int(b["number"]), str(b["target"]))
                for b in doc.get("bindings", [])]
    except OSError as err:
        raise InputError("midi-map", f"cannot read {path}: {err.strerror or err}") from None
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as err:
        raise InputError("midi-map", f"{path} is not a mapping file: {err}") from None


# ---- the port ---------------------------------------------------------------------------


class MidiInput:
    """Keeps one named input port open: a vanished device is counted, closed, and
    reopened when it comes back. `opener` and `names` default to mido's (rtmidi)."""

    def __init__(self, control: MidiControl, name: str, *, opener: Callable | None = None,
                 names: Callable[[], list[str]] | None = None, poll_s: float = 0.5):
        import mido

        self.control = control
        self.name = name
        self._open = opener or (lambda n, callback: mido.open_input(n, callback=callback))
        self._names = names or mido.get_input_names
        self.poll_s = poll_s
        self.port = None
        self._reopen_error: str | None = None  # why the last reopen failed; said once per outage
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="midi-watch", daemon=True)

    def start(self) -> "MidiInput":
        if self.name not in self._names():
            raise InputError("midi-in", f"no MIDI input named {self.name!r}; have: {', '.join(self._names()) or 'none'}")
        self.port = self._open(self.name, self.control.feed)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                present = self.name in self._names()
            except Exception:  # noqa: BLE001 - a backend hiccup reads as "absent" this round
                present = False
            if self.port is not None and not present:
                self.control.counters.disconnects += 1
                self._close()
            elif self.port is None and present:
                self._reopen()

    def _reopen(self) -> None:
        try:
            self.port = self._open(self.name, self.control.feed)
        except Exception as err:  # noqa: BLE001 - rtmidi raises several types; try again next poll
            self.port = None
            self.control.counters.reconnect_failures += 1
            if self._reopen_error is None:
                print(f"MIDI input {self.name!r} is back but does not open ({err}); retrying every "
                      f"{self.poll_s:g} s", file=sys.stderr, flush=True)
            self._reopen_error = str(err)
            return
        self.control.counters.reconnects += 1
        if self._reopen_error is not None:
            print(f"MIDI input {self.name!r} reopened", file=sys.stderr, flush=True)
        self._reopen_error = None

    def _close(self) -> None:
        port, self.port = self.port, None
        try:
            port.close()
        except Exception:  # noqa: BLE001 - the device is already gone
            pass

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        if self.port is not None:
            self._close()
