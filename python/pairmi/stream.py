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

from . import _arrays, _core, backends
from ._files import atomic_file
from ._npz import read_npz
from ._state import FORMAT, FORMAT_VERSION, checked_state, new_shapes
from .edges import STREAM_ESTIMATORS, check_estimator, fit_edges, fitted_bins, fitting
from .settings import BINNED_ESTIMATORS, Estimator, as_estimator, check_dtype

__all__ = ["STREAM_ESTIMATORS", "Accumulator", "fit_edges"]


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
            correction = getattr(as_estimator(estimator, correction=correction), "correction", None)
        estimator, bins = fitting(estimator, bins)
        check_estimator(estimator)
        backends.choose(backend)  # checks the name
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
        self._store: Any = None  # where the totals live and are counted: CoreTotals, or DeviceTotals of a torch device
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

    @property
    def device(self) -> Any:
        """The torch device of the totals; None: numpy totals, counted by the C++ core."""
        return None if self._store is None else self._store.device

    @_locked
    def update(self, chunk: Any, y: Any = None) -> Accumulator:
        """Add a chunk of samples: (n, d), or (layers, n, d) for several layers at once, and the
        same samples of Y if the accumulator pairs X against Y. Returns self."""
        store = self._store or backends.choose(self.backend, chunk, y).totals(chunk, y)
        if self._layout is None and y is None and self._given[1] is not None:
            raise ValueError("this accumulator pairs X against Y (edges_y was given): pass y with each chunk")
        fitting = self.estimator in BINNED_ESTIMATORS and self._layout is None and self._given[0] is None
        x, y_arr, squeeze, dtype = store.chunk(chunk, y, self.nan_policy, self._check_layout, fitting)
        layout = self._layout or self._new_layout(x, y_arr, squeeze, dtype)
        edges, edges_y = (self.edges, self.edges_y) if self._layout else self._first_edges(x, y_arr, store)
        totals = self._totals or store.zeros(new_shapes(self.estimator, layout, edges), self._what(layout))
        # Everything that can fail is done: from here the state changes, all of it together.
        store.add(totals, x, y_arr, edges, edges_y, self.estimator, self.threads)
        self._store, self._layout, self.edges, self.edges_y, self._totals = store, layout, edges, edges_y, totals
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
            if self._store is None:  # a fresh one follows the other, unless its backend says otherwise
                self._store = backends.totals_like(self.backend, other._store)
            header, arrays = other._state()
            self._restore(header, {k: v.copy() for k, v in arrays.items()})
            return self
        if self._layout != other._layout:
            raise ValueError(f"cannot merge: shapes differ ({self._layout} != {other._layout})")
        if not _same(self.edges, other.edges) or not _same(self.edges_y, other.edges_y):
            raise ValueError("cannot merge accumulators with different edges: fit the edges once and pass them to both")
        same = self._store.same_place(other._store)
        theirs = other._totals if same else self._store.from_canonical(other._canonical_totals(), self.estimator, self._layout)
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
        shape = (layout["layers"], layout["dx"], layout["dy"] if layout["cross"] else layout["dx"])
        bins = self.edges.shape[2] - 1
        values = self._store.mi(
            self._totals, self.n_samples, self.estimator, self.correction, self.scale, self.threads, shape, self.dtype, bins
        )
        return self._store.output(values, self.dtype, layout["squeeze"])

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
        return self._store.output(b, self.dtype, layout["squeeze"])

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
        acc._store = backends.totals_on(device, numpy_out=False)
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

    def _check_layout(self, x: tuple[int, ...], dtype: str, y: tuple[int, ...] | None, squeeze: bool) -> None:
        """The shapes x (layers, n, dx) and y of a chunk, and x's dtype name, against the first's
        (the first chunk sets them)."""
        lay = self._layout
        if lay is None:
            return
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

    def _first_edges(self, x: Any, y: Any, store: Any) -> tuple[Any, Any]:
        """The edges (knots) given, checked, or fitted on the first chunk (as pairmi.fit_edges fits them)."""
        binned = self.estimator in BINNED_ESTIMATORS
        edges: list[Any] = []
        for arr, given, name in ((x, self._given[0], "edges"), (y, self._given[1], "edges_y")):
            if arr is None:
                edges.append(None)
            elif given is not None:
                edges.append(_arrays.check_edges(given, arr.shape[0], arr.shape[2], name, binned))
            else:
                edges.append(store.fit(arr, self.estimator, fitted_bins(self.estimator, self.bins, arr.shape[1]), self.threads))
        if binned and edges[1] is not None and edges[1].shape[2] != edges[0].shape[2]:
            raise ValueError(
                f"edges and edges_y must have the same number of bins, got {edges[0].shape[2] - 1} and {edges[1].shape[2] - 1}"
            )
        return edges[0], edges[1]

    def _what(self, layout: dict[str, Any]) -> str:
        dy = layout["dy"] if layout["cross"] else layout["dx"]
        return f"the {self.estimator} totals of {layout['dx']:,} x {dy:,} variables"

    def _canonical_totals(self) -> dict[str, np.ndarray]:
        """The totals as the C++ core keeps them (numpy; binned: uint64 pair slots), whatever the backend."""
        if self._store is None or not self._totals:
            return self._totals
        return self._store.canonical(self._totals, self.estimator, self._layout)

    def _require_samples(self) -> dict[str, Any]:
        if self.n_samples == 0 or self._layout is None:
            raise ValueError("no samples yet: call update() first")
        return self._layout

    def _restore(self, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Take over a saved (or another accumulator's) state, every part checked first: the edges as
        the constructor checks them, the totals' shapes, and that they hold n_samples samples."""
        checked = checked_state(header, arrays, self.estimator)
        if checked is None:
            return
        layout, edges, totals, n = checked
        self._layout = layout
        self.edges, self.edges_y = edges["edges"], edges.get("edges_y")
        self._totals = self._store.from_canonical(totals, self.estimator, layout)
        self.n_samples = n


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and bool(np.array_equal(a, b))
