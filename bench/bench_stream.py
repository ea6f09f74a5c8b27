"""Streaming MI: accumulation against the in-memory kernel, a million tokens, and a real corpus.

    python bench/bench_stream.py [--runs 5] [--threads 2] [--million 1000000] [--corpus-tokens 100000]

1. Rate: one layer of D = 768 float32 Student-t units, 15 equal-width bins, N = 8 chunks of 4,096
   tokens: ``Accumulator.update`` chunk by chunk (then ``result``) against ``mi_matrix`` on the same
   N x 768 matrix with the same edges (the in-memory kernel), alternating, median of --runs. The
   accumulator's totals are allocated and touched before each timed run, as a stream does once.
2. Size: --million tokens x 768 streamed in chunks of 4,096 (eight distinct chunks cycled, so data
   generation is not timed) in a fresh process: wall time, and peak resident memory (Linux VmHWM)
   against the counts + two chunks + 200 MB.
3. End to end: all-MiniLM-L6-v2 (bundled) over --corpus-tokens tokens of Python's docstrings,
   equal-width bins: time in the model's forward passes against time in MI accumulation, and the
   plug-in bias at that size against the 110-token paragraph's. --corpus-tokens 0 skips it.
4. The copula's fixed normal-score map (calibration quantiles, interpolated) against exact ranks:
   MiniLM over --copula-tokens tokens of the same corpus, streamed against in memory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

import pairmi

D, BINS, CHUNK = 768, 15, 4096

SIZE_SCRIPT = """
import json, sys, time, numpy as np, pairmi
tokens, d, chunk, bins, threads = map(int, sys.argv[1:6])
rng = np.random.default_rng(0)
pool = [rng.standard_t(3, size=(chunk, d)).astype(np.float32) for _ in range(8)]
acc = pairmi.Accumulator("equal_width", edges=pairmi.fit_edges(pool[0], bins=bins), threads=threads)
def rss(key):
    return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith(key + ":"))
