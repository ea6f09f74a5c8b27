"""All-pairs MI beyond one process, on Dask: sample shards reduced, pair tiles to zarr or top-k.

Two patterns, both on whatever Dask scheduler is current (a ``distributed.Client``, a local
cluster, or Dask's threads):

* **Sample shards, reduced** (:func:`accumulate`, :func:`accumulate_corpus`): the binned joint
  counts and the copula's sums add up over samples, so each task adds its shard to an
  :class:`pairmi.Accumulator` and the partial accumulators merge in a tree; :func:`topk_corpus`
  does the same for every neuron's partners (the screen's sums, then the chosen pairs' counts). Binned results are
  bit-identical to one process whatever the sharding, the order of the merges or a retried task.
* **Pair tiles** (:func:`mi_tiles`): tasks over square tiles of variables (block i against block j,
  j >= i), each computed by the C++ core (every estimator, KSG too), written into a zarr store
  (resumable, see :mod:`pairmi.tiles`) or reduced to each variable's top-k partners
  (:mod:`pairmi.topk`).

Needs ``pip install 'pairmi[dask]'``.
"""

from __future__ import annotations

from .corpus_run import accumulate_corpus, analyze_corpus, corpus_shards, plan_shards
from .pair_tiles import mi_tiles
from .samples import accumulate, require_dask
from .topk_run import topk_corpus

__all__ = [
    "accumulate",
    "accumulate_corpus",
    "analyze_corpus",
    "corpus_shards",
    "mi_tiles",
    "plan_shards",
    "require_dask",
    "topk_corpus",
]
