"""Exact binned MI of a chosen list of pairs, streamed: the counts of :class:`pairmi.Accumulator`
for the pairs a screen picked (e.g. every unit's candidate partners across a whole model), so
memory grows with the list, not with the square of the units."""

from __future__ import annotations

import json
import os
import threading
from typing import Any

import numpy as np

from . import _arrays, _core, _memory, _threads
from ._files import atomic_file
from ._npz import read_npz
from .binned import bin_edges
from .settings import BINNED_ESTIMATORS, DEFAULT_BINS

FORMAT = "pairmi.PairAccumulator"
FORMAT_VERSION = 1


class PairAccumulator:
    """Joint bin counts of listed pairs of variables, added chunk by chunk.

    Parameters
    ----------
    pairs : array_like of int, shape (P, 2)
        The pairs (i, j) of columns of the chunks to count; i != j. The first is the row of each
        pair's histogram; (i, j) and (j, i) give the same MI.
    estimator : {'equal_frequency', 'equal_width'}
        How ``edges`` were (or are) fitted.
    edges : array_like, shape (d, bins + 1), optional
        Fixed edges of every column (:func:`pairmi.fit_edges`); default: fitted on the first chunk.
    bins : int, optional
        Bins of edges fitted on the first chunk (default 15).
    correction : {None, 'miller_madow'}
    units : {'bits', 'nats'}
    threads : int, optional
    nan_policy : {'raise', 'omit'}
        NaN or Inf in a chunk: ValueError (the state unchanged), or drop those samples.

    Notes
    -----
    Counts are exact 64-bit integers (``P * bins**2 * 8`` bytes), so any chunking and merge order
    give bit-identical results, and each pair's MI equals :func:`pairmi.mi_matrix` (and
    :class:`pairmi.Accumulator`) on the same samples and edges within 1e-12 bits: the C++ core
    counts the listed pairs with the dense accumulator's kernel.

    Examples
    --------
    >>> import numpy as np, pairmi
    >>> x = np.random.default_rng(0).normal(size=(2000, 50))
    >>> x[:, 7] += x[:, 40]
    >>> acc = pairmi.PairAccumulator([(7, 40), (1, 2)], "equal_frequency", edges=pairmi.fit_edges(x, "equal_frequency"))
    >>> _ = acc.update(x[:1000]).update(x[1000:])
    >>> bool(acc.result()[0] > acc.result()[1])
    True
    """

    def __init__(
        self,
        pairs: Any,
        estimator: str = "equal_frequency",
        *,
        edges: Any = None,
        bins: int | None = None,
        correction: str | None = None,
        units: str = "bits",
        threads: int | None = None,
        nan_policy: str = "raise",
    ) -> None:
        if estimator not in BINNED_ESTIMATORS:
            raise ValueError(f"a PairAccumulator counts the binned estimators {BINNED_ESTIMATORS}, not {estimator!r}")
        if correction not in (None, "miller_madow"):
            raise ValueError(f"correction must be None or 'miller_madow', got {correction!r}")
        if nan_policy not in _arrays.NAN_POLICIES:
            raise ValueError(f"nan_policy must be one of {_arrays.NAN_POLICIES}, got {nan_policy!r}")
        self.pairs = _pairs(pairs)
        self.estimator, self.correction, self.units = estimator, correction, units
        self.scale = _arrays.unit_scale(units)
        self.threads, self.nan_policy = threads, nan_policy
        self.bins = _arrays.check_bins(DEFAULT_BINS if bins is None else bins, 2**31)
        self.edges: np.ndarray | None = None if edges is None else self._checked_edges(edges, None)
        self.n_samples = 0
        self.counts: np.ndarray | None = None  # (P, bins, bins) uint64 in the pairs' sorted order
        self._order = np.lexsort((self.pairs[:, 1], self.pairs[:, 0]))  # runs of one first variable
        ordered = self.pairs[self._order].astype(np.uint32)
        self._first, self._second = np.ascontiguousarray(ordered[:, 0]), np.ascontiguousarray(ordered[:, 1])
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"PairAccumulator({len(self.pairs):,} pairs, {self.estimator!r}, {self.n_samples:,} samples)"

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    @property
    def nbytes(self) -> int:
        """Bytes of the counts (once the edges are known)."""
        bins = self.bins if self.edges is None else self.edges.shape[1] - 1
        return len(self.pairs) * bins * bins * 8

    def update(self, chunk: Any) -> PairAccumulator:
        """Add a chunk of samples (n, d); every column of the pairs must be there. Returns self."""
        with self._lock:
            x = _arrays.to_numpy(chunk, "chunk")
            if x.ndim != 2:
                raise ValueError(f"chunk must be 2-d (samples, variables), got shape {x.shape}")
            if x.shape[0] == 0:
                raise ValueError("the chunk has no samples")
            need = int(self.pairs.max()) + 1 if len(self.pairs) else 0
            if x.shape[1] < need or (self.edges is not None and x.shape[1] != self.edges.shape[0]):
                d = need if self.edges is None else self.edges.shape[0]
                raise ValueError(f"chunk has {x.shape[1]} variables; the pairs and edges need {d}")
            x = _arrays.apply_nan_policy([np.ascontiguousarray(x)], ["chunk"], self.nan_policy, min_samples=1)[0]
            threads = _threads.resolve_threads(self.threads)
            if self.edges is None:
                _arrays.check_ranges(x, "chunk")
                edges = bin_edges(x[None], self.estimator, _arrays.check_bins(self.bins, x.shape[0]), threads)[0]
            else:
                edges = self.edges
            bins = edges.shape[1] - 1
            counts = self.counts
            if counts is None:
                _memory.check_memory(
                    len(self.pairs) * bins * bins * 8, f"the counts of {len(self.pairs):,} pairs", None, "count fewer pairs"
                )
                counts = np.zeros((len(self.pairs), bins, bins), dtype=np.uint64)
            codes = _core.bin_codes(x[None], edges[None], threads)[0]  # (d, n)
            _core.add_pair_list_counts(codes, self._first, self._second, bins, counts, threads)
            self.edges, self.counts = edges, counts
            self.n_samples += x.shape[0]
            return self

    def merge(self, other: PairAccumulator) -> PairAccumulator:
        """Add another accumulator's samples of the same pairs, estimator and edges. Returns self."""
        if not isinstance(other, PairAccumulator):
            raise TypeError(f"can only merge a PairAccumulator, got {type(other).__name__}")
        with self._lock, other._lock:
            for what in ("estimator", "correction"):
                if getattr(self, what) != getattr(other, what):
                    raise ValueError(f"cannot merge: {what} {getattr(self, what)!r} != {getattr(other, what)!r}")
            if not np.array_equal(self.pairs, other.pairs):
                raise ValueError("cannot merge: the accumulators count different pairs")
            if other.n_samples == 0:
                return self
            assert other.edges is not None and other.counts is not None
            if self.edges is not None and not np.array_equal(self.edges, other.edges):
                raise ValueError("cannot merge accumulators with different edges: fit the edges once and pass them to both")
            self.counts = other.counts.copy() if self.counts is None else self.counts + other.counts
            self.edges = other.edges
            self.n_samples += other.n_samples
            return self

    def result(self) -> np.ndarray:
        """Each pair's MI over the samples added so far, in ``units``: float64 (P,), in the order given."""
        with self._lock:
            counts = self._require_samples()
            out = np.empty(len(self.pairs))
            _core.mi_from_pair_list_counts(
                counts,
                counts.shape[1],
                self.n_samples,
                self.correction == "miller_madow",
                self.scale,
                out,
                _threads.resolve_threads(self.threads),
            )
            return _unsorted(out, self._order)

    def bias(self) -> np.ndarray:
        """Each pair's plug-in MI under independence at this many samples, to first order, in
        ``units``: (m_i - 1)(m_j - 1) / (2 n) nats for m_i, m_j non-empty bins (P,)."""
        with self._lock:
            counts = self._require_samples()
            m_rows = (counts.sum(axis=2) > 0).sum(axis=1) - 1.0
            m_cols = (counts.sum(axis=1) > 0).sum(axis=1) - 1.0
            return _unsorted(m_rows * m_cols / (2.0 * self.n_samples) * self.scale, self._order)

    def save(self, path: str | os.PathLike) -> None:
        """Write the state to `path` (an uncompressed .npz, no pickles), whole or not at all."""
        with self._lock:
            header = {
                "format": FORMAT,
                "version": FORMAT_VERSION,
                "estimator": self.estimator,
                "correction": self.correction,
                "units": self.units,
                "bins": self.bins,
                "n_samples": self.n_samples,
            }
            arrays: dict[str, Any] = {"pairs": self.pairs}
            if self.edges is not None:
                arrays["edges"] = self.edges
            if self.counts is not None:
                arrays["counts"] = self.counts
            with atomic_file(path) as fh:
                np.savez(fh, header=np.array(json.dumps(header)), **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike, threads: int | None = None) -> PairAccumulator:
        """An accumulator from a file :meth:`save` wrote; ValueError naming what is wrong with it."""
        try:
            arrays = read_npz(path)
            header = json.loads(str(arrays.pop("header")))
            if header.get("format") != FORMAT or header.get("version") != FORMAT_VERSION:
                raise ValueError(f"it is not a {FORMAT} version {FORMAT_VERSION} file")
            acc = cls(
                arrays["pairs"],
                header["estimator"],
                edges=arrays.get("edges"),
                bins=header["bins"],
                correction=header["correction"],
                units=header["units"],
                threads=threads,
            )
            acc.set_counts(arrays.get("counts"), header["n_samples"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            problem = f"missing {exc}" if isinstance(exc, KeyError) else str(exc) or type(exc).__name__
            raise ValueError(f"cannot load a PairAccumulator from {path}: {problem}") from None
        return acc

    def set_counts(self, counts: np.ndarray | None, n: Any) -> None:
        """Take over counts saved elsewhere (a run's state file) for n samples, checked first:
        uint64 (P, bins, bins) for these pairs and edges (in the pairs' sorted order, as
        :attr:`counts` holds them), every pair holding n samples."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"its n_samples must be a non-negative integer, got {n!r}")
        if counts is None:
            if n:
                raise ValueError(f"it counts {n} samples but holds no counts")
            return
        bins = None if self.edges is None else self.edges.shape[1] - 1
        if self.edges is None or counts.dtype != np.uint64 or counts.shape != (len(self.pairs), bins, bins):
            raise ValueError(f"its counts must be uint64 ({len(self.pairs)}, {bins}, {bins}) with its edges")
        if len(self.pairs) and not (counts.sum(axis=(1, 2)) == n).all():
            raise ValueError(f"its counts do not hold n_samples = {n} samples for every pair")
        self.counts, self.n_samples = np.ascontiguousarray(counts), n

    # --- internals --------------------------------------------------------------------------------

    def _checked_edges(self, edges: Any, d: int | None) -> np.ndarray:
        arr = _arrays.to_numpy(edges, "edges")
        if arr.ndim != 2:
            raise ValueError(f"edges must be (d, bins + 1), got shape {arr.shape}")
        checked = _arrays.check_edges(arr, 1, arr.shape[0] if d is None else d, "edges", True)[0]
        if len(self.pairs) and self.pairs.max() >= checked.shape[0]:
            raise ValueError(f"the pairs name variable {int(self.pairs.max())} but edges cover {checked.shape[0]} variables")
        return checked

    def _require_samples(self) -> np.ndarray:
        if self.n_samples == 0 or self.counts is None:
            raise ValueError("no samples yet: call update() first")
        return self.counts


def _pairs(pairs: Any) -> np.ndarray:
    """Pairs as a checked (P, 2) int64 array."""
    arr = np.asarray(pairs)
    if arr.size == 0:
        arr = arr.reshape(0, 2)
    if arr.ndim != 2 or arr.shape[1] != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"pairs must be an integer array of shape (P, 2), got {arr.dtype} {arr.shape}")
    if (arr < 0).any() or (arr >= 2**32 - 1).any():
        raise ValueError("pair indices must be in [0, 2^32 - 1)")
    if (arr[:, 0] == arr[:, 1]).any():
        raise ValueError("a pair joins two different variables (i != j)")
    return np.ascontiguousarray(arr, dtype=np.int64)


def _unsorted(values: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Values computed in `order` back in the pairs' given order."""
    out = np.empty_like(values)
    out[order] = values
    return out
