"""Pair tiles: tasks over square tiles of variables (block i against block j, j >= i), each by
the block engine, written into a zarr store or reduced to each variable's top partners."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _arrays, _blocks, tiles, topk
from ..settings import BINNED_ESTIMATORS, Estimator, Settings, as_estimator
from .samples import require_dask


def _tile_task(xi: np.ndarray, xj: np.ndarray, i: int, j: int, s: Settings, diagonal: np.ndarray | None) -> np.ndarray:
    """The MI of tile (i, j) from the samples of its two blocks of variables."""
    same = i == j
    x = xi if same else np.ascontiguousarray(np.concatenate([xi, xj], axis=1))
    ri = xi.shape[1]
    values = _blocks.Blocks(x, None, s).rows(0, ri, 0 if same else ri, x.shape[1])
    if same:
        idx = np.arange(ri)
        values[idx, idx] = diagonal
    return values


def _tile_to_zarr(
    path: str, xi: np.ndarray, xj: np.ndarray, i: int, j: int, tile: int, s: Settings, diagonal: np.ndarray | None
) -> tuple[int, int]:
    import zarr

    group = zarr.open_group(store=path, mode="r+")
    tiles.write_tile(group, i, j, tile, _tile_task(xi, xj, i, j, s, diagonal))
    return i, j


def _tile_partials(
    xi: np.ndarray,
    xj: np.ndarray,
    i: int,
    j: int,
    tile: int,
    s: Settings,
    diagonal: np.ndarray | None,
    k: int,
    threshold: float | None,
) -> list[topk.RowPartial]:
    """A tile's summaries of its rows (block i) and, off the diagonal, of its columns (block j)."""
    values = _tile_task(xi, xj, i, j, s, diagonal)
    parts = [topk.summarize_block(values.copy() if i != j else values, i * tile, j * tile, k, threshold)]
    if i != j:  # the mirror's rows lie below the diagonal: their pairs (j > i) are the tile's, not repeated
        parts.append(topk.summarize_block(np.ascontiguousarray(values.T), j * tile, i * tile, k, threshold))
    return parts


def _diagonal_task(x: np.ndarray, s: Settings) -> np.ndarray:
    return _blocks.Blocks(x, None, s).diagonal if s.name in BINNED_ESTIMATORS else np.full(x.shape[1], np.inf)


