"""Permutation statistics: the MI that independence gives (null_mi), permutation tests with
p-values (mi_test) and false discovery rates over several tests (fdr_tests)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from . import _arrays, _dispatch, _memory, stats
from .api import mi_matrix
from .backends import torch as _tb
from .binned import binned_mi, code_layers, permutation_nulls
from .copula import mi_of_correlations, normal_scores
from .settings import BINNED_ESTIMATORS, Estimator, Settings, unpack


def _plain(who: str, estimator: str | Estimator, bins: Any) -> tuple[str, Any]:
    """The estimator's name and bins; one with a bias correction is refused (a null is of the
    plug-in MI: correcting it is what the null is for)."""
    name, bins, _, correction, _ = unpack(estimator, bins=bins)
    if correction is not None:
        raise ValueError(
            f"{who} works on plug-in MI: the estimator's correction={correction!r} does not apply "
            f"(pass {name!r} without a correction)"
        )
    return name, bins


def _coded_inputs(who, X, Y, nan_policy, estimator, bins, n_permutations, seed, units, threads, dtype):
    """Checked settings and binned codes of X (and Y) for the permutation functions."""
    x, y = _dispatch.inputs(X, Y, nan_policy)
    s = Settings.resolve(
        x.shape[1], estimator, bins=bins, n_permutations=n_permutations, seed=seed, units=units, threads=threads, dtype=dtype
    )
    if s.estimator not in BINNED_ESTIMATORS:
        raise ValueError(f"{who} supports the binned estimators {BINNED_ESTIMATORS}, not {estimator!r}")
    _dispatch.check_ranges(x, y)
    cx = code_layers(x, s.estimator, s.bins, s.threads)
    return s, cx, None if y is None else code_layers(y, s.estimator, s.bins, s.threads)


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
    estimator, bins = _plain("null_mi", estimator, bins)
    if _tb.wanted(backend, X, Y):
        return _torch_null_mi(X, Y, n_permutations, seed, estimator, bins, units, dtype, nan_policy)
    s, cx, cy = _coded_inputs("null_mi", X, Y, nan_policy, estimator, bins, n_permutations, seed, units, threads, dtype)
    shape = (s.n_permutations, cx.codes.shape[1], (cx if cy is None else cy).codes.shape[1])
    # The nulls, one kernel pass's buffer, and the shuffled codes of each pass.
    nbytes = (int(np.prod(shape)) + int(np.prod(shape[1:]))) * s.dtype.itemsize + 2 * (cx if cy is None else cy).codes.size
    _memory.check_memory(
        nbytes,
        f"{s.n_permutations} null matrices",
        max_bytes,
        "use fewer n_permutations or fewer variables (columns of X), or mi_test, which keeps only counts",
    )
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

    def __repr__(self) -> str:
        shape = "x".join(map(str, tuple(self.p_value.shape)))
        return f"MITest({shape} pairs, null={self.null!r}, n_permutations={self.n_permutations:,}, units={self.units!r})"

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
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating, np.integer)) or not 0 < alpha < 1:
            raise ValueError(f"alpha (the false discovery rate) must be a number in (0, 1), got {alpha!r}")
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
    estimator, bins = _plain("mi_test", estimator, bins)
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
    x, y = _dispatch.inputs(X, Y, nan_policy)
    s = Settings.resolve(x.shape[1], estimator, bins=bins, n_permutations=n_permutations, seed=seed, units=units, threads=threads)
    shape = (1, x.shape[2], x.shape[2] if y is None else y.shape[2])
    values = x.size + (0 if y is None else y.size)
    _memory.check_memory(
        _memory.test_bytes(shape, values, estimator == "gaussian_copula", null == "rotation"),
        "a permutation test of that many pairs",
        max_bytes,
        "test fewer variables (columns of X, or a Y of a few of them) per call",
    )
    reorder = stats.Rotations(x.shape[1], segments) if null == "rotation" else None
    if estimator == "gaussian_copula":
        observed, nulls = _copula_test_passes(x, y, s, reorder)
    else:
        _dispatch.check_ranges(x, y)
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


def _shared_null(n: int, s: Settings) -> np.ndarray:
    """n_permutations MI values of two independent untied variables of n samples: ranks against
    permuted ranks (only ranks matter to these estimators), all in one cross call."""
    rng = np.random.default_rng(s.seed)
    ranks = np.arange(n, dtype=np.float64)
    permuted = np.stack([rng.permutation(ranks) for _ in range(s.n_permutations)], axis=1)
    kw: dict[str, Any] = {"bins": s.bins} if s.estimator in BINNED_ESTIMATORS else {}
    return mi_matrix(ranks[:, None], permuted, estimator=s.estimator, units="nats", threads=s.threads, **kw)[0] * s.scale


def _copula_test_passes(x: np.ndarray, y: np.ndarray | None, s: Settings, reorder: Any) -> tuple[np.ndarray, Any]:
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
    bins: _dispatch.Bins,
    units: str,
    dtype: npt.DTypeLike | None,
    nan_policy: str,
) -> tuple[Any, Any, Settings, bool]:
    """Checked tensors x (1, n, dx) and y of the torch nulls, their settings, and whether X was numpy."""
    names = ["X"] + (["Y"] if Y is not None else [])
    x, *rest = _tb.checked_tensors([X] + ([Y] if Y is not None else []), names, (2,), nan_policy)
    s = Settings.resolve(
        x.shape[1], estimator, bins=bins, n_permutations=n_permutations, seed=seed, units=units, threads=1, dtype=dtype
    )
    return x, (rest[0] if rest else None), s, not _tb.is_tensor(X)


def _torch_null_mi(
    X: Any,
    Y: Any,
    n_permutations: int,
    seed: Any,
    estimator: str,
    bins: _dispatch.Bins,
    units: str,
    dtype: npt.DTypeLike | None,
    nan_policy: str,
) -> Any:
    """null_mi on torch: codes on the device, each pass a gather of them by the core's permutations."""
    if estimator not in BINNED_ESTIMATORS:
        raise ValueError(f"null_mi supports the binned estimators {BINNED_ESTIMATORS}, not {estimator!r}")
    x, y, s, numpy_in = _torch_nulls_setup(X, Y, n_permutations, seed, estimator, bins, units, dtype, nan_policy)
    torch = _tb.torch_module()
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
    bins: _dispatch.Bins,
    units: str,
    nan_policy: str,
    null: str,
    segments: Sequence[int] | None,
) -> MITest:
    """mi_test on torch: observed MI, reorderings and statistics on the device."""
    x, y, s, numpy_in = _torch_nulls_setup(X, Y, n_permutations, seed, estimator, bins, units, np.float64, nan_policy)
    torch = _tb.torch_module()
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
