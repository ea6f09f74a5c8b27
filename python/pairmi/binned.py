"""Binning of variables into integer codes: equal-width and equal-frequency bins, as numpy defines them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _core

BINNED_ESTIMATORS = ("equal_width", "equal_frequency")


@dataclass(frozen=True)
class Coded:
    """Bin codes of stacked layers of variables, ready for the joint-histogram kernel.

    Attributes
    ----------
    codes : ndarray of uint8, shape (layers, variables, samples)
        Bin index of every sample of every variable.
    entropy : ndarray of float64, shape (layers, variables)
        Plug-in entropy of each variable, in nats.
    bins : int
        Number of bins per variable.
    """

    codes: np.ndarray
    entropy: np.ndarray
    bins: int


def bin_edges(x: np.ndarray, estimator: str, bins: int, threads: int) -> np.ndarray:
    """Bin edges, shape (layers, variables, bins + 1), of each column of x (layers, samples, variables).

    ``equal_width``: ``np.linspace(min, max, bins + 1)``, the edges of ``np.histogram2d(x, y, bins)``
    (a constant column gets numpy's ``[v - 0.5, v + 0.5]``). ``equal_frequency``:
    ``np.percentile(x, np.linspace(0, 100, bins + 1))`` on the float64 values; tied values give
    repeated edges, and the bins between repeated edges stay empty, exactly as np.histogram2d counts.
    """
    if estimator == "equal_width":
        return _core.equal_width_edges(x, bins, threads)
    if estimator == "equal_frequency":
        q = np.linspace(0.0, 100.0, bins + 1)
        edges = np.percentile(x.astype(np.float64, copy=False), q, axis=1)  # (bins + 1, layers, variables)
        return np.ascontiguousarray(np.moveaxis(edges, 0, -1))
    raise ValueError(f"estimator must be one of {BINNED_ESTIMATORS}, got {estimator!r}")


def code_layers(x: np.ndarray, estimator: str, bins: int, threads: int) -> Coded:
    """Bin every variable of x (layers, samples, variables, float32/float64, finite) once."""
    edges = bin_edges(x, estimator, bins, threads)
    codes = _core.bin_codes(x, edges, threads)
    return Coded(codes, _core.entropies(codes, bins, threads), bins)
