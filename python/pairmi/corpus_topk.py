"""Every neuron's strongest partners over a corpus: the model runs twice over the same tokens
(:func:`pairmi.topk_stream` reads its stream twice), the units of all its layers side by side.

A second forward pass is chosen over caching activations: MiniLM's 9,216 MLP neurons over 10^5
tokens would be 1.8 GB of float16 on disk, GPT-2's 36,864 over 10^8 tokens 7.4 TB, and a cache in
float16 would round the values the edges bin (so the exact MI would be of other numbers).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._files import atomic_file
from ._written import record
from .extract import iter_hidden_states
from .extraction import Extraction, as_extraction
from .models import model_name, resolve_model
from .topk_stream import StreamTopK, topk_stream

TOPK_CSV = "topk.csv"
TOPK_NPZ = "topk.npz"


@dataclass
class CorpusTopK:
    """What :func:`topk_corpus` found: the result over the flat units, and which layer and unit each is."""

    result: StreamTopK
    layer_names: list[str]
    units_per_layer: int
    settings: dict[str, Any]

    def unit_of(self, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(layer, unit) of flat unit indices."""
        return np.divmod(np.asarray(flat), self.units_per_layer)

    def rows(self) -> dict[str, np.ndarray]:
        """One row per unit and partner: layer_a, unit_a, layer_b, unit_b, rank, mi_bits (or nats), null, q, screen."""
        t = self.result.table()
        la, ua = self.unit_of(t["unit"])
        lb, ub = self.unit_of(t["partner"])
        u = self.result.units
        return {
            "layer_a": la,
            "unit_a": ua,
            "layer_b": lb,
            "unit_b": ub,
            "rank": t["rank"],
            f"mi_{u}": t["mi"],
            f"null_{u}": t["null"],
            "q": t["q"],
            f"screen_{u}": t["screen"],
        }

    def save(self, folder: str | os.PathLike) -> list[Path]:
        """topk.csv (one row per unit and partner) and topk.npz (the result's arrays, the layer
        names and the run's settings) into folder."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        record(folder, [TOPK_CSV, TOPK_NPZ])
        rows = self.rows()
        with atomic_file(folder / TOPK_CSV) as fh:
            text = _csv_text(rows)
            fh.write(text.encode())
        self.result.save(
            folder / TOPK_NPZ, extra={"layer_names": self.layer_names, "units_per_layer": self.units_per_layer, **self.settings}
        )
        return [folder / TOPK_CSV, folder / TOPK_NPZ]


def side_by_side(values: np.ndarray) -> np.ndarray:
    """A batch's activations (layers, tokens, units) as one chunk (tokens, layers x units), layer-major."""
    layers, n, d = values.shape
    return np.ascontiguousarray(np.moveaxis(values, 0, 1)).reshape(n, layers * d)


def _csv_text(rows: dict[str, np.ndarray]) -> str:
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(rows)
    floats = {k for k, v in rows.items() if v.dtype.kind == "f"}
    for k in range(len(next(iter(rows.values())))):
        w.writerow([f"{rows[c][k]:.6g}" if c in floats else int(rows[c][k]) for c in rows])
    return buf.getvalue()


def topk_corpus(
    model: Any,
    documents: Callable[[], Iterable[str]] | list[str],
    n_partners: int = 16,
    *,
    extraction: Extraction | None = None,
    across_layers: bool = True,
    estimator: str = "equal_frequency",
    bins: int | None = None,
    correction: str | None = None,
    units: str = "bits",
    candidates: int | None = None,
    calibration_tokens: int = 10_000,
    screen_tokens: int | None = None,
    sample_tokens: int = 10_000,
    threads: int | None = None,
    state_path: str | os.PathLike | None = None,
    save_every: float = 300.0,
    resume: bool = False,
    progress: Callable[[int, int | None], None] | None = None,
    **options: Any,
) -> CorpusTopK:
    """Each unit's ``n_partners`` strongest partners, in any layer, by exact binned MI over a corpus.

    Parameters
    ----------
    model
        As in :func:`pairmi.hidden_states`.
    documents : callable or list of str
        Read twice: a list, or a callable returning a fresh iterable (e.g.
        ``pairmi.corpus.python_docstrings``).
    n_partners, estimator, bins, correction, units, candidates, threads
        As in :func:`pairmi.topk_stream`.
    extraction : Extraction, optional
        Site, layers, windows, batches, device, ``max_tokens``; or those options as keywords.
    across_layers : bool
        Partners in any layer (default), or only in the unit's own layer.
    calibration_tokens : int
        First tokens that fix the edges, the screen's maps and the degenerate units.
    screen_tokens : int, optional
        Screen on the first ``screen_tokens`` tokens only (the first pass of the model stops
        there), count the chosen pairs over all (``screen_samples`` of :func:`pairmi.topk_stream`).
    sample_tokens : int
        Tokens of the uniform sample whose binned MI also nominates candidates (``sample_size``
        of :func:`pairmi.topk_stream`; 0: none).
    state_path, save_every, resume, progress
        As in :func:`pairmi.topk_stream`; a resumed run skips the windows already read without
        running the model on them.

    Returns
    -------
    CorpusTopK
    """
    ex = as_extraction(extraction, options)
    if isinstance(documents, Iterator) or not (callable(documents) or isinstance(documents, (list, tuple))):
        raise TypeError("documents are read twice: pass a list of texts or a callable that returns a fresh iterable")
    model, tokenizer = resolve_model(model, ex.tokenizer)
    ex = ex.replace(tokenizer=tokenizer)
    texts = documents if callable(documents) else (lambda: documents)
    seen: dict[str, Any] = {}  # the layer names and units per layer, from the first batch

    def source(skip: int = 0, samples: int = 0) -> Iterator[np.ndarray]:
        """The corpus's batches as (tokens, layers x units) chunks, after ``skip`` batches of ``samples`` tokens."""
        left = None if ex.max_tokens is None else ex.max_tokens - samples
        if left is not None and left < 1:
            return
        part = ex.replace(max_tokens=left)
        for batch in iter_hidden_states(model, texts(), part, skip_windows=skip * ex.batch_size):
            seen.setdefault("names", batch.layer_names)
            seen.setdefault("units", batch.values.shape[2])
            yield side_by_side(batch.values)

    probe = next(source(), None)  # the layout, before the state's settings are fixed
    if probe is None:
        raise ValueError("the corpus gave no tokens")
    settings = {"model": model_name(model), **ex.params()}
    result = topk_stream(
        source,
        n_partners,
        estimator=estimator,
        bins=bins,
        correction=correction,
        units=units,
        candidates=candidates,
        calibration=calibration_tokens,
        screen_samples=screen_tokens,
        sample_size=sample_tokens,
        layers=[seen["units"]] * len(seen["names"]),
        across_layers=across_layers,
        threads=threads,
        progress=progress,
        state_path=state_path,
        save_every=save_every,
        resume=resume,
        context=json.loads(json.dumps(settings, default=str)),
    )
    return CorpusTopK(result, list(seen["names"]), int(seen["units"]), {**settings, "across_layers": across_layers})
