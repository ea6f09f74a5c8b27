"""pairmi against pairmi: the speed table's pairmi rows timed in two (or more) installs, alternating.

    python bench/compare_installs.py PYTHON_A PYTHON_B [--runs 5] [--threads 2] [--cases ew,ef,ksg,copula,stream]

Each PYTHON is an interpreter with a pairmi installed (e.g. a venv holding the release before a
refactor, and one holding the refactor). Every run starts one process per install and case, which
times the case once after a warm-up call; the installs alternate within each run, so drifts of the
machine fall on both. Prints the median seconds of each case and install, and the ratio of each
install to the first. Data as bench/speed_table.py: float32 Student-t (3 d.o.f.), seed 0.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

CASES = {
    "ew": "13 x 90 x 768, equal-width (15 bins), mi_layers",
    "ef": "13 x 90 x 768, equal-frequency (15 bins), mi_layers",
    "ksg": "1 x 90 x 768, KSG (k = 3), mi_layers",
    "copula": "13 x 90 x 768, Gaussian copula, mi_layers",
    "stream": "8 chunks of 4,096 x 768 into an Accumulator (equal-width)",
}

CHILD = """
import sys, time, numpy as np, pairmi
case, threads = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
if case == "stream":
    X = rng.standard_t(3, size=(32_768, 768)).astype(np.float32)
    edges = pairmi.fit_edges(X[:4096], threads=threads)
    def run():
        acc = pairmi.Accumulator(edges=edges, threads=threads)
        for c in range(8):
            acc.update(X[c * 4096 : (c + 1) * 4096])
        return acc.result()
else:
    layers = 1 if case == "ksg" else 13
    H = rng.standard_t(3, size=(layers, 90, 768)).astype(np.float32)
    est = {"ew": "equal_width", "ef": "equal_frequency", "ksg": "ksg", "copula": "gaussian_copula"}[case]
    def run():
        return pairmi.mi_layers(H, estimator=est, threads=threads)
run()
t0 = time.perf_counter()
run()
print(time.perf_counter() - t0)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pythons", nargs="+", help="interpreters, each with a pairmi installed")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    args = parser.parse_args()
    cases = args.cases.split(",")
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        parser.error(f"unknown cases {unknown}; choose from {sorted(CASES)}")
    env_threads = {"OMP_NUM_THREADS": str(args.threads)}
    times: dict[tuple[str, str], list[float]] = {}
    for run in range(args.runs):
        for case in cases:
            for py in args.pythons:
                out = subprocess.run(
                    [py, "-c", CHILD, case, str(args.threads)],
                    capture_output=True,
                    text=True,
                    check=True,
                    env={**_env(), **env_threads},
                )
                times.setdefault((case, py), []).append(float(out.stdout.split()[-1]))
        print(f"run {run + 1} of {args.runs} done", file=sys.stderr)
    print(f"| case | {' | '.join(args.pythons)} | ratio to the first |")
    print(f"| --- | {' | '.join('---' for _ in args.pythons)} | --- |")
    for case in cases:
        medians = [statistics.median(times[(case, py)]) for py in args.pythons]
        ratios = ", ".join(f"{m / medians[0]:.3f}" for m in medians[1:])
        print(f"| {CASES[case]} | {' | '.join(f'{m:.4f} s' for m in medians)} | {ratios} |")


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


if __name__ == "__main__":
    main()
