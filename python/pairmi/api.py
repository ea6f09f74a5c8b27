"""Public entry points: mutual information of all pairs of variables, for one matrix or every layer."""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np
import numpy.typing as npt

from . import _arrays, _core
from .binned import BINNED_ESTIMATORS, code_layers

Progress = Optional[Callable[[int, int], None]]


def _binned_mi(
    x: np.ndarray,
    y: np.ndarray | None,
    estimator: str,
    bins: Any,
    units: str,
    threads: int | None,
    dtype: npt.DTypeLike,
    progress: Progress,
) -> np.ndarray:
    """MI of (layers, n, dx) x against itself (y None) or against (layers, n, dy) y."""
    if estimator not in BINNED_ESTIMATORS:
        raise ValueError(f"estimator must be one of {BINNED_ESTIMATORS}, got {estimator!r}")
    bins = _arrays.check_bins(bins, x.shape[1])
    scale = _arrays.unit_scale(units)
    nthreads = _arrays.resolve_threads(threads)
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    cx = code_layers(x, estimator, bins, nthreads)
    cy = None if y is None else code_layers(y, estimator, bins, nthreads)
    out = np.empty((x.shape[0], x.shape[2], x.shape[2] if y is None else y.shape[2]), dtype=dtype)
    _core.binned_mi(
        cx.codes,
        cx.entropy,
        None if cy is None else cy.codes,
        None if cy is None else cy.entropy,
        bins,
        scale,
        out,
        nthreads,
        progress,
    )
    return out


def mi_matrix(
    X: Any,
    Y: Any = None,
    *,
    estimator: str = "equal_width",
    bins: int = 15,
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
    estimator : {'equal_width', 'equal_frequency'}
        ``'equal_width'``: ``bins`` equal-width bins over each variable's [min, max], identical to
        ``np.histogram2d(x, y, bins)`` (last bin closed; a constant variable gets numpy's ±0.5
        range). ``'equal_frequency'``: edges ``np.percentile(x, np.linspace(0, 100, bins + 1))``,
        counted as ``np.histogram2d`` counts them; tied values give repeated edges and empty bins
        between them. The course code's ``np.linspace(0, 100, 15)`` edges are ``bins=14``.
    bins : int
        Bins per variable, in [2, 255] and at most n_samples.
    units : {'bits', 'nats'}
        Units of the result (log base 2 or e).
    threads : int, optional
        Threads for the core; default: OMP_NUM_THREADS if set, else all usable cores. Results are
        identical for any thread count.
    dtype : {float64, float32}
        dtype of the result; the core always accumulates in float64.
    progress : callable(done, total), optional
        Called between tiles of pairs with the approximate tiles finished and their total.

    Returns
    -------
    ndarray, shape (n_x, n_x) or (n_x, n_y)
        Plug-in MI ``H(x) + H(y) - H(x, y)`` in ``units``. For ``mi_matrix(X)`` it is symmetric and
        its diagonal holds H(X_i), the MI of a variable with itself.

    Notes
    -----
    Plug-in binned MI is biased upwards when samples are few for the cells: with 90 samples and
    15x15 bins, two independent Gaussian variables score about 1 bit. Compare against a null
    (shuffled samples) before reading meaning into small values. Values are converted to float64
    before binning, so float32 data is binned as ``np.histogram2d`` bins ``x.astype(float64)``.

    Examples
    --------
    >>> import numpy as np, pairmi
    >>> X = np.random.default_rng(0).normal(size=(500, 4))
    >>> pairmi.mi_matrix(X, bins=8).shape
    (4, 4)
    """
    x = _arrays.samples(X, "X", 2)[None]
    y = None
    if Y is not None:
        y = _arrays.samples(Y, "Y", 2)[None]
        if y.shape[1] != x.shape[1]:
            raise ValueError(f"X and Y must have the same number of samples (rows): {x.shape[1]} != {y.shape[1]}")
    return _binned_mi(x, y, estimator, bins, units, threads, dtype, progress)[0]


def mi_layers(
    H: Any,
    *,
    dims: Any = None,
    estimator: str = "equal_width",
    bins: int = 15,
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
    estimator, bins, units, threads, progress
        As in :func:`mi_matrix`.
    dtype : {float32, float64}
        dtype of the result (float32 by default: 13 x 768 x 768 is 30 MB).

    Returns
    -------
    ndarray, shape (n_layers, d, d)
        ``mi_matrix(H[l][:, dims])`` for every layer l, in ``units``; diagonals hold entropies.
    """
    h = _arrays.to_numpy(H, "H")
    if h.ndim != 3:
        raise ValueError(f"H must be 3-d (layers, samples, variables), got shape {h.shape}")
    if dims is not None:
        h = h[:, :, _dims_index(dims, h.shape[2])]
    return _binned_mi(_arrays.samples(h, "H", 3), None, estimator, bins, units, threads, dtype, progress)


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
