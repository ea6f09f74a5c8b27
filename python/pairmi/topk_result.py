"""The result of :func:`pairmi.topk_stream`: each unit's partners, their exact MI, null and
q-values, and what the screen left out."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._files import atomic_file


@dataclass(frozen=True)
class StreamTopK:
    """Result of :func:`topk_stream`: each unit's strongest partners by exact binned MI.

    Attributes
    ----------
    indices : ndarray of int64, shape (d, k)
        Each unit's partners, strongest first (equal MI: lower index first); -1 where a unit has
        fewer than k counted partners (degenerate units have none).
    mi, null, q : ndarray of float64, shape (d, k)
        Their exact MI over all samples (``units``), its first-order value under independence
        ((m_i - 1)(m_j - 1) / 2n nats, m non-empty bins), and the Benjamini-Hochberg q-value of
        the G-test among all pairs of non-degenerate units (within layers, without
        ``across_layers``; pairs that were not counted count as p = 1). Tokens of a text are not
        independent samples: these q-values are too small where the stream's order matters. NaN where indices is -1.
    screen : ndarray of float64, shape (d, k)
        The partners' screen scores (bits, the Gaussian MI of the strongest of the four
        correlations of z and |z|).
    counted : ndarray of int64, shape (d,)
        Partners of each unit whose MI was counted exactly; the other d - 1 - counted were screened out.
    dropped, dropped_screen : ndarray, shape (d,)
        Each unit's best-screened partner that was not counted (-1: none) and its screen score.
    margin : ndarray of float64, shape (d,)
        ``mi[:, -1] - null[:, -1] - dropped_screen``: how far the weakest partner kept (its exact
        MI above independence) lies above the best partner screened out (its screen score).
        Negative or near 0: the cut ran close; count more ``candidates``. NaN for a unit with
        fewer than k partners counted.
    degenerate : ndarray of bool, shape (d,)
        Constant or near-constant units (in the calibration sample), left out.
    pairs : ndarray of int64, shape (P, 2)
        Every pair counted exactly (i < j).
    n_samples, units, estimator, bins, edges
        Samples counted, units of the MI, the binned estimator, its bins and edges (d, bins + 1).
    seconds : dict
        Where time went: 'screen' (pass 1), 'select', 'count' (pass 2), 'source' (reading chunks).
    """

    indices: np.ndarray
    mi: np.ndarray
    null: np.ndarray
    q: np.ndarray
    screen: np.ndarray
    counted: np.ndarray
    dropped: np.ndarray
    dropped_screen: np.ndarray
    margin: np.ndarray
    degenerate: np.ndarray
    pairs: np.ndarray
    n_samples: int
    units: str
    estimator: str
    bins: int
    edges: np.ndarray
    seconds: dict[str, float]

    def __repr__(self) -> str:
        d, k = self.indices.shape
        return (
            f"StreamTopK({d:,} units x {k} partners, {len(self.pairs):,} pairs counted exactly over "
            f"{self.n_samples:,} samples, estimator={self.estimator!r}, units={self.units!r})"
        )

    def table(self) -> dict[str, np.ndarray]:
        """One row per unit and partner (unit, partner, rank, mi, null, q, screen), partners that exist."""
        d, k = self.indices.shape
        has = self.indices >= 0
        unit = np.repeat(np.arange(d), k).reshape(d, k)
        rank = np.tile(np.arange(1, k + 1), (d, 1))
        return {
            "unit": unit[has],
            "partner": self.indices[has],
            "rank": rank[has],
            "mi": self.mi[has],
            "null": self.null[has],
            "q": self.q[has],
            "screen": self.screen[has],
        }

    def save(self, path: str | os.PathLike, extra: dict[str, Any] | None = None) -> None:
        """Every array and the settings (with ``extra``, JSON) as one .npz (``header``: JSON),
        whole or not at all."""
        header = {"n_samples": self.n_samples, "units": self.units, "estimator": self.estimator, "bins": self.bins}
        header.update(extra or {})
        arrays: dict[str, Any] = {k: v for k, v in self.__dict__.items() if isinstance(v, np.ndarray)}
        with atomic_file(path) as fh:
            np.savez_compressed(fh, header=np.array(json.dumps({**header, "seconds": self.seconds})), **arrays)
