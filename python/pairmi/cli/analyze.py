"""pairmi analyze on texts (in memory) and pairmi demo: extract, analyze, save, summarise."""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path
from typing import Any

from ..settings import ESTIMATOR_CLASSES, ESTIMATORS, as_estimator
from .options import analysis_options, check_selection, extraction_of, figure_options
from .outdir import CHECKPOINT_DIR, prepare_out, record_outputs
from .progress import LayerBar
from .report import print_degenerate, print_null, print_position, print_summary
from .stops import Interrupted

DEMO_TEXT = (
    "Turkish coffee is made by simmering very finely ground beans with water, and often sugar, in a small "
    "long-handled pot called a cezve. It is served unfiltered in little cups, so the grounds settle at the "
    "bottom and the foam on top is a sign of a well-made cup. In Turkey the drink is part of hospitality and "
    "ceremony: a glass of water comes with it, and some people read fortunes from the patterns the grounds "
    "leave behind. UNESCO recognised the culture and tradition of Turkish coffee in 2013."
)


# An in-memory analysis keeps every token's hidden states: 16 MiB of text is about 4 million tokens,
# 150 GB of GPT-2 residual states; larger texts are streamed with --corpus.
MAX_TEXT_BYTES = 16 << 20


def _read_texts(args: argparse.Namespace) -> list[str]:
    if args.text is not None:
        return list(args.text)
    texts = []
    for path in args.text_file:
        try:
            with open(path, "rb") as fh:
                data = fh.read(MAX_TEXT_BYTES + 1)  # bounded: /dev/zero or a huge file must not fill memory
            if len(data) > MAX_TEXT_BYTES:
                raise ValueError(
                    f"--text-file {path} is larger than {MAX_TEXT_BYTES >> 20} MiB, more text than an in-memory "
                    "analysis holds: stream it with --corpus (one document per line or per paragraph)"
                )
            text = data.decode(args.encoding)
        except OSError as exc:
            raise ValueError(f"cannot read --text-file {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise ValueError(
                f"--text-file {path} is not valid {args.encoding} text (byte {exc.start}): pass its --encoding (e.g. latin-1)"
            ) from None
        except LookupError:
            raise ValueError(f"--encoding {args.encoding!r} is not an encoding Python knows") from None
        if not text.strip():
            raise ValueError(f"--text-file {path} is empty: nothing to analyze")
        texts.append(text)
    return texts


def extract(model: str, texts: list[str], **kwargs: Any) -> Any:
    """Hidden states of `texts` (kwargs go to pairmi.hidden_states), with a line saying their shape."""
    from transformers.utils import logging as hf_logging

    from ..extract import hidden_states

    hf_logging.disable_progress_bar()  # our own bar is per layer
    hs = hidden_states(model, texts, **kwargs)
    print(f"{hs.model_name}: {len(hs.layer_names)} layers x {len(hs.tokens)} tokens x {hs.values.shape[2]} units ({hs.site})")
    return hs


def analyze_and_save(
    hs: Any,
    out: Path,
    *,
    options: dict[str, Any],
    text_sha256: str,
    dims: Any = None,
    threads: int | None = None,
    null: bool = False,
    resume: bool = False,
    figures: bool = True,
    states: str = "sample",
    figure_options: dict[str, Any] | None = None,
    window_lags: Any = None,
) -> Any:
    """All-pairs MI of every layer of hs into `out` (mi.npz, summary.csv, figures); returns the Analysis.

    `options` go to pairmi.mi_layers. Finished layers wait in out/.partial (pairmi.analysis keys
    them by the states and settings, so --resume only reuses layers of the same inputs).
    """
    from ..analysis import analyze, checkpoint_layers, remove_checkpoint, save
    from ..figures import save_figures

    ckpt = out / CHECKPOINT_DIR
    record_outputs(out, CHECKPOINT_DIR)
    bar = LayerBar(as_estimator(options.get("estimator", "equal_width")).name, len(hs.layer_names))
    try:
        analysis = analyze(
            hs,
            dims=dims,
            threads=threads,
            null=null,
            checkpoint_dir=ckpt,
            resume=resume,
            on_layer=bar,
            progress=bar.tile,
            params={"text_sha256": text_sha256},
            window_lags=window_lags,
            **options,
        )
    except BaseException as exc:
        done = checkpoint_layers(ckpt)
        if not done:
            remove_checkpoint(ckpt)
        if not isinstance(exc, KeyboardInterrupt):
            raise
        kept = (
            f"{done} finished layer(s) are kept in {out}: rerun with --resume"
            if done
            else "no layer had finished, so nothing was kept"
        )
        raise Interrupted(exc, kept) from None
    path = save(analysis, out, states)
    remove_checkpoint(ckpt)
    written = [path, out / "summary.csv"] + (save_figures(analysis, out, **(figure_options or {})) if figures else [])
    print("wrote " + ", ".join(str(p) for p in written))
    return analysis


def _sha256(texts: list[str]) -> str:
    return hashlib.sha256("\0".join(texts).encode()).hexdigest()


def cmd_analyze(args: argparse.Namespace) -> None:
    options = analysis_options(args)
    texts = _read_texts(args)
    prepare_out(args.out, args.resume, args.overwrite)
    check_selection(args.model, args.site, args.layers, args.dims)
    hs = extract(args.model, texts, extraction=extraction_of(args).replace(max_tokens=None))
    null = args.null is not False  # every figure draws its null unless --no-null
    analysis = analyze_and_save(
        hs,
        args.out,
        options=options,
        text_sha256=_sha256(texts),
        dims=args.dims,
        threads=args.threads,
        null=null,
        resume=args.resume,
        figures=not args.no_figures,
        states=args.save_states,
        figure_options=figure_options(args),
        window_lags=args.position_lags,
    )
    print_summary(analysis)
    print_null(analysis)
    print_position(analysis)
    print_degenerate(analysis)


def cmd_demo(args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    hs = extract("minilm", [DEMO_TEXT])
    for estimator in ESTIMATORS:
        options = {"estimator": ESTIMATOR_CLASSES[estimator](), "units": "bits"}  # each with its defaults
        prepare_out(args.out / estimator, resume=False, overwrite=True)  # the demo replaces its own results
        analysis = analyze_and_save(
            hs,
            args.out / estimator,
            options=options,
            text_sha256=_sha256([DEMO_TEXT]),
            threads=args.threads,
            null=True,
        )
        print_summary(analysis)
        print_null(analysis)
    print_degenerate(analysis)
    print(
        f"demo done in {time.perf_counter() - t0:.1f} s, {len(analysis.tokens)} tokens. Every estimator is shown beside "
        "its null (the same units, tokens shuffled): only values above it are evidence of dependence."
    )
