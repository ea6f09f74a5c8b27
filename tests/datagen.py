"""Test data with the troubles hidden states have: heavy tails, outliers, ties, constant columns."""

from __future__ import annotations

import numpy as np

KINDS = ("normal", "heavy", "outliers", "ties", "constant", "mixed")


def make(kind: str, n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "normal":
        return rng.normal(size=(n, d))
    if kind == "heavy":
        return rng.standard_t(1.5, size=(n, d))
    if kind == "outliers":
        x = rng.normal(size=(n, d))
        x[0] *= 1000.0  # like GPT-2's first token
        x[:, : max(1, d // 4)] *= rng.choice([1.0, 1e4], size=(n, 1), p=[0.95, 0.05])
        return x
    if kind == "ties":
        return np.round(rng.normal(size=(n, d)) * 2) / 2
    if kind == "constant":
        x = rng.normal(size=(n, d))
        x[:, ::2] = 3.25
        return x
    if kind == "mixed":
        z = rng.normal(size=(n, 1))
        return z * rng.uniform(0, 2, size=(1, d)) + rng.normal(size=(n, d))
    raise ValueError(kind)
