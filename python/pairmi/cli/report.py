"""What a command prints about an analysis: per-layer summaries, the null, degenerate units."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..settings import BINNED_ESTIMATORS


def print_summary(analysis: Any) -> None:
    from ..analysis import summary_rows

    units = analysis.params.get("units", "bits")
    est = analysis.params.get("estimator")
    if est in BINNED_ESTIMATORS:
        detail = f"{analysis.params.get('bins')} bins"
    else:
        detail = f"k={analysis.params.get('k', 3)}" if est == "ksg" else "ranks"
    tokens = analysis.params.get("tokens", len(analysis.tokens))  # a corpus run keeps only a sample of them
    print(f"{'layer':>6} {'mean':>8} {'median':>8} {'q95':>8}   ({units}, {est}, {detail}, {tokens:,} tokens)")
    for row in summary_rows(analysis):
        print(f"{row['name']:>6} {row['mean']:8.3f} {row['q50']:8.3f} {row['q95']:8.3f}")


def print_degenerate(analysis: Any) -> None:
    degenerate = analysis.extra.get("degenerate")
    if degenerate is None or not degenerate.any():
        return
    parts = []
    for name, row in zip(analysis.layer_names, degenerate):
        units = [int(analysis.dims[u]) for u in np.flatnonzero(row)]
        if units:
            parts.append(f"{name}: {', '.join(map(str, units[:8]))}{', ...' if len(units) > 8 else ''}")
    print(
        "   degenerate units (constant, or under 1e-6 of their layer's typical spread; left out of the summaries, "
        f"figures and pair choice): {'; '.join(parts)}"
    )


def print_null(analysis: Any) -> None:
    """The shuffled-token null beside the observed values, and how the layers compare with it
    (pairs of degenerate units left out)."""
    from ..analysis import counted_values

    null = analysis.extra.get("null")
    if null is None:
        return
    pooled = np.concatenate(counted_values(analysis, null))
    q95 = float(np.quantile(pooled, 0.95))
    observed = counted_values(analysis, analysis.mi)
    units = analysis.params.get("units", "bits")
    binned = analysis.params.get("estimator") in BINNED_ESTIMATORS
    print(
        f"   null (shuffled tokens), mean over layers and pairs: {pooled.mean():.3f} {units} (95th percentile "
        f"{q95:.3f}): {'the plug-in bias' if binned else 'what independence gives'} at {len(analysis.tokens):,} tokens"
    )
    above = sum(int((o > q95).sum()) for o in observed)
    total = sum(o.size for o in observed)
    print(f"   {above:,} of {total:,} pairs ({above / max(total, 1):.1%}) exceed the null's 95th percentile (5% would by chance)")
    within = [name for name, o in zip(analysis.layer_names, observed) if o.mean() <= q95]
    if len(within) == len(observed):
        print("   every layer's mean MI is within the null: at this many tokens these values are not evidence of dependence")
    elif within:
        print(f"   layers {', '.join(within)} have mean MI within the null; the others exceed its 95th percentile")


def print_position(analysis: Any) -> None:
    """The position null's mean and the MI beyond it (pairs of degenerate units left out)."""
    from ..analysis import counted_values

    null = analysis.extra.get("position_null")
    if null is None:
        return
    nulls = np.concatenate(counted_values(analysis, null))
    observed = np.concatenate(counted_values(analysis, analysis.mi)).astype(np.float64)
    lags = ", ".join(map(str, analysis.params.get("window_lags", [])))
    units = analysis.params.get("units", "bits")
    print(
        f"   MI from position alone (units {lags} window(s) apart), mean over layers and pairs: {nulls.mean():.4f} "
        f"{units}; beyond it: {(observed - nulls).mean():.4f}"
    )
