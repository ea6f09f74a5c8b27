"""README's worked example of reading the numbers: observed MI, the null, the MI above it, the pairs
dependent at a 5 % false discovery rate and the strongest of them, for MiniLM on a paragraph and
on a corpus.

    python bench/read_numbers.py [--corpus-tokens 100000] [--corpus-units 64] [--shifts 49]

Equal-frequency bins (15), all-MiniLM-L6-v2 (bundled), Benjamini-Hochberg over the pairs of all
layers together, on the tail p-values (``MITest.p_tail``: they go below the permutation floor, so
pairs can be ranked). The paragraph: the demo's 110 tokens, all 384 units, one window, so no null
can keep position apart: rotations (999), each pair moved against itself. The corpus:
--corpus-tokens tokens of Python's docstrings in the model's windows, the first --corpus-units
units, the position-keeping null (whole windows moved against each other, --shifts of them), so
what is counted is dependence beyond position.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

import pairmi
from pairmi.analysis import degenerate_units
from pairmi.cli import DEMO_TEXT
from pairmi.corpus import python_docstrings
from pairmi.extract import iter_hidden_states


def report(name: str, values: np.ndarray, segments: list[int], null: str, permutations: int, threads: int) -> None:
    tests = [
        pairmi.mi_test(
            layer,
            estimator="equal_frequency",
            bins=15,
            null=null,
            segments=segments,
            n_permutations=permutations,
            seed=0,
            threads=threads,
        )
        for layer in values
    ]
    iu = np.triu_indices(values.shape[2], k=1)
    # Dead or near-constant units (MiniLM's last layers: 127, 223, 319) tie most tokens: their MI is
    # noise, not dependence, and they are left out of the counts as the figures leave them out.
    degenerate = degenerate_units(values)
    for t, dead in zip(tests, degenerate):
        t.p_tail[dead, :] = np.nan
        t.p_tail[:, dead] = np.nan
    q = pairmi.fdr_tests(tests, which="tail")
    what = {"rotation": "rotations", "windows": "whole-window shifts (positions kept)"}[null]
    shape = f"{values.shape[1]:,} tokens in {len(segments)} window(s), {values.shape[2]} units"
    print(f"\n{name}: {shape}, {permutations} {what} (bits)\n")
    print(
        "| layer | observed | null | above the null | pairs dependent at FDR 5 % | of them >= 0.05 bits above the null "
        "| strongest pairs (MI above the null, q) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for k, (t, qk) in enumerate(zip(tests, q)):
        above = t.corrected[iu]
        found = qk[iu] <= 0.05
        counted = int(np.isfinite(qk[iu]).sum())
        order = np.argsort(-np.where(found, above, -np.inf))[: min(3, int(found.sum()))]
        best = ", ".join(f"{iu[0][o]}-{iu[1][o]} ({above[o]:.3f}, {qk[iu][o]:.0e})" for o in order) or "none"
        print(
            f"| L{k} | {t.mi[iu].mean():.3f} | {t.null_mean[iu].mean():.3f} | {above.mean():.3f} | "
            f"{int(found.sum()):,} of {counted:,} | {int((found & (above >= 0.05)).sum()):,} | {best} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus-tokens", type=int, default=100_000)
    ap.add_argument("--corpus-units", type=int, default=64)
    ap.add_argument("--shifts", type=int, default=49, help="whole-window shifts of the corpus's null")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    warnings.simplefilter("ignore", pairmi.PermutationFloorWarning)  # the tail p-values are what is counted
    hs = pairmi.hidden_states("minilm", DEMO_TEXT)
    report("paragraph", hs.values, hs.meta["window_tokens"], "rotation", 999, args.threads)
    batches = list(iter_hidden_states("minilm", python_docstrings(), batch_size=16, max_tokens=args.corpus_tokens))
    values = np.concatenate([b.values[:, :, : args.corpus_units] for b in batches], axis=1)
    windows = [k for b in batches for k in b.window_tokens]
    report("corpus", values, windows, "windows", args.shifts, args.threads)


if __name__ == "__main__":
    main()
