"""The figures of the all-pairs analysis over pairmi's results (matplotlib). Functions return Figures; none shows one.

Figures are built with ``matplotlib.figure.Figure`` directly (no pyplot state, any backend), so
``fig.savefig(path)`` works in scripts, notebooks and servers alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .api import mi_matrix
from .settings import DEFAULT_BINS
from .stats import pair_mask


def _figure(width: float, height: float, ncols: int = 1):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("pairmi.plot needs matplotlib: pip install 'pairmi[plot]'") from None
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots(1, ncols)


def _values(hs: Any) -> np.ndarray:
    return np.asarray(getattr(hs, "values", hs))


def pair(
    hs: Any,
    layer: int,
    i: int,
    j: int,
    *,
    bins: int = DEFAULT_BINS,
    estimator: str = "equal_width",
    units: str = "bits",
    overlay: bool = False,
    names: Sequence[str] | None = None,
):
    """Scatter of units i and j over tokens and their 2-D histogram, with the pair's MI in the title.

    Parameters
    ----------
    hs : HiddenStates or array, shape (n_layers, n_tokens, n_units) or (n_tokens, n_units)
    layer, i, j : int
        Layer index (ignored for a 2-d array) and the two units.
    bins, estimator, units
        As in :func:`pairmi.mi_matrix` (for 'ksg' and 'gaussian_copula', ``bins`` sets only the
        drawn equal-width histogram).
    overlay : bool
        Draw the samples over the histogram on one axis (the binned pair as the estimator sees
        it), instead of side by side.
    names : pair of str, optional
        Axis labels; default ``unit i`` and ``unit j``.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from pairmi import plot
    >>> x = np.random.default_rng(0).normal(size=(200, 2))
    >>> fig = plot.pair(x, 0, 0, 1, overlay=True, names=("x", "y"))
    >>> fig.savefig("pair.png")  # doctest: +SKIP
    """
    values = _values(hs)
    x = (values if values.ndim == 2 else values[layer])[:, [i, j]].astype(np.float64)
    mi = mi_matrix(x, estimator=estimator, bins=bins, units=units)[0, 1]
    bins = min(bins, x.shape[0])
    label_x, label_y = names if names is not None else (f"unit {i}", f"unit {j}")
    if estimator == "equal_frequency":
        edges = [np.percentile(v, np.linspace(0, 100, bins + 1)) for v in x.T]
    else:  # the histogram drawn for the continuous estimators is equal-width
        edges = [bins, bins]
    counts, ex, ey = np.histogram2d(x[:, 0], x[:, 1], bins=edges)
    title = f"MI = {mi:.3f} {units} ({estimator}{f', {bins} bins' if estimator in ('equal_width', 'equal_frequency') else ''})"
    if overlay:
        fig, ax_h = _figure(6, 5)
        ax_s = ax_h
    else:
        fig, (ax_s, ax_h) = _figure(10, 4.2, 2)
        ax_s.set(title=f"layer {layer}: tokens" if values.ndim == 3 else f"{x.shape[0]:,} samples")
    mesh = ax_h.pcolormesh(ex, ey, counts.T, cmap="Blues" if overlay else "viridis")
    fig.colorbar(mesh, ax=ax_h, label="samples per cell")
    ax_s.plot(x[:, 0], x[:, 1], "o", ms=3 if overlay else 4, alpha=0.6, color="C1" if overlay else "C0", markeredgewidth=0)
    for ax in {ax_s, ax_h}:
        ax.set(xlabel=label_x, ylabel=label_y)
    ax_h.set(title=(f"{x.shape[0]:,} samples over their 2-D histogram\n" if overlay else "2-D histogram, ") + title)
    return fig


def marginals(
    x: Any,
    y: Any,
    *,
    estimator: str = "equal_width",
    bins: int = DEFAULT_BINS,
    units: str = "bits",
    names: Sequence[str] = ("x", "y"),
):
    """Each variable's binned distribution (share of samples per bin, at the bin centres) on one
    axis, the legend giving each one's entropy: the H(X) and H(Y) of I(X;Y) = H(X) + H(Y) - H(X,Y).

    Parameters
    ----------
    x, y : array_like, shape (n,)
    estimator : {'equal_width', 'equal_frequency'}
        The bins, as in :func:`pairmi.mi_matrix`; the entropies are the ones it puts on its
        diagonal.
    bins, units
        As in :func:`pairmi.mi_matrix`.
    names : pair of str
        Legend names.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from pairmi import plot
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=200)
    >>> fig = plot.marginals(x, x + rng.normal(size=200))
    """
    if estimator not in ("equal_width", "equal_frequency"):
        raise ValueError(f"marginals are drawn for the binned estimators, not {estimator!r}")
    data = np.stack([np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)], axis=1)
    entropy = np.diag(mi_matrix(data, estimator=estimator, bins=bins, units=units))
    fig, ax = _figure(7, 4.2)
    for k, (v, name) in enumerate(zip(data.T, names)):
        edges = np.percentile(v, np.linspace(0, 100, bins + 1)) if estimator == "equal_frequency" else bins
        counts, e = np.histogram(v, bins=edges)
        centres = (e[:-1] + e[1:]) / 2
        ax.plot(centres, counts / v.size, "o-", color=f"C{k}", label=f"{name}: H = {entropy[k]:.3f} {units}")
    ax.set(
        xlabel="value (bin centre)",
        ylabel="share of samples",
        title=f"binned marginals, {estimator.replace('_', '-')}, {bins} bins, {data.shape[0]:,} samples",
    )
    ax.legend()
    return fig


def bias(curve: Any):
    """Each estimator's mean estimate against the number of samples, and the truth as a line.

    Parameters
    ----------
    curve : BiasCurve
        From :func:`pairmi.bias_curve` (Gaussian pairs of one correlation).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pairmi
    >>> from pairmi import plot
    >>> fig = plot.bias(pairmi.bias_curve(0.7, sizes=(100, 1000), draws=2, n_permutations=5))
    """
    fig, (ax, zoom) = _figure(13, 4.8, 2)
    large = curve.sizes >= 1000  # where the estimates meet: their offsets from the truth, magnified
    for k, (name, mean) in enumerate(curve.mean.items()):
        style = "--" if "corrected" in name else "-"
        ax.plot(curve.sizes, mean, style, marker="o", ms=4, color=f"C{k}", label=name)
        ax.fill_between(curve.sizes, mean - curve.std[name], mean + curve.std[name], color=f"C{k}", alpha=0.12)
        if large.sum() >= 2:
            zoom.plot(curve.sizes[large], mean[large] - curve.truth, style, marker="o", ms=4, color=f"C{k}")
    ax.axhline(curve.truth, color="k", lw=1.5, label=f"truth: -1/2 log2(1 - rho^2) = {curve.truth:.3f} {curve.units}")
    zoom.axhline(0.0, color="k", lw=1.5)
    for a in (ax, zoom):
        a.set_xscale("log")
    ax.set(
        xlabel="samples",
        ylabel=f"mean estimate ({curve.units})",
        title=f"MI of a Gaussian pair, rho = {curve.rho:.3g}: mean of {curve.draws} draws (band: +-1 std)",
    )
    zoom.set(
        xlabel="samples",
        ylabel=f"mean estimate - truth ({curve.units})",
        title=f"offset from the truth from 1,000 samples ({curve.bins} bins, KSG k = {curve.k})",
    )
    ax.legend(fontsize="small")
    return fig


# A pair counts as above its null when it exceeds this quantile of the null's values.
NULL_QUANTILE = 0.95


def layer(
    mi: np.ndarray,
    layer: int,
    *,
    units: str = "bits",
    null: np.ndarray | None = None,
    name: str | None = None,
    dims: Sequence[int] | None = None,
    title: str | None = None,
    degenerate: np.ndarray | None = None,
):
    """Histogram of one layer's pairwise MI values, and the heatmap of its MI matrix.

    Parameters
    ----------
    mi : ndarray, shape (n_layers, d, d)
        Output of :func:`pairmi.mi_layers`.
    layer : int
        Layer to draw.
    null : ndarray, optional
        MI values under a null (e.g. shuffled tokens, or each pair's first-order bias), drawn beside
        the observed histogram; in the heatmap, pairs at or below its 95th percentile are grey.
    name : str, optional
        The layer's name in the titles.
    dims : sequence of int, optional
        The real unit indices of the matrix's rows and columns (e.g. ``dims`` of a selection),
        used as the heatmap's tick labels; default 0..d-1.
    title : str, optional
        A line above both panels (e.g. model, site, estimator, tokens); wrapped to fit.
    degenerate : ndarray of bool, shape (d,), optional
        Units that are constant or nearly so: left out of the histogram and the colour scale, and
        drawn dark grey.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np, pairmi
    >>> from pairmi import plot
    >>> mi = pairmi.mi_layers(np.random.default_rng(0).normal(size=(2, 200, 6)), bins=5)
    >>> fig = plot.layer(mi, 1, name="L1")
    """
    m = np.asarray(mi)[layer].astype(np.float64)
    d = m.shape[-1]
    counted = pair_mask(d, degenerate)
    vals = m[counted]
    fig, (ax_h, ax_m) = _figure(11, 4.6, 2)
    ax_h.hist(vals, bins=60, color="C0", alpha=0.8, density=True, label="observed")
    cut = None
    if null is not None:
        null_vals = np.ravel(null)
        null_vals = null_vals[np.isfinite(null_vals)]
        cut = float(np.quantile(null_vals, NULL_QUANTILE)) if null_vals.size else None
        # A null far narrower than the observed values (a corpus run's first-order bias) is a line:
        # as a density it would be a spike that flattens the observed histogram.
        if null_vals.size and np.ptp(null_vals) >= 0.05 * max(float(np.ptp(vals)) if vals.size else 0.0, 1e-300):
            ax_h.hist(null_vals, bins=60, color="0.5", alpha=0.5, density=True, label="null")
        if cut is not None:
            ax_h.axvline(cut, color="0.3", ls="--", lw=1, label=f"null's {NULL_QUANTILE:.0%} point ({cut:.3g})")
        ax_h.legend(fontsize="small")
    skipped = "" if degenerate is None or not np.any(degenerate) else f", {int(np.sum(degenerate))} degenerate units left out"
    ax_h.set(xlabel=f"MI ({units})", ylabel="density", title=f"{name or f'L{layer}'}: {vals.size:,} pairs{skipped}")
    _heatmap(fig, ax_m, m, counted | counted.T, cut, degenerate, units)
    _round_ticks(ax_m, d, dims)
    ax_m.set(xlabel="unit", ylabel="unit", title=_heatmap_title(cut, degenerate))
    if title:
        fig.suptitle(wrapped(title), fontsize="medium")
    return fig


def _heatmap(fig: Any, ax: Any, m: np.ndarray, counted: np.ndarray, cut: float | None, degenerate: Any, units: str) -> None:
    """MI in magma over the counted pairs' range; grey where at or below the null's cut, dark grey
    for degenerate units, white on the diagonal (a unit with itself is no pair)."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    finite = m[counted & np.isfinite(m)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    norm = Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1e-12)
    cmap = colormaps["magma"]
    rgba = cmap(norm(np.nan_to_num(m, nan=lo, posinf=hi, neginf=lo)))
    if cut is not None:
        rgba[counted & (m <= cut)] = (0.82, 0.82, 0.82, 1.0)
    if degenerate is not None:
        bad = np.asarray(degenerate, dtype=bool)
        rgba[bad, :] = rgba[:, bad] = (0.45, 0.45, 0.45, 1.0)
    idx = np.arange(m.shape[0])
    rgba[idx, idx] = (1.0, 1.0, 1.0, 1.0)
    ax.imshow(rgba, interpolation="nearest")
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=f"MI ({units})")


