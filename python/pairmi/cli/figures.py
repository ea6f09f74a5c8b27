"""pairmi plot and pairmi lesson: figures without a model."""

from __future__ import annotations

import argparse

import numpy as np

from .options import figure_options
from .outdir import check_out


def cmd_plot(args: argparse.Namespace) -> None:
    from ..analysis import load
    from ..figures import save_figures

    analysis = load(args.results)
    out = args.out or (args.results if args.results.is_dir() else args.results.parent)
    out.mkdir(parents=True, exist_ok=True)
    print("wrote " + ", ".join(str(p) for p in save_figures(analysis, out, **figure_options(args))))


def cmd_explore(args: argparse.Namespace) -> None:
    """pairmi explore RUN_DIR: one self-contained HTML file of a saved analysis."""
    from .._written import record
    from ..analysis import load
    from ..explorer import explore, topk_file

    run = args.results if topk_file(args.results) is not None else load(args.results)
    folder = args.results if args.results.is_dir() else args.results.parent
    out = args.out or folder / "explorer.html"
    if out.parent.resolve() == folder.resolve():
        record(folder, [out.name])  # a run's own file: --overwrite replaces it
    path = explore(run, out)
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB): open it in a browser, offline")


def cmd_lesson(args: argparse.Namespace) -> None:
    from .. import plot
    from ..compare import bias_curve, compare
    from ..figures import write_figures

    if args.bins == "auto" or args.bins > args.samples:
        raise ValueError(f"--bins must be a number of bins up to --samples ({args.samples})")
    check_out(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    x = rng.normal(size=args.samples)
    y = x + rng.normal(size=args.samples)
    result = compare(x, y, bins=args.bins, gaussian=True, seed=args.seed, threads=args.threads)
    print(f"x ~ N(0, 1), y = x + N(0, 1): rho^2 = 1/2, so the true MI is -1/2 log2(1 - 1/2) = 0.5 bits\n{result}")
    curve = bias_curve(1 / np.sqrt(2), draws=args.draws, bins=args.bins, seed=args.seed, threads=args.threads)
    figures = {
        "marginals": plot.marginals(x, y, bins=args.bins),
        "pair": plot.pair(np.stack([x, y], axis=1), 0, 0, 1, bins=args.bins, overlay=True, names=("x", "y")),
        "bias": plot.bias(curve),
    }
    written = write_figures(figures, args.out, args.format)
    big = curve.sizes[-1]
    print(
        f"at {big:,} samples (mean of {args.draws} draws): "
        + ", ".join(f"{name} {curve.mean[name][-1] - curve.truth:+.3f}" for name in curve.mean)
        + " bits from the truth"
    )
    print("wrote " + ", ".join(str(p) for p in written))
