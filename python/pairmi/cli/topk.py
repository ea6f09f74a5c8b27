"""pairmi analyze --corpus/--python-docs --topk N: every unit's strongest partners, at neuron scale."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

from .cluster import on_cluster
from .options import check_selection, extraction_of
from .outdir import STATE_FILE, prepare_out, record_outputs
from .progress import TokenBar
from .stops import resumable


def check_topk_flags(args: argparse.Namespace) -> None:
    """The flags --topk takes and refuses, before any model loads."""
    if args.topk is None:
        for flag, value in (
            ("--all-layers", args.all_layers),
            ("--candidates", args.candidates),
            ("--screen-tokens", args.screen_tokens),
        ):
            if value:
                raise ValueError(f"{flag} applies to --topk (every unit's strongest partners), which was not given")
        return
    if args.estimator not in ("equal_width", "equal_frequency"):
        raise ValueError(f"--topk counts binned MI exactly: --estimator equal_width or equal_frequency, not {args.estimator}")
    if args.correction not in (None, "miller_madow"):
        raise ValueError("--topk supports --correction miller_madow")
    if args.position_lags:
        raise ValueError("--topk does not stream the position null yet: leave out --position-lags")
    if (args.workers is not None or args.scheduler is not None) and args.resume:
        raise ValueError("--resume applies to a single-process run: on a cluster a lost task is retried instead")
    if args.workers is not None and args.scheduler is not None:
        raise ValueError("pass --workers (a local cluster) or --scheduler (a running one), not both")
    if args.bins == "auto":
        raise ValueError("--topk needs a fixed --bins (the edges are fixed before the counts)")
    if args.screen_tokens is not None and (args.workers is not None or args.scheduler is not None):
        raise ValueError("--screen-tokens runs in one process: on a cluster every shard is screened")
    if args.screen_tokens is not None and args.screen_tokens < args.calibration_tokens:
        raise ValueError(
            f"--screen-tokens ({args.screen_tokens}) must be at least --calibration-tokens ({args.calibration_tokens})"
        )
    if args.sample_tokens < 0:
        raise ValueError(f"--sample-tokens must be >= 0 (0: no token sample), got {args.sample_tokens}")
    if args.candidates is not None and args.candidates < args.topk:
        raise ValueError(f"--candidates ({args.candidates}) must be at least --topk ({args.topk})")
    if args.dims is not None:
        raise ValueError("--topk pairs every unit of the site: leave out --dims (or use --layers)")


def run_topk(args: argparse.Namespace, docs: Any) -> None:
    """Both passes of the model over the corpus, then topk.csv and topk.npz in --out."""
    from ..corpus_topk import topk_corpus

    prepare_out(args.out, args.resume, args.overwrite)
    check_selection(args.model, args.site, args.layers, None)
    record_outputs(args.out, STATE_FILE)
    state = args.out / STATE_FILE
    _print_plan(args)
    if args.workers is not None or args.scheduler is not None:
        run = _on_cluster(args, docs)
        return _finish(args, run, state)
    first = args.max_tokens if args.screen_tokens is None else min(args.screen_tokens, args.max_tokens or args.screen_tokens)
    bar = TokenBar(None if args.max_tokens is None else first + args.max_tokens)
    options = {
        **_topk_options(args),
        "screen_tokens": args.screen_tokens,
        "threads": args.threads,
        "state_path": state,
        "save_every": args.save_every,
        "resume": args.resume,
    }
    run = resumable(state, "the run's state", bar, lambda: topk_corpus(args.model, docs, args.topk, **options, progress=bar))
    _finish(args, run, state)


def _topk_options(args: argparse.Namespace) -> dict[str, Any]:
    """What the in-process and the Dask top-k runs both take from the flags."""
    return {
        "extraction": extraction_of(args),
        "across_layers": args.all_layers,
        "estimator": args.estimator,
        "bins": args.bins,
        "correction": args.correction,
        "units": args.units,
        "candidates": args.candidates,
        "calibration_tokens": args.calibration_tokens,
        "sample_tokens": args.sample_tokens,
    }


def _finish(args: argparse.Namespace, run: Any, state: Any) -> None:
    written = run.save(args.out)
    state.unlink(missing_ok=True)
    print("wrote " + ", ".join(str(p) for p in written))
    _print_result(run, args)


def _on_cluster(args: argparse.Namespace, docs: Any) -> Any:
    """Both passes on a local Dask cluster (--workers) or a running one (--scheduler)."""
    from ..dask import require_dask

    require_dask()
    from ..dask import topk_corpus

    kwargs = {**_topk_options(args), "shard_tokens": args.shard_tokens, "threads": args.threads or 1}
    return on_cluster(args, lambda: topk_corpus(args.model, docs(), args.topk, **kwargs))


def _print_plan(args: argparse.Namespace) -> None:
    """The memory of each pass, when the model's configuration tells the layers and units."""
    from ..models import site_shape

    count, units = site_shape(args.model, args.site)
    if count is None or units is None:
        return
    layers = count if args.layers is None else len(args.layers)
    d = layers * units
    m = args.candidates or max(4 * args.topk, args.topk + 32)
    bins = args.bins
    screen = 8 * (2 * d) ** 2 * 1.5  # float64 sums and one float32 product of a chunk
    counts = d * min(m, d - 1) * bins * bins * 8
    where = "in any layer" if args.all_layers else "in its own layer"
    print(
        f"top-{args.topk} partners {where} of {layers} layers x {units:,} units = {d:,} units: the model runs twice "
        f"over the same tokens; pass 1 screens every pair ({screen / 2**30:.1f} GiB), pass 2 counts at most "
        f"{m} candidates a unit exactly (at most {counts / 2**30:.1f} GiB)",
        file=sys.stderr,
    )


def _print_result(run: Any, args: argparse.Namespace) -> None:
    r = run.result
    rows = run.rows()
    u = r.units
    order = np.argsort(-rows[f"mi_{u}"], kind="stable")
    a_first = (rows["layer_a"] * run.units_per_layer + rows["unit_a"]) < (rows["layer_b"] * run.units_per_layer + rows["unit_b"])
    order = order[a_first[order]][:5]  # each pair once
    print(f"strongest pairs ({r.n_samples:,} tokens, {len(r.pairs):,} pairs counted exactly):")
    for k in order:
        la, ua, lb, ub = (int(rows[c][k]) for c in ("layer_a", "unit_a", "layer_b", "unit_b"))
        print(
            f"   {run.layer_names[la]} unit {ua} - {run.layer_names[lb]} unit {ub}: {rows[f'mi_{u}'][k]:.4f} {u} "
            f"(null {rows[f'null_{u}'][k]:.4f}, q {rows['q'][k]:.2g})"
        )
    close = int((r.margin < 0).sum())
    print(f"   degenerate units left out: {int(r.degenerate.sum())}; units whose screen cut ran close (margin < 0): {close}")
    s = r.seconds
    print(
        f"time: model forward (both passes) {s['source']:.1f} s, screen {s['screen']:.1f} s, choosing pairs "
        f"{s['select']:.1f} s, exact counts {s['count']:.1f} s"
    )
