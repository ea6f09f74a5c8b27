"""One self-contained HTML file to look inside a run: every layer's MI matrix, each pair's joint
distribution and the kept tokens behind it, each unit's partners. No server, no network: the
script and the data are inline (arrays gzip-compressed, base64), so the file opens from disk.

The page's contract for tests and scripts: ``document.body.dataset.ready == "1"`` once drawn;
``window.pairmiExplorer.select(layer, i, j)`` opens a pair as a click does (unit ids as in the
run); the pair view's MI (bits, 4 decimals) is in the element with ``data-pair-mi``; the listed
tokens are elements with ``data-token``.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from . import stats
from ._files import atomic_write_bytes
from .analysis import Analysis, counted_pairs, describe, load
from .figures import figure_null
from .settings import BINNED_ESTIMATORS, DEFAULT_BINS

# Strongest pairs a layer listed in the table (by MI above the null).
TABLE_PAIRS = 200
# Kept tokens a pair view draws from (the run's sample, or the first of the tokens).
KEPT_TOKENS = 2_000
# Tokens of context each side of a listed token (runs in memory keep every token's neighbours).
CONTEXT = 8
# Bins of the pair view's joint histogram for the copula and KSG (the binned runs use theirs).
DISPLAY_BINS = 10


def explore(analysis: Analysis | str | os.PathLike, path: str | os.PathLike) -> Path:
    """Write the explorer of an analysis (or of a run folder / its ``mi.npz``) to `path`.

    Examples
    --------
    >>> import pairmi
    >>> pairmi.explore("demo/equal_width", "explorer.html")  # doctest: +SKIP
    """
    if not isinstance(analysis, Analysis):
        analysis = load(analysis)
    page = resources.files("pairmi").joinpath("explorer.html").read_text(encoding="utf-8")
    data = json.dumps(payload(analysis), separators=(",", ":"))
    html = page.replace("/*PAIRMI_DATA*/null", data.replace("</", "<\\/"))
    out = Path(path)
    atomic_write_bytes(out, html.encode("utf-8"))
    return out


def payload(analysis: Analysis) -> dict[str, Any]:
    """What the page draws, JSON-serialisable: per layer the upper triangle of the MI (float32),
    of the null and of -log10 q (uint8, tenths), the strongest pairs, and the kept tokens' bin codes
    and scaled values of every unit."""
    layers, d, _ = analysis.mi.shape
    upper = np.triu_indices(d, 1)
    null, null_kind = figure_null(analysis)
    units = analysis.params.get("units", "bits")
    degenerate = analysis.extra.get("degenerate", np.zeros((layers, d), dtype=bool))
    data: dict[str, Any] = {
        "title": describe(analysis),
        "units": units,
        "nullKind": null_kind,
        "layerNames": list(analysis.layer_names),
        "unitIds": [int(u) for u in analysis.dims],
        "d": d,
        "mi": [_packed(analysis.mi[k][upper].astype(np.float32)) for k in range(layers)],
        "null": None if null is None else [_packed(null[k][upper].astype(np.float32)) for k in range(layers)],
        "degenerate": [np.flatnonzero(degenerate[k]).tolist() for k in range(layers)],
    }
    q = _q_values(analysis, null)
    data["q"] = None if q is None else [_packed(_tenths(q[k][upper])) for k in range(layers)]
    data["top"] = [_strongest(analysis, null, q, k) for k in range(layers)]
    data["kept"] = _kept(analysis)
    return data


def _packed(values: np.ndarray) -> str:
    """An array's bytes, gzip-compressed, base64 (the page reads them with DecompressionStream)."""
    return base64.b64encode(gzip.compress(np.ascontiguousarray(values).tobytes(), compresslevel=6, mtime=0)).decode()


