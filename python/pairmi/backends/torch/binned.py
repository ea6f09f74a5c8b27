"""Binned MI on tensors: edges and codes as the core fits and assigns them, then MI from the joint counts."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import shrinking_on_oom, torch_module
from .counts import PER_SAMPLE_MAX, cell_log_sums, entropies, entropy_of_sums, joint_counts, mi_from_joint, one_hot_rows


def equal_width_edges(x: Any, bins: int) -> Any:
    """(layers, d, bins + 1) float64 edges of x (layers, n, d), as the core (and np.linspace) makes them."""
    torch = torch_module()
    lo, hi = x.amin(dim=1), x.amax(dim=1)
    same = lo == hi
    lo, hi = torch.where(same, lo - 0.5, lo), torch.where(same, hi + 0.5, hi)
    delta = hi - lo
    step = delta / bins
    k = torch.arange(bins, dtype=torch.float64, device=x.device)
    inner = torch.where((step == 0)[..., None], (k / bins) * delta[..., None], k * step[..., None]) + lo[..., None]
    return torch.cat([inner, hi[..., None]], dim=-1)


def equal_frequency_edges(x: Any, bins: int) -> Any:
    """(layers, d, bins + 1) float64 edges: np.percentile's 'linear' method with its operations."""
    torch = torch_module()
    n = x.shape[1]
    srt = torch.sort(x, dim=1).values  # (layers, n, d)
    edges = []
    for k in range(bins + 1):
        q = (100.0 if k == bins else k * (100.0 / bins)) / 100.0
        v = (n - 1) * q
        if v >= n - 1:
            edges.append(srt[:, n - 1])
            continue
        below = int(np.floor(v))
        t = v - below
        a, b = srt[:, below], srt[:, below + 1]
        diff = b - a
        edges.append(b - diff * (1.0 - t) if t >= 0.5 else a + diff * t)
    return torch.stack(edges, dim=-1)


def codes(x: Any, edges: Any) -> Any:
    """(layers, d, n) int64 codes: the inner edges at or below each value (np.histogram2d's bins,
    the last closed), counted by a search of the sorted edges. A value below the first edge counts
    as the first edge, as in the core: with tied lowest edges it joins the minimum's bin."""
    torch = torch_module()
    inner = edges[..., 1:-1].contiguous()  # (layers, d, bins - 1)
    values = torch.maximum(x.transpose(1, 2), edges[..., :1]).contiguous()  # (layers, d, n), float64 as the edges
    return torch.searchsorted(inner, values, right=True)


def fit_edges(x: Any, estimator: str, bins: int) -> Any:
    """Edges (layers, d, bins + 1) of x (layers, n, d) as the core fits them."""
    return (equal_width_edges if estimator == "equal_width" else equal_frequency_edges)(x, bins)


def binned_mi(
    x: Any,
    y: Any | None,
    estimator: str,
    bins: int,
    scale: float,
    miller_madow: bool = False,
    edges: tuple[Any, Any] = (None, None),
    block: int = 1024,
) -> Any:
    """MI (layers, dx, dy) in nats times `scale`, float64, of x (layers, n, dx) against itself or y."""
    ex = edges[0] if edges[0] is not None else fit_edges(x, estimator, bins)
    cx = codes(x, ex)
    cy = None if y is None else codes(y, edges[1] if edges[1] is not None else fit_edges(y, estimator, bins))
    return binned_mi_of_codes(cx, cy, bins, scale, miller_madow, block)


def binned_mi_of_codes(cx: Any, cy: Any | None, bins: int, scale: float, miller_madow: bool = False, block: int = 1024) -> Any:
    """MI (layers, dx, dy) of codes cx (layers, dx, n) against themselves (entropies on the
    diagonal) or cy. Joint counts of `block` x variables against all y variables per one-hot
    product; out of device memory, the block is halved and the layers computed again."""
    other = cx if cy is None else cy
    return shrinking_on_oom(
        lambda b: _binned_mi_of_codes(cx, cy, bins, scale, miller_madow, b),
        block,
        f"binned MI of {cx.shape[1]:,} x {other.shape[1]:,} variables",
    )


def _binned_mi_of_codes(cx: Any, cy: Any | None, bins: int, scale: float, miller_madow: bool, block: int) -> Any:
    torch = torch_module()
    layers, dx, n = cx.shape
    dy = dx if cy is None else cy.shape[1]
    out = torch.empty((layers, dx, dy), dtype=torch.float64, device=cx.device)
    for l in range(layers):
        oy = one_hot_rows(cx[l] if cy is None else cy[l], bins)
        hy = entropies(oy.sum(dim=1, dtype=torch.int64).reshape(dy, bins), n, miller_madow)
        hx = (
            hy
            if cy is None
            else entropies(one_hot_rows(cx[l], bins).sum(dim=1, dtype=torch.int64).reshape(dx, bins), n, miller_madow)
        )
        for r0 in range(0, dx, block):
            r1 = min(dx, r0 + block)
            if n <= PER_SAMPLE_MAX and n < bins * bins:
                sums = cell_log_sums(cx[l, r0:r1], cx[l] if cy is None else cy[l], miller_madow)
                mi = hx[r0:r1, None] + hy[None, :] - entropy_of_sums(sums, n, miller_madow)
                out[l, r0:r1] = mi if miller_madow else mi.clamp(min=0.0)
                continue
            ox = oy[r0 * bins : r1 * bins] if cy is None else one_hot_rows(cx[l, r0:r1], bins)
            out[l, r0:r1] = mi_from_joint(joint_counts(ox, oy), hx[r0:r1], hy, n, miller_madow)
        if cy is None:
            idx = torch.arange(dx, device=cx.device)
            out[l, idx, idx] = hx
    return out * scale
