"""Gaussian-copula MI: ranks -> standard-normal scores -> MI = -1/2 ln(1 - rho^2) from correlations.

All pairs come from one matrix product of the standardized normal scores. It is a lower bound on
the true MI that is exact for Gaussian dependence, and it is robust to outliers (only ranks matter).
"""

from __future__ import annotations

from collections.abc import Callable
from statistics import NormalDist

import numpy as np

# Bytes of one block of correlations (float64): the working memory beside the result.
BLOCK_BYTES = 16 << 20
# Side of the tiles in which a square's upper triangle is copied onto its lower one.
MIRROR_SIDE = 64


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n along the last axis, ties sharing their average rank (as scipy.stats.rankdata)."""
    n = x.shape[-1]
    # Tied values share one rank, so their order among themselves does not matter: no stable sort.
    order = np.argsort(x, axis=-1)
    xs = np.take_along_axis(x, order, axis=-1)
    ranks = np.empty(x.shape, dtype=np.float64)
    tied = xs[..., 1:] == xs[..., :-1]
    if not tied.any():
        np.put_along_axis(ranks, order, np.broadcast_to(np.arange(1.0, n + 1.0), x.shape), axis=-1)
        return ranks
    pos = np.arange(n)
    starts = np.ones(xs.shape, dtype=bool)
    starts[..., 1:] = ~tied
    ends = np.ones(xs.shape, dtype=bool)
    ends[..., :-1] = ~tied
    first = np.maximum.accumulate(np.where(starts, pos, 0), axis=-1)
    last = np.flip(np.minimum.accumulate(np.flip(np.where(ends, pos, n), axis=-1), axis=-1), axis=-1)
    np.put_along_axis(ranks, order, (first + last) / 2.0 + 1.0, axis=-1)
    return ranks


def rank_scores(ranks: np.ndarray, n: int) -> np.ndarray:
    """Phi^-1(rank / (n + 1)) of average ranks 1..n (multiples of 1/2: Phi^-1 is tabulated at each
    half-integer once)."""
    inv = NormalDist().inv_cdf
    table = np.array([0.0, 0.0] + [inv(m / 2.0 / (n + 1)) for m in range(2, 2 * n + 1)])
    return table[np.rint(2 * ranks).astype(np.intp)]


def unit_rows(z: np.ndarray) -> np.ndarray:
    """Rows centred and scaled to unit norm (all zeros for a constant row): their dot products are
    correlations."""
    z = z - z.mean(axis=-1, keepdims=True)
    norm = np.sqrt(np.einsum("...j,...j->...", z, z))[..., None]
    return np.divide(z, norm, out=np.zeros_like(z), where=norm > 0)


def normal_scores(x: np.ndarray) -> np.ndarray:
    """Variables in rows (the last axis = samples) mapped to Phi^-1(rank / (n + 1)), centred and
    scaled to unit norm, float64: the rows' dot products are the copula's correlations.

    A constant variable becomes all zeros, so its correlation (and MI) with anything is 0.
    """
    return unit_rows(rank_scores(average_ranks(x), x.shape[-1]))


def fit_knots(x: np.ndarray, knots: int) -> np.ndarray:
    """Knots of the fixed normal-score map of each variable of x (layers, n, d): its quantiles at
    probabilities k / (knots + 1), k = 1..knots, interpolated between order statistics as numpy's
    'weibull' method does (the quantile at k / (n + 1) is the k-th smallest value; the ends clamp),
    shape (layers, d, knots). Positions are computed in integers, so with knots = n they are
    exactly the sorted sample."""
    n = x.shape[1]
    srt = np.sort(np.asarray(x, dtype=np.float64), axis=1)
    # 1-based position k (n + 1) / (knots + 1) = q + r / (knots + 1), in integers: exact positions.
    q, r = np.divmod(np.arange(1, knots + 1) * (n + 1), knots + 1)
    below = srt[:, np.clip(q - 1, 0, n - 1)]
    above = srt[:, np.clip(q, 0, n - 1)]
    t = np.where((q >= 1) & (q < n), r / (knots + 1), 0.0)[None, :, None]
    return np.ascontiguousarray(np.moveaxis(below + t * (above - below), 1, 2))


def knot_scores(knots: np.ndarray) -> np.ndarray:
    """Normal scores at the knots (..., K): Phi^-1(k / (K + 1)), tied knots sharing the score of
    their average position (as tied values share their average rank)."""
    return rank_scores(average_ranks(knots), knots.shape[-1])


def mapped_scores(x: np.ndarray, knots: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Normal scores of x (d, n), variables in rows, by the fixed map of each variable: its knots
    (d, K) and their scores (d, K), linear between knots, the end scores beyond them."""
    z = np.empty(x.shape, dtype=np.float64)
    for v in range(x.shape[0]):
        z[v] = np.interp(x[v], knots[v], scores[v])
    return z


