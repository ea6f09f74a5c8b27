"""Nulls and multiple testing for all-pairs MI: sample reorderings (shuffles, rotations within
segments), one shared null where the null depends only on n, and false discovery rates."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

NULLS = ("shuffle", "rotation", "windows", "shared")
# Estimators whose null distribution, for variables without tied values, depends on the number of
# samples (and bins) alone: they see only ranks.
SHARED_NULL_ESTIMATORS = ("equal_frequency", "gaussian_copula")
FDR_METHODS = ("bh", "by")


class PermutationFloorWarning(UserWarning):
    """Permutation p-values cannot pass Benjamini-Hochberg over this many pairs: each is at least
    1 / (n_permutations + 1), and BH passes the k smallest of m only at or below alpha k / m."""


def floor_message(pairs: int, n_permutations: int, alpha: float = 0.05) -> str | None:
    """Why permutation p-values over `pairs` pairs are saturated at FDR `alpha`, or None: BH passes
    nothing unless ceil(m / (alpha (n + 1))) pairs all sit at the floor 1 / (n + 1)."""
    together = int(np.ceil(pairs / (alpha * (n_permutations + 1))))
    if together <= 1:
        return None
    return (
        f"with {n_permutations:,} permutations over {pairs:,} pairs, BH at a {alpha:.0%} false discovery rate "
        f"passes nothing unless {together:,} pairs all reach the floor p = 1/{n_permutations + 1:,}: rank and "
        f"count pairs by the tail p-values (MITest.p_tail, q_value(which='tail')), or use "
        f"n_permutations >= {int(np.ceil(pairs / alpha)) - 1:,}"
    )


def segment_starts(segments: Sequence[int] | None, n: int) -> np.ndarray:
    """Start of each contiguous segment (document or window) of n samples, from their lengths;
    one segment when None. ValueError unless the lengths are positive and add up to n."""
    if segments is None:
        return np.zeros(1, dtype=np.int64)
    lengths = np.asarray(segments)
    if lengths.ndim != 1 or lengths.size == 0 or lengths.dtype.kind not in "iu" or (lengths < 1).any():
        raise ValueError("segments must be a non-empty 1-d sequence of positive segment lengths")
    if int(lengths.sum()) != n:
        raise ValueError(f"segments must add up to the {n} samples, got {int(lengths.sum())}")
    return np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)


def lagged_pairs(segments: Sequence[int], lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample indices (a, b) pairing each window w with window w + lag at the same positions, for
    the positions both hold (w + lag < W; not circular, as a stream sees them): the samples of the
    position null at that whole-window lag."""
    lengths = np.asarray(segments, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    shared = np.minimum(lengths[:-lag], lengths[lag:]) if lag < lengths.size else np.zeros(0, dtype=np.int64)
    within = np.concatenate([np.arange(m) for m in shared]) if shared.size else np.zeros(0, dtype=np.int64)
    first = np.repeat(starts[: shared.size], shared)
    return first + within, np.repeat(starts[lag : lag + shared.size], shared) + within


def check_lags(lags: Any) -> tuple[int, ...]:
    """Whole-window lags of a position null: distinct positive integers, sorted."""
    values = (lags,) if isinstance(lags, (int, np.integer)) and not isinstance(lags, bool) else tuple(lags)
    if not values or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in values):
        raise ValueError(f"window lags must be positive integers (whole windows), got {lags!r}")
    if len(set(values)) != len(values):
        raise ValueError(f"window lags must be distinct, got {lags!r}")
    return tuple(sorted(int(v) for v in values))


