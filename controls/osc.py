"""OSC over UDP (asyncio): flat `/demon/<param>` addresses onto the control session.

    /demon/<param> value...        set a parameter (a curve takes one value per point)
    /demon/trigger/<name>          run a trigger (retake, reset_counters, ...)
    /demon/state                   reply /demon/state <json of every value>
    /demon/counters                reply /demon/counters <json of the live counters>
    /demon/preset/save <name>      save a preset into the presets folder
    /demon/preset/load <name>      recall one
    /demon/learn <target>          MIDI learn: the next control moved binds to <target>
                                   (a parameter or trigger/<name>), when MIDI input is on

Replies go to the sender's address. Packets are parsed here, not by python-osc's
dispatcher, because that one sleeps inside the event loop until a bundle's timetag:
a far-future timetag would stall the server. Bundles due within MAX_AHEAD_S are
scheduled on the loop; later ones are dropped and counted. Every bad packet is
counted and dropped; none reaches the engine or stops the server. Each sender is held
to RATE packets per second (bursts of BURST), and all together to TOTAL_RATE; a flood
beyond either is dropped unread and counted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from engine import InputError, ParamType

from .presets import PresetFolder
from .rate_limit import RateLimits
from .server_thread import ServerThread
from .session import ControlSession
from .targets import trigger_name

PREFIX = "/demon/"
MAX_AHEAD_S = 2.0
RATE, BURST = 300.0, 300  # packets per second per sender: a fader sends under 100, a busy touch surface a few hundred
TOTAL_RATE, TOTAL_BURST = 1200.0, 1200  # from all senders together: new source ports get no fresh allowance


@dataclass
class OscCounters:
    packets: int = 0
    applied: int = 0
    replies: int = 0
    malformed: int = 0  # not an OSC packet
    unknown_address: int = 0
    bad_args: int = 0  # wrong count or type of arguments, NaN, unknown trigger...
    future_dropped: int = 0  # bundles timed more than MAX_AHEAD_S ahead
    scheduled: int = 0  # bundles timed a little ahead, applied on time
    rate_limited: int = 0  # packets over their sender's rate limit, dropped unread


class _QuietPythonOsc(logging.Filter):
    """python-osc logs a warning on the root logger for each bundle element it cannot
    read, which a flood of garbage would turn into a flood on stderr. Such an element is
    skipped and the rest of its bundle applies; the packet is counted like any other.
    Installed on the root logger once per process (python-osc logs nowhere else)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pythonosc" not in record.pathname


_QUIET = _QuietPythonOsc()