def copula_mi(
    x: np.ndarray,
    y: np.ndarray | None,
    scale: float,
    out: np.ndarray,
    progress: Callable[[int, int], None] | None = None,
    after_block: Callable[[], None] | None = None,
    knots: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
) -> np.ndarray:
    """MI of every pair into out (layers, dx, dy), in nats times `scale`: x (layers, n, dx) against
    itself (y None; symmetric, +inf diagonal) or y. Normal scores from ranks, or from the fixed maps
    of `knots` (layers, d, K) of x and of y (see :func:`fit_knots`), the streaming accumulators' maps.

    One layer's normal scores at a time (variables in rows, so every product reads contiguous
    rows), then blocks of rows of the correlation matrix, each turned into MI in place and written
    into out in its dtype: the working memory is one layer's scores and one block, never a float64
    copy of the whole result. Against itself only the blocks on and right of the diagonal are
    multiplied (each pair once); out's lower triangle is mirrored from its upper one.
    """
    layers, dx = x.shape[0], x.shape[2]
    dy = dx if y is None else y.shape[2]
    rows = block_rows(dx, dy)
    blocks = -(-dx // rows)
    factor = -0.5 * scale

    def scores(v: np.ndarray, kv: np.ndarray | None) -> np.ndarray:
        if kv is None:
            return normal_scores(v.T)
        return unit_rows(mapped_scores(v.T, kv, knot_scores(kv)))

    for l in range(layers):
        zx = scores(x[l], None if knots[0] is None else knots[0][l])
        zy = zx if y is None else scores(y[l], None if knots[1] is None else knots[1][l])
        for b, r0 in enumerate(range(0, dx, rows)):
            r1 = min(dx, r0 + rows)
            c0 = r0 if y is None else 0
            logs = _log_one_minus_squares(zx[r0:r1] @ zy[c0:].T)
            np.multiply(logs, factor, out=out[l, r0:r1, c0:], casting="same_kind")
            if y is None:  # the lower triangle from the same values: exactly symmetric
                size = r1 - r0
                square = out[l, r0:r1, r0:r1]
                mirror_upper(square)
                np.fill_diagonal(square, np.inf)  # a continuous variable with itself
                np.multiply(logs[:, size:].T, factor, out=out[l, r1:, r0:r1], casting="same_kind")
            del logs  # before the next block's product is allocated
            if after_block is not None:
                after_block()
            if progress is not None:
                progress(l * blocks + b + 1, layers * blocks)
    return out


def mirror_upper(square: np.ndarray, side: int = MIRROR_SIDE) -> None:
    """Copy the upper triangle of a square array onto its lower one, in cache-sized tiles (a
    transposed copy of the whole triangle at once reads a column at a time)."""
    lower = np.tri(side, k=-1, dtype=bool)
    for i in range(0, square.shape[0], side):
        j = min(square.shape[0], i + side)
        square[i:j, :i] = square[:i, i:j].T
        own = square[i:j, i:j]
        mask = lower[: j - i, : j - i]
        own[mask] = own.T[mask]


def block_rows(dx: int, dy: int) -> int:
    """Rows of the correlation matrix computed at once: BLOCK_BYTES of float64 values."""
    return int(max(1, min(dx, BLOCK_BYTES // (8 * max(1, dy)))))


def copula_working_bytes(n: int, dx: int, dy: int | None) -> int:
    """Peak memory of copula_mi beside its output: one layer's normal scores (ranking takes up to 72
    bytes a value while it runs, the scores keep 8), then one block of correlations and a strip of
    its square copied while it is mirrored."""
    rows = block_rows(dx, dx if dy is None else dy)
    if dy is None:
        return max(72 * n * dx, 8 * n * dx + 8 * rows * dx) + 8 * MIRROR_SIDE * rows
    return max(8 * n * dx + 72 * n * dy, 8 * n * (dx + dy) + 8 * rows * dy)


def mi_of_correlations(rho: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """-1/2 ln(1 - rho^2) * scale (|rho| clipped to 1: +inf there), computed in place in rho."""
    logs = _log_one_minus_squares(rho)
    logs *= -0.5 * scale
    return logs


def _log_one_minus_squares(rho: np.ndarray) -> np.ndarray:
    """ln(1 - min(rho^2, 1)), in place in rho (MI is -1/2 of it): -inf where |rho| reaches 1."""
    np.multiply(rho, rho, out=rho)
    np.minimum(rho, 1.0, out=rho)
    np.negative(rho, out=rho)
    with np.errstate(divide="ignore"):
        np.log1p(rho, out=rho)
    return rho
