"""Each variable's strongest partners, the pairs above a threshold and per-variable summaries, from
blocks of the MI matrix: memory set by the block and k, never by D x D.

A block's rows are summarised into a :class:`RowPartial` (each row's best k candidates, its sum and
count above the threshold, the pairs above it); partials of the same rows from other blocks of
columns (tiles, e.g. on Dask workers) merge into the same answer. Order: larger MI first, ties by
the lower index, so the result equals a stable argsort of the dense matrix.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _arrays, _dispatch
from ._blocks import Blocks
from ._ksg_ties import ksg_inputs
from .settings import BINNED_ESTIMATORS, KSG, Estimator, Settings, as_estimator

TOPK_ESTIMATORS = BINNED_ESTIMATORS + ("gaussian_copula", "ksg")
DEFAULT_PARTNERS = 10  # partners per variable of mi_topk
# Bytes of one block of MI rows (float64) and its selection temporaries.
BLOCK_BYTES = 32 << 20


@dataclass(frozen=True)
class TopK:
    """Result of :func:`mi_topk`.

    Attributes
    ----------
    indices : ndarray of int64, shape (d, k)
        Each variable's k strongest partners, strongest first (equal MI: lower index first).
    values : ndarray of float64, shape (d, k)
        Their MI, in ``units``.
    mean : ndarray of float64, shape (d,)
        Each variable's mean MI with all the others.
    above : ndarray of int64, shape (d,), or None
        How many partners each variable has at or above ``threshold`` (None without one).
    pairs : tuple of ndarrays (i, j, mi), or None
        Every pair i < j at or above ``threshold``, as a sparse table sorted by (i, j).
    threshold : float or None
    units : str
    estimator : str
    """

    indices: np.ndarray
    values: np.ndarray
    mean: np.ndarray
    above: np.ndarray | None
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    threshold: float | None
    units: str
    estimator: str

    def __repr__(self) -> str:
        d, k = self.indices.shape
        above = (
            ""
            if self.threshold is None
            else f", threshold={self.threshold:g} ({len(self.pairs[0]) if self.pairs else 0:,} pairs)"
        )
        return f"TopK({d:,} variables x {k} partners, estimator={self.estimator!r}, units={self.units!r}{above})"

    @property
    def max_partner(self) -> np.ndarray:
        """Each variable's strongest partner (the first column of ``indices``)."""
        return self.indices[:, 0]

    @property
    def max_mi(self) -> np.ndarray:
        """MI with the strongest partner."""
        return self.values[:, 0]


@dataclass
class RowPartial:
    """Summary of rows [row0, row0 + r) of the MI matrix over some of its columns."""

    row0: int
    indices: np.ndarray  # (r, m) candidate partners, -1 where none
    values: np.ndarray  # (r, m), -inf where none
    total: np.ndarray  # (r,) sum of MI over the columns seen, the variable itself left out
    seen: np.ndarray  # (r,) columns seen, the variable itself left out
    above: np.ndarray | None  # (r,) partners at or above the threshold
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None  # (i, j, mi) with i < j


def summarize_block(values: np.ndarray, row0: int, col0: int, k: int, threshold: float | None) -> RowPartial:
    """Partial of the block values (r, c) of rows row0.. and columns col0.. (float64; modified:
    the variable itself is set to -inf)."""
    r, c = values.shape
    rows = np.arange(row0, row0 + r)
    cols = np.arange(col0, col0 + c)
    own = rows[:, None] == cols[None, :]
    values[own] = 0.0
    total = values.sum(axis=1)
    seen = np.full(r, c, dtype=np.int64) - own.sum(axis=1)
    above = pairs = None
    if threshold is not None:
        hit = (values >= threshold) & ~own
        above = hit.sum(axis=1)
        upper = hit & (cols[None, :] > rows[:, None])
        i, j = np.nonzero(upper)
        pairs = (rows[i], cols[j], values[i, j].copy())
    values[own] = -np.inf
    idx, val = _best(values, min(k, c), col0)
    return RowPartial(row0, idx, val, total, seen, above, pairs)


