"""The MI matrix on disk: square tiles of variables written into a zarr store, resumable.

The store is a zarr group with the matrix ``mi`` (d x d, chunked tile x tile, NaN where not yet
written: readable while it is filled) and ``done`` (one flag a tile of the upper triangle, set
after the tile and its mirror are written). A run that stops is resumed by calling again: tiles
already done are skipped. The group's attributes record the settings and a fingerprint of the
data, so a store is never resumed with other data or settings. In-process here (each tile by the
C++ core); :mod:`pairmi.dask` runs the same tiles on a cluster.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from ._blocks import Blocks
from .settings import Settings

FORMAT = "pairmi.mi_matrix.zarr"
FORMAT_VERSION = 1
# Default tile side: a float64 tile of 2,048 x 2,048 is 32 MiB.
TILE = 2048
ZARR_DTYPES = (np.float16, np.float32, np.float64)


def _zarr() -> Any:
    try:
        import zarr
    except ImportError:
        raise ImportError("a zarr output needs zarr: pip install 'pairmi[dask]' (or zarr)") from None
    return zarr


def is_zarr_target(out: Any) -> bool:
    """Whether out names a zarr store (a path ending in .zarr, or a zarr group)."""
    if isinstance(out, (str, os.PathLike)):
        return os.fspath(out).rstrip("/").endswith(".zarr")
    return type(out).__module__.startswith("zarr")


def fingerprint(x: np.ndarray) -> str:
    """A digest of the data's shape, dtype and bytes (blake2b), to refuse resuming on other data."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{x.shape}{x.dtype.str}".encode())
    h.update(np.ascontiguousarray(x).tobytes())
    return h.hexdigest()


def tile_blocks(d: int, tile: int) -> list[tuple[int, int]]:
    """The (i, j) tile indices of the upper triangle (j >= i), row by row."""
    nb = -(-d // tile)
    return [(i, j) for i in range(nb) for j in range(i, nb)]


def check_store_dtype(dtype: Any) -> np.dtype:
    """A zarr output's dtype, checked: float16, float32 or float64."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved not in [np.dtype(t) for t in ZARR_DTYPES]:
        raise ValueError(f"a zarr output's dtype must be float16, float32 or float64, got {dtype!r}")
    return resolved


def open_store(target: Any, d: int, tile: int, dtype: Any, settings: dict[str, Any]) -> Any:
    """The zarr group for a d x d matrix, created, or opened to resume when its settings match."""
    zarr = _zarr()
    group = target if not isinstance(target, (str, os.PathLike)) else None
    if group is None:
        path = os.fspath(target)
        exists = os.path.exists(path)
        group = zarr.open_group(store=path, mode="a")
        if not exists or "mi" not in group:
            return _create(group, d, tile, dtype, settings)
    elif "mi" not in group:
        return _create(group, d, tile, dtype, settings)
    theirs = group.attrs.get("pairmi")
    mine = _header(d, tile, dtype, settings)
    if theirs != mine:
        differ = sorted(k for k in set(mine) | set(theirs or {}) if (theirs or {}).get(k) != mine.get(k))
        raise ValueError(
            f"{target} holds an MI matrix of other data or settings (differing: {', '.join(differ)}): "
            "remove it, or write to another path"
        )
    return group


def _header(d: int, tile: int, dtype: Any, settings: dict[str, Any]) -> dict[str, Any]:
    return {"format": FORMAT, "version": FORMAT_VERSION, "variables": d, "tile": tile, "dtype": np.dtype(dtype).name, **settings}


def _create(group: Any, d: int, tile: int, dtype: Any, settings: dict[str, Any]) -> Any:
    nb = -(-d // tile)
    group.create_array("mi", shape=(d, d), chunks=(tile, tile), dtype=np.dtype(dtype), fill_value=np.nan)
    group.create_array("done", shape=(nb, nb), chunks=(1, 1), dtype=bool, fill_value=False)
    group.attrs["pairmi"] = _header(d, tile, dtype, settings)  # last: a store without it is recreated
    return group


def pending_tiles(group: Any, d: int, tile: int) -> list[tuple[int, int]]:
    """Tiles of the upper triangle not yet written."""
    done = group["done"][...]
    return [(i, j) for i, j in tile_blocks(d, tile) if not done[i, j]]


def write_tile(group: Any, i: int, j: int, tile: int, values: np.ndarray) -> None:
    """Tile (i, j) and its mirror (j, i) into the matrix, then its flag."""
    mi = group["mi"]
    r0, c0 = i * tile, j * tile
    block = values.astype(mi.dtype, copy=False)
    mi[r0 : r0 + block.shape[0], c0 : c0 + block.shape[1]] = block
    if i != j:
        mi[c0 : c0 + block.shape[1], r0 : r0 + block.shape[0]] = block.T
    group["done"][i, j] = True


def mi_to_zarr(
    x: np.ndarray,
    target: Any,
    s: Settings,
    *,
    dtype: Any = np.float32,
    tile: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Any:
    """mi_matrix of x (n, d) for settings s written tile by tile into a zarr store; returns the
    matrix (a zarr array)."""

    dtype = check_store_dtype(dtype)
    n, d = x.shape
    tile = int(tile or min(d, TILE))
    if tile < 1:
        raise ValueError(f"tile must be a positive integer, got {tile}")
    group = open_store(target, d, tile, dtype, {**store_settings(s), "samples": n, "data": fingerprint(x)})
    todo = pending_tiles(group, d, tile)
    blocks = Blocks(x, None, s)
    total = len(tile_blocks(d, tile))
    for count, (i, j) in enumerate(todo, start=total - len(todo) + 1):
        write_tile(group, i, j, tile, blocks.tile(i, j, tile, d))
        if progress is not None:
            progress(count, total)
    return group["mi"]


def store_settings(s: Settings) -> dict[str, Any]:
    """What a store's header records of the settings (a store is resumed only with the same)."""
    return {"estimator": s.name, "bins": s.bins, "k": s.k, "correction": s.correction, "units": s.units}
