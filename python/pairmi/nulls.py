"""Permutation statistics: the MI that independence gives (null_mi), permutation tests with
p-values (mi_test) and false discovery rates over several tests (fdr_tests)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from . import _arrays, _dispatch, _memory, backends, stats
from .api import mi_matrix
from .settings import BINNED_ESTIMATORS, Estimator, Settings, as_estimator


def _plain(who: str, est: Estimator) -> Estimator:
    """The estimator, refused if it has a bias correction (a null is of the plug-in MI:
    correcting it is what the null is for)."""
    correction = getattr(est, "correction", None)
    if correction is not None:
        raise ValueError(
            f"{who} works on plug-in MI: the estimator's correction={correction!r} does not apply "
            f"(pass {est.name!r} without a correction)"
        )
    return est


def _inputs(be: Any, X: Any, Y: Any, nan_policy: str) -> tuple[Any, Any]:
    """Checked x (1, n, dx) and y (or None) for the backend."""
    x, *rest = be.inputs([X] if Y is None else [X, Y], ["X", "Y"][: 1 + (Y is not None)], 2, nan_policy)
    return x, (rest[0] if rest else None)


def null_mi(
    X: Any,
    Y: Any = None,
    *,
    n_permutations: int = 100,
    seed: Any = 0,
    estimator: str | Estimator = "equal_width",
    bins: _dispatch.Bins | None = None,
    units: str = "bits",
    threads: int | None = None,
    dtype: npt.DTypeLike | None = None,
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
    dtype : {float64, float32}, optional
        dtype of the result (default float64; float32 halves the memory of the
        ``n_permutations`` matrices).
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
    est = _plain("null_mi", as_estimator(estimator, bins=bins))
    be = backends.choose(backend, X, Y)
    x, y = _inputs(be, X, Y, nan_policy)
    s = Settings.resolve(
        x.shape[1], est, n_permutations=n_permutations, seed=seed, units=units, threads=threads, dtype=dtype, backend=be
    )
    if s.name not in BINNED_ESTIMATORS:
        raise ValueError(f"null_mi supports the binned estimators {BINNED_ESTIMATORS}, not {s.name!r}")
    dy = x.shape[2] if y is None else y.shape[2]
    shape = (s.n_permutations, x.shape[2], dy)
    # The nulls, one kernel pass's buffer, and the shuffled codes of each pass.
    nbytes = (int(np.prod(shape)) + int(np.prod(shape[1:]))) * s.dtype.itemsize + 2 * x.shape[1] * dy
    be.check_memory(
        nbytes,
        f"{s.n_permutations} null matrices",
        max_bytes,
        "use fewer n_permutations or fewer variables (columns of X), or mi_test, which keeps only counts",
    )
    return be.to_caller(be.nulls(x, y, s), X)


@dataclass(frozen=True)
class MITest:
    """Result of :func:`mi_test`.

    Attributes
    ----------
    mi : ndarray
        Observed MI of every pair (plug-in for the binned estimators).
    null_mean : ndarray
        Mean MI of each pair over the reorderings (the bias to expect under independence, or from
        position alone with ``null='windows'``); with ``null='shared'`` the shared null's mean,
        the same for every pair.
    p_value : ndarray
        Permutation p-value of each pair, ``(1 + #{null >= observed}) / (1 + n_permutations)``;
        NaN on the diagonal of a square test. It cannot go below ``1 / (n_permutations + 1)``.
    n_permutations : int
    units : str
    null : str
        ``'shuffle'``, ``'rotation'``, ``'windows'`` or ``'shared'``.
    p_tail : ndarray or None
        A p-value of each pair that goes below the permutation floor, so that pairs can be ranked
        and a false discovery rate controlled over many pairs (numpy, on the host); NaN on the
        diagonal. How it is computed is in ``tail``.
    tail : str
        What ``p_tail`` is: ``'pooled-gpd'`` (each pair's observed MI and permutation draws
        standardized by its draws' mean and standard deviation, the standardized draws of all
        pairs pooled into one null, a generalized Pareto tail fitted beyond its largest values:
        :func:`pairmi.stats.standardized_tail_p`), or ``'shared-gpd'`` (the shared null with such
        a tail).
    """

    mi: np.ndarray
    null_mean: np.ndarray
    p_value: np.ndarray
    n_permutations: int
    units: str
    null: str = "shuffle"
    p_tail: np.ndarray | None = None
    tail: str = ""

    def __repr__(self) -> str:
        shape = "x".join(map(str, tuple(self.p_value.shape)))
        return f"MITest({shape} pairs, null={self.null!r}, n_permutations={self.n_permutations:,}, units={self.units!r})"

    @property
    def corrected(self) -> np.ndarray:
        """Null-corrected MI: observed minus null mean (with ``null='windows'``: the MI beyond
        what position explains)."""
        return self.mi - self.null_mean

    def q_value(self, method: str = "bh", which: str = "permutation") -> np.ndarray:
        """FDR-adjusted p-values over this test's pairs (each pair of a square test counted once;
        NaN diagonal), by :func:`pairmi.fdr`, of the permutation p-values or (``which='tail'``)
        ``p_tail``. For several layers at once: :func:`pairmi.fdr_tests`."""
        return fdr_tests([self], method, which)[0]

    def significant(self, alpha: float = 0.05, method: str = "bh", which: str = "permutation") -> int:
        """Number of pairs significant at false discovery rate `alpha` (each pair once)."""
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating, np.integer)) or not 0 < alpha < 1:
            raise ValueError(f"alpha (the false discovery rate) must be a number in (0, 1), got {alpha!r}")
        q = self.q_value(method, which)
        return int((q[stats.upper_pairs(q)] <= alpha).sum())


def fdr_tests(tests: Sequence[MITest], method: str = "bh", which: str = "permutation") -> list[np.ndarray]:
    """q-values of several tests' pairs (e.g. every layer's) adjusted together: the false discovery
    rate across all of them, of their permutation p-values or (``which='tail'``) their ``p_tail``.
    Each pair of a square test counts once; the q-values come back in each test's shape
    (mirrored, NaN diagonal).

    Examples
    --------
    >>> import numpy as np, pairmi
    >>> H = np.random.default_rng(0).normal(size=(2, 200, 4))
    >>> tests = [pairmi.mi_test(layer, bins=5, n_permutations=99) for layer in H]
    >>> [q.shape for q in pairmi.fdr_tests(tests)]
    [(4, 4), (4, 4)]
    """
    if which not in ("permutation", "tail"):
        raise ValueError(f"which must be 'permutation' or 'tail', got {which!r}")
    if which == "tail" and any(t.p_tail is None for t in tests):
        raise ValueError("a test without tail p-values (made before they existed): use which='permutation'")
    # a torch test's p-values come to the host
    p_values = [_arrays.host(t.p_value if which == "permutation" else t.p_tail) for t in tests]
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
    estimator: str | Estimator = "equal_width",
    bins: _dispatch.Bins | None = None,
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
    null : {'shuffle', 'rotation', 'windows', 'shared'}
        ``'shuffle'``: each variable's samples permuted (X's columns independently, or Y's), per
        pair: right for exchangeable samples. ``'rotation'``: the sample order shifted circularly
        by a random offset within each segment (``segments``), the second variable of every pair
        against the first (never left aligned): keeps each variable's autocorrelation, so
        neighbouring tokens of a text, which are not independent, do not make the p-values too
        small (shuffling them does). ``'windows'``: whole windows (``segments``) moved against each
        other, positions kept (:class:`pairmi.stats.WindowShifts`): the null of a language
        model's units, which all depend on the token's position in its window (rotation counts
        that shared position as dependence); its draws are the W - 1 shifts of W windows, so
        p-values stop at about 1 / W. ``'shared'``: one null distribution for all
        pairs, valid where the null depends on the number of samples (and bins) alone:
        ``'equal_frequency'`` and ``'gaussian_copula'`` on variables without tied values (others
        are refused); ``n_permutations`` draws of two independent variables cost as many pairs,
        not as many passes over all pairs.
    segments : sequence of int, optional
        Lengths of the contiguous documents or windows the samples come in (they add up to n,
        e.g. ``hs.meta['window_tokens']``): rotations never cross them (default: one segment);
        required by ``null='windows'``.
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
    est = _plain("mi_test", as_estimator(estimator, bins=bins))
    if est.name not in BINNED_ESTIMATORS + ("gaussian_copula",):
        raise ValueError(f"mi_test supports the binned estimators {BINNED_ESTIMATORS} and 'gaussian_copula', not {est.name!r}")
    if null == "shared" and est.name not in stats.SHARED_NULL_ESTIMATORS:
        raise ValueError(
            f"null='shared' is valid for {stats.SHARED_NULL_ESTIMATORS} only (their null depends on the "
            f"number of samples alone); {est.name!r} depends on each variable's distribution: use "
            "null='shuffle' or 'rotation'"
        )
    if segments is not None and null not in ("rotation", "windows"):
        raise ValueError("segments apply to null='rotation' and null='windows'")
    be = backends.choose(backend, X, Y)
    x, y = _inputs(be, X, Y, nan_policy)
    s = Settings.resolve(x.shape[1], est, n_permutations=n_permutations, seed=seed, units=units, threads=threads, backend=be)
    shape = (1, x.shape[2], x.shape[2] if y is None else y.shape[2])
    values = x.shape[1] * (shape[1] + (0 if y is None else shape[2]))
    be.check_memory(
        _memory.test_bytes(
            shape, values, s.name == "gaussian_copula", null in ("rotation", "windows"), s.n_permutations, y is None
        ),
        "a permutation test of that many pairs",
        max_bytes,
        "test fewer variables (columns of X, or a Y of a few of them) per call",
    )
    moves = {"rotation": stats.Rotations, "windows": stats.WindowShifts}.get(null)
    reorder = None if moves is None else moves(x.shape[1], segments)
    shared = None
    if null == "shared":
        for arr, name in ((x, "X"), (y, "Y")):
            if arr is not None:
                be.untied_or_raise(arr, name)
        shared = _shared_null(x.shape[1], s)
    pairs = shape[1] * (shape[1] - 1) // 2 if y is None else shape[1] * shape[2]
    message = stats.floor_message(pairs, s.n_permutations)
    if message is not None:
        warnings.warn(message, stats.PermutationFloorWarning, stacklevel=2)
    kept = _pooled_pairs(shape[1:], y is None, s)
    observed, total, p, moments = be.test(x, y, s, reorder, shared, kept)
    host = [_arrays.host(v) for v in (observed, total)]
    if shared is not None:
        p_tail, tail = stats.tail_p(host[0], shared), "shared-gpd"
    else:
        sumsq, draws = moments
        p_tail, tail = stats.standardized_tail_p(host[0], host[1], sumsq, draws, kept, s.n_permutations), "pooled-gpd"
    if y is None:
        np.fill_diagonal(p_tail, np.nan)
    observed, total, p = (be.to_caller(v, X) for v in (observed, total, p))
    return MITest(observed, total, p, s.n_permutations, units, null, p_tail, tail)


def _pooled_pairs(shape: tuple[int, int], square: bool, s: Settings) -> np.ndarray:
    """Flat indices of the pairs whose permutation draws are pooled for the tail p-values: each pair
    once (the upper triangle of a square test), a seeded subset beyond stats.POOLED_DRAWS draws."""
    dx, dy = shape
    count = dx * (dx - 1) // 2 if square else dx * dy
    most = max(1, stats.POOLED_DRAWS // s.n_permutations)
    picks = np.arange(count) if count <= most else np.sort(np.random.default_rng(s.seed).choice(count, most, replace=False))
    if not square:
        return picks
    # The k-th pair of the upper triangle, row by row: row i holds dx - 1 - i pairs.
    starts = np.cumsum(np.concatenate([[0], np.arange(dx - 1, 0, -1)]))
    rows = np.searchsorted(starts, picks, side="right") - 1
    return rows * dy + (picks - starts[rows]) + rows + 1


def _shared_null(n: int, s: Settings) -> np.ndarray:
    """n_permutations MI values of two independent untied variables of n samples: ranks against
    permuted ranks (only ranks matter to these estimators), all in one cross call."""
    rng = np.random.default_rng(s.seed)
    ranks = np.arange(n, dtype=np.float64)
    permuted = np.stack([rng.permutation(ranks) for _ in range(s.n_permutations)], axis=1)
    est = as_estimator(s.name, bins=s.bins) if s.name in BINNED_ESTIMATORS else s.estimator
    return mi_matrix(ranks[:, None], permuted, estimator=est, units="nats", threads=s.threads)[0] * s.scale


def position_null(
    X: Any,
    segments: Sequence[int],
    *,
    lags: int | Sequence[int] = 1,
    estimator: str | Estimator = "equal_width",
    bins: _dispatch.Bins | None = None,
    edges: Any = None,
    units: str = "bits",
    threads: int | None = None,
) -> np.ndarray:
    """The MI of every pair that position alone gives: each unit against the others a whole
    window later, at the same positions.

    For each lag s, unit i's tokens of window w are paired with unit j's tokens at the same
    positions of window w + s (w + s < W, positions both windows hold): the units keep their
    positional profiles but share no token, so their MI is what position (and whatever else is
    the same in every window) explains. The pair's value is the mean over the lags of both
    directions (i earlier and j earlier). A corpus run (``window_lags=``) accumulates exactly
    these counts as it streams; this is its in-memory reference.

    Parameters
    ----------
    X : array_like, shape (n_samples, n_variables) or (n_layers, n_samples, n_variables)
    segments : sequence of int
        The window lengths in order (``hs.meta['window_tokens']``); at least ``max(lags) + 1``.
    lags : int or sequence of int
        Whole-window lags (default 1).
    estimator, bins, units, threads
        As in :func:`mi_matrix` (the binned estimators and the copula).
    edges : array_like, optional
        Fixed edges (or knots) of the variables, as a corpus run fixes them; default: from X.

    Returns
    -------
    ndarray, shape (d, d) or (n_layers, d, d)
        Symmetric, 0 on the diagonal. ``mi - position_null(...)`` is the MI beyond position.

    Examples
    --------
    >>> import numpy as np, pairmi
    >>> rng = np.random.default_rng(0)
    >>> shared = rng.normal(size=64)  # units 0 and 1 follow one profile over a window's positions
    >>> X = np.tile(np.column_stack([shared, shared, rng.normal(size=64)]), (20, 1))
    >>> X += 0.5 * rng.normal(size=X.shape)  # and share nothing else
    >>> mi = pairmi.mi_matrix(X, estimator="gaussian_copula")
    >>> null = pairmi.position_null(X, [64] * 20, estimator="gaussian_copula")
    >>> round(float(mi[0, 1]), 2), round(float(null[0, 1]), 2)  # position explains nearly all of it
    (0.63, 0.61)
    """
    est = as_estimator(estimator, bins=bins)
    steps = stats.check_lags(lags)
    x = _arrays.to_numpy(X, "X")
    if x.ndim not in (2, 3):
        raise ValueError(f"X must be 2-d (samples, variables) or 3-d (layers, samples, variables), got shape {x.shape}")
    layered = x if x.ndim == 3 else x[None]
    stats.segment_starts(segments, layered.shape[1])  # the lengths add up to the samples
    if len(segments) <= max(steps):
        raise ValueError(f"{len(segments)} windows hold no pair at lag {max(steps)}: pass more windows or smaller lags")
    fixed = None if edges is None else _arrays.to_numpy(edges, "edges")
    if fixed is not None and fixed.ndim == 2:
        fixed = fixed[None]
    total = np.zeros((layered.shape[0], layered.shape[2], layered.shape[2]))
    for s in steps:
        a, b = stats.lagged_pairs(segments, s)
        for k, layer in enumerate(layered):
            kw: dict[str, Any] = {} if fixed is None else {"edges": fixed[k], "edges_y": fixed[k]}
            m = mi_matrix(layer[a], layer[b], estimator=est, units=units, threads=threads, **kw)
            total[k] += 0.5 * (m + m.T)
    total /= len(steps)
    idx = np.arange(total.shape[-1])
    total[:, idx, idx] = 0.0
    return total if x.ndim == 3 else total[0]
