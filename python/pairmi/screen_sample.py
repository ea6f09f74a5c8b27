"""The screen's second witness: a uniform sample of the stream's tokens (reservoir sampling) whose
exact binned MI of every pair, at the run's own edges, nominates candidates too.

The correlations of z and |z| (:mod:`pairmi.screen`) rank pairs as Gaussian MI would; the binned
MI of real units (a GELU's flat negative half, heavy tails) often ranks them otherwise. On 64
sampled MiniLM MLP neurons, the true top 16 over 100,000 tokens lay within the correlations' top
64 for 72 % of partners, within the top 64 by binned MI of a 10,000-token sample for 93 %. The
sample's MI is computed block by block (never d x d at once); its cost is d^2 / 2 x the sample.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .api import mi_matrix

# Rows of the sample's MI computed at once: a (rows, d) float64 block near this many bytes.
BLOCK_BYTES = 32 << 20


class TokenSample:
    """A uniform random sample of ``size`` tokens of a stream (Algorithm R, seeded), (size, d) float32."""

    def __init__(self, size: int, seed: int = 0) -> None:
        self.size, self.seen = size, 0
        self.rng = np.random.default_rng(seed)
        self.values: np.ndarray | None = None

    def update(self, chunk: np.ndarray) -> None:
        """Token t of the stream replaces a random slot with probability size / (t + 1)."""
        if self.size == 0:
            return
        if self.values is None:
            self.values = np.zeros((self.size, chunk.shape[1]), dtype=np.float32)
        positions = self.seen + np.arange(len(chunk))
        slots = np.where(positions < self.size, positions, self.rng.integers(0, positions + 1))
        for k in np.flatnonzero(slots < self.size):  # in stream order: a later token wins its slot
            self.values[slots[k]] = chunk[k]
        self.seen += len(chunk)

    def taken(self) -> np.ndarray | None:
        """The sample's tokens (fewer than size while the stream was shorter)."""
        return None if self.values is None else self.values[: min(self.seen, self.size)]

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        header = {"size": self.size, "seen": self.seen, "rng": self.rng.bit_generator.state}
        return header, ({} if self.values is None else {"values": self.values})

    @classmethod
    def from_state(cls, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> TokenSample:
        sample = cls(int(header["size"]))
        sample.seen = int(header["seen"])
        sample.rng.bit_generator.state = header["rng"]
        sample.values = arrays.get("values")
        if sample.seen and (sample.values is None or sample.values.shape[0] != sample.size):
            raise ValueError("its token sample does not match its size")
        return sample


def sample_candidates(
    values: np.ndarray, edges: np.ndarray, estimator: str, m: int, mask: Callable[[slice, np.ndarray], None], threads: Any
) -> np.ndarray:
    """Each unit's ``m`` strongest partners by the binned MI of the sample ``values`` (n, d) at
    ``edges``, as pair keys i * d + j (i < j); ``mask(rows, block)`` sets pairs that may not be
    chosen to -inf."""
    n, d = values.shape
    if n < 2 or m == 0:
        return np.zeros(0, dtype=np.int64)
    step = max(1, BLOCK_BYTES // (8 * d))
    keys = []
    for r0 in range(0, d, step):
        rows = slice(r0, min(d, r0 + step))
        block = np.asarray(
            mi_matrix(values[:, rows], values, estimator=estimator, edges=edges[rows], edges_y=edges, threads=threads),
            dtype=np.float64,
        )
        block[np.arange(block.shape[0]), np.arange(rows.start, rows.stop)] = -np.inf
        mask(rows, block)
        keys.append(best_pair_keys(block, rows, m))
    return np.concatenate(keys)


def best_pair_keys(scores: np.ndarray, rows: slice, m: int) -> np.ndarray:
    """Each row's ``m`` best columns of ``scores`` (rows, d), those not -inf, as pair keys
    i * d + j with i < j (the rows are units ``rows``)."""
    d = scores.shape[1]
    take = min(m, d - 1)
    top = np.argpartition(-scores, take - 1, axis=1)[:, :take]
    i = np.repeat(np.arange(rows.start, rows.stop), take)
    j = top.ravel()
    keep = np.isfinite(scores[i - rows.start, j])
    i, j = i[keep], j[keep]
    return np.minimum(i, j) * d + np.maximum(i, j)
