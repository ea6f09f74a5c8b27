"""The estimators on torch tensors, on whatever device they live.

Binned joint counts are a matrix product of one-hot codes, counts = O_x^T O_y (O: samples x
(variables * bins)), exact in float64 (and in float32 up to 2^24 samples); codes follow the C++
core's edges and rules (np.histogram2d's), so results equal the core's within rounding. The
copula is one product of normal scores; KSG is brute force over tiles of pairs. Everything stays
on the tensors' device.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..binned import BINNED_ESTIMATORS

TORCH_ESTIMATORS = BINNED_ESTIMATORS + ("ksg", "gaussian_copula")


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ImportError("backend='torch' needs torch: pip install 'pairmi[llm]'") from None
    return torch


def equal_width_edges(x: Any, bins: int) -> Any:
    """(layers, d, bins + 1) float64 edges of x (layers, n, d), as the core (and np.linspace) makes them."""
    torch = _torch()
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
    torch = _torch()
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
    the last closed), counted by a search of the sorted edges."""
    torch = _torch()
    inner = edges[..., 1:-1].contiguous()  # (layers, d, bins - 1)
    values = x.transpose(1, 2).contiguous()  # (layers, d, n)
    return torch.searchsorted(inner, values, right=True)


def _entropy_terms(counts: Any, n: int, miller_madow: bool) -> Any:
    """Sum over the last axis of c ln c - [Miller-Madow] 1/2 per non-empty cell, in float64."""
    torch = _torch()
    c = counts.to(torch.float64)
    s = torch.special.xlogy(c, c).sum(dim=-1)
    if miller_madow:
        s = s - 0.5 * (c > 0).sum(dim=-1)
    return s


def _entropy(sum_terms: Any, n: int, miller_madow: bool) -> Any:
    torch = _torch()
    h = float(np.log(n)) - sum_terms / n - (0.5 / n if miller_madow else 0.0)
    return torch.clamp(h, min=0.0)


