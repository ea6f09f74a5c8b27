"""Public entry points: mutual information of all pairs of variables, for one matrix or every layer,
with every estimator, bias corrections and permutation tests."""

from __future__ import annotations

import errno
import mmap
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from . import _arrays, _core, stats, tiles
from .backends import torch as _tb
from .binned import BINNED_ESTIMATORS, Coded, auto_bins, binned_mi, code_layers, permutation_nulls
from .copula import copula_mi, copula_working_bytes, mi_of_correlations, normal_scores

ESTIMATORS = BINNED_ESTIMATORS + ("ksg", "gaussian_copula")
CORRECTIONS = (None, "miller_madow", "shuffle")
Progress = Callable[[int, int], None] | None
Bins = int | str
# Bytes of out= that one block of rows fills (the working memory of a memmapped run).
OUT_BLOCK_BYTES = 64 << 20


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
    # Fixed edges (binned) or normal-score knots (copula) of x and of y, (layers, d, k), or None:
    # from the data (the default).
    edges: tuple[np.ndarray | None, np.ndarray | None] = (None, None)
    noise: float = 0.0  # KSG: relative scale of the seeded tie-breaking noise


def _settings(
    n, estimator, bins, k, correction, n_permutations, seed, units, threads, dtype, edges=(None, None), noise=0.0
) -> _Settings:
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {CORRECTIONS}, got {correction!r}")
    binned = estimator in BINNED_ESTIMATORS
    if correction is not None and not binned:
        raise ValueError(f"correction={correction!r} applies to the binned estimators {BINNED_ESTIMATORS}, not {estimator!r}")
    if binned:
        if edges[0] is not None:  # fixed edges: bins from them, and they may exceed these samples
            bins = edges[0].shape[2] - 1
        else:
            bins = auto_bins(n) if bins == "auto" else _arrays.check_bins(bins, n)
    if estimator == "ksg" and (isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k < n):
        raise ValueError(f"k must be an integer in [1, n_samples - 1] = [1, {n - 1}], got {k!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise TypeError(f"seed must be an integer or None, got {seed!r}")
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, (int, np.integer)) or n_permutations < 1:
        raise ValueError(f"n_permutations must be a positive integer, got {n_permutations!r}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    if isinstance(noise, bool) or not isinstance(noise, (int, float, np.floating, np.integer)) or not 0 <= noise < 1:
        raise ValueError(f"noise must be a number in [0, 1), got {noise!r}")
    if noise and estimator != "ksg":
        raise ValueError(f"noise applies to 'ksg' (tie-breaking), not {estimator!r}")
    return _Settings(
        estimator,
        bins if binned else 0,
        int(k),
        correction,
        int(n_permutations),
        seed,
        _arrays.unit_scale(units),
        _arrays.resolve_threads(threads),
        dtype,
        edges,
        float(noise),
    )


def _compute(
    x: np.ndarray,
    y: np.ndarray | None,
    s: _Settings,
    progress: Progress,
    out: np.ndarray | None,
    max_bytes: int | None,
    name: str = "X",
) -> np.ndarray:
    """MI (layers, dx, dy) of x (layers, n, dx) against itself (y None) or y, into a new array or out."""
    if s.estimator != "gaussian_copula":  # ranks need no finite range
        _check_ranges(x, y, name)
    shape = (x.shape[0], x.shape[2], x.shape[2] if y is None else y.shape[2])
    if out is not None:
        _check_out(out, shape)
        # Blocks of out are written while x and y are read: an overlapping input is copied first.
        x = x.copy() if np.may_share_memory(out, x) else x
        y = y.copy() if y is not None and np.may_share_memory(out, y) else y
    if shape[0] == 0:  # no layers: nothing to compute
        return np.empty(shape, dtype=s.dtype) if out is None else out
    if s.estimator == "ksg":
        x, y = _ksg_inputs(x, y, s)
    if out is None:
        _arrays.check_memory(_bytes_needed(x, y, s, shape), f"the MI of {shape[1]:,} x {shape[2]:,} pairs", max_bytes)
        out = np.empty(shape, dtype=s.dtype)
        _fill(x, y, s, progress, out)
        return out
    if s.estimator == "gaussian_copula":  # already fills out a block of rows at a time
        _reserve_file(out)
        return copula_mi(x, y, s.scale, out, progress, after_block=lambda: _release(out), knots=s.edges)
    if s.correction == "shuffle":
        raise ValueError("correction='shuffle' is not supported with out=: use null_mi on a selection of dims")
    _fill_rows(x, y, s, progress, out, shape)
    return out


def _check_ranges(x: np.ndarray, y: np.ndarray | None, name: str = "X") -> None:
    """Binning and unit-variance scaling need each variable's max - min to be finite."""
    _arrays.check_ranges(x, name)
    if y is not None:
        _arrays.check_ranges(y, "Y")


def _bytes_needed(x: np.ndarray, y: np.ndarray | None, s: _Settings, shape: tuple[int, int, int]) -> int:
    """Peak of what one call allocates beside its inputs, from what each path allocates."""
    pairs = int(np.prod(shape))
    values = x.size + (0 if y is None else y.size)
    result = pairs * s.dtype.itemsize
    if s.estimator == "gaussian_copula":
        return result + copula_working_bytes(x.shape[1], x.shape[2], None if y is None else y.shape[2])
    if s.estimator == "ksg":
        # The core's sorted copies (SortedColumns: 28 bytes a value) and each thread's scratch; the
        # tie check afterwards sorts a copy of the values (at most as much); tie-breaking noise
        # makes a float64 copy of the values first.
        jitter = 8 * values if s.noise else 0
        return result + 28 * values + jitter + s.threads * _core.ksg_worker_bytes(x.shape[1], s.k)
    # Binned: codes, and for the rank kernel the samples grouped by bin and the columns laid out
    # for its lanes (3 bytes a value); the shuffle correction adds its float64 running mean, one
    # float64 pass's buffer and the shuffled codes.
    binned = result + 3 * values
    if s.correction == "shuffle":
        binned += 16 * pairs + 2 * (x.size if y is None else y.size)
    return binned


def _test_bytes(shape: tuple[int, int, int], values: int, copula: bool = False, rotation: bool = False) -> int:
    """Peak of mi_test: observed, threshold, total and a pass's buffer (float64), the exceedance counts
    (int32) and one pass's comparison (bool); then the binned codes with a pass's reordered codes
    (2 bytes a value), or the copula's scores and a pass's reordered scores, correlations and MI;
    rotations add their (variables, samples) int64 index arithmetic."""
    pairs = int(np.prod(shape))
    per_pass = 16 * pairs + 16 * values if copula else 2 * values
    return 37 * pairs + per_pass + (32 * values if rotation else 0)


def _fill(x: np.ndarray, y: np.ndarray | None, s: _Settings, progress: Progress, out: np.ndarray) -> None:
    """Write the MI of x against itself (y None) or y into the C-contiguous out (layers, dx, dy)."""
    if s.estimator == "gaussian_copula":
        copula_mi(x, y, s.scale, out, progress, knots=s.edges)
        return
    if s.estimator == "ksg":
        if y is not None and y.dtype != x.dtype:
            x, y = x.astype(np.float64), y.astype(np.float64)
        _core.ksg_mi(x, y, s.k, s.scale, out, s.threads, progress)
        _clip_tied(x, y, s.scale, out)
        return
    mm = s.correction == "miller_madow"
    cx = code_layers(x, s.estimator, s.bins, s.threads, mm, s.edges[0])
    cy = None if y is None else code_layers(y, s.estimator, s.bins, s.threads, mm, s.edges[1])
    binned_mi(cx, cy, s.scale, out, s.threads, progress, mm)
    if s.correction == "shuffle":
        out -= _null_mean(cx, cy, s)  # float64 into out's dtype, in place: no full-size copy


# A variable with more of its samples tied than this makes KSG overestimate (a Gaussian pair,
# rho = 0.6, 2,000 samples, rounded ever coarser: within 0.01 bits at 75 % tied, +0.07 bits at
# 95 %, +0.33 at 98 %, several bits beyond; bench/ties.py).
TIED_SHARE_WARNING = 0.9


def _ksg_inputs(x: np.ndarray, y: np.ndarray | None, s: _Settings) -> tuple[np.ndarray, np.ndarray | None]:
    """x and y with the seeded tie-breaking noise added (noise > 0), else a warning when a
    variable is heavily tied."""
    if s.noise > 0:
        rng = np.random.default_rng(s.seed)
        return tuple(None if v is None else _jittered(v, s.noise, rng) for v in (x, y))  # type: ignore[return-value]
    for v, name in ((x, "X"), (y, "Y")):
        if v is None:
            continue
        share = stats.tie_shares(v)  # (layers, variables)
        constant = v.max(axis=1) == v.min(axis=1)  # all tied, but MI 0 by definition
        share[constant] = 0.0
        share = share.max(axis=0)
        heavy = np.flatnonzero(share > TIED_SHARE_WARNING)
        if heavy.size:
            warnings.warn(
                f"KSG: {heavy.size} variable(s) of {name} have over {TIED_SHARE_WARNING:.0%} of their samples "
                f"tied (columns {heavy[:10].tolist()}, up to {share[heavy].max():.1%}): KSG overestimates on "
                "such data; pass noise=1e-10 to break the ties with seeded noise as scikit-learn does",
                RuntimeWarning,
                stacklevel=5,
            )
    return x, y


def _jittered(v: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """v + noise * max(1, mean |v|) * N(0, 1), per variable (scikit-learn's tie-breaking)."""
    scale = noise * np.maximum(1.0, np.abs(v).mean(axis=1, keepdims=True, dtype=np.float64))
    return v.astype(np.float64) + scale * rng.standard_normal(v.shape)


def _clip_tied(x: np.ndarray, y: np.ndarray | None, scale: float, out: np.ndarray) -> None:
    """Clip KSG values to min(H(X), H(Y)) of the tied values, with a warning when any was above.

    With many tied values the k-th neighbour distance is 0 and KSG's counts collapse, giving values
    no data allow (two independent binary variables: 15 bits). The entropies of the variables'
    empirical distributions bound the MI of any estimate of their joint law. A variable without
    ties has entropy ln n, above anything KSG returns, so only the rows and columns of variables
    with repeated values are checked, and untied data are left exactly as computed.
    """
    n = x.shape[1]
    hx = _discrete_entropy(x)
    hy = hx if y is None else _discrete_entropy(y)
    untied = np.log(n) * (1.0 - 1e-12)
    tied_variables = 0
    for l in range(out.shape[0]):
        # Rows of tied x variables, then columns of tied y variables (rows of the transpose).
        for h_rows, h_cols, view in ((hx[l], hy[l], out[l]), (hy[l], hx[l], out[l].T)):
            rows = np.flatnonzero(h_rows < untied)
            if rows.size == 0:
                continue
            bound = np.minimum(h_rows[rows, None], h_cols[None, :]) * scale
            if y is None:
                bound[np.arange(rows.size), rows] = np.inf  # the diagonal stays +inf
            block = view[rows]
            over = block > bound
            if over.any():
                tied_variables += int(over.any(axis=1).sum())
                view[rows] = np.minimum(block, bound)
    if tied_variables:
        warnings.warn(
            f"KSG: pairs of {tied_variables:,} heavily tied variable(s) scored above min(H(X), H(Y)) of "
            "their tied values (the k-th neighbour distance was 0) and were clipped to that bound; KSG is "
            "unreliable on such data: add small noise to break the ties, or use a binned estimator",
            RuntimeWarning,
            stacklevel=4,
        )


def _discrete_entropy(x: np.ndarray) -> np.ndarray:
    """Entropy in nats, (layers, variables), of each variable's values as a discrete distribution:
    ln n for a variable without repeated values. One layer's sorted copy at a time."""
    layers, n, d = x.shape
    h = np.full((layers, d), np.log(n))
    for l in range(layers):
        srt = np.sort(x[l], axis=0)
        for c in np.flatnonzero((srt[1:] == srt[:-1]).any(axis=0)):
            starts = np.flatnonzero(np.r_[True, srt[1:, c] != srt[:-1, c]])
            p = np.diff(np.r_[starts, n]) / n
            h[l, c] = -(p * np.log(p)).sum()
    return h


def _fill_rows(x: np.ndarray, y: np.ndarray | None, s: _Settings, progress: Progress, out: np.ndarray, shape: tuple) -> None:
    """Fill a user's out (e.g. an np.memmap) a block of rows at a time, each block x-rows against
    all of y (or x), so memory holds one block; written blocks of a memmap are flushed and released."""
    _reserve_file(out)
    layers, dx, dy = shape
    rows = int(max(1, min(dx, OUT_BLOCK_BYTES // (dy * out.dtype.itemsize))))
    other, other_edges = (x, s.edges[0]) if y is None else (y, s.edges[1])
    diagonal = _diagonal(x, s) if y is None else None
    blocks = -(-dx // rows)
    for l in range(layers):
        for b, r0 in enumerate(range(0, dx, rows)):
            r1 = min(dx, r0 + rows)
            block = out[l, r0:r1]
            # The block's rows against all of other: x's edges of those rows, other's of that layer.
            edges = (
                None if s.edges[0] is None else s.edges[0][l : l + 1, r0:r1],
                None if other_edges is None else other_edges[l : l + 1],
            )
            s_block = replace(s, dtype=out.dtype, edges=edges)
            _fill(np.ascontiguousarray(x[l : l + 1, :, r0:r1]), other[l : l + 1], s_block, None, block[None])
            if diagonal is not None:
                block[np.arange(r1 - r0), np.arange(r0, r1)] = diagonal[l, r0:r1]
            _release(out)
            if progress is not None:
                progress(l * blocks + b + 1, layers * blocks)


def _check_out(out: np.ndarray, shape: tuple[int, int, int]) -> None:
    if out.shape != shape or out.dtype not in (np.float32, np.float64) or not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(
            f"out must be a writeable C-contiguous float32/float64 array of shape {shape}, got {out.dtype} {out.shape}"
        )


def _memmap_file(out: np.ndarray) -> tuple[mmap.mmap, str] | None:
    """The mmap under a memmap that writes through to its file (mode r+ or w+), and the file's name."""
    if not isinstance(out, np.memmap) or getattr(out, "mode", None) not in ("r+", "w+"):
        return None  # copy-on-write ('c') pages live only in memory: never drop them
    base: Any = out
    while base is not None and not isinstance(getattr(base, "_mmap", None), mmap.mmap):
        base = getattr(base, "base", None)
    if base is None or getattr(base, "filename", None) is None:
        return None
    return base._mmap, base.filename


def _reserve_file(out: np.ndarray) -> None:
    """Allocate a file-backed out's blocks before filling it: writing a page that the full file
    system cannot hold kills the process with SIGBUS, where this raises OSError naming the file."""
    mapped = _memmap_file(out)
    if mapped is None or not hasattr(os, "posix_fallocate"):
        return
    _, filename = mapped
    offset = int(getattr(out, "offset", 0))
    try:
        fd = os.open(filename, os.O_RDWR)
    except OSError:
        return
    try:
        os.posix_fallocate(fd, offset, out.nbytes)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OSError(
                exc.errno,
                f"no room for the {out.nbytes / 2**20:,.1f} MiB result in {filename} "
                f"({os.strerror(exc.errno)}): free space or choose another file system",
            ) from None
        # EINVAL/EOPNOTSUPP: a file system without fallocate; fill as before
    finally:
        os.close(fd)


def _out_array(out: Any) -> np.ndarray:
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy array (or np.memmap), got {type(out).__name__}")
    return out


def _diagonal(x: np.ndarray, s: _Settings) -> np.ndarray:
    """What mi_matrix(X) puts on its diagonal: entropies (binned) or +inf (continuous estimators)."""
    if s.estimator in BINNED_ESTIMATORS:
        mm = s.correction == "miller_madow"
        return code_layers(x, s.estimator, s.bins, s.threads, mm, s.edges[0]).entropy * s.scale
    return np.full((x.shape[0], x.shape[2]), np.inf)


def _release(out: np.ndarray) -> None:
    """Flush a memmap's written pages to its file and drop them from memory (they are re-read on use).
    Only for memmaps that write through to their file: a copy-on-write map would lose its pages."""
    mapped = _memmap_file(out)
    if mapped is None:
        return
    cast(np.memmap, out).flush()
    if hasattr(mmap, "MADV_DONTNEED"):
        mapped[0].madvise(mmap.MADV_DONTNEED)


def _null_mean(cx: Coded, cy: Coded | None, s: _Settings) -> np.ndarray:
    """Mean MI over permutations, with a zero diagonal in the square case (entropies stay)."""
    shape = (cx.codes.shape[0], cx.codes.shape[1], (cx if cy is None else cy).codes.shape[1])
    mean = np.zeros(shape)
    for null in permutation_nulls(cx, cy, s.n_permutations, s.seed, s.scale, s.threads, np.empty(shape)):
        mean += null
    mean /= s.n_permutations
    if cy is None:
        idx = np.arange(mean.shape[-1])
        mean[..., idx, idx] = 0.0
    return mean


def _inputs(X: Any, Y: Any, nan_policy: str) -> tuple[np.ndarray, np.ndarray | None]:
    x = _arrays.samples(X, "X", 2)[None]
    if Y is None:
        return _arrays.apply_nan_policy([x], ["X"], nan_policy)[0], None
    y = _arrays.samples(Y, "Y", 2)[None]
    if y.shape[1] != x.shape[1]:
        raise ValueError(f"X and Y must have the same number of samples (rows): {x.shape[1]} != {y.shape[1]}")
    x, y = _arrays.apply_nan_policy([x, y], ["X", "Y"], nan_policy)
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
    nan_policy: str = "raise",
    out: np.ndarray | None = None,
    max_bytes: int | None = None,
    edges: Any = None,
    edges_y: Any = None,
    noise: float = 0.0,
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
        such data yourself). A pair scoring above min(H(X), H(Y)) of its variables' values as
        discrete distributions (possible only with ties) is clipped to that bound, with a
        RuntimeWarning. Columns are scaled robustly: any magnitude float64 holds gives the same MI.
        ``'gaussian_copula'``: ranks (ties averaged) mapped to normal scores,
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
        identical for any thread count. At most 4 per usable core (at least 64): more is a
        ValueError (a larger OMP_NUM_THREADS is capped with a warning). In a process forked after
        pairmi was imported (multiprocessing's default on Linux) calls run on one thread, with a
        one-time RuntimeWarning: OpenMP's thread pool does not survive fork, and a multithreaded
        call there would hang. Use the 'spawn' or 'forkserver' start method for parallel workers.
    dtype : {float64, float32}
        dtype of the result; the core always accumulates in float64.
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
    noise : float
        ``'ksg'`` only: add ``noise * max(1, mean |x|) * N(0, 1)`` to every variable first, seeded
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
    if out is not None and tiles.is_zarr_target(out):
        return _zarr_mi(
            X, Y, out, estimator, bins, k, correction, units, threads, dtype, progress, nan_policy, edges, noise, tile_size
        )
    if tile_size is not None:
        raise ValueError("tile_size applies to a zarr out=")
    if _tb.wanted(backend, X, Y):
        return _torch_mi(
            X,
            Y,
            2,
            estimator=estimator,
            bins=bins,
            correction=correction,
            units=units,
            dtype=dtype,
            nan_policy=nan_policy,
            out=out,
            edges=(edges, edges_y),
            noise=noise,
            k=k,
        )
    x, y = _inputs(X, Y, nan_policy)
    fixed = _fixed_edges(estimator, x, y, edges, edges_y)
    s = _settings(x.shape[1], estimator, bins, k, correction, n_permutations, seed, units, threads, dtype, fixed, noise)
    return _compute(x, y, s, progress, None if out is None else _out_array(out)[None], max_bytes)[0]


def _zarr_mi(
    X: Any,
    Y: Any,
    out: Any,
    estimator: str,
    bins: Bins,
    k: int,
    correction: str | None,
    units: str,
    threads: int | None,
    dtype: npt.DTypeLike,
    progress: Progress,
    nan_policy: str,
    edges: Any,
    noise: float,
    tile_size: int | None,
) -> Any:
    """mi_matrix into a zarr store, tile by tile (pairmi.tiles)."""
    if Y is not None:
        raise ValueError("a zarr out= holds X against itself: pass no Y")
    if edges is not None or noise or correction == "shuffle":
        raise ValueError("a zarr out= takes neither edges=, noise= nor correction='shuffle'")
    x, _ = _inputs(X, None, nan_policy)
    s = _settings(x.shape[1], estimator, bins, k, correction, 1, 0, units, threads, np.float64)
    if s.estimator != "gaussian_copula":
        _check_ranges(x, None)
    if tile_size is not None and (isinstance(tile_size, bool) or not isinstance(tile_size, (int, np.integer)) or tile_size < 1):
        raise ValueError(f"tile_size must be a positive integer, got {tile_size!r}")
    return tiles.mi_to_zarr(
        x[0],
        out,
        estimator=s.estimator,
        bins=s.bins,
        k=s.k,
        correction=s.correction,
        units=units,
        threads=s.threads,
        dtype=dtype,
        tile=tile_size,
        progress=progress,
    )


def _torch_mi(
    X: Any,
    Y: Any,
    ndim: int,
    *,
    estimator: str,
    bins: Bins,
    correction: str | None,
    units: str,
    dtype: npt.DTypeLike,
    nan_policy: str,
    out: Any,
    edges: tuple[Any, Any],
    noise: float,
    k: int = 3,
) -> Any:
    """mi_matrix / mi_layers on the torch backend: checks, then pairmi.backends.torch."""
    from .backends import torch as tb

    torch = tb._torch()
    if estimator not in tb.TORCH_ESTIMATORS:
        raise ValueError(
            f"the torch backend computes {tb.TORCH_ESTIMATORS}; {estimator!r} is not there yet: "
            "use backend='cpu' (a device tensor is then copied to the host)"
        )
    if correction not in (None, "miller_madow") or (correction and estimator not in BINNED_ESTIMATORS):
        raise ValueError(f"the torch backend takes correction=None or 'miller_madow' (binned), not {correction!r}")
    if out is not None or noise:
        raise ValueError("the torch backend takes neither out= nor noise=: use backend='cpu'")
    numpy_in = not tb.is_tensor(X)
    names = ["X" if ndim == 2 else "H"] + (["Y"] if Y is not None else [])
    tensors = tb.checked_tensors([X] + ([Y] if Y is not None else []), names, (ndim,), nan_policy)
    x, y = tensors[0], (tensors[1] if Y is not None else None)
    scale = _arrays.unit_scale(units)
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    if estimator in ("gaussian_copula", "ksg") and edges[0] is not None:
        raise ValueError(f"the torch backend's {estimator} takes no edges: use backend='cpu'")
    if estimator == "gaussian_copula":
        result = tb.copula_mi(x, y, scale)
    elif estimator == "ksg":
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k < x.shape[1]:
            raise ValueError(f"k must be an integer in [1, n_samples - 1] = [1, {x.shape[1] - 1}], got {k!r}")
        result = tb.ksg_mi(x, y, int(k), scale)
    else:
        fixed: tuple[Any, ...] = tuple(
            None
            if e is None
            else torch.tensor(  # a copy: checked edges may be a read-only view
                _arrays.check_edges(e, t.shape[0], t.shape[2], name, True), device=x.device
            )
            for e, t, name in ((edges[0], x, "edges"), (edges[1], y, "edges_y"))
            if t is not None
        )
        fixed = fixed + (None,) * (2 - len(fixed))
        b = (
            fixed[0].shape[2] - 1
            if fixed[0] is not None
            else (auto_bins(x.shape[1]) if bins == "auto" else _arrays.check_bins(bins, x.shape[1]))
        )
        result = tb.binned_mi(x, y, estimator, b, scale, correction == "miller_madow", (fixed[0], fixed[1]))
    result = result.to(torch.float32 if dtype == np.float32 else torch.float64)
    result = result[0] if ndim == 2 else result
    return result.cpu().numpy() if numpy_in else result


def _fixed_edges(
    estimator: str, x: np.ndarray, y: np.ndarray | None, edges: Any, edges_y: Any
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Checked fixed edges (or knots) of x and y, (layers, d, k) float64, or None where not given."""
    if edges is None and edges_y is None:
        return None, None
    if estimator not in BINNED_ESTIMATORS + ("gaussian_copula",):
        raise ValueError(f"edges apply to the binned estimators and the Gaussian copula, not {estimator!r}")
    if edges is None or (y is not None and edges_y is None):
        raise ValueError("pass edges for X" + (" and edges_y for Y" if y is not None else ""))
    if y is None and edges_y is not None:
        raise ValueError("edges_y applies only with Y")
    binned = estimator in BINNED_ESTIMATORS
    ex = _arrays.check_edges(edges, x.shape[0], x.shape[2], "edges", binned)
    ey = None if y is None else _arrays.check_edges(edges_y, y.shape[0], y.shape[2], "edges_y", binned)
    if ey is not None and binned and ey.shape[2] != ex.shape[2]:
        raise ValueError(f"edges and edges_y must have the same number of bins, got {ex.shape[2] - 1} and {ey.shape[2] - 1}")
    return ex, ey


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
    nan_policy: str = "raise",
    out: np.ndarray | None = None,
    max_bytes: int | None = None,
    edges: Any = None,
    noise: float = 0.0,
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
    dtype : {float32, float64}
        dtype of the result (float32 by default: 13 x 768 x 768 is 30 MB).
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
    if _tb.wanted(backend, H, None):
        if dims is not None:
            H = H[:, :, _dims_index(dims, H.shape[2])]
        return _torch_mi(
            H,
            None,
            3,
            estimator=estimator,
            bins=bins,
            correction=correction,
            units=units,
            dtype=dtype,
            nan_policy=nan_policy,
            out=out,
            edges=(edges, None),
            noise=noise,
            k=k,
        )
    h = _arrays.to_numpy(H, "H")
    if h.ndim != 3:
        raise ValueError(f"H must be 3-d (layers, samples, variables), got shape {h.shape}")
    d_all = h.shape[2]
    fixed: tuple[np.ndarray | None, np.ndarray | None] = (None, None)
    if edges is not None:
        fixed = _fixed_edges(estimator, h, None, edges, None)
    if dims is not None:
        index = _dims_index(dims, d_all)
        h = h[:, :, index]
        fixed = (None if fixed[0] is None else np.ascontiguousarray(fixed[0][:, index]), None)
    h = _arrays.apply_nan_policy([_arrays.samples(h, "H", 3)], ["H"], nan_policy)[0]
    s = _settings(h.shape[1], estimator, bins, k, correction, n_permutations, seed, units, threads, dtype, fixed, noise)
    return _compute(h, None, s, progress, None if out is None else _out_array(out), max_bytes, "H")


def _coded_inputs(who, X, Y, nan_policy, estimator, bins, n_permutations, seed, units, threads, dtype):
    """Checked settings and binned codes of X (and Y) for the permutation functions."""
    x, y = _inputs(X, Y, nan_policy)
    s = _settings(x.shape[1], estimator, bins, 3, None, n_permutations, seed, units, threads, dtype)
    if s.estimator not in BINNED_ESTIMATORS:
        raise ValueError(f"{who} supports the binned estimators {BINNED_ESTIMATORS}, not {estimator!r}")
    _check_ranges(x, y)
    cx = code_layers(x, s.estimator, s.bins, s.threads)
    return s, cx, None if y is None else code_layers(y, s.estimator, s.bins, s.threads)


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
    nan_policy: str = "raise",
    max_bytes: int | None = None,
    backend: str | None = None,
) -> Any:
    """MI of every pair under independence: the samples shuffled, ``n_permutations`` times.

    Every column of X is permuted independently (or Y's columns, with Y), so each pair is scored
    on data with the same marginals and no dependence. The binned codes are computed once and
    reused: each permutation costs one kernel pass.

    Parameters
    ----------
    X, Y, estimator, bins, units, threads, nan_policy, max_bytes
        As in :func:`mi_matrix` (binned estimators only).
    n_permutations : int
        Number of shufflings.
    seed : int or None
        Equal seeds give equal nulls (None: fresh randomness).
    dtype : {float32, float64}
        dtype of the result.
    backend : {None, 'cpu', 'torch'}
        As in :func:`mi_matrix`: with torch the shuffles run on the tensors' device (the same
        permutations as the core's, drawn on the host from `seed`) and the result is a tensor there.

    Returns
    -------
    ndarray (or tensor), shape (n_permutations, n_x, n_x or n_y)
        The null distribution of each pair (diagonal: the entropies, unchanged by shuffling).

    Examples
    --------
    >>> import numpy as np, pairmi
    >>> X = np.random.default_rng(0).normal(size=(90, 4))
    >>> pairmi.null_mi(X, n_permutations=10, bins=5).shape
    (10, 4, 4)
    """
    if _tb.wanted(backend, X, Y):
        return _torch_null_mi(X, Y, n_permutations, seed, estimator, bins, units, dtype, nan_policy)
    s, cx, cy = _coded_inputs("null_mi", X, Y, nan_policy, estimator, bins, n_permutations, seed, units, threads, dtype)
    shape = (s.n_permutations, cx.codes.shape[1], (cx if cy is None else cy).codes.shape[1])
    # The nulls, one kernel pass's buffer, and the shuffled codes of each pass.
    nbytes = (int(np.prod(shape)) + int(np.prod(shape[1:]))) * s.dtype.itemsize + 2 * (cx if cy is None else cy).codes.size
    _arrays.check_memory(nbytes, f"{s.n_permutations} null matrices", max_bytes)
    nulls = np.empty(shape, dtype=s.dtype)
    buffer = np.empty((1,) + shape[1:], dtype=s.dtype)
    for k, null in enumerate(permutation_nulls(cx, cy, s.n_permutations, s.seed, s.scale, s.threads, buffer)):
        nulls[k] = null[0]
    return nulls


@dataclass(frozen=True)
class MITest:
    """Result of :func:`mi_test`.

    Attributes
    ----------
    mi : ndarray
        Observed MI of every pair (plug-in for the binned estimators).
    null_mean : ndarray
        Mean MI of each pair over the reorderings (the bias to expect under independence); with
        ``null='shared'`` the shared null's mean, the same for every pair.
    p_value : ndarray
        Permutation p-value of each pair, ``(1 + #{null >= observed}) / (1 + n_permutations)``;
        NaN on the diagonal of a square test.
    n_permutations : int
    units : str
    null : str
        ``'shuffle'``, ``'rotation'`` or ``'shared'``.
    """

    mi: np.ndarray
    null_mean: np.ndarray
    p_value: np.ndarray
    n_permutations: int
    units: str
    null: str = "shuffle"

    @property
    def corrected(self) -> np.ndarray:
        """Null-corrected MI: observed minus null mean."""
        return self.mi - self.null_mean

    def q_value(self, method: str = "bh") -> np.ndarray:
        """FDR-adjusted p-values over this test's pairs (each pair of a square test counted once;
        NaN diagonal), by :func:`pairmi.fdr`. For several layers at once: :func:`pairmi.fdr_tests`."""
        return fdr_tests([self], method)[0]

    def significant(self, alpha: float = 0.05, method: str = "bh") -> int:
        """Number of pairs significant at false discovery rate `alpha` (each pair once)."""
        q = self.q_value(method)
        return int((q[stats.upper_pairs(q)] <= alpha).sum())


def fdr_tests(tests: Sequence[MITest], method: str = "bh") -> list[np.ndarray]:
    """q-values of several tests' pairs (e.g. every layer's) adjusted together: the false discovery
    rate across all of them. Each pair of a square test counts once; the q-values come back in
    each test's shape (mirrored, NaN diagonal).

    Examples
    --------
    >>> import numpy as np, pairmi
    >>> H = np.random.default_rng(0).normal(size=(2, 200, 4))
    >>> tests = [pairmi.mi_test(layer, bins=5, n_permutations=99) for layer in H]
    >>> [q.shape for q in pairmi.fdr_tests(tests)]
    [(4, 4), (4, 4)]
    """
    p_values = [_arrays.host(t.p_value) for t in tests]  # a torch test's p-values come to the host
    pieces = [stats.upper_pairs(p) for p in p_values]
    flat = np.concatenate([p[idx] for p, idx in zip(p_values, pieces)]) if tests else np.zeros(0)
    q_flat = stats.fdr(flat, method)
    out, start = [], 0
    for p, idx in zip(p_values, pieces):
        q = np.full(p.shape, np.nan)
        part = q_flat[start : start + idx[0].size]
        q[idx] = part
        if len(idx) == 2 and p.shape[0] == p.shape[1] and np.isnan(np.diag(p)).all():
            q[idx[1], idx[0]] = part
        out.append(q)
        start += idx[0].size
    return out


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
    nan_policy: str = "raise",
    max_bytes: int | None = None,
    null: str = "shuffle",
    segments: Sequence[int] | None = None,
    backend: str | None = None,
) -> MITest:
    """Permutation test of every pair: observed MI, null mean and p-value, reproducible from `seed`.

    Parameters
    ----------
    X, Y, n_permutations, seed, bins, units, threads, nan_policy, max_bytes
        As in :func:`null_mi`.
    estimator : {'equal_width', 'equal_frequency', 'gaussian_copula'}
    null : {'shuffle', 'rotation', 'shared'}
        ``'shuffle'``: each variable's samples permuted (X's columns independently, or Y's), per
        pair: right for exchangeable samples. ``'rotation'``: each variable's sample order shifted
        circularly by a random offset within each segment (``segments``): keeps each variable's
        autocorrelation, so neighbouring tokens of a text, which are not independent, do not make
        the p-values too small (shuffling them does). ``'shared'``: one null distribution for all
        pairs, valid where the null depends on the number of samples (and bins) alone:
        ``'equal_frequency'`` and ``'gaussian_copula'`` on variables without tied values (others
        are refused); ``n_permutations`` draws of two independent variables cost as many pairs,
        not as many passes over all pairs.
    segments : sequence of int, optional
        Lengths of the contiguous documents or windows the samples come in (they add up to n),
        for ``null='rotation'``: rotations never cross them (e.g. ``hs.meta['window_tokens']``).
        Default: one segment.
    backend : {None, 'cpu', 'torch'}
        As in :func:`mi_matrix`: with torch the observed MI, the reorderings (the same as the
        core's, drawn on the host from `seed`) and the statistics are computed on the tensors'
        device, and the MITest's arrays are tensors there (``q_value`` returns numpy).

    Returns
    -------
    MITest
        ``.q_value()`` and ``.significant(alpha)`` control the false discovery rate over the
        pairs; the smallest p-value reachable is ``1 / (n_permutations + 1)``.

    Examples
    --------
    >>> import numpy as np, pairmi
    >>> X = np.random.default_rng(0).normal(size=(300, 6))
    >>> t = pairmi.mi_test(X, estimator="equal_frequency", bins=5, null="shared", n_permutations=199)
    >>> t.p_value.shape, t.significant(0.05)
    ((6, 6), 0)
    """
    if null not in stats.NULLS:
        raise ValueError(f"null must be one of {stats.NULLS}, got {null!r}")
    if estimator not in BINNED_ESTIMATORS + ("gaussian_copula",):
        raise ValueError(f"mi_test supports the binned estimators {BINNED_ESTIMATORS} and 'gaussian_copula', not {estimator!r}")
    if null == "shared" and estimator not in stats.SHARED_NULL_ESTIMATORS:
        raise ValueError(
            f"null='shared' is valid for {stats.SHARED_NULL_ESTIMATORS} only (their null depends on the "
            f"number of samples alone); {estimator!r} depends on each variable's distribution: use "
            "null='shuffle' or 'rotation'"
        )
    if segments is not None and null != "rotation":
        raise ValueError("segments apply to null='rotation'")
    if _tb.wanted(backend, X, Y):
        return _torch_mi_test(X, Y, n_permutations, seed, estimator, bins, units, nan_policy, null, segments)
    x, y = _inputs(X, Y, nan_policy)
    s = _settings(x.shape[1], estimator, bins, 3, None, n_permutations, seed, units, threads, np.float64)
    shape = (1, x.shape[2], x.shape[2] if y is None else y.shape[2])
    values = x.size + (0 if y is None else y.size)
    _arrays.check_memory(
        _test_bytes(shape, values, estimator == "gaussian_copula", null == "rotation"),
        "a permutation test of that many pairs",
        max_bytes,
    )
    reorder = stats.Rotations(x.shape[1], segments) if null == "rotation" else None
    if estimator == "gaussian_copula":
        observed, nulls = _copula_test_passes(x, y, s, reorder)
    else:
        _check_ranges(x, y)
        cx = code_layers(x, s.estimator, s.bins, s.threads)
        cy = None if y is None else code_layers(y, s.estimator, s.bins, s.threads)
        observed = binned_mi(cx, cy, s.scale, np.empty(shape), s.threads)[0]
        nulls = (n[0] for n in permutation_nulls(cx, cy, s.n_permutations, s.seed, s.scale, s.threads, np.empty(shape), reorder))
    tol = 1e-12 * max(1.0, s.scale)  # equal histograms give equal MI up to summation order
    if null == "shared":
        for arr, name in ((x, "X"), (y, "Y")):
            if arr is not None:
                stats.untied_or_raise(arr, name)
        draws = _shared_null(x.shape[1], s)
        p = stats.p_values_from_null(observed, draws, tol)
        total = np.full(observed.shape, draws.mean())
    else:
        total, p = _pass_statistics(observed, nulls, tol, s.n_permutations)
    if y is None:
        np.fill_diagonal(p, np.nan)
    return MITest(observed, total, p, s.n_permutations, units, null)


def _pass_statistics(observed: np.ndarray, nulls: Any, tol: float, n_permutations: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean over the null passes and the permutation p-values of observed."""
    threshold = observed - tol
    total = np.zeros_like(observed)
    exceed = np.zeros(observed.shape, dtype=np.int32)  # n_permutations < 2**31
    hit = np.empty(observed.shape, dtype=bool)
    for null in nulls:
        total += null
        exceed += np.greater_equal(null, threshold, out=hit)
    del threshold, hit
    p = exceed + 1.0
    p /= 1.0 + n_permutations
    total /= n_permutations
    return total, p


def _shared_null(n: int, s: _Settings) -> np.ndarray:
    """n_permutations MI values of two independent untied variables of n samples: ranks against
    permuted ranks (only ranks matter to these estimators), all in one cross call."""
    rng = np.random.default_rng(s.seed)
    ranks = np.arange(n, dtype=np.float64)
    permuted = np.stack([rng.permutation(ranks) for _ in range(s.n_permutations)], axis=1)
    kw: dict[str, Any] = {"bins": s.bins} if s.estimator in BINNED_ESTIMATORS else {}
    return mi_matrix(ranks[:, None], permuted, estimator=s.estimator, units="nats", threads=s.threads, **kw)[0] * s.scale


def _copula_test_passes(x: np.ndarray, y: np.ndarray | None, s: _Settings, reorder: Any) -> tuple[np.ndarray, Any]:
    """Observed copula MI of x (1, n, dx) against itself or y, and a generator of null passes on
    reordered normal scores (each variable's samples shuffled or rotated)."""
    zx = normal_scores(x[0].T)
    zy = zx if y is None else normal_scores(y[0].T)

    def mi(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = mi_of_correlations(a @ b.T, s.scale)
        if y is None:
            np.fill_diagonal(out, np.inf)
        return out

    def passes() -> Any:
        rng = np.random.default_rng(s.seed)
        move = reorder if reorder is not None else stats.shuffled
        for _ in range(s.n_permutations):
            if y is None:
                z = move(rng, zx)
                yield mi(z, z)
            else:
                yield mi(zx, move(rng, zy))

    return mi(zx, zy), passes()


def _torch_nulls_setup(
    X: Any,
    Y: Any,
    n_permutations: int,
    seed: Any,
    estimator: str,
    bins: Bins,
    units: str,
    dtype: npt.DTypeLike,
    nan_policy: str,
) -> tuple[Any, Any, _Settings, bool]:
    """Checked tensors x (1, n, dx) and y of the torch nulls, their settings, and whether X was numpy."""
    names = ["X"] + (["Y"] if Y is not None else [])
    x, *rest = _tb.checked_tensors([X] + ([Y] if Y is not None else []), names, (2,), nan_policy)
    s = _settings(x.shape[1], estimator, bins, 3, None, n_permutations, seed, units, 1, dtype)
    return x, (rest[0] if rest else None), s, not _tb.is_tensor(X)


def _torch_null_mi(
    X: Any, Y: Any, n_permutations: int, seed: Any, estimator: str, bins: Bins, units: str, dtype: npt.DTypeLike, nan_policy: str
) -> Any:
    """null_mi on torch: codes on the device, each pass a gather of them by the core's permutations."""
    if estimator not in BINNED_ESTIMATORS:
        raise ValueError(f"null_mi supports the binned estimators {BINNED_ESTIMATORS}, not {estimator!r}")
    x, y, s, numpy_in = _torch_nulls_setup(X, Y, n_permutations, seed, estimator, bins, units, dtype, nan_policy)
    torch = _tb._torch()
    cx = _tb.codes(x, _tb.fit_edges(x, s.estimator, s.bins))
    cy = None if y is None else _tb.codes(y, _tb.fit_edges(y, s.estimator, s.bins))
    target = cx if cy is None else cy
    nulls = torch.empty(
        (s.n_permutations, cx.shape[1], target.shape[1]),
        dtype=torch.float32 if s.dtype == np.float32 else torch.float64,
        device=x.device,
    )
    for k, moved in enumerate(_tb.reorderings(target[0], s.n_permutations, s.seed, None)):
        a, b = (moved[None], None) if cy is None else (cx, moved[None])
        nulls[k] = _tb.binned_mi_of_codes(a, b, s.bins, s.scale)[0]
    return nulls.cpu().numpy() if numpy_in else nulls


def _torch_mi_test(
    X: Any,
    Y: Any,
    n_permutations: int,
    seed: Any,
    estimator: str,
    bins: Bins,
    units: str,
    nan_policy: str,
    null: str,
    segments: Sequence[int] | None,
) -> MITest:
    """mi_test on torch: observed MI, reorderings and statistics on the device."""
    x, y, s, numpy_in = _torch_nulls_setup(X, Y, n_permutations, seed, estimator, bins, units, np.float64, nan_policy)
    torch = _tb._torch()
    reorder = stats.Rotations(x.shape[1], segments) if null == "rotation" else None
    if estimator == "gaussian_copula":
        zx = _tb.unit_scores(x[0].T)
        zy = zx if y is None else _tb.unit_scores(y[0].T)

        def mi(a: Any, b: Any) -> Any:
            out = _tb.mi_of_correlations(a @ b.T, s.scale)
            if y is None:
                out.fill_diagonal_(float("inf"))
            return out

        observed = mi(zx, zy)
        moves = _tb.reorderings(zy, s.n_permutations, s.seed, reorder)
        nulls = (mi(z, z) if y is None else mi(zx, z) for z in moves)
    else:
        cx = _tb.codes(x, _tb.fit_edges(x, s.estimator, s.bins))
        cy = None if y is None else _tb.codes(y, _tb.fit_edges(y, s.estimator, s.bins))
        observed = _tb.binned_mi_of_codes(cx, cy, s.bins, s.scale)[0]
        moves = _tb.reorderings((cx if cy is None else cy)[0], s.n_permutations, s.seed, reorder)
        nulls = (
            _tb.binned_mi_of_codes(m[None], None, s.bins, s.scale)[0]
            if cy is None
            else _tb.binned_mi_of_codes(cx, m[None], s.bins, s.scale)[0]
            for m in moves
        )
    tol = 1e-12 * max(1.0, s.scale)  # as the core's test
    if null == "shared":
        for arr, name in ((x, "X"), (y, "Y")):
            if arr is not None:
                _tb.untied_or_raise(arr, name)
        draws = torch.sort(torch.as_tensor(_shared_null(x.shape[1], s), device=x.device)).values
        exceed = draws.numel() - torch.searchsorted(draws, (observed - tol).contiguous(), right=False)
        p = _tb.true_divide(1.0 + exceed.to(torch.float64), 1.0 + draws.numel())
        total = torch.full_like(observed, float(draws.mean()))
    else:
        threshold = observed - tol
        total = torch.zeros_like(observed)
        exceed = torch.zeros(observed.shape, dtype=torch.int64, device=x.device)
        for draw in nulls:
            total += draw
            exceed += draw >= threshold
        p = _tb.true_divide(exceed.to(torch.float64) + 1.0, 1.0 + s.n_permutations)
        total = _tb.true_divide(total, s.n_permutations)
    if y is None:
        p.fill_diagonal_(float("nan"))
    if numpy_in:
        observed, total, p = (v.cpu().numpy() for v in (observed, total, p))
    return MITest(observed, total, p, s.n_permutations, units, null)


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
