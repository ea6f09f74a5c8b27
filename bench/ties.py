"""KSG on tied values: how large a share of ties matters, and the tie-breaking noise's effect.

    python bench/ties.py

1. A Gaussian pair (rho = 0.6, 2,000 samples) rounded ever coarser: each variable's share of tied
   samples, KSG's error against the exact MI, and with ``noise=1e-10``. (pairmi warns above 90 %.)
2. all-MiniLM-L6-v2 (bundled) on the demo paragraph, every pair of every layer: KSG on the float32
   activations, on the same activations stored in float16 (as half-precision checkpoints and
   caches keep them), and on float16 with ``noise=1e-10``.
"""

from __future__ import annotations

import warnings

import numpy as np

import pairmi
from pairmi.cli import DEMO_TEXT
from pairmi.stats import tie_shares


def rounded_pair() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=2000)
    y = 0.6 * x + 0.8 * rng.normal(size=2000)
    truth = pairmi.gaussian_mi(0.6)
    print("## 1. Gaussian pair, rho = 0.6, 2,000 samples, rounded to a step (bits)\n")
    print("| step | tied share | KSG - truth | with noise=1e-10 |")
    print("| --- | --- | --- | --- |")
    for step in (None, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0):
        xy = np.c_[x, y] if step is None else np.round(np.c_[x, y] / step) * step
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            plain = pairmi.mi_matrix(xy, estimator="ksg")[0, 1]
        jittered = pairmi.mi_matrix(xy, estimator="ksg", noise=1e-10)[0, 1]
        share = tie_shares(xy[None]).max()
        print(f"| {step or 'none'} | {share:.1%} | {plain - truth:+.3f} | {jittered - truth:+.3f} |")


def minilm_fp16() -> None:
    hs = pairmi.hidden_states("minilm", DEMO_TEXT)
    h32 = hs.values
    h16 = h32.astype(np.float16)
    iu = np.triu_indices(h32.shape[2], k=1)
    print(f"\n## 2. MiniLM, {h32.shape[1]} tokens, {h32.shape[0]} layers x {h32.shape[2]} units, KSG k = 3 (bits)\n")
    print(
        f"float16 ties: median share of tied samples per unit {np.median(tie_shares(h16.astype(np.float32))):.1%}, "
        f"max {tie_shares(h16.astype(np.float32)).max():.1%}\n"
    )
    print("| activations | mean MI over pairs | mean abs change from float32 | max abs change |")
    print("| --- | --- | --- | --- |")
    base = pairmi.mi_layers(h32, estimator="ksg", dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        half = pairmi.mi_layers(h16, estimator="ksg", dtype=np.float64)
    jit = pairmi.mi_layers(h16, estimator="ksg", dtype=np.float64, noise=1e-10)
    for name, mi in (("float32", base), ("float16", half), ("float16, noise=1e-10", jit)):
        d = np.abs(mi[(slice(None), *iu)] - base[(slice(None), *iu)])
        print(f"| {name} | {mi[(slice(None), *iu)].mean():.4f} | {d.mean():.4f} | {d.max():.3f} |")


if __name__ == "__main__":
    rounded_pair()
    minilm_fp16()
