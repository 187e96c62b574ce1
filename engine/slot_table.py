"""SlotTable: per-row tensors preallocated for the ring's capacity, declared once.

Every per-slot tensor is a column of one table and says, where it is declared, what
happens to it when its row moves (compaction on a depth change) or is freed. Moving
and clearing iterate over the columns, so a new column can never be left out. State
kept beside the ring's rows (guidance) follows them through the SlotHooks.
"""

from __future__ import annotations

import enum
from typing import Protocol

import torch

from .request import Request


class RowLife(enum.Enum):
    PAYLOAD = "payload"  # moves with its row; rewritten whole when a request is placed there
    BOOKKEEPING = "bookkeeping"  # moves with its row; zeroed when the row is freed
    SCRATCH = "scratch"  # written before every read within a tick; never moved


class SlotTable:
    def __init__(self, capacity: int):
        self.capacity = capacity
        self._columns: list[tuple[torch.Tensor, RowLife]] = []

    def column(self, row_shape: tuple[int, ...], dtype: torch.dtype, life: RowLife) -> torch.Tensor:
        """A zeroed (capacity, *row_shape) tensor that moves and clears with its rows."""
        tensor = torch.zeros((self.capacity, *row_shape), dtype=dtype)
        self._columns.append((tensor, life))
        return tensor

    def move(self, src: int, dst: int) -> None:
        """Row `src` to row `dst`; `src` is freed."""
        for tensor, life in self._columns:
            if life is not RowLife.SCRATCH:
                tensor[dst] = tensor[src]
        self.clear(src)

    def clear(self, row: int) -> None:
        for tensor, life in self._columns:
            if life is RowLife.BOOKKEEPING:
                tensor[row].zero_()


class SlotHooks(Protocol):
    """Whatever keeps per-slot state outside the ring's rows (guidance) hears of every row change."""

    def place(self, row: int, request: Request) -> None: ...

    def move(self, src: int, dst: int) -> None: ...

    def clear(self, row: int) -> None: ...
