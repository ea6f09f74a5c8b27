"""The Gaussian copula on tensors: ranks to normal scores, one product, and the normal-score map of streaming."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import torch_module


def average_ranks(x: Any) -> Any:
    """Ranks 1..n along the last axis, ties sharing their average rank, float64."""
    torch = torch_module()
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


def unit_scores(v: Any) -> Any:
    """Variables in rows (d, n) to centred, unit-norm normal scores Phi^-1(rank / (n + 1))."""
    torch = torch_module()
    n = v.shape[-1]
    z = torch.special.ndtri(average_ranks(v.to(torch.float64)) / (n + 1))
    z = z - z.mean(dim=-1, keepdim=True)
    norm = torch.linalg.vector_norm(z, dim=-1, keepdim=True)
    return torch.where(norm > 0, z / torch.where(norm > 0, norm, torch.ones_like(norm)), torch.zeros_like(z))


def copula_mi(x: Any, y: Any | None, scale: float) -> Any:
    """Gaussian-copula MI (layers, dx, dy), float64, nats times `scale`; +inf diagonal against itself."""
    torch = torch_module()
    out = []
    for l in range(x.shape[0]):
        zx = unit_scores(x[l].T)
        zy = zx if y is None else unit_scores(y[l].T)
        mi = mi_of_correlations(zx @ zy.T, scale)
        if y is None:
            mi.fill_diagonal_(float("inf"))
        out.append(mi)
    return torch.stack(out)


def fit_knots(x: Any, knots: int) -> Any:
    """pairmi.copula.fit_knots on the device, with the same operations (the same values)."""
    torch = torch_module()
    n = x.shape[1]
    srt = torch.sort(x.to(torch.float64), dim=1).values
    q, r = np.divmod(np.arange(1, knots + 1) * (n + 1), knots + 1)
    below = srt[:, torch.as_tensor(np.clip(q - 1, 0, n - 1), device=x.device)]
    above = srt[:, torch.as_tensor(np.clip(q, 0, n - 1), device=x.device)]
    t = torch.as_tensor(np.where((q >= 1) & (q < n), r / (knots + 1), 0.0), device=x.device)[None, :, None]
    return (below + t * (above - below)).transpose(1, 2).contiguous()


def mapped_scores(x: Any, knots: Any, scores: Any) -> Any:
    """Normal scores of x (d, n) by each variable's knots (d, K) and their scores (d, K), as np.interp
    computes them: linear between knots, the end scores beyond them."""
    torch = torch_module()
    k = knots.shape[1]
    j = (torch.searchsorted(knots, x, right=True) - 1).clamp(0, k - 2)
    x0, x1 = knots.gather(1, j), knots.gather(1, j + 1)
    f0, f1 = scores.gather(1, j), scores.gather(1, j + 1)
    dxp = x1 - x0
    slope = (f1 - f0) / torch.where(dxp > 0, dxp, torch.ones_like(dxp))
    z = torch.where(dxp > 0, slope * (x - x0) + f0, f0)
    z = torch.where(x >= knots[:, -1:], scores[:, -1:], z)
    return torch.where(x < knots[:, :1], scores[:, :1], z)


def add_score_sums(totals: dict[str, Any], x: Any, y: Any | None, maps: tuple[Any, ...], block_bytes: int = 1 << 30) -> None:
    """Add the copula's sums (sum_x, sq_x, cross [, sum_y, sq_y]) of x (layers, n, dx) [and y] mapped
    by maps = (knots_x, scores_x, knots_y, scores_y): computed first, then added, so a failure leaves
    the totals unchanged."""
    torch = torch_module()
    layers, n, dx = x.shape
    step = max(1, block_bytes // (8 * (dx + (0 if y is None else y.shape[2]))))
    delta = {k: torch.zeros_like(v) for k, v in totals.items()}
    for l in range(layers):
        for s0 in range(0, n, step):
            zx = mapped_scores(x[l, s0 : s0 + step].T.contiguous(), maps[0][l], maps[1][l])
            zy = zx if y is None else mapped_scores(y[l, s0 : s0 + step].T.contiguous(), maps[2][l], maps[3][l])
            delta["sum_x"][l] += zx.sum(dim=1)
            delta["sq_x"][l] += (zx * zx).sum(dim=1)
            delta["cross"][l] += zx @ zy.T
            if y is not None:
                delta["sum_y"][l] += zy.sum(dim=1)
                delta["sq_y"][l] += (zy * zy).sum(dim=1)
    for k, v in delta.items():
        totals[k] += v


def mi_of_correlations(rho: Any, scale: float = 1.0) -> Any:
    """-1/2 ln(1 - min(rho^2, 1)) * scale."""
    torch = torch_module()
    return -0.5 * torch.log1p(-torch.clamp(rho * rho, max=1.0)) * scale
