"""From checked inputs and settings to the MI of every pair: the estimator's path into a new array,
or a caller's out= a block of rows at a time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import _arrays, _core, _ksg_ties, _memory, _outputs
from ._blocks import Blocks
from .binned import Coded, binned_mi, code_layers, permutation_nulls, staged
from .copula import copula_mi, mirror_upper
from .settings import BINNED_ESTIMATORS, Settings

Progress = Callable[[int, int], None] | None


Bins = int | str


def inputs(X: Any, Y: Any, nan_policy: str) -> tuple[np.ndarray, np.ndarray | None]:
    x = _arrays.samples(X, "X", 2)[None]
    if Y is None:
        return _arrays.apply_nan_policy([x], ["X"], nan_policy)[0], None
    y = _arrays.samples(Y, "Y", 2)[None]
    if y.shape[1] != x.shape[1]:
        raise ValueError(f"X and Y must have the same number of samples (rows): {x.shape[1]} != {y.shape[1]}")
    x, y = _arrays.apply_nan_policy([x, y], ["X", "Y"], nan_policy)
    return x, y


def fixed_edges(
    estimator: str, x_shape: tuple, y_shape: tuple | None, edges: Any, edges_y: Any
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Checked fixed edges (or knots) of x and y, (layers, d, k) float64, or None where not given;
    x and y are given by their shapes (layers, n, d)."""
    if edges is None and edges_y is None:
        return None, None
    if estimator not in BINNED_ESTIMATORS + ("gaussian_copula",):
        raise ValueError(f"edges apply to the binned estimators and the Gaussian copula, not {estimator!r}")
    if edges is None or (y_shape is not None and edges_y is None):
        raise ValueError("pass edges for X" + (" and edges_y for Y" if y_shape is not None else ""))
    if y_shape is None and edges_y is not None:
        raise ValueError("edges_y applies only with Y")
    binned = estimator in BINNED_ESTIMATORS
    ex = _arrays.check_edges(edges, x_shape[0], x_shape[2], "edges", binned)
    ey = None if y_shape is None else _arrays.check_edges(edges_y, y_shape[0], y_shape[2], "edges_y", binned)
    if ey is not None and binned and ey.shape[2] != ex.shape[2]:
        raise ValueError(f"edges and edges_y must have the same number of bins, got {ex.shape[2] - 1} and {ey.shape[2] - 1}")
    return ex, ey


def dims_index(dims: Any, d: int) -> slice | np.ndarray:
    """Validate a `dims` selection of d variables."""
    if isinstance(dims, slice):
        return dims
    values = list(dims) if isinstance(dims, (list, tuple, range)) else None
    if values is not None and not values:
        raise ValueError("dims is empty: select at least one variable (an index in [-d, d), or a slice)")
    if values is not None and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        out_of_range = [int(v) for v in values if not -d <= v < d]  # Python ints: no int64 overflow
        if out_of_range:
            raise ValueError(f"dims indices must be in [-{d}, {d}) for {d} variables, got {out_of_range[:5]}")
    idx = np.asarray(dims)
    if idx.ndim != 1 or idx.dtype.kind not in "iu":
        raise ValueError(f"dims must be a slice or a 1-d sequence of integer indices, got {dims!r}"[:200])
    if idx.size == 0:
        raise ValueError("dims is empty: select at least one variable (an index in [-d, d), or a slice)")
    if idx.min() < -d or idx.max() >= d:
        raise ValueError(f"dims indices must be in [-{d}, {d}) for {d} variables, got min {idx.min()} max {idx.max()}")
    return idx


def check_ranges(x: np.ndarray, y: np.ndarray | None, name: str = "X") -> None:
    """Binning and unit-variance scaling need each variable's max - min to be finite."""
    _arrays.check_ranges(x, name)
    if y is not None:
        _arrays.check_ranges(y, "Y")


def compute(
    x: np.ndarray,
    y: np.ndarray | None,
    s: Settings,
    progress: Progress,
    out: np.ndarray | None,
    max_bytes: int | None,
    name: str = "X",
) -> np.ndarray:
    """MI (layers, dx, dy) of x (layers, n, dx) against itself (y None) or y, into a new array or out."""
    if s.name != "gaussian_copula":  # ranks need no finite range
        check_ranges(x, y, name)
    shape = (x.shape[0], x.shape[2], x.shape[2] if y is None else y.shape[2])
    if out is not None:
        _outputs.check_out(out, shape)
        # Blocks of out are written while x and y are read: an overlapping input is copied first.
        x = x.copy() if np.may_share_memory(out, x) else x
        y = y.copy() if y is not None and np.may_share_memory(out, y) else y
    if shape[0] == 0:  # no layers: nothing to compute
        return np.empty(shape, dtype=s.dtype) if out is None else out
    if s.name == "ksg":
        x, y = _ksg_ties.ksg_inputs(x, y, s)
    if out is None:
        _memory.check_memory(_memory.bytes_needed(x, y, s, shape), f"the MI of {shape[1]:,} x {shape[2]:,} pairs", max_bytes)
        out = np.empty(shape, dtype=s.dtype)
        fill(x, y, s, progress, out)
        return out
    if s.name == "gaussian_copula":  # already fills out a block of rows at a time
        _outputs.reserve_file(out)
        return copula_mi(x, y, s.scale, out, progress, after_block=lambda: _outputs.release(out), knots=s.edges)
    if s.correction == "shuffle":
        raise ValueError("correction='shuffle' is not supported with out=: use null_mi on a selection of dims")
    fill_rows(x, y, s, progress, out, shape)
    return out


