"""README's worked example of reading the numbers: observed MI, null, corrected MI and the pairs
significant at a 5 % false discovery rate, for MiniLM on a paragraph and on a corpus.

    python bench/read_numbers.py [--corpus-tokens 100000] [--corpus-units 64]

Equal-frequency bins (15), all-MiniLM-L6-v2 (bundled), rotation nulls within the model's windows
(neighbouring tokens are not independent; rotations keep each unit's own order), FDR by
Benjamini-Hochberg over the pairs of all layers together. The paragraph: the demo's 110 tokens,
all 384 units, 999 rotations. The corpus: --corpus-tokens tokens of Python's docstrings, the first
--corpus-units units (the permutation passes cost tokens x pairs each), 199 rotations.
"""

from __future__ import annotations

import argparse

import numpy as np

import pairmi
from pairmi.cli import DEMO_TEXT
from pairmi.corpus import python_docstrings
from pairmi.extract import iter_hidden_states


def report(name: str, values: np.ndarray, segments: list[int], permutations: int, threads: int) -> None:
    tests = [
        pairmi.mi_test(
            layer,
            estimator="equal_frequency",
            bins=15,
            null="rotation",
            segments=segments,
            n_permutations=permutations,
            seed=0,
            threads=threads,
        )
        for layer in values
    ]
    q = pairmi.fdr_tests(tests)
    iu = np.triu_indices(values.shape[2], k=1)
    print(f"\n{name}: {values.shape[1]:,} tokens, {values.shape[2]} units, {permutations} rotations (bits)\n")
    print("| layer | observed | null (rotations) | corrected | significant at FDR 5 % |")
    print("| --- | --- | --- | --- | --- |")
    for k, (t, qk) in enumerate(zip(tests, q)):
        print(
            f"| L{k} | {t.mi[iu].mean():.3f} | {t.null_mean[iu].mean():.3f} | {t.corrected[iu].mean():.3f} | "
            f"{int((qk[iu] <= 0.05).sum()):,} of {iu[0].size:,} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus-tokens", type=int, default=100_000)
    ap.add_argument("--corpus-units", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    hs = pairmi.hidden_states("minilm", DEMO_TEXT)
    report("paragraph", hs.values, hs.meta["window_tokens"], 999, args.threads)
    batches = list(iter_hidden_states("minilm", python_docstrings(), batch_size=16, max_tokens=args.corpus_tokens))
    values = np.concatenate([b.values[:, :, : args.corpus_units] for b in batches], axis=1)
    windows = [k for b in batches for k in b.window_tokens]
    report("corpus", values, windows, 199, args.threads)


if __name__ == "__main__":
    main()