def shrinking_on_oom(run: Any, block: int, what: str) -> Any:
    """run(block), halving the block while the device runs out of memory; at one row a clear
    MemoryError naming the size and what to do."""
    torch = _torch()
    while True:
        try:
            return run(block)
        except torch.OutOfMemoryError as exc:  # CUDA (and other accelerators') allocation failures
            if block == 1:
                raise MemoryError(f"{what} does not fit on the device even one row at a time ({exc}): select fewer "
                                  "variables (dims=), fewer layers, or use backend='cpu'") from None
            block = max(1, block // 2)
            torch.cuda.empty_cache() if torch.cuda.is_available() else None


def binned_mi(x: Any, y: Any | None, estimator: str, bins: int, scale: float, miller_madow: bool = False,
              edges: tuple[Any, Any] = (None, None), block: int = 256) -> Any:
    """MI (layers, dx, dy) in nats times `scale`, float64, of x (layers, n, dx) against itself or y.

    Joint counts of `block` x variables against all y variables per one-hot product (the count
    block holds block * bins * dy * bins values); out of device memory, the block is halved and
    the layer computed again.
    """
    return shrinking_on_oom(lambda b: _binned_mi(x, y, estimator, bins, scale, miller_madow, edges, b), block,
                            f"binned MI of {x.shape[2]:,} x {(x if y is None else y).shape[2]:,} variables")


def _binned_mi(x: Any, y: Any | None, estimator: str, bins: int, scale: float, miller_madow: bool,
               edges: tuple[Any, Any], block: int) -> Any:
    torch = _torch()
    n = x.shape[1]
    fit = equal_width_edges if estimator == "equal_width" else equal_frequency_edges
    ex = edges[0] if edges[0] is not None else fit(x, bins)
    cx = codes(x, ex)
    cy = cx if y is None else codes(y, edges[1] if edges[1] is not None else fit(y, bins))
    layers, dx, dy = cx.shape[0], cx.shape[1], cy.shape[1]
    dtype = torch.float64 if n >= 2**24 or x.device.type == "cpu" else torch.float32  # exact counts either way
    out = torch.empty((layers, dx, dy), dtype=torch.float64, device=x.device)
    for l in range(layers):
        oy = torch.nn.functional.one_hot(cy[l].T, bins).reshape(n, dy * bins).to(dtype)  # (n, dy * bins)
        hy = _entropy(_entropy_terms(oy.sum(dim=0).reshape(dy, bins), n, miller_madow), n, miller_madow)
        hx_all = hy if y is None else _entropy(_entropy_terms(
            torch.nn.functional.one_hot(cx[l], bins).sum(dim=1), n, miller_madow), n, miller_madow)
        for r0 in range(0, dx, block):
            r1 = min(dx, r0 + block)
            ox = torch.nn.functional.one_hot(cx[l, r0:r1].T, bins).reshape(n, (r1 - r0) * bins).to(dtype)
            joint = (ox.T @ oy).reshape(r1 - r0, bins, dy, bins).permute(0, 2, 1, 3).reshape(r1 - r0, dy, bins * bins)
            hxy = _entropy(_entropy_terms(joint, n, miller_madow), n, miller_madow)
            mi = hx_all[r0:r1, None] + hy[None, :] - hxy
            out[l, r0:r1] = mi if miller_madow else torch.clamp(mi, min=0.0)
        if y is None:
            idx = torch.arange(dx, device=x.device)
            out[l, idx, idx] = hx_all
    return out * scale


def _average_ranks(x: Any) -> Any:
    """Ranks 1..n along the last axis, ties sharing their average rank, float64."""
    torch = _torch()
    n = x.shape[-1]
    xs, order = torch.sort(x, dim=-1, stable=True)
    pos = torch.arange(n, device=x.device).expand_as(xs)
    starts = torch.ones_like(xs, dtype=torch.bool)
    starts[..., 1:] = xs[..., 1:] != xs[..., :-1]
    ends = torch.ones_like(xs, dtype=torch.bool)
    ends[..., :-1] = starts[..., 1:]
    first = torch.cummax(torch.where(starts, pos, torch.zeros_like(pos)), dim=-1).values
    last = torch.flip(torch.cummin(torch.flip(torch.where(ends, pos, torch.full_like(pos, n)), [-1]), dim=-1).values, [-1])
    ranks = torch.empty_like(xs, dtype=torch.float64)
    ranks.scatter_(-1, order, (first + last).to(torch.float64) / 2.0 + 1.0)
    return ranks


def _unit_scores(v: Any) -> Any:
    """Variables in rows (d, n) to centred, unit-norm normal scores Phi^-1(rank / (n + 1))."""
    torch = _torch()
    n = v.shape[-1]
    z = torch.special.ndtri(_average_ranks(v.to(torch.float64)) / (n + 1))
    z = z - z.mean(dim=-1, keepdim=True)
    norm = torch.linalg.vector_norm(z, dim=-1, keepdim=True)
    return torch.where(norm > 0, z / torch.where(norm > 0, norm, torch.ones_like(norm)), torch.zeros_like(z))


def copula_mi(x: Any, y: Any | None, scale: float) -> Any:
    """Gaussian-copula MI (layers, dx, dy), float64, nats times `scale`; +inf diagonal against itself."""
    torch = _torch()
    out = []
    for l in range(x.shape[0]):
        zx = _unit_scores(x[l].T)
        zy = zx if y is None else _unit_scores(y[l].T)
        rho = torch.clamp(zx @ zy.T, -1.0, 1.0)
        mi = -0.5 * torch.log1p(-rho * rho) * scale
        if y is None:
            mi.fill_diagonal_(float("inf"))
        out.append(mi)
    return torch.stack(out)


def ksg_mi(x: Any, y: Any | None, k: int, scale: float, pairs_per_tile: int | None = None) -> Any:
    """KSG (algorithm 1) MI (layers, dx, dy), float64, nats times `scale`, by brute force: each
    variable scaled to unit (population) variance; for a tile of pairs at once, max-norm distances
    between all samples, the k-th neighbour's distance by topk, and the neighbours strictly inside
    it counted by comparison; digamma sums in float64. +inf diagonal against itself; constant
    variables share nothing; clipped at 0, as the core and scikit-learn."""
    torch = _torch()
    n = x.shape[1]
    tile = pairs_per_tile or max(1, (64 << 20) // (8 * n * n))  # about 64 MB of distances a tile

    def scaled(v: Any) -> Any:  # (layers, d, n)
        v = v.transpose(1, 2).to(torch.float64)
        sd = v.std(dim=-1, unbiased=False, keepdim=True)
        return torch.where(sd > 0, v / torch.where(sd > 0, sd, torch.ones_like(sd)), v), (sd == 0)[..., 0]

    sx, cx = scaled(x)
    sy, cy = (sx, cx) if y is None else scaled(y)
    layers, dx, dy = sx.shape[0], sx.shape[1], sy.shape[1]
    psi = float(torch.special.digamma(torch.tensor(float(n), dtype=torch.float64))) + float(
        torch.special.digamma(torch.tensor(float(k), dtype=torch.float64)))
    out = torch.zeros((layers, dx, dy), dtype=torch.float64, device=x.device)
    for l in range(layers):
        ii, jj = torch.meshgrid(torch.arange(dx, device=x.device), torch.arange(dy, device=x.device), indexing="ij")
        ii, jj = ii.flatten(), jj.flatten()
        if y is None:
            keep = ii < jj
            ii, jj = ii[keep], jj[keep]
        live = ~(cx[l][ii] | cy[l][jj])
        ii, jj = ii[live], jj[live]
        for p0 in range(0, ii.numel(), tile):
            a, b = sx[l][ii[p0 : p0 + tile]], sy[l][jj[p0 : p0 + tile]]  # (P, n)
            ddx = (a[:, :, None] - a[:, None, :]).abs()
            ddy = (b[:, :, None] - b[:, None, :]).abs()
            dist = torch.maximum(ddx, ddy)
            eps = torch.topk(dist, k + 1, dim=-1, largest=False).values[..., k:k + 1]  # self at distance 0
            nx = (ddx < eps).sum(dim=-1) - 1  # not the sample itself
            ny = (ddy < eps).sum(dim=-1) - 1
            terms = torch.special.digamma((nx + 1).to(torch.float64)) + torch.special.digamma((ny + 1).to(torch.float64))
            out[l, ii[p0 : p0 + tile], jj[p0 : p0 + tile]] = torch.clamp(psi - terms.mean(dim=-1), min=0.0)
        if y is None:
            out[l] = out[l] + out[l].T
            out[l].fill_diagonal_(float("inf"))
    return out * scale
