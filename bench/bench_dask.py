"""Dask against one process, and top-k in bounded memory.

    python bench/bench_dask.py [--runs 5] [--tokens 1000000] [--ksg-samples 4096] [--topk-variables 50000]
                               [--parts accumulate,ksg,topk] [--json FILE]

1. Sample shards: --tokens x 768 float32 (standard normal, chunks of 65,536 generated from their
   index inside each task, in both setups), 15 equal-width bins fixed on chunk 0. One process: an
   Accumulator with threads=2, chunk by chunk. Cluster: ``pairmi.dask.accumulate`` on a
   LocalCluster of 2 worker processes x 1 thread (threads=1 per task, one chain of chunks per
   worker, then one merge). Alternating, median of --runs; results compared bit for bit.
2. Pair tiles: KSG (k = 3) on --ksg-samples x 768. One process: ``mi_matrix`` with threads=2.
   Cluster: ``pairmi.dask.mi_tiles`` with tiles of 128 variables (21 tasks), threads=1 each.
3. ``mi_topk(k=10)`` on 1,024 x --topk-variables float32 with the Gaussian copula in a fresh
   process: wall time and peak resident memory (Linux VmHWM), against 1 GB; the dense float32
   matrix would take 4 d^2 bytes.
Overhead = cluster / one process - 1; the target is at most 15 %.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

D, BINS, CHUNK = 768, 15, 65_536

TOPK_SCRIPT = """
import json, sys, time, numpy as np, pairmi
n, d = int(sys.argv[1]), int(sys.argv[2])
X = np.random.default_rng(0).standard_normal((n, d), dtype=np.float32)
X[:, 1::2] += X[:, ::2]  # pairs that share information
t0 = time.perf_counter()
top = pairmi.mi_topk(X, n_partners=10, estimator="gaussian_copula", threads=2)
seconds = time.perf_counter() - t0
with open("/proc/self/status") as fh:
    peak = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM"))
ok = bool((top.indices[::2, 0] == np.arange(1, d, 2)).all())
print(json.dumps({"seconds": seconds, "peak_bytes": peak, "input_bytes": X.nbytes, "partners_found": ok}))
"""


def chunk(i: int, rows: int) -> np.ndarray:
    """Chunk i of the stream: standard normal float32, the same wherever it is made."""
    return np.random.default_rng(i).standard_normal((rows, D), dtype=np.float32)


def sizes(tokens: int) -> list[int]:
    return [min(CHUNK, tokens - s) for s in range(0, tokens, CHUNK)]


def stream_one(tokens: int, edges: np.ndarray):
    import pairmi

    acc = pairmi.Accumulator(edges=edges, threads=2)
    for i, rows in enumerate(sizes(tokens)):
        acc.update(chunk(i, rows))
    return acc


def stream_cluster(tokens: int, edges: np.ndarray):
    import dask
    import dask.array as da

    import pairmi.dask

    parts = [
        da.from_delayed(dask.delayed(chunk)(i, rows), shape=(rows, D), dtype=np.float32) for i, rows in enumerate(sizes(tokens))
    ]
    return pairmi.dask.accumulate(da.concatenate(parts), edges=edges, threads=1, shards=2)


def median_alternating(a, b, runs: int) -> tuple[float, float, list[float], list[float]]:
    ta, tb = [], []
    for _ in range(runs):
        for fn, times in ((a, ta), (b, tb)):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return float(np.median(ta)), float(np.median(tb)), ta, tb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=1_000_000)
    ap.add_argument("--ksg-samples", type=int, default=4096)
    ap.add_argument("--topk-variables", type=int, default=50_000)
    ap.add_argument("--parts", default="accumulate,ksg,topk", help="which workloads, comma-separated")
    ap.add_argument("--json")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    if not parts <= {"accumulate", "ksg", "topk"}:
        ap.error(f"--parts takes accumulate, ksg and topk, got {args.parts!r}")
    from distributed import Client, LocalCluster

    import pairmi

    rows = []
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", host="127.0.0.1") as cluster,
        Client(cluster),
    ):
        if "accumulate" in parts:
            rows.append(accumulation(args))
        if "ksg" in parts:
            rows.append(ksg_tiles(args))
    topk = measure_topk(args) if "topk" in parts else None
    print(
        f"# pairmi {pairmi.__version__}: LocalCluster (2 processes x 1 thread) against one process (2 threads), "
        f"median of {args.runs} alternating runs\n"
    )
    print("| workload | one process | cluster | overhead | target | same result |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['what']} | {r['one_process_s']:.1f} s | {r['cluster_s']:.1f} s | {100 * r['overhead']:+.1f} % "
            f"| <= +15 % | {r['identical']} |"
        )
    if topk is not None:
        d = args.topk_variables
        print(
            f"\n| mi_topk(k=10), 1,024 x {d:,}, Gaussian copula | {topk['seconds']:.1f} s | peak "
            f"{topk['peak_bytes'] / 2**30:.2f} GiB (target <= 1 GB; input {topk['input_bytes'] / 2**30:.2f} GiB, "
            f"dense float32 result {4 * d * d / 2**30:.1f} GiB) | partners found: {topk['partners_found']} |"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": rows, "topk": topk}, fh, indent=1)


def accumulation(args: argparse.Namespace) -> dict:
    import pairmi

    edges = pairmi.fit_edges(chunk(0, min(CHUNK, args.tokens)), bins=BINS)
    one, dist, t_one, t_dist = median_alternating(
        lambda: stream_one(args.tokens, edges), lambda: stream_cluster(args.tokens, edges), args.runs
    )
    same = np.array_equal(stream_one(args.tokens, edges).result(), stream_cluster(args.tokens, edges).result())
    return {
        "what": f"{args.tokens:,} x {D} binned accumulation",
        "one_process_s": one,
        "cluster_s": dist,
        "overhead": dist / one - 1,
        "identical": same,
        "runs_one": t_one,
        "runs_cluster": t_dist,
    }


def ksg_tiles(args: argparse.Namespace) -> dict:
    import dask.array as da

    import pairmi
    import pairmi.dask

    X = np.random.default_rng(1).standard_normal((args.ksg_samples, D), dtype=np.float32)
    Xd = da.from_array(X, chunks=(args.ksg_samples, 128))
    one, dist, t_one, t_dist = median_alternating(
        lambda: pairmi.mi_matrix(X, estimator="ksg", threads=2),
        lambda: pairmi.dask.mi_tiles(Xd, estimator="ksg", threads=1, dtype=np.float64),
        args.runs,
    )
    a = pairmi.mi_matrix(X, estimator="ksg", threads=2)
    b = pairmi.dask.mi_tiles(Xd, estimator="ksg", threads=1, dtype=np.float64)
    finite = np.isfinite(a)
    return {
        "what": f"KSG pair tiles, {args.ksg_samples:,} x {D}",
        "one_process_s": one,
        "cluster_s": dist,
        "overhead": dist / one - 1,
        "identical": float(np.abs(a[finite] - b[finite]).max()),
        "runs_one": t_one,
        "runs_cluster": t_dist,
    }


def measure_topk(args: argparse.Namespace) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", TOPK_SCRIPT, "1024", str(args.topk_variables)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": "2"},
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
