"""An accumulator's saved state: its format, the shapes of its totals, and the checks a state
passes before an accumulator takes it over (a file from disk, or another accumulator's)."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _arrays
from .settings import BINNED_ESTIMATORS

FORMAT = "pairmi.Accumulator"
FORMAT_VERSION = 1


def checked_state(
    header: dict[str, Any], arrays: dict[str, np.ndarray], estimator: str
) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, np.ndarray], int] | None:
    """(layout, edges, totals, n_samples) of a state, every part checked: the edges as the
    constructor checks them, the totals' shapes, and that they hold n_samples samples; None for an
    empty state."""
    layout = header["layout"]
    n = header["n_samples"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"its n_samples must be a non-negative integer, got {n!r}")
    if layout is None:
        if n:
            raise ValueError(f"it counts {n} samples but holds no totals")
        return None
    if not isinstance(layout, dict) or set(layout) != set(LAYOUT_TYPES):
        raise ValueError(f"its layout must name {sorted(LAYOUT_TYPES)}, got {layout!r}")
    for key, kind in LAYOUT_TYPES.items():
        if not isinstance(layout[key], kind) or (kind is int and (isinstance(layout[key], bool) or layout[key] < 0)):
            raise ValueError(f"its layout's {key} is {layout[key]!r}")
    binned = estimator in BINNED_ESTIMATORS
    edges = {
        name: _arrays.check_edges(arrays[name], layout["layers"], layout[d], name, binned)
        for name, d in (("edges", "dx"), ("edges_y", "dy"))
        if name in arrays or (name == "edges_y" and layout["cross"])
    }
    if binned and "edges_y" in edges and edges["edges_y"].shape[2] != edges["edges"].shape[2]:
        raise ValueError("its edges and edges_y hold different numbers of bins")
    expected = new_shapes(estimator, layout, edges["edges"])
    totals = {k[len("total_") :]: v for k, v in arrays.items() if k.startswith("total_")}
    if set(totals) != set(expected):
        raise ValueError(f"it holds totals {sorted(totals)} instead of {sorted(expected)}")
    for name, (shape, dtype) in expected.items():
        if totals[name].shape != shape or totals[name].dtype != dtype:
            raise ValueError(f"total {name!r} is {totals[name].dtype} {totals[name].shape}, not {np.dtype(dtype)} {shape}")
    if n == 0:
        raise ValueError("it holds totals but counts 0 samples")
    if binned:  # every variable's bin counts, and every pair's joint counts, add up to n_samples
        for name, total in totals.items():
            sums = total.sum(axis=(-2, -1) if name == "counts" else -1)
            if (sums != n).any():
                raise ValueError(f"its {name} add up to {int(sums.flat[np.argmax(sums != n)]):,} samples, not n_samples = {n:,}")
    elif not all(np.isfinite(t).all() for t in totals.values()):
        raise ValueError("its copula sums are not finite")
    return layout, edges, totals, n


def new_shapes(estimator: str, layout: dict[str, Any], edges: np.ndarray | None) -> dict[str, tuple[tuple[int, ...], Any]]:
    """The totals of an accumulator with this layout and these edges (see totals_shapes)."""
    if edges is None or edges.ndim != 3 or edges.shape[:2] != (layout["layers"], layout["dx"]):
        raise ValueError("its edges do not match its layout")
    dy = layout["dy"] if layout["cross"] else None
    return totals_shapes(estimator, layout["layers"], layout["dx"], dy, edges.shape[2] - 1)


def totals_shapes(estimator: str, layers: int, dx: int, dy: int | None, bins: int) -> dict[str, tuple[tuple[int, ...], Any]]:
    """The totals an accumulator keeps, name -> (shape, dtype), for dx variables against themselves
    (dy None) or against dy others: joint counts of each pair and each variable's counts (binned),
    or the copula's sums and cross-products."""
    L = layers
    shapes: dict[str, tuple[int, ...]]
    if estimator == "gaussian_copula":
        shapes = {"sum_x": (L, dx), "sq_x": (L, dx), "cross": (L, dx, dx if dy is None else dy)}
        if dy is not None:
            shapes.update(sum_y=(L, dy), sq_y=(L, dy))
        return {k: (v, np.float64) for k, v in shapes.items()}
    shapes = {"counts": (L, dx * (dx - 1) // 2 if dy is None else dx * dy, bins, bins), "marginal_x": (L, dx, bins)}
    if dy is not None:
        shapes["marginal_y"] = (L, dy, bins)
    return {k: (v, np.uint64) for k, v in shapes.items()}


# The first chunk's shape and dtype, as a saved state records them.
LAYOUT_TYPES = {"layers": int, "dx": int, "dy": int, "cross": bool, "squeeze": bool, "dtype": str}
