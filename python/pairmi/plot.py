"""The course's figures over pairmi's results (matplotlib). Functions return Figures; none shows one.

Figures are built with ``matplotlib.figure.Figure`` directly (no pyplot state, any backend), so
``fig.savefig(path)`` works in scripts, notebooks and servers alike.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .api import mi_matrix


def _figure(width: float, height: float, ncols: int = 1):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("pairmi.plot needs matplotlib: pip install 'pairmi[plot]'") from None
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots(1, ncols)


def _values(hs: Any) -> np.ndarray:
    return np.asarray(getattr(hs, "values", hs))


def _upper(mi: np.ndarray) -> np.ndarray:
    """Off-diagonal pairs i < j of a square MI matrix (the diagonal holds entropies)."""
    return mi[np.triu_indices(mi.shape[-1], k=1)]


def pair(hs: Any, layer: int, i: int, j: int, *, bins: int = 15, estimator: str = "equal_width", units: str = "bits"):
    """Scatter of units i and j over tokens, and their 2-D histogram, with the pair's MI in the title.

    Parameters
    ----------
    hs : HiddenStates or array, shape (n_layers, n_tokens, n_units)
    layer, i, j : int
        Layer index and the two units.
    bins, estimator, units
        As in :func:`pairmi.mi_matrix` (for 'ksg' and 'gaussian_copula', ``bins`` sets only the
        drawn equal-width histogram).
    """
    x = _values(hs)[layer][:, [i, j]].astype(np.float64)
    mi = mi_matrix(x, estimator=estimator, bins=bins, units=units)[0, 1]
    bins = min(bins, x.shape[0])
    fig, (ax_s, ax_h) = _figure(10, 4.2, 2)
    ax_s.plot(x[:, 0], x[:, 1], "o", ms=4, alpha=0.7)
    ax_s.set(xlabel=f"unit {i}", ylabel=f"unit {j}", title=f"layer {layer}: tokens")
    if estimator == "equal_frequency":
        edges = [np.percentile(v, np.linspace(0, 100, bins + 1)) for v in x.T]
    else:  # the histogram drawn for the continuous estimators is equal-width
        edges = [bins, bins]
    counts, ex, ey = np.histogram2d(x[:, 0], x[:, 1], bins=edges)
    mesh = ax_h.pcolormesh(ex, ey, counts.T, cmap="viridis")
    fig.colorbar(mesh, ax=ax_h, label="tokens")
    ax_h.set(xlabel=f"unit {i}", ylabel=f"unit {j}", title=f"2-D histogram, MI = {mi:.3f} {units} ({estimator})")
    return fig


def layer(mi: np.ndarray, layer: int, *, units: str = "bits", null: np.ndarray | None = None, name: str | None = None):
    """Histogram of one layer's pairwise MI values, and the heatmap of its MI matrix.

    Parameters
    ----------
    mi : ndarray, shape (n_layers, d, d)
        Output of :func:`pairmi.mi_layers`.
    layer : int
        Layer to draw.
    null : ndarray, optional
        MI values under a null (e.g. shuffled tokens), drawn beside the observed histogram.
    """
    m = np.asarray(mi)[layer]
    vals = _upper(m)
    fig, (ax_h, ax_m) = _figure(11, 4.2, 2)
    ax_h.hist(vals, bins=60, color="C0", alpha=0.8, density=True, label="observed")
    if null is not None:
        ax_h.hist(np.ravel(null), bins=60, color="0.5", alpha=0.5, density=True, label="null")
        ax_h.legend()
    ax_h.set(xlabel=f"MI ({units})", ylabel="density", title=f"{name or f'L{layer}'}: {vals.size:,} pairs")
    off = m.copy()
    np.fill_diagonal(off, np.nan)  # the diagonal holds entropies, not MI
    im = ax_m.imshow(off, cmap="magma", interpolation="nearest")
    fig.colorbar(im, ax=ax_m, label=f"MI ({units})")
    ax_m.set(xlabel="unit", ylabel="unit", title="pairwise MI")
    return fig


def layers(mi: np.ndarray, *, names: Sequence[str] | None = None, units: str = "bits", null: np.ndarray | None = None):
    """The distribution of pairwise MI of every layer on one axis (density, plasma colours).

    Parameters
    ----------
    mi : ndarray, shape (n_layers, d, d)
    names : sequence of str, optional
        Legend labels; default ``L0``, ``L1``, ...
    null : ndarray, optional
        MI values under a null, drawn as a dashed grey density.
    """
    fig, ax = _figure(8, 4.5)
    from matplotlib import colormaps  # present: _figure checked matplotlib

    mi = np.asarray(mi)
    n_layers = mi.shape[0]
    names = list(names) if names is not None else [f"L{k}" for k in range(n_layers)]
    if len(names) != n_layers:
        raise ValueError(f"names has {len(names)} entries for {n_layers} layers")
    upper = [_upper(m) for m in mi]
    lo = min(float(v.min()) for v in upper)
    hi = max(float(v.max()) for v in upper)
    grid = np.linspace(lo, hi if hi > lo else lo + 1, 80)
    colours = colormaps["plasma"](np.linspace(0, 0.9, n_layers))
    for vals, name, colour in zip(upper, names, colours):
        dens, edges = np.histogram(vals, bins=grid, density=True)
        ax.plot((edges[:-1] + edges[1:]) / 2, dens, color=colour, label=name)
    if null is not None:
        dens, edges = np.histogram(np.ravel(null), bins=grid, density=True)
        ax.plot((edges[:-1] + edges[1:]) / 2, dens, "--", color="0.4", label="null")
    ax.set(xlabel=f"MI ({units})", ylabel="density", title="pairwise MI by layer")
    ax.legend(ncols=2 if n_layers > 7 else 1, fontsize="small")
    return fig