class Rotations:
    """Circular shifts of the samples within each segment, by a random offset per segment (never 0
    in a segment of 2 or more samples), one offset for every moved variable: each variable keeps its
    own order and autocorrelation, and since the row variables stay in place (``common``: a square
    test scores rows against moved columns) every pair is moved against itself by a non-zero
    relative offset, never left aligned."""

    common = True

    def __init__(self, n: int, segments: Sequence[int] | None):
        starts = segment_starts(segments, n)
        lengths = np.diff(np.append(starts, n))
        self.segment = np.repeat(np.arange(starts.size), lengths)  # segment of each sample
        self.start = starts[self.segment]
        self.length = lengths[self.segment]
        self.position = np.arange(n) - self.start
        self.lengths = lengths

    def indices(self, rng: np.random.Generator, d: int) -> np.ndarray:
        """(d, n) sample indices, every row the same rotated order."""
        span = np.maximum(self.lengths - 1, 0)
        offsets = np.where(self.lengths > 1, 1 + np.floor(rng.random(self.lengths.size) * span), 0).astype(np.int64)
        order = self.start + (self.position + offsets[self.segment]) % self.length
        return np.broadcast_to(order, (d, order.size))

    def __call__(self, rng: np.random.Generator, rows: np.ndarray) -> np.ndarray:
        """rows (d, n) with the samples rotated."""
        return rows[:, self.indices(rng, 1)[0]]


class WindowShifts:
    """Whole windows moved, positions kept: a pass pairs the samples of window w (the row variables,
    in place) with the samples at the same positions of window w + s (the moved variables),
    circularly over the windows long enough to hold that position, s in [1, W - 1] drawn per pass
    without repeats until every shift was drawn (W windows), one for every moved variable. What
    the position in the window explains stays in this null; only what goes beyond it is tested.
    ``segments`` are the window lengths in order (e.g. ``hs.meta['window_tokens']``); at least
    two windows."""

    common = True

    def __init__(self, n: int, segments: Sequence[int] | None):
        if segments is None:
            raise ValueError("null='windows' needs segments: the length of each window, in order (hs.meta['window_tokens'])")
        starts = segment_starts(segments, n)
        lengths = np.diff(np.append(starts, n))
        if starts.size < 2:
            raise ValueError("null='windows' needs at least two windows (segments) to move whole windows against each other")
        self.windows = int(starts.size)
        position = np.arange(n) - np.repeat(starts, lengths)
        # The samples at each position, window by window: position p's samples are columns[offset[p]:offset[p + 1]].
        self.columns = np.argsort(position, kind="stable")
        counts = np.bincount(position)
        self.offset = np.concatenate([[0], np.cumsum(counts)])
        self.count = counts[position]  # windows holding each sample's position
        self.rank = np.empty(n, dtype=np.int64)  # a sample's window among those holding its position
        self.rank[self.columns] = np.arange(n) - np.repeat(self.offset[:-1], counts)
        self.base = self.offset[position]
        self._orders: dict[int, tuple[np.random.Generator, np.ndarray | None, int]] = {}  # per generator

    def indices(self, rng: np.random.Generator, d: int) -> np.ndarray:
        """(d, n) sample indices, every row the same shifted order."""
        s = self._next_shift(rng)
        # s for positions every window holds; for rarer ones (the shorter last windows) s folded
        # into [1, count - 1], so that no sample stays in its own window.
        shift = np.where(self.count > 1, 1 + (s - 1) % np.maximum(self.count - 1, 1), 0)
        order = self.columns[self.base + (self.rank + shift) % self.count]
        return np.broadcast_to(order, (d, order.size))

    def __call__(self, rng: np.random.Generator, rows: np.ndarray) -> np.ndarray:
        return rows[:, self.indices(rng, 1)[0]]

    def _next_shift(self, rng: np.random.Generator) -> int:
        """The next shift of the passes drawn from rng: the W - 1 shifts in a random order, then
        again in another, so draws repeat no shift before all were drawn (duplicated shifts made
        the pooled tail p-values too small: 2 % at 0.01 with 29 draws of 29 shifts)."""
        _, order, k = self._orders.get(id(rng), (rng, None, 0))
        if order is None or k == order.size:
            order, k = rng.permutation(np.arange(1, self.windows)), 0
        self._orders[id(rng)] = (rng, order, k + 1)  # the generator held: its id is not reused meanwhile
        return int(order[k])


def mirrored_upper(values: np.ndarray, diagonal: np.ndarray | float) -> np.ndarray:
    """values (d, d) of a square null pass (rows in place, columns moved): each pair's draw is its
    upper-triangle value, mirrored below; the diagonal set to `diagonal`."""
    out = np.triu(values, 1)
    out += out.T
    np.fill_diagonal(out, diagonal)
    return out


def shuffled(rng: np.random.Generator, rows: np.ndarray) -> np.ndarray:
    """rows (d, n) with each row's samples permuted independently."""
    return rng.permuted(rows, axis=-1)


