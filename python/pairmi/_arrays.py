"""Input conversion and validation shared by every estimator: numpy or torch in, checked numpy out."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

UNIT_SCALES = {"bits": 1.0 / np.log(2.0), "nats": 1.0}


def to_numpy(data: Any, name: str) -> np.ndarray:
    """Return `data` (numpy array, torch tensor or nested sequence) as a real-valued numpy array.

    float32 and float64 are kept; float16, bfloat16, integers and booleans become float32 or float64
    exactly. Complex and non-numeric data raise TypeError.
    """
    if hasattr(data, "detach") and hasattr(data, "cpu"):  # a torch tensor, without importing torch
        tensor = data.detach().cpu()
        if tensor.is_complex():
            raise TypeError(f"{name} is complex ({tensor.dtype}); pairmi needs real numbers")
        if tensor.dtype.is_floating_point and tensor.element_size() < 4:
            tensor = tensor.float()  # float16/bfloat16 -> float32 is exact; numpy has no bfloat16
        data = tensor.numpy()
    arr = np.asarray(data)
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} is complex ({arr.dtype}); pairmi needs real numbers")
    if arr.dtype == np.float32 or arr.dtype == np.float64:
        return arr
    if arr.dtype == np.float16:
        return arr.astype(np.float32)
    if arr.dtype.kind in "biuf":
        return arr.astype(np.float64)
    raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype}")


def samples(data: Any, name: str, ndim: int) -> np.ndarray:
    """`data` as a C-contiguous float32/float64 array of `ndim` dimensions, samples on axis -2.

    Raises ValueError for a wrong number of dimensions, fewer than 2 samples, no variables, or
    non-finite values (naming the first offending variables).
    """
    arr = to_numpy(data, name)
    if arr.ndim != ndim:
        shape = "(samples, variables)" if ndim == 2 else "(layers, samples, variables)"
        raise ValueError(f"{name} must be {ndim}-d {shape}, got shape {arr.shape}")
    n, d = arr.shape[-2], arr.shape[-1]
    if n < 2:
        raise ValueError(f"{name} needs at least 2 samples (rows), got {n}")
    if d < 1:
        raise ValueError(f"{name} needs at least 1 variable (column), got {d}")
    arr = np.ascontiguousarray(arr)
    finite = np.isfinite(arr)
    if not finite.all():
        bad = np.flatnonzero(~finite.reshape(-1, n, d).all(axis=(0, 1)))
        shown = ", ".join(map(str, bad[:10])) + (", ..." if bad.size > 10 else "")
        raise ValueError(f"{name} has NaN or Inf values in {bad.size} variable(s) (columns {shown})")
    return arr


def check_bins(bins: Any, n: int) -> int:
    """`bins` as an int in [2, min(255, n)], else ValueError/TypeError."""
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)):
        raise TypeError(f"bins must be an integer, got {bins!r}")
    bins = int(bins)
    if not 2 <= bins <= 255:
        raise ValueError(f"bins must be in [2, 255], got {bins}")
    if bins > n:
        raise ValueError(f"bins ({bins}) must not exceed the number of samples ({n})")
    return bins


def unit_scale(units: str) -> float:
    """Factor from nats to `units` ('bits' or 'nats')."""
    try:
        return UNIT_SCALES[units]
    except (KeyError, TypeError):
        raise ValueError(f"units must be 'bits' or 'nats', got {units!r}") from None


def resolve_threads(threads: int | None) -> int:
    """Thread count for the core: `threads`, else OMP_NUM_THREADS, else the usable cores."""
    if threads is None:
        env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
        if env.isdigit() and int(env) > 0:
            return int(env)
        try:
            return len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            return os.cpu_count() or 1
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    return int(threads)