def merge_partials(parts: list[RowPartial], k: int) -> RowPartial:
    """One partial of the same rows from partials over other columns."""
    first = parts[0]
    idx = np.concatenate([p.indices for p in parts], axis=1)
    val = np.concatenate([p.values for p in parts], axis=1)
    idx, val = _ordered(idx, val, min(k, idx.shape[1]))
    above = None if first.above is None else np.sum([p.above for p in parts if p.above is not None], axis=0)
    pairs: Any = None
    if first.pairs is not None:
        pairs = tuple(np.concatenate([p.pairs[n] for p in parts]) for n in range(3))  # type: ignore[index]
    total = np.sum([p.total for p in parts], axis=0)
    return RowPartial(first.row0, idx, val, total, np.sum([p.seen for p in parts], axis=0), above, pairs)


def finish(parts: list[RowPartial], d: int, k: int, threshold: float | None, units: str, estimator: str) -> TopK:
    """The TopK of d variables from one complete partial per block of rows (any order)."""
    parts = sorted(parts, key=lambda p: p.row0)
    if sum(p.indices.shape[0] for p in parts) != d:
        raise ValueError("the partials do not cover every variable once")
    indices = np.concatenate([p.indices[:, :k] for p in parts])
    values = np.concatenate([p.values[:, :k] for p in parts])
    mean = np.concatenate([p.total / np.maximum(p.seen, 1) for p in parts])
    above = pairs = None
    if threshold is not None:
        above = np.concatenate([p.above for p in parts])
        i, j, v = (np.concatenate([p.pairs[n] for p in parts]) for n in range(3))  # type: ignore[index]
        order = np.lexsort((j, i))
        pairs = (i[order], j[order], v[order])
    return TopK(indices, values, mean, above, pairs, threshold, units, estimator)


