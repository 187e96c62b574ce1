"""What the pipelines that stream items through the ring share (video frames, voice chunks, music loops)."""

from __future__ import annotations

from typing import Any, Iterable

from engine import Ring, StateStore


def depth_follows_steps(store: StateStore) -> None:
    """One item in and one out per tick needs as many slots as steps (up to the ring's
    capacity; beyond it items queue, which is not a live setting)."""
    state = store.snapshot
    depth = min(state["steps"], int(store.registry["depth"].maximum))
    if state["depth"] != depth:
        store.set("depth", depth)


def slot_view(rings: Iterable[Ring]) -> list[dict[str, Any]]:
    """The occupied slots of `rings`, by row, as the page draws them."""
    return [{"row": row, "request": rid, "step": step, "sigma": round(sigma, 4)}
            for ring in rings
            for rid, (row, step, sigma) in sorted(ring.in_flight().items(), key=lambda kv: kv[1][0])]
