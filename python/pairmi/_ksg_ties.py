"""KSG on tied values: seeded tie-breaking noise, a warning for heavily tied variables, and the
clipping of values no data allow."""

from __future__ import annotations

import warnings

import numpy as np

from . import stats
from .settings import Settings

# A variable with more of its samples tied than this makes KSG overestimate (a Gaussian pair,
# rho = 0.6, 2,000 samples, rounded ever coarser: within 0.01 bits at 75 % tied, +0.07 bits at
# 95 %, +0.33 at 98 %, several bits beyond; bench/ties.py).
TIED_SHARE_WARNING = 0.9


def ksg_inputs(x: np.ndarray, y: np.ndarray | None, s: Settings) -> tuple[np.ndarray, np.ndarray | None]:
    """x and y with the seeded tie-breaking noise added (noise > 0), else a warning when a
    variable is heavily tied."""
    if s.noise > 0:
        rng = np.random.default_rng(s.seed)
        return tuple(None if v is None else jittered(v, s.noise, rng) for v in (x, y))  # type: ignore[return-value]
    warn_heavy_ties(x, y, stacklevel=6)
    return x, y


def warn_heavy_ties(x: np.ndarray, y: np.ndarray | None, stacklevel: int) -> None:
    """A RuntimeWarning naming the variables of x and y (layers, n, d) with most samples tied."""
    for v, name in ((x, "X"), (y, "Y")):
        if v is None:
            continue
        share = stats.tie_shares(v)  # (layers, variables)
        constant = v.max(axis=1) == v.min(axis=1)  # all tied, but MI 0 by definition
        share[constant] = 0.0
        share = share.max(axis=0)
        heavy = np.flatnonzero(share > TIED_SHARE_WARNING)
        if heavy.size:
            warnings.warn(
                f"KSG: {heavy.size} variable(s) of {name} have over {TIED_SHARE_WARNING:.0%} of their samples "
                f"tied (columns {heavy[:10].tolist()}, up to {share[heavy].max():.1%}): KSG overestimates on "
                "such data; pass noise=1e-10 to break the ties with seeded noise as scikit-learn does",
                RuntimeWarning,
                stacklevel=stacklevel,
            )


def jittered(v: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """v + noise * max(1, mean |v|) * N(0, 1), per variable (scikit-learn's tie-breaking)."""
    scale = noise * np.maximum(1.0, np.abs(v).mean(axis=1, keepdims=True, dtype=np.float64))
    return v.astype(np.float64) + scale * rng.standard_normal(v.shape)


def clip_tied(x: np.ndarray, y: np.ndarray | None, scale: float, out: np.ndarray) -> None:
    """Clip KSG values to min(H(X), H(Y)) of the tied values, with a warning when any was above.

    With many tied values the k-th neighbour distance is 0 and KSG's counts collapse, giving values
    no data allow (two independent binary variables: 15 bits). The entropies of the variables'
    empirical distributions bound the MI of any estimate of their joint law. A variable without
    ties has entropy ln n, above anything KSG returns, so only the rows and columns of variables
    with repeated values are checked, and untied data are left exactly as computed.
    """
    n = x.shape[1]
    hx = discrete_entropy(x)
    hy = hx if y is None else discrete_entropy(y)
    untied = np.log(n) * (1.0 - 1e-12)
    tied_variables = 0
    for l in range(out.shape[0]):
        # Rows of tied x variables, then columns of tied y variables (rows of the transpose).
        for h_rows, h_cols, view in ((hx[l], hy[l], out[l]), (hy[l], hx[l], out[l].T)):
            rows = np.flatnonzero(h_rows < untied)
            if rows.size == 0:
                continue
            bound = np.minimum(h_rows[rows, None], h_cols[None, :]) * scale
            if y is None:
                bound[np.arange(rows.size), rows] = np.inf  # the diagonal stays +inf
            block = view[rows]
            over = block > bound
            if over.any():
                tied_variables += int(over.any(axis=1).sum())
                view[rows] = np.minimum(block, bound)
    if tied_variables:
        warnings.warn(
            f"KSG: pairs of {tied_variables:,} heavily tied variable(s) scored above min(H(X), H(Y)) of "
            "their tied values (the k-th neighbour distance was 0) and were clipped to that bound; KSG is "
            "unreliable on such data: add small noise to break the ties, or use a binned estimator",
            RuntimeWarning,
            stacklevel=4,
        )


def discrete_entropy(x: np.ndarray) -> np.ndarray:
    """Entropy in nats, (layers, variables), of each variable's values as a discrete distribution:
    ln n for a variable without repeated values. One layer's sorted copy at a time."""
    layers, n, d = x.shape
    h = np.full((layers, d), np.log(n))
    for l in range(layers):
        srt = np.sort(x[l], axis=0)
        for c in np.flatnonzero((srt[1:] == srt[:-1]).any(axis=0)):
            starts = np.flatnonzero(np.r_[True, srt[1:, c] != srt[:-1, c]])
            p = np.diff(np.r_[starts, n]) / n
            h[l, c] = -(p * np.log(p)).sum()
    return h
