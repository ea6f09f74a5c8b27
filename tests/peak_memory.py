"""Run one pairmi call in this (fresh) process and print its memory estimate and its measured peak.

Usage: python peak_memory.py CASE. Prints "estimate measured" in bytes: the estimate the memory
guard uses, and the growth of the peak resident set (VmHWM, reset just before the call) over the
resident set before it. Run by test_hardening.py in a subprocess, one case each.
"""

from __future__ import annotations

import sys

import numpy as np

import pairmi
from pairmi import _memory
from pairmi.settings import Settings, as_estimator

THREADS = 2


def status(key: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def data(layers: int, n: int, d: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((layers, n, d), dtype=np.float32)


def settings(x: np.ndarray, estimator: str = "equal_width", correction: str | None = None, **kw) -> Settings:
    return Settings.resolve(x.shape[1], as_estimator(estimator, correction=correction), **{"threads": THREADS, **kw})


def case(name: str):
    """(call, estimate) of one case; call runs the measured work."""
    if name == "binned":
        H = data(6, 90, 2000)
        return H, lambda: pairmi.mi_layers(H, threads=THREADS), _memory.bytes_needed(H, None, settings(H), (6, 2000, 2000))
    if name == "shuffle":
        X = data(1, 90, 2000)
        s = settings(X, correction="shuffle", n_permutations=4, dtype=np.float64)
        call = lambda: pairmi.mi_matrix(X[0], correction="shuffle", n_permutations=4, threads=THREADS)  # noqa: E731
        return X, call, _memory.bytes_needed(X, None, s, (1, 2000, 2000))
    if name == "mi_test":
        X = data(1, 90, 2000)
        call = lambda: pairmi.mi_test(X[0], n_permutations=4, threads=THREADS)  # noqa: E731
        return X, call, _memory.test_bytes((1, 2000, 2000), X.size, n_permutations=4)
    if name == "copula":
        H = data(12, 90, 2000)
        s = settings(H, estimator="gaussian_copula")
        call = lambda: pairmi.mi_layers(H, estimator="gaussian_copula", threads=THREADS)  # noqa: E731
        return H, call, _memory.bytes_needed(H, None, s, (12, 2000, 2000))
    if name == "ksg":
        H = data(1, 3000, 120)
        s = settings(H, estimator="ksg")
        call = lambda: pairmi.mi_layers(H, estimator="ksg", threads=THREADS)  # noqa: E731
        return H, call, _memory.bytes_needed(H, None, s, (1, 120, 120))
    raise SystemExit(f"unknown case {name!r}")


def main() -> None:
    data_, call, estimate = case(sys.argv[1])
    # Start the thread pool; for the copula let BLAS allocate its buffers (once per process, not
    # per call). Small calls otherwise: memory freed here would be reused unseen by the call.
    pairmi.mi_layers(data_[:1, :, :8].copy(), threads=THREADS)
    if sys.argv[1] == "copula":
        pairmi.mi_layers(data_[:1].copy(), estimator="gaussian_copula", threads=THREADS)
    before = status("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset the peak resident set to the current one
    result = call()
    peak = status("VmHWM")
    del result
    print(estimate, peak - before)


if __name__ == "__main__":
    main()
