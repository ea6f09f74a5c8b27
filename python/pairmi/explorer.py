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

from . import _core, stats
from ._files import atomic_write_bytes
from .analysis import Analysis, counted_pairs, describe, load
from .figures import figure_null, layer_p_values
from .settings import BINNED_ESTIMATORS, DEFAULT_BINS

TOPK_FILE = "topk.npz"  # what a top-k run writes (pairmi.corpus_topk)
# The partners page's float arrays: (its name, the name in topk.npz).
FLOAT_FIELDS = (("mi", "mi"), ("nul", "null"), ("q", "q"), ("screen", "screen"), ("margin", "margin"))
# Strongest pairs a layer listed in the table (by MI above the null).
TABLE_PAIRS = 200
# Kept tokens a pair view draws from (the run's sample, or the first of the tokens).
KEPT_TOKENS = 2_000
# Tokens of context each side of a listed token (runs in memory keep every token's neighbours).
CONTEXT = 8
# Bins of the pair view's joint histogram for the copula and KSG (the binned runs use theirs).
DISPLAY_BINS = 10


def explore(analysis: Analysis | str | os.PathLike, path: str | os.PathLike) -> Path:
    """Write the explorer of an analysis (or of a run folder / its ``mi.npz``) to `path`; of a
    top-k run (a folder holding ``topk.npz`` and no ``mi.npz``, or that file): every unit's
    partners across layers.

    Examples
    --------
    >>> import pairmi
    >>> pairmi.explore("demo/equal_width", "explorer.html")  # doctest: +SKIP
    """
    topk = None if isinstance(analysis, Analysis) else topk_file(analysis)
    if topk is not None:
        return _write_page("topk_explorer.html", topk_payload(topk), path)
    if not isinstance(analysis, Analysis):
        analysis = load(analysis)
    return _write_page("explorer.html", payload(analysis), path)


def topk_file(run: str | os.PathLike) -> Path | None:
    """The topk.npz a run path names (the file, or a folder with it and no mi.npz); None otherwise."""
    run = Path(run)
    if run.is_file() and run.name == TOPK_FILE:
        return run
    if run.is_dir() and (run / TOPK_FILE).is_file() and not (run / "mi.npz").is_file():
        return run / TOPK_FILE
    return None


def _write_page(template: str, data: dict[str, Any], path: str | os.PathLike) -> Path:
    """The page with its data inline (no "</" in the JSON, so no early end of the script)."""
    page = resources.files("pairmi").joinpath(template).read_text(encoding="utf-8")
    text = json.dumps(data, separators=(",", ":"))
    html = page.replace("/*PAIRMI_DATA*/null", text.replace("</", "<\\/"))
    out = Path(path)
    atomic_write_bytes(out, html.encode("utf-8"))
    return out


def topk_payload(path: Path) -> dict[str, Any]:
    """What the partners page draws from a topk.npz (pairmi.topk_corpus or StreamTopK.save):
    each unit's partners (flat indices, layer-major), their MI, null, q and screen scores
    (float32, gzip, base64), units counted and the screen's margin."""
    with np.load(path) as f:
        saved = {k: f[k] for k in f.files}
    header = json.loads(str(saved["header"]))
    d, k = saved["indices"].shape
    units = int(header.get("units_per_layer", d))
    names = header.get("layer_names") or ["units"]
    where = f"{d:,} units in {len(names)} layer(s)" if len(names) > 1 else f"{d:,} units"
    return {
        "title": f"top {k} partners of {where}, {header['estimator']} ({header['bins']} bins), "
        f"{header['n_samples']:,} tokens, {len(saved['pairs']):,} pairs counted exactly",
        "units": header["units"],
        "layerNames": names,
        "unitsPerLayer": units,
        "k": k,
        "indices": _packed(saved["indices"].astype("<i4")),
        "counted": _packed(saved["counted"].astype("<i4")),
        "degenerate": np.flatnonzero(saved["degenerate"]).tolist(),
        **{
            key: _packed(saved[name].astype("<f4"))
            for key, name in (("mi", "mi"), ("nul", "null"), ("q", "q"), ("screen", "screen"))
        },
        "margin": _packed(saved["margin"].astype("<f4")),
    }


def payload(analysis: Analysis) -> dict[str, Any]:
    """What the page draws, JSON-serialisable: per layer the upper triangle of the MI and of the
    null (to 4 decimals), of -log10 q (uint8, tenths), the strongest pairs (exact), and the kept
    tokens' bin codes of every unit."""
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
        "mi": [_shown(analysis.mi[k][upper]) for k in range(layers)],
        "null": None if null is None else [_shown(null[k][upper], NULL_SHOWN) for k in range(layers)],
        "degenerate": [np.flatnonzero(degenerate[k]).tolist() for k in range(layers)],
    }
    q = _q_values(analysis)
    data["q"] = None if q is None else [_packed(_tenths(q[k][upper])) for k in range(layers)]
    data["top"] = [_strongest(analysis, null, q, k) for k in range(layers)]
    data["kept"] = _kept(analysis)
    return data


