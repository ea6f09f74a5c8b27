"""The same workloads on the C++ core and on the torch backend, in one run.

    python bench/bench_gpu.py [--device cuda] [--tiny] [--runs 3]

Workloads (float32 Student-t, 3 d.o.f.): 13 x 90 x 768 with equal-width bins, KSG (k = 3) and the
Gaussian copula; one layer of 4,096 x 768 with equal-width bins and the copula; 12 x 90 x 3,072
(GPT-2's MLP neurons) with the copula. Torch timings have the data already on --device (default:
CUDA if present, else CPU, where the torch path is a correctness path, not a fast one) and include
a synchronisation. --tiny shrinks every size (a smoke test that CI runs). Median of --runs.
Streaming 1,000,000 x 768 on the device needs the accumulators on torch: not there yet.
"""

from __future__ import annotations

import argparse
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
]


def median_time(fn, runs: int, sync) -> float:
    fn()  # warm-up: kernels, allocations
    sync()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--tiny", action="store_true", help="shrink every workload (smoke test)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU torch, {os.cpu_count()} CPUs"
    print(f"# pairmi {pairmi.__version__}: C++ core ({platform.machine()}, threads={args.threads}) against torch "
          f"on {name}, median of {args.runs}{' (tiny sizes)' if args.tiny else ''}\n")
    print("| workload | estimator | C++ core | torch | core / torch | max abs difference (bits) |")
    print("| --- | --- | --- | --- | --- | --- |")
    rng = np.random.default_rng(0)
    for label, layers, tokens, units, estimator in WORKLOADS:
        if args.tiny:
            layers, tokens, units = min(layers, 2), min(tokens, 40), min(units, 24)
            label = f"{layers} x {tokens} x {units}"
        H = rng.standard_t(3, size=(layers, tokens, units)).astype(np.float32)
        Hd = torch.from_numpy(H).to(device)
        core = median_time(lambda: pairmi.mi_layers(H, estimator=estimator, threads=args.threads), args.runs, sync)
        gpu = median_time(lambda: pairmi.mi_layers(Hd, estimator=estimator, backend="torch"), args.runs, sync)
        a = pairmi.mi_layers(H, estimator=estimator, threads=args.threads, dtype=np.float64)
        b = pairmi.mi_layers(Hd, estimator=estimator, backend="torch", dtype=np.float64).cpu().numpy()
        finite = np.isfinite(a)
        diff = float(np.abs(a[finite] - b[finite]).max()) if np.array_equal(finite, np.isfinite(b)) else float("inf")
        print(f"| {label} | {estimator} | {core:.4f} s | {gpu:.4f} s | {core / gpu:.2f}x | {diff:.1e} |")


if __name__ == "__main__":
    main()
