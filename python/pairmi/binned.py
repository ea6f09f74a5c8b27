"""Binning of variables into integer codes: equal-width and equal-frequency bins, as numpy defines them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from . import _core
from .settings import BINNED_ESTIMATORS
from .stats import mirrored_upper


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
    ``np.percentile(x, np.linspace(0, 100, bins + 1))`` on the float64 values (numpy's default
    ``'linear'`` method, computed in C++ with numpy's operations and rounding); tied values give
    repeated edges, and the bins between repeated edges stay empty, exactly as np.histogram2d counts.
    """
    if estimator == "equal_width":
        return _core.equal_width_edges(x, bins, threads)
    if estimator == "equal_frequency":
        return _core.equal_frequency_edges(x, bins, threads)
    raise ValueError(f"estimator must be one of {BINNED_ESTIMATORS}, got {estimator!r}")


def code_layers(
    x: np.ndarray, estimator: str, bins: int, threads: int, miller_madow: bool = False, edges: np.ndarray | None = None
) -> Coded:
    """Bin every variable of x (layers, samples, variables, float32/float64, finite) once: by its own
    edges, or by the fixed `edges` (layers, variables, bins + 1), values outside them falling in
    the end bins."""
    if edges is None:
        edges = bin_edges(x, estimator, bins, threads)
    codes = _core.bin_codes(x, edges, threads)
    return Coded(codes, _core.entropies(codes, bins, threads, miller_madow), bins)


def binned_mi(
    cx: Coded,
    cy: Coded | None,
    scale: float,
    out: np.ndarray,
    threads: int,
    progress=None,
    miller_madow: bool = False,
) -> np.ndarray:
    """MI of all pairs of coded variables into out (layers, dx, dy): cx against itself or cy."""
    _core.binned_mi(
        cx.codes,
        cx.entropy,
        None if cy is None else cy.codes,
        None if cy is None else cy.entropy,
        cx.bins,
        scale,
        out,
        threads,
        progress,
        miller_madow,
    )
    return out


def permutation_nulls(
    cx: Coded,
    cy: Coded | None,
    n_permutations: int,
    seed,
    scale: float,
    threads: int,
    out: np.ndarray,
    reorder: Callable[[np.random.Generator, np.ndarray], np.ndarray] | None = None,
    progress: Callable[[int, int], None] | None = None,
    stages: tuple[int, int] | None = None,
) -> Iterator[np.ndarray]:
    """Yield the MI matrices (layers, dx, dy) of n_permutations shufflings of the samples.

    Square case: every variable's codes are permuted independently, so each pair i != j is scored
    on independently shuffled samples (the diagonal keeps the entropies). Cross case: y's codes
    are shuffled. Each layer draws from its own generator seeded with `seed`, so a layer's null
    does not depend on which other layers are computed with it. The codes are reused: a null
    costs one kernel pass. Every permutation is written into `out` (layers, dx, dy) and yields it,
    so each must be used before the next is drawn. `reorder(rng, codes)` reorders each variable's
    samples (default: shuffles them; see :class:`pairmi.stats.Rotations` and
    :class:`pairmi.stats.WindowShifts`); a reorder that is ``common`` (one order for every
    variable) is scored, in the square case, as the variables in place against their moved copies,
    each pair's draw its upper-triangle value (mirrored), so no pair is left aligned.
    `progress(done, total)` follows the passes' tiles; `stages` = (first, count): the permutations
    are passes first.. of count equal passes of a longer computation (default: all of it).
    """
    first, count = stages or (0, n_permutations)
    target = cx if cy is None else cy
    rngs = [np.random.default_rng(seed) for _ in range(target.codes.shape[0])]
    for k in range(n_permutations):
        tiles_progress = staged(progress, first + k, count)
        if reorder is None:
            codes = np.stack([rng.permuted(layer, axis=-1) for rng, layer in zip(rngs, target.codes)])
        else:
            codes = np.stack([reorder(rng, layer) for rng, layer in zip(rngs, target.codes)])
        shuffled = Coded(codes, target.entropy, target.bins)
        if cy is not None:
            yield binned_mi(cx, shuffled, scale, out, threads, tiles_progress)
        elif getattr(reorder, "common", False):  # one reordering for all: rows in place against moved columns
            binned_mi(cx, shuffled, scale, out, threads, tiles_progress)
            for l in range(out.shape[0]):
                out[l] = mirrored_upper(out[l], cx.entropy[l] * scale)
            yield out
        else:
            yield binned_mi(shuffled, None, scale, out, threads, tiles_progress)


def staged(progress: Callable[[int, int], None] | None, stage: int, stages: int) -> Callable[[int, int], None] | None:
    """The progress of pass `stage` of `stages` equal passes, reported as progress of them all."""
    if progress is None:
        return None
    return lambda done, total: progress(stage * total + done, stages * total)
