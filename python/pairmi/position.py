"""The position null of a token stream: each pair's joint counts (or the copula's sums) at a few
whole-window lags, accumulated next to the observed ones, so that a corpus run reports, per pair,
the MI that position alone gives (:func:`pairmi.position_null` is the in-memory reference)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from .stream import Accumulator


class WindowLags:
    """For each lag s, an accumulator of unit i at window w against unit j at window w + s, at the
    positions both windows hold; the last max(lags) windows are kept to pair the next ones with.

    ``make(**kw)`` builds an accumulator like the run's (same estimator, edges, units); the lags'
    accumulators pair X against Y with the same edges for both."""

    def __init__(self, lags: tuple[int, ...], make: Callable[..., Accumulator], edges: np.ndarray) -> None:
        self.lags = lags
        self.accumulators = {s: make(edges_y=edges) for s in lags}
        self.recent: deque[np.ndarray] = deque(maxlen=max(lags))  # (layers, tokens, units) of each window

    def add(self, values: np.ndarray, window_tokens: list[int]) -> None:
        """The windows of a batch, values (layers, tokens, units) with window_tokens tokens each."""
        pairs: dict[int, tuple[list[np.ndarray], list[np.ndarray]]] = {s: ([], []) for s in self.lags}
        windows = list(self.recent)
        start = 0
        for length in window_tokens:
            window = values[:, start : start + length]
            start += length
            for s in self.lags:
                if len(windows) >= s:
                    earlier = windows[-s]
                    m = min(earlier.shape[1], length)
                    pairs[s][0].append(earlier[:, :m])
                    pairs[s][1].append(window[:, :m])
            windows.append(window)
        for s, (first, later) in pairs.items():  # one update a lag and batch: all of it or none
            if first:
                self.accumulators[s].update(np.concatenate(first, axis=1), y=np.concatenate(later, axis=1))
        keep = windows[-(self.recent.maxlen or 1) :]
        self.recent.clear()
        self.recent.extend(np.array(w) for w in keep)  # copies: the batch is not held

    def merge(self, other: WindowLags) -> WindowLags:
        """Add another stream's lagged counts (another shard's windows; pairs across the two
        streams' edge are not counted). Returns self."""
        if other.lags != self.lags:
            raise ValueError(f"cannot merge window lags {other.lags} into {self.lags}")
        for s, acc in self.accumulators.items():
            acc.merge(other.accumulators[s])
        return self

    def null(self) -> np.ndarray:
        """(layers, d, d): the mean over the lags of both directions of each pair, 0 on the diagonal;
        a lag that no two windows reached (a short run) is left out."""
        results = [acc.result() for acc in self.accumulators.values() if acc.n_samples]
        if not results:
            raise ValueError(f"the run had no two windows {min(self.lags)} apart: no position null")
        total = np.zeros(results[0].shape, dtype=np.float64)
        for r in results:
            total += 0.5 * (r + np.swapaxes(r, -1, -2))
        total /= len(results)
        idx = np.arange(total.shape[-1])
        total[..., idx, idx] = 0.0
        return total

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """What a resumed run needs: each lag's accumulator state and the recent windows."""
        header: dict[str, Any] = {"lags": list(self.lags), "recent": len(self.recent), "accumulators": {}}
        arrays: dict[str, np.ndarray] = {}
        for s, acc in self.accumulators.items():
            acc_header, acc_arrays = acc._state()
            header["accumulators"][str(s)] = acc_header
            arrays.update({f"lag{s}_{k}": v for k, v in acc_arrays.items()})
        arrays.update({f"recent_{k}": w for k, w in enumerate(self.recent)})
        return header, arrays

    def restore(self, header: dict[str, Any], arrays: dict[str, np.ndarray], threads: int | None) -> None:
        if tuple(header["lags"]) != self.lags:
            raise ValueError(f"its window lags are {header['lags']}, not {list(self.lags)}")
        for s in self.lags:
            prefix = f"lag{s}_"
            own = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
            self.accumulators[s] = Accumulator._from_state(header["accumulators"][str(s)], own, threads)
        self.recent.clear()
        self.recent.extend(arrays[f"recent_{k}"] for k in range(int(header["recent"])))


class StreamTotals:
    """A stream's accumulator and its position null's lags, merged together (a Dask shard's result)."""

    def __init__(self, accumulator: Accumulator, lags: WindowLags) -> None:
        self.accumulator = accumulator
        self.lags = lags

    def merge(self, other: StreamTotals) -> StreamTotals:
        self.accumulator.merge(other.accumulator)
        self.lags.merge(other.lags)
        return self
