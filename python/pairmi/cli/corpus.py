"""pairmi analyze --corpus / --python-docs: a corpus streamed, in process or on Dask."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .cluster import on_cluster
from .options import check_selection, extraction_of, figure_options
from .outdir import STATE_FILE, prepare_out, record_outputs
from .progress import TokenBar
from .report import print_degenerate, print_position, print_summary
from .stops import resumable
from .topk import check_topk_flags, run_topk


def run_corpus(args: argparse.Namespace) -> None:
    """--corpus / --python-docs: stream documents through the model into an Accumulator."""
    from ..corpus import analyze_corpus
    from ..edges import STREAM_ESTIMATORS

    check_topk_flags(args)
    if args.topk is not None:
        if args.corpus is not None and not args.corpus.is_file():
            raise ValueError(f"--corpus {args.corpus}: no such file")
        _quiet_transformers()
        return run_topk(args, _documents(args))
    if args.estimator not in STREAM_ESTIMATORS:
        raise ValueError(
            f"--corpus streams the estimators {STREAM_ESTIMATORS}; {args.estimator!r} has no statistics that add up over tokens"
        )
    if args.correction not in (None, "miller_madow"):
        raise ValueError("--corpus supports --correction miller_madow (the null is reported as the plug-in bias)")
    if args.keep_tokens < 0:
        raise ValueError("--keep-tokens must be >= 0")
    if args.bins == "auto" and args.max_tokens is None:
        raise ValueError("--bins auto in a corpus run needs --max-tokens: the bins grow with the planned token count")
    if args.corpus is not None and not args.corpus.is_file():
        raise ValueError(f"--corpus {args.corpus}: no such file")
    cluster = args.workers is not None or args.scheduler is not None
    if args.workers is not None and args.scheduler is not None:
        raise ValueError("pass --workers (a local cluster) or --scheduler (a running one), not both")
    if cluster and args.resume:
        raise ValueError("--resume applies to a single-process run: on a cluster a lost task is retried instead")
    if cluster:
        from ..dask import require_dask

        require_dask()  # a clear ImportError naming the extra, before any model loads
    prepare_out(args.out, args.resume, args.overwrite)
    check_selection(args.model, args.site, args.layers, args.dims)
    record_outputs(args.out, STATE_FILE)
    state = args.out / STATE_FILE  # without --resume, prepare_out refused or removed an earlier one
    _print_totals_size(args, None if cluster else state)
    docs = _documents(args)()
    _quiet_transformers()
    if cluster:
        run = _corpus_on_cluster(args, docs)
        return _report_corpus(args, run, state)
    bar = TokenBar(args.max_tokens)
    options = {"seed": args.seed, "threads": args.threads, "state_path": state, "save_every": args.save_every}
    run = resumable(
        state,
        "running totals",
        bar,
        lambda: analyze_corpus(args.model, docs, **_corpus_options(args), **options, resume=args.resume, progress=bar),
    )
    _report_corpus(args, run, state)


def _documents(args: argparse.Namespace) -> Callable[[], Iterator[str]]:
    """The corpus's documents, read afresh on each call (a top-k run reads them twice)."""
    from ..corpus import python_docstrings, read_documents

    if args.python_docs:
        return python_docstrings
    by = "line" if args.corpus_format == "lines" else "paragraph"
    return lambda: read_documents(args.corpus, by=by, encoding=args.encoding)


def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one bar: ours


def _corpus_options(args: argparse.Namespace) -> dict[str, Any]:
    """What the in-process and the Dask corpus runs both take from the flags."""
    return {
        "extraction": extraction_of(args),
        "estimator": args.estimator,
        "bins": args.bins,
        "correction": args.correction,
        "units": args.units,
        "dims": args.dims,
        "calibration_tokens": args.calibration_tokens,
        "keep_tokens": args.keep_tokens,
        "window_lags": args.position_lags,
    }


def _print_totals_size(args: argparse.Namespace, state: Path | None) -> None:
    """The running totals' size (in memory, and the scratch state file), when the model's
    configuration tells the layers and units: said before the model loads."""
    from .._state import totals_shapes
    from ..models import site_shape
    from ..settings import auto_bins

    count, units = site_shape(args.model, args.site)
    if count is None or units is None:
        return
    layers = count if args.layers is None else len(args.layers)
    d = units if args.dims is None else np.unique(np.arange(units)[args.dims] % units).size
    bins = auto_bins(args.max_tokens) if args.bins == "auto" else args.bins
    size = sum(8 * int(np.prod(shape)) for shape, _ in totals_shapes(args.estimator, layers, d, None, bins).values())
    lags = len(args.position_lags or ())
    size += lags * sum(8 * int(np.prod(shape)) for shape, _ in totals_shapes(args.estimator, layers, d, d, bins).values())
    where = f", saved to {state} every {args.save_every:g} s and on a stop (removed at the end)" if state else ""
    print(f"running totals: {layers} layers x {d:,} units, {size / 2**30:.2f} GiB in memory{where}", file=sys.stderr)


def _corpus_on_cluster(args: argparse.Namespace, docs: Any) -> Any:
    """The corpus run on a local Dask cluster (--workers) or a running one (--scheduler)."""
    from .. import dask as pdask

    kwargs = {**_corpus_options(args), "shard_tokens": args.shard_tokens, "threads": args.threads or 1}
    return on_cluster(args, lambda: pdask.analyze_corpus(args.model, docs, **kwargs))


def _report_corpus(args: argparse.Namespace, run: Any, state: Path) -> None:
    """Save a corpus run's analysis and figures, and print its summary."""
    from ..analysis import save
    from ..figures import save_figures

    path = save(run.analysis, args.out, args.save_states)
    written = [path, args.out / "summary.csv"] + (
        [] if args.no_figures else save_figures(run.analysis, args.out, **figure_options(args))
    )
    state.unlink(missing_ok=True)
    print("wrote " + ", ".join(str(p) for p in written))
    print_summary(run.analysis)
    if "bias" in run.analysis.extra:
        iu = np.triu_indices(run.analysis.mi.shape[-1], k=1)
        bias = float(run.analysis.extra["bias"][(slice(None), *iu)].mean())
        what = "copula MI" if args.estimator == "gaussian_copula" else "plug-in bias"
        print(
            f"   {what} under independence at {run.tokens:,} tokens (first order), mean over layers and pairs: "
            f"{bias:.4f} {args.units}"
        )
    print_position(run.analysis)
    print_degenerate(run.analysis)
    print(
        f"time: model forward {run.seconds_model:.1f} s, MI accumulation {run.seconds_mi:.1f} s "
        f"({run.tokens:,} tokens{f', resumed after {run.resumed_from:,}' if run.resumed_from else ''})"
    )