def _heatmap_title(cut: float | None, degenerate: Any) -> str:
    parts = ["pairwise MI; white diagonal: a unit with itself"]
    if cut is not None:
        parts.append(f"light grey: within the null (<= {cut:.3g})")
    if degenerate is not None and np.any(degenerate):
        parts.append("dark grey: degenerate units")
    return wrapped("; ".join(parts), 60)


def _round_ticks(ax: Any, d: int, dims: Sequence[int] | None) -> None:
    """Ticks at round unit numbers (0, 100, 200, ... of the real indices when the units are a
    contiguous run; else at round positions, labelled with the real units)."""
    from matplotlib.ticker import MaxNLocator

    labels = np.arange(d) if dims is None else np.asarray(dims)
    contiguous = labels.size > 1 and bool(np.all(np.diff(labels) == 1))
    locator = MaxNLocator(nbins=7, integer=True, steps=[1, 2, 2.5, 5, 10])
    if contiguous or labels.size == 1:
        values = [v for v in locator.tick_values(labels[0], labels[-1]) if labels[0] <= v <= labels[-1]]
        ticks = [int(v - labels[0]) for v in values]
    else:
        ticks = [int(v) for v in locator.tick_values(0, d - 1) if 0 <= v <= d - 1]
    ax.set_xticks(ticks, [str(labels[t]) for t in ticks])
    ax.set_yticks(ticks, [str(labels[t]) for t in ticks])


