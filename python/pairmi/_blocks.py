"""The block engine: the variables of one layer prepared once (binned codes, the copula's normal
scores, or KSG's values), then the MI of any block of rows against any block of columns, and what
the diagonal holds. ``out=`` (a memmap, a block of rows at a time), zarr tiles, ``mi_topk``,
``dask.mi_tiles`` and the permutation nulls all compute through it."""

from __future__ import annotations

import numpy as np

from . import _core
from ._ksg_ties import clip_tied
from .binned import Coded, binned_mi, code_layers
from .copula import mi_of_correlations, normal_scores
from .settings import BINNED_ESTIMATORS, Settings

# Variables ranked at once when the copula's normal scores are prepared (ranking takes ~72 bytes a value).
SCORE_VARIABLES = 1024


class Blocks:
    """The MI of blocks of pairs of x (n, dx) against itself (y None) or y (n, dy), for settings
    ``s``; ``layer`` picks the fixed edges of that layer from ``s.edges``.

    KSG's values are used as given: the caller has added the seeded tie-breaking noise (or warned
    about ties) once for the whole matrix (:func:`pairmi._ksg_ties.ksg_inputs`).
    """

    def __init__(self, x: np.ndarray, y: np.ndarray | None, s: Settings, layer: int = 0) -> None:
        self.s = s
        self.mm = s.correction == "miller_madow"
        self.coded: tuple[Coded, Coded] | None = None
        if s.name in BINNED_ESTIMATORS:
            edges = [None if e is None else e[layer : layer + 1] for e in s.edges]
            cx = code_layers(x[None], s.name, s.bins, s.threads, self.mm, edges[0])
            cy = cx if y is None else code_layers(y[None], s.name, s.bins, s.threads, self.mm, edges[1])
            self.coded = (cx, cy)
            self.diagonal = cx.entropy[0] * s.scale
            return
        self.diagonal = np.full(x.shape[1], np.inf)
        if s.name == "gaussian_copula":
            if s.edges[0] is not None:
                raise ValueError("blocks of the copula take no fixed knots")  # mi_matrix's out= maps them itself
            self.z = (self._scores(x), None if y is None else self._scores(y))
            return
        if y is not None and y.dtype != x.dtype:
            x, y = x.astype(np.float64), y.astype(np.float64)
        self.values = (x, y)

    @staticmethod
    def _scores(v: np.ndarray) -> np.ndarray:
        z = np.empty((v.shape[1], v.shape[0]))
        for v0 in range(0, v.shape[1], SCORE_VARIABLES):
            z[v0 : v0 + SCORE_VARIABLES] = normal_scores(v[:, v0 : v0 + SCORE_VARIABLES].T)
        return z

    def rows(self, r0: int, r1: int, c0: int, c1: int, out: np.ndarray | None = None) -> np.ndarray:
        """The MI of variables r0..r1 against c0..c1 (of y, or of x itself), (r1 - r0, c1 - c0):
        float64, or written into ``out`` (1, r1 - r0, c1 - c0) of any float dtype."""
        s = self.s
        part = np.empty((1, r1 - r0, c1 - c0)) if out is None else out
        if self.coded is not None:
            cx, cy = self.coded
            rows = Coded(cx.codes[:, r0:r1], cx.entropy[:, r0:r1], cx.bins)
            cols = Coded(cy.codes[:, c0:c1], cy.entropy[:, c0:c1], cy.bins)
            binned_mi(rows, cols, s.scale, part, s.threads, None, self.mm)
        elif s.name == "gaussian_copula":
            zx, zy = self.z
            part[0] = mi_of_correlations(zx[r0:r1] @ (zx if zy is None else zy)[c0:c1].T, s.scale)
        else:
            x, y = self.values
            a = np.ascontiguousarray(x[None, :, r0:r1])
            b = np.ascontiguousarray((x if y is None else y)[None, :, c0:c1])
            _core.ksg_mi(a, b, s.k, s.scale, part, s.threads, None)
            clip_tied(a, b, s.scale, part)
        return part[0]

    def tile(self, i: int, j: int, tile: int, d: int) -> np.ndarray:
        """The MI of tile (i, j) of x against itself (d variables, tiles of side ``tile``), with the
        diagonal of a tile on it set as mi_matrix sets it (entropies, or +inf)."""
        r0, r1 = i * tile, min(d, (i + 1) * tile)
        c0, c1 = j * tile, min(d, (j + 1) * tile)
        values = self.rows(r0, r1, c0, c1)
        if i == j:
            idx = np.arange(r1 - r0)
            values[idx, idx] = self.diagonal[r0:r1]
        return values
