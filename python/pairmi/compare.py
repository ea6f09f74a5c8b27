"""One pair, every estimator: values side by side with their shuffle null, the analytic Gaussian MI,
and each estimator's bias against the number of samples (the theory lesson's numbers)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _arrays
from .api import mi_matrix
from .settings import BINNED_ESTIMATORS, DEFAULT_BINS, DEFAULT_K, ESTIMATORS


def gaussian_mi(rho: float, units: str = "bits") -> float:
    """MI of two jointly Gaussian variables with correlation rho: -1/2 log(1 - rho^2), in `units`.

    >>> round(gaussian_mi(0.7), 3)
    0.486
    """
    if not -1.0 < rho < 1.0:
        raise ValueError(f"rho must be in (-1, 1), got {rho!r}")
    return float(-0.5 * np.log1p(-rho * rho) * _arrays.unit_scale(units))


@dataclass(frozen=True)
class Comparison:
    """Every estimator's MI of one pair, from :func:`compare`.

    Attributes
    ----------
    mi : dict of str to float
        Each estimator's value (plug-in for the binned ones).
    null : dict of str to float
        Each estimator's mean over ``n_permutations`` shufflings of y: its value under independence.
    analytic : float or None
        -1/2 log(1 - r^2) of the sample's Pearson correlation r, when the data were said to be
        Gaussian.
    n, units, bins, k
    """

    mi: dict[str, float]
    null: dict[str, float]
    analytic: float | None
    n: int
    units: str
    bins: int
    k: int

    @property
    def corrected(self) -> dict[str, float]:
        """Each value minus its shuffle null."""
        return {e: self.mi[e] - self.null[e] for e in self.mi}

    def __str__(self) -> str:
        head = f"{'estimator':>16} {'MI':>8} {'null':>8} {'MI - null':>10}   ({self.units}, {self.n:,} samples)"
        rows = [f"{e:>16} {self.mi[e]:8.3f} {self.null[e]:8.3f} {self.corrected[e]:10.3f}" for e in self.mi]
        if self.analytic is not None:
            rows.append(f"{'Gaussian, exact':>16} {self.analytic:8.3f}   -1/2 log2(1 - r^2) of the sample's r")
        return "\n".join([head] + rows)


def compare(
    x: Any,
    y: Any,
    *,
    estimators: Sequence[str] = ESTIMATORS,
    bins: int = DEFAULT_BINS,
    k: int = DEFAULT_K,
    n_permutations: int = 100,
    seed: int | None = 0,
    gaussian: bool = False,
    units: str = "bits",
    threads: int | None = None,
) -> Comparison:
    """The MI of one pair by every estimator, with each one's shuffle null.

    Parameters
    ----------
    x, y : array_like, shape (n,)
        The two variables' samples.
    estimators : sequence of str
        Default all: ``'equal_width'``, ``'equal_frequency'`` (``bins`` bins), ``'ksg'`` (``k``
        neighbours), ``'gaussian_copula'``.
    n_permutations, seed
        Shufflings of y for the null (0 for none: the null is then reported as NaN).
    gaussian : bool
        The data are Gaussian: also report -1/2 log(1 - r^2) of their Pearson correlation, the MI
        that a Gaussian pair with this correlation has.
    units, threads
        As in :func:`pairmi.mi_matrix`.

    Returns
    -------
    Comparison
        ``print(result)`` shows a table.

    Examples
    --------
    >>> import numpy as np, pairmi
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=200)
    >>> y = x + rng.normal(size=200)
    >>> c = pairmi.compare(x, y, gaussian=True, n_permutations=20)
    >>> sorted(c.mi)
    ['equal_frequency', 'equal_width', 'gaussian_copula', 'ksg']
    """
    xs = _vector(x, "x")
    ys = _vector(y, "y")
    if xs.size != ys.size:
        raise ValueError(f"x and y must have the same number of samples: {xs.size} != {ys.size}")
    unknown = [e for e in estimators if e not in ESTIMATORS]
    if unknown or not estimators:
        raise ValueError(f"estimators must be among {ESTIMATORS}, got {list(estimators)}")
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, (int, np.integer)) or n_permutations < 0:
        raise ValueError(f"n_permutations must be an integer >= 0, got {n_permutations!r}")
    rng = np.random.default_rng(seed)
    # Every shuffling of y is one column: one call scores them all against x.
    shuffled = np.stack([rng.permutation(ys) for _ in range(n_permutations)], axis=1) if n_permutations else None
    mi, null = {}, {}
    for e in estimators:
        kw: dict[str, Any] = {"bins": bins} if e in BINNED_ESTIMATORS else {"k": k} if e == "ksg" else {}
        mi[e] = float(mi_matrix(xs[:, None], ys[:, None], estimator=e, units=units, threads=threads, **kw)[0, 0])
        null[e] = (
            float(mi_matrix(xs[:, None], shuffled, estimator=e, units=units, threads=threads, **kw).mean())
            if shuffled is not None
            else float("nan")
        )
    analytic = gaussian_mi(float(np.corrcoef(xs, ys)[0, 1]), units) if gaussian else None
    return Comparison(mi, null, analytic, xs.size, units, bins, k)


@dataclass(frozen=True)
class BiasCurve:
    """Mean estimates of Gaussian pairs against the number of samples, from :func:`bias_curve`.

    Attributes
    ----------
    sizes : ndarray of int
    mean, std : dict of str to ndarray
        Per estimator (and ``'<binned>, shuffle-corrected'``), over the draws at each size.
    truth : float
        -1/2 log(1 - rho^2).
    rho, draws, bins, k, units
    """

    sizes: np.ndarray
    mean: dict[str, np.ndarray]
    std: dict[str, np.ndarray]
    truth: float
    rho: float
    draws: int
    bins: int
    k: int
    units: str


def bias_curve(
    rho: float = 0.7,
    sizes: Sequence[int] = (50, 100, 200, 500, 1000, 2000, 5000, 10000),
    *,
    draws: int = 10,
    estimators: Sequence[str] = ESTIMATORS,
    corrected: Sequence[str] = ("equal_frequency",),
    bins: int = DEFAULT_BINS,
    k: int = DEFAULT_K,
    n_permutations: int = 20,
    seed: int = 0,
    units: str = "bits",
    threads: int | None = None,
) -> BiasCurve:
    """Each estimator's mean estimate for Gaussian pairs of correlation rho, at each sample size.

    ``draws`` independent pairs per size (x ~ N(0, 1), y = rho x + sqrt(1 - rho^2) N(0, 1));
    the binned estimators in ``corrected`` are also reported minus their shuffle null
    (``n_permutations`` shufflings). The truth is -1/2 log(1 - rho^2).

    Examples
    --------
    >>> import pairmi
    >>> curve = pairmi.bias_curve(0.7, sizes=(100, 1000), draws=2, n_permutations=5)
    >>> round(curve.truth, 3), curve.mean["ksg"].shape
    (0.486, (2,))
    """
    truth = gaussian_mi(rho, units)
    if draws < 1 or not sizes or min(sizes) < max(bins, k + 1, 2):
        raise ValueError(f"draws must be >= 1 and every size at least max(bins, k + 1) = {max(bins, k + 1)}")
    if not set(corrected) <= set(estimators) & set(BINNED_ESTIMATORS):
        raise ValueError(f"corrected must name binned estimators among {list(estimators)}, got {list(corrected)}")
    rng = np.random.default_rng(seed)
    names = list(estimators) + [f"{e}, shuffle-corrected" for e in corrected]
    values = {name: np.empty((len(sizes), draws)) for name in names}
    for s, n in enumerate(sizes):
        for d in range(draws):
            x = rng.normal(size=n)
            y = rho * x + np.sqrt(1.0 - rho * rho) * rng.normal(size=n)
            c = compare(x, y, estimators=estimators, bins=bins, k=k, n_permutations=0, units=units, threads=threads)
            for e in estimators:
                values[e][s, d] = c.mi[e]
            if corrected:  # nulls only where they are subtracted
                c = compare(
                    x,
                    y,
                    estimators=corrected,
                    bins=bins,
                    seed=int(rng.integers(2**31)),
                    n_permutations=n_permutations,
                    units=units,
                    threads=threads,
                )
                for e in corrected:
                    values[f"{e}, shuffle-corrected"][s, d] = c.corrected[e]
    return BiasCurve(
        np.asarray(sizes),
        {n: v.mean(axis=1) for n, v in values.items()},
        {n: v.std(axis=1) for n, v in values.items()},
        truth,
        rho,
        draws,
        bins,
        k,
        units,
    )


def _vector(data: Any, name: str) -> np.ndarray:
    arr = _arrays.to_numpy(data, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-d (samples), got shape {arr.shape}")
    return np.asarray(arr, dtype=np.float64)
