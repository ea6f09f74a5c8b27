"""Permutation tests: one shared null against per-pair permutations, at 999 permutations.

    python bench/bench_nulls.py [--tokens 90] [--dims 768] [--permutations 999] [--runs 3]

One layer of float32 Student-t units (no ties), equal-frequency bins (15) and the Gaussian copula:
``mi_test(..., null='shuffle')`` (every pair permuted: one pass over all pairs per permutation)
against ``mi_test(..., null='shared')`` (one null of --permutations independent pairs for all),
alternating, median of --runs; and how far their p-values are apart.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

import pairmi


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokens", type=int, default=90)
    ap.add_argument("--dims", type=int, default=768)
    ap.add_argument("--permutations", type=int, default=999)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    X = np.random.default_rng(0).standard_t(3, size=(args.tokens, args.dims)).astype(np.float32)
    print(
        f"# mi_test, {args.tokens} x {args.dims} Student-t, {args.permutations} permutations; "
        f"{platform.machine()}, {os.cpu_count()} CPUs, threads={args.threads}, median of {args.runs}\n"
    )
    print("| estimator | per-pair shuffles | shared null | speed-up | max abs p difference |")
    print("| --- | --- | --- | --- | --- |")
    for estimator in ("equal_frequency", "gaussian_copula"):
        times: dict[str, list[float]] = {"shuffle": [], "shared": []}
        results = {}
        for _ in range(args.runs):
            for null in times:
                t0 = time.perf_counter()
                results[null] = pairmi.mi_test(
                    X, estimator=estimator, null=null, n_permutations=args.permutations, threads=args.threads
                )
                times[null].append(time.perf_counter() - t0)
        iu = np.triu_indices(args.dims, k=1)
        diff = np.abs(results["shuffle"].p_value[iu] - results["shared"].p_value[iu]).max()
        slow, fast = np.median(times["shuffle"]), np.median(times["shared"])
        print(f"| {estimator} | {slow:.2f} s | {fast:.3f} s | {slow / fast:,.0f}x | {diff:.3f} |")


if __name__ == "__main__":
    main()
