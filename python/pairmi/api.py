"""Public entry points: mutual information of all pairs of variables, for one matrix or every layer,
with every estimator, bias corrections and permutation tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

import numpy as np
import numpy.typing as npt

from . import _arrays, _core
from .binned import BINNED_ESTIMATORS, Coded, auto_bins, binned_mi, code_layers, permutation_nulls
from .copula import copula_mi

ESTIMATORS = BINNED_ESTIMATORS + ("ksg", "gaussian_copula")
CORRECTIONS = (None, "miller_madow", "shuffle")
Progress = Optional[Callable[[int, int], None]]
Bins = Union[int, str]


@dataclass(frozen=True)
class _Settings:
    """Checked arguments shared by every entry point."""

    estimator: str
    bins: int
    k: int
    correction: str | None
    n_permutations: int
    seed: Any
    scale: float
    threads: int
    dtype: np.dtype


def _settings(n, estimator, bins, k, correction, n_permutations, seed, units, threads, dtype) -> _Settings:
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {CORRECTIONS}, got {correction!r}")
    binned = estimator in BINNED_ESTIMATORS
    if correction is not None and not binned:
        raise ValueError(f"correction={correction!r} applies to the binned estimators {BINNED_ESTIMATORS}, "
                         f"not {estimator!r}")
    if binned:
        bins = auto_bins(n) if bins == "auto" else _arrays.check_bins(bins, n)
    if estimator == "ksg":
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k < n:
            raise ValueError(f"k must be an integer in [1, n_samples - 1] = [1, {n - 1}], got {k!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise TypeError(f"seed must be an integer or None, got {seed!r}")
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, (int, np.integer)) or n_permutations < 1:
        raise ValueError(f"n_permutations must be a positive integer, got {n_permutations!r}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    return _Settings(estimator, bins if binned else 0, int(k), correction, int(n_permutations), seed,
                     _arrays.unit_scale(units), _arrays.resolve_threads(threads), dtype)


def _mi(x: np.ndarray, y: np.ndarray | None, s: _Settings, progress: Progress) -> np.ndarray:
    """MI of (layers, n, dx) x against itself (y None) or against (layers, n, dy) y."""
    shape = (x.shape[0], x.shape[2], x.shape[2] if y is None else y.shape[2])
    if s.estimator == "gaussian_copula":
        return (copula_mi(x.astype(np.float64), None if y is None else y.astype(np.float64)) * s.scale).astype(s.dtype)
    out = np.empty(shape, dtype=s.dtype)
    if s.estimator == "ksg":
        if y is not None and y.dtype != x.dtype:
            x, y = x.astype(np.float64), y.astype(np.float64)
        _core.ksg_mi(x, y, s.k, s.scale, out, s.threads, progress)
        return out
    mm = s.correction == "miller_madow"
    cx = code_layers(x, s.estimator, s.bins, s.threads, mm)
    cy = None if y is None else code_layers(y, s.estimator, s.bins, s.threads, mm)
    binned_mi(cx, cy, s.scale, out, s.threads, progress, mm)
    if s.correction == "shuffle":
        out -= _null_mean(cx, cy, s)
    return out


def _null_mean(cx: Coded, cy: Coded | None, s: _Settings) -> np.ndarray:
    """Mean MI over permutations, with a zero diagonal in the square case (entropies stay)."""
    total = None
    for null in permutation_nulls(cx, cy, s.n_permutations, s.seed, s.scale, np.float64, s.threads):
        total = null if total is None else total + null
    mean = total / s.n_permutations
    if cy is None:
        idx = np.arange(mean.shape[-1])
        mean[..., idx, idx] = 0.0
    return mean.astype(s.dtype)


def _inputs(X: Any, Y: Any) -> tuple[np.ndarray, np.ndarray | None]:
    x = _arrays.samples(X, "X", 2)[None]
    if Y is None:
        return x, None
    y = _arrays.samples(Y, "Y", 2)[None]
    if y.shape[1] != x.shape[1]:
        raise ValueError(f"X and Y must have the same number of samples (rows): {x.shape[1]} != {y.shape[1]}")
    return x, y


def mi_matrix(
    X: Any,
    Y: Any = None,
    *,
    estimator: str = "equal_width",
    bins: Bins = 15,
    k: int = 3,
    correction: str | None = None,
    n_permutations: int = 20,
    seed: Any = 0,
    units: str = "bits",
    threads: int | None = None,
    dtype: npt.DTypeLike = np.float64,
    progress: Progress = None,
) -> np.ndarray:
    """Mutual information between every pair of columns.

    Parameters
    ----------
    X : array_like, shape (n_samples, n_x)
        Samples in rows, variables in columns: numpy array or CPU torch tensor of any real dtype
        (float16/bfloat16/int are converted exactly). Must be finite, with at least 2 samples.
    Y : array_like, shape (n_samples, n_y), optional
        If given, MI of every column of X against every column of Y (same samples).
    estimator : {'equal_width', 'equal_frequency', 'ksg', 'gaussian_copula'}
        ``'equal_width'``: ``bins`` equal-width bins over each variable's [min, max], identical to
        ``np.histogram2d(x, y, bins)`` (last bin closed; a constant variable gets numpy's ±0.5
        range). ``'equal_frequency'``: edges ``np.percentile(x, np.linspace(0, 100, bins + 1))``,
        counted as ``np.histogram2d`` counts them; tied values give repeated edges and empty bins
        between them. The course code's ``np.linspace(0, 100, 15)`` edges are ``bins=14``.
        ``'ksg'``: Kraskov-Stögbauer-Grassberger (algorithm 1) with ``k`` neighbours, as
        scikit-learn's ``mutual_info_regression`` computes it (unit-variance scaling, max-norm,
        neighbours strictly inside the k-th distance, clipped at 0). Unlike scikit-learn, pairmi
        adds no random noise: results are deterministic, and tied values are counted as they are
        (with many duplicates the k-th distance can be 0 and the estimate is unreliable: jitter
        such data yourself). ``'gaussian_copula'``: ranks (ties averaged) mapped to normal scores,
        MI = -½ log(1 - ρ²) of their correlation; exact for Gaussian dependence, a lower bound
        otherwise.
    bins : int or 'auto'
        Bins per variable for the binned estimators, in [2, 255] and at most n_samples. ``'auto'``:
        ``round(sqrt(1 + sqrt(1 + 24 n)) / sqrt(2))`` (Hacine-Gharbi et al., Pattern Recognition
        Letters 33, 2012, with ρ = 0): 5 bins at n = 90, 13 at n = 4096.
    k : int
        Neighbours for ``'ksg'`` (default 3, as scikit-learn), in [1, n_samples - 1].
    correction : {None, 'miller_madow', 'shuffle'}
        Bias correction of the binned estimators. ``'miller_madow'``: each entropy gets
        + (m - 1) / (2 n) for its m non-empty cells. ``'shuffle'``: subtract each pair's mean MI
        over ``n_permutations`` shufflings of the samples (the diagonal keeps the entropies).
        Corrected values can be negative; plug-in values are clipped at 0.
    n_permutations : int
        Shufflings for ``correction='shuffle'``.
    seed : int or None
        Seed of the shufflings: equal seeds give equal results (None: fresh randomness). Every
        layer draws its own permutations from this seed.
    units : {'bits', 'nats'}
        Units of the result (log base 2 or e).
    threads : int, optional
        Threads for the core; default: OMP_NUM_THREADS if set, else all usable cores. Results are
        identical for any thread count.
    dtype : {float64, float32}
        dtype of the result; the core always accumulates in float64.
    progress : callable(done, total), optional
        Called between tiles of pairs with the approximate tiles finished and their total.
        Ctrl-C interrupts a running computation within about one tile.

    Returns
    -------
    ndarray, shape (n_x, n_x) or (n_x, n_y)
        MI in ``units``. For ``mi_matrix(X)`` it is symmetric; its diagonal holds H(X_i) for the
        binned estimators (the MI of a variable with itself) and +inf for ``'ksg'`` and
        ``'gaussian_copula'`` (a continuous variable with itself).

    Notes
    -----
    Plug-in binned MI is biased upwards when samples are few for the cells: with 90 samples and
    15x15 bins, two independent Gaussian variables score about 1.1 bits (equal-width) and 1.4 bits
    (equal-frequency). Use a correction, ``mi_test``, or KSG / Gaussian copula before reading
    meaning into such values. Values are converted to float64 before binning, so float32 data is
    binned as ``np.histogram2d`` bins ``x.astype(float64)``.

    Examples
    --------
    >>> import numpy as np, pairmi
    >>> X = np.random.default_rng(0).normal(size=(500, 4))
    >>> pairmi.mi_matrix(X, bins=8).shape
    (4, 4)
    """
    x, y = _inputs(X, Y)
    s = _settings(x.shape[1], estimator, bins, k, correction, n_permutations, seed, units, threads, dtype)
    return _mi(x, y, s, progress)[0]


def mi_layers(
    H: Any,
    *,
    dims: Any = None,
    estimator: str = "equal_width",
    bins: Bins = 15,
    k: int = 3,
    correction: str | None = None,
    n_permutations: int = 20,
    seed: Any = 0,
    units: str = "bits",
    threads: int | None = None,
    dtype: npt.DTypeLike = np.float32,
    progress: Progress = None,
) -> np.ndarray:
    """Mutual information between every pair of variables, for every layer, in one call.

    Parameters
    ----------
    H : array_like, shape (n_layers, n_samples, n_variables)
        Stacked hidden states: layer, token, dimension (e.g. ``hidden_states`` of a transformer,
        index 0 = embedding output).
    dims : slice or sequence of int, optional
        Variables to keep (e.g. ``slice(0, None, 2)`` for every other dimension); default all.
    estimator, bins, k, correction, n_permutations, seed, units, threads, progress
        As in :func:`mi_matrix`.
    dtype : {float32, float64}
        dtype of the result (float32 by default: 13 x 768 x 768 is 30 MB).

    Returns
    -------
    ndarray, shape (n_layers, d, d)
        ``mi_matrix(H[l][:, dims])`` for every layer l, in ``units``.
    """
    h = _arrays.to_numpy(H, "H")
    if h.ndim != 3:
        raise ValueError(f"H must be 3-d (layers, samples, variables), got shape {h.shape}")
    if dims is not None:
        h = h[:, :, _dims_index(dims, h.shape[2])]
    h = _arrays.samples(h, "H", 3)
    s = _settings(h.shape[1], estimator, bins, k, correction, n_permutations, seed, units, threads, dtype)
    return _mi(h, None, s, progress)


def null_mi(
    X: Any,
    Y: Any = None,
    *,
    n_permutations: int = 100,
    seed: Any = 0,
    estimator: str = "equal_width",
    bins: Bins = 15,
    units: str = "bits",
    threads: int | None = None,
    dtype: npt.DTypeLike = np.float32,
) -> np.ndarray:
    """MI of every pair under independence: the samples shuffled, ``n_permutations`` times.

    Every column of X is permuted independently (or Y's columns, with Y), so each pair is scored
    on data with the same marginals and no dependence. The binned codes are computed once and
    reused: each permutation costs one kernel pass.

    Parameters
    ----------
    X, Y, estimator, bins, units, threads
        As in :func:`mi_matrix` (binned estimators only).
    n_permutations : int
        Number of shufflings.
    seed : int or None
        Equal seeds give equal nulls (None: fresh randomness).
    dtype : {float32, float64}
        dtype of the result.

    Returns
    -------
    ndarray, shape (n_permutations, n_x, n_x or n_y)
        The null distribution of each pair (diagonal: the entropies, unchanged by shuffling).
    """
    x, y = _inputs(X, Y)
    s = _settings(x.shape[1], estimator, bins, 3, None, n_permutations, seed, units, threads, dtype)
    if s.estimator not in BINNED_ESTIMATORS:
        raise ValueError(f"null_mi supports the binned estimators {BINNED_ESTIMATORS}, not {estimator!r}")
    cx = code_layers(x, s.estimator, s.bins, s.threads)
    cy = None if y is None else code_layers(y, s.estimator, s.bins, s.threads)
    nulls = permutation_nulls(cx, cy, s.n_permutations, s.seed, s.scale, s.dtype, s.threads)
    return np.stack([null[0] for null in nulls])


@dataclass(frozen=True)
class MITest:
    """Result of :func:`mi_test`.

    Attributes
    ----------
    mi : ndarray
        Observed plug-in MI of every pair.
    null_mean : ndarray
        Mean MI of each pair over the shufflings (the bias to expect under independence).
    p_value : ndarray
        Permutation p-value of each pair, ``(1 + #{null >= observed}) / (1 + n_permutations)``;
        NaN on the diagonal of a square test.
    n_permutations : int
    units : str
    """

    mi: np.ndarray
    null_mean: np.ndarray
    p_value: np.ndarray
    n_permutations: int
    units: str

    @property
    def corrected(self) -> np.ndarray:
        """Shuffle-corrected MI: observed minus null mean."""
        return self.mi - self.null_mean


def mi_test(
    X: Any,
    Y: Any = None,
    *,
    n_permutations: int = 100,
    seed: Any = 0,
    estimator: str = "equal_width",
    bins: Bins = 15,
    units: str = "bits",
    threads: int | None = None,
) -> MITest:
    """Permutation test of every pair: observed MI, null mean and p-value, reproducible from `seed`.

    Parameters are those of :func:`null_mi`. The smallest p-value reachable is
    ``1 / (n_permutations + 1)``: use many permutations, and correct for the number of pairs tested.
    """
    x, y = _inputs(X, Y)
    s = _settings(x.shape[1], estimator, bins, 3, None, n_permutations, seed, units, threads, np.float64)
    if s.estimator not in BINNED_ESTIMATORS:
        raise ValueError(f"mi_test supports the binned estimators {BINNED_ESTIMATORS}, not {estimator!r}")
    cx = code_layers(x, s.estimator, s.bins, s.threads)
    cy = None if y is None else code_layers(y, s.estimator, s.bins, s.threads)
    observed = binned_mi(cx, cy, s.scale, np.empty((1, x.shape[2], x.shape[2] if y is None else y.shape[2])), s.threads)[0]
    total = np.zeros_like(observed)
    exceed = np.zeros(observed.shape, dtype=np.int64)
    tol = 1e-12 * max(1.0, s.scale)  # equal histograms give equal MI up to summation order
    for null in permutation_nulls(cx, cy, s.n_permutations, s.seed, s.scale, np.float64, s.threads):
        total += null[0]
        exceed += null[0] >= observed - tol
    p = (1.0 + exceed) / (1.0 + s.n_permutations)
    if y is None:
        np.fill_diagonal(p, np.nan)
    return MITest(observed, total / s.n_permutations, p, s.n_permutations, units)


def _dims_index(dims: Any, d: int) -> slice | np.ndarray:
    """Validate a `dims` selection of d variables."""
    if isinstance(dims, slice):
        return dims
    idx = np.asarray(dims)
    if idx.ndim != 1 or idx.dtype.kind not in "iu":
        raise ValueError("dims must be a slice or a 1-d sequence of integer indices")
    if idx.size and (idx.min() < -d or idx.max() >= d):
        raise ValueError(f"dims indices must be in [-{d}, {d}), got min {idx.min()} max {idx.max()}")
    return idx
