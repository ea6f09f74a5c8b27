"""The recall of a corpus top-k run on real activations, by brute force on a sample of its units.

    python bench/topk_sampled_recall.py RUN_DIR [--units 64] [--seed 0] [--threads 2]

RUN_DIR holds the ``topk.npz`` of ``pairmi analyze --python-docs --topk K ...`` (its settings are
read back from it). For --units random non-degenerate units, every pair with every other unit is
counted exactly over the same tokens with the run's edges (``PairAccumulator``, one more pass of
the model); each sampled unit's true top K is compared with the run's. Prints the recall over the
sampled units, and how far below the true K-th partner the run's missed partners' MI lies.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import pairmi
from pairmi.corpus import python_docstrings
from pairmi.corpus_topk import side_by_side
from pairmi.extract import iter_hidden_states


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--units", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    saved = dict(np.load(args.run / "topk.npz"))
    header = json.loads(str(saved["header"]))
    k = saved["indices"].shape[1]
    alive = np.flatnonzero(~saved["degenerate"])
    units = np.sort(np.random.default_rng(args.seed).choice(alive, size=args.units, replace=False))
    pairs = np.array([(u, v) for u in units for v in alive if v != u])
    acc = pairmi.PairAccumulator(pairs, header["estimator"], edges=saved["edges"], threads=args.threads)
    keys = ("site", "layers", "max_length", "stride", "batch_size", "drop_first_token", "drop_special_tokens", "max_tokens")
    options = {key: header[key] for key in keys}
    t0 = time.perf_counter()
    for batch in iter_hidden_states(header["model"], python_docstrings(), **options):
        acc.update(side_by_side(batch.values))
    seconds = time.perf_counter() - t0
    if acc.n_samples != header["n_samples"]:
        raise SystemExit(f"read {acc.n_samples} tokens, the run counted {header['n_samples']}: not the same corpus")
    mi = acc.result()
    hits, gaps = 0, []
    for u in units:
        rows = pairs[:, 0] == u
        partners, values = pairs[rows, 1], mi[rows]
        order = np.lexsort((partners, -values))
        truth = set(partners[order[:k]].tolist())
        found = set(saved["indices"][u].tolist())
        hits += len(truth & found)
        kth = values[order[k - 1]]
        for p in found - truth:
            gaps.append(float(kth - values[partners == p][0]))
    result = {
        "run": str(args.run),
        "units_sampled": int(args.units),
        "partners": int(k),
        "recall": hits / (args.units * k),
        "missed": len(gaps),
        "missed_gap_bits_median": float(np.median(gaps)) if gaps else 0.0,
        "missed_gap_bits_max": float(np.max(gaps)) if gaps else 0.0,
        "pairs_counted": len(pairs),
        "seconds": round(seconds, 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
