"""Public entry points: mutual information of all pairs of variables, for one matrix
(:func:`mi_matrix`) or every layer (:func:`mi_layers`), with every estimator and bias correction.
Permutation statistics are in :mod:`pairmi.nulls`."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from . import _arrays, _dispatch, _ksg_ties, _memory, backends, tiles
from .settings import Estimator, Settings, as_estimator


def mi_matrix(
    X: Any,
    Y: Any = None,
    *,
    estimator: str | Estimator = "equal_width",
    bins: _dispatch.Bins | None = None,
    k: int | None = None,
    correction: str | None = None,
    n_permutations: int = 20,
    seed: Any = 0,
    units: str = "bits",
    threads: int | None = None,
    dtype: npt.DTypeLike | None = None,
    progress: _dispatch.Progress = None,
    nan_policy: str = "raise",
    out: np.ndarray | None = None,
    max_bytes: int | None = None,
    edges: Any = None,
    edges_y: Any = None,
    noise: float | None = None,
    backend: str | None = None,
    tile_size: int | None = None,
) -> Any:
    """Mutual information between every pair of columns.

    Parameters
    ----------
    X : array_like, shape (n_samples, n_x)
        Samples in rows, variables in columns: numpy array or CPU torch tensor of any real dtype
        (float16/bfloat16/int are converted exactly). Must be finite, with at least 2 samples.
    Y : array_like, shape (n_samples, n_y), optional
        If given, MI of every column of X against every column of Y (same samples).
    estimator : {'equal_width', 'equal_frequency', 'ksg', 'gaussian_copula'} or Estimator
        The name, with its parameters as the keywords below, or an object that carries them
        (:class:`pairmi.EqualWidth`, :class:`pairmi.EqualFrequency`, :class:`pairmi.KSG`,
        :class:`pairmi.GaussianCopula`; then those keywords stay unset).
        ``'equal_width'``: ``bins`` equal-width bins over each variable's [min, max], identical to
        ``np.histogram2d(x, y, bins)`` (last bin closed; a constant variable gets numpy's ±0.5
        range). ``'equal_frequency'``: edges ``np.percentile(x, np.linspace(0, 100, bins + 1))``,
        counted as ``np.histogram2d`` counts them; tied values give repeated edges and empty bins
        between them. Percentile edges ``np.linspace(0, 100, 15)`` (15 edges) are ``bins=14``.
        ``'ksg'``: Kraskov-Stögbauer-Grassberger (algorithm 1) with ``k`` neighbours, as
        scikit-learn's ``mutual_info_regression`` computes it (unit-variance scaling, max-norm,
        neighbours strictly inside the k-th distance, clipped at 0). Unlike scikit-learn, pairmi
        adds no random noise: results are deterministic, and tied values are counted as they are
        (with many duplicates the k-th distance can be 0 and the estimate is unreliable: jitter
        such data yourself). A pair scoring above min(H(X), H(Y)) of its variables' values as
        discrete distributions (possible only with ties) is clipped to that bound, with a
        RuntimeWarning. Columns are scaled robustly: any magnitude float64 holds gives the same MI.
        ``'gaussian_copula'``: ranks (ties averaged) mapped to normal scores,
        MI = -½ log(1 - ρ²) of their correlation; exact for Gaussian dependence, a lower bound
        otherwise.
    bins : int or 'auto', optional
        Bins per variable for the binned estimators (default 15), in [2, 255] and at most
        n_samples; ignored by the others. ``'auto'``: ``round(sqrt(1 + sqrt(1 + 24 n)) / sqrt(2))``
        (Hacine-Gharbi et al., Pattern Recognition Letters 33, 2012, with ρ = 0): 5 bins at
        n = 90, 13 at n = 4096.
    k : int, optional
        Neighbours for ``'ksg'`` (default 3, as scikit-learn), in [1, n_samples - 1]; ignored by
        the others.
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
        identical for any thread count. At most 4 per usable core (at least 64): more is a
        ValueError (a larger OMP_NUM_THREADS is capped with a warning). In a process forked after
        pairmi was imported (multiprocessing's default on Linux) calls run on one thread, with a
        one-time RuntimeWarning: OpenMP's thread pool does not survive fork, and a multithreaded
        call there would hang. Use the 'spawn' or 'forkserver' start method for parallel workers.
    dtype : {float64, float32}, optional
        dtype of the result (default float64, as everywhere in pairmi; float32 halves its
        memory); the core always accumulates in float64.
    progress : callable(done, total), optional
        Called between tiles of pairs with the approximate tiles finished and their total.
        Ctrl-C interrupts a running computation within about one tile.
    nan_policy : {'raise', 'omit'}
        NaN or Inf in the data: raise ValueError naming the columns, or drop those samples (rows).
    out : ndarray, optional
        Preallocated C-contiguous float32/float64 array of the result's shape, e.g. an
        ``np.memmap`` for results larger than memory: it is filled a block of rows at a time and a
        memmap's finished blocks are flushed and released. A memmap that writes to its file
        (mode 'r+' or 'w+') gets its file's blocks reserved first (``posix_fallocate``), so a full
        file system raises OSError instead of killing the process with SIGBUS mid-way (plain numpy
        writes to such a memmap die that way). ``out`` may overlap X or Y (they are copied first).
        Not with ``correction='shuffle'``.

        Or a zarr store (a path ending in ``.zarr``, or a zarr group), for X against itself: the
        matrix is written there tile by tile (``pairmi.tiles``; chunks of ``tile_size`` squared,
        ``dtype`` float16, float32 or float64; NaN where not yet written, so it can be read while
        it is filled), and calling again with the same data and settings resumes a stopped run
        (written tiles are skipped). Returns the zarr array.
    max_bytes : int, optional
        Refuse (MemoryError) to allocate a result that, with its working memory, exceeds this many
        bytes; default: the memory available now. Not applied to ``out``.
    edges, edges_y : array_like, shape (n_x, bins + 1) and (n_y, bins + 1), optional
        Fixed bin edges of X's (and Y's) variables, e.g. from :func:`pairmi.fit_edges` on a
        calibration sample, instead of edges from the data: values outside them fall in the end
        bins, and ``bins`` is taken from them. These are the edges a streaming
        :class:`pairmi.Accumulator` counts with, so its result equals this one on the same data.
        For ``'gaussian_copula'``: the knots of each variable's normal-score map
        (``fit_edges(..., 'gaussian_copula')``) instead of ranks. Not for ``'ksg'``.
    noise : float, optional
        ``'ksg'`` only (default 0): add ``noise * max(1, mean |x|) * N(0, 1)`` to every variable first, seeded
        by ``seed``, to break tied values as scikit-learn does (it uses 1e-10). Without it, a
        variable with over 90 % of its samples tied draws a RuntimeWarning: KSG overestimates on
        such data (measured: +0.07 bits at 95 % tied, +0.33 at 98 %, for a Gaussian pair).
    backend : {None, 'cpu', 'torch'}
        ``'cpu'``: the C++ core (torch tensors are copied to the host; numpy out). ``'torch'``:
        torch on the tensors' own device, the result a float64-accumulated tensor there (numpy in,
        numpy out): equal-width and equal-frequency bins (optionally Miller-Madow), KSG (brute
        force; no clipping of tied values) and the Gaussian copula, equal to the core within 1e-9
        (KSG: 1e-6, as against scikit-learn). Default: ``'torch'`` for tensors on an
        accelerator (a CUDA tensor never travels to the host), ``'cpu'`` otherwise.

    Returns
    -------
    ndarray, shape (n_x, n_x) or (n_x, n_y)
        MI in ``units``. For ``mi_matrix(X)`` it is symmetric; its diagonal holds H(X_i) for the
        binned estimators (the MI of a variable with itself) and +inf for ``'ksg'`` and
        ``'gaussian_copula'`` (a continuous variable with itself).

    Notes
    -----
    Plug-in binned MI is biased upwards when samples are few for the cells: with 90 samples and
    15x15 bins, two independent Gaussian variables score about 1.1 bits (equal-width) and 1.6 bits
    (equal-frequency); Miller-Madow removes only part of that, the shuffle correction all of it.
    Use a correction, ``mi_test``, or KSG / Gaussian copula before reading
    meaning into such values. Values are converted to float64 before binning, so float32 data is
    binned as ``np.histogram2d`` bins ``x.astype(float64)``.

    Examples
    --------
    >>> import numpy as np, pairmi
    >>> X = np.random.default_rng(0).normal(size=(500, 4))
    >>> pairmi.mi_matrix(X, bins=8).shape
    (4, 4)
    """
    est = as_estimator(estimator, bins=bins, k=k, correction=correction, noise=noise)
    _arrays.check_progress(progress)
    _memory.check_max_bytes(max_bytes)
    if out is not None and tiles.is_zarr_target(out):
        return _zarr_mi(X, Y, out, est, units, threads, dtype, progress, nan_policy, edges, tile_size)
    if tile_size is not None:
        raise ValueError("tile_size applies to a zarr out=")
    be = backends.choose(backend, X, Y)
    x, *rest = be.inputs([X] if Y is None else [X, Y], ["X", "Y"][: 1 + (Y is not None)], 2, nan_policy)
    y = rest[0] if rest else None
    fixed = be.fixed_edges(est, x.shape, None if y is None else y.shape, edges, edges_y)
    s = Settings.resolve(
        x.shape[1],
        est,
        n_permutations=n_permutations,
        seed=seed,
        units=units,
        threads=threads,
        dtype=dtype,
        edges=fixed,
        backend=be,
    )
    if out is not None:
        out = be.layered_out(out, (x.shape[2], x.shape[2] if y is None else y.shape[2]))
    return be.to_caller(be.mi(x, y, s, progress, out, max_bytes, "X")[0], X)


def mi_layers(
    H: Any,
    *,
    dims: Any = None,
    estimator: str | Estimator = "equal_width",
    bins: _dispatch.Bins | None = None,
    k: int | None = None,
    correction: str | None = None,
    n_permutations: int = 20,
    seed: Any = 0,
    units: str = "bits",
    threads: int | None = None,
    dtype: npt.DTypeLike | None = None,
    progress: _dispatch.Progress = None,
    nan_policy: str = "raise",
    out: np.ndarray | None = None,
    max_bytes: int | None = None,
    edges: Any = None,
    noise: float | None = None,
    backend: str | None = None,
) -> Any:
    """Mutual information between every pair of variables, for every layer, in one call.

    Parameters
    ----------
    H : array_like, shape (n_layers, n_samples, n_variables)
        Stacked hidden states: layer, token, dimension (e.g. ``hidden_states`` of a transformer,
        index 0 = embedding output).
    dims : slice or sequence of int, optional
        Variables to keep (e.g. ``slice(0, None, 2)`` for every other dimension); default all.
    estimator, bins, k, correction, n_permutations, seed, units, threads, progress, max_bytes, noise, backend
        As in :func:`mi_matrix`.
    nan_policy : {'raise', 'omit'}
        As in :func:`mi_matrix`; 'omit' drops a token from every layer if any layer has NaN/Inf there.
    out : ndarray, shape (n_layers, d, d), optional
        As in :func:`mi_matrix`.
    dtype : {float64, float32}, optional
        dtype of the result: float64 by default, as in :func:`mi_matrix` (13 x 768 x 768 is 61 MB;
        float32 halves it).
    edges : array_like, shape (n_layers, n_variables, bins + 1) or (n_variables, bins + 1), optional
        Fixed edges (or the copula's knots) of every variable of H, as in :func:`mi_matrix`
        (e.g. ``pairmi.fit_edges(calibration)``); ``dims`` selects from them too.

    Returns
    -------
    ndarray, shape (n_layers, d, d)
        ``mi_matrix(H[l][:, dims])`` for every layer l, in ``units``.

    Examples
    --------
    >>> import numpy as np, pairmi
    >>> H = np.random.default_rng(0).normal(size=(3, 200, 5)).astype(np.float32)  # layers, tokens, units
    >>> pairmi.mi_layers(H, bins=8).shape
    (3, 5, 5)
    """
    est = as_estimator(estimator, bins=bins, k=k, correction=correction, noise=noise)
    _arrays.check_progress(progress)
    _memory.check_max_bytes(max_bytes)
    be = backends.choose(backend, H)
    h = be.as_array(H, "H")
    if h.ndim != 3:
        raise ValueError(f"H must be 3-d (layers, samples, variables), got shape {tuple(h.shape)}")
    fixed = be.fixed_edges(est, h.shape, None, edges, None)
    index = None if dims is None else _dispatch.dims_index(dims, h.shape[2])
    if index is not None and fixed[0] is not None:
        fixed = (np.ascontiguousarray(fixed[0][:, index]), None)
    (h,) = be.inputs([h], ["H"], 3, nan_policy, index)
    s = Settings.resolve(
        h.shape[1],
        est,
        n_permutations=n_permutations,
        seed=seed,
        units=units,
        threads=threads,
        dtype=dtype,
        edges=fixed,
        backend=be,
    )
    return be.to_caller(be.mi(h, None, s, progress, out, max_bytes, "H"), H)


def _zarr_mi(
    X: Any,
    Y: Any,
    out: Any,
    est: Estimator,
    units: str,
    threads: int | None,
    dtype: npt.DTypeLike | None,
    progress: _dispatch.Progress,
    nan_policy: str,
    edges: Any,
    tile_size: int | None,
) -> Any:
    """mi_matrix into a zarr store, tile by tile (pairmi.tiles)."""
    if Y is not None:
        raise ValueError("a zarr out= holds X against itself: pass no Y")
    if edges is not None or getattr(est, "noise", 0.0) > 0 or getattr(est, "correction", None) == "shuffle":
        raise ValueError("a zarr out= takes neither edges=, noise= nor correction='shuffle'")
    x, _ = _dispatch.inputs(X, None, nan_policy)
    s = Settings.resolve(x.shape[1], est, units=units, threads=threads)
    if s.name != "gaussian_copula":
        _dispatch.check_ranges(x, None)
    if s.name == "ksg":
        _ksg_ties.warn_heavy_ties(x, None, stacklevel=4)
    if tile_size is not None and (isinstance(tile_size, bool) or not isinstance(tile_size, (int, np.integer)) or tile_size < 1):
        raise ValueError(f"tile_size must be a positive integer, got {tile_size!r}")
    return tiles.mi_to_zarr(x[0], out, s, dtype=np.float64 if dtype is None else dtype, tile=tile_size, progress=progress)
