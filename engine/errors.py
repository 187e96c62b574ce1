"""Errors the engine raises for bad input. Each names the field at fault."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input to the engine: a request, a schedule, a parameter or a setting.

    `field` names what was wrong so a front-end (CLI, OSC, web) can answer with a
    one-line message; the engine itself keeps running.
    """

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message
