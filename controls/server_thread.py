"""An asyncio server on its own daemon thread, shared by the OSC and web front-ends."""

from __future__ import annotations

import asyncio
import threading
from typing import Awaitable, Callable

from engine import InputError


class ServerThread:
    """Subclasses implement `bind()`: open the sockets, set `self.port`, return a closer."""

    start_timeout_s = 10.0  # bind() not done by then: start() gives up and says so

    def __init__(self, name: str, flag: str, host: str, port: int):
        self.host, self.port = host, port
        self._flag = flag
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._binding: asyncio.Task | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    async def bind(self) -> Callable[[], Awaitable[None]]:
        raise NotImplementedError

    def start(self):
        self._thread.start()
        if not self._ready.wait(self.start_timeout_s):
            self.call_soon(self._abandon)
            raise InputError(self._flag, f"cannot listen on {self.host}:{self.port}: "
                                         f"not listening after {self.start_timeout_s:g} s")
        if self._error is not None:
            err = self._error
            reason = str(err) if isinstance(err, OSError) else f"{type(err).__name__}: {err}"
            raise InputError(self._flag, f"cannot listen on {self.host}:{self.port}: {reason}")
        return self

    def stop(self) -> None:
        if self._thread.is_alive() and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=10.0)

    def call_soon(self, fn, *args) -> None:
        """Run fn(*args) on the server's loop, from any thread; a no-op once it has stopped."""
        if not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(fn, *args)
            except RuntimeError:  # closed meanwhile
                pass

    def _abandon(self) -> None:
        """After start() gave up: stop binding, or stop serving if the bind finished meanwhile."""
        self._binding.cancel()
        self._stop.set()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._stop = asyncio.Event()
        self._binding = self._loop.create_task(self.bind())
        try:
            close = self._loop.run_until_complete(self._binding)
        except (Exception, asyncio.CancelledError) as err:  # any failure to bind: start() reports it
            self._error = err
            self._ready.set()
            self._loop.close()
            return
        self._ready.set()
        try:
            self._loop.run_until_complete(self._stop.wait())
        finally:
            self._loop.run_until_complete(close())
            self._loop.close()
