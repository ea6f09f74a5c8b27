"""Files written whole or not at all: a temporary file beside the target, renamed over it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

# The process's umask, read once at import (reading it means setting it): mkstemp creates files
# readable by their owner alone, and a result file gets the permissions open() would give it.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file to write `path` through: a killed run or a full disk leaves the old file (or
    none) and no temporary file behind.

    The temporary file gets an unpredictable name, created exclusively (``tempfile.mkstemp``:
    O_CREAT | O_EXCL), so a symbolic link planted under a guessable name cannot redirect the
    write; the rename then replaces a link at `path` itself, never the file it points to.
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` whole or not at all."""
    with atomic_file(path) as fh:
        fh.write(data)