def wrapped(text: str, width: int = 110) -> str:
    """A title broken into lines of at most `width` characters, so it fits its figure."""
    import textwrap

    return "\n".join(textwrap.wrap(text, width)) or text


def layers(
    mi: np.ndarray,
    *,
    names: Sequence[str] | None = None,
    units: str = "bits",
    null: np.ndarray | None = None,
    kind: str = "ecdf",
    title: str | None = None,
    degenerate: np.ndarray | None = None,
):
    """The distribution of pairwise MI of every layer on one axis (plasma colours).

    Parameters
    ----------
    mi : ndarray, shape (n_layers, d, d)
    names : sequence of str, optional
        Legend labels; default ``L0``, ``L1``, ...
    null : ndarray, optional
        MI values under a null, drawn dashed grey.
    kind : {'ecdf', 'density'}
        ``'ecdf'`` (default, the same for every estimator so figures compare): the share of pairs
        at or below each value, on a symmetric-log axis, which shows plug-in values on their lattice
        and KSG's or the copula's values crowding near 0 alike. ``'density'``: histogram densities
        on a linear axis.
    title : str, optional
        The figure's title (default: "pairwise MI by layer"); wrapped to fit.
    degenerate : ndarray of bool, shape (n_layers, d), optional
        Units that are constant or nearly so in each layer: their pairs are left out, so the axis
        spans the real units' values.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np, pairmi
    >>> from pairmi import plot
    >>> mi = pairmi.mi_layers(np.random.default_rng(0).normal(size=(3, 200, 6)), estimator="ksg")
    >>> fig = plot.layers(mi)
    """
    if kind not in ("density", "ecdf"):
        raise ValueError(f"kind must be 'density' or 'ecdf', got {kind!r}")
    mi = np.asarray(mi)
    if mi.ndim != 3 or mi.shape[1] != mi.shape[2] or mi.shape[1] < 2 or mi.shape[0] < 1:
        raise ValueError(
            f"mi must be (layers, d, d) with at least one layer and d >= 2 units (a pair to plot), got shape {mi.shape}"
        )
    n_layers, d = mi.shape[0], mi.shape[1]
    names = list(names) if names is not None else [f"L{k}" for k in range(n_layers)]
    if len(names) != n_layers:
        raise ValueError(f"names has {len(names)} entries for {n_layers} layers")
    bad = np.zeros((n_layers, d), dtype=bool) if degenerate is None else np.asarray(degenerate, dtype=bool)
    fig, ax = _figure(8, 4.5)
    from matplotlib import colormaps  # present: _figure checked matplotlib

    upper = [m[pair_mask(d, b)].astype(np.float64) for m, b in zip(mi, bad)]
    colours = colormaps["plasma"](np.linspace(0, 0.9, n_layers))
    curves = list(zip(upper, names, colours, ["-"] * n_layers))
    if null is not None:
        curves.append((np.ravel(null).astype(np.float64), "null", "0.4", "--"))
    finite = np.concatenate([v[np.isfinite(v)] for v, *_ in curves])
    if kind == "ecdf":
        positive = finite[finite > 0]
        for vals, name, colour, style in curves:
            v = np.sort(vals[np.isfinite(vals)])
            ax.plot(v, np.arange(1, v.size + 1) / max(v.size, 1), style, color=colour, label=name)
        ax.set_xscale("symlog", linthresh=float(np.quantile(positive, 0.01)) if positive.size else 1e-3)
        ax.set(xlabel=f"MI ({units}), symmetric-log axis", ylabel="share of pairs at or below")
    else:
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        grid = np.linspace(lo, hi if hi > lo else lo + 1, 80)
        for vals, name, colour, style in curves:
            dens, edges = np.histogram(vals, bins=grid, density=True)
            ax.plot((edges[:-1] + edges[1:]) / 2, dens, style, color=colour, label=name)
        ax.set(xlabel=f"MI ({units})", ylabel="density")
    if finite.size:  # the axis spans the counted pairs (and the null), nothing else
        lo, hi = float(finite.min()), float(finite.max())
        pad = 0.02 * (hi - lo) if hi > lo else 0.5 * max(abs(hi), 1e-3)
        ax.set_xlim(min(lo, 0.0) if kind == "ecdf" else lo - pad, hi + pad)
    skipped = int(bad.sum())
    heading = title or "pairwise MI by layer"
    if skipped:
        heading += f" ({skipped} degenerate units left out)"
    ax.set(title=wrapped(heading, 90))
    ax.legend(ncols=2 if len(curves) > 7 else 1, fontsize="small")
    return fig
