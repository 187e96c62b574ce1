"""Many websocket clients on loopback for a fixed time, then exit (used by test_web).

    python tests/ws_load.py URL CLIENTS SECONDS
Each client reads every frame and sends one control message a second. Prints JSON.
"""

import asyncio
import json
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


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))))
