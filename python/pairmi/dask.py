"""All-pairs MI beyond one process, on Dask: sample shards reduced, pair tiles to zarr or top-k.

Two patterns, both on whatever Dask scheduler is current (a ``distributed.Client``, a local
cluster, or Dask's threads):

* **Sample shards, reduced** (:func:`accumulate`, :func:`accumulate_corpus`): the binned joint
  counts and the copula's sums add up over samples, so each task adds its shard to an
  :class:`pairmi.Accumulator` and the partial accumulators merge in a tree. Binned results are
  bit-identical to one process whatever the sharding, the order of the merges or a retried task.
* **Pair tiles** (:func:`mi_tiles`): tasks over square tiles of variables (block i against block j,
  j >= i), each computed by the C++ core (every estimator, KSG too), written into a zarr store
  (resumable, see :mod:`pairmi.tiles`) or reduced to each variable's top-k partners
  (:mod:`pairmi.topk`).

Needs ``pip install 'pairmi[dask]'``.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from . import _arrays, _blocks, tiles, topk
from .extraction import Extraction, as_extraction
from .settings import BINNED_ESTIMATORS, Estimator, auto_bins, unpack
from .stream import Accumulator, fit_edges


def require_dask() -> Any:
    try:
        import dask
        import dask.array
    except ImportError:
        raise ImportError("pairmi.dask needs dask: pip install 'pairmi[dask]'") from None
    return dask


# --- sample shards, reduced ---------------------------------------------------------------------


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


def _tree(dask: Any, parts: list[Any], split_every: int, name: str) -> Any:
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
    estimator, bins, _, correction, _ = unpack(estimator, bins=bins, correction=correction)
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
    settings: dict[str, Any] = {
        "estimator": estimator,
        "edges": np.asarray(edges),
        "bins": bins,
        "correction": correction,
        "units": units,
        "dtype": dtype,
        "threads": threads,
    }
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
    result = _tree(dask, parts, split_every, name)
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


@functools.lru_cache(maxsize=2)
def _worker_model(model: str, tokenizer: str | None, device: str) -> tuple[Any, Any]:
    """The model (and tokenizer) loaded once per worker process, quietly: no loading bar or
    transformers warnings from every worker (the client reports the run)."""
    from transformers.utils import logging as hf_logging

    from .models import resolve_model

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    return resolve_model(model, tokenizer)


def _corpus_shard(settings: dict[str, Any], model: str, texts: Sequence[str], extraction: Extraction, dims: Any) -> Accumulator:
    """A worker's task: the activations of one shard of documents through the worker's model."""
    from .extract import iter_hidden_states

    loaded, tok = _worker_model(model, extraction.tokenizer, extraction.device)
    acc = Accumulator(**settings)
    for batch in iter_hidden_states(loaded, texts, extraction.replace(tokenizer=tok)):
        values = batch.values if dims is None else batch.values[..., dims]
        acc.update(np.ascontiguousarray(values))
    return acc


def accumulate_corpus(
    shards: Iterable[Sequence[str]],
    model: str,
    *,
    edges: Any,
    extraction: Extraction | None = None,
    estimator: str | Estimator = "equal_width",
    correction: str | None = None,
    units: str = "bits",
    dims: Any = None,
    threads: int = 1,
    split_every: int = 8,
    shard_max_tokens: Sequence[int | None] | None = None,
    compute: bool = True,
    **options: Any,
) -> Any:
    """A corpus through a model on the cluster: each task runs the model (loaded once per worker)
    over one shard of documents and accumulates its activations; the shards' accumulators merge.

    Parameters
    ----------
    shards : iterable of sequences of str
        The corpus split into shards of documents (each a task).
    model : str
        A model name or path each worker loads (as :func:`pairmi.hidden_states` takes it).
    extraction : Extraction, optional
        How activations are taken (a tokenizer by name or path, which each worker loads); or pass
        those options as keywords (``**options``). Its ``max_tokens`` applies to each shard.
    edges : array_like
        Fixed edges (layers, d, bins + 1) from a calibration sample
        (``pairmi.fit_edges(pairmi.hidden_states(model, sample).values)``): every shard must bin
        alike.
    estimator, correction, units, threads
        As in :class:`pairmi.Accumulator`.
    dims : slice or sequence of int, optional
        Units to pair, selected after extraction.
    shard_max_tokens : sequence of int or None, optional
        The most tokens each shard keeps (None: all), e.g. the last shard's share of a run that
        stops at exactly ``max_tokens`` (:func:`plan_shards`).

    Returns
    -------
    Accumulator
        Equal (bit-identical for the binned estimators) to one accumulator over all the shards'
        tokens in one process.
    """
    estimator, _, _, correction, _ = unpack(estimator, correction=correction)
    ex = as_extraction(extraction, options)
    dask = require_dask()
    if not isinstance(model, str):
        raise TypeError("model must be a name or path that each worker loads, not a loaded model")
    if ex.tokenizer is not None and not isinstance(ex.tokenizer, str):
        raise TypeError("the tokenizer must be a name or path that each worker loads, not a loaded tokenizer")
    settings: dict[str, Any] = {
        "estimator": estimator,
        "edges": np.asarray(edges),
        "correction": correction,
        "units": units,
        "dtype": np.float32,
        "threads": threads,
    }
    Accumulator(**settings)
    shards = [list(s) for s in shards]
    if not shards:
        raise ValueError("shards is empty: pass the corpus split into lists of documents")
    caps = list(shard_max_tokens) if shard_max_tokens is not None else [None] * len(shards)
    if len(caps) != len(shards):
        raise ValueError(f"shard_max_tokens has {len(caps)} entries for {len(shards)} shards")
    name = f"pairmi-corpus-{dask.base.tokenize(model, shards, settings, repr(ex), repr(dims), caps)}"
    parts = [
        dask.delayed(_corpus_shard, pure=True, name=f"{name}-shard-{s}")(
            settings, model, texts, ex if cap is None else ex.replace(max_tokens=cap), dims
        )
        for s, (texts, cap) in enumerate(zip(shards, caps))
    ]
    result = _tree(dask, parts, split_every, name)
    return result.compute() if compute else result


def corpus_shards(
    documents: Iterable[str], tokenizer: Any, shard_tokens: int, max_tokens: int | None = None
) -> tuple[list[list[str]], int]:
    """Whole documents grouped into shards of about `shard_tokens` tokens (counted by the tokenizer
    on the client), up to `max_tokens`; blank documents dropped. Returns the shards and the count."""
    shards, _, total = plan_shards(
        documents, lambda doc: len(tokenizer(doc, add_special_tokens=False, verbose=False)["input_ids"]), shard_tokens, max_tokens
    )
    return shards, total


def plan_shards(
    documents: Iterable[str], count: Callable[[str], int], shard_tokens: int, max_tokens: int | None = None
) -> tuple[list[list[str]], list[int | None], int]:
    """Whole documents grouped into shards of about `shard_tokens` tokens, `count(doc)` tokens
    each, until `max_tokens`: the shards, the most tokens each may keep (None: all; the last shard's
    share when `max_tokens` ends inside it, so the run keeps exactly max_tokens), and the total."""
    shards: list[list[str]] = [[]]
    sizes = [0]
    total = 0
    for doc in documents:
        if not doc.strip():
            continue
        if max_tokens is not None and total >= max_tokens:
            break
        n = count(doc)
        if sizes[-1] and sizes[-1] + n > shard_tokens:
            shards.append([])
            sizes.append(0)
        shards[-1].append(doc)
        sizes[-1] += n
        total += n
    if not shards[-1]:
        shards.pop()
        sizes.pop()
    caps: list[int | None] = [None] * len(shards)
    if max_tokens is not None and total > max_tokens:
        caps[-1] = max_tokens - (total - sizes[-1])
        total = max_tokens
    return shards, caps, total


def analyze_corpus(
    model: str,
    documents: Iterable[str],
    *,
    extraction: Extraction | None = None,
    estimator: str | Estimator = "equal_width",
    bins: int | str | None = None,
    correction: str | None = None,
    units: str = "bits",
    dims: Any = None,
    calibration_tokens: int = 10_000,
    keep_tokens: int = 2_000,
    shard_tokens: int = 100_000,
    threads: int = 1,
    **options: Any,
) -> Any:
    """:func:`pairmi.corpus.analyze_corpus` on the current Dask cluster: the edges are fitted on the
    first ``calibration_tokens`` tokens here, the documents go out in shards of about
    ``shard_tokens`` tokens (whole documents, counted as the model's windows keep them, so the
    run stops at exactly ``max_tokens`` as in one process), each worker runs the model (loaded once) over its shards,
    and the accumulators merge. The figures' token sample is the calibration sample's first
    ``keep_tokens``. Returns a :class:`pairmi.corpus.CorpusRun`; ``seconds_model`` is the
    calibration's forward passes here, ``seconds_mi`` the cluster's whole run.
    """
    estimator, bins, _, correction, _ = unpack(estimator, bins=bins, correction=correction)
    ex = as_extraction(extraction, options)
    import time

    from ._core import __version__
    from .analysis import Analysis
    from .corpus import CorpusRun, corpus_extra, select_units
    from .extract import iter_hidden_states
    from .models import resolve_model
    from .windows import kept_token_counter

    if not isinstance(model, str):
        raise TypeError("model must be a name or path that each worker loads, not a loaded model")
    loaded, tok = resolve_model(model, ex.tokenizer)
    docs = list(documents) if not isinstance(documents, list) else documents
    t0 = time.perf_counter()
    batches = []  # whole batches up to calibration_tokens, as the single-process run calibrates
    for batch in iter_hidden_states(loaded, docs, ex.replace(tokenizer=tok, max_tokens=None)):
        batches.append(batch)
        if sum(len(b.tokens) for b in batches) >= calibration_tokens:
            break
    seconds_model = time.perf_counter() - t0
    if not batches or sum(len(b.tokens) for b in batches) < 2:
        raise ValueError("the corpus gave fewer than 2 tokens: MI needs at least 2")
    sample = np.concatenate([b.values for b in batches], axis=1)
    tokens = [t for b in batches for t in b.tokens]
    edges = fit_edges(select_units(sample, dims), estimator, bins if estimator != "gaussian_copula" else None)
    shards, caps, counted = plan_shards(docs, kept_token_counter(loaded, tok, ex), shard_tokens, ex.max_tokens)
    t0 = time.perf_counter()
    acc = accumulate_corpus(
        shards,
        model,
        edges=edges,
        extraction=ex.replace(max_tokens=None),
        estimator=estimator,
        correction=correction,
        units=units,
        dims=dims,
        threads=threads,
        shard_max_tokens=caps,
    )
    mi = acc.result()
    seconds_mi = time.perf_counter() - t0
    units_all = sample.shape[2]
    dim_idx = np.arange(units_all) if dims is None else np.arange(units_all)[dims]
    params = {
        "estimator": estimator,
        "bins": bins,
        "correction": correction,
        "units": units,
        "dims": repr(dims),
        **ex.params(),
        "calibration_tokens": calibration_tokens,
        "keep_tokens": keep_tokens,
        "model": model,
        "tokens": acc.n_samples,
        "shards": len(shards),
        "tokenizer_tokens": counted,
        "pairmi_version": __version__,
        "corpus": True,
        "dask": True,
        "seconds_model": round(seconds_model, 3),
        "seconds_mi": round(seconds_mi, 3),
    }
    keep = min(keep_tokens, sample.shape[1])
    kept = sample[:, :keep] if keep else None
    extra = corpus_extra(acc, kept, dim_idx)
    analysis = Analysis(mi, batches[0].layer_names, tokens[:keep], dim_idx, params, kept, extra)
    return CorpusRun(analysis, acc, seconds_model, seconds_mi, acc.n_samples)


# --- pair tiles ---------------------------------------------------------------------------------


def _tile_task(
    xi: np.ndarray, xj: np.ndarray, i: int, j: int, tile: int, d: int, opts: dict[str, Any], diagonal: np.ndarray | None
) -> np.ndarray:
    """The MI of tile (i, j) from the samples of its two blocks of variables."""
    same = i == j
    x = xi if same else np.ascontiguousarray(np.concatenate([xi, xj], axis=1))
    rows_of = _blocks.row_source(x, opts["estimator"], opts["bins"], opts["scale"], opts["threads"], opts["mm"], opts["k"])
    ri = xi.shape[1]
    values = rows_of(0, ri, 0 if same else ri, x.shape[1])
    if same:
        idx = np.arange(ri)
        values[idx, idx] = diagonal
    return values


def _tile_to_zarr(
    path: str,
    xi: np.ndarray,
    xj: np.ndarray,
    i: int,
    j: int,
    tile: int,
    d: int,
    opts: dict[str, Any],
    diagonal: np.ndarray | None,
) -> tuple[int, int]:
    import zarr

    group = zarr.open_group(store=path, mode="r+")
    tiles.write_tile(group, i, j, tile, _tile_task(xi, xj, i, j, tile, d, opts, diagonal))
    return i, j


def _tile_partials(
    xi: np.ndarray,
    xj: np.ndarray,
    i: int,
    j: int,
    tile: int,
    d: int,
    opts: dict[str, Any],
    diagonal: np.ndarray | None,
    k: int,
    threshold: float | None,
) -> list[topk.RowPartial]:
    """A tile's summaries of its rows (block i) and, off the diagonal, of its columns (block j)."""
    values = _tile_task(xi, xj, i, j, tile, d, opts, diagonal)
    parts = [topk.summarize_block(values.copy() if i != j else values, i * tile, j * tile, k, threshold)]
    if i != j:  # the mirror's rows lie below the diagonal: their pairs (j > i) are the tile's, not repeated
        parts.append(topk.summarize_block(np.ascontiguousarray(values.T), j * tile, i * tile, k, threshold))
    return parts