def _packed(values: np.ndarray) -> str:
    """An array's bytes, gzip-compressed, base64 (the page reads them with DecompressionStream)."""
    return base64.b64encode(gzip.compress(np.ascontiguousarray(values).tobytes(), compresslevel=9, mtime=0)).decode()


def _shown(values: np.ndarray, scale: int = 10_000) -> dict[str, Any]:
    """Values as the page shows them, to log10(scale) decimals (4: the MI; 3: the null): whole
    steps of 1 / scale above the smallest, as uint16 with their low and high bytes in two planes
    (which gzip packs to about a third of float32); the few beyond 65,534 steps above it, or not
    finite, exact aside (``over``)."""
    exact = np.asarray(values, dtype=np.float64)
    steps = np.rint(exact * scale)
    finite = np.isfinite(steps)
    base = int(steps[finite].min()) if finite.any() else 0
    rel = np.where(finite, steps - base, 0.0)
    over = ~finite | (rel > 65534)
    rel[over] = 65535
    planes = rel.astype("<u2").view(np.uint8).reshape(-1, 2).T
    aside = [None if not np.isfinite(v) else float(v) for v in exact[over]]
    return {"base": base, "scale": scale, "data": _packed(planes), "over": [np.flatnonzero(over).tolist(), aside]}


# The null is shown to 3 decimals: it is a level to compare with, and half the size at 4.
NULL_SHOWN = 1_000


def _tenths(q: np.ndarray) -> np.ndarray:
    """-log10 q in tenths, 0..254 (255: no q, e.g. a degenerate unit's pair)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.rint(-10.0 * np.log10(np.maximum(q, 1e-300)))
    return np.where(np.isfinite(q), np.clip(t, 0, 254), 255).astype(np.uint8)


def _q_values(analysis: Analysis) -> np.ndarray | None:
    """Each counted pair's q-value (BH over the layer's counted pairs, the p-values of
    pairmi.figures.layer_p_values); NaN elsewhere; None where the run has no p-values."""
    layers, d, _ = analysis.mi.shape
    out = np.full((layers, d, d), np.nan)
    for k in range(layers):
        tested = layer_p_values(analysis, k)
        if tested is None:
            return None
        counted = counted_pairs(analysis, k)
        q = np.full((d, d), np.nan)
        q[counted] = stats.fdr(tested[0])
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
    """The kept tokens' bin codes, per layer (n, d): at the run's edges where it saved them (binned
    runs: ``extra['edges']``), else equal-width over each unit's kept range or equal-frequency by
    rank among the kept tokens (DISPLAY_BINS of them for the copula and KSG); each layer after the
    first as its change from the one before (mod bins), two codes a byte where 16 bins or fewer. The page draws the pair's
    joint histogram from them and the kept tokens as a scatter of their bins. With each token's
    text and context."""
    states = analysis.hidden_states
    if states is None or states.shape[1] < 2:
        return None
    values = np.asarray(states[:, :KEPT_TOKENS][:, :, analysis.dims], dtype=np.float64)
    n = values.shape[1]
    estimator = analysis.params.get("estimator", "equal_width")
    binned = estimator in BINNED_ESTIMATORS and analysis.params.get("bins") != "auto"
    bins = int(analysis.params.get("bins", DEFAULT_BINS)) if binned else DISPLAY_BINS
    edges = analysis.extra.get("edges")
    if edges is not None:  # the run's own edges, binned as the core binned the MI
        bins = edges.shape[2] - 1
        run_codes = np.swapaxes(
            _core.bin_codes(np.ascontiguousarray(values), np.ascontiguousarray(edges, dtype=np.float64), 1), 1, 2
        )
    codes, previous = [], None
    for k, layer in enumerate(values):
        if edges is not None:
            c = run_codes[k]
        elif estimator == "equal_width":
            lo, hi = layer.min(axis=0), layer.max(axis=0)
            c = np.floor((layer - lo) / np.where(hi > lo, hi - lo, 1.0) * bins)
        else:
            ranks = layer.argsort(axis=0, kind="stable").argsort(axis=0, kind="stable")
            c = np.floor(ranks * bins / n)
        c = np.clip(c, 0, bins - 1).astype(np.uint8).ravel()
        # Each layer as its change from the one before, mod bins: a residual stream's tokens keep
        # their bins from layer to layer, and gzip packs the zeros (a fifth off on GPT-2).
        c, previous = (c if previous is None else (c.astype(np.int16) - previous) % bins).astype(np.uint8), c
        if bins <= 16:  # two codes a byte: the first in the low half
            c = np.append(c, np.uint8(0)) if c.size % 2 else c
            c = c[0::2] | (c[1::2] << 4)
        codes.append(_packed(c))
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
    return {"n": n, "bins": bins, "codes": codes, "tokens": kept_tokens, "context": context}
