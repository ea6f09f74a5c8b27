"""The figures of an analysis (every layer's distribution, the first and last layer, the pair
furthest above its null) and how that pair is chosen and scored, written as files."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from . import stats
from ._files import atomic_write_bytes
from ._written import record, safe_name
from .analysis import Analysis, counted_pairs, counted_values, describe
from .settings import DEFAULT_BINS


def figure_null(analysis: Analysis) -> tuple[np.ndarray | None, str]:
    """Each pair's null (layers, d, d) for figures and choices, and what it is: a corpus run's
    position null (its MI a whole window apart), else the measured one (every pair scored on
    shuffled tokens), else a corpus run's first-order value under independence; (None, '')
    without any."""
    if "position_null" in analysis.extra:
        return analysis.extra["position_null"], "MI from position alone"
    if "null" in analysis.extra:
        return analysis.extra["null"], "shuffled-token null"
    if "bias" in analysis.extra:
        return analysis.extra["bias"], "first-order MI under independence"
    return None, ""


def chosen_pair(analysis: Analysis, pair: tuple[int | str, int, int] | None = None) -> tuple[int, int, int, str]:
    """(layer, unit i, unit j, how it was chosen) for the pair figure: `pair` as named (layer index
    or name, real unit indices), else in the last layer the pair furthest above its null (its
    highest MI if there is no null), degenerate units skipped."""
    names = analysis.layer_names
    if pair is not None:
        layer, i, j = pair
        k = names.index(layer) if isinstance(layer, str) and layer in names else layer
        if not isinstance(k, (int, np.integer)) or not -len(names) <= k < len(names):
            raise ValueError(f"--pair layer must be an index in [0, {len(names)}) or one of {names}, got {layer!r}")
        dims = [int(d) for d in analysis.dims]
        for unit in (i, j):
            if unit not in dims:
                raise ValueError(f"--pair unit {unit} is not among the analysed units")
        if i == j:
            raise ValueError("--pair needs two different units")
        return int(k) % len(names), i, j, "as named"
    k = len(names) - 1
    score = _scores(analysis, k)
    if not np.isfinite(score).any():
        raise ValueError("no pair of non-degenerate units to draw")
    a, b = np.unravel_index(np.argmax(score), score.shape)
    null, what = figure_null(analysis)
    how = f"highest MI above its {what}" if null is not None else "highest MI"
    degenerate = analysis.extra.get("degenerate")
    skipped = 0 if degenerate is None else int(degenerate[k].sum())
    return k, int(analysis.dims[a]), int(analysis.dims[b]), how + (f", {skipped} degenerate units skipped" if skipped else "")


def _scores(analysis: Analysis, k: int) -> np.ndarray:
    """Layer k's MI above each pair's null (the MI without one), -inf where no pair is counted."""
    null, _ = figure_null(analysis)
    with np.errstate(invalid="ignore"):  # KSG's and the copula's diagonal: inf - inf, not counted
        score = analysis.mi[k].astype(np.float64) - (0.0 if null is None else null[k])
    return np.where(counted_pairs(analysis, k), score, -np.inf)


def pair_significance(analysis: Analysis, k: int, i: int, j: int) -> str:
    """How unusual pair (i, j) (real unit indices) of layer k is: its rank among the layer's counted
    pairs by MI above the null, and its p- and q-value (Benjamini-Hochberg over those pairs):
    against the pooled shuffled-token null of the layer, or (a corpus run) the G-test."""
    index = {int(u): n for n, u in enumerate(analysis.dims)}
    a, b = sorted((index[i], index[j]))
    counted = counted_pairs(analysis, k)
    score = _scores(analysis, k)
    if not counted[a, b]:
        return "a pair with a degenerate unit"
    rank = 1 + int((score[counted] > score[a, b]).sum())
    text = f"rank {rank:,} of {int(counted.sum()):,} pairs by MI above its null"
    tested = layer_p_values(analysis, k)
    if tested is None:
        return text
    p, how = tested
    q = stats.fdr(p)
    at = int(counted.ravel()[: a * counted.shape[1] + b].sum())  # the pair's place among the counted ones
    return f"{text}; {_p_text('p', p[at])}, {_p_text('q', q[at])} ({how})"


def layer_p_values(analysis: Analysis, k: int) -> tuple[np.ndarray, str] | None:
    """p-values of layer k's counted pairs (in counted_pairs order) and how they were got: against
    the pooled shuffled-token null of the layer where it was measured, else (a corpus run) the
    G-test against independence at the first-order bias; None without either. A position null is
    a level to compare with, not a distribution: it is not pooled."""
    counted = counted_pairs(analysis, k)
    observed = analysis.mi[k][counted].astype(np.float64)
    if "null" in analysis.extra:
        return stats.pooled_null_p(observed, analysis.extra["null"][k][counted]), "pooled shuffled-token null"
    if "bias" not in analysis.extra:
        return None
    to_nats = np.log(2.0) if analysis.params.get("units", "bits") == "bits" else 1.0
    n = int(analysis.params.get("tokens", len(analysis.tokens)))
    level = analysis.extra["bias"][k][counted]  # the first-order MI under independence sets the degrees of freedom
    p = stats.g_test_p(observed * to_nats, level * to_nats, n)
    return p, "G-test against independence, tokens taken as independent"


def _p_text(name: str, value: float) -> str:
    """A p- or q-value for a title; below what its float64 tail can tell, an upper bound."""
    return f"{name} < 1e-15" if value < 1e-15 else f"{name} = {value:.2g}"


def save_figures(
    analysis: Analysis, out: str | os.PathLike, pair: tuple[int | str, int, int] | None = None, fmt: str = "png", dpi: int = 200
) -> list[Path]:
    """The analysis's figures in `out` (``fmt``: png, svg or pdf): every layer's MI distribution, the
    first and last layer (histogram + heatmap), and one pair of units (:func:`chosen_pair`). Each
    shows the null (measured, or a corpus run's first-order value under independence); degenerate
    units are left out of distributions and colour scales."""
    from . import plot

    out = Path(out)
    units = analysis.params.get("units", "bits")
    null, what = figure_null(analysis)
    degenerate = analysis.extra.get("degenerate")
    nulls = None if null is None else counted_values(analysis, null)
    pooled = None if nulls is None else np.concatenate(nulls)
    about = describe(analysis) + (f"; dashed/grey: {what}" if null is not None else "")
    figs = {
        "layers.png": plot.layers(
            analysis.mi,
            names=analysis.layer_names,
            units=units,
            null=pooled,
            title=f"pairwise MI by layer: {about}",
            degenerate=degenerate,
        )
    }
    for k in sorted({0, len(analysis.layer_names) - 1}):
        figs[f"layer_{safe_name(analysis.layer_names[k])}.png"] = plot.layer(
            analysis.mi,
            k,
            units=units,
            name=analysis.layer_names[k],
            null=None if nulls is None else nulls[k],
            dims=[int(d) for d in analysis.dims],
            title=about,
            degenerate=None if degenerate is None else degenerate[k],
        )
    if analysis.hidden_states is not None and analysis.mi.shape[-1] > 1:
        k, i, j, how = chosen_pair(analysis, pair)
        fig = plot.pair(
            analysis.hidden_states,
            k,
            i,
            j,
            bins=analysis.params.get("bins", DEFAULT_BINS) if isinstance(analysis.params.get("bins"), int) else DEFAULT_BINS,
            estimator=analysis.params.get("estimator", "equal_width"),
            units=units,
        )
        significance = pair_significance(analysis, k, i, j)
        heading = f"{analysis.layer_names[k]}, units {i} and {j} ({how}): {significance}. {describe(analysis)}"
        tokens = analysis.params.get("tokens", len(analysis.tokens))
        if analysis.hidden_states.shape[1] < tokens:  # a corpus run keeps a sample of its tokens
            index = {int(u): n for n, u in enumerate(analysis.dims)}
            value = float(analysis.mi[k, index[i], index[j]])
            heading += (
                f". MI over all {tokens:,} tokens: {value:.3f} {units}; the panels show the "
                f"{analysis.hidden_states.shape[1]:,} kept tokens"
            )
        fig.suptitle(plot.wrapped(heading), fontsize="medium")
        figs["pair.png"] = fig
    return write_figures({name[: -len(".png")]: fig for name, fig in figs.items()}, out, fmt, dpi)


def write_figures(figs: dict[str, Any], out: str | os.PathLike, fmt: str = "png", dpi: int = 200) -> list[Path]:
    """Each Figure as ``out/<name>.<fmt>``, written atomically (and listed in the folder's manifest
    of what pairmi wrote; the folder is created if needed); returns the paths."""
    Path(out).mkdir(parents=True, exist_ok=True)
    record(out, [f"{name}.{fmt}" for name in figs])
    paths = []
    for name, fig in figs.items():
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=dpi)
        path = Path(out) / f"{name}.{fmt}"
        atomic_write_bytes(path, buf.getvalue())
        paths.append(path)
    return paths
