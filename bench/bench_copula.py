"""The Gaussian copula at width: pairmi against its own bare matrix products, time and memory.

    python bench/bench_copula.py [--layers 12] [--tokens 90] [--dims 3072] [--runs 5] [--threads 2]

Workload: GPT-2 small's MLP neurons in shape (12 layers x 90 tokens x 3,072 units), float32
Student-t draws (3 d.o.f.), float32 result. Reference, in the same process: the normal scores of
every layer (computed once, outside the timing) multiplied as ``z.T @ z`` in float64, one product
per layer -- the matrix work the estimator cannot avoid. The two are timed alternately, --runs
times each, and the median ratio is the figure of merit (target: at most 2). Peak memory: one
``mi_layers`` call in a fresh process, its peak resident set (Linux VmHWM, reset before the call)
minus the resident set before it, against the result's size and the normal scores' (target: at
most the result + 20 % + the normal scores), and against pairmi's own memory estimate.
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
from pairmi.copula import normal_scores

PEAK_SCRIPT = """
import json, sys, numpy as np, pairmi
from pairmi import _memory
from pairmi.settings import GaussianCopula, Settings
L, n, d, threads = map(int, sys.argv[1:5])
H = np.random.default_rng(0).standard_t(3, size=(L, n, d)).astype(np.float32)
pairmi.mi_layers(H[:1, :, :1024], estimator="gaussian_copula", threads=threads)  # load BLAS and its buffers
s = Settings.resolve(n, GaussianCopula(), threads=threads, dtype=np.float32)
estimate = _memory.bytes_needed(H, None, s, (L, d, d))
def rss(key):
    return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith(key + ":"))
before = rss("VmRSS")
open("/proc/self/clear_refs", "w").write("5")
mi = pairmi.mi_layers(H, estimator="gaussian_copula", threads=threads, dtype=np.float32)
print(json.dumps({"peak": rss("VmHWM") - before, "estimate": estimate, "result": mi.nbytes}))
"""


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--tokens", type=int, default=90)
    ap.add_argument("--dims", type=int, default=3072)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    L, n, d = args.layers, args.tokens, args.dims
    H = np.random.default_rng(0).standard_t(3, size=(L, n, d)).astype(np.float32)
    scores = [normal_scores(H[l].T) for l in range(L)]  # (units, tokens)

    def bare() -> None:
        for z in scores:
            z @ z.T

    out = np.empty((L, d, d), dtype=np.float32)

    def reused() -> None:
        pairmi.mi_layers(H, estimator="gaussian_copula", threads=args.threads, out=out)

    def fresh() -> None:
        pairmi.mi_layers(H, estimator="gaussian_copula", threads=args.threads, dtype=np.float32)

    reused()  # first calls: page faults of out, BLAS start-up
    bare()
    cases = {"fresh": fresh, "reused": reused, "bare": bare}
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(args.runs):
        for name, fn in cases.items():
            times[name].append(timed(fn))
    med = {k: float(np.median(v)) for k, v in times.items()}
    print(
        f"# Gaussian copula, {L} x {n} x {d:,}, float32 result; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, threads={args.threads}, median of {args.runs} alternating runs"
    )
    print("| what | median | runs |")
    print("| --- | --- | --- |")
    rows = {
        "reused": "`mi_layers(H, estimator='gaussian_copula', out=out)`, out reused",
        "fresh": "`mi_layers(H, estimator='gaussian_copula')`, a new result each call",
        "bare": f"bare float64 products `z @ z.T` of the normal scores, {L} layers",
    }
    for name, what in rows.items():
        print(f"| {what} | {med[name]:.3f} s | " + ", ".join(f"{t:.3f}" for t in times[name]) + " |")
    for name in ("reused", "fresh"):
        ratios = [c / b for c, b in zip(times[name], times["bare"])]
        print(
            f"| **ratio {name} / bare** (target <= 2) | **{float(np.median(ratios)):.2f}x** | "
            + ", ".join(f"{r:.2f}" for r in ratios)
            + " |"
        )

    if not os.path.exists("/proc/self/clear_refs"):
        print("peak memory: needs Linux's /proc/self/clear_refs; skipped")
        return
    run = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, str(L), str(n), str(d), str(args.threads)], capture_output=True, text=True, check=True
    )
    m = json.loads(run.stdout)
    score_bytes = L * n * d * 8
    allowed = 1.2 * m["result"] + score_bytes
    print(
        f"| peak memory of the call | {m['peak'] / 2**20:,.0f} MiB | result {m['result'] / 2**20:,.0f} MiB, "
        f"normal scores {score_bytes / 2**20:,.0f} MiB, allowed {allowed / 2**20:,.0f} MiB, "
        f"pairmi's estimate {m['estimate'] / 2**20:,.0f} MiB |"
    )


if __name__ == "__main__":
    main()
