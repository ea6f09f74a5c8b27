"""A corpus through a model on the cluster: shards of whole documents, each run through the
worker's model into an accumulator, merged; the in-process run's plan (:class:`pairmi.corpus.CorpusPlan`)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from ..extraction import Extraction, as_extraction
from ..position import StreamTotals, WindowLags
from ..settings import Estimator, as_estimator
from ..stats import check_lags
from ..stream import Accumulator
from .samples import merge_tree, require_dask


@functools.lru_cache(maxsize=2)
def worker_model(model: str, tokenizer: str | None, device: str) -> tuple[Any, Any]:
    """The model (and tokenizer) loaded once per worker process, quietly: no loading bar or
    transformers warnings from every worker (the client reports the run)."""
    from transformers.utils import logging as hf_logging

    from ..models import resolve_model

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    return resolve_model(model, tokenizer)


@functools.lru_cache(maxsize=2)
def model_lock(model: str, tokenizer: str | None, device: str) -> threading.Lock:
    """One task at a time through a worker's shared model: the extraction hooks its modules, so
    two tasks on two threads of one worker would read each other's activations."""
    return threading.Lock()


def _corpus_shard(
    settings: dict[str, Any], model: str, texts: Sequence[str], extraction: Extraction, dims: Any, lags: tuple[int, ...] = ()
) -> Accumulator | StreamTotals:
    """A worker's task: the activations of one shard of documents through the worker's model; with
    ``lags``, the position null's lagged counts of the shard's windows too."""
    from ..extract import iter_hidden_states

    loaded, tok = worker_model(model, extraction.tokenizer, extraction.device)
    acc = Accumulator(**settings)
    position = None
    if lags:
        lagged = {**settings, "dtype": np.float64}
        position = WindowLags(lags, lambda **kw: Accumulator(**{**lagged, **kw}), settings["edges"])
    with model_lock(model, extraction.tokenizer, extraction.device):
        for batch in iter_hidden_states(loaded, texts, extraction.replace(tokenizer=tok)):
            values = np.ascontiguousarray(batch.values if dims is None else batch.values[..., dims])
            acc.update(values)
            if position is not None:
                position.add(values, batch.window_tokens)
    return acc if position is None else StreamTotals(acc, position)


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
    window_lags: int | Sequence[int] | None = None,
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
    window_lags : int or sequence of int, optional
        Also the position null's counts (:func:`pairmi.position_null`), each shard's windows paired
        within the shard (the pairs across two shards' edge are left out).

    Returns
    -------
    Accumulator, or StreamTotals with ``window_lags``
        Equal (bit-identical for the binned estimators) to one accumulator over all the shards'
        tokens in one process; with ``window_lags`` a :class:`pairmi.position.StreamTotals` of it
        and the lags' accumulators (``.lags.null()``: the position null).
    """
    est = as_estimator(estimator, correction=correction)
    ex = as_extraction(extraction, options)
    dask = require_dask()
    if not isinstance(model, str):
        raise TypeError("model must be a name or path that each worker loads, not a loaded model")
    if ex.tokenizer is not None and not isinstance(ex.tokenizer, str):
        raise TypeError("the tokenizer must be a name or path that each worker loads, not a loaded tokenizer")
    settings: dict[str, Any] = {
        "estimator": est,
        "edges": np.asarray(edges),
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
    lags = () if window_lags is None else check_lags(window_lags)
    name = f"pairmi-corpus-{dask.base.tokenize(model, shards, settings, repr(ex), repr(dims), caps, lags)}"
    parts = [
        dask.delayed(_corpus_shard, pure=True, name=f"{name}-shard-{s}")(
            settings, model, texts, ex if cap is None else ex.replace(max_tokens=cap), dims, lags
        )
        for s, (texts, cap) in enumerate(zip(shards, caps))
    ]
    result = merge_tree(dask, parts, split_every, name)
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
    window_lags: int | Sequence[int] | None = None,
    **options: Any,
) -> Any:
    """:func:`pairmi.corpus.analyze_corpus` on the current Dask cluster: the edges are fitted on the
    first ``calibration_tokens`` tokens here, the documents go out in shards of about
    ``shard_tokens`` tokens (whole documents, counted as the model's windows keep them, so the
    run stops at exactly ``max_tokens`` as in one process), each worker runs the model (loaded once) over its shards,
    and the accumulators merge. The figures' token sample is the calibration sample's first
    ``keep_tokens``. Returns a :class:`pairmi.corpus.CorpusRun`; ``seconds_model`` is the
    calibration's forward passes here, ``seconds_mi`` the cluster's whole run. ``window_lags``: the
    position null, each shard's windows paired within the shard.
    """
    import time

    from ..corpus import CorpusPlan, CorpusRun
    from ..extract import iter_hidden_states
    from ..models import resolve_model
    from ..windows import kept_token_counter

    ex = as_extraction(extraction, options)
    if not isinstance(model, str):
        raise TypeError("model must be a name or path that each worker loads, not a loaded model")
    est = as_estimator(estimator, bins=bins, correction=correction)
    lags = () if window_lags is None else check_lags(window_lags)
    plan = CorpusPlan(est, ex, units, dims, calibration_tokens, keep_tokens, model, lags)
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
    shards, caps, counted = plan_shards(docs, kept_token_counter(loaded, tok, ex), shard_tokens, ex.max_tokens)
    t0 = time.perf_counter()
    totals = accumulate_corpus(
        shards,
        model,
        edges=plan.edges(batches, None),
        extraction=ex.replace(max_tokens=None),
        estimator=est,
        units=units,
        dims=dims,
        threads=threads,
        shard_max_tokens=caps,
        window_lags=lags or None,
    )
    acc, position = (totals.accumulator, totals.lags) if lags else (totals, None)
    sample = np.concatenate([b.values for b in batches], axis=1)
    keep = min(keep_tokens, sample.shape[1])
    tokens = [t for b in batches for t in b.tokens][:keep]
    run = {"shards": len(shards), "tokenizer_tokens": counted, "dask": True, "seconds_model": round(seconds_model, 3)}
    kept = sample[:, :keep] if keep else None
    analysis = plan.finish(acc, batches[0].layer_names, tokens, kept, sample.shape[2], run, position)
    seconds_mi = time.perf_counter() - t0
    analysis.params["seconds_mi"] = round(seconds_mi, 3)
    return CorpusRun(analysis, acc, seconds_model, seconds_mi, acc.n_samples)
