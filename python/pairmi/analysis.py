"""An analysis of hidden states: all-pairs MI of every layer, saved as ``mi.npz``, ``summary.csv``
and figures, each written atomically (temporary file, then rename)."""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ._core import __version__
from .api import _dims_index, mi_layers, null_mi

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
    on_layer: Callable[[int, int, bool], None] | None = None,
    params: dict[str, Any] | None = None,
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
        Also score every pair once on shuffled tokens (binned estimators), saved as ``extra['null']``
        (n_layers, d, d) and drawn beside the observed values: the MI that independence gives.
    checkpoint_dir : path, optional
        Each finished layer is saved there (atomically); layers already there are loaded, not
        recomputed, so an interrupted run resumes. Use one folder per set of inputs and settings.
    on_layer : callable(layer, n_layers, resumed), optional
        Called after each layer (for progress bars).
    params : dict, optional
        Extra settings to record (model, text, ...).
    **options
        Estimator settings passed to :func:`pairmi.mi_layers` (estimator, bins, k, correction,
        n_permutations, seed, units).
    """
    values = np.asarray(hs.values)
    n_layers, _, d = values.shape
    dim_idx = np.arange(d) if dims is None else np.arange(d)[_dims_index(dims, d)]  # checked, non-negative
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if ckpt is not None:
        ckpt.mkdir(parents=True, exist_ok=True)
    mis, nulls = [], []
    for k in range(n_layers):
        path = ckpt / f"layer{k:04d}.npz" if ckpt is not None else None
        resumed = path is not None and path.is_file()
        if resumed:
            with np.load(path) as z:
                layer = {name: z[name] for name in z.files}
        else:
            layer = _analyze_layer(values[k][:, dim_idx], threads, null, options)
            if path is not None:
                buf = io.BytesIO()
                np.savez(buf, **layer)
                atomic_write_bytes(path, buf.getvalue())
        mis.append(layer["mi"])
        if null:
            nulls.append(layer["null"])
        if on_layer is not None:
            on_layer(k, n_layers, resumed)
    settings = {"estimator": "equal_width", "bins": 15, "units": "bits", **options, "site": hs.site,
                "model": hs.model_name, "pairmi_version": __version__, **hs.meta, **(params or {})}
    extra = {"null": np.stack(nulls)} if null else {}
    return Analysis(np.stack(mis), list(hs.layer_names), list(hs.tokens), dim_idx, settings, values, extra)


def _analyze_layer(x: np.ndarray, threads: int | None, null: bool, options: dict[str, Any]) -> dict[str, np.ndarray]:
    layer = {"mi": mi_layers(x[None], threads=threads, **options)[0]}
    if null:
        keep = {k: v for k, v in options.items() if k in ("estimator", "bins", "units", "seed")}
        layer["null"] = null_mi(x, n_permutations=1, threads=threads, **keep)[0]
    return layer


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename: a killed run leaves no truncated file."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def save_npy(path: Path, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, array)
    atomic_write_bytes(path, buf.getvalue())


def save(analysis: Analysis, out: str | os.PathLike) -> Path:
    """Write ``mi.npz`` and ``summary.csv`` into the folder `out` (created if needed)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    arrays = {
        "mi": analysis.mi.astype(np.float32, copy=False),
        "layer_names": np.array(analysis.layer_names),
        "tokens": np.array(analysis.tokens),
        "dims": np.asarray(analysis.dims),
        "params": np.array(json.dumps(analysis.params, sort_keys=True)),
        **analysis.extra,
    }
    if analysis.hidden_states is not None:
        arrays["hidden_states"] = analysis.hidden_states.astype(np.float32, copy=False)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(out / "mi.npz", buf.getvalue())
    atomic_write_bytes(out / "summary.csv", summary_csv(analysis).encode())
    return out / "mi.npz"


def load(path: str | os.PathLike) -> Analysis:
    """Read an analysis saved by :func:`save` (a folder or its ``mi.npz``)."""
    path = Path(path)
    if path.is_dir():
        path = path / "mi.npz"
    if not path.is_file():
        raise FileNotFoundError(f"no saved analysis at {path} (expected the mi.npz of `pairmi analyze`)")
    with np.load(path, allow_pickle=False) as z:
        known = {"mi", "layer_names", "tokens", "dims", "params", "hidden_states"}
        return Analysis(
            mi=z["mi"],
            layer_names=[str(s) for s in z["layer_names"]],
            tokens=[str(s) for s in z["tokens"]],
            dims=z["dims"],
            params=json.loads(str(z["params"])),
            hidden_states=z["hidden_states"] if "hidden_states" in z.files else None,
            extra={k: z[k] for k in z.files if k not in known},
        )


def summary_rows(analysis: Analysis) -> list[dict[str, Any]]:
    """Per layer: mean, std, min, quantiles and max of the MI of all pairs (off-diagonal)."""
    rows = []
    iu = np.triu_indices(analysis.mi.shape[-1], k=1)
    for k, name in enumerate(analysis.layer_names):
        vals = analysis.mi[k][iu].astype(np.float64)
        if vals.size == 0:
            vals = np.full(1, np.nan)
        row: dict[str, Any] = {"layer": k, "name": name, "pairs": iu[0].size, "mean": vals.mean(), "std": vals.std()}
        row["min"] = vals.min()
        row.update({f"q{int(q * 100):02d}": np.quantile(vals, q) for q in QUANTILES})
        row["max"] = vals.max()
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


def save_figures(analysis: Analysis, out: str | os.PathLike) -> list[Path]:
    """The course's figures as PNG in `out`: every layer's MI distribution, the first and last
    layer (histogram + heatmap), and the pair of units with the highest MI in the last layer."""
    from . import plot

    out = Path(out)
    units = analysis.params.get("units", "bits")
    null = analysis.extra.get("null")
    iu = np.triu_indices(analysis.mi.shape[-1], k=1)
    pooled = None if null is None else null[(slice(None), *iu)]
    figs = {"layers.png": plot.layers(analysis.mi, names=analysis.layer_names, units=units, null=pooled)}
    for k in sorted({0, len(analysis.layer_names) - 1}):
        figs[f"layer_{analysis.layer_names[k]}.png"] = plot.layer(
            analysis.mi, k, units=units, name=analysis.layer_names[k], null=None if null is None else null[k][iu]
        )
    if analysis.hidden_states is not None and analysis.mi.shape[-1] > 1:
        last = analysis.mi[-1].astype(np.float64)
        np.fill_diagonal(last, -np.inf)
        a, b = np.unravel_index(np.argmax(last), last.shape)
        i, j = int(analysis.dims[a]), int(analysis.dims[b])
        figs["pair.png"] = plot.pair(
            analysis.hidden_states,
            len(analysis.layer_names) - 1,
            i,
            j,
            bins=analysis.params.get("bins", 15) if isinstance(analysis.params.get("bins"), int) else 15,
            estimator=analysis.params.get("estimator", "equal_width"),
            units=units,
        )
    paths = []
    for name, fig in figs.items():
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90)
        atomic_write_bytes(out / name, buf.getvalue())
        paths.append(out / name)
    return paths