before = rss("VmRSS")
open("/proc/self/clear_refs", "w").write("5")
t0 = time.perf_counter()
done = 0
while done < tokens:
    part = pool[(done // chunk) % 8][: tokens - done]
    acc.update(part)
    done += len(part)
mi = acc.result()
seconds = time.perf_counter() - t0
counts = sum(v.nbytes for v in acc._totals.values())
print(json.dumps({"seconds": seconds, "peak": rss("VmHWM") - before, "counts": counts, "chunk": pool[0].nbytes,
                  "n": acc.n_samples}))
"""


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def rate(runs: int, threads: int) -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_t(3, size=(8 * CHUNK, D)).astype(np.float32)
    edges = pairmi.fit_edges(X[:CHUNK], bins=BINS)

    accumulators = []

    def fresh() -> None:  # untimed: a stream allocates its totals once, at its first chunk
        acc = pairmi.Accumulator(edges=edges, threads=threads).update(X[:1])
        for total in acc._totals.values():
            total.fill(0)  # touched, so the timed run pays no page faults; and emptied
        acc.n_samples = 0
        accumulators[:] = [acc]

    def stream() -> None:
        acc = accumulators[0]
        for k in range(8):
            acc.update(X[k * CHUNK : (k + 1) * CHUNK])
        acc.result()

    def memory() -> None:
        pairmi.mi_matrix(X, edges=edges, threads=threads)

    fresh(), stream(), memory()  # first calls: thread pools, code and data in caches
    times: dict[str, list[float]] = {"stream": [], "memory": []}
    for _ in range(runs):
        fresh()
        times["stream"].append(timed(stream))
        times["memory"].append(timed(memory))
    increments = D * (D - 1) / 2 * X.shape[0]
    ratios = [s / m for s, m in zip(times["stream"], times["memory"])]
    print(f"\n## 1. Accumulation rate, 1 x {X.shape[0]:,} x {D} float32, {BINS} bins, chunks of {CHUNK:,}\n")
    print("| what | median | increments/s | runs (s) |")
    print("| --- | --- | --- | --- |")
    for name, what in (("stream", "`Accumulator.update` x 8, `result()`"), ("memory", "`mi_matrix(X, edges=E)`")):
        med = float(np.median(times[name]))
        print(f"| {what} | {med:.3f} s | {increments / med:.3g} | " + ", ".join(f"{t:.3f}" for t in times[name]) + " |")
    print(
        f"| **streamed / in memory** (target <= 1.3) | **{float(np.median(ratios)):.2f}x** | | "
        + ", ".join(f"{r:.2f}" for r in ratios)
        + " |"
    )


def size(tokens: int, threads: int) -> None:
    if not os.path.exists("/proc/self/clear_refs"):
        print("\n## 2. skipped: needs Linux's /proc/self/clear_refs")
        return
    run = subprocess.run(
        [sys.executable, "-c", SIZE_SCRIPT, str(tokens), str(D), str(CHUNK), str(BINS), str(threads)],
        capture_output=True,
        text=True,
        check=True,
    )
    m = json.loads(run.stdout)
    allowed = m["counts"] + 2 * m["chunk"] + 200 * 2**20
    print(f"\n## 2. {m['n']:,} tokens x {D}, one layer, equal-width, chunks of {CHUNK:,} (fresh process)\n")
    print("| what | measured | target |")
    print("| --- | --- | --- |")
    print(f"| wall time, updates and result | {m['seconds']:.1f} s | <= 90 s |")
    print(
        f"| peak memory of the run | {m['peak'] / 2**20:,.0f} MiB | <= counts {m['counts'] / 2**20:,.0f} MiB + two "
        f"chunks {2 * m['chunk'] / 2**20:,.0f} MiB + 200 MiB = {allowed / 2**20:,.0f} MiB |"
    )


def corpus(tokens: int, threads: int) -> None:
    from pairmi.corpus import analyze_corpus, python_docstrings

    run = analyze_corpus(
        "minilm",
        python_docstrings(),
        estimator="equal_width",
        bins=BINS,
        max_tokens=tokens,
        batch_size=16,
        calibration_tokens=10_000,
        threads=threads,
    )
    iu = np.triu_indices(run.analysis.mi.shape[-1], k=1)
    mi = run.analysis.mi[(slice(None), *iu)]
    bias = run.analysis.extra["bias"][(slice(None), *iu)]
    print(
        f"\n## 3. all-MiniLM-L6-v2 over {run.tokens:,} tokens of Python's docstrings, 7 layers x 384 units, "
        f"equal-width, {BINS} bins\n"
    )
    print("| what | measured |")
    print("| --- | --- |")
    print(f"| model forward passes (tokenizing included) | {run.seconds_model:.1f} s |")
    print(f"| MI accumulation (binning, counting, result) | {run.seconds_mi:.1f} s |")
    print(f"| **MI / model** (target <= 1) | **{run.seconds_mi / run.seconds_model:.2f}** |")
    print(f"| binned MI, mean over layers and pairs | {mi.mean():.3f} bits |")
    print(f"| plug-in bias under independence, first order (the null) | {bias.mean():.4f} bits |")
    print("| layer means (bits) | " + ", ".join(f"{m[iu].mean():.3f}" for m in run.analysis.mi) + " |")


def copula_map(tokens: int, threads: int) -> None:
    """The streamed copula's fixed normal-score map against exact ranks, on the same tokens."""
    from pairmi.corpus import python_docstrings
    from pairmi.extract import iter_hidden_states

    batches = iter_hidden_states("minilm", python_docstrings(), batch_size=16, max_tokens=tokens)
    H = np.concatenate([b.values for b in batches], axis=1)
    exact = pairmi.mi_layers(H, estimator="gaussian_copula", threads=threads, dtype=np.float64)
    iu = np.triu_indices(H.shape[2], k=1)
    print(
        f"\n## 4. Gaussian copula: fixed normal-score map against exact ranks, MiniLM, {H.shape[1]:,} tokens, "
        f"{H.shape[0]} layers x {H.shape[2]} units (bits)\n"
    )
    print("| calibration tokens, knots | mean abs difference | 99.9th percentile | max | mean exact MI |")
    print("| --- | --- | --- | --- | --- |")
    for calibration, knots in ((1_000, 1_000), (10_000, 1_000), (10_000, 10_000)):
        edges = pairmi.fit_edges(H[:, :calibration], "gaussian_copula", bins=knots)
        acc = pairmi.Accumulator("gaussian_copula", edges=edges, threads=threads)
        for start in range(0, H.shape[1], CHUNK):
            acc.update(H[:, start : start + CHUNK])
        diff = np.abs(acc.result()[(slice(None), *iu)] - exact[(slice(None), *iu)])  # off the +inf diagonal
        print(
            f"| {calibration:,}, {knots:,} | {diff.mean():.2e} | {np.quantile(diff, 0.999):.2e} | {diff.max():.2e} | "
            f"{exact[(slice(None), *iu)].mean():.4f} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="alternating runs of part 1 (0 skips it)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--million", type=int, default=1_000_000, help="tokens of part 2 (0 skips it)")
    ap.add_argument("--corpus-tokens", type=int, default=100_000, help="tokens of part 3 (0 skips it)")
    ap.add_argument("--copula-tokens", type=int, default=50_000, help="tokens of part 4 (0 skips it)")
    args = ap.parse_args()
    print(f"# Streaming MI, {platform.machine()}, {os.cpu_count()} CPUs, threads={args.threads}, pairmi {pairmi.__version__}")
    if args.runs:
        rate(args.runs, args.threads)
    if args.million:
        size(args.million, args.threads)
    if args.corpus_tokens:
        corpus(args.corpus_tokens, args.threads)
    if args.copula_tokens:
        copula_map(args.copula_tokens, args.threads)


if __name__ == "__main__":
    main()
