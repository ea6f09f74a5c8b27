"""topk_stream's recall of every unit's exact top partners, and its peak memory, against brute force.

    python bench/topk_recall.py [--d 4096] [--n 50000] [--partners 16] [--candidates 64] [--threads 2]

Synthetic units, made chunk by chunk (the whole matrix never exists while topk_stream runs):
- many weak dependencies: each of --links offsets o joins every unit u to u + o (mod d - 16)
  through a latent of its own, at a correlation drawn from [0.05, 0.055], so each unit has
  2 x links = 18 weak partners of distinct strengths, above the noise of binned MI at n = 50,000
  (their MI, 0.0015-0.0022 bits, against a null spread of 0.0003);
- 16 planted strong pairs, 4 of each kind, each the last 16 units as a function of a linked unit:
  linear (y = x + noise), y = x^2 + noise, y = |x| + noise and a sign flip (y = s x, s = +-1 at
  random): the last three are invisible to Pearson. Beyond its source, a planted y unit's top
  partners are noise (its source's partners share little with x^2 or |x|), which no screen can
  predict: at most 16 x 15 of the d x 16 top partners.

1. ``pairmi.topk_stream`` (equal-frequency, 15 bins) in a fresh process: wall time, its split and
   the peak resident memory (Linux VmHWM, less the interpreter's before).
2. Brute force: ``mi_matrix`` of all n samples with the run's edges (every pair, exact), each
   unit's top --partners by a stable sort. Recall: the share of those found by topk_stream, over
   all units and over the planted pairs; and the largest gap between topk_stream's values and the
   brute force's for the pairs it reports (exactness, bits).
Dense counts of all pairs would need d (d - 1) / 2 x 15^2 x 8 bytes (15 GB at d = 4,096).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

KINDS = ("linear", "square", "abs", "sign_flip")
CHUNK = 5000
RHO = (0.05, 0.055)
PLANTED = 4  # pairs of each kind

RUN = """
import json, sys, time, numpy as np, pairmi
sys.path.insert(0, {bench!r})
from topk_recall import Synthetic
def rss(key):
    return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith(key + ":"))
syn = Synthetic({d}, {n}, {links}, {seed})
before = rss("VmRSS")
open("/proc/self/clear_refs", "w").write("5")
t0 = time.perf_counter()
top = pairmi.topk_stream(syn.chunks, n_partners={partners}, candidates={candidates}, calibration=10000, threads={threads})
seconds = time.perf_counter() - t0
top.save({out!r})
print(json.dumps({{"seconds": seconds, "peak": rss("VmHWM") - before, "split": top.seconds, "pairs": len(top.pairs)}}))
"""


class Synthetic:
    """The bench's units (module docstring), chunk c drawn from its own seed."""

    def __init__(self, d: int, n: int, links: int, seed: int) -> None:
        self.d, self.n, self.seed = d, n, seed
        rng = np.random.default_rng(seed)
        self.linked = d - PLANTED * len(KINDS)  # the planted y units come last, each a function of a linked unit
        self.offsets = rng.choice(np.arange(1, self.linked // 2), size=links, replace=False)
        self.strength = [rng.uniform(*RHO, size=self.linked) for _ in range(links)]
        self.share = 1.0 / (1.0 - 2 * links * np.mean(RHO))
        sources = rng.permutation(self.linked)[: PLANTED * len(KINDS)].reshape(len(KINDS), PLANTED)
        ys = np.arange(self.linked, d).reshape(len(KINDS), PLANTED)
        self.planted = {kind: np.stack([ys[k], sources[k]], axis=1) for k, kind in enumerate(KINDS)}  # (y, x) pairs

    def chunk(self, c: int) -> np.ndarray:
        rows = min(CHUNK, self.n - c * CHUNK)
        rng = np.random.default_rng([self.seed, c])
        x = rng.normal(size=(rows, self.d))
        linked = x[:, : self.linked]
        for o, s in zip(self.offsets, self.strength):
            shared = rng.normal(size=(rows, self.linked)) * np.sqrt(s * self.share)
            linked += shared + np.roll(shared, int(o), axis=1)
        for kind, pairs in self.planted.items():
            y, src = pairs[:, 0], pairs[:, 1]
            if kind == "linear":
                x[:, y] = x[:, src] + 0.5 * x[:, src].std(axis=0) * rng.normal(size=(rows, len(y)))
            elif kind == "square":
                x[:, y] = x[:, src] ** 2 / self.share + rng.normal(size=(rows, len(y)))
            elif kind == "abs":
                x[:, y] = np.abs(x[:, src]) / np.sqrt(self.share) + 0.5 * rng.normal(size=(rows, len(y)))
            else:
                x[:, y] = x[:, src] * rng.choice([-1.0, 1.0], size=(rows, len(y)))
        return x.astype(np.float32)

    def chunks(self, skip: int = 0):
        return (self.chunk(c) for c in range(skip, -(-self.n // CHUNK)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--d", type=int, default=4096)
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--links", type=int, default=9)
    ap.add_argument("--partners", type=int, default=16)
    ap.add_argument("--candidates", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import pairmi

    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "top.npz")
        script = RUN.format(
            bench=str(Path(__file__).parent),
            out=out,
            **{k: getattr(args, k) for k in ("d", "n", "links", "seed", "partners", "candidates", "threads")},
        )
        run = json.loads(subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True).stdout)
        top = dict(np.load(out))
    syn = Synthetic(args.d, args.n, args.links, args.seed)
    x = np.concatenate(list(syn.chunks()))
    t0 = time.perf_counter()
    mi = pairmi.mi_matrix(x, estimator="equal_frequency", edges=top["edges"], dtype=np.float64, threads=args.threads)
    brute_seconds = time.perf_counter() - t0
    del x
    np.fill_diagonal(mi, -np.inf)
    truth = np.argsort(-mi, axis=1, kind="stable")[:, : args.partners]
    found = top["indices"]
    hits = sum(len(set(truth[u].tolist()) & set(found[u].tolist())) for u in range(args.d))
    planted_found = {
        kind: int(sum(found[y, 0] == s and found[s, 0] == y for y, s in pairs)) for kind, pairs in syn.planted.items()
    }
    planted_in_truth = {kind: int(sum(truth[y, 0] == s for y, s in pairs)) for kind, pairs in syn.planted.items()}
    has = found >= 0
    rows = np.nonzero(has)[0]
    exact_gap = float(np.abs(top["mi"][has] - mi[rows, found[has]]).max())
    result = {
        "d": args.d,
        "n": args.n,
        "partners": args.partners,
        "candidates": args.candidates,
        "weak_partners_per_unit": 2 * args.links,
        "recall": hits / (args.d * args.partners),
        "planted_found_as_top_partner_both_ways": planted_found,
        "planted_top_in_brute_force": planted_in_truth,
        "max_abs_gap_bits": exact_gap,
        "pairs_counted": run["pairs"],
        "seconds_topk_stream": round(run["seconds"], 1),
        "split": run["split"],
        "peak_bytes": run["peak"],
        "dense_counts_bytes": args.d * (args.d - 1) // 2 * 15 * 15 * 8,
        "seconds_brute_force_mi_matrix": round(brute_seconds, 1),
        "threads": args.threads,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
