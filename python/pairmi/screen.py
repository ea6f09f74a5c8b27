"""A cheap screen of every pair of many units: the sums and cross-products of each unit's normal
scores z and folded scores |z|, which add up over samples in d^2 memory (no bins per pair).

Four correlations per pair, corr(z_i, z_j), corr(z_i, |z_j|), corr(|z_i|, z_j) and
corr(|z_i|, |z_j|), see monotone dependence, an even function of one unit (x^2, |x|) and a shared
magnitude with independent signs (sign flips). A pair's score is the Gaussian MI of the strongest,
-1/2 log2(1 - r^2) bits: not a bound on its binned MI, a ranking of the pairs worth counting.
Dependence that none of the four sees (a periodic function, a checkerboard) can be missed.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from . import _memory
from .copula import fit_knots, knot_scores, mapped_scores, mi_of_correlations

# Screen rows scored at once: four (rows, d) float64 blocks stay near this many bytes.
BLOCK_BYTES = 64 << 20
# Samples multiplied at once: a corpus batch holds a few hundred tokens, and each product of a
# batch with itself is a (2d)^2 array added to the totals; grouping them cuts that traffic. The
# groups depend on the chunks alone (never on when a state is saved), so results do not either.
GROUP_SAMPLES = 4096


class Screen:
    """The screen's sums over the samples added so far (see the module's docstring).

    Parameters
    ----------
    knots : ndarray, shape (d, K)
        Each unit's normal-score map (:func:`pairmi.copula.fit_knots` of a calibration sample).
    """

    def __init__(self, knots: np.ndarray) -> None:
        self.knots = np.ascontiguousarray(knots, dtype=np.float64)
        self.d = self.knots.shape[0]
        self._scores = knot_scores(self.knots[None])[0]
        nbytes = 8 * (2 * self.d) ** 2
        _memory.check_memory(nbytes, f"the screen of {self.d:,} units", None, "screen fewer units")
        self.cross = np.zeros((2 * self.d, 2 * self.d))  # [z, |z|] against itself
        self.sums = np.zeros(2 * self.d)
        self.n_samples = 0
        self._pending: list[np.ndarray] = []  # normal scores (d, n) float32 not yet in the sums

    @classmethod
    def fitted(cls, sample: np.ndarray, knots: int = 200) -> Screen:
        """A screen whose maps are fitted on a calibration sample (n, d), ``knots`` quantiles each."""
        return cls(fit_knots(sample[None], int(min(knots, sample.shape[0])))[0])

    @property
    def nbytes(self) -> int:
        return self.cross.nbytes

    def update(self, chunk: np.ndarray) -> Screen:
        """Add the samples (n, d) of a chunk (finite values). Returns self."""
        z = mapped_scores(np.asarray(chunk, dtype=np.float64).T, self.knots, self._scores).astype(np.float32)
        self._pending.append(z)
        self.n_samples += z.shape[1]
        if sum(p.shape[1] for p in self._pending) >= GROUP_SAMPLES:
            self._flush()
        return self

    def _flush(self) -> None:
        """The pending scores into the sums: float32 products, float64 totals."""
        if not self._pending:
            return
        z = np.concatenate(self._pending, axis=1)
        a = np.concatenate([z, np.abs(z)])
        self.cross += a @ a.T
        self.sums += a.sum(axis=1, dtype=np.float64)
        self._pending = []

    def merge(self, other: Screen) -> Screen:
        if not np.array_equal(self.knots, other.knots):
            raise ValueError("cannot merge screens with different normal-score maps")
        self._flush()
        other._flush()
        self.cross += other.cross
        self.sums += other.sums
        self.n_samples += other.n_samples
        return self

    def scores(self, rows: slice) -> np.ndarray:
        """Screen scores (bits) of units ``rows`` against every unit, (rows, d); the unit itself -inf."""
        self._flush()
        n = float(self.n_samples)
        mean = self.sums / n
        sd = np.sqrt(np.maximum(np.diag(self.cross) / n - mean**2, 0.0))
        d = self.d
        best = np.zeros((rows.stop - rows.start, d))
        for a, b in ((0, 0), (0, d), (d, 0), (d, d)):
            r0, r1 = a + rows.start, a + rows.stop
            cov = self.cross[r0:r1, b : b + d] / n - mean[r0:r1, None] * mean[None, b : b + d]
            denom = sd[r0:r1, None] * sd[None, b : b + d]
            r = np.divide(cov, denom, out=np.zeros_like(cov), where=denom > 0)
            np.maximum(best, np.abs(r), out=best)
        mi = mi_of_correlations(np.minimum(best, 1.0), 1.0 / np.log(2.0))
        mi[np.arange(mi.shape[0]), np.arange(rows.start, rows.stop)] = -np.inf
        return mi

    def row_blocks(self) -> list[slice]:
        step = max(1, BLOCK_BYTES // (4 * 8 * max(self.d, 1)))
        return [slice(r, min(self.d, r + step)) for r in range(0, self.d, step)]

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """What :meth:`from_state` takes back: the sums and the pending scores as they are."""
        pending = np.concatenate(self._pending, axis=1) if self._pending else np.zeros((self.d, 0), np.float32)
        return {"n_samples": self.n_samples}, {"knots": self.knots, "cross": self.cross, "sums": self.sums, "pending": pending}

    @classmethod
    def from_state(cls, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> Screen:
        screen = cls(arrays["knots"])
        if arrays["cross"].shape != screen.cross.shape or arrays["sums"].shape != screen.sums.shape:
            raise ValueError("its screen sums do not match its knots")
        screen.cross[...] = arrays["cross"]
        screen.sums[...] = arrays["sums"]
        screen.n_samples = int(json.loads(json.dumps(header["n_samples"])))
        pending = arrays["pending"]
        if pending.shape[0] != screen.d or pending.dtype != np.float32:
            raise ValueError("its pending screen scores do not match its knots")
        screen._pending = [pending] if pending.shape[1] else []
        return screen