def _tenths(q: np.ndarray) -> np.ndarray:
    """-log10 q in tenths, 0..254 (255: no q, e.g. a degenerate unit's pair)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.rint(-10.0 * np.log10(np.maximum(q, 1e-300)))
    return np.where(np.isfinite(q), np.clip(t, 0, 254), 255).astype(np.uint8)


def _q_values(analysis: Analysis, null: np.ndarray | None) -> np.ndarray | None:
    """Each counted pair's q-value (BH over the layer's counted pairs) against the layer's pooled
    null (a measured null), or the G-test against independence (a corpus run); NaN elsewhere."""
    if null is None:
        return None
    layers, d, _ = analysis.mi.shape
    out = np.full((layers, d, d), np.nan)
    to_nats = np.log(2.0) if analysis.params.get("units", "bits") == "bits" else 1.0
    n = int(analysis.params.get("tokens", len(analysis.tokens)))
    for k in range(layers):
        counted = counted_pairs(analysis, k)
        observed = analysis.mi[k][counted].astype(np.float64)
        if "null" in analysis.extra and "position_null" not in analysis.extra:
            p = stats.pooled_null_p(observed, null[k][counted])
        else:
            level = analysis.extra.get("bias", null)
            p = stats.g_test_p(observed * to_nats, level[k][counted] * to_nats, n)
        q = np.full((d, d), np.nan)
        q[counted] = stats.fdr(p)
        out[k] = np.fmin(q, q.T)
    return out


def _strongest(analysis: Analysis, null: np.ndarray | None, q: np.ndarray | None, k: int) -> list[list[float | None]]:
    """The layer's strongest counted pairs by MI above the null: [i, j, mi, null, q] (unit ids)."""
    counted = counted_pairs(analysis, k)
    mi = analysis.mi[k].astype(np.float64)
    above = mi - (0.0 if null is None else null[k])
    rows, cols = np.nonzero(counted)
    order = np.argsort(-above[rows, cols], kind="stable")[:TABLE_PAIRS]
    ids = analysis.dims
    return [
        [
            int(ids[rows[o]]),
            int(ids[cols[o]]),
            round(float(mi[rows[o], cols[o]]), 6),
            None if null is None else round(float(null[k][rows[o], cols[o]]), 6),
            None if q is None else float(f"{q[k][rows[o], cols[o]]:.3g}"),
        ]
        for o in order
    ]


def _kept(analysis: Analysis) -> dict[str, Any] | None:
    """The kept tokens' values, one byte each, per layer (n, d) uint8: scaled linearly over each
    unit's range for equal-width runs, else the token's rank among the kept ones (256 levels); the
    page bins them for the pair's joint histogram (the run's bins; DISPLAY_BINS equal-frequency
    ones for the copula and KSG) and draws them as the scatter. With each token's text and context."""
    states = analysis.hidden_states
    if states is None or states.shape[1] < 2:
        return None
    values = np.asarray(states[:, :KEPT_TOKENS][:, :, analysis.dims], dtype=np.float64)
    n = values.shape[1]
    estimator = analysis.params.get("estimator", "equal_width")
    binned = estimator in BINNED_ESTIMATORS and analysis.params.get("bins") != "auto"
    bins = int(analysis.params.get("bins", DEFAULT_BINS)) if binned else DISPLAY_BINS
    linear = estimator == "equal_width"
    levels = []
    for layer in values:
        if linear:
            lo, hi = layer.min(axis=0), layer.max(axis=0)
            level = np.floor((layer - lo) / np.where(hi > lo, hi - lo, 1.0) * 256)
        else:
            ranks = layer.argsort(axis=0, kind="stable").argsort(axis=0, kind="stable")
            level = np.floor(ranks * 256 / n)
        levels.append(_packed(np.clip(level, 0, 255).astype(np.uint8)))
    tokens = list(analysis.tokens)
    index = analysis.extra.get("states_index")
    positions = np.arange(n) if index is None else np.asarray(index)[:n]
    in_order = len(tokens) > n or index is not None or "corpus" not in analysis.params  # tokens in text order
    kept_tokens, context = [], []
    for k, pos in enumerate(positions):
        pos = int(pos)
        if in_order and pos < len(tokens):
            kept_tokens.append(tokens[pos])
            context.append([" ".join(tokens[max(0, pos - CONTEXT) : pos]), " ".join(tokens[pos + 1 : pos + 1 + CONTEXT])])
        else:
            kept_tokens.append(tokens[k] if k < len(tokens) else "")
            context.append(["", ""])
    return {"n": n, "bins": bins, "levels": levels, "tokens": kept_tokens, "context": context}
