"""Memory: what a computation allocates beside its inputs, and the guard that refuses one that does
not fit (the memory available now, or max_bytes) before it starts."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _core
from .copula import copula_working_bytes
from .settings import Settings
from .stats import POOLED_DRAWS


def bytes_needed(x: np.ndarray, y: np.ndarray | None, s: Settings, shape: tuple[int, int, int]) -> int:
    """Peak of what one call allocates beside its inputs, from what each path allocates."""
    pairs = int(np.prod(shape))
    values = x.size + (0 if y is None else y.size)
    result = pairs * s.dtype.itemsize
    if s.name == "gaussian_copula":
        return result + copula_working_bytes(x.shape[1], x.shape[2], None if y is None else y.shape[2])
    layers, n, dx = x.shape
    dy = 0 if y is None else y.shape[2]
    if s.name == "ksg":
        # The core's sorted copies and each thread's scratch (the tie check afterwards sorts a copy
        # of the values: at most as much); tie-breaking noise makes a float64 copy of the values first.
        jitter = 8 * values if s.noise else 0
        sorted_copies = _core.ksg_sorted_bytes(layers * (dx + dy), n)
        return result + sorted_copies + jitter + s.threads * _core.ksg_worker_bytes(n, s.k)
    # Binned: the codes (a byte a value) and the core's plans; the shuffle correction adds its
    # float64 running mean, one float64 pass's buffer and the shuffled codes.
    binned = result + values + _core.binned_plan_bytes(layers, n, dx, dy, s.bins)
    if s.correction == "shuffle":
        binned += 16 * pairs + 2 * (x.size if y is None else y.size)
    return binned


def test_bytes(
    shape: tuple[int, int, int],
    values: int,
    copula: bool = False,
    rotation: bool = False,
    n_permutations: int = 0,
    square: bool = True,
) -> int:
    """Peak of mi_test: observed, threshold, total and a pass's buffer (float64), the exceedance counts
    (int32) and one pass's comparison (bool); then the binned codes with a pass's reordered codes
    (2 bytes a value), or the copula's scores and a pass's reordered scores, correlations and MI;
    rotations add their (variables, samples) int64 index arithmetic. The tail p-values add the
    sums of squares and their standardizing (about 22 bytes a pair, measured) and the pooled draws
    (about 40 bytes a value, up to stats.POOLED_DRAWS of them)."""
    pairs = int(np.prod(shape))
    tested = shape[1] * (shape[1] - 1) // 2 if square else pairs
    per_pass = 16 * pairs + 16 * values if copula else 2 * values
    tail = 22 * pairs + 40 * min(POOLED_DRAWS, n_permutations * tested)
    return 37 * pairs + per_pass + (32 * values if rotation else 0) + tail


def available_memory() -> int | None:
    """Bytes of memory available to allocate now (Linux MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


# What a too-large mi_matrix / mi_layers can do instead (the default advice of check_memory).
MATRIX_ADVICE = (
    "select fewer variables with dims=, use dtype=float32, or pass out= (a preallocated or "
    "np.memmap array that pairmi fills in blocks of rows)"
)


def check_max_bytes(max_bytes: Any) -> None:
    """max_bytes: None (the memory available now) or a positive whole number of bytes."""
    if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)) or max_bytes < 1):
        raise ValueError(f"max_bytes must be a positive integer number of bytes or None, got {max_bytes!r}")


def check_memory(nbytes: int, what: str, max_bytes: int | None, advice: str = MATRIX_ADVICE) -> None:
    """MemoryError naming the size if an allocation of nbytes exceeds max_bytes or available memory,
    with `advice`: what the caller's function offers instead."""
    check_max_bytes(max_bytes)
    limit = max_bytes if max_bytes is not None else available_memory()
    if limit is not None and nbytes > limit:
        source = f"max_bytes={max_bytes:,}" if max_bytes is not None else "the memory available now"
        raise MemoryError(f"{what} needs {nbytes / 2**30:.2f} GiB, more than {source} ({limit / 2**30:.2f} GiB): {advice}")
