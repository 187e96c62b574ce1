"""The one error a backend raises: it cannot load or run, and the message says why.

Light on purpose (no torch): the CLI imports it to print one line and exit 2.
There is no silent fallback to another backend anywhere.
"""


class BackendError(RuntimeError):
    """A backend that cannot be built, loaded or run here, with the reason."""
