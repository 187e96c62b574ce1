"""The browser control surface: one port serves the static page and the websocket.

Text frames carry JSON control messages, validated by the parameter registry through
the control session; every bad message gets an error frame back and changes nothing.
Binary frames carry media to the page: b"A" + uint32 rate + uint16 channels + int16
PCM, frames interleaved (audio, in the model's own format: 48 kHz stereo for ACE-Step
1.5), b"V" + JPEG (video previews). State goes to every client at a bounded rate. Each client has
a bounded outgoing queue: a slow client loses frames (counted), it never grows a queue.

Safety: binds 127.0.0.1 unless told otherwise, and then a token is required (one is
generated and printed if none is given); an Origin allowlist; an explicit max_size; a
per-client message rate limit, counted; static files only from an allowlist made at
start (no `..`, no symlinks).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import mimetypes
import os
import re
import secrets
import struct
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

import numpy as np
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from controls.presets import PresetFolder
from controls.rate_limit import RateLimits
from controls.server_thread import ServerThread
from controls.session import ControlSession
from engine import Group, InputError

STATIC = Path(__file__).resolve().parent / "static"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
TOKEN_COOKIE = "demon_token"


@dataclass(frozen=True)
class WebConfig:
    host: str = "127.0.0.1"
    port: int = 8765  # 0: any free port
    token: str | None = None  # required when host is not loopback; generated if None there
    origins: tuple[str, ...] = ()  # allowed beyond the server's own http://host:port
    max_size: int = 64 * 1024  # largest accepted message, bytes
    state_hz: float = 10.0
    client_queue: int = 32  # frames waiting per client before new ones are dropped
    rate: float = 200.0  # control messages per second a client may send, sustained
    burst: int = 200  # ... and at once (a fader swept end to end)
    presets: Path | None = None


@dataclass
class WebCounters:
    connections: int = 0
    clients: int = 0
    refused: int = 0  # bad token, bad path, foreign origin (the last counted by websockets' log)
    messages: int = 0
    errors: int = 0  # error frames sent back
    sent_frames: int = 0
    dropped_frames: int = 0  # frames a slow client did not take
    rate_limited: int = 0  # messages dropped over a client's rate limit (an error frame at most once a second)
    state_errors: int = 0  # state frames skipped because reading the engine raised (logged)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


@dataclass(eq=False)  # hashed by identity: clients live in a set
class _Client:
    ws: ServerConnection
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue())
    told_at: float = -math.inf  # when it was last told it is over its rate limit


class WebServer(ServerThread):
    def __init__(self, session: ControlSession, config: WebConfig = WebConfig(), *,
                 counters: Callable[[], dict] | None = None, view: Callable[[], dict] | None = None,
                 static: Path = STATIC):
        if config.host not in LOOPBACK and not config.token:
            config = WebConfig(**{**asdict(config), "token": secrets.token_urlsafe(18)})
        super().__init__("web", "web-port", config.host, config.port)
        self.session = session
        self.config = config
        self.live_counters = counters or (lambda: {})
        self.view = view or (lambda: {})
        self.counters = WebCounters()
        self.files = _static_allowlist(static)
        self._clients: set[_Client] = set()
        self._limits = RateLimits(config.rate, config.burst)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.config.host in ("0.0.0.0", "::") else self.config.host
        query = f"?token={self.config.token}" if self.config.token else ""
        return f"http://{host}:{self.port}/{query}"

    async def bind(self):
        server = await serve(self._handler, self.config.host, self.config.port, process_request=self._http,
                             origins=None, max_size=self.config.max_size, max_queue=16, compression=None,
                             logger=_Redacting(logging.getLogger("websockets.server")))
        self.port = server.sockets[0].getsockname()[1]
        self._origins = {f"http://{h}:{self.port}" for h in (*LOOPBACK[:2], self.config.host)} | set(self.config.origins)
        broadcaster = asyncio.create_task(self._broadcast_state())

        async def close() -> None:
            broadcaster.cancel()
            server.close()
            await server.wait_closed()

        return close

    # ---- HTTP: static files and the upgrade checks ---------------------------------------

    def _http(self, connection: ServerConnection, request):
        url = urlsplit(request.path)
        if self.config.token is not None:
            # the page's own files (its stylesheet and modules) come without the query: a
            # cookie set with the page, for this origin only, carries the token to them
            given = parse_qs(url.query).get("token", [_cookie(request.headers.get("Cookie", ""), TOKEN_COOKIE)])[0]
            if not hmac.compare_digest(given.encode(), self.config.token.encode()):
                self.counters.refused += 1
                return connection.respond(401, "a valid token is required (?token=...)\n")
        if request.headers.get("Upgrade", "").lower() == "websocket":
            origin = request.headers.get("Origin")
            if origin is not None and origin not in self._origins:
                self.counters.refused += 1
                return connection.respond(403, f"origin {origin} is not allowed\n")
            return None  # go on with the websocket handshake
        path = "/index.html" if url.path == "/" else url.path
        body = self.files.get(path)
        if body is None:
            self.counters.refused += 1
            return connection.respond(404, "not found\n")
        response = connection.respond(200, "")
        response.body = body
        headers = response.headers  # a multi-dict: replace, do not append
        for name, value in (("Content-Length", str(len(body))),
                            ("Content-Type", mimetypes.guess_type(path)[0] or "application/octet-stream"),
                            ("Cache-Control", "no-store")):
            if name in headers:
                del headers[name]
            headers[name] = value
        if self.config.token is not None:
            headers["Set-Cookie"] = f"{TOKEN_COOKIE}={self.config.token}; HttpOnly; SameSite=Strict; Path=/"
        return response

    # ---- websocket clients -------------------------------------------------------------

    async def _handler(self, ws: ServerConnection) -> None:
        client = _Client(ws)
        self._clients.add(client)
        self.counters.connections += 1
        self.counters.clients = len(self._clients)
        sender = asyncio.create_task(self._sender(client))
        self._enqueue(client, json.dumps(self._hello()))
        try:
            async for message in ws:
                if not self._limits.allow(client):
                    self._over_limit(client)
                    continue
                reply = self.handle(message)
                if reply is not None:
                    self._enqueue(client, json.dumps(reply))
        except ConnectionClosed:
            pass
        finally:
            sender.cancel()
            self._clients.discard(client)
            self._limits.forget(client)
            self.counters.clients = len(self._clients)

    async def _sender(self, client: _Client) -> None:
        try:
            while True:
                frame = await client.queue.get()
                await client.ws.send(frame)
                self.counters.sent_frames += 1
        except (ConnectionClosed, asyncio.CancelledError):
            pass

    def _over_limit(self, client: _Client) -> None:
        self.counters.rate_limited += 1
        now = time.monotonic()
        if now - client.told_at >= 1.0:  # said at most once a second: a frame per drop would flood back
            client.told_at = now
            self._enqueue(client, json.dumps({"type": "error", "message": (
                f"rate limit: at most {self.config.rate:g} messages/s (bursts of {self.config.burst}); "
                "messages over it are dropped")}))

    def _enqueue(self, client: _Client, frame) -> None:
        if client.queue.qsize() >= self.config.client_queue:
            self.counters.dropped_frames += 1  # a slow client: drop, never grow
            return
        client.queue.put_nowait(frame)

    def _broadcast(self, frame) -> None:
        for client in list(self._clients):
            self._enqueue(client, frame)

    async def _broadcast_state(self) -> None:
        period = 1.0 / self.config.state_hz
        while True:
            await asyncio.sleep(period)
            if self._clients:
                try:  # the engine's counters and view are read from this thread while it runs
                    state = {"type": "state", "version": self.session.store.snapshot.version,
                             "values": self.session.values(), "counters": self.live_counters(),
                             "web": asdict(self.counters), **self.view()}
                except Exception:  # one bad read skips one frame; the page must not go dark
                    self.counters.state_errors += 1
                    logging.getLogger(__name__).exception("reading the engine's state for the page failed")
                    continue
                self._broadcast(json.dumps(state, default=str))

    # ---- media from the engine (any thread) --------------------------------------------------

    def audio(self, samples: np.ndarray, sample_rate: int) -> None:
        """(n,) mono samples or (n, channels) frames, sent as they are."""
        channels = 1 if samples.ndim == 1 else samples.shape[1]
        pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()  # row-major: interleaved
        self._from_thread(audio_header(sample_rate, channels) + pcm)

    def video(self, jpeg: bytes) -> None:
        self._from_thread(b"V" + jpeg)

    def _from_thread(self, frame: bytes) -> None:
        if self._clients:
            self.call_soon(self._broadcast, frame)

    # ---- control messages ----------------------------------------------------------------

    def _hello(self) -> dict:
        return {"type": "hello", "params": [p.describe() for p in self.session.registry],
                "groups": [{"key": g.key, "title": g.value} for g in Group],
                "pipeline": self._pipeline(),  # which stage the page shows
                "triggers": sorted(self.session.triggers), "values": self.session.values(),
                "presets": self._preset_names()}

    def _pipeline(self) -> str | None:
        try:
            return self.view().get("pipeline")
        except Exception:  # the state broadcast logs it; the page then shows music's stage
            return None

    def handle(self, message) -> dict | None:
        """One client message -> the reply (an error frame for anything bad), or None."""
        self.counters.messages += 1
        try:
            if not isinstance(message, str):
                raise InputError("message", "binary frames are not accepted; send JSON text")
            try:
                msg = json.loads(message, parse_constant=_reject_constant)
            except ValueError as err:
                raise InputError("message", f"invalid JSON: {err}") from None
            except RecursionError:  # "[[[[..." within max_size: Python's parser gives up, not the server
                raise InputError("message", "invalid JSON: nested too deeply") from None
            if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
                raise InputError("message", 'expected an object with a "type"')
            return self._dispatch(msg)
        except InputError as err:
            self.counters.errors += 1
            return {"type": "error", "message": str(err)}

    def _dispatch(self, msg: dict) -> dict | None:
        kind = msg["type"]
        if kind == "set":
            name, value = msg.get("name"), msg.get("value")
            if not isinstance(name, str):
                raise InputError("set", 'needs a "name"')
            if isinstance(value, float) and not math.isfinite(value):
                raise InputError(name, "expected a finite number")
            state = self.session.set(name, value, clamp=False)
            return {"type": "ack", "name": name, "version": state.version}
        if kind == "trigger":
            self.session.trigger(str(msg.get("name")))
            return None
        if kind == "hello":
            return self._hello()
        if kind in ("preset_save", "preset_load"):
            return self._preset(kind, msg.get("name"))
        raise InputError("type", f"unknown message type {kind!r}")

    def _preset(self, kind: str, name: Any) -> dict:
        if self.config.presets is None:
            raise InputError(kind, "no presets folder")
        folder = PresetFolder(self.config.presets)
        if kind == "preset_save":
            folder.save(name, self.session.store.snapshot, kind)
        else:
            self.session.update(folder.load(name, self.session.registry, kind), clamp=False)
        return {"type": "presets", "names": folder.names(), "values": self.session.values()}

    def _preset_names(self) -> list[str]:
        return PresetFolder(self.config.presets).names() if self.config.presets is not None else []


class _Redacting(logging.LoggerAdapter):
    """websockets logs each request line at debug level: the token in its query is
    written as `token=...`, so a debug log never holds it."""

    TOKEN = re.compile(r"token=[^&\s]*")

    def log(self, level, msg, *args, **kwargs):
        if self.isEnabledFor(level):
            text = str(msg) % args if args else str(msg)
            self.logger.log(level, self.TOKEN.sub("token=...", text), **kwargs)


def _cookie(header: str, name: str) -> str:
    """The value of cookie `name` in a Cookie header, or ""."""
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return ""


def audio_header(sample_rate: int, channels: int) -> bytes:
    """What precedes an audio frame's PCM (app.js reads it)."""
    return b"A" + struct.pack("<IH", sample_rate, channels)


def _static_allowlist(root: Path) -> dict[str, bytes]:
    """URL path -> file bytes for every regular file under `root`; symlinks are skipped."""
    files = {}
    root = root.resolve()
    for folder, dirs, names in os.walk(root, followlinks=False):
        dirs[:] = [d for d in dirs if not (Path(folder) / d).is_symlink()]
        for name in names:
            path = Path(folder) / name
            if path.is_symlink() or not path.is_file():
                continue
            files["/" + path.relative_to(root).as_posix()] = path.read_bytes()
    return files