def untied_or_raise(x: np.ndarray, name: str) -> None:
    """ValueError naming the variables (columns) of x (layers, n, d) with repeated values."""
    srt = np.sort(x, axis=1)
    tied = np.flatnonzero((srt[:, 1:] == srt[:, :-1]).any(axis=(0, 1)))
    if tied.size:
        raise ValueError(
            f"null='shared' needs variables without tied values (their null then depends on the number "
            f"of samples alone); {name} has ties in {tied.size} variable(s) (columns "
            f"{tied[:10].tolist()}): use null='shuffle'"
        )


def tie_shares(x: np.ndarray) -> np.ndarray:
    """Share of each variable's samples whose value occurs more than once, (layers, variables)."""
    srt = np.sort(x, axis=1)
    same = srt[:, 1:] == srt[:, :-1]
    tied = np.zeros(srt.shape, dtype=bool)
    tied[:, 1:] |= same
    tied[:, :-1] |= same
    return tied.mean(axis=1)


def p_values_from_null(observed: np.ndarray, null: np.ndarray, tol: float) -> np.ndarray:
    """(1 + #{null >= observed - tol}) / (1 + len(null)) for every observed value."""
    srt = np.sort(null)
    exceed = srt.size - np.searchsorted(srt, observed - tol, side="left")
    return (1.0 + exceed) / (1.0 + srt.size)


def fdr(p: Any, method: str = "bh") -> np.ndarray:
    """False-discovery-rate adjusted p-values (q-values) of independent tests, NaNs ignored.

    Parameters
    ----------
    p : array_like
        p-values, any shape; NaN entries (e.g. a test's diagonal) are left out and stay NaN.
    method : {'bh', 'by'}
        Benjamini-Hochberg (independent or positively dependent tests) or Benjamini-Yekutieli
        (any dependence; more conservative by sum(1/k)), as ``scipy.stats.false_discovery_control``.

    Returns
    -------
    ndarray
        q-values: a test is significant at FDR alpha when its q-value is <= alpha.

    Examples
    --------
    >>> import pairmi
    >>> pairmi.fdr([0.01, 0.04, 0.03, 0.5]).round(3).tolist()
    [0.04, 0.053, 0.053, 0.5]
    """
    if method not in FDR_METHODS:
        raise ValueError(f"method must be one of {FDR_METHODS}, got {method!r}")
    arr = np.asarray(p, dtype=np.float64)
    q = np.full(arr.shape, np.nan)
    finite = ~np.isnan(arr)
    vals = arr[finite]
    if vals.size == 0:
        return q
    if ((vals < 0) | (vals > 1)).any():
        raise ValueError("p-values must be in [0, 1]")
    m = vals.size
    order = np.argsort(vals)
    scaled = vals[order] * m / np.arange(1, m + 1)
    if method == "by":
        scaled *= np.sum(1.0 / np.arange(1, m + 1))
    adjusted = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    out = np.empty(m)
    out[order] = adjusted
    q[finite] = out
    return q