def _best(values: np.ndarray, k: int, col0: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k largest values (ties: lower column first) as (global column indices, values),
    best first; k-th largest found by a partition, so a row costs O(c), not O(c log c)."""
    r, c = values.shape
    if k == 0:
        return np.zeros((r, 0), dtype=np.int64), np.zeros((r, 0))
    kth = np.partition(values, c - k, axis=1)[:, c - k]
    greater = values > kth[:, None]
    equal = values == kth[:, None]
    need = k - greater.sum(axis=1)
    take = greater | (equal & (np.cumsum(equal, axis=1) <= need[:, None]))
    cols = np.nonzero(take)[1].reshape(r, k)  # by row, then by column: exactly k a row
    idx, val = _ordered(cols + col0, np.take_along_axis(values, cols, axis=1), k)
    idx[~np.isfinite(val) & (val < 0)] = -1  # the variable itself, where a block has fewer than k others
    return idx, val


def _ordered(idx: np.ndarray, val: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The first k of each row by larger value, then lower index (-1, no candidate, last)."""
    key = np.where(idx < 0, np.iinfo(np.int64).max, idx)
    order = np.lexsort((key, -val), axis=1)[:, :k]
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(val, order, axis=1)


def mi_topk(
    X: Any,
    n_partners: int | None = None,
    *,
    k: int | None = None,
    estimator: str | Estimator = "equal_width",
    bins: int | str | None = None,
    threshold: float | None = None,
    correction: str | None = None,
    units: str = "bits",
    threads: int | None = None,
    nan_policy: str = "raise",
    n_neighbors: int | None = None,
    progress: Any = None,
) -> TopK:
    """Each variable's k strongest partners, without ever holding the D x D matrix.

    Blocks of rows of the MI matrix (about BLOCK_BYTES each) are computed against all variables
    and reduced at once to each row's best k, its mean, and (with ``threshold``) the pairs at or
    above it. For many variables and few samples (1,024 x 50,000 with the copula: 10 GB as a dense
    float32 matrix) memory stays at the input, its prepared form (codes or normal scores) and one
    block.

    Parameters
    ----------
    X : array_like, shape (n_samples, n_variables)
    n_partners : int
        Partners per variable, 1 <= n_partners < n_variables (default 10).
    k : int, optional
        Deprecated alias of ``n_partners`` (``k`` is KSG's neighbours everywhere else).
    estimator : {'equal_width', 'equal_frequency', 'gaussian_copula', 'ksg'}
    bins, correction, units, threads, nan_policy
        As in :func:`pairmi.mi_matrix` (``correction``: None or 'miller_madow').
    threshold : float, optional
        Also return every pair with MI at or above it (in ``units``), and each variable's count.
    n_neighbors : int
        KSG's k.
    progress : callable, optional
        ``progress(done, total)`` after each block of rows.

    Returns
    -------
    TopK
        ``indices`` and ``values`` (d, k), best first, ties by lower index (the order of
        ``np.argsort(-mi, kind='stable')`` of each row of the dense matrix, the variable itself
        left out); ``mean``; with a threshold ``above`` and ``pairs`` (i, j, mi).

    Examples
    --------
    >>> import numpy as np, pairmi
    >>> X = np.random.default_rng(0).normal(size=(500, 6))
    >>> X[:, 1] += X[:, 0]
    >>> top = pairmi.mi_topk(X, n_partners=2, estimator="gaussian_copula")
    >>> int(top.max_partner[0]), top.indices.shape
    (1, (6, 2))
    """
    if n_neighbors is not None and (
        isinstance(n_neighbors, bool) or not isinstance(n_neighbors, (int, np.integer)) or n_neighbors < 1
    ):  # named here: the estimator object below would call it k, which is the partners here
        raise ValueError(f"n_neighbors (KSG's neighbours) must be a positive integer, got {n_neighbors!r}")
    _arrays.check_progress(progress)
    k = _partners(n_partners, k)
    est = as_estimator(estimator, bins=bins, k=n_neighbors, correction=correction)
    if est.name not in TOPK_ESTIMATORS:
        raise ValueError(f"estimator must be one of {TOPK_ESTIMATORS}, got {est.name!r}")
    correction = getattr(est, "correction", None)
    if correction not in (None, "miller_madow"):
        raise ValueError(f"mi_topk takes correction=None or 'miller_madow' (binned), not {correction!r}")
    x, _ = _dispatch.inputs(X, None, nan_policy)
    n, d = x.shape[1:]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k < d:
        raise ValueError(f"n_partners must be an integer in [1, n_variables - 1] = [1, {d - 1}], got {k!r}")
    if threshold is not None and not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    if isinstance(est, KSG) and not est.k < n:
        raise ValueError(f"n_neighbors must be an integer in [1, {n - 1}], got {est.k!r}")
    s = Settings.resolve(n, est, units=units, threads=threads)
    if s.name != "gaussian_copula":
        _dispatch.check_ranges(x, None)
    if s.name == "ksg":  # the seeded tie-breaking noise of a KSG(noise=...) object, as mi_matrix's (seed 0)
        x, _ = ksg_inputs(x, None, s)
    x = x[0]
    blocks = Blocks(x, None, s)
    step = int(max(1, min(d, BLOCK_BYTES // (8 * 4 * d))))
    parts = []
    n_blocks = -(-d // step)
    for nb, r0 in enumerate(range(0, d, step)):
        r1 = min(d, r0 + step)
        parts.append(summarize_block(blocks.rows(r0, r1, 0, d), r0, 0, int(k), threshold))
        if progress is not None:
            progress(nb + 1, n_blocks)
    return finish(parts, d, int(k), threshold, units, s.name)


def _partners(n_partners: int | None, k: int | None) -> Any:
    """n_partners, or the deprecated k (with a warning); 10 when neither is given."""
    if k is None:
        return DEFAULT_PARTNERS if n_partners is None else n_partners
    if n_partners is not None:
        raise TypeError("pass n_partners (k is its deprecated alias), not both")
    warnings.warn(
        "mi_topk(k=) is deprecated and will be removed in the next release: pass n_partners= "
        "(k means KSG's neighbours everywhere else)",
        DeprecationWarning,
        stacklevel=3,
    )
    return k
