"""Nulls and multiple testing for all-pairs MI: sample reorderings (shuffles, rotations within
segments), one shared null where the null depends only on n, and false discovery rates."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

NULLS = ("shuffle", "rotation", "shared")
# Estimators whose null distribution, for variables without tied values, depends on the number of
# samples (and bins) alone: they see only ranks.
SHARED_NULL_ESTIMATORS = ("equal_frequency", "gaussian_copula")
FDR_METHODS = ("bh", "by")


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


class Rotations:
    """Circular shifts of each variable's samples within each segment, by a random offset per
    variable and segment (never 0 in a segment of 2 or more samples): each variable keeps its own
    order and autocorrelation, and its alignment with every other variable is broken."""

    def __init__(self, n: int, segments: Sequence[int] | None):
        starts = segment_starts(segments, n)
        lengths = np.diff(np.append(starts, n))
        self.segment = np.repeat(np.arange(starts.size), lengths)  # segment of each sample
        self.start = starts[self.segment]
        self.length = lengths[self.segment]
        self.position = np.arange(n) - self.start
        self.lengths = lengths

    def indices(self, rng: np.random.Generator, d: int) -> np.ndarray:
        """(d, n) sample indices: row v is variable v's rotated order."""
        span = np.maximum(self.lengths - 1, 0)
        offsets = np.where(self.lengths > 1, 1 + np.floor(rng.random((d, self.lengths.size)) * span), 0).astype(np.int64)
        return self.start + (self.position + offsets[:, self.segment]) % self.length

    def __call__(self, rng: np.random.Generator, rows: np.ndarray) -> np.ndarray:
        """rows (d, n) with each row's samples rotated."""
        return np.take_along_axis(rows, self.indices(rng, rows.shape[0]), axis=1)


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


def upper_pairs(p: np.ndarray) -> tuple[np.ndarray, ...]:
    """Index of each pair once in a square matrix (i < j); every entry of a rectangular one."""
    if p.ndim == 2 and p.shape[0] == p.shape[1] and np.isnan(np.diag(p)).all():
        return np.triu_indices(p.shape[0], k=1)
    return tuple(np.indices(p.shape).reshape(p.ndim, -1))


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
