"""From the flags to pairmi's objects: the estimator, the extraction, the figure options, checked
against the model's configuration before its weights load."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from ..settings import as_estimator


def check_selection(model: str, site: str, layers: list[int] | None, dims: Any) -> None:
    """--layers and --dims against the model's configuration, before its weights load."""
    from ..models import site_shape

    count, units = site_shape(model, site)
    if layers is not None and count is not None and (not layers or any(not -count <= k < count for k in layers)):
        raise ValueError(
            f"--layers {','.join(map(str, layers))}: {model} has {count} {site} layers (indices in [-{count}, {count}))"
        )
    if units is not None and dims is not None:
        picked = np.arange(units)[dims] if isinstance(dims, slice) else np.asarray(dims)
        if not isinstance(dims, slice) and ((picked < -units) | (picked >= units)).any():
            raise ValueError(f"--dims: {model}'s {site} has {units} units (indices in [-{units}, {units}))")
        if np.unique(picked % units).size < 2:
            raise ValueError(
                f"--dims selects {np.unique(picked % units).size} of {model}'s {units} {site} units: pairwise MI needs at least 2"
            )


def extraction_of(args: argparse.Namespace) -> Any:
    """The Extraction the flags describe, made and checked once for every route (in memory, corpus,
    Dask)."""
    from ..extraction import Extraction

    return Extraction(
        tokenizer=args.tokenizer,
        layers=args.layers,
        site=args.site,
        max_length=args.max_length,
        stride=args.stride,
        batch_size=args.batch_size,
        device=args.device,
        drop_first_token=args.drop_first_token,
        max_tokens=args.max_tokens,
    )


def figure_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"pair": args.pair, "fmt": args.format, "dpi": args.dpi}


def analysis_options(args: argparse.Namespace) -> dict[str, Any]:
    """Settings for pairmi.mi_layers: the estimator object the flags describe (it checks them and
    ignores --bins or --k where they do not apply), and the shuffle correction's permutations."""
    estimator = as_estimator(args.estimator, bins=args.bins, k=args.k, correction=args.correction or None)
    options: dict[str, Any] = {"estimator": estimator, "units": args.units}
    if args.correction == "shuffle":
        options.update(n_permutations=args.n_permutations, seed=args.seed)
    return options
