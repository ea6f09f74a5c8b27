"""Independent numpy references: the course's formulas written plainly, one pair at a time."""

from __future__ import annotations

import numpy as np


def entropy(p: np.ndarray, log=np.log2) -> float:
    """Plug-in entropy of the probabilities p over their nonzero cells."""
    p = p[p > 0]
    return float(-np.sum(p * log(p)))


def mi_from_counts(counts: np.ndarray, units: str = "bits") -> float:
    """MI = Hx + Hy - Hxy of a 2-D count table, probabilities = counts / total."""
    log = np.log2 if units == "bits" else np.log
    p = counts / counts.sum()
    return entropy(p.sum(axis=1), log) + entropy(p.sum(axis=0), log) - entropy(p, log)


def edges(x: np.ndarray, estimator: str, bins: int):
    """What np.histogram2d is given for one variable."""
    if estimator == "equal_width":
        return bins
    return np.percentile(x, np.linspace(0, 100, bins + 1))


def mi_pair(x, y, estimator="equal_width", bins=15, units="bits") -> float:
    """The course's mutInfo_manual (equal-width) or its percentile-edges variant (equal-frequency)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    counts = np.histogram2d(x, y, bins=[edges(x, estimator, bins), edges(y, estimator, bins)])[0]
    return mi_from_counts(counts, units)


def mi_matrix(X, Y=None, estimator="equal_width", bins=15, units="bits") -> np.ndarray:
    """All pairs by the per-pair reference (slow: for small shapes)."""
    Y = X if Y is None else Y
    return np.array(
        [[mi_pair(X[:, i], Y[:, j], estimator, bins, units) for j in range(Y.shape[1])] for i in range(X.shape[1])]
    ).reshape(X.shape[1], Y.shape[1])
