"""Input conversion and validation shared by every estimator: numpy or torch in, checked numpy out."""

from __future__ import annotations

from typing import Any

import numpy as np

UNIT_SCALES = {"bits": 1.0 / np.log(2.0), "nats": 1.0}


def host(a: Any) -> np.ndarray:
    """a as a numpy array: a tensor copied from its device, anything else as np.asarray."""
    return a.detach().cpu().numpy() if hasattr(a, "detach") and hasattr(a, "cpu") else np.asarray(a)


def to_numpy(data: Any, name: str) -> np.ndarray:
    """Return `data` (numpy array, torch tensor or nested sequence) as a real-valued numpy array.

    float32 and float64 are kept; float16, bfloat16, integers and booleans become float32 or float64
    exactly. Complex and non-numeric data raise TypeError.
    """
    if hasattr(data, "detach") and hasattr(data, "cpu"):  # a torch tensor, without importing torch
        refuse_meta(data, name)
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


def refuse_meta(data: Any, name: str) -> None:
    """TypeError for a torch tensor on the 'meta' device: a shape without values."""
    if getattr(data, "is_meta", False):
        raise TypeError(
            f"{name} is a 'meta' tensor, a shape with no values (e.g. a model built under "
            "init_empty_weights or device_map='meta'): load real weights and pass real activations"
        )


NAN_POLICIES = ("raise", "omit")


def samples(data: Any, name: str, ndim: int) -> np.ndarray:
    """`data` as a C-contiguous float32/float64 array of `ndim` dimensions, samples on axis -2."""
    arr = to_numpy(data, name)
    if arr.ndim != ndim:
        shape = "(samples, variables)" if ndim == 2 else "(layers, samples, variables)"
        raise ValueError(f"{name} must be {ndim}-d {shape}, got shape {arr.shape}")
    return np.ascontiguousarray(arr)


def apply_nan_policy(arrays: list[np.ndarray], names: list[str], nan_policy: str, min_samples: int = 2) -> list[np.ndarray]:
    """Check arrays sharing their samples (axis -2) for NaN/Inf, then for enough samples.

    ``nan_policy='raise'``: ValueError naming the first offending variables. ``'omit'``: drop every
    sample (row; in every layer and every array) that has a NaN or Inf anywhere.
    """
    if nan_policy not in NAN_POLICIES:
        raise ValueError(f"nan_policy must be one of {NAN_POLICIES}, got {nan_policy!r}")
    n = arrays[0].shape[-2]
    bad_rows = np.zeros(n, dtype=bool)
    for arr, name in zip(arrays, names):
        finite = np.isfinite(arr)
        if finite.all():
            continue
        if nan_policy == "raise":
            raise nan_error(name, np.flatnonzero(~finite.reshape(-1, n, arr.shape[-1]).all(axis=(0, 1))))
        bad_rows |= ~finite.reshape(-1, n, arr.shape[-1]).all(axis=(0, 2))
    if bad_rows.any():
        arrays = [np.ascontiguousarray(arr[..., ~bad_rows, :]) for arr in arrays]
    for arr, name in zip(arrays, names):
        check_left(name, arr.shape[-2], arr.shape[-1], min_samples, int(bad_rows.sum()))
    return arrays


def check_left(name: str, n_left: int, d: int, min_samples: int, omitted: int) -> None:
    """ValueError unless `name` keeps min_samples samples (rows; `omitted` were dropped for NaN/Inf)
    and a variable (column)."""
    if n_left < min_samples:
        dropped = f" after omitting {omitted} with NaN/Inf" if omitted else ""
        raise ValueError(f"{name} needs at least {min_samples} sample(s) (rows){dropped}, got {n_left}")
    if d < 1:
        raise ValueError(f"{name} needs at least 1 variable (column), got {d}")


def nan_error(name: str, columns: np.ndarray) -> ValueError:
    """The refusal of nan_policy='raise', naming the first offending variables (columns)."""
    shown = ", ".join(map(str, columns[:10])) + (", ..." if columns.size > 10 else "")
    return ValueError(
        f"{name} has NaN or Inf values in {columns.size} variable(s) (columns {shown}); "
        "pass nan_policy='omit' to drop those samples"
    )


def check_ranges(arr: np.ndarray, name: str) -> None:
    """ValueError if a variable's range max - min overflows float64 (bins and scaling need it)."""
    with np.errstate(over="ignore", invalid="ignore"):
        span = arr.max(axis=-2).astype(np.float64) - arr.min(axis=-2)
    bad = np.flatnonzero(~np.isfinite(span).reshape(-1, arr.shape[-1]).all(axis=0))
    if bad.size:
        raise ValueError(f"{name} has variables whose range overflows float64 (columns {bad[:10].tolist()}): rescale them")


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


def check_progress(progress: Any) -> None:
    """progress: None or a callable taking (done, total)."""
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be None or a callable taking (done, total), got {progress!r}")


def check_edges(edges: Any, layers: int, d: int, name: str, binned: bool) -> np.ndarray:
    """Fixed edges (binned: bins + 1 per variable; copula: the knots of its normal-score map) as a
    float64 (layers, d, k) array: (d, k) is taken for every layer. ValueError naming the problem."""
    arr = np.asarray(to_numpy(edges, name), dtype=np.float64)
    if arr.ndim == 2:
        arr = np.broadcast_to(arr, (layers,) + arr.shape)
    if arr.ndim != 3 or arr.shape[:2] != (layers, d):
        raise ValueError(
            f"{name} must be ({d}, k) or ({layers}, {d}, k) for {layers} layer(s) of {d} variables, got shape {np.shape(edges)}"
        )
    k = arr.shape[2]
    if binned and not 3 <= k <= 256:
        raise ValueError(f"{name} must hold bins + 1 edges per variable, bins in [2, 255]; got {k} edges")
    if not binned and k < 2:
        raise ValueError(f"{name} must hold at least 2 knots per variable, got {k}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite")
    unsorted = np.flatnonzero((np.diff(arr, axis=2) < 0).reshape(-1, k - 1).any(axis=1))
    if unsorted.size:
        raise ValueError(
            f"{name} must be sorted (non-decreasing) for every variable; not for "
            f"{unsorted.size} (flat layer * d + variable indices {unsorted[:10].tolist()})"
        )
    return np.ascontiguousarray(arr)