def _diagonal_task(x: np.ndarray, opts: dict[str, Any]) -> np.ndarray:
    return _blocks.diagonal_of(x, opts["estimator"], opts["bins"], opts["scale"], opts["threads"], opts["mm"])


def mi_tiles(
    X: Any,
    *,
    estimator: str | Estimator = "equal_width",
    bins: int | str | None = None,
    k: int | None = None,
    correction: str | None = None,
    units: str = "bits",
    threads: int = 1,
    tile_size: int | None = None,
    out: Any = None,
    dtype: Any = None,
    topk_k: int | None = None,
    threshold: float | None = None,
    nan_policy: str = "raise",
    compute: bool = True,
) -> Any:
    """The MI of every pair of a column-chunked dask array, one task per tile of variables.

    Parameters
    ----------
    X : dask.array.Array, shape (n, d)
        Samples in one chunk, variables in chunks (rechunked to ``tile_size`` columns).
    estimator, bins, k, correction, units
        As in :func:`pairmi.mi_matrix` (every estimator; ``k``: KSG's neighbours).
    threads : int
        Threads of each task.
    tile_size : int, optional
        Variables a side of a tile (default: X's column chunk).
    out : str, optional
        A zarr store (path ending in .zarr) to write the dense matrix into, resumable: tiles
        already written are skipped (:mod:`pairmi.tiles`); ``dtype`` its dtype.
    topk_k : int, optional
        Instead of a dense matrix: each variable's ``topk_k`` strongest partners (a
        :class:`pairmi.TopK`, with ``threshold`` the pairs above it), tiles reduced per block of rows.
    nan_policy : {'raise', 'omit'}
        As in :func:`pairmi.mi_matrix`: NaN or Inf anywhere in X is a ValueError naming the columns
        (global indices), or ``'omit'`` drops those samples. Checked in one pass over X first.
    compute : bool
        False: return the delayed result.

    Returns
    -------
    zarr.Array (with ``out``), TopK (with ``topk_k``), else the dense ndarray (d, d)
        Equal to ``pairmi.mi_matrix(X.compute(), ...)`` within rounding (1e-12 bits).
    """
    estimator, bins, k, correction, noise = unpack(estimator, bins=bins, k=k, correction=correction)
    if correction == "shuffle" or noise > 0:
        raise ValueError(
            "mi_tiles takes neither correction='shuffle' nor KSG noise (both need the whole matrix at once): "
            "use pairmi.mi_matrix, or jitter X yourself"
        )
    dtype = np.float64 if dtype is None else dtype
    dask = require_dask()
    import dask.array as da

    if not isinstance(X, da.Array) or X.ndim != 2:
        raise TypeError("X must be a 2-d dask array (samples, variables)")
    if out is not None and topk_k is not None:
        raise ValueError("pass out= (a dense matrix on disk) or topk_k= (top partners), not both")
    if estimator not in topk.TOPK_ESTIMATORS:
        raise ValueError(f"estimator must be one of {topk.TOPK_ESTIMATORS}, got {estimator!r}")
    if out is not None:
        dtype = tiles.check_store_dtype(dtype)
    if tile_size is not None and (isinstance(tile_size, bool) or not isinstance(tile_size, (int, np.integer)) or tile_size < 1):
        raise ValueError(f"tile_size must be a positive integer (variables a side of a tile), got {tile_size!r}")
    X = _finite_samples(dask, X, nan_policy)
    n, d = X.shape
    b = (auto_bins(n) if bins == "auto" else _arrays.check_bins(bins, n)) if estimator in BINNED_ESTIMATORS else 0
    tile = int(X.chunks[1][0] if tile_size is None else tile_size)
    X = X.rechunk((-1, tile))
    opts = {
        "estimator": estimator,
        "bins": b,
        "scale": _arrays.unit_scale(units),
        "threads": threads,
        "mm": correction == "miller_madow",
        "k": k,
    }
    cols = list(X.to_delayed().ravel())
    name = f"pairmi-tiles-{dask.base.tokenize(X.name, opts, tile)}"
    diag = [dask.delayed(_diagonal_task, pure=True, name=f"{name}-diag-{i}")(c, opts) for i, c in enumerate(cols)]
    blocks = tiles.tile_blocks(d, tile)
    if out is not None:
        settings = {
            "estimator": estimator,
            "bins": b,
            "k": k,
            "correction": correction,
            "units": units,
            "samples": n,
            "data": f"dask:{X.name}",
        }
        group = tiles.open_store(out, d, tile, dtype, settings)
        todo = tiles.pending_tiles(group, d, tile)
        path = str(out)
        writes = [
            dask.delayed(_tile_to_zarr, pure=True, name=f"{name}-zarr-{i}-{j}")(
                path, cols[i], cols[j], i, j, tile, d, opts, diag[i] if i == j else None
            )
            for i, j in todo
        ]
        if not compute:
            return writes
        dask.compute(*writes)
        return group["mi"]
    if topk_k is not None:
        if isinstance(topk_k, bool) or not isinstance(topk_k, (int, np.integer)) or not 1 <= topk_k < d:
            raise ValueError(f"topk_k must be an integer in [1, {d - 1}], got {topk_k!r}")
        per_row: dict[int, list[Any]] = {}
        for i, j in blocks:
            task = dask.delayed(_tile_partials, pure=True, name=f"{name}-topk-{i}-{j}")(
                cols[i], cols[j], i, j, tile, d, opts, diag[i] if i == j else None, int(topk_k), threshold
            )
            per_row.setdefault(i, []).append(task[0])
            if i != j:
                per_row.setdefault(j, []).append(task[1])
        rows = [
            dask.delayed(topk.merge_partials, pure=True, name=f"{name}-rows-{i}")(parts, int(topk_k))
            for i, parts in sorted(per_row.items())
        ]
        result = dask.delayed(topk.finish, pure=True, name=f"{name}-finish")(rows, d, int(topk_k), threshold, units, estimator)
        return result.compute() if compute else result
    dense = dask.delayed(_assemble, pure=True, name=f"{name}-dense")(
        [
            dask.delayed(_tile_task, pure=True, name=f"{name}-tile-{i}-{j}")(
                cols[i], cols[j], i, j, tile, d, opts, diag[i] if i == j else None
            )
            for i, j in blocks
        ],
        blocks,
        tile,
        d,
        dtype,
    )
    return dense.compute() if compute else dense


