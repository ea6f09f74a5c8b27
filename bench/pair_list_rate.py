"""The pair-list accumulator's counting rate against the dense accumulator's, on the same pairs.

    python bench/pair_list_rate.py [--runs 5] [--threads 2] [--d 768] [--chunk 4096] [--chunks 4]

1. Same pairs: every pair i < j of --d Student-t units (15 equal-frequency bins), --chunks chunks
   of --chunk samples added by ``Accumulator.update`` and by ``PairAccumulator.update`` with the
   full pair list, alternating, median of --runs: joint-count increments per second
   (pairs x samples / s) and their ratio (the issue's target: >= 0.5).
2. Scattered pairs: 64 random partners for each of 9,216 units (a screen's candidates across a
   model; the columns of a run are far apart in memory), the same rate.
Both results are exact: the pair list equals the dense result on its pairs (checked).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import pairmi


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--d", type=int, default=768)
    ap.add_argument("--chunk", type=int, default=4096)
    ap.add_argument("--chunks", type=int, default=4)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    data = [rng.standard_t(3, size=(args.chunk, args.d)).astype(np.float32) for _ in range(args.chunks)]
    edges = pairmi.fit_edges(data[0], "equal_frequency", bins=15)
    iu = np.triu_indices(args.d, k=1)
    pairs = np.stack(iu, axis=1)
    increments = len(pairs) * args.chunk * args.chunks

    def dense() -> pairmi.Accumulator:
        acc = pairmi.Accumulator("equal_frequency", edges=edges, threads=args.threads)
        for part in data:
            acc.update(part)
        return acc

    def listed() -> pairmi.PairAccumulator:
        acc = pairmi.PairAccumulator(pairs, "equal_frequency", edges=edges, threads=args.threads)
        for part in data:
            acc.update(part)
        return acc

    np.testing.assert_allclose(listed().result(), dense().result()[iu], rtol=0, atol=1e-6)  # float32 dense result
    times: dict[str, list[float]] = {"dense": [], "list": []}
    for _ in range(args.runs):
        times["dense"].append(timed(dense))
        times["list"].append(timed(listed))
    med = {k: float(np.median(v)) for k, v in times.items()}
    rate = {k: increments / v for k, v in med.items()}
    out = {
        "same_pairs": {
            "d": args.d,
            "pairs": len(pairs),
            "samples": args.chunk * args.chunks,
            "seconds": med,
            "increments_per_s": rate,
            "ratio_list_to_dense": rate["list"] / rate["dense"],
        }
    }
    # Scattered: 9,216 units, 64 random partners each (deduplicated pairs i < j).
    d_wide, partners = 9216, 64
    wide = rng.standard_t(3, size=(args.chunk, d_wide)).astype(np.float32)
    wide_edges = pairmi.fit_edges(wide, "equal_frequency", bins=15)
    i = np.repeat(np.arange(d_wide), partners)
    j = rng.integers(0, d_wide - 1, size=i.size)
    j = np.where(j >= i, j + 1, j)
    flat = np.unique(np.minimum(i, j) * d_wide + np.maximum(i, j))
    scattered = np.stack([flat // d_wide, flat % d_wide], axis=1)
    acc = pairmi.PairAccumulator(scattered, "equal_frequency", edges=wide_edges, threads=args.threads)
    acc.update(wide)  # allocate and touch the counts once, as a stream does
    secs = float(np.median([timed(lambda: acc.update(wide)) for _ in range(args.runs)]))
    out["scattered"] = {
        "d": d_wide,
        "pairs": len(scattered),
        "samples": args.chunk,
        "seconds": secs,
        "increments_per_s": len(scattered) * args.chunk / secs,
        "ratio_to_dense_same_pairs": len(scattered) * args.chunk / secs / rate["dense"],
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
