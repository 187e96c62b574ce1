"""What a control drives: a parameter by its name, or a trigger as "trigger/<name>".

OSC addresses (/demon/trigger/<name>) and MIDI bindings share this spelling, so both
read it here.
"""

from __future__ import annotations

TRIGGER_PREFIX = "trigger/"


def trigger_name(target: str) -> str | None:
    """The trigger a target names, or None where it names a parameter."""
    return target[len(TRIGGER_PREFIX):] if target.startswith(TRIGGER_PREFIX) else None