def _finite_samples(dask: Any, X: Any, nan_policy: str) -> Any:
    """X with mi_matrix's NaN/Inf policy applied: a ValueError naming X's columns (global indices),
    or the samples (rows) holding NaN or Inf dropped."""
    if nan_policy not in _arrays.NAN_POLICIES:
        raise ValueError(f"nan_policy must be one of {_arrays.NAN_POLICIES}, got {nan_policy!r}")
    finite = dask.array.isfinite(X)
    bad_columns, bad_rows = dask.compute((~finite).any(axis=0), (~finite).any(axis=1))
    if nan_policy == "raise" and bad_columns.any():
        raise _arrays.nan_error("X", np.flatnonzero(bad_columns))
    if bad_rows.any():
        X = X[np.flatnonzero(~bad_rows)]
    _arrays.check_left("X", X.shape[0], X.shape[1], 2, int(bad_rows.sum()))
    return X


def _assemble(values: list[np.ndarray], blocks: list[tuple[int, int]], tile: int, d: int, dtype: Any) -> np.ndarray:
    out = np.empty((d, d), dtype=dtype)
    for (i, j), v in zip(blocks, values):
        out[i * tile : i * tile + v.shape[0], j * tile : j * tile + v.shape[1]] = v
        out[j * tile : j * tile + v.shape[1], i * tile : i * tile + v.shape[0]] = v.T
    return out