def mi_tiles(
    X: Any,
    *,
    estimator: str | Estimator = "equal_width",
    bins: int | str | None = None,
    k: int | None = None,
    correction: str | None = None,
    units: str = "bits",
    threads: int = 1,
    tile_size: int | None = None,
    out: Any = None,
    dtype: Any = None,
    topk_k: int | None = None,
    threshold: float | None = None,
    nan_policy: str = "raise",
    compute: bool = True,
) -> Any:
    """The MI of every pair of a column-chunked dask array, one task per tile of variables.

    Parameters
    ----------
    X : dask.array.Array, shape (n, d)
        Samples in one chunk, variables in chunks (rechunked to ``tile_size`` columns).
    estimator, bins, k, correction, units
        As in :func:`pairmi.mi_matrix` (every estimator; ``k``: KSG's neighbours).
    threads : int
        Threads of each task.
    tile_size : int, optional
        Variables a side of a tile (default: X's column chunk).
    out : str, optional
        A zarr store (path ending in .zarr) to write the dense matrix into, resumable: tiles
        already written are skipped (:mod:`pairmi.tiles`); ``dtype`` its dtype.
    topk_k : int, optional
        Instead of a dense matrix: each variable's ``topk_k`` strongest partners (a
        :class:`pairmi.TopK`, with ``threshold`` the pairs above it), tiles reduced per block of rows.
    nan_policy : {'raise', 'omit'}
        As in :func:`pairmi.mi_matrix`: NaN or Inf anywhere in X is a ValueError naming the columns
        (global indices), or ``'omit'`` drops those samples. Checked in one pass over X first.
    compute : bool
        False: return the delayed result.

    Returns
    -------
    zarr.Array (with ``out``), TopK (with ``topk_k``), else the dense ndarray (d, d)
        Equal to ``pairmi.mi_matrix(X.compute(), ...)`` within rounding (1e-12 bits).
    """
    est = as_estimator(estimator, bins=bins, k=k, correction=correction)
    if getattr(est, "correction", None) == "shuffle" or getattr(est, "noise", 0.0) > 0:
        raise ValueError(
            "mi_tiles takes neither correction='shuffle' nor KSG noise (both need the whole matrix at once): "
            "use pairmi.mi_matrix, or jitter X yourself"
        )
    dtype = np.float64 if dtype is None else dtype
    dask = require_dask()
    import dask.array as da

    if not isinstance(X, da.Array) or X.ndim != 2:
        raise TypeError("X must be a 2-d dask array (samples, variables)")
    if out is not None and topk_k is not None:
        raise ValueError("pass out= (a dense matrix on disk) or topk_k= (top partners), not both")
    if est.name not in topk.TOPK_ESTIMATORS:
        raise ValueError(f"estimator must be one of {topk.TOPK_ESTIMATORS}, got {est.name!r}")
    if out is not None:
        dtype = tiles.check_store_dtype(dtype)
    if tile_size is not None and (isinstance(tile_size, bool) or not isinstance(tile_size, (int, np.integer)) or tile_size < 1):
        raise ValueError(f"tile_size must be a positive integer (variables a side of a tile), got {tile_size!r}")
    X = _finite_samples(dask, X, nan_policy)
    n, d = X.shape
    s = Settings.resolve(n, est, units=units, threads=threads)
    tile = int(X.chunks[1][0] if tile_size is None else tile_size)
    X = X.rechunk((-1, tile))
    cols = list(X.to_delayed().ravel())
    name = f"pairmi-tiles-{dask.base.tokenize(X.name, repr(est), s.bins, units, s.threads, tile)}"
    diag = [dask.delayed(_diagonal_task, pure=True, name=f"{name}-diag-{i}")(c, s) for i, c in enumerate(cols)]
    blocks = tiles.tile_blocks(d, tile)
    if out is not None:
        group = tiles.open_store(out, d, tile, dtype, {**tiles.store_settings(s), "samples": n, "data": f"dask:{X.name}"})
        todo = tiles.pending_tiles(group, d, tile)
        path = str(out)
        writes = [
            dask.delayed(_tile_to_zarr, pure=True, name=f"{name}-zarr-{i}-{j}")(
                path, cols[i], cols[j], i, j, tile, s, diag[i] if i == j else None
            )
            for i, j in todo
        ]
        if not compute:
            return writes
        dask.compute(*writes)
        return group["mi"]
    if topk_k is not None:
        if isinstance(topk_k, bool) or not isinstance(topk_k, (int, np.integer)) or not 1 <= topk_k < d:
            raise ValueError(f"topk_k must be an integer in [1, {d - 1}], got {topk_k!r}")
        per_row: dict[int, list[Any]] = {}
        for i, j in blocks:
            task = dask.delayed(_tile_partials, pure=True, name=f"{name}-topk-{i}-{j}")(
                cols[i], cols[j], i, j, tile, s, diag[i] if i == j else None, int(topk_k), threshold
            )
            per_row.setdefault(i, []).append(task[0])
            if i != j:
                per_row.setdefault(j, []).append(task[1])
        rows = [
            dask.delayed(topk.merge_partials, pure=True, name=f"{name}-rows-{i}")(parts, int(topk_k))
            for i, parts in sorted(per_row.items())
        ]
        result = dask.delayed(topk.finish, pure=True, name=f"{name}-finish")(rows, d, int(topk_k), threshold, units, s.name)
        return result.compute() if compute else result
    dense = dask.delayed(_assemble, pure=True, name=f"{name}-dense")(
        [
            dask.delayed(_tile_task, pure=True, name=f"{name}-tile-{i}-{j}")(
                cols[i], cols[j], i, j, s, diag[i] if i == j else None
            )
            for i, j in blocks
        ],
        blocks,
        tile,
        d,
        dtype,
    )
    return dense.compute() if compute else dense


def _finite_samples(dask: Any, X: Any, nan_policy: str) -> Any:
    """X with mi_matrix's NaN/Inf policy applied: a ValueError naming X's columns (global indices),
    or the samples (rows) holding NaN or Inf dropped."""
    if nan_policy not in _arrays.NAN_POLICIES:
        raise ValueError(f"nan_policy must be one of {_arrays.NAN_POLICIES}, got {nan_policy!r}")
    finite = dask.array.isfinite(X)
    bad_columns, bad_rows = dask.compute((~finite).any(axis=0), (~finite).any(axis=1))
    if nan_policy == "raise" and bad_columns.any():
        raise _arrays.nan_error("X", np.flatnonzero(bad_columns))
    if bad_rows.any():
        X = X[np.flatnonzero(~bad_rows)]
    _arrays.check_left("X", X.shape[0], X.shape[1], 2, int(bad_rows.sum()))
    return X


def _assemble(values: list[np.ndarray], blocks: list[tuple[int, int]], tile: int, d: int, dtype: Any) -> np.ndarray:
    out = np.empty((d, d), dtype=dtype)
    for (i, j), v in zip(blocks, values):
        out[i * tile : i * tile + v.shape[0], j * tile : j * tile + v.shape[1]] = v
        out[j * tile : j * tile + v.shape[1], i * tile : i * tile + v.shape[0]] = v.T
    return out
