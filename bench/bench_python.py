"""Time pairmi against a per-pair numpy loop (np.histogram2d), in one run on one machine.

    python bench/bench_python.py [--data student-t|gpt2-random] [--threads N] [--pairs P]

pairmi computes all pairs of a GPT-2-sized stack of hidden states (13 layers x 90 tokens x 768
dims, 15 bins); the per-pair ``np.histogram2d`` loop is timed on P random pairs and extrapolated to all
pairs (said so in the output). Also one layer of a long corpus (4096 tokens x 768 dims, binned;
KSG too with --ksg-corpus-dims 768) and KSG against scikit-learn. Data (--data): Student-t (3 d.o.f.)
float32, heavy-tailed like hidden
states (the default), or the hidden states of GPT-2's architecture with random weights
(``GPT2LMHeadModel(GPT2Config())``, seed 0, 90 random token ids; needs torch and transformers), the
shape of GPT-2's hidden states without a download. The long-corpus case is Student-t either way.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

import pairmi

LAYERS, TOKENS, DIMS, BINS = 13, 90, 768, 15


def mut_info_manual(x, y, bins=BINS):
    """The per-pair loop body: np.histogram2d, p = counts / total, MI = Hx + Hy - Hxy in bits."""
    counts = np.histogram2d(x, y, bins)[0]
    p = counts / np.sum(counts)
    px, py = np.sum(p, axis=1), np.sum(p, axis=0)
    hx = -np.sum(px[px > 0] * np.log2(px[px > 0]))
    hy = -np.sum(py[py > 0] * np.log2(py[py > 0]))
    hxy = -np.sum(p[p > 0] * np.log2(p[p > 0]))
    return hx + hy - hxy


def hidden_states(data: str, rng: np.random.Generator) -> np.ndarray:
    """(LAYERS, TOKENS, DIMS) float32: Student-t draws, or a random-weight GPT-2's hidden states."""
    if data == "student-t":
        return rng.standard_t(3, size=(LAYERS, TOKENS, DIMS)).astype(np.float32)
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config()).eval()
    ids = torch.randint(0, model.config.vocab_size, (TOKENS,)).tolist()
    return pairmi.hidden_states(model, input_ids=ids).values  # the API's token-ids route: no tokenizer needed


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--pairs", type=int, default=300, help="pairs timed with the reference loop")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--corpus-tokens", type=int, default=4096, help="tokens of the one-layer corpus case (0: skip)")
    parser.add_argument(
        "--ksg-corpus-dims",
        type=int,
        default=0,
        help="also KSG on the corpus case's first D dims (768: all; about a minute on 2 cores; 0: skip)",
    )
    parser.add_argument("--ksg-layers", type=int, default=13, help="layers for the KSG benchmark (0: skip)")
    parser.add_argument("--sklearn-columns", type=int, default=2, help="columns timed with mutual_info_regression")
    parser.add_argument(
        "--shuffle-permutations", type=int, default=20, help="permutations of the timed correction='shuffle' runs (0: skip)"
    )
    parser.add_argument(
        "--data", choices=("student-t", "gpt2-random"), default="student-t", help="the 13 x 90 x 768 hidden states (see above)"
    )
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    H = hidden_states(args.data, rng)
    pairs = DIMS * (DIMS - 1) // 2
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus; "
        f"pairmi {pairmi.__version__}, OpenMP {pairmi.has_openmp}, threads={args.threads}"
    )
    print(f"data: {args.data}, {LAYERS} layers x {TOKENS} tokens x {DIMS} dims, {BINS} bins, {pairs:,} pairs per layer")

    for estimator in ("equal_width", "equal_frequency"):
        pairmi.mi_layers(H[:1], estimator=estimator, threads=args.threads)  # warm-up (OpenMP pool)
        t = best_of(lambda: pairmi.mi_layers(H, estimator=estimator, threads=args.threads), args.repeats)
        incs = LAYERS * pairs * TOKENS
        print(
            f"pairmi.mi_layers {estimator:>15}: {t:.3f} s for all pairs of all layers "
            f"({incs / t / 1e9:.2f} G increments/s, best of {args.repeats})"
        )
        if estimator == "equal_width":
            t_pairmi = t

    if args.shuffle_permutations:
        bench_shuffle(H, args.shuffle_permutations, args.threads)
    bench_cross(H, args.threads, args.repeats)

    idx = rng.integers(0, DIMS, size=(args.pairs, 2))
    layer = rng.integers(0, LAYERS, size=args.pairs)
    t0 = time.perf_counter()
    for (i, j), l in zip(idx, layer):
        mut_info_manual(H[l, :, i].astype(np.float64), H[l, :, j].astype(np.float64))
    per_pair = (time.perf_counter() - t0) / args.pairs
    total = per_pair * LAYERS * pairs
    print(
        f"per-pair np.histogram2d loop: {per_pair * 1e6:.0f} us per pair, measured on {args.pairs} random pairs; "
        f"extrapolated to all {LAYERS} x {pairs:,} pairs: {total:.0f} s ({total / 60:.1f} min)"
    )
    print(f"speed-up of pairmi (equal_width) over the per-pair loop: {total / t_pairmi:,.0f}x")

    if args.corpus_tokens:
        bench_corpus(args.corpus_tokens, args.threads, args.repeats, rng, args.ksg_corpus_dims)
    if args.ksg_layers:
        bench_ksg(H[: args.ksg_layers], args.threads, args.sklearn_columns, rng)


