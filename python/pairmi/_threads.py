"""Threads: how many a call may use, resolved once for everyone (the argument, OMP_NUM_THREADS, the
usable cores), and the fork policy that keeps a forked child off OpenMP's pool."""

from __future__ import annotations

import os
import warnings

import numpy as np

from . import _core


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def max_threads() -> int:
    """Most threads a call may ask for: 4 per usable core, at least 64. Beyond the cores threads only
    wait for each other, and OpenMP aborts the process (no Python error) when it cannot create them."""
    return max(64, 4 * usable_cores())


# OpenMP's thread pool does not survive fork(): a forked child that starts a parallel region after
# the parent ran one (pairmi or torch, which share the runtime) waits forever for the parent's
# threads. Such a child runs pairmi on one thread, which needs no pool.
_forked = False
_fork_warned = False


def _after_fork_in_child() -> None:
    global _forked
    _forked = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def resolve_threads(threads: int | None) -> int:
    """Thread count for the core: `threads`, else OMP_NUM_THREADS, else the usable cores.

    At most :func:`max_threads` (an explicit larger count is a ValueError; a larger OMP_NUM_THREADS
    is capped with a warning). In a process forked from one that had imported pairmi, always 1
    (with a one-time warning when more were asked for): see :data:`_forked`.
    """
    limit = max_threads()
    if threads is None:
        env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
        if env.isdigit() and int(env) > 0:
            resolved = int(env)
            if resolved > limit:
                warnings.warn(
                    f"OMP_NUM_THREADS={resolved} exceeds pairmi's limit of {limit} threads "
                    f"(4 per usable core, at least 64): using {limit}",
                    stacklevel=3,
                )
                resolved = limit
        else:
            resolved = usable_cores()
    else:
        if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
            raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
        if threads > limit:
            raise ValueError(
                f"threads={threads} exceeds the limit of {limit} (4 per usable core, at least 64; "
                f"this process may use {usable_cores()} cores)"
            )
        resolved = int(threads)
        if resolved > 1 and not _core.has_openmp:
            warnings.warn("pairmi was built without OpenMP: threads is ignored and runs use one thread", stacklevel=3)
    return _single_thread_if_forked(resolved)


def _single_thread_if_forked(threads: int) -> int:
    global _fork_warned
    if not _forked or threads == 1:
        return threads
    if not _fork_warned:
        _fork_warned = True
        warnings.warn(
            "pairmi runs on one thread in this forked process (OpenMP's threads do not survive "
            "fork); start worker processes with the 'spawn' or 'forkserver' method to use more",
            RuntimeWarning,
            stacklevel=4,
        )
    return 1
