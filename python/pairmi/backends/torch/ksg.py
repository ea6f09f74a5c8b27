"""KSG on tensors: brute force over tiles of pairs, scaled and tie-broken as the core does."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import torch_module

# Bytes of one tile of pairwise distances (float64, pairs x n x n) for KSG: larger tiles mean fewer
# kernel launches, which dominate at a context window's n on an accelerator.
KSG_TILE_BYTES = {"cpu": 64 << 20}


KSG_TILE_BYTES_DEVICE = 512 << 20


# Per-variable distance matrices (d x n x n float64) are kept for a layer when they take at most this.
KSG_DISTANCE_CACHE_BYTES = 1 << 30


def ksg_mi(x: Any, y: Any | None, k: int, scale: float, pairs_per_tile: int | None = None) -> Any:
    """KSG (algorithm 1) MI (layers, dx, dy), float64, nats times `scale`, by brute force: each
    variable scaled to unit (population) variance exactly as the core scales it; for a tile of
    (block of x variables) x (block of y variables) at once, max-norm distances between all
    samples, the k-th neighbour's distance by repeated argmin, and the neighbours strictly inside it counted
    by comparison; digamma sums in float64. Each variable's own distance matrix is computed once
    per layer where they fit KSG_DISTANCE_CACHE_BYTES. +inf diagonal against itself; constant
    variables share nothing; clipped at 0, as the core and scikit-learn."""
    torch = torch_module()
    n = x.shape[1]
    tile_bytes = KSG_TILE_BYTES.get(x.device.type, KSG_TILE_BYTES_DEVICE)
    side = max(1, int(np.sqrt(pairs_per_tile or max(1, tile_bytes // (8 * n * n)))))

    def distances(v: Any) -> Any:  # (P, n) -> (P, n, n)
        return (v[:, :, None] - v[:, None, :]).abs()

    sx, cx = ksg_scaled(x)
    sy, cy = (sx, cx) if y is None else ksg_scaled(y)
    layers, dx, dy = sx.shape[0], sx.shape[1], sy.shape[1]
    cached = 8 * n * n * (dx + (0 if y is None else dy)) <= KSG_DISTANCE_CACHE_BYTES
    psi = float(torch.special.digamma(torch.tensor(float(n), dtype=torch.float64))) + float(
        torch.special.digamma(torch.tensor(float(k), dtype=torch.float64))
    )
    table = torch.special.digamma(torch.arange(1, n + 1, dtype=torch.float64, device=x.device))  # psi(count + 1)
    out = torch.zeros((layers, dx, dy), dtype=torch.float64, device=x.device)
    for l in range(layers):
        all_x: Any = distances(sx[l]) if cached else None
        all_y: Any = (all_x if y is None else distances(sy[l])) if cached else None
        for i0 in range(0, dx, side):
            i1 = min(dx, i0 + side)
            a = all_x[i0:i1] if cached else distances(sx[l, i0:i1])  # (bi, n, n)
            for j0 in range(i0 if y is None else 0, dy, side):  # against itself: blocks on and right of the diagonal
                j1 = min(dy, j0 + side)
                b = all_y[j0:j1] if cached else distances(sy[l, j0:j1])  # (bj, n, n)
                dist = torch.maximum(a[:, None], b[None])  # (bi, bj, n, n)
                eps = kth_smallest(dist, k)  # self at distance 0 is the 0th
                del dist
                # The sample itself included (count + 1); a tied k-th neighbour (eps = 0) leaves the
                # count 0 as in the core, whose own distance is then not below eps either: 1 at least.
                nx = (a[:, None] < eps).sum(dim=-1).clamp(min=1)
                ny = (b[None] < eps).sum(dim=-1).clamp(min=1)
                terms = (table[nx - 1] + table[ny - 1]).mean(dim=-1)
                out[l, i0:i1, j0:j1] = torch.clamp(psi - terms, min=0.0)
        out[l, cx[l]] = 0.0
        out[l, :, cy[l]] = 0.0
        if y is None:
            upper = torch.triu(out[l], diagonal=1)
            out[l] = upper + upper.T
            out[l].fill_diagonal_(float("inf"))
    return out * scale


def kth_smallest(dist: Any, k: int) -> Any:
    """The k-th smallest (0-based, repeats counted) of each row of dist (..., n), shape (..., 1), by
    taking out the smallest k times: for KSG's small k faster than topk's selection on a GPU
    (docs/gpu.md)."""
    work = dist if k == 0 else dist.clone()
    for _ in range(k):
        work.scatter_(-1, work.argmin(dim=-1, keepdim=True), float("inf"))
    return work.amin(dim=-1, keepdim=True)


def ksg_scaled(x: Any) -> tuple[Any, Any]:
    """Variables of x (layers, n, d) in rows (layers, d, n), float64, divided by their population
    standard deviation computed as the core computes it (sums in sample order, one add per sample:
    the same roundings, so distances tie and order exactly as in the core), and which are constant."""
    torch = torch_module()
    v = x.transpose(1, 2).to(torch.float64).contiguous()
    n = v.shape[-1]

    def sd_of(w: Any) -> Any:
        mean = torch.zeros(w.shape[:-1], dtype=torch.float64, device=w.device)
        for t in range(n):
            mean = mean + w[..., t]
        mean = mean / torch.full_like(mean, float(n))
        var = torch.zeros_like(mean)
        for t in range(n):
            dev = w[..., t] - mean
            var = var + dev * dev
        return torch.sqrt(var / torch.full_like(var, float(n)))

    sd = sd_of(v)
    lo, hi = v.amin(dim=-1), v.amax(dim=-1)
    constant = lo == hi
    odd = ~(torch.isfinite(sd) & (sd > 1e-140)) & ~constant
    if bool(odd.any()):  # tiny or overflowing: the same on values divided by their largest magnitude
        big = torch.maximum(lo.abs(), hi.abs())
        safe = torch.where(odd, big, torch.ones_like(big))
        sd = torch.where(odd, safe * sd_of(v / safe[..., None]), sd)
    sd = torch.where(constant, torch.zeros_like(sd), sd)
    scaled = torch.where(sd[..., None] > 0, v / torch.where(sd > 0, sd, torch.ones_like(sd))[..., None], v)
    return scaled, constant
