"""An analysis of hidden states: all-pairs MI of every layer, saved as ``mi.npz``, ``summary.csv``
and figures, each written atomically (temporary file, then rename)."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import tiles
from ._core import __version__
from ._dispatch import dims_index
from ._files import atomic_file, atomic_write_bytes
from ._npz import read_npz
from ._written import record
from .api import mi_layers
from .edges import fit_edges
from .nulls import null_mi, position_null
from .settings import BINNED_ESTIMATORS, DEFAULT_BINS, DEFAULT_K, options_estimator, recorded
from .stats import check_lags, degenerate_units, pair_mask

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclass
class Analysis:
    """All-pairs MI of every layer of some hidden states, with what made it.

    Attributes
    ----------
    mi : ndarray of float32, shape (n_layers, d, d)
        MI of every pair of the selected units, diagonal = entropies, in ``params['units']``.
    layer_names, tokens : list of str
    dims : ndarray of int
        Units (columns of the hidden states) that the matrices index.
    params : dict
        Model, estimator, bins, units and every other setting; ``pairmi_version`` too.
    hidden_states : ndarray of float32, shape (n_layers, n_tokens, n_units), optional
        The analysed activations (all units), kept so figures can be redrawn without the model.
    """

    mi: np.ndarray
    layer_names: list[str]
    tokens: list[str]
    dims: np.ndarray
    params: dict[str, Any]
    hidden_states: np.ndarray | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)


def analyze(
    hs: Any,
    *,
    dims: Any = None,
    threads: int | None = None,
    null: bool = False,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = True,
    on_layer: Callable[[int, int, bool], None] | None = None,
    params: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
    window_lags: int | Sequence[int] | None = None,
    **options: Any,
) -> Analysis:
    """All-pairs MI of every layer of `hs`, one layer at a time.

    Parameters
    ----------
    hs : HiddenStates
        From :func:`pairmi.hidden_states`.
    dims, threads
        As in :func:`pairmi.mi_layers`.
    null : bool
        Also score every pair once on shuffled tokens (each unit's tokens permuted on their own,
        seeded; every estimator, the binned ones without their correction), saved as
        ``extra['null']`` (n_layers, d, d) and drawn beside the observed values: the MI that
        independence gives at this many tokens.
    checkpoint_dir : path, optional
        Each finished layer is saved there (atomically), with a key of the inputs (a digest of the
        states) and the settings. Layers an earlier run left there are loaded, not recomputed, when
        it had the same key, so an interrupted run resumes; otherwise they are removed.
    resume : bool
        False: remove what ``checkpoint_dir`` holds and start over.
    on_layer : callable(layer, n_layers, resumed), optional
        Called after each layer (for progress bars).
    progress : callable(done, total), optional
        Called between tiles of pairs inside each layer (as :func:`pairmi.mi_layers`).
    params : dict, optional
        Extra settings to record (model, text, ...).
    window_lags : int or sequence of int, optional
        Also the position null (:func:`pairmi.position_null`, binned estimators and the copula):
        each pair with one unit a whole window (or several) later, at the same positions, binned as
        the observed MI is; saved as ``extra['position_null']``, the figures' null, and in
        summary.csv. Needs more windows (``hs.meta['window_tokens']``) than the largest lag.
    **options
        Estimator settings passed to :func:`pairmi.mi_layers` (estimator, bins, k, correction,
        n_permutations, seed, units).
    """
    values = np.asarray(hs.values)
    n_layers, _, d = values.shape
    dim_idx = np.arange(d) if dims is None else np.arange(d)[dims_index(dims, d)]  # checked, non-negative
    if dim_idx.size < 2:
        raise ValueError(f"dims selects {dim_idx.size} unit(s) of {d}: pairwise MI needs at least 2")
    record = recorded(options)
    ckpt = None
    if checkpoint_dir is not None:
        key = {"states": tiles.fingerprint(values), "dims": dim_idx.tolist(), "null": null, **record}
        ckpt = open_checkpoint(Path(checkpoint_dir), key, resume)
    mis, nulls = [], []
    for k in range(n_layers):
        path = ckpt / f"layer{k:04d}.npz" if ckpt is not None else None
        layer = _load_checkpoint(path, (dim_idx.size, dim_idx.size), null)
        resumed = layer is not None
        if layer is None:
            layer = _analyze_layer(values[k][:, dim_idx], threads, null, options, progress)
            if path is not None:
                buf = io.BytesIO()
                np.savez(buf, **dict[str, Any](layer))
                atomic_write_bytes(path, buf.getvalue())
        mis.append(layer["mi"])
        if null:
            nulls.append(layer["null"])
        if on_layer is not None:
            on_layer(k, n_layers, resumed)
    degenerate = degenerate_units(values[:, :, dim_idx])
    settings = {
        **record,
        "site": hs.site,
        "model": hs.model_name,
        "pairmi_version": __version__,
        **hs.meta,
        **(params or {}),
    }
    extra = {"null": np.stack(nulls)} if null else {}
    extra["degenerate"] = degenerate
    est = options_estimator(options)
    if est.name in BINNED_ESTIMATORS:  # the edges the MI was binned with (the explorer bins tokens by them)
        extra["edges"] = fit_edges(values[:, :, dim_idx], est, threads=threads)
    if window_lags is not None:
        windows = hs.meta.get("window_tokens")
        extra["position_null"] = _position_null(
            values[:, :, dim_idx], windows, window_lags, est, extra.get("edges"), options, threads
        )
        settings["window_lags"] = list(check_lags(window_lags))
    return Analysis(np.stack(mis), list(hs.layer_names), list(hs.tokens), dim_idx, settings, values, extra)


def _position_null(
    values: np.ndarray,
    windows: Sequence[int] | None,
    window_lags: Any,
    est: Any,
    edges: np.ndarray | None,
    options: dict[str, Any],
    threads: int | None,
) -> np.ndarray:
    """pairmi.position_null of the selected units, binned with the edges the observed MI used."""
    lags = check_lags(window_lags)
    if windows is None or len(windows) <= max(lags):
        count = 0 if windows is None else len(windows)
        raise ValueError(
            f"the position null pairs windows {max(lags)} apart: these states have {count} window(s); "
            "pass longer text (or a smaller max_length), or no window lags"
        )
    if est.name not in BINNED_ESTIMATORS + ("gaussian_copula",):
        raise ValueError(f"the position null takes the binned estimators and the copula, not {est.name!r}")
    units = options.get("units", "bits")
    return position_null(values, windows, lags=lags, estimator=est, edges=edges, units=units, threads=threads)


CHECKPOINT_KEY = "key.json"


def open_checkpoint(folder: Path, key: dict[str, Any], resume: bool = True) -> Path:
    """A checkpoint folder for a run with this key (inputs and settings): the layers an earlier
    run left there stay only when resuming a run with the same key."""
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(key, sort_keys=True, default=str)
    keyfile = folder / CHECKPOINT_KEY
    if not (resume and keyfile.is_file() and keyfile.read_text() == text):
        for f in folder.glob("layer*.npz"):
            f.unlink()
        atomic_write_bytes(keyfile, text.encode())
    return folder


def checkpoint_layers(folder: Path) -> int:
    """How many finished layers a checkpoint folder holds."""
    return len(list(folder.glob("layer*.npz"))) if folder.is_dir() else 0


def remove_checkpoint(folder: Path) -> None:
    """A checkpoint folder and what it holds (after the result is saved)."""
    if folder.is_dir():
        for f in [*folder.glob("layer*.npz"), folder / CHECKPOINT_KEY]:
            f.unlink(missing_ok=True)
        if not any(folder.iterdir()):
            folder.rmdir()


def _load_checkpoint(path: Path | None, shape: tuple[int, int], null: bool) -> dict[str, np.ndarray] | None:
    """A finished layer saved by an earlier run, or None if there is none or it is unreadable (a
    damaged file is reported on stderr and removed, and the layer is computed again)."""
    if path is None or not path.is_file():
        return None
    try:
        layer = read_npz(path)
        names = {"mi", "null"} if null else {"mi"}
        if set(layer) != names or any(layer[k].shape != shape for k in names):
            raise ValueError(f"holds {sorted(layer)} instead of {sorted(names)} of shape {shape}")
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        print(f"pairmi: the checkpoint {path} is damaged ({exc}); computing that layer again", file=sys.stderr)
        path.unlink(missing_ok=True)
        return None
    return layer


def _analyze_layer(
    x: np.ndarray, threads: int | None, null: bool, options: dict[str, Any], progress: Callable[[int, int], None] | None = None
) -> dict[str, np.ndarray]:
    # Result files keep float32 (7 significant digits): half the size of the float64 default.
    layer = {"mi": mi_layers(x[None], threads=threads, progress=progress, **{"dtype": np.float32, **options})[0]}
    if null:
        est = options_estimator(options)
        if est.name in BINNED_ESTIMATORS:  # the null of the plug-in MI: the estimator and its bins, no correction
            keep = {k: v for k, v in options.items() if k in ("units", "seed")}
            keep.update(estimator=est.name, bins=getattr(est, "bins", None))
            layer["null"] = null_mi(x, n_permutations=1, threads=threads, **keep)[0]
        else:  # KSG and the copula: the same estimator on tokens shuffled per unit
            rng = np.random.default_rng(options.get("seed", 0))
            shuffled = rng.permuted(x, axis=0)
            layer["null"] = mi_layers(shuffled[None], threads=threads, **{"dtype": np.float32, **options})[0]
    return layer


STATES = ("none", "sample", "all")
SAMPLE_TOKENS = 2000  # enough tokens for a pair's scatter and histogram


def save(analysis: Analysis, out: str | os.PathLike, states: str = "sample", seed: int = 0) -> Path:
    """Write ``mi.npz`` and ``summary.csv`` into the folder `out` (created if needed).

    `states`: the hidden states kept for redrawing figures: ``'all'``, ``'none'``, or
    ``'sample'`` (default): all if there are at most 2,000 tokens, else 2,000 of them drawn at
    random (seeded; their positions saved as ``states_index``). The GPT-2 MLP run's states
    alone were 402 MB.
    """
    if states not in STATES:
        raise ValueError(f"states must be one of {STATES}, got {states!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, Any] = {
        "mi": analysis.mi.astype(np.float32, copy=False),
        "layer_names": np.array(analysis.layer_names),
        "tokens": np.array(analysis.tokens),
        "dims": np.asarray(analysis.dims),
        "params": np.array(json.dumps(analysis.params, sort_keys=True)),
        **analysis.extra,
    }
    kept = analysis.hidden_states if states != "none" else None
    if kept is not None and states == "sample" and kept.shape[1] > SAMPLE_TOKENS:
        index = np.sort(np.random.default_rng(seed).choice(kept.shape[1], SAMPLE_TOKENS, replace=False))
        kept = kept[:, index]
        arrays["states_index"] = index
    if kept is not None:
        arrays["hidden_states"] = kept.astype(np.float32, copy=False)
    # Uncompressed, streamed to the file: compressing the 453 MB of a GPT-2 MLP run's float32 MI took
    # half a minute after the progress bar had finished, for little gain on float data.
    record(out, ["mi.npz", "summary.csv"])  # listed first: --overwrite replaces what pairmi wrote, only that
    with atomic_file(out / "mi.npz") as fh:
        np.savez(fh, **arrays)
    atomic_write_bytes(out / "summary.csv", summary_csv(analysis).encode())
    return out / "mi.npz"


def load(path: str | os.PathLike) -> Analysis:
    """Read an analysis saved by :func:`save` (a folder or its ``mi.npz``)."""
    path = Path(path)
    if path.is_dir():
        path = path / "mi.npz"
    if not path.is_file():
        raise FileNotFoundError(f"no saved analysis at {path} (expected the mi.npz of `pairmi analyze`)")
    try:
        return _analysis_from(read_npz(path))
    except (OSError, ValueError, EOFError, KeyError, TypeError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        problem = f"missing array {exc}" if isinstance(exc, KeyError) else str(exc) or type(exc).__name__
        raise ValueError(f"{path} is not a readable pairmi analysis: {problem}") from None


def _analysis_from(z: dict[str, np.ndarray]) -> Analysis:
    """An Analysis from the arrays of an mi.npz, each checked for its type and shape."""
    mi, names, dims = z["mi"], z["layer_names"], z["dims"]
    if mi.ndim != 3 or mi.shape[1] != mi.shape[2] or mi.dtype.kind != "f":
        raise ValueError(f"'mi' must be a float (layers, d, d) array, got {mi.dtype} {mi.shape}")
    if names.shape != (mi.shape[0],) or names.dtype.kind != "U":
        raise ValueError(f"'layer_names' must hold {mi.shape[0]} strings, got {names.dtype} {names.shape}")
    if dims.shape != (mi.shape[1],) or dims.dtype.kind not in "iu" or (dims.size and dims.min() < 0):
        raise ValueError(f"'dims' must hold {mi.shape[1]} non-negative unit indices, got {dims.dtype} {dims.shape}")
    params = json.loads(str(z["params"]))
    if not isinstance(params, dict):
        raise ValueError("'params' must be a JSON object")
    states = z.get("hidden_states")
    if states is not None and (
        states.ndim != 3
        or states.shape[0] != mi.shape[0]
        or states.dtype.kind != "f"
        or (dims.size and dims.max() >= states.shape[2])
    ):
        raise ValueError(
            f"'hidden_states' must be a float ({mi.shape[0]}, tokens, units) array covering dims, "
            f"got {states.dtype} {states.shape}"
        )
    known = {"mi", "layer_names", "tokens", "dims", "params", "hidden_states"}
    extra = {k: v for k, v in z.items() if k not in known}
    null = extra.get("null")
    if null is not None and null.shape != mi.shape:
        raise ValueError(f"'null' must have the shape of 'mi' {mi.shape}, got {null.shape}")
    degenerate = extra.get("degenerate")
    if degenerate is not None and (degenerate.shape != mi.shape[:2] or degenerate.dtype != bool):
        raise ValueError(f"'degenerate' must be a bool {mi.shape[:2]} array, got {degenerate.dtype} {degenerate.shape}")
    position = extra.get("position_null")
    if position is not None and (position.shape != mi.shape or position.dtype.kind != "f"):
        raise ValueError(
            f"'position_null' must be a float array of the shape of 'mi' {mi.shape}, got {position.dtype} {position.shape}"
        )
    edges = extra.get("edges")
    if edges is not None:  # the binned run's edges, one row a unit: sorted and finite, as the core takes them
        if edges.ndim != 3 or edges.shape[:2] != mi.shape[:2] or edges.shape[2] < 3 or edges.dtype.kind != "f":
            raise ValueError(
                f"'edges' must be a float (layers, d, bins + 1) array for 'mi' {mi.shape}, got {edges.dtype} {edges.shape}"
            )
        if not np.isfinite(edges).all() or (np.diff(edges, axis=2) < 0).any():
            raise ValueError("'edges' must be finite and sorted along each unit")
    return Analysis(
        mi=mi,
        layer_names=[str(s) for s in names],
        tokens=[str(s) for s in z["tokens"]],
        dims=dims,
        params=params,
        hidden_states=states,
        extra=extra,
    )


def counted_pairs(analysis: Analysis, layer: int) -> np.ndarray:
    """(d, d) bool: the pairs i < j of layer `layer` that summaries, "highest" pairs and colour
    scales count: both units non-degenerate."""
    degenerate = analysis.extra.get("degenerate")
    return pair_mask(analysis.mi.shape[-1], None if degenerate is None else degenerate[layer])


def counted_values(analysis: Analysis, values: np.ndarray) -> list[np.ndarray]:
    """Each layer's entries of `values` (layers, d, d: the MI, a null) at its counted pairs."""
    return [v[counted_pairs(analysis, k)] for k, v in enumerate(values)]


