"""Sample shards, reduced: each task adds its shard to an Accumulator, the partial accumulators
merge in a tree."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from ..settings import Estimator, as_estimator
from ..stream import Accumulator, fit_edges


def require_dask() -> Any:
    try:
        import dask
        import dask.array
    except ImportError:
        raise ImportError("pairmi.dask needs dask: pip install 'pairmi[dask]'") from None
    return dask


def _added(acc: Accumulator | dict[str, Any], block: np.ndarray) -> Accumulator:
    """A worker's task: the block's samples added to acc (a new accumulator, given its settings).

    acc is updated in place, which copying (as large as a chunk's counting) would cost: its one
    dependent is this task, a failed update leaves it unchanged, and a lost worker's accumulator is
    recomputed from its chain's start, so no sample is counted twice."""
    acc = acc if isinstance(acc, Accumulator) else Accumulator(**acc)
    if block.shape[-2]:
        acc.update(block)
    return acc


def _merged(*accs: Accumulator) -> Accumulator:
    """A worker's task: the partial accumulators merged into the first (in place, as in _added:
    each is an input of this task alone)."""
    for acc in accs[1:]:
        accs[0].merge(acc)
    return accs[0]


def merge_tree(dask: Any, parts: list[Any], split_every: int, name: str) -> Any:
    """Merge delayed accumulators in a tree of fan-in split_every."""
    level = 0
    while len(parts) > 1:
        parts = [
            dask.delayed(_merged, pure=True, name=f"{name}-merge-{level}-{g}")(*parts[g : g + split_every])
            for g in range(0, len(parts), split_every)
        ]
        level += 1
    return parts[0]


def accumulate(
    X: Any,
    estimator: str | Estimator = "equal_width",
    *,
    edges: Any = None,
    bins: int | str | None = None,
    correction: str | None = None,
    units: str = "bits",
    dtype: Any = np.float64,
    threads: int = 1,
    shards: int | None = None,
    split_every: int = 8,
    compute: bool = True,
) -> Any:
    """Stream a dask array's samples through :class:`pairmi.Accumulator` s on the cluster.

    Parameters
    ----------
    X : dask.array.Array, shape (n, d) or (layers, n, d)
        Chunked along the samples only (other axes are rechunked to one chunk).
    estimator, bins, correction, units, dtype, threads
        As in :class:`pairmi.Accumulator` (``threads`` per task).
    edges : array_like, optional
        Fixed edges (:func:`pairmi.fit_edges`); default: fitted on X's first chunk (computed
        first), which then serves as the calibration sample.
    shards : int, optional
        Chains of tasks, each adding a contiguous run of X's chunks, one task per chunk, to one
        accumulator that moves along the chain (default: one chain per worker of the current
        ``distributed`` client, else one per chunk). A worker holds one chunk at a time.
    split_every : int
        Fan-in of the tree of merges.
    compute : bool
        False: return the dask.delayed accumulator instead of computing it.

    Returns
    -------
    Accumulator
        Equal to one accumulator over all of X's samples: bit-identical for the binned estimators,
        within rounding (1e-12) for the copula.

    Examples
    --------
    >>> import dask.array as da, pairmi, pairmi.dask
    >>> X = da.random.default_rng(0).normal(size=(40_000, 8), chunks=(10_000, 8))
    >>> acc = pairmi.dask.accumulate(X, edges=pairmi.fit_edges(X[:1000].compute()))
    >>> acc.n_samples, acc.result().shape
    (40000, (8, 8))
    """
    est = as_estimator(estimator, bins=bins, correction=correction)
    dask = require_dask()
    import dask.array as da

    if not isinstance(X, da.Array):
        raise TypeError(f"X must be a dask array, got {type(X).__name__} (for numpy use pairmi.Accumulator)")
    if X.ndim not in (2, 3):
        raise ValueError(f"X must be 2-d (samples, variables) or 3-d (layers, samples, variables), got {X.ndim}-d")
    if isinstance(split_every, bool) or not isinstance(split_every, int) or split_every < 2:
        raise ValueError(f"split_every must be an integer >= 2, got {split_every!r}")
    axis = X.ndim - 2
    X = X.rechunk({a: -1 for a in range(X.ndim) if a != axis})
    if edges is None:
        first = X.blocks[(0,) * X.ndim].compute()
        edges = fit_edges(first, estimator, bins, threads=threads)
    settings: dict[str, Any] = {"estimator": est, "edges": np.asarray(edges), "units": units, "dtype": dtype, "threads": threads}
    Accumulator(**settings)  # the settings' checks, here rather than on a worker
    blocks = list(X.to_delayed().ravel())
    shards = _shard_count(shards, len(blocks))
    bounds = np.linspace(0, len(blocks), shards + 1).astype(int)
    name = f"pairmi-accumulate-{dask.base.tokenize(X.name, settings)}"
    # Each shard is a chain of tasks that add one block each: a worker holds one block at a time, and
    # the chain's next task runs where its accumulator is. At a lower priority than X's own tasks, a
    # worker first produces the blocks that wait on it (a chain elsewhere may need them).
    parts = []
    with dask.annotate(priority=-1):
        for s, (a, b) in enumerate(itertools.pairwise(bounds)):
            acc: Any = settings
            for i in range(a, b):
                acc = dask.delayed(_added, pure=True, name=f"{name}-shard-{s}-{i}")(acc, blocks[i])
            if b > a:
                parts.append(acc)
    result = merge_tree(dask, parts, split_every, name)
    return result.compute() if compute else result


def _shard_count(shards: int | None, blocks: int) -> int:
    if shards is None:
        try:
            from distributed import get_client

            shards = len(get_client().scheduler_info()["workers"])
        except (ImportError, ValueError):
            shards = blocks
    if isinstance(shards, bool) or not isinstance(shards, (int, np.integer)) or shards < 1:
        raise ValueError(f"shards must be a positive integer, got {shards!r}")
    return int(max(1, min(shards, blocks)))
