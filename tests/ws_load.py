"""Many websocket clients on loopback, then exit (used by test_web and test_faults).

    python tests/ws_load.py URL CLIENTS SECONDS
Each client reads every frame and sends one control message a second. Prints JSON.

    python tests/ws_load.py churn URL CLIENTS
Clients connect in waves, read the hello, and drop: a third close cleanly, a third
vanish (the socket aborted, no close frame), and a third vanish mid-frame (a frame
header and part of its payload, then the socket aborted). Prints JSON.
"""

import asyncio
import json
import os
import struct
import sys
import time

from websockets.asyncio.client import connect


async def client(url: str, seconds: float, stats: dict, i: int) -> None:
    end = time.monotonic() + seconds
    try:
        async with connect(url, open_timeout=20, close_timeout=2) as ws:
            stats["connected"] += 1
            next_send = time.monotonic() + (i % 10) / 10
            while time.monotonic() < end:
                try:
                    frame = await asyncio.wait_for(ws.recv(), timeout=0.2)
                    stats["frames"] += 1
                    stats["bytes"] += len(frame)
                except asyncio.TimeoutError:
                    pass
                if time.monotonic() >= next_send:
                    await ws.send(json.dumps({"type": "set", "name": "prompt_blend", "value": (i % 100) / 100}))
                    next_send += 1.0
    except Exception as err:  # noqa: BLE001 - counted and reported
        stats["errors"].append(repr(err)[:120])


async def main(url: str, clients: int, seconds: float) -> dict:
    stats = {"connected": 0, "frames": 0, "bytes": 0, "errors": []}
    await asyncio.wait_for(asyncio.gather(*(client(url, seconds, stats, i) for i in range(clients))),
                           timeout=seconds + 60)
    stats["errors"] = stats["errors"][:5] + ([f"... {len(stats['errors'])} in all"] if len(stats["errors"]) > 5 else [])
    return stats


def partial_frame() -> bytes:
    """A masked text frame's header announcing 200 bytes, and 20 of them."""
    return bytes([0x81, 0x80 | 126]) + struct.pack("!H", 200) + os.urandom(4) + b"x" * 20


async def drop_one(url: str, how: int, stats: dict) -> None:
    vanished = False
    try:
        async with connect(url, open_timeout=20, close_timeout=2) as ws:
            json.loads(await asyncio.wait_for(ws.recv(), 10))  # the hello
            stats["connected"] += 1
            if how == 0:
                return  # a clean close
            if how == 2:
                ws.transport.write(partial_frame())
            ws.transport.abort()
            vanished = True
            stats["vanished"] += 1
    except Exception as err:  # noqa: BLE001 - counted and reported; a vanished client's own close may fail
        if not vanished:
            stats["errors"].append(repr(err)[:120])


async def churn(url: str, clients: int, wave: int = 100) -> dict:
    stats = {"connected": 0, "vanished": 0, "errors": []}
    for first in range(0, clients, wave):
        await asyncio.wait_for(asyncio.gather(*(drop_one(url, i % 3, stats) for i in range(first, min(clients, first + wave)))),
                               timeout=60)
    return stats


if __name__ == "__main__":
    if sys.argv[1] == "churn":
        print(json.dumps(asyncio.run(churn(sys.argv[2], int(sys.argv[3])))))
    else:
        print(json.dumps(asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))))