class OscControl(asyncio.DatagramProtocol):
    def __init__(self, session: ControlSession, counters: Callable[[], dict] | None = None,
                 presets: Path | None = None, learn: Callable[[str], None] | None = None,
                 limits: RateLimits | None = None, total: RateLimits | None = None,
                 schedule: Callable[..., Any] | None = None):
        self.session = session
        self.limits = limits or RateLimits(RATE, BURST)  # per sender (address, port)
        self.total = total or RateLimits(TOTAL_RATE, TOTAL_BURST)  # all senders: one bucket
        # how a bundle timed a little ahead is applied later: the running loop's call_later
        # (a fuzzer applies it at once, to see what it does)
        self._schedule = schedule
        self.learn = learn
        self.live_counters = counters or (lambda: {})
        self.presets = PresetFolder(presets) if presets is not None else None
        self.counters = OscCounters()
        self.last_error = ""
        self.transport: asyncio.DatagramTransport | None = None
        if _QUIET not in logging.getLogger().filters:
            logging.getLogger().addFilter(_QUIET)

    # ---- asyncio ---------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.counters.packets += 1
        if not (self.limits.allow(addr) and self.total.allow(None)):
            self._bad("rate_limited", f"{addr[0]}:{addr[1]}: over {self.limits.rate:g} packets/s from it, "
                                      f"or {self.total.rate:g} from all")
            return
        try:
            messages = OscPacket(data).messages
        except Exception as err:  # noqa: BLE001 - python-osc raises several types for garbage
            self._bad("malformed", f"malformed packet: {err}")
            return
        now = time.time()
        schedule = self._schedule or asyncio.get_running_loop().call_later
        for timed in messages:
            ahead = timed.time - now
            if ahead > MAX_AHEAD_S:
                self._bad("future_dropped", f"timetag {ahead:.1f} s ahead (limit {MAX_AHEAD_S:g} s)")
            elif ahead > 0.001:
                self.counters.scheduled += 1
                schedule(ahead, self.handle, timed.message.address, list(timed.message.params), addr)
            else:
                self.handle(timed.message.address, list(timed.message.params), addr)

    # ---- messages --------------------------------------------------------------------

    def handle(self, address: str, args: list[Any], addr=None) -> None:
        if not address.startswith(PREFIX):
            self._bad("unknown_address", f"unknown address {address}")
            return
        path = address[len(PREFIX):]
        trigger = trigger_name(path)
        try:
            if trigger is not None:
                self._no_args(address, args)
                self.session.trigger(trigger)
            elif path == "state":
                self._reply(addr, "/demon/state", json.dumps(self.session.values()))
            elif path == "counters":
                self._reply(addr, "/demon/counters", json.dumps(self.live_counters(), default=str))
            elif path == "learn":
                if self.learn is None:
                    raise InputError(address, "no MIDI input is open")
                if len(args) != 1 or not isinstance(args[0], str):
                    raise InputError(address, "expects one target name")
                self.learn(args[0])
            elif path in ("preset/save", "preset/load"):
                self._preset(path, args)
            elif path in self.session.registry:
                self.session.set(path, self._value(path, args), clamp=True)
            else:
                self._bad("unknown_address", f"unknown address {address}")
                return
        except InputError as err:
            self._bad("bad_args", str(err))
            return
        self.counters.applied += 1

    def _value(self, name: str, args: list[Any]) -> Any:
        param = self.session.registry[name]
        if param.type is ParamType.CURVE:
            if not args:
                raise InputError(name, "a curve needs at least one value")
            return list(args)
        if len(args) != 1:
            raise InputError(name, f"expected one argument, got {len(args)}")
        value = args[0]
        if param.type is ParamType.BOOL and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = value != 0
        return value

    def _no_args(self, address: str, args: list[Any]) -> None:
        if args and not (len(args) == 1 and args[0] in (1, 1.0, True)):  # buttons often send 1
            raise InputError(address, f"takes no arguments, got {args!r:.60}")

    def _preset(self, path: str, args: list[Any]) -> None:
        if self.presets is None:
            raise InputError(path, "no presets folder was given (--presets DIR)")
        if len(args) != 1:
            raise InputError(path, f"expects one preset name, got {len(args)} arguments")
        if path == "preset/save":
            self.presets.save(args[0], self.session.store.snapshot, path)
        else:
            self.session.update(self.presets.load(args[0], self.session.registry, path), clamp=False)

    def _reply(self, addr, address: str, payload: str) -> None:
        if addr is None or self.transport is None:
            return
        builder = OscMessageBuilder(address)
        builder.add_arg(payload)
        self.transport.sendto(builder.build().dgram, addr)
        self.counters.replies += 1

    def _bad(self, counter: str, message: str) -> None:
        setattr(self.counters, counter, getattr(self.counters, counter) + 1)
        self.last_error = message

    def snapshot(self) -> dict[str, int]:
        return asdict(self.counters)


class OscServer(ServerThread):
    """Runs an OscControl on its own event-loop thread; `port=0` picks a free port."""

    def __init__(self, control: OscControl, host: str = "127.0.0.1", port: int = 9000):
        super().__init__("osc", "osc-port", host, port)
        self.control = control

    async def bind(self):
        transport, _ = await self._loop.create_datagram_endpoint(lambda: self.control,
                                                                 local_addr=(self.host, self.port))
        self.port = transport.get_extra_info("sockname")[1]

        async def close() -> None:
            transport.close()
            await asyncio.sleep(0)

        return close
