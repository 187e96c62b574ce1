"""Files that appear under their name only when complete.

A writer fills a temporary file beside the target (same folder, so the rename stays on
one file system); the file is flushed to disk and renamed over the target only once
whole. A failed or interrupted write removes the temporary file and leaves the target
as it was, so nothing half-written ever carries the target's name.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import InputError


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once at import: setting it to read it is not thread-safe


class StagedFile:
    """A temporary file beside `path`: `commit()` gives it the name, `discard()` drops it.

    The temporary name starts with a dot (hidden from listings and globs such as
    `*.toml`) and ends with `suffix`, for writers that pick a format from the name.
    """

    def __init__(self, path: Path | str, suffix: str = ".part"):
        self.path = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=suffix, dir=self.path.parent)
        os.close(fd)
        self.tmp = Path(tmp)

    def commit(self) -> Path:
        """Flush the temporary file to disk and rename it over the target."""
        try:
            fd = os.open(self.tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.chmod(self.tmp, 0o666 & ~_UMASK)  # mkstemp makes it private; a finished file is not
            os.replace(self.tmp, self.path)
        except BaseException:
            self.discard()
            raise
        return self.path

    def discard(self) -> None:
        self.tmp.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: Path | str, suffix: str = ".part") -> Iterator[Path]:
    """Yield a temporary path to write; on a clean exit it becomes `path`, on an error it goes."""
    staged = StagedFile(path, suffix)
    try:
        yield staged.tmp
        staged.commit()
    except OSError as err:  # a full disk, a file-size limit, a vanished folder: said in one line
        staged.discard()
        raise InputError("output", f"cannot write {path}: {getattr(err, 'strerror', None) or err}") from err
    except BaseException:
        staged.discard()
        raise


def write_atomic(path: Path | str, data: bytes | str) -> Path:
    """Write bytes, or text as UTF-8, to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data if isinstance(data, bytes) else data.encode())
    return Path(path)
