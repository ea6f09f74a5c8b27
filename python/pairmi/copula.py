"""Gaussian-copula MI: ranks -> standard-normal scores -> MI = -1/2 ln(1 - rho^2) from correlations.

All pairs come from one matrix product of the standardized normal scores. It is a lower bound on
the true MI that is exact for Gaussian dependence, and it is robust to outliers (only ranks matter).
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n along axis -2, ties sharing their average rank (as scipy.stats.rankdata)."""
    n = x.shape[-2]
    order = np.argsort(x, axis=-2, kind="stable")
    xs = np.take_along_axis(x, order, axis=-2)
    pos = np.arange(n).reshape((n, 1))
    starts = np.ones(xs.shape, dtype=bool)
    starts[..., 1:, :] = xs[..., 1:, :] != xs[..., :-1, :]
    ends = np.ones(xs.shape, dtype=bool)
    ends[..., :-1, :] = starts[..., 1:, :]
    first = np.maximum.accumulate(np.where(starts, pos, 0), axis=-2)
    last = np.flip(np.minimum.accumulate(np.flip(np.where(ends, pos, n), axis=-2), axis=-2), axis=-2)
    ranks = np.empty(x.shape, dtype=np.float64)
    np.put_along_axis(ranks, order, (first + last) / 2.0 + 1.0, axis=-2)
    return ranks


def normal_scores(x: np.ndarray) -> np.ndarray:
    """Columns (axis -2 = samples) mapped to Phi^-1(rank / (n + 1)), centred and scaled to unit norm.

    A constant column becomes all zeros, so its correlation (and MI) with anything is 0.
    """
    n = x.shape[-2]
    ranks = average_ranks(x)
    # Average ranks are multiples of 1/2: tabulate Phi^-1 at each half-integer once.
    inv = NormalDist().inv_cdf
    table = np.array([0.0, 0.0] + [inv(m / 2.0 / (n + 1)) for m in range(2, 2 * n + 1)])
    z = table[np.rint(2 * ranks).astype(np.intp)]
    z -= z.mean(axis=-2, keepdims=True)
    norm = np.sqrt(np.einsum("...ij,...ij->...j", z, z))[..., None, :]
    return np.divide(z, norm, out=np.zeros_like(z), where=norm > 0)


def copula_mi(x: np.ndarray, y: np.ndarray | None) -> np.ndarray:
    """MI (nats) of every pair: x (layers, n, dx) against itself (y None; +inf diagonal) or y."""
    zx = normal_scores(x)
    zy = zx if y is None else normal_scores(y)
    rho = np.clip(np.matmul(np.swapaxes(zx, -1, -2), zy), -1.0, 1.0)
    with np.errstate(divide="ignore"):
        mi = -0.5 * np.log1p(-rho * rho)
    if y is None:
        idx = np.arange(mi.shape[-1])
        mi[..., idx, idx] = np.inf  # a continuous variable with itself
    return mi
