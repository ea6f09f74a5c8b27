"""MI over a corpus: documents streamed through a model, batch by batch, into an Accumulator.

Memory stays bounded whatever the corpus size: one forward batch of activations, the calibration
sample that fixes the edges, the accumulator's totals and a fixed-size random sample of tokens
(kept for the figures). A run can save its state every few minutes and resume bit-identically.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import _arrays, stats
from ._core import __version__
from ._files import atomic_file
from ._npz import read_npz
from .analysis import Analysis, degenerate_units
from .extract import StateBatch, iter_hidden_states
from .extraction import Extraction, as_extraction
from .models import model_name, resolve_model
from .position import WindowLags
from .settings import BINNED_ESTIMATORS, Estimator, as_estimator, auto_bins, check_seed
from .stream import Accumulator, fit_edges
from .texts import dataset_texts, python_docstrings, read_documents

STATE_FORMAT = "pairmi.corpus-run"
STATE_VERSION = 1


@dataclass
class CorpusRun:
    """What :func:`analyze_corpus` measured: the analysis, its accumulator and where time went."""

    analysis: Analysis
    accumulator: Accumulator
    seconds_model: float
    seconds_mi: float
    tokens: int
    resumed_from: int = 0  # tokens the run resumed after


@dataclass(frozen=True)
class CorpusPlan:
    """One corpus run, checked once at the public door, and the steps both runners share (in one
    process, :func:`analyze_corpus`, and on Dask, :func:`pairmi.dask.analyze_corpus`): the edges
    fitted on the calibration batches, the accumulator, the saved settings and the finished analysis."""

    estimator: Estimator
    extraction: Extraction
    units: str
    dims: Any
    calibration_tokens: int
    keep_tokens: int
    model: str  # the model's name, as the saved settings record it
    window_lags: tuple[int, ...] = ()  # whole-window lags of the position null (none: no position null)

    def __post_init__(self) -> None:
        if getattr(self.estimator, "bins", None) == "auto":  # bins for the planned tokens, not the calibration's
            if self.extraction.max_tokens is None:
                raise ValueError("bins='auto' in a corpus run needs max_tokens: the bins grow with the planned token count")
            bins = auto_bins(self.extraction.max_tokens)
            object.__setattr__(self, "estimator", replace(self.estimator, bins=bins))  # type: ignore[call-arg]
        if self.calibration_tokens < 2:
            raise ValueError(f"calibration_tokens must be >= 2, got {self.calibration_tokens}")
        if self.keep_tokens < 0:
            raise ValueError(f"keep_tokens must be >= 0, got {self.keep_tokens}")
        Accumulator(self.estimator, units=self.units)  # the estimator's and units' checks, before any model runs
        if self.window_lags:
            object.__setattr__(self, "window_lags", stats.check_lags(self.window_lags))

    def settings(self) -> dict[str, Any]:
        """What a run records of its settings (and a resumed run must match)."""
        return {
            "estimator": self.estimator.name,
            "bins": getattr(self.estimator, "bins", None),
            "correction": getattr(self.estimator, "correction", None),
            "units": self.units,
            "dims": repr(self.dims),
            # batch_size among them: batches set where the copula's float sums round, so a resume keeps it
            **self.extraction.params(),
            "calibration_tokens": self.calibration_tokens,
            "keep_tokens": self.keep_tokens,
            "model": self.model,
            **({"window_lags": list(self.window_lags)} if self.window_lags else {}),
        }

    def edges(self, batches: list[StateBatch], threads: int | None) -> np.ndarray:
        """Edges (or the copula's knots, as many as the sample allows up to 1,000) fitted on the
        calibration batches' selected units."""
        values = select_units(np.concatenate([b.values for b in batches], axis=1), self.dims)
        return fit_edges(values, self.estimator, threads=threads)

    def accumulator_options(self, edges: np.ndarray, threads: int | None) -> dict[str, Any]:
        """Keyword arguments of the run's (or a shard's) accumulator: float32 results."""
        return {"estimator": self.estimator, "edges": edges, "units": self.units, "dtype": np.float32, "threads": threads}

    def finish(
        self,
        acc: Accumulator,
        names: list[str],
        tokens: list[str],
        kept: np.ndarray | None,
        units_all: int,
        params: dict[str, Any],
        lags: WindowLags | None = None,
    ) -> Analysis:
        """The analysis of a run's accumulator: its MI, the run's settings and ``params``, the kept
        tokens, what corpus_extra adds, and the position null of the window ``lags``."""
        mi = acc.result()  # (layers, d, d): chunks are always 3-d
        dim_idx = np.arange(units_all) if self.dims is None else np.arange(units_all)[self.dims]
        header = {**self.settings(), **params, "tokens": acc.n_samples, "pairmi_version": __version__, "corpus": True}
        extra = corpus_extra(acc, kept, dim_idx)
        if self.estimator.name in BINNED_ESTIMATORS:  # the calibration's edges: the explorer bins tokens by them
            extra["edges"] = acc.edges
        if lags is not None:
            extra["position_null"] = lags.null()  # float64: it sums a few small MIs
        return Analysis(mi, names, tokens, dim_idx, header, kept, extra)


def analyze_corpus(
    model: Any,
    documents: Iterable[str],
    *,
    extraction: Extraction | None = None,
    estimator: str | Estimator = "equal_width",
    bins: int | str | None = None,
    correction: str | None = None,
    units: str = "bits",
    dims: Any = None,
    calibration_tokens: int = 10_000,
    keep_tokens: int = 2_000,
    seed: int = 0,
    threads: int | None = None,
    state_path: str | os.PathLike | None = None,
    save_every: float = 300.0,
    resume: bool = False,
    progress: Callable[[int, int | None], None] | None = None,
    window_lags: int | tuple[int, ...] | None = None,
    **options: Any,
) -> CorpusRun:
    """All-pairs MI of a model's activations over a corpus, streamed.

    The first ``calibration_tokens`` tokens fix the edges (:func:`pairmi.fit_edges`; the copula's
    normal-score map); every token, those included, is then added to an :class:`Accumulator`. A
    random sample of ``keep_tokens`` tokens (reservoir sampling, seeded) is kept for the figures.
    With ``state_path`` the run's state (totals, position in the stream, the token sample) is
    saved there every ``save_every`` seconds, and on Ctrl-C; ``resume=True`` continues from it and
    ends bit-identical to an uninterrupted run (the documents must be the same).

    Parameters
    ----------
    model
        As in :func:`pairmi.hidden_states`.
    extraction : Extraction, optional
        How activations are taken (tokenizer, layers, site, windows, batches, device, dropped
        tokens, ``max_tokens``); or pass those options as keywords (``**options``).
    documents : iterable of str
        E.g. :func:`read_documents`, :func:`dataset_texts`, :func:`python_docstrings`.
    estimator, bins, correction, units, threads
        As in :class:`pairmi.Accumulator` (binned or Gaussian copula).
    dims : slice or sequence of int, optional
        Units to pair (the totals grow with their square).
    progress : callable(tokens_done, max_tokens), optional
        Called after every batch.
    window_lags : int or tuple of int, optional
        Also accumulate the position null (:func:`pairmi.position_null`): each pair's counts with
        one unit a whole window (or ``window_lags`` windows) after the other, at the same
        positions; ``analysis.extra['position_null']`` then holds each pair's MI from position
        alone, ``mi - position_null`` the MI beyond position. Each lag costs a totals array of
        d x d pairs (twice the run's own d (d - 1) / 2). Windows should not overlap (``stride``
        left at its default): positions are those of the kept tokens.

    Returns
    -------
    CorpusRun

    Examples
    --------
    >>> from pairmi.corpus import analyze_corpus, python_docstrings
    >>> run = analyze_corpus("minilm", python_docstrings(), max_tokens=20_000)  # doctest: +SKIP
    >>> run.analysis.mi.shape, run.seconds_mi < run.seconds_model  # doctest: +SKIP
    ((7, 384, 384), True)
    """
    est = as_estimator(estimator, bins=bins, correction=correction)
    ex = as_extraction(extraction, options)
    model, tokenizer = resolve_model(model, ex.tokenizer)
    lags = () if window_lags is None else stats.check_lags(window_lags)
    plan = CorpusPlan(est, ex, units, dims, calibration_tokens, keep_tokens, model_name(model), lags)
    check_seed(seed)
    _arrays.check_progress(progress)
    if isinstance(save_every, bool) or not isinstance(save_every, (int, float)) or not 0 <= save_every < float("inf"):
        raise ValueError(f"save_every must be a finite number of seconds >= 0, got {save_every!r}")
    acc: Accumulator | None = None  # made once the calibration sample has fixed the edges
    settings = {**plan.settings(), "seed": seed}
    run = _RunState(keep_tokens, seed, plan)
    if resume and state_path is not None and Path(state_path).is_file():
        acc = run.load(state_path, settings, threads)
    start = run.tokens
    left = None if ex.max_tokens is None else ex.max_tokens - run.tokens
    stream: Iterator[StateBatch] = (
        iter(())
        if left is not None and left < 1  # a resumed run that had read every token
        else iter_hidden_states(model, documents, ex.replace(tokenizer=tokenizer, max_tokens=left), skip_windows=run.windows)
    )
    seconds_model = seconds_mi = 0.0
    last_save = time.monotonic()
    pending: list[StateBatch] = []  # batches of the calibration sample, before the edges exist
    names: list[str] = run.layer_names
    try:
        while True:
            t0 = time.perf_counter()
            batch = next(stream, None)
            seconds_model += time.perf_counter() - t0
            if batch is None:
                break
            names = batch.layer_names
            t0 = time.perf_counter()
            if acc is None:
                pending.append(batch)
                if sum(len(b.tokens) for b in pending) >= calibration_tokens:
                    acc = run.calibrate(plan, pending, threads)
                    pending = []
            else:
                run.add(acc, batch, dims)
            seconds_mi += time.perf_counter() - t0
            if progress is not None:
                progress(run.tokens + sum(len(b.tokens) for b in pending), ex.max_tokens)
            if state_path is not None and acc is not None and time.monotonic() - last_save >= save_every:
                run.save(state_path, acc, settings, names)
                last_save = time.monotonic()
    except KeyboardInterrupt:
        if state_path is not None and acc is not None:
            run.save(state_path, acc, settings, names)
        raise
    if acc is None:  # a corpus shorter than the calibration sample: it is all calibration
        if sum(len(b.tokens) for b in pending) < 2:
            raise ValueError("the corpus gave fewer than 2 tokens: MI needs at least 2")
        t0 = time.perf_counter()
        acc = run.calibrate(plan, pending, threads)
        seconds_mi += time.perf_counter() - t0
    t0 = time.perf_counter()
    kept = run.sample_values()
    units_all = run.sample.shape[2] if run.sample is not None else acc.edges.shape[1]
    timing = {"seed": seed, "seconds_model": round(seconds_model, 3)}
    analysis = plan.finish(acc, names, run.sample_tokens(), kept, units_all, timing, run.lags)
    seconds_mi += time.perf_counter() - t0
    analysis.params["seconds_mi"] = round(seconds_mi, 3)
    return CorpusRun(analysis, acc, seconds_model, seconds_mi, acc.n_samples, resumed_from=start)


def corpus_extra(acc: Accumulator, kept: np.ndarray | None, dim_idx: np.ndarray) -> dict[str, np.ndarray]:
    """What a corpus run records beside its MI: each pair's value under independence at corpus
    size, to first order (``bias``: the null its figures draw), and the degenerate units found in
    the kept token sample as the in-memory analysis finds them (none without a sample)."""
    extra = {"bias": acc.bias()}
    layers = extra["bias"].shape[0]
    if kept is not None and kept.shape[1] >= 2:
        extra["degenerate"] = degenerate_units(kept[:, :, dim_idx])
    else:
        extra["degenerate"] = np.zeros((layers, dim_idx.size), dtype=bool)
    return extra


def select_units(values: np.ndarray, dims: Any) -> np.ndarray:
    return values if dims is None else np.ascontiguousarray(values[:, :, dims])


class _RunState:
    """Position in the token stream and the random token sample: what a resumed run needs besides
    the accumulator's totals."""

    def __init__(self, keep: int, seed: int, plan: CorpusPlan) -> None:
        self.keep, self.seed, self.plan = keep, seed, plan
        self.lags: WindowLags | None = None  # the position null's accumulators, made with the edges
        self.rng = np.random.default_rng(seed)
        self.windows = 0  # windows of the stream consumed into the accumulator
        self.tokens = 0  # tokens consumed (= the accumulator's samples)
        self.sample: np.ndarray | None = None  # (layers, keep, units), all units of the sites
        self.sample_ids: np.ndarray = np.zeros(0, dtype=np.int64)  # stream position of each kept token
        self.sample_tok: list[str] = []
        self.layer_names: list[str] = []

    def calibrate(self, plan: CorpusPlan, pending: list[StateBatch], threads: int | None) -> Accumulator:
        """The accumulator with edges fitted on the pending batches, which it then takes in."""
        edges = plan.edges(pending, threads)
        acc = Accumulator(**plan.accumulator_options(edges, threads))
        self.lags = self._lags(edges, threads)
        for b in pending:
            self.add(acc, b, plan.dims)
        return acc

    def _lags(self, edges: np.ndarray, threads: int | None) -> WindowLags | None:
        """The position null's accumulators (with the run's edges), if the plan has window lags."""
        if not self.plan.window_lags:
            return None
        options = {**self.plan.accumulator_options(edges, threads), "dtype": np.float64}  # small MIs, averaged
        return WindowLags(self.plan.window_lags, lambda **kw: Accumulator(**{**options, **kw}), edges)

    def add(self, acc: Accumulator, batch: StateBatch, dims: Any) -> None:
        values = select_units(batch.values, dims)
        acc.update(values)
        if self.lags is not None:
            self.lags.add(values, batch.window_tokens)
        self._sample(batch.values, batch.tokens)
        self.windows += batch.windows
        self.tokens += len(batch.tokens)

    def _sample(self, values: np.ndarray, tokens: list[str]) -> None:
        """Reservoir sampling (Algorithm R): token t of the stream replaces a random slot with
        probability keep / (t + 1); seeded, so a resumed run draws the same."""
        if self.keep == 0:
            return
        if self.sample is None:
            self.sample = np.zeros((values.shape[0], self.keep, values.shape[2]), dtype=np.float32)
            self.sample_ids = np.full(self.keep, -1, dtype=np.int64)
            self.sample_tok = [""] * self.keep
        first = self.tokens
        positions = first + np.arange(len(tokens))
        slots = np.where(positions < self.keep, positions, self.rng.integers(0, positions + 1))
        for k in np.flatnonzero(slots < self.keep):  # in stream order: a later token wins its slot
            self.sample[:, slots[k]] = values[:, k]
            self.sample_ids[slots[k]] = positions[k]
            self.sample_tok[slots[k]] = tokens[k]

    def sample_values(self) -> np.ndarray | None:
        if self.sample is None:
            return None
        order = np.argsort(self.sample_ids[self.sample_ids >= 0], kind="stable")
        return self.sample[:, self.sample_ids >= 0][:, order]

    def sample_tokens(self) -> list[str]:
        kept = [(i, t) for i, t in zip(self.sample_ids.tolist(), self.sample_tok) if i >= 0]
        return [t for _, t in sorted(kept)]

    def save(self, path: str | os.PathLike, acc: Accumulator, settings: dict[str, Any], names: list[str]) -> None:
        """The accumulator's state with this run's position, token sample and generator state."""
        acc_header, acc_arrays = acc._state()
        header = {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "settings": settings,
            "windows": self.windows,
            "tokens": self.tokens,
            "rng": self.rng.bit_generator.state,
            "layer_names": names,
            "sample_tokens": self.sample_tok,
            "accumulator": acc_header,
        }
        arrays: dict[str, Any] = {f"acc_{k}": v for k, v in acc_arrays.items()}
        if self.lags is not None:
            header["position"], lag_arrays = self.lags.state()
            arrays.update({f"pos_{k}": v for k, v in lag_arrays.items()})
        if self.sample is not None:
            arrays.update(sample=self.sample, sample_ids=self.sample_ids)
        with atomic_file(path) as fh:
            np.savez(fh, run=np.array(json.dumps(header)), **arrays)

    def load(self, path: str | os.PathLike, settings: dict[str, Any], threads: int | None) -> Accumulator:
        """The accumulator of a saved run, this object set to its position; ValueError if the file
        is not a run state, or the run had other settings."""
        path = Path(path)
        try:
            arrays = read_npz(path)
            header = json.loads(str(arrays.pop("run")))
            if header.get("format") != STATE_FORMAT or header.get("version") != STATE_VERSION:
                raise ValueError(
                    f"format {header.get('format')!r} version {header.get('version')!r}, not "
                    f"{STATE_FORMAT!r} version {STATE_VERSION}"
                )
            saved = header["settings"]
            acc = Accumulator._from_state(
                header["accumulator"], {k[4:]: v for k, v in arrays.items() if k.startswith("acc_")}, threads
            )
        except (OSError, ValueError, KeyError, TypeError, MemoryError) as exc:
            problem = f"missing {exc}" if isinstance(exc, KeyError) else str(exc) or type(exc).__name__
            raise ValueError(f"cannot resume from {path}: {problem}") from None
        now = json.loads(json.dumps(settings))  # as JSON would give them back
        if saved != now:
            changed = sorted(k for k in set(now) | set(saved) if saved.get(k) != now.get(k))
            raise ValueError(f"cannot resume from {path}: it was run with other settings ({', '.join(changed)})")
        self.windows, self.tokens = int(header["windows"]), int(header["tokens"])
        self.rng.bit_generator.state = header["rng"]
        self.layer_names = list(header["layer_names"])
        if "sample" in arrays:
            self.sample, self.sample_ids = arrays["sample"], arrays["sample_ids"]
            self.sample_tok = list(header["sample_tokens"])
        if acc.n_samples != self.tokens:
            raise ValueError(f"cannot resume from {path}: its totals hold {acc.n_samples} tokens, its position {self.tokens}")
        if self.plan.window_lags:
            self.lags = self._lags(acc.edges, threads)
            assert self.lags is not None
            try:
                self.lags.restore(header["position"], {k[4:]: v for k, v in arrays.items() if k.startswith("pos_")}, threads)
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"cannot resume from {path}: its position null: {exc}") from None
        print(f"pairmi: resuming after {self.tokens:,} tokens from {path}", file=sys.stderr)
        return acc


__all__ = ["CorpusPlan", "CorpusRun", "analyze_corpus", "dataset_texts", "python_docstrings", "read_documents"]
