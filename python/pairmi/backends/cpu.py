"""The C++ core as a backend: numpy in, numpy out (a tensor is copied to the host)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _arrays, _core, _dispatch, _memory, _outputs, _threads, stats
from .._blocks import Blocks
from ..binned import Coded, bin_edges, binned_mi, permutation_nulls
from ..copula import fit_knots, knot_scores, mapped_scores, mi_of_correlations, normal_scores
from ..settings import Estimator, Settings
from .backend import Backend


class CPU(Backend):
    """The estimators in the C++ core (and numpy for the copula's products)."""

    name = "cpu"

    # --- inputs -----------------------------------------------------------------------------------

    def as_array(self, data: Any, name: str) -> np.ndarray:
        return _arrays.to_numpy(data, name)

    def inputs(self, arrays: list[Any], names: list[str], ndim: int, nan_policy: str, dims: Any = None) -> list[np.ndarray]:
        """Checked (layers, n, d) arrays sharing their samples: 2-d ones get a layer axis, ``dims``
        picks variables (before NaN or Inf is looked for), the nan_policy is applied."""
        xs = [_arrays.samples(a if dims is None else a[:, :, dims], name, ndim) for a, name in zip(arrays, names)]
        xs = [x[None] if ndim == 2 else x for x in xs]
        if len(xs) == 2 and xs[1].shape[1] != xs[0].shape[1]:
            raise ValueError(f"X and Y must have the same number of samples (rows): {xs[0].shape[1]} != {xs[1].shape[1]}")
        return _arrays.apply_nan_policy(xs, names, nan_policy)

    def fixed_edges(
        self, est: Estimator, x_shape: tuple, y_shape: tuple | None, edges: Any, edges_y: Any
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        return _dispatch.fixed_edges(est.name, x_shape, y_shape, edges, edges_y)

    def to_caller(self, values: Any, like: Any) -> Any:
        return values

    def check_memory(self, nbytes: int, what: str, max_bytes: int | None, advice: str) -> None:
        """MemoryError before the work when it would not fit this machine's memory (or max_bytes)."""
        _memory.check_memory(nbytes, what, max_bytes, advice)

    def layered_out(self, out: Any, shape: tuple[int, int]) -> np.ndarray:
        """A caller's out= (dx, dy), checked against the shape the caller knows, with a layer axis."""
        out = _outputs.out_array(out)
        _outputs.check_out(out, shape)
        return out[None]

    # --- the MI of all pairs ----------------------------------------------------------------------

    def mi(self, x: np.ndarray, y: np.ndarray | None, s: Settings, progress: Any, out: Any, max_bytes: Any, name: str) -> Any:
        return _dispatch.compute(x, y, s, progress, None if out is None else _outputs.out_array(out), max_bytes, name)

    # --- permutations -----------------------------------------------------------------------------

    def nulls(self, x: np.ndarray, y: np.ndarray | None, s: Settings) -> np.ndarray:
        """The MI (n_permutations, dx, dy) of x (1, n, dx) against itself (each variable shuffled)
        or y (shuffled), for each permutation."""
        cx, cy = _coded(x, y, s)
        shape = (s.n_permutations, x.shape[2], x.shape[2] if y is None else y.shape[2])
        nulls = np.empty(shape, dtype=s.dtype)
        buffer = np.empty((1,) + shape[1:], dtype=s.dtype)
        for k, null in enumerate(permutation_nulls(cx, cy, s.n_permutations, s.seed, s.scale, s.threads, buffer)):
            nulls[k] = null[0]
        return nulls

    def test(
        self, x: np.ndarray, y: np.ndarray | None, s: Settings, reorder: Any, shared: np.ndarray | None, kept: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
        """Observed MI, null mean and permutation p-values of x (1, n, dx) against itself or y:
        each variable reordered by ``reorder`` (default shuffled), or one ``shared`` null; with
        the passes, each pair's sum of squared draws and the draws of the pairs ``kept`` (flat
        indices) for the tail p-values (None with a shared null)."""
        shape = (1, x.shape[2], x.shape[2] if y is None else y.shape[2])
        if s.name == "gaussian_copula":
            observed, nulls = _copula_passes(x, y, s, reorder)
        else:
            cx, cy = _coded(x, y, s)
            observed = binned_mi(cx, cy, s.scale, np.empty(shape), s.threads)[0]
            nulls = (
                n[0] for n in permutation_nulls(cx, cy, s.n_permutations, s.seed, s.scale, s.threads, np.empty(shape), reorder)
            )
        tol = 1e-12 * max(1.0, s.scale)  # equal histograms give equal MI up to summation order
        moments = None
        if shared is not None:
            p = stats.p_values_from_null(observed, shared, tol)
            total = np.full(observed.shape, shared.mean())
        else:
            total, p, sumsq, draws = _pass_statistics(observed, nulls, tol, s.n_permutations, kept)
            moments = (sumsq, draws)
        if y is None:
            np.fill_diagonal(p, np.nan)
        return observed, total, p, moments

    def untied_or_raise(self, x: np.ndarray, name: str) -> None:
        stats.untied_or_raise(x, name)

    def totals(self, chunk: Any, y: Any) -> CoreTotals:
        """A stream's totals store, for chunks like these: numpy arrays counted by the core."""
        return CoreTotals()


def _coded(x: np.ndarray, y: np.ndarray | None, s: Settings) -> tuple[Coded, Coded | None]:
    """The binned codes of x (and y), prepared as the block engine prepares them."""
    _dispatch.check_ranges(x, y)
    blocks = Blocks(x[0], None if y is None else y[0], s)
    assert blocks.coded is not None
    return blocks.coded[0], None if y is None else blocks.coded[1]


def _pass_statistics(
    observed: np.ndarray, nulls: Any, tol: float, n_permutations: int, kept: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean over the null passes, the permutation p-values of observed, each pair's sum of squared
    draws, and the draws (n_permutations, len(kept)) of the pairs ``kept`` (flat indices)."""
    threshold = observed - tol
    total = np.zeros_like(observed)
    sumsq = np.zeros_like(observed)
    draws = np.empty((n_permutations, kept.size), dtype=np.float32)
    exceed = np.zeros(observed.shape, dtype=np.int32)  # n_permutations < 2**31
    hit = np.empty(observed.shape, dtype=bool)
    for k, null in enumerate(nulls):
        total += null
        sumsq += np.square(null)
        draws[k] = null.ravel()[kept]
        exceed += np.greater_equal(null, threshold, out=hit)
    del threshold, hit
    p = exceed + 1.0
    p /= 1.0 + n_permutations
    total /= n_permutations
    return total, p, sumsq, draws


def _copula_passes(x: np.ndarray, y: np.ndarray | None, s: Settings, reorder: Any) -> tuple[np.ndarray, Any]:
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
        common = getattr(reorder, "common", False)
        for _ in range(s.n_permutations):
            if y is not None:
                yield mi(zx, move(rng, zy))
            elif common:  # rows in place against moved columns: each pair's draw above the diagonal
                yield stats.mirrored_upper(mi(zx, move(rng, zx)), np.inf)
            else:
                z = move(rng, zx)
                yield mi(z, z)

    return mi(zx, zy), passes()


class CoreTotals:
    """An accumulator's totals as numpy arrays, counted by the C++ core (the copula's sums by numpy)."""

    device = None
    numpy_out = True

    def __init__(self) -> None:
        self._scores: Any = None  # the copula's knot scores, for the edges they belong to

    def same_place(self, other: Any) -> bool:
        """Whether other's totals are numpy too (so they add to these as they are)."""
        return other.device is None

    def chunk(self, chunk: Any, y: Any, nan_policy: str, check: Any, fitting: bool) -> tuple[Any, Any, bool, str]:
        """x (layers, n, dx) and y of a chunk, C-contiguous, the nan_policy applied; whether it was
        2-d, and its dtype's name. ``check(x_shape, dtype, y_shape, squeeze)`` checks the shapes
        against the accumulator's first chunk; ``fitting``: the chunk sets binned edges (finite
        ranges needed)."""
        x, squeeze = as_layers(chunk, "chunk")
        y_arr = None
        if y is not None:
            y_arr, y_squeeze = as_layers(y, "y")
            if y_squeeze != squeeze or y_arr.shape[:2] != x.shape[:2]:
                raise ValueError(f"y must have the chunk's layers and samples: {x.shape[:2]} != {y_arr.shape[:2]}")
        if x.shape[1] == 0:
            raise ValueError("the chunk has no samples")
        check(x.shape, x.dtype.name, None if y_arr is None else y_arr.shape, squeeze)
        arrays = [x] if y_arr is None else [x, y_arr]
        arrays = _arrays.apply_nan_policy(arrays, ["chunk", "y"][: len(arrays)], nan_policy, min_samples=1)
        if fitting:
            for arr, name in zip(arrays, ["chunk", "y"]):
                _arrays.check_ranges(arr, name)
        return arrays[0], (arrays[1] if len(arrays) > 1 else None), squeeze, x.dtype.name

    def fit(self, arr: np.ndarray, estimator: str, bins: int, threads: int | None) -> np.ndarray:
        """Edges (binned) or knots (copula) of arr (layers, n, d), ``bins`` of them."""
        if estimator == "gaussian_copula":
            return fit_knots(arr, bins)
        return bin_edges(arr, estimator, bins, _threads.resolve_threads(threads))

    def zeros(self, shapes: dict[str, tuple[tuple[int, ...], Any]], what: str) -> dict[str, np.ndarray]:
        """Zero totals of the canonical shapes (name -> (shape, dtype)), memory checked first."""
        nbytes = sum(8 * int(np.prod(shape)) for shape, _ in shapes.values())
        _memory.check_memory(nbytes, what, None, "stream fewer variables (or layers) per accumulator, or fewer bins")
        return {name: np.zeros(shape, dtype=dtype) for name, (shape, dtype) in shapes.items()}

    def add(
        self,
        totals: dict[str, Any],
        x: np.ndarray,
        y: np.ndarray | None,
        edges: np.ndarray,
        edges_y: Any,
        estimator: str,
        threads: int | None,
    ) -> None:
        """Add a checked chunk's counts (or the copula's sums) to totals, all of them or none."""
        if estimator == "gaussian_copula":
            self._add_scores(x, y, edges, edges_y, totals)
            return
        n_threads = _threads.resolve_threads(threads)
        codes_x = _core.bin_codes(x, edges, n_threads)
        codes_y = None if y is None else _core.bin_codes(y, edges_y, n_threads)
        _core.add_pair_counts(
            codes_x, codes_y, edges.shape[2] - 1, totals["counts"], totals["marginal_x"], totals.get("marginal_y"), n_threads
        )

    def _add_scores(
        self, x: np.ndarray, y: np.ndarray | None, edges: np.ndarray, edges_y: Any, totals: dict[str, np.ndarray]
    ) -> None:
        """The copula's sums: each layer's mapped scores, their squares and cross-products."""
        if self._scores is None or self._scores[0] is not edges:  # the knots' scores, once per map
            self._scores = (edges, knot_scores(edges), None if edges_y is None else knot_scores(edges_y))
        sx: Any = self._scores[1]
        sy: Any = self._scores[2]
        parts = []
        for l in range(x.shape[0]):
            zx = mapped_scores(x[l].T, edges[l], sx[l])
            zy = zx if y is None else mapped_scores(y[l].T, edges_y[l], sy[l])
            parts.append(
                (
                    zx.sum(axis=1),
                    np.einsum("ij,ij->i", zx, zx),
                    zx @ zy.T,
                    None if y is None else (zy.sum(axis=1), np.einsum("ij,ij->i", zy, zy)),
                )
            )
        for l, (s, q, c, ys) in enumerate(parts):
            totals["sum_x"][l] += s
            totals["sq_x"][l] += q
            totals["cross"][l] += c
            if ys is not None:
                totals["sum_y"][l] += ys[0]
                totals["sq_y"][l] += ys[1]

    def mi(
        self,
        totals: dict[str, Any],
        n: int,
        estimator: str,
        correction: str | None,
        scale: float,
        threads: int | None,
        shape: tuple[int, int, int],
        dtype: np.dtype,
        bins: int,
    ) -> np.ndarray:
        """The MI (layers, dx, dy) of every pair from the totals of n samples, in nats times scale, in dtype."""
        out = np.empty(shape, dtype=dtype)
        if estimator == "gaussian_copula":
            out[...] = _copula_nats(totals, n) * scale
            return out
        _core.mi_from_counts(
            totals["counts"],
            totals["marginal_x"],
            totals.get("marginal_y"),
            bins,
            n,
            correction == "miller_madow",
            scale,
            out,
            _threads.resolve_threads(threads),
        )
        return out

    def canonical(self, totals: dict[str, Any], estimator: str, layout: dict[str, Any]) -> dict[str, np.ndarray]:
        """The totals as the C++ core keeps them (they are)."""
        return totals

    def from_canonical(self, totals: dict[str, np.ndarray], estimator: str, layout: dict[str, Any]) -> dict[str, Any]:
        return totals

    def output(self, values: Any, dtype: np.dtype, squeeze: bool) -> np.ndarray:
        out = _arrays.host(values).astype(dtype, copy=False)
        return out[0] if squeeze else out


def _copula_nats(t: dict[str, np.ndarray], n_samples: int) -> np.ndarray:
    """The copula's MI in nats from the sums and cross-products of n_samples mapped scores."""
    n = float(n_samples)
    mean_x = t["sum_x"] / n
    var_x = np.maximum(t["sq_x"] / n - mean_x**2, 0.0)
    if "sum_y" in t:
        mean_y = t["sum_y"] / n
        var_y = np.maximum(t["sq_y"] / n - mean_y**2, 0.0)
    else:
        mean_y, var_y = mean_x, var_x
    cov = t["cross"] / n - mean_x[:, :, None] * mean_y[:, None, :]
    denom = np.sqrt(var_x[:, :, None] * var_y[:, None, :])
    mi = mi_of_correlations(np.divide(cov, denom, out=np.zeros_like(cov), where=denom > 0))
    if "sum_y" not in t:
        idx = np.arange(mi.shape[-1])
        mi[:, idx, idx] = np.inf
    return mi


def as_layers(data: Any, name: str) -> tuple[np.ndarray, bool]:
    """`data` (n, d) or (layers, n, d) as a C-contiguous (layers, n, d) array, and whether it was 2-d."""
    arr = _arrays.to_numpy(data, name)
    if arr.ndim == 2:
        return np.ascontiguousarray(arr[None]), True
    if arr.ndim == 3:
        return np.ascontiguousarray(arr), False
    raise ValueError(f"{name} must be 2-d (samples, variables) or 3-d (layers, samples, variables), got shape {arr.shape}")
