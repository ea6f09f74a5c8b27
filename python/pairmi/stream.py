"""Streaming MI over chunks of samples: sufficient statistics that add up, merge and resume.

Binned MI needs only each pair's joint bin counts, and the Gaussian copula only the sums and
cross-products of normal scores: both add up over samples. An :class:`Accumulator` adds them chunk
by chunk (counting in the C++ core), merges partial results from other processes, saves and loads
its state, and gives the MI matrix whenever asked. Edges (or the copula's normal-score map) must be
fixed before the first chunk: :func:`fit_edges` derives them from a calibration sample.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from . import _arrays, _core, _memory, _threads
from ._files import atomic_file
from ._npz import read_npz
from .backends.torch import wanted as tb_wanted
from .binned import bin_edges
from .copula import fit_knots, knot_scores, mapped_scores, mi_of_correlations
from .settings import BINNED_ESTIMATORS, DEFAULT_BINS, Estimator, auto_bins, check_dtype, unpack

STREAM_ESTIMATORS = BINNED_ESTIMATORS + ("gaussian_copula",)
FORMAT = "pairmi.Accumulator"
FORMAT_VERSION = 1
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
    estimator, bins, *_ = unpack(estimator, bins=bins)
    _check_estimator(estimator)
    x, squeeze = _as_layers(sample, "sample")
    x = _arrays.apply_nan_policy([x], ["sample"], nan_policy)[0]
    n = x.shape[1]
    if estimator == "gaussian_copula":
        edges = fit_knots(x, fitted_bins(estimator, bins, n))
    else:
        _arrays.check_ranges(x, "sample")
        edges = bin_edges(x, estimator, fitted_bins(estimator, bins, n), _threads.resolve_threads(threads))
    return edges[0] if squeeze else edges


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


def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    """The method run holding the accumulator's lock (and, for merge, the other's: both taken in
    one global order, so two threads merging two accumulators into each other cannot deadlock)."""

    @functools.wraps(method)
    def run(self: Accumulator, *args: Any, **kwargs: Any) -> Any:
        others = [a for a in args if isinstance(a, Accumulator) and a is not self]
        locks = [acc._lock for acc in sorted([self, *others], key=id)]
        with contextlib.ExitStack() as held:
            for lock in locks:
                held.enter_context(lock)
            return method(self, *args, **kwargs)

    return run


class Accumulator:
    """All-pairs MI over samples that arrive in chunks, in bounded memory.

    Parameters
    ----------
    estimator : {'equal_width', 'equal_frequency', 'gaussian_copula'}
    edges : array_like, optional
        Fixed edges of the variables (of X), from :func:`fit_edges`: (d, bins + 1) or
        (layers, d, bins + 1); for the copula the knots of the normal-score map. Default: fitted on
        the first chunk (with ``bins``), which then serves as the calibration sample.
    edges_y : array_like, optional
        The same for Y, for pairs of X against Y (e.g. two layers); default: fitted on the first
        chunk of Y.
    bins : int, optional
        Bins (or the copula's knots) when the edges are fitted on the first chunk; default 15.
    correction : {None, 'miller_madow'}
        Bias correction of the binned result (as in :func:`pairmi.mi_matrix`).
    units : {'bits', 'nats'}
    dtype : {float64, float32}
        dtype of :meth:`result`.
    threads : int, optional
    nan_policy : {'raise', 'omit'}
        NaN or Inf in a chunk: ValueError (the state unchanged), or drop those samples.
    backend : {None, 'cpu', 'torch'}
        Where the totals live and the counting runs. ``'torch'``: on the device of the first chunk
        (a torch tensor; the CPU for numpy chunks), by one-hot matrix products (binned) or products
        of mapped normal scores (copula), so a corpus run on a GPU never moves activations to the
        host; :meth:`result` and :meth:`bias` are then tensors there (numpy if the chunks were
        numpy). ``'cpu'``: the C++ core (tensors are copied to the host). Default: ``'torch'`` when
        the first chunk is a tensor on an accelerator, else ``'cpu'``. Both give the same counts,
        save the same state, and merge with each other.

    Notes
    -----
    Binned: the joint counts of every pair (8 bytes a cell: ``layers * d * (d - 1) / 2 * bins**2 *
    8`` bytes for a set against itself; 530 MB for 768 variables and 15 bins) are exact 64-bit
    integers, so any chunking and any merge order give bit-identical results, equal within
    rounding (1e-12 bits) to :func:`pairmi.mi_matrix` on all the samples with the same edges.
    Copula: float64 sums and cross-products of the mapped normal scores (``layers * d * d * 8``
    bytes); equal to ``mi_matrix(..., estimator='gaussian_copula', edges=knots)`` within rounding.
    Every chunk must have the shape, the number of variables and the dtype of the first. A chunk
    that fails a check, or an update stopped by Ctrl-C, leaves the state unchanged.

    One accumulator may be shared by threads: :meth:`update`, :meth:`merge`, :meth:`result`,
    :meth:`bias` and :meth:`save` hold its lock, so calls from several threads run one after
    another (each already uses ``threads`` cores) and no count is lost. To count in parallel, give
    each thread (or process) its own accumulator and :meth:`merge` them.

    Examples
    --------
    >>> import numpy as np, pairmi
    >>> rng = np.random.default_rng(0)
    >>> acc = pairmi.Accumulator("equal_width", edges=pairmi.fit_edges(rng.normal(size=(500, 3))))
    >>> for _ in range(4):
    ...     _ = acc.update(rng.normal(size=(1000, 3)))
    >>> acc.n_samples, acc.result().shape
    (4000, (3, 3))
    """

    def __init__(
        self,
        estimator: str | Estimator = "equal_width",
        *,
        edges: Any = None,
        edges_y: Any = None,
        bins: int | str | None = None,
        correction: str | None = None,
        units: str = "bits",
        dtype: npt.DTypeLike | None = None,
        threads: int | None = None,
        nan_policy: str = "raise",
        backend: str | None = None,
    ) -> None:
        if isinstance(estimator, Estimator):  # its bins are the default of edges fitted on the first chunk
            estimator, bins, _, correction, _ = unpack(estimator, bins=bins, correction=correction)
        _check_estimator(estimator)
        tb_wanted(backend)  # checks the name
        if correction not in (None, "miller_madow"):
            raise ValueError(f"correction must be None or 'miller_madow' for streaming, got {correction!r}")
        if correction is not None and estimator not in BINNED_ESTIMATORS:
            raise ValueError(f"correction={correction!r} applies to the binned estimators, not {estimator!r}")
        if nan_policy not in _arrays.NAN_POLICIES:
            raise ValueError(f"nan_policy must be one of {_arrays.NAN_POLICIES}, got {nan_policy!r}")
        self.estimator = estimator
        self.correction = correction
        self.units = units
        self.scale = _arrays.unit_scale(units)
        self.dtype = check_dtype(dtype)
        self.threads = threads
        self.nan_policy = nan_policy
        self.bins = bins
        self.backend = backend
        self.device: Any = None  # the torch device of the totals; None: numpy totals, the C++ core
        self._numpy_out = True  # results as numpy (the chunks were), else tensors on the device
        self._given = (
            None if edges is None else _arrays.to_numpy(edges, "edges"),
            None if edges_y is None else _arrays.to_numpy(edges_y, "edges_y"),
        )
        # (layers, dx, k) float64, fixed at the first chunk (None before it)
        self.edges: Any = None
        self.edges_y: Any = None
        self.n_samples = 0
        self._layout: dict[str, Any] | None = None  # the first chunk's shape and dtype
        self._totals: dict[str, Any] = {}  # numpy arrays, or tensors on self.device
        self._scores: Any = None  # the copula's knot scores, for the edges they belong to
        self._maps: tuple[Any, ...] | None = None  # the edges (or knots and scores) on the device, likewise
        self._lock = threading.RLock()  # one update (merge, result, save) at a time

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()  # pickled for Dask's workers: a lock does not travel
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    def _settings(self) -> dict[str, Any]:
        """Keyword arguments that make an empty accumulator of this one's kind and edges."""
        return {
            "estimator": self.estimator,
            "edges": self.edges if self.edges is not None else self._given[0],
            "edges_y": self.edges_y if self.edges_y is not None else self._given[1],
            "bins": self.bins,
            "correction": self.correction,
            "units": self.units,
            "dtype": self.dtype,
            "threads": self.threads,
            "nan_policy": self.nan_policy,
            "backend": self.backend,
        }

    # --- adding samples ---------------------------------------------------------------------------

    @_locked
    def update(self, chunk: Any, y: Any = None) -> Accumulator:
        """Add a chunk of samples: (n, d), or (layers, n, d) for several layers at once, and the
        same samples of Y if the accumulator pairs X against Y. Returns self."""
        if self._layout is None and self.device is None and tb_wanted(self.backend, chunk, y):
            from .backends import torch as tb

            self.device = next((v.device for v in (chunk, y) if tb.is_tensor(v)), tb.torch_module().device("cpu"))
            self._numpy_out = not tb.is_tensor(chunk)
        if self.device is not None:
            return self._update_on_device(chunk, y)
        x, y_arr, squeeze = self._checked_chunk(chunk, y)
        layout = self._layout or self._new_layout(x, y_arr, squeeze)
        edges, edges_y = (self.edges, self.edges_y) if self._layout else self._first_edges(x, y_arr)
        totals = self._totals or self._new_totals(layout, edges)
        # Everything that can fail is done: from here the state changes, all of it together.
        if self.estimator == "gaussian_copula":
            self._add_scores(x, y_arr, edges, edges_y, totals)
        else:
            threads = _threads.resolve_threads(self.threads)
            codes_x = _core.bin_codes(x, edges, threads)
            codes_y = None if y_arr is None else _core.bin_codes(y_arr, edges_y, threads)
            _core.add_pair_counts(
                codes_x, codes_y, edges.shape[2] - 1, totals["counts"], totals["marginal_x"], totals.get("marginal_y"), threads
            )
        self._layout, self.edges, self.edges_y, self._totals = layout, edges, edges_y, totals
        self.n_samples += x.shape[1]
        return self

    @_locked
    def merge(self, other: Accumulator) -> Accumulator:
        """Add another accumulator's samples (e.g. from another process or shard) to this one.
        Both must have the same estimator, edges and shapes. Returns self."""
        if not isinstance(other, Accumulator):
            raise TypeError(f"can only merge an Accumulator, got {type(other).__name__}")
        if other.n_samples == 0:
            return self
        for what in ("estimator", "correction"):
            if getattr(self, what) != getattr(other, what):
                raise ValueError(f"cannot merge: {what} {getattr(self, what)!r} != {getattr(other, what)!r}")
        if self.n_samples == 0:
            assert other._layout is not None and other.edges is not None
            binned = self.estimator in BINNED_ESTIMATORS
            for given, theirs, name in ((self._given[0], other.edges, "edges"), (self._given[1], other.edges_y, "edges_y")):
                if given is None or theirs is None:
                    mine = None
                else:
                    mine = _arrays.check_edges(given, theirs.shape[0], theirs.shape[1], name, binned)
                if given is not None and not _same(mine, theirs):
                    raise ValueError(f"cannot merge: this accumulator's {name} differ from the other's")
            if self.device is None and self.backend != "cpu" and other.device is not None:
                self.device, self._numpy_out = other.device, other._numpy_out  # a fresh one follows the other
            if self.device is None and self.backend == "torch":
                self.device = _torch_cpu()
            header, arrays = other._state()
            self._restore(header, {k: v.copy() for k, v in arrays.items()})
            return self
        if self._layout != other._layout:
            raise ValueError(f"cannot merge: shapes differ ({self._layout} != {other._layout})")
        if not _same(self.edges, other.edges) or not _same(self.edges_y, other.edges_y):
            raise ValueError("cannot merge accumulators with different edges: fit the edges once and pass them to both")
        theirs = other._totals if _same_device(self.device, other.device) else self._from_canonical(other._canonical_totals())
        for name, total in self._totals.items():
            total += theirs[name]
        self.n_samples += other.n_samples
        return self

    # --- results ----------------------------------------------------------------------------------

    @_locked
    def result(self) -> np.ndarray:
        """MI of every pair over all samples added so far, in ``units``: (d, d) or (layers, d, d)
        as the chunks were, (d_x, d_y) against Y. As :func:`pairmi.mi_matrix`: symmetric with the
        entropies (binned) or +inf (copula) on the diagonal for X against itself."""
        layout = self._require_samples()
        if self.device is not None:
            return self._output(self._result_on_device())
        shape = (layout["layers"], layout["dx"], layout["dy"] if layout["cross"] else layout["dx"])
        out = np.empty(shape, dtype=self.dtype)
        if self.estimator == "gaussian_copula":
            out[...] = self._copula_nats() * self.scale
        else:
            t = self._totals
            _core.mi_from_counts(
                t["counts"],
                t["marginal_x"],
                t.get("marginal_y"),
                self.edges.shape[2] - 1,
                self.n_samples,
                self.correction == "miller_madow",
                self.scale,
                out,
                _threads.resolve_threads(self.threads),
            )
        return out[0] if layout["squeeze"] else out

    @_locked
    def bias(self) -> np.ndarray:
        """What each pair's MI reads under independence at this many samples, to first order, in
        ``units``; shaped as :meth:`result`, 0 on the diagonal. Binned: the plug-in bias
        (m_x - 1)(m_y - 1) / (2 n) nats for m_x, m_y non-empty bins (Miller-Madow's terms). Copula:
        1 / (2 n) nats, the mean of -1/2 ln(1 - r^2) for a sample correlation r of variance 1/n."""
        layout = self._require_samples()
        dy = layout["dy"] if layout["cross"] else layout["dx"]
        if self.estimator in BINNED_ESTIMATORS:
            marginals = [_arrays.host(self._totals[k]) for k in ("marginal_x", "marginal_y") if k in self._totals]
            mx = (marginals[0] > 0).sum(axis=2) - 1.0
            my = mx if not layout["cross"] else (marginals[1] > 0).sum(axis=2) - 1.0
        else:
            mx, my = np.full((layout["layers"], layout["dx"]), 1.0), np.full((layout["layers"], dy), 1.0)
        b = mx[:, :, None] * my[:, None, :] / (2.0 * self.n_samples) * self.scale
        if not layout["cross"]:
            idx = np.arange(b.shape[-1])
            b[:, idx, idx] = 0.0
        return self._output(b)

    # --- saving -----------------------------------------------------------------------------------

    @_locked
    def save(self, path: str | os.PathLike) -> None:
        """Write the state to `path` (an uncompressed .npz: arrays and a JSON header, no pickles),
        whole or not at all. :meth:`load` reads it back."""
        header, arrays = self._state()
        with atomic_file(path) as fh:
            np.savez(fh, header=np.array(json.dumps(header)), **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike, *, threads: int | None = None, device: Any = None) -> Accumulator:
        """An accumulator saved by :meth:`save` (by either backend); ValueError naming the file if it
        is not one, or is of another format version. ``device`` (a torch device): its totals go
        there, for ``backend='torch'``; default: numpy totals for the C++ core."""
        path = Path(path)
        try:
            arrays = read_npz(path)
            if "header" not in arrays:
                raise ValueError("an .npz archive without a header")
            header = json.loads(str(arrays.pop("header")))
            return cls._from_state(header, arrays, threads, device)
        except (OSError, ValueError, KeyError, TypeError, MemoryError) as exc:
            problem = f"missing {exc}" if isinstance(exc, KeyError) else str(exc) or type(exc).__name__
            raise ValueError(f"{path} is not a readable pairmi accumulator state: {problem}") from None

    def _state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The JSON header and the arrays that :meth:`_from_state` rebuilds this accumulator from."""
        header = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "pairmi_version": _core.__version__,
            "estimator": self.estimator,
            "correction": self.correction,
            "units": self.units,
            "dtype": self.dtype.name,
            "bins": self.bins,
            "nan_policy": self.nan_policy,
            "n_samples": self.n_samples,
            "layout": self._layout,
        }
        arrays = {f"total_{k}": v for k, v in self._canonical_totals().items()}
        for name, value in (("edges", self.edges), ("edges_y", self.edges_y)):
            if value is not None:
                arrays[name] = value
        return header, arrays

    @classmethod
    def _from_state(cls, header: Any, arrays: dict[str, np.ndarray], threads: int | None, device: Any = None) -> Accumulator:
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ValueError(f"its format is {header.get('format') if isinstance(header, dict) else None!r}, not {FORMAT!r}")
        if header.get("version") != FORMAT_VERSION:
            raise ValueError(
                f"it is format version {header.get('version')!r}; this pairmi "
                f"({_core.__version__}) reads version {FORMAT_VERSION}"
            )
        acc = cls(
            header["estimator"],
            correction=header["correction"],
            units=header["units"],
            dtype=header["dtype"],
            bins=header["bins"],
            threads=threads,
            nan_policy=header["nan_policy"],
            backend=None if device is None else "torch",
        )
        if device is not None:
            from .backends import torch as tb

            acc.device, acc._numpy_out = tb.torch_module().device(device), False
        acc._restore(header, arrays)
        return acc

    def __repr__(self) -> str:
        shape = (
            ""
            if not self._layout
            else (
                f", {self._layout['layers']} layer(s) x {self._layout['dx']}"
                + (f" x {self._layout['dy']}" if self._layout["cross"] else "")
                + " variables"
            )
        )
        return f"Accumulator({self.estimator!r}, n_samples={self.n_samples:,}{shape})"

    # --- internals --------------------------------------------------------------------------------

    def _checked_chunk(self, chunk: Any, y: Any) -> tuple[np.ndarray, np.ndarray | None, bool]:
        x, squeeze = _as_layers(chunk, "chunk")
        y_arr = None
        if y is not None:
            y_arr, y_squeeze = _as_layers(y, "y")
            if y_squeeze != squeeze or y_arr.shape[:2] != x.shape[:2]:
                raise ValueError(f"y must have the chunk's layers and samples: {x.shape[:2]} != {y_arr.shape[:2]}")
        if x.shape[1] == 0:
            raise ValueError("the chunk has no samples")
        if self._layout is not None:
            self._check_layout(x.shape, x.dtype.name, None if y_arr is None else y_arr.shape, squeeze)
        elif y_arr is None and self._given[1] is not None:
            raise ValueError("this accumulator pairs X against Y (edges_y was given): pass y with each chunk")
        arrays = [x] if y_arr is None else [x, y_arr]
        arrays = _arrays.apply_nan_policy(arrays, ["chunk", "y"][: len(arrays)], self.nan_policy, min_samples=1)
        if self.estimator in BINNED_ESTIMATORS and self._layout is None and self._given[0] is None:
            for arr, name in zip(arrays, ["chunk", "y"]):
                _arrays.check_ranges(arr, name)  # the first chunk sets the edges
        return arrays[0], (arrays[1] if len(arrays) > 1 else None), squeeze

    def _check_layout(self, x: tuple[int, ...], dtype: str, y: tuple[int, ...] | None, squeeze: bool) -> None:
        """The shapes x (layers, n, dx) and y of a chunk, and x's dtype name, against the first's."""
        lay = self._layout
        assert lay is not None
        if squeeze != lay["squeeze"] or x[0] != lay["layers"]:
            first = "(n, d)" if lay["squeeze"] else f"({lay['layers']}, n, d)"
            raise ValueError(f"the chunk has shape {tuple(x) if not squeeze else tuple(x[1:])}; the first was {first}")
        if x[2] != lay["dx"]:
            raise ValueError(f"the chunk has {x[2]} variables; the accumulator has {lay['dx']}")
        if dtype != lay["dtype"]:
            raise ValueError(f"the chunk's dtype {dtype} differs from the first chunk's {lay['dtype']}: convert it")
        if (y is not None) != lay["cross"]:
            raise ValueError(
                "this accumulator pairs X against Y: pass y with each chunk"
                if lay["cross"]
                else "this accumulator pairs X against itself: pass no y"
            )
        if y is not None and y[2] != lay["dy"]:
            raise ValueError(f"y has {y[2]} variables; the accumulator has {lay['dy']}")

    def _new_layout(self, x: Any, y: Any, squeeze: bool, dtype: str | None = None) -> dict[str, Any]:
        return {
            "layers": x.shape[0],
            "dx": x.shape[2],
            "dy": 0 if y is None else y.shape[2],
            "cross": y is not None,
            "squeeze": squeeze,
            "dtype": dtype or x.dtype.name,
        }

    def _first_edges(self, x: Any, y: Any, fit: Callable[[Any, str], np.ndarray] | None = None) -> tuple[Any, Any]:
        """The edges (knots) given, checked, or fitted on the first chunk by `fit` (array, its name);
        by default with pairmi.fit_edges."""
        if fit is None:
            fit = lambda arr, name: fit_edges(arr, self.estimator, self.bins, threads=self.threads)  # noqa: E731
        binned = self.estimator in BINNED_ESTIMATORS
        edges: list[Any] = []
        for arr, given, name in ((x, self._given[0], "edges"), (y, self._given[1], "edges_y")):
            if arr is None:
                edges.append(None)
            elif given is not None:
                edges.append(_arrays.check_edges(given, arr.shape[0], arr.shape[2], name, binned))
            else:
                edges.append(fit(arr, name))
        if binned and edges[1] is not None and edges[1].shape[2] != edges[0].shape[2]:
            raise ValueError(
                f"edges and edges_y must have the same number of bins, got {edges[0].shape[2] - 1} and {edges[1].shape[2] - 1}"
            )
        return edges[0], edges[1]

    def _new_totals(self, layout: dict[str, Any], edges: np.ndarray) -> dict[str, np.ndarray]:
        shapes = self._new_shapes(layout, edges)
        nbytes = sum(8 * int(np.prod(shape)) for shape, _ in shapes.values())
        dy = layout["dy"] if layout["cross"] else layout["dx"]
        _memory.check_memory(
            nbytes,
            f"the {self.estimator} totals of {layout['dx']:,} x {dy:,} variables",
            None,
            "stream fewer variables (or layers) per accumulator, or fewer bins",
        )
        return {name: np.zeros(shape, dtype=dtype) for name, (shape, dtype) in shapes.items()}

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

    def _copula_nats(self) -> np.ndarray:
        t, n = self._totals, float(self.n_samples)
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

    # --- the torch backend -------------------------------------------------------------------------

    def _update_on_device(self, chunk: Any, y: Any) -> Accumulator:
        """update() with the totals on self.device: the same checks, counting by torch there."""
        from .backends import torch as tb

        if self._layout is None and y is None and self._given[1] is not None:
            raise ValueError("this accumulator pairs X against Y (edges_y was given): pass y with each chunk")
        given = [chunk] if y is None else [chunk, y]
        names = ["chunk", "y"][: len(given)]
        ndims = [v.ndim if tb.is_tensor(v) else np.ndim(v) for v in given]
        dtype = _dtype_name(chunk)
        tensors = tb.checked_tensors(given, names, (2, 3), self.nan_policy, self.device, min_samples=1)
        x, y_t = tensors[0], (tensors[1] if y is not None else None)
        squeeze = ndims[0] == 2
        if y_t is not None and (ndims[1] != ndims[0] or y_t.shape[0] != x.shape[0]):
            raise ValueError(f"y must have the chunk's layers and samples: {tuple(x.shape[:2])} != {tuple(y_t.shape[:2])}")
        if self._layout is not None:
            self._check_layout(tuple(x.shape), dtype, None if y_t is None else tuple(y_t.shape), squeeze)
        layout = self._layout or self._new_layout(x, y_t, squeeze, dtype)
        if self._layout is None:
            edges, edges_y = self._first_edges(x, y_t, self._fit_on_device)
        else:
            edges, edges_y = self.edges, self.edges_y
        maps = self._device_maps(edges, edges_y)
        totals = self._totals or self._new_device_totals(layout, edges)
        if self.estimator == "gaussian_copula":
            tb.add_score_sums(totals, x, y_t, maps)
        else:
            bins = edges.shape[2] - 1
            cx = tb.codes(x, maps[0])
            cy = None if y_t is None else tb.codes(y_t, maps[1])
            done = []
            try:
                for l in range(x.shape[0]):
                    args = (
                        totals["joint"][l],
                        totals["marginal_x"][l],
                        totals["marginal_y"][l] if y_t is not None else None,
                        cx[l],
                        None if cy is None else cy[l],
                        bins,
                    )
                    tb.add_pair_counts(*args)
                    done.append(args)
            except BaseException:
                for args in done:  # the layers already added, taken out again: the state as before
                    tb.add_pair_counts(*args, sign=-1)
                raise
        self._layout, self.edges, self.edges_y, self._totals = layout, edges, edges_y, totals
        self.n_samples += x.shape[1]
        return self

    def _fit_on_device(self, arr: Any, name: str) -> np.ndarray:
        """Edges (knots) fitted on a first chunk on its device, as pairmi.fit_edges fits them."""
        from .backends import torch as tb

        if self.estimator in BINNED_ESTIMATORS:
            span = arr.amax(dim=1) - arr.amin(dim=1)
            bad = tb.torch_module().nonzero(~tb.torch_module().isfinite(span).all(dim=0)).flatten()
            if bad.numel():
                raise ValueError(
                    f"{name} has variables whose range overflows float64 (columns {bad[:10].tolist()}): rescale them"
                )
            return tb.fit_edges(arr, self.estimator, fitted_bins(self.estimator, self.bins, arr.shape[1])).cpu().numpy()
        return tb.fit_knots(arr, fitted_bins(self.estimator, self.bins, arr.shape[1])).cpu().numpy()

    def _device_maps(self, edges: np.ndarray, edges_y: np.ndarray | None) -> tuple[Any, ...]:
        """The edges on the device (binned), or the knots and their scores (copula), once per edges."""
        from .backends import torch as tb

        torch = tb.torch_module()
        if self._maps is None or self._maps[0] is not edges:

            def put(a: np.ndarray | None) -> Any:
                return None if a is None else torch.tensor(a, dtype=torch.float64, device=self.device)  # a copy

            maps: tuple[Any, ...]
            if self.estimator == "gaussian_copula":
                maps = (put(edges), put(knot_scores(edges)), put(edges_y), None if edges_y is None else put(knot_scores(edges_y)))
            else:
                maps = (put(edges), put(edges_y))
            self._maps = (edges, maps)
        return self._maps[1]

    def _new_device_totals(self, layout: dict[str, Any], edges: np.ndarray) -> dict[str, Any]:
        from .backends import torch as tb

        torch = tb.torch_module()
        L, dx, dy, cross = layout["layers"], layout["dx"], layout["dy"], layout["cross"]
        dyy = dy if cross else dx
        if self.estimator == "gaussian_copula":
            shapes = {"sum_x": (L, dx), "sq_x": (L, dx), "cross": (L, dx, dyy)}
            if cross:
                shapes.update(sum_y=(L, dy), sq_y=(L, dy))
            dtype = torch.float64
        else:
            b = edges.shape[2] - 1
            shapes = {"joint": (L, dx * b, dyy * b), "marginal_x": (L, dx, b)}
            if cross:
                shapes["marginal_y"] = (L, dy, b)
            dtype = torch.int64
        try:
            return {k: torch.zeros(v, dtype=dtype, device=self.device) for k, v in shapes.items()}
        except tb.out_of_memory():
            nbytes = sum(8 * int(np.prod(v)) for v in shapes.values())
            raise MemoryError(
                f"the {self.estimator} totals of {dx:,} x {dyy:,} variables need "
                f"{nbytes / 2**30:.1f} GiB on {self.device}: stream fewer variables per accumulator"
            ) from None

    def _canonical_totals(self) -> dict[str, np.ndarray]:
        """The totals as the C++ core keeps them (numpy; binned: uint64 pair slots), whatever the backend."""
        if self.device is None:
            return self._totals
        from .backends import torch as tb

        t, lay = self._totals, self._layout
        assert lay is not None
        if self.estimator == "gaussian_copula":
            return {k: v.cpu().numpy() for k, v in t.items()}
        out = {k: v.cpu().numpy().view(np.uint64) for k, v in t.items() if k != "joint"}
        slots = tb.joint_to_slots(t["joint"], lay["dx"], lay["dy"] if lay["cross"] else lay["dx"], lay["cross"])
        out["counts"] = slots.cpu().numpy().view(np.uint64)
        return out

    def _from_canonical(self, totals: dict[str, np.ndarray]) -> dict[str, Any]:
        """Canonical totals (see _canonical_totals) in this accumulator's form: numpy, or on its device."""
        if self.device is None:
            return totals
        from .backends import torch as tb

        torch = tb.torch_module()
        lay = self._layout
        assert lay is not None

        def put(a: np.ndarray) -> Any:
            return torch.from_numpy(np.ascontiguousarray(a.view(np.int64) if a.dtype == np.uint64 else a)).to(self.device)

        if self.estimator == "gaussian_copula":
            return {k: put(v) for k, v in totals.items()}
        out = {k: put(v) for k, v in totals.items() if k != "counts"}
        dy = lay["dy"] if lay["cross"] else lay["dx"]
        out["joint"] = tb.slots_to_joint(put(totals["counts"]), out["marginal_x"], lay["dx"], dy, lay["cross"])
        return out

    def _result_on_device(self) -> Any:
        """MI (layers, dx, dy) in nats times scale, float64, on the device."""
        from .backends import torch as tb

        torch = tb.torch_module()
        t, n = self._totals, self.n_samples
        if self.estimator == "gaussian_copula":
            mean_x = t["sum_x"] / n
            var_x = torch.clamp(t["sq_x"] / n - mean_x**2, min=0.0)
            if "sum_y" in t:
                mean_y = t["sum_y"] / n
                var_y = torch.clamp(t["sq_y"] / n - mean_y**2, min=0.0)
            else:
                mean_y, var_y = mean_x, var_x
            cov = t["cross"] / n - mean_x[:, :, None] * mean_y[:, None, :]
            denom = torch.sqrt(var_x[:, :, None] * var_y[:, None, :])
            rho = torch.where(denom > 0, cov / torch.where(denom > 0, denom, torch.ones_like(denom)), torch.zeros_like(cov))
            mi = tb.mi_of_correlations(rho, self.scale)
            if "sum_y" not in t:
                idx = torch.arange(mi.shape[-1], device=mi.device)
                mi[:, idx, idx] = float("inf")
            return mi
        mm = self.correction == "miller_madow"
        return (
            torch.stack(
                [
                    tb.mi_of_joint_totals(
                        t["joint"][l], t["marginal_x"][l], t["marginal_y"][l] if "marginal_y" in t else None, n, mm
                    )
                    for l in range(t["joint"].shape[0])
                ]
            )
            * self.scale
        )

    def _output(self, values: Any) -> Any:
        """values (layers, dx, dy) in self.dtype, squeezed as the chunks were; a tensor on the device
        for tensor chunks of a device accumulator, else numpy."""
        assert self._layout is not None
        squeeze = self._layout["squeeze"]
        if self.device is None or self._numpy_out:
            out = _arrays.host(values).astype(self.dtype, copy=False)
            return out[0] if squeeze else out
        from .backends import torch as tb

        torch = tb.torch_module()
        out = torch.as_tensor(values, device=self.device).to(torch.float32 if self.dtype == np.float32 else torch.float64)
        return out[0] if squeeze else out

    def _require_samples(self) -> dict[str, Any]:
        if self.n_samples == 0 or self._layout is None:
            raise ValueError("no samples yet: call update() first")
        return self._layout

    def _restore(self, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Take over a saved (or another accumulator's) state, every part checked first: the edges as
        the constructor checks them, the totals' shapes, and that they hold n_samples samples."""
        layout = header["layout"]
        n = header["n_samples"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"its n_samples must be a non-negative integer, got {n!r}")
        if layout is None:
            if n:
                raise ValueError(f"it counts {n} samples but holds no totals")
            return
        if not isinstance(layout, dict) or set(layout) != set(LAYOUT_TYPES):
            raise ValueError(f"its layout must name {sorted(LAYOUT_TYPES)}, got {layout!r}")
        for key, kind in LAYOUT_TYPES.items():
            if not isinstance(layout[key], kind) or (kind is int and (isinstance(layout[key], bool) or layout[key] < 0)):
                raise ValueError(f"its layout's {key} is {layout[key]!r}")
        binned = self.estimator in BINNED_ESTIMATORS
        edges = {
            name: _arrays.check_edges(arrays[name], layout["layers"], layout[d], name, binned)
            for name, d in (("edges", "dx"), ("edges_y", "dy"))
            if name in arrays or (name == "edges_y" and layout["cross"])
        }
        if binned and "edges_y" in edges and edges["edges_y"].shape[2] != edges["edges"].shape[2]:
            raise ValueError("its edges and edges_y hold different numbers of bins")
        expected = self._new_shapes(layout, edges["edges"])
        totals = {k[len("total_") :]: v for k, v in arrays.items() if k.startswith("total_")}
        if set(totals) != set(expected):
            raise ValueError(f"it holds totals {sorted(totals)} instead of {sorted(expected)}")
        for name, (shape, dtype) in expected.items():
            if totals[name].shape != shape or totals[name].dtype != dtype:
                raise ValueError(f"total {name!r} is {totals[name].dtype} {totals[name].shape}, not {np.dtype(dtype)} {shape}")
        if n == 0:
            raise ValueError("it holds totals but counts 0 samples")
        if binned:  # every variable's bin counts, and every pair's joint counts, add up to n_samples
            for name, total in totals.items():
                sums = total.sum(axis=(-2, -1) if name == "counts" else -1)
                if (sums != n).any():
                    raise ValueError(
                        f"its {name} add up to {int(sums.flat[np.argmax(sums != n)]):,} samples, not n_samples = {n:,}"
                    )
        elif not all(np.isfinite(t).all() for t in totals.values()):
            raise ValueError("its copula sums are not finite")
        self._layout = layout
        self.edges, self.edges_y = edges["edges"], edges.get("edges_y")
        self._totals = totals if self.device is None else self._from_canonical(totals)
        self.n_samples = n

    def _new_shapes(self, layout: dict[str, Any], edges: np.ndarray | None) -> dict[str, tuple[tuple[int, ...], Any]]:
        if edges is None or edges.ndim != 3 or edges.shape[:2] != (layout["layers"], layout["dx"]):
            raise ValueError("its edges do not match its layout")
        return totals_shapes(
            self.estimator, layout["layers"], layout["dx"], layout["dy"] if layout["cross"] else None, edges.shape[2] - 1
        )


def totals_shapes(estimator: str, layers: int, dx: int, dy: int | None, bins: int) -> dict[str, tuple[tuple[int, ...], Any]]:
    """The totals an accumulator keeps, name -> (shape, dtype), for dx variables against themselves
    (dy None) or against dy others: joint counts of each pair and each variable's counts (binned),
    or the copula's sums and cross-products."""
    L = layers
    shapes: dict[str, tuple[int, ...]]
    if estimator == "gaussian_copula":
        shapes = {"sum_x": (L, dx), "sq_x": (L, dx), "cross": (L, dx, dx if dy is None else dy)}
        if dy is not None:
            shapes.update(sum_y=(L, dy), sq_y=(L, dy))
        return {k: (v, np.float64) for k, v in shapes.items()}
    shapes = {"counts": (L, dx * (dx - 1) // 2 if dy is None else dx * dy, bins, bins), "marginal_x": (L, dx, bins)}
    if dy is not None:
        shapes["marginal_y"] = (L, dy, bins)
    return {k: (v, np.uint64) for k, v in shapes.items()}


# The first chunk's shape and dtype, as a saved state records them.
LAYOUT_TYPES = {"layers": int, "dx": int, "dy": int, "cross": bool, "squeeze": bool, "dtype": str}


def _check_estimator(estimator: str) -> None:
    if estimator not in STREAM_ESTIMATORS:
        raise ValueError(
            f"streaming supports the estimators {STREAM_ESTIMATORS}, not {estimator!r} "
            "(KSG has no statistics that add up over samples)"
        )


def _as_layers(data: Any, name: str) -> tuple[np.ndarray, bool]:
    """`data` (n, d) or (layers, n, d) as a C-contiguous (layers, n, d) array, and whether it was 2-d."""
    arr = _arrays.to_numpy(data, name)
    if arr.ndim == 2:
        return np.ascontiguousarray(arr[None]), True
    if arr.ndim == 3:
        return np.ascontiguousarray(arr), False
    raise ValueError(f"{name} must be 2-d (samples, variables) or 3-d (layers, samples, variables), got shape {arr.shape}")


def _same_device(a: Any, b: Any) -> bool:
    """Whether both totals are numpy (None) or on one torch device."""
    if a is None or b is None:
        return a is None and b is None
    from .backends import torch as tb

    return tb.same_device(a, b)


def _torch_cpu() -> Any:
    from .backends import torch as tb

    return tb.torch_module().device("cpu")


def _dtype_name(data: Any) -> str:
    """The dtype of an array or tensor, named as numpy names it."""
    if hasattr(data, "dtype") and hasattr(data, "is_cuda"):
        return str(data.dtype).removeprefix("torch.")
    return _arrays.to_numpy(data, "chunk").dtype.name


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and bool(np.array_equal(a, b))