def fill(x: np.ndarray, y: np.ndarray | None, s: Settings, progress: Progress, out: np.ndarray) -> None:
    """Write the MI of x against itself (y None) or y into the C-contiguous out (layers, dx, dy)."""
    if s.name == "gaussian_copula":
        copula_mi(x, y, s.scale, out, progress, knots=s.edges)
        return
    if s.name == "ksg":
        if y is not None and y.dtype != x.dtype:
            x, y = x.astype(np.float64), y.astype(np.float64)
        _core.ksg_mi(x, y, s.k, s.scale, out, s.threads, progress)
        _ksg_ties.clip_tied(x, y, s.scale, out)
        return
    mm = s.correction == "miller_madow"
    cx = code_layers(x, s.name, s.bins, s.threads, mm, s.edges[0])
    cy = None if y is None else code_layers(y, s.name, s.bins, s.threads, mm, s.edges[1])
    passes = 1 + (s.n_permutations if s.correction == "shuffle" else 0)  # progress runs over all of them
    binned_mi(cx, cy, s.scale, out, s.threads, staged(progress, 0, passes), mm)
    if s.correction == "shuffle":
        out -= null_mean(cx, cy, s, progress)  # float64 into out's dtype, in place: no full-size copy


def fill_rows(x: np.ndarray, y: np.ndarray | None, s: Settings, progress: Progress, out: np.ndarray, shape: tuple) -> None:
    """Fill a user's out (e.g. an np.memmap) a block of rows at a time, so memory holds one block of
    the result; written blocks of a memmap are flushed and released. Each layer's variables are
    binned once. For x against itself each pair is computed once: a block's rows against the
    columns from its first row on, the part left of that copied from the blocks above."""
    _outputs.reserve_file(out)
    layers, dx, dy = shape
    rows = int(max(1, min(dx, _outputs.OUT_BLOCK_BYTES // (dy * out.dtype.itemsize))))
    n_blocks = -(-dx // rows)
    for l in range(layers):
        blocks = Blocks(x[l], None if y is None else y[l], s, l)
        for b, r0 in enumerate(range(0, dx, rows)):
            r1 = min(dx, r0 + rows)
            if y is None:
                part = np.empty((1, r1 - r0, dx - r0), dtype=out.dtype)
                blocks.rows(r0, r1, r0, dx, part)
                block = np.empty((r1 - r0, dx), dtype=out.dtype)
                block[:, r0:] = part[0]
                mirror_upper(block[:, r0:r1])  # the block's own pairs: computed both ways, kept from above the diagonal
                for q0 in range(0, r0, rows):  # the left part, mirrored from the blocks above: a block at a time,
                    q1 = min(r0, q0 + rows)  # released after each, so a memmap's read pages stay few
                    block[:, q0:q1] = out[l, q0:q1, r0:r1].T
                    _outputs.release(out)
                block[np.arange(r1 - r0), np.arange(r0, r1)] = blocks.diagonal[r0:r1]
                out[l, r0:r1] = block
            else:  # whole rows of out: C-contiguous, written in place
                blocks.rows(r0, r1, 0, dy, out[l : l + 1, r0:r1])
            _outputs.release(out)
            if progress is not None:
                progress(l * n_blocks + b + 1, layers * n_blocks)


def null_mean(cx: Coded, cy: Coded | None, s: Settings, progress: Progress = None) -> np.ndarray:
    """Mean MI over permutations, with a zero diagonal in the square case (entropies stay). Progress:
    the permutations are passes 1..P of 1 + P (the observed values were the first)."""
    shape = (cx.codes.shape[0], cx.codes.shape[1], (cx if cy is None else cy).codes.shape[1])
    mean = np.zeros(shape)
    stages = (1, 1 + s.n_permutations)
    for null in permutation_nulls(cx, cy, s.n_permutations, s.seed, s.scale, s.threads, np.empty(shape), None, progress, stages):
        mean += null
    mean /= s.n_permutations
    if cy is None:
        idx = np.arange(mean.shape[-1])
        mean[..., idx, idx] = 0.0
    return mean