def fdr_among(p: np.ndarray, tests: int) -> np.ndarray:
    """Benjamini-Hochberg q-values of the p-values given, when they are some of ``tests`` tests and
    every test not given has p = 1 (pairs a screen did not count): as :func:`fdr` of all of them,
    without holding them."""
    p = np.asarray(p, dtype=np.float64)
    if p.size == 0:
        return p.copy()
    if tests < p.size:
        raise ValueError(f"tests ({tests}) must be at least the p-values given ({p.size})")
    order = np.argsort(p, kind="stable")
    scaled = p[order] * tests / np.arange(1, p.size + 1)
    q = np.empty(p.size)
    q[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return q


def upper_pairs(p: np.ndarray) -> tuple[np.ndarray, ...]:
    """Index of each pair once in a square matrix (i < j); every entry of a rectangular one."""
    if p.ndim == 2 and p.shape[0] == p.shape[1] and np.isnan(np.diag(p)).all():
        return np.triu_indices(p.shape[0], k=1)
    return tuple(np.indices(p.shape).reshape(p.ndim, -1))


# A unit whose spread over the tokens is below this share of its layer's median spread is degenerate:
# constant, or scaled far below its neighbours (MiniLM's last layer: units 127, 223, 319 at ~1e-32).
DEGENERATE_SPREAD = 1e-6


def degenerate_units(values: np.ndarray) -> np.ndarray:
    """(layers, units) bool: units that are constant or near-constant for their layer's scale,
    from values (layers, tokens, units). Their MI is 0 or noise; figures skip them."""
    spread = values.std(axis=1, dtype=np.float64)
    typical = np.array([np.median(s[s > 0]) if (s > 0).any() else 0.0 for s in spread])
    return spread <= DEGENERATE_SPREAD * typical[:, None]


def pair_mask(d: int, degenerate: np.ndarray | None = None) -> np.ndarray:
    """(d, d) bool: the pairs i < j of two units that are not degenerate (what figures and
    summaries count)."""
    mask = np.triu(np.ones((d, d), dtype=bool), k=1)
    if degenerate is not None:
        bad = np.asarray(degenerate, dtype=bool)
        mask &= ~bad[:, None] & ~bad[None, :]
    return mask


def pooled_null_p(observed: np.ndarray, null: np.ndarray) -> np.ndarray:
    """Each observed value's p-value against one pooled sample of null values (e.g. every pair of a
    layer scored once on shuffled tokens): (1 + #{null >= observed}) / (1 + null count)."""
    srt = np.sort(np.ravel(null))
    exceed = srt.size - np.searchsorted(srt, np.asarray(observed, dtype=np.float64), side="left")
    return (1.0 + exceed) / (1.0 + srt.size)


def g_test_p(mi_nats: np.ndarray, level_nats: np.ndarray, n: int) -> np.ndarray:
    """Asymptotic p-values of MI under independence with n independent samples: G = 2 n MI is
    chi-square with df = 2 n level degrees of freedom, `level` being the first-order MI of
    independent variables (binned: (m_x - 1)(m_y - 1) / (2 n), so df = (m_x - 1)(m_y - 1); the
    copula: 1 / (2 n), df = 1). The chi-square tail by the Wilson-Hilferty cube root (exact for
    df = 1): a few percent of p for df >= 3. Autocorrelated tokens make these p-values too small."""
    g = 2.0 * n * np.maximum(np.asarray(mi_nats, dtype=np.float64), 0.0)
    df = np.maximum(np.rint(2.0 * n * np.asarray(level_nats, dtype=np.float64)), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = 2.0 / (9.0 * df)
        z = (np.cbrt(g / df) - (1.0 - h)) / np.sqrt(h)
        p = 0.5 * _erfc(z / np.sqrt(2.0))
        p = np.where(df == 1.0, _erfc(np.sqrt(g / 2.0)), p)
    return np.clip(p, 0.0, 1.0)


def _erfc(x: np.ndarray) -> np.ndarray:
    import math

    return np.vectorize(math.erfc, otypes=[np.float64])(x)


# The largest pooled null values a generalized Pareto tail is fitted to (Knijnenburg et al. 2009
# fit 250), and the fewest null values above a statistic for which the empirical p-value is kept.
TAIL_EXCEEDANCES = 250
TAIL_MIN_EXCEED = 10
# Standardized null draws pooled for the tail p-values (float32 each): a seeded subset of pairs beyond it.
POOLED_DRAWS = 2_000_000


def tail_p(statistic: np.ndarray, pooled: np.ndarray) -> np.ndarray:
    """p-values of statistics against one pooled null sample, extended below its resolution:
    (1 + #{null >= s}) / (1 + M) where at least TAIL_MIN_EXCEED of the M null values reach s;
    beyond, a generalized Pareto distribution fitted to the TAIL_EXCEEDANCES largest null values
    (probability-weighted moments, Hosking & Wallis 1987) gives p = (N_exc / M) S(s - t), t the
    value below them (Knijnenburg et al. 2009). Beyond a fitted tail's upper end: the smallest
    positive float."""
    s = np.asarray(statistic, dtype=np.float64)
    srt = np.sort(np.asarray(pooled, dtype=np.float64).ravel())
    srt = srt[np.isfinite(srt)]
    m = srt.size
    exceed = m - np.searchsorted(srt, s, side="left")
    p = (1.0 + exceed) / (1.0 + m)
    n_exc = min(TAIL_EXCEEDANCES, m // 10)
    far = (exceed < TAIL_MIN_EXCEED) & np.isfinite(s)
    if n_exc >= 20 and far.any():
        t = srt[m - n_exc - 1]
        scale, shape = _gpd_pwm(srt[m - n_exc :] - t)
        p[far] = np.maximum(n_exc / m * _gpd_survival(s[far] - t, scale, shape), np.finfo(np.float64).tiny)
    return p


def _gpd_pwm(y: np.ndarray) -> tuple[float, float]:
    """Scale and shape k of a generalized Pareto fit to sorted excesses y >= 0 (Hosking and
    Wallis's parametrisation: S(y) = (1 - k y / scale)^(1/k)). A light, bounded tail (k > 0)
    would give p = 0 beyond its end from a handful of values: it is taken as exponential (k = 0,
    scale the mean excess), the heavier and so the more cautious of the two."""
    n = y.size
    a0 = float(y.mean())
    a1 = float(np.mean((1.0 - (np.arange(1, n + 1) - 0.35) / n) * y))
    if a0 <= 0:
        return 1e-300, 0.0
    if a0 - 2 * a1 <= 0 or a0 / (a0 - 2 * a1) - 2 >= 0:
        return a0, 0.0
    return 2 * a0 * a1 / (a0 - 2 * a1), a0 / (a0 - 2 * a1) - 2


def _gpd_survival(y: np.ndarray, scale: float, shape: float) -> np.ndarray:
    y = np.maximum(y, 0.0)
    if abs(shape) < 1e-9:
        return np.exp(-y / scale)
    base = 1.0 - shape * y / scale
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(base > 0, np.power(np.maximum(base, 0.0), 1.0 / shape), 0.0)


def standardized_tail_p(
    observed: np.ndarray, mean: np.ndarray, sumsq: np.ndarray, draws: np.ndarray, kept: np.ndarray, n: int
) -> np.ndarray:
    """Tail p-values of every pair from its n permutation draws (their ``mean`` and ``sumsq``, the
    latter overwritten), pooled over pairs. A pair's observed value is standardized by the mean and
    standard deviation of its draws, z = (observed - mean) / sd, which grows without bound as the
    observed value leaves the null (so pairs stay ranked); each kept draw (``draws`` (n,
    len(kept)), the pairs ``kept`` by flat index) likewise by the other n - 1 draws of its pair.
    The standardized draws of all kept pairs are pooled into one null and each observed z gets
    :func:`tail_p` against it (the draws' z rest on one value fewer, so their tail is if anything
    heavier: cautious). A pair whose draws do not vary keeps (1 + #{draw >= observed}) / (1 + n)."""
    observed = np.asarray(observed, dtype=np.float64)
    mean = np.asarray(mean, dtype=np.float64)
    flat_total, flat_squares = np.ravel(mean)[kept] * n, np.ravel(sumsq)[kept]
    sd = sumsq  # in place: these arrays are as large as the test
    with np.errstate(invalid="ignore"):  # the copula's infinite diagonal
        sd /= n
        sd -= np.square(mean)
        np.maximum(sd, 0.0, out=sd)
        np.sqrt(sd, out=sd)
        varies = sd > 1e-9 * np.maximum(1.0, np.abs(mean))
        z = observed - mean
    np.divide(z, sd, out=z, where=varies)
    z[~varies] = np.nan
    del sd
    pooled = draws.astype(np.float64)  # (n, kept): each draw against the other n - 1 of its pair
    others_mean = flat_total - pooled
    others_mean /= n - 1
    others_sd = flat_squares - np.square(pooled)
    others_sd /= n - 1
    others_sd -= np.square(others_mean)
    np.maximum(others_sd, 0.0, out=others_sd)
    np.sqrt(others_sd, out=others_sd)
    pooled -= others_mean
    del others_mean
    ok = others_sd > 1e-9
    pooled = pooled[ok] / others_sd[ok]
    del others_sd, ok
    p = tail_p(z, pooled)
    del pooled, z
    still = ~varies
    p[still] = (1.0 + n * (observed[still] <= mean[still])) / (1.0 + n)
    return p
