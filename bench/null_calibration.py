"""Which null is calibrated for which data: false-positive rates of every null, and the tail
p-values' calibration and power, on data where every pair's truth is known.

    python bench/null_calibration.py [--replicates 100] [--units 16] [--estimator gaussian_copula]
                                     [--power-units 768] [--threads 2]

Part 1, all pairs independent (beyond position), alpha = 0.05: the share of pairs with
p <= 0.05, permutation p-values and tail p-values (MITest.p_tail), for each null and setting:

* independent draws (every token independent);
* AR(1), phi = 0.9 (neighbouring tokens alike; 30 segments of 128);
* windows of 128 tokens, each unit with its own positional profile repeated in every window;
* a first-token offset per unit (position 0 of every window shifted by a per-unit constant).

Each replicate draws new data (30 windows of 128 tokens, --units units) and tests all pairs with
29 permutations (the 29 shifts of 30 windows). The table also gives the share of tail p-values at
or below 0.01 and 0.001 and a Kolmogorov-Smirnov p-value of their uniformity (pooled over
replicates; pairs of one replicate are not independent, so read it as a guide).

Part 2, power and false discoveries at scale: --power-units units (768: a GPT-2 layer), 2,000
independent tokens, groups of 39 units sharing a weak factor (so about 5 % of all pairs are
dependent), 49 shuffles: how many pairs BH at 5 % finds by the permutation and by the tail
p-values, the share of dependent pairs found, the observed false discovery proportion, the
smallest p-value, and the share of the 280,000 independent pairs at p <= 1e-3 and 1e-4 (the tail
p-values' calibration far out).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

import pairmi

WINDOWS, LENGTH = 30, 128


def data(setting: str, rng: np.random.Generator, units: int) -> np.ndarray:
    n = WINDOWS * LENGTH
    if setting == "independent draws":
        return rng.normal(size=(n, units))
    if setting == "AR(1), phi = 0.9":
        e = rng.normal(size=(n, units))
        x = np.empty_like(e)
        x[0] = e[0]
        for t in range(1, n):
            x[t] = 0.9 * x[t - 1] + np.sqrt(1 - 0.81) * e[t]
        return x
    if setting == "positional profile":
        return np.tile(rng.normal(size=(LENGTH, units)), (WINDOWS, 1)) + 0.5 * rng.normal(size=(n, units))
    if setting == "first-token offset":
        x = rng.normal(size=(n, units))
        x[::LENGTH] += 3.0 * rng.normal(size=units)
        return x
    raise ValueError(setting)


SETTINGS = ("independent draws", "AR(1), phi = 0.9", "positional profile", "first-token offset")
NULLS = ("shuffle", "shared", "rotation", "windows")


def part1(args: argparse.Namespace) -> None:
    from scipy import stats as ss

    pairs = args.units * (args.units - 1) // 2
    print(f"## Part 1: false positives at alpha = 0.05 ({args.replicates} replicates x {pairs} pairs)\n")
    print(
        "| data | null | permutation p <= 0.05 | tail p <= 0.05 | tail p <= 0.01 | tail p <= 0.001 | tail p <= 0.0001 "
        "| KS p (tail) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    iu = np.triu_indices(args.units, 1)
    for setting in SETTINGS:
        for null in NULLS:
            perm, tail = [], []
            for r in range(args.replicates):
                rng = np.random.default_rng(10_000 * SETTINGS.index(setting) + r)
                X = data(setting, rng, args.units)
                if null == "shared":
                    X = X + 1e-9 * rng.normal(size=X.shape)  # the shared null needs untied values
                segments = [LENGTH] * WINDOWS if null in ("rotation", "windows") else None
                kw = {"null": null, "segments": segments, "n_permutations": WINDOWS - 1, "seed": r, "threads": args.threads}
                t = pairmi.mi_test(X, estimator=args.estimator, **kw)
                perm.append(t.p_value[iu])
                tail.append(t.p_tail[iu])
            p, q = np.concatenate(perm), np.concatenate(tail)
            ks = ss.kstest(q, "uniform").pvalue
            print(
                f"| {setting} | {null} | {(p <= 0.05).mean():.1%} | {(q <= 0.05).mean():.1%} | {(q <= 0.01).mean():.2%} "
                f"| {(q <= 0.001).mean():.3%} | {(q <= 1e-4).mean():.4%} | {ks:.2g} |"
            )


def part2(args: argparse.Namespace) -> None:
    units, n, size = args.power_units, 2_000, 39
    rng = np.random.default_rng(7)
    groups = np.arange(units) // size
    X = 0.3 * rng.normal(size=(n, groups.max() + 1))[:, groups] + rng.normal(size=(n, units))
    iu = np.triu_indices(units, 1)
    truth = (groups[:, None] == groups[None, :])[iu]
    print(f"\n## Part 2: {units} units, {n:,} tokens, {truth.sum():,} of {truth.size:,} pairs dependent ({truth.mean():.1%})\n")
    print(
        "| estimator | p-values | pairs found (BH 5 %) | dependent found | false discovery proportion | smallest p "
        "| independent pairs at p <= 1e-3 / 1e-4 | seconds |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for estimator in ("gaussian_copula", "equal_frequency"):
        t0 = time.perf_counter()
        t = pairmi.mi_test(X, estimator=estimator, bins=8, n_permutations=49, seed=1, threads=args.threads)
        seconds = time.perf_counter() - t0
        for which in ("permutation", "tail"):
            q = t.q_value(which=which)[iu]
            found = q <= 0.05
            fdp = (found & ~truth).sum() / max(1, found.sum())
            p = (t.p_value if which == "permutation" else t.p_tail)[iu]
            null_p = p[~truth]  # the independent pairs: 0.1 % and 0.01 % of them expected
            tails = f"{(null_p <= 1e-3).mean():.3%} / {(null_p <= 1e-4).mean():.4%}"
            print(
                f"| {estimator} | {which} | {found.sum():,} | {(found & truth).sum() / truth.sum():.1%} | {fdp:.2%} "
                f"| {p.min():.2g} | {tails} | {seconds:.1f} |"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--replicates", type=int, default=100)
    ap.add_argument("--units", type=int, default=16)
    ap.add_argument("--estimator", default="gaussian_copula")
    ap.add_argument("--power-units", type=int, default=768)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    warnings.simplefilter("ignore", pairmi.PermutationFloorWarning)
    print(f"# {args.estimator}, {os.cpu_count()} cores, {args.threads} threads\n")
    part1(args)
    part2(args)


if __name__ == "__main__":
    main()
