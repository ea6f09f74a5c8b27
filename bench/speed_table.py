"""README's speed table: pairmi against its references, measured in one run, written as markdown and JSON.

    python bench/speed_table.py [--runs 5] [--threads 2] [--json docs/speed.json] [--readme README.md]

Data: float32 Student-t (3 d.o.f.), seed 0: 13 layers x 90 tokens x 768 units (GPT-2-sized
hidden states, 294,528 pairs a layer) and one layer of 4,096 x 768. Each row alternates
pairmi and its reference --runs times and reports both medians and their ratio:

* equal-width / equal-frequency bins (15): a per-pair numpy loop (``np.histogram2d``;
  percentile edges), timed on 300 random pairs and extrapolated to all pairs;
* KSG (k = 3): scikit-learn's ``mutual_info_regression``, one call per column on 3 columns,
  extrapolated per pair;
* Gaussian copula: scipy's ``rankdata`` and ``ndtri`` with ``np.corrcoef`` on the whole layer stack;
* streaming: ``Accumulator.update`` over 8 chunks of 4,096 x 768 against ``mi_matrix`` on the
  32,768 x 768 matrix with the same edges.

The table replaces the lines between ``<!-- speed-table:start -->`` and ``<!-- speed-table:end -->``
of --readme (unless --readme ''). Method and history: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import time

import numpy as np

import pairmi

LAYERS, TOKENS, DIMS, BINS = 13, 90, 768, 15
START, END = "<!-- speed-table:start -->", "<!-- speed-table:end -->"


def histogram2d_mi(x, y, edges=BINS):
    """The per-pair loop body: np.histogram2d, p = counts / total, MI = Hx + Hy - Hxy in bits."""
    counts = np.histogram2d(x, y, edges)[0]
    p = counts / counts.sum()
    px, py = p.sum(axis=1), p.sum(axis=0)
    h = lambda q: -np.sum(q[q > 0] * np.log2(q[q > 0]))  # noqa: E731
    return h(px) + h(py) - h(p)


def per_pair_loop(H, pairs, equal_frequency):
    """Seconds per pair of the per-pair loop on the given (layer, i, j) pairs."""
    t0 = time.perf_counter()
    for l, i, j in pairs:
        x, y = H[l, :, i], H[l, :, j]
        if equal_frequency:
            edges = [np.percentile(v, np.linspace(0, 100, BINS + 1)) for v in (x, y)]
            histogram2d_mi(x, y, edges)
        else:
            histogram2d_mi(x, y)
    return (time.perf_counter() - t0) / len(pairs)


def sklearn_per_pair(H):
    from sklearn.feature_selection import mutual_info_regression

    layer = H[6].astype(np.float64)
    t0 = time.perf_counter()
    for c in range(3):
        mutual_info_regression(np.delete(layer, c, axis=1), layer[:, c], n_neighbors=3, random_state=0)
    return (time.perf_counter() - t0) / (3 * (DIMS - 1))


def scipy_copula(H):
    from scipy.special import ndtri
    from scipy.stats import rankdata

    for layer in H:
        z = ndtri(rankdata(layer, axis=0) / (layer.shape[0] + 1))
        rho = np.corrcoef(z, rowvar=False)
        np.fill_diagonal(rho, 0.0)
        -0.5 * np.log2(1 - rho**2)


def alternate(a, b, runs):
    ta, tb = [], []
    for _ in range(runs):
        for fn, times in ((a, ta), (b, tb)):
            t0 = time.perf_counter()
            out = fn()
            times.append(out if isinstance(out, float) else time.perf_counter() - t0)
    return float(np.median(ta)), float(np.median(tb))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default="docs/speed.json")
    ap.add_argument("--readme", default="README.md")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    H = rng.standard_t(3, size=(LAYERS, TOKENS, DIMS)).astype(np.float32)
    big = rng.standard_t(3, size=(4096, DIMS)).astype(np.float32)
    pairs_all = LAYERS * DIMS * (DIMS - 1) // 2
    sample = [(int(rng.integers(LAYERS)), *map(int, rng.choice(DIMS, 2, replace=False))) for _ in range(300)]
    t = args.threads
    rows = []

    def row(what, reference, mine, ref, note=""):
        rows.append(
            {"what": what, "reference": reference, "pairmi_s": mine, "reference_s": ref, "speedup": ref / mine, "note": note}
        )

    for est, eqf in (("equal_width", False), ("equal_frequency", True)):
        mine, per = alternate(
            lambda e=est: pairmi.mi_layers(H, estimator=e, threads=t), lambda q=eqf: per_pair_loop(H, sample, q), args.runs
        )
        row(f"13 x 90 x 768, {est}", "per-pair np.histogram2d loop, extrapolated", mine, per * pairs_all)
    ksg_runs = max(1, args.runs // 2)  # seconds a run: half as many
    mine, per = alternate(lambda: pairmi.mi_layers(H, estimator="ksg", threads=t), lambda: sklearn_per_pair(H), ksg_runs)
    row(
        f"13 x 90 x 768, ksg (k = 3; {ksg_runs} runs)",
        "scikit-learn mutual_info_regression, extrapolated",
        mine,
        per * pairs_all,
    )
    mine, ref = alternate(lambda: pairmi.mi_layers(H, estimator="gaussian_copula", threads=t), lambda: scipy_copula(H), args.runs)
    row("13 x 90 x 768, gaussian_copula", "scipy rankdata + ndtri + np.corrcoef", mine, ref)
    big_sample = [(0, *map(int, rng.choice(DIMS, 2, replace=False))) for _ in range(100)]
    mine, per = alternate(
        lambda: pairmi.mi_matrix(big, threads=t), lambda: per_pair_loop(big[None], big_sample, False), args.runs
    )
    row("4,096 x 768, equal_width", "per-pair np.histogram2d loop, extrapolated", mine, per * DIMS * (DIMS - 1) // 2)
    chunks = [rng.standard_t(3, size=(4096, DIMS)).astype(np.float32) for _ in range(8)]
    edges = pairmi.fit_edges(chunks[0], bins=BINS)
    whole = np.concatenate(chunks)

    def streamed():
        acc = pairmi.Accumulator(edges=edges, threads=t)
        for c in chunks:
            acc.update(c)
        acc.result()

    mine, ref = alternate(streamed, lambda: pairmi.mi_matrix(whole, edges=edges, threads=t), args.runs)
    row("32,768 x 768 streamed in 8 chunks", "mi_matrix in memory, same edges", mine, ref, "a ratio near 1 is the target")
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, threads={t}"
    lines = [
        f"Measured by `python bench/speed_table.py` (pairmi {pairmi.__version__}, {machine}, median of "
        f"{args.runs} alternating runs, {time.strftime('%Y-%m-%d')}):",
        "",
        "| workload | pairmi | reference | reference time | speed-up |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['what']} | {r['pairmi_s']:.3g} s | {r['reference']} | {r['reference_s']:.3g} s | {r['speedup']:,.0f}x |"
            if r["speedup"] >= 10
            else f"| {r['what']} | {r['pairmi_s']:.3g} s | {r['reference']} | {r['reference_s']:.3g} s | {r['speedup']:.2f}x |"
        )
    table = "\n".join(lines)
    print(table)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": machine, "runs": args.runs, "pairmi_version": pairmi.__version__, "rows": rows}, fh, indent=1)
    if args.readme:
        with open(args.readme) as fh:
            text = fh.read()
        if START not in text or END not in text:
            raise SystemExit(f"{args.readme} has no {START} ... {END} block")
        text = re.sub(re.escape(START) + ".*?" + re.escape(END), START + "\n" + table + "\n" + END, text, flags=re.S)
        with open(args.readme, "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