def bench_shuffle(H, permutations, threads):
    """The shuffle correction: one kernel pass per permutation, plus shuffling the codes."""
    for estimator in ("equal_width", "equal_frequency"):
        t = best_of(
            lambda: pairmi.mi_layers(H, estimator=estimator, correction="shuffle", n_permutations=permutations, threads=threads),
            1,
        )
        print(f"pairmi.mi_layers {estimator:>15}, correction='shuffle', {permutations} permutations: {t:.2f} s")


def bench_cross(H, threads, repeats):
    """One layer's dims against the next layer's: X against Y, DIMS x DIMS pairs."""
    for estimator in ("equal_width", "equal_frequency"):
        t = best_of(lambda: pairmi.mi_matrix(H[6], H[7], estimator=estimator, threads=threads), repeats)
        print(f"pairmi.mi_matrix(H[6], H[7]) {estimator:>15}: {t * 1e3:.1f} ms for {DIMS} x {DIMS} pairs")


def bench_corpus(tokens, threads, repeats, rng, ksg_dims):
    """Both binned estimators on one layer of a long corpus: tokens x DIMS; KSG on ksg_dims of them."""
    X = rng.standard_t(3, size=(tokens, DIMS)).astype(np.float32)
    incs = DIMS * (DIMS - 1) // 2 * tokens
    for estimator in ("equal_width", "equal_frequency"):
        t = best_of(lambda: pairmi.mi_matrix(X, estimator=estimator, bins=BINS, threads=threads), repeats)
        print(
            f"pairmi.mi_matrix {estimator:>15}: {t:.3f} s for all pairs of one {tokens} x {DIMS} layer "
            f"({incs / t / 1e9:.2f} G increments/s, best of {repeats})"
        )
    if ksg_dims:
        t = best_of(lambda: pairmi.mi_matrix(X[:, :ksg_dims], estimator="ksg", threads=threads), 1)
        pairs = ksg_dims * (ksg_dims - 1) // 2
        print(
            f"pairmi.mi_matrix ksg (k=3): {t:.1f} s for all {pairs:,} pairs of {tokens} tokens x {ksg_dims} dims "
            f"({t / pairs * 1e6:.0f} us per pair, one run)"
        )


def bench_ksg(H, threads, columns, rng):
    """pairmi's all-pairs KSG against a per-column mutual_info_regression loop."""
    from sklearn.feature_selection import mutual_info_regression

    layers, _, dims = H.shape
    pairs = layers * dims * (dims - 1) // 2
    t = best_of(lambda: pairmi.mi_layers(H, estimator="ksg", threads=threads), 1)
    print(f"pairmi.mi_layers ksg (k=3): {t:.2f} s for all pairs of {layers} layer(s) ({t / pairs * 1e6:.2f} us per pair)")
    t0 = time.perf_counter()
    for c in rng.integers(0, dims, size=columns):  # one call per column, against all others
        mutual_info_regression(H[0].astype(np.float64), H[0][:, c].astype(np.float64), n_neighbors=3)
    per_column = (time.perf_counter() - t0) / columns
    per_pair = per_column / dims
    print(
        f"sklearn mutual_info_regression loop: {per_pair * 1e6:.0f} us per pair, measured on {columns} columns x "
        f"{dims} dims; extrapolated to all {pairs:,} pairs: {per_pair * pairs:.0f} s"
    )
    print(f"speed-up of pairmi ksg over the sklearn loop: {per_pair * pairs / t:,.0f}x per distinct pair")
    # A loop as the reference analysis writes it: one call per column of every layer, so every pair twice.
    loop = per_column * dims * layers
    print(
        f"the per-column loop ({layers} x {dims} calls, one per column: each pair twice): {loop:.0f} s, "
        f"{loop / t:,.0f}x pairmi's time"
    )
    t = best_of(lambda: pairmi.mi_layers(H, estimator="gaussian_copula"), 3)
    print(f"pairmi.mi_layers gaussian_copula: {t:.3f} s for all pairs of {layers} layer(s)")


if __name__ == "__main__":
    main()