def summary_rows(analysis: Analysis) -> list[dict[str, Any]]:
    """Per layer: mean, std, min, quantiles and max of the MI of all pairs of non-degenerate units
    (off-diagonal), and how many units were degenerate."""
    rows = []
    for k, (name, layer_mi) in enumerate(zip(analysis.layer_names, counted_values(analysis, analysis.mi))):
        vals = layer_mi.astype(np.float64)
        pairs = vals.size
        if vals.size == 0:
            vals = np.full(1, np.nan)
        row: dict[str, Any] = {"layer": k, "name": name, "pairs": pairs, "mean": vals.mean(), "std": vals.std()}
        degenerate = analysis.extra.get("degenerate")
        if degenerate is not None:
            row["degenerate_units"] = int(degenerate[k].sum())
            row["degenerate_unit_ids"] = " ".join(str(int(analysis.dims[u])) for u in np.flatnonzero(degenerate[k]))
        row["min"] = vals.min()
        row.update({f"q{int(q * 100):02d}": np.quantile(vals, q) for q in QUANTILES})
        row["max"] = vals.max()
        if "position_null" in analysis.extra:  # a corpus run's MI from position alone, and what goes beyond it
            null = analysis.extra["position_null"][k][counted_pairs(analysis, k)].astype(np.float64)
            row["position_null_mean"] = float(null.mean()) if pairs else np.nan
            row["beyond_position_mean"] = float((vals - null).mean()) if pairs else np.nan
        rows.append(row)
    return rows


def summary_csv(analysis: Analysis) -> str:
    rows = summary_rows(analysis)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()})
    return buf.getvalue()


def describe(analysis: Analysis) -> str:
    """One line for figure titles: model, site, estimator with its bins or k, tokens, correction."""
    p = analysis.params
    estimator = p.get("estimator", "equal_width")
    detail = {"ksg": f"k = {p.get('k', DEFAULT_K)}", "gaussian_copula": "ranks"}.get(
        estimator, f"{p.get('bins', DEFAULT_BINS)} bins"
    )
    tokens = p.get("tokens", len(analysis.tokens))
    parts = [str(p.get("model", "")), str(p.get("site", "")), f"{estimator} ({detail})", f"{tokens:,} tokens"]
    if p.get("correction"):
        parts.append(f"{p['correction']} correction")
    return ", ".join(x for x in parts if x)
