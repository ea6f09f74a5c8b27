"""Edges fixed before the data: per-variable bin edges (or the copula's normal-score knots) from a
calibration sample, so that samples arriving in chunks are binned alike (:class:`pairmi.Accumulator`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _arrays
from .backends.cpu import CoreTotals, as_layers
from .settings import BINNED_ESTIMATORS, DEFAULT_BINS, Estimator, as_estimator, auto_bins

STREAM_ESTIMATORS = BINNED_ESTIMATORS + ("gaussian_copula",)
DEFAULT_KNOTS = 1000


def fit_edges(
    sample: Any,
    estimator: str | Estimator = "equal_width",
    bins: int | str | None = None,
    *,
    threads: int | None = None,
    nan_policy: str = "raise",
) -> np.ndarray:
    """Per-variable edges from a calibration sample, fixed before data arrive in chunks.

    Parameters
    ----------
    sample : array_like, shape (n, d) or (layers, n, d)
        Calibration samples (e.g. the first tokens of a corpus).
    estimator : {'equal_width', 'equal_frequency', 'gaussian_copula'}
        ``'equal_width'``: ``bins`` equal-width bins over each variable's [min, max] in the sample
        (later values beyond them fall in the end bins). ``'equal_frequency'``: the sample's
        percentiles, as ``np.percentile(x, np.linspace(0, 100, bins + 1))``. ``'gaussian_copula'``:
        the knots of each variable's normal-score map, its quantiles at k / (K + 1), k = 1..K
        (K = ``bins``, default ``min(n, 1000)``): a value's score is interpolated linearly between
        the knots' scores Phi^-1(k / (K + 1)), and is the end score beyond them. With K = n and no
        ties the scores of the sample itself are exactly those of ranks, Phi^-1(rank / (n + 1)).
    bins : int, optional
        Bins per variable (default 15; ``"auto"``: the rule of :func:`pairmi.mi_matrix` for the
        sample's size), or knots for the copula (2 to the number of samples).
    threads, nan_policy
        As in :func:`pairmi.mi_matrix`.

    Returns
    -------
    ndarray of float64, shape (d, bins + 1) or (layers, d, bins + 1); (…, K) knots for the copula
        Pass as ``edges=`` to :class:`Accumulator`, :func:`pairmi.mi_matrix` or
        :func:`pairmi.mi_layers`.

    Examples
    --------
    >>> import numpy as np, pairmi
    >>> rng = np.random.default_rng(0)
    >>> edges = pairmi.fit_edges(rng.normal(size=(1000, 4)), "equal_frequency", bins=8)
    >>> edges.shape
    (4, 9)
    """
    name, bins = fitting(estimator, bins)
    check_estimator(name)
    x, squeeze = as_layers(sample, "sample")
    x = _arrays.apply_nan_policy([x], ["sample"], nan_policy)[0]
    if name != "gaussian_copula":
        _arrays.check_ranges(x, "sample")
    edges = CoreTotals().fit(x, name, fitted_bins(name, bins, x.shape[1]), threads)
    return edges[0] if squeeze else edges


def fitting(estimator: str | Estimator, bins: int | str | None) -> tuple[str, Any]:
    """The estimator's name and the bins (or the copula's knots) edges are fitted with: an object's
    own bins, or the ``bins`` given with a name (None: the default)."""
    est = as_estimator(estimator, bins=bins)
    return est.name, getattr(est, "bins", None) if isinstance(estimator, Estimator) else bins


def fitted_bins(estimator: str, bins: Any, n: int) -> int:
    """Bins (or the copula's knots) of edges fitted on n samples: `bins`, checked, 'auto' resolved
    for these n samples (as mi_matrix resolves it), or the default."""
    if estimator != "gaussian_copula":
        return _arrays.check_bins(DEFAULT_BINS if bins is None else auto_bins(n) if bins == "auto" else bins, n)
    knots = min(n, DEFAULT_KNOTS) if bins is None else bins
    if isinstance(knots, bool) or not isinstance(knots, (int, np.integer)) or not 2 <= knots <= n:
        raise ValueError(
            f"the copula's knots (bins) must be an integer in [2, {n}]: quantiles of the {n}-sample "
            f"calibration sample (more add nothing), got {bins!r}"
        )
    return int(knots)


def check_estimator(estimator: str) -> None:
    if estimator not in STREAM_ESTIMATORS:
        raise ValueError(
            f"streaming supports the estimators {STREAM_ESTIMATORS}, not {estimator!r} "
            "(KSG has no statistics that add up over samples)"
        )
