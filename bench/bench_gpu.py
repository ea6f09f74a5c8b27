"""The same workloads on the C++ core and on the torch backend, in one run.

    python bench/bench_gpu.py [--device cuda] [--tiny] [--runs 3] [--threads N] [--json FILE]

Workloads (float32 Student-t, 3 d.o.f.): 13 x 90 x 768 with equal-width bins, KSG (k = 3) and the
Gaussian copula; one layer of 4,096 x 768 with equal-width bins and the copula; 12 x 90 x 3,072
(GPT-2's MLP neurons) with the copula; a permutation test (mi_test, equal-width, 20 shuffles; the
difference column compares p-values) on 4,096 x 768; 1,000,000 x 768 streamed through an Accumulator in chunks of
65,536 (eight distinct chunks cycled; equal-width bins fixed on the first). Torch timings have the
data already on --device (default: CUDA if present, else CPU, where the torch path is a correctness
path, not a fast one) and include a synchronisation. The core runs with --threads (default: every
CPU, up to 16). --tiny shrinks every size (a smoke test that CI runs). Median of --runs (the
core's million-token stream: once).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch

import pairmi

WORKLOADS = [  # (name, layers, tokens, units, estimator)
    ("13 x 90 x 768", 13, 90, 768, "equal_width"),
    ("13 x 90 x 768", 13, 90, 768, "ksg"),
    ("13 x 90 x 768", 13, 90, 768, "gaussian_copula"),
    ("1 x 4,096 x 768", 1, 4096, 768, "equal_width"),
    ("1 x 4,096 x 768", 1, 4096, 768, "gaussian_copula"),
    ("12 x 90 x 3,072", 12, 90, 3072, "gaussian_copula"),
    ("1,000,000 x 768 streamed", 1, 1_000_000, 768, "stream"),
    ("1 x 4,096 x 768, 20 shuffles", 1, 4096, 768, "mi_test"),
]
CHUNK = 65_536


def median_time(fn, runs: int, sync, warm: bool = True) -> float:
    if warm:
        fn()  # warm-up: kernels, allocations
        sync()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def streamed(chunks, tokens: int, edges, **kw):
    """An equal-width Accumulator over `tokens` samples of the cycled chunks; its result."""
    acc = pairmi.Accumulator("equal_width", edges=edges, **kw)
    done, i = 0, 0
    while done < tokens:
        chunk = chunks[i % len(chunks)][: tokens - done]
        acc.update(chunk)
        done += chunk.shape[0]
        i += 1
    return acc.result()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--tiny", action="store_true", help="shrink every workload (smoke test)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=min(16, os.cpu_count() or 1))
    ap.add_argument("--json", help="also write the rows to this file")
    args = ap.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    name = torch.cuda.get_device_name(device) if cuda else f"CPU torch, {os.cpu_count()} CPUs"
    print(
        f"# pairmi {pairmi.__version__}: C++ core ({platform.machine()}, threads={args.threads}) against torch "
        f"{torch.__version__} on {name}, median of {args.runs}{' (tiny sizes)' if args.tiny else ''}\n"
    )
    print("| workload | estimator | C++ core | torch | core / torch | max abs difference (bits) | torch peak memory |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    rng = np.random.default_rng(0)
    rows = []
    for label, layers, tokens, units, estimator in WORKLOADS:
        if args.tiny:
            layers, tokens, units = min(layers, 2), min(tokens, 40 if estimator != "stream" else 2000), min(units, 24)
            label = f"{layers} x {tokens} x {units}" + (" streamed" if estimator == "stream" else "")
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        if estimator == "stream":
            chunk = min(CHUNK, tokens // 4)
            pool = [rng.standard_t(3, size=(chunk, units)).astype(np.float32) for _ in range(8)]
            pool_d = [torch.from_numpy(c).to(device) for c in pool]
            edges = pairmi.fit_edges(pool[0], bins=15)
            core = median_time(lambda: streamed(pool, tokens, edges, threads=args.threads), 1, sync, warm=False)
            gpu = median_time(lambda: streamed(pool_d, tokens, edges, backend="torch"), args.runs, sync)
            a = streamed(pool, tokens, edges, threads=args.threads)
            b = streamed(pool_d, tokens, edges, backend="torch").cpu().numpy()
            estimator = "equal_width"
        elif estimator == "mi_test":
            X = rng.standard_t(3, size=(tokens, units)).astype(np.float32)
            Xd = torch.from_numpy(X).to(device)
            kw = {"n_permutations": 20, "seed": 1}
            core = median_time(lambda: pairmi.mi_test(X, threads=args.threads, **kw), args.runs, sync)
            gpu = median_time(lambda: pairmi.mi_test(Xd, backend="torch", **kw), args.runs, sync)
            a = pairmi.mi_test(X, threads=args.threads, **kw).p_value
            b = pairmi.mi_test(Xd, backend="torch", **kw).p_value.cpu().numpy()
            estimator = "equal_width test"
        else:
            H = rng.standard_t(3, size=(layers, tokens, units)).astype(np.float32)
            Hd = torch.from_numpy(H).to(device)
            core = median_time(lambda: pairmi.mi_layers(H, estimator=estimator, threads=args.threads), args.runs, sync)
            gpu = median_time(lambda: pairmi.mi_layers(Hd, estimator=estimator, backend="torch"), args.runs, sync)
            a = pairmi.mi_layers(H, estimator=estimator, threads=args.threads, dtype=np.float64)
            b = pairmi.mi_layers(Hd, estimator=estimator, backend="torch", dtype=np.float64).cpu().numpy()
        finite = np.isfinite(a)
        diff = float(np.abs(a[finite] - b[finite]).max()) if np.array_equal(finite, np.isfinite(b)) else float("inf")
        peak = torch.cuda.max_memory_allocated(device) / 2**30 if cuda else float("nan")
        rows.append(
            {
                "workload": label,
                "estimator": estimator,
                "core_s": core,
                "torch_s": gpu,
                "max_abs_diff_bits": diff,
                "torch_peak_gib": peak,
                "device": name,
                "threads": args.threads,
            }
        )
        print(
            f"| {label} | {estimator} | {core:.4f} s | {gpu:.4f} s | {core / gpu:.2f}x | {diff:.1e} | "
            + (f"{peak:.2f} GiB |" if cuda else "- |"),
            flush=True,
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
