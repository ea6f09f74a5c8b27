"""A caller's ``out=`` array: its checks, and a memmap's file reserved, flushed and released."""

from __future__ import annotations

import errno
import mmap
import os
from typing import Any, cast

import numpy as np

# Bytes of out= that one block of rows fills (the working memory of a memmapped run).
OUT_BLOCK_BYTES = 64 << 20


def check_out(out: np.ndarray, shape: tuple[int, ...]) -> None:
    if out.shape != shape or out.dtype not in (np.float32, np.float64) or not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(
            f"out must be a writeable C-contiguous float32/float64 array of shape {shape}, got {out.dtype} {out.shape}"
        )


def memmap_file(out: np.ndarray) -> tuple[mmap.mmap, str] | None:
    """The mmap under a memmap that writes through to its file (mode r+ or w+), and the file's name."""
    if not isinstance(out, np.memmap) or getattr(out, "mode", None) not in ("r+", "w+"):
        return None  # copy-on-write ('c') pages live only in memory: never drop them
    base: Any = out
    while base is not None and not isinstance(getattr(base, "_mmap", None), mmap.mmap):
        base = getattr(base, "base", None)
    if base is None or getattr(base, "filename", None) is None:
        return None
    return base._mmap, base.filename


def reserve_file(out: np.ndarray) -> None:
    """Allocate a file-backed out's blocks before filling it: writing a page that the full file
    system cannot hold kills the process with SIGBUS, where this raises OSError naming the file."""
    mapped = memmap_file(out)
    if mapped is None or not hasattr(os, "posix_fallocate"):
        return
    _, filename = mapped
    offset = int(getattr(out, "offset", 0))
    try:
        fd = os.open(filename, os.O_RDWR)
    except OSError:
        return
    try:
        os.posix_fallocate(fd, offset, out.nbytes)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OSError(
                exc.errno,
                f"no room for the {out.nbytes / 2**20:,.1f} MiB result in {filename} "
                f"({os.strerror(exc.errno)}): free space or choose another file system",
            ) from None
        # EINVAL/EOPNOTSUPP: a file system without fallocate; fill as before
    finally:
        os.close(fd)


def out_array(out: Any) -> np.ndarray:
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy array (or np.memmap), got {type(out).__name__}")
    return out


def release(out: np.ndarray) -> None:
    """Flush a memmap's written pages to its file and drop them from memory (they are re-read on use).
    Only for memmaps that write through to their file: a copy-on-write map would lose its pages."""
    mapped = memmap_file(out)
    if mapped is None:
        return
    cast(np.memmap, out).flush()
    if hasattr(mmap, "MADV_DONTNEED"):
        mapped[0].madvise(mmap.MADV_DONTNEED)
