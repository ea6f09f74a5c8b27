"""The block engine: the MI of any block of rows against any block of columns of one variable set,
prepared once (binned codes, the copula's normal scores, or KSG's values), and what the diagonal
holds. mi_topk, zarr output and Dask tiles compute through it."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import _dispatch
from .binned import Coded, binned_mi, code_layers
from .copula import mi_of_correlations, normal_scores
from .settings import BINNED_ESTIMATORS, KSG, Settings

# Variables ranked at once when the copula's normal scores are prepared (ranking takes ~72 bytes a value).
SCORE_VARIABLES = 1024


def row_source(
    x: np.ndarray, estimator: str, bins: int, scale: float, threads: int, miller_madow: bool = False, k_neighbours: int = 3
) -> Callable[[int, int, int, int], np.ndarray]:
    """A function rows(r0, r1, c0, c1) giving the MI (float64, r1 - r0 x c1 - c0) of variables
    r0..r1 against c0..c1 of x (n, d), prepared once: binned codes, or the copula's normal scores
    (ranked SCORE_VARIABLES at a time); KSG from the values."""
    x3 = x[None]
    if estimator in BINNED_ESTIMATORS:
        coded = code_layers(x3, estimator, bins, threads, miller_madow)

        def binned_rows(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
            out = np.empty((1, r1 - r0, c1 - c0))
            part = (
                Coded(coded.codes[:, r0:r1], coded.entropy[:, r0:r1], bins),
                Coded(coded.codes[:, c0:c1], coded.entropy[:, c0:c1], bins),
            )
            return binned_mi(*part, scale, out, threads, None, miller_madow)[0]

        return binned_rows
    if estimator == "gaussian_copula":
        z = np.empty((x.shape[1], x.shape[0]))
        for v0 in range(0, x.shape[1], SCORE_VARIABLES):
            z[v0 : v0 + SCORE_VARIABLES] = normal_scores(x[:, v0 : v0 + SCORE_VARIABLES].T)

        def copula_rows(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
            return mi_of_correlations(z[r0:r1] @ z[c0:c1].T, scale)

        return copula_rows
    settings = Settings.resolve(x.shape[0], KSG(k=k_neighbours), units="nats", threads=threads, dtype=np.float64)

    def ksg_rows(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        # What mi_matrix(x[:, r0:r1], x[:, c0:c1], estimator=KSG(k)) computes: ties warned about, and clipped.
        rows, cols = (np.ascontiguousarray(x[None, :, a:b]) for a, b in ((r0, r1), (c0, c1)))
        return _dispatch.compute(rows, cols, settings, None, None, None)[0] * scale

    return ksg_rows


def tile_values(
    rows_of: Callable[[int, int, int, int], np.ndarray], diagonal: np.ndarray, i: int, j: int, tile: int, d: int
) -> np.ndarray:
    """The MI of tile (i, j): rows_of for the variables of block i against block j, with the
    diagonal of a tile on it set as mi_matrix sets it (entropies, or +inf)."""
    r0, r1 = i * tile, min(d, (i + 1) * tile)
    c0, c1 = j * tile, min(d, (j + 1) * tile)
    values = rows_of(r0, r1, c0, c1)
    if i == j:
        idx = np.arange(r1 - r0)
        values[idx, idx] = diagonal[r0:r1]
    return values


def diagonal_of(x: np.ndarray, estimator: str, bins: int, scale: float, threads: int, miller_madow: bool) -> np.ndarray:
    """What mi_matrix(X) puts on its diagonal: each variable's entropy (binned) or +inf."""
    if estimator in BINNED_ESTIMATORS:
        return code_layers(x[None], estimator, bins, threads, miller_madow).entropy[0] * scale
    return np.full(x.shape[1], np.inf)
