"""Every neuron's partners over a corpus on the cluster: :func:`pairmi.corpus_topk.topk_corpus`'s
two passes as shards of documents, each worker running its model over a shard twice (once for the
screen's sums, once for the chosen pairs' counts), the shards' partial results merged in a tree."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..corpus_topk import CorpusTopK, side_by_side
from ..extraction import Extraction, as_extraction
from ..pair_list import PairAccumulator
from ..screen import Screen
from ..topk_stream import TopKRun, topk_settings
from .corpus_run import model_lock, plan_shards, worker_model
from .samples import merge_tree, require_dask


def _shard_chunks(model: str, texts: Sequence[str], extraction: Extraction) -> Iterable[np.ndarray]:
    from ..extract import iter_hidden_states

    loaded, tok = worker_model(model, extraction.tokenizer, extraction.device)
    with model_lock(model, extraction.tokenizer, extraction.device):
        for batch in iter_hidden_states(loaded, texts, extraction.replace(tokenizer=tok)):
            yield side_by_side(batch.values)


def _screen_shard(knots: np.ndarray, model: str, texts: Sequence[str], extraction: Extraction) -> Screen:
    """A worker's pass-1 task: one shard's screen sums."""
    screen = Screen(knots)
    for chunk in _shard_chunks(model, texts, extraction):
        screen.update(chunk)
    return screen


def _count_shard(
    pairs: np.ndarray, options: dict[str, Any], model: str, texts: Sequence[str], extraction: Extraction
) -> PairAccumulator:
    """A worker's pass-2 task: one shard's exact counts of the chosen pairs."""
    acc = PairAccumulator(pairs, **options)
    for chunk in _shard_chunks(model, texts, extraction):
        acc.update(chunk)
    return acc


def topk_corpus(
    model: str,
    documents: Iterable[str],
    n_partners: int = 16,
    *,
    extraction: Extraction | None = None,
    across_layers: bool = True,
    estimator: str = "equal_frequency",
    bins: int | None = None,
    correction: str | None = None,
    units: str = "bits",
    candidates: int | None = None,
    calibration_tokens: int = 10_000,
    sample_tokens: int = 10_000,
    shard_tokens: int = 100_000,
    threads: int = 1,
    split_every: int = 8,
    **options: Any,
) -> CorpusTopK:
    """:func:`pairmi.corpus_topk.topk_corpus` on the current Dask cluster.

    The edges, the screen's normal-score maps and the degenerate units come from the first
    ``calibration_tokens`` tokens, run here; the documents go out in shards of about
    ``shard_tokens`` tokens (whole documents, stopping at exactly ``max_tokens``); each shard's
    screen sums merge, the pairs are chosen here, and each shard's exact counts of them merge.
    The exact MI of the pairs equals one process's (integer counts); the screen's float sums
    round with the sharding, and the sample whose binned MI also nominates candidates is the
    first ``sample_tokens`` calibration tokens (not a uniform sample of the stream), so the
    candidates may differ a little.
    ``seconds['source']`` is the calibration's forward passes here, ``seconds['screen']`` and
    ``seconds['count']`` the cluster's two passes.
    """
    from ..extract import iter_hidden_states
    from ..models import model_name, resolve_model
    from ..windows import kept_token_counter

    dask = require_dask()
    ex = as_extraction(extraction, options)
    if not isinstance(model, str):
        raise TypeError("model must be a name or path that each worker loads, not a loaded model")
    settings = topk_settings(
        n_partners, estimator, bins, correction, units, candidates, calibration_tokens, None, across_layers, None, sample_tokens
    )
    loaded, tok = resolve_model(model, ex.tokenizer)
    docs = list(documents)
    t0 = time.perf_counter()
    chunks, names = [], None
    for batch in iter_hidden_states(loaded, docs, ex.replace(tokenizer=tok, max_tokens=None)):
        chunks.append(side_by_side(batch.values))
        names, units_per_layer = batch.layer_names, batch.values.shape[2]
        if sum(len(c) for c in chunks) >= calibration_tokens:
            break
    if names is None or sum(len(c) for c in chunks) < 2:
        raise ValueError("the corpus gave fewer than 2 tokens: MI needs at least 2")
    settings["layers"] = [units_per_layer] * len(names)
    run = TopKRun(None, settings, threads, None, None, 0.0)
    run.calibrate(chunks, take_in=False)  # the calibration tokens come again in the first shard, and are the MI sample
    run.seconds["source"] = time.perf_counter() - t0
    shards, caps, _ = plan_shards(docs, kept_token_counter(loaded, tok, ex), shard_tokens, ex.max_tokens)
    parts = [ex.replace(max_tokens=cap) for cap in caps]
    assert run.screen is not None
    token = dask.base.tokenize(model, shards, settings, repr(ex))
    t0 = time.perf_counter()
    screens = [
        dask.delayed(_screen_shard, pure=True, name=f"pairmi-topk-screen-{token}-{s}")(run.screen.knots, model, texts, part)
        for s, (texts, part) in enumerate(zip(shards, parts))
    ]
    run.screen = merge_tree(dask, screens, split_every, f"pairmi-topk-screen-{token}").compute()
    run.seconds["screen"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    run.choose()
    run.seconds["select"] = time.perf_counter() - t0
    assert run.acc is not None
    counting = {"estimator": estimator, "edges": run.edges, "correction": correction, "units": units, "threads": threads}
    t0 = time.perf_counter()
    counts = [
        dask.delayed(_count_shard, pure=True, name=f"pairmi-topk-count-{token}-{s}")(run.acc.pairs, counting, model, texts, part)
        for s, (texts, part) in enumerate(zip(shards, parts))
    ]
    run.acc = merge_tree(dask, counts, split_every, f"pairmi-topk-count-{token}").compute()
    run.seconds["count"] = time.perf_counter() - t0
    if run.acc.n_samples != run.screened:
        raise ValueError(f"the shards gave {run.acc.n_samples:,} tokens to the counts and {run.screened:,} to the screen")
    kept = {"model": model_name(loaded), **ex.params(), "across_layers": across_layers, "dask": True, "shards": len(shards)}
    return CorpusTopK(run.result(), list(names), int(units_per_layer), kept)
