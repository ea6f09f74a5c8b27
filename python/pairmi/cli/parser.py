"""The pairmi command's parser: its subcommands, flags, their checks and help."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import __version__
from ..settings import CORRECTIONS, DEFAULT_BINS, DEFAULT_K, ESTIMATORS

ANALYZE_EXAMPLES = """\
choosing an estimator: equal_width / equal_frequency (plug-in, binned) are fast but biased upwards at
few tokens (compare with the null this prints); ksg is nearly unbiased and slower; gaussian_copula is
fastest for many units, exact for Gaussian dependence and a lower bound otherwise.

examples:
  pairmi analyze --text-file paragraph.txt --out results/                  # MiniLM, offline
  pairmi analyze --model gpt2 --text-file p.txt --drop-first-token --out r/ # GPT-2's first token is an outlier
  pairmi analyze --text-file p.txt --estimator ksg --layers 0,6 --dims 0:128 --out r/
  pairmi analyze --model ./my-model --tokenizer gpt2 --text "..." --out r/  # a folder without tokenizer files
  pairmi analyze --python-docs --max-tokens 100000 --out corpus/           # stream a corpus; Ctrl-C, --resume
  pairmi analyze --corpus docs.txt --workers 8 --out corpus/               # the corpus on a local Dask cluster
  pairmi analyze --python-docs --site mlp --all-layers --topk 16 --out top/ # every neuron's 16 partners, any layer
"""


class _Parser(argparse.ArgumentParser):
    """Bad arguments: one clear line on stderr, exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _parse_layers(spec: str) -> list[int] | None:
    if spec == "all":
        return None
    try:
        return [int(s) for s in spec.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--layers must be 'all' or comma-separated integers, got {spec!r}") from None


def _parse_dims(spec: str) -> Any:
    if spec == "all":
        return None
    try:
        if ":" in spec:
            parts = [int(p) if p.strip() else None for p in spec.split(":")]
            if len(parts) > 3 or (len(parts) == 3 and parts[2] == 0):
                raise ValueError
            dims: Any = slice(*parts)
            # Without negative ends the count is known before the model is loaded.
            if dims.stop is not None and min(dims.start or 0, dims.stop) >= 0:
                count = len(range(dims.start or 0, dims.stop, dims.step or 1))
            else:
                count = 2
        else:
            dims = [int(s) for s in spec.split(",") if s.strip()]
            count = len(set(dims))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--dims must be 'all', a slice 'start:stop:step' or comma-separated integers, got {spec!r}"
        ) from None
    if count < 2:
        raise argparse.ArgumentTypeError(f"--dims {spec!r} selects {count} unit(s): pairwise MI needs at least 2")
    return dims


def _parse_site(spec: str) -> str | list[str]:
    """--site: a site name or one module name as a string, several comma-separated names as a list."""
    names = [s.strip() for s in spec.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"--site must be residual, mlp, attention or module names, got {spec!r}")
    return names[0] if len(names) == 1 else names


def _parse_pair(spec: str) -> tuple[int | str, int, int]:
    """--pair L,i,j: a layer (index or name) and two unit indices."""
    parts = [p.strip() for p in spec.split(",")]
    try:
        if len(parts) != 3:
            raise ValueError
        layer: int | str = int(parts[0]) if parts[0].lstrip("-").isdigit() else parts[0]
        return layer, int(parts[1]), int(parts[2])
    except ValueError:
        raise argparse.ArgumentTypeError(f"--pair must be LAYER,I,J (e.g. 6,12,305 or L6,12,305), got {spec!r}") from None


def _add_figure_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--pair",
        type=_parse_pair,
        default=None,
        metavar="L,I,J",
        help="the pair to draw: layer (index or name) and two units; default: in the last layer, the pair "
        "furthest above its null (highest MI without one), degenerate units skipped",
    )
    p.add_argument("--format", choices=("png", "svg", "pdf"), default="png", help="figure format (default: png)")
    p.add_argument("--dpi", type=_positive, default=200, help="figure resolution in dots per inch (default: %(default)s)")


def _integer_at_least(low: int, what: str) -> Callable[[str], int]:
    """An argparse type: a whole number >= low, else one line naming what was expected."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


_positive = _integer_at_least(1, "a positive integer")


_seed = _integer_at_least(0, "a non-negative integer (a seed)")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds >= 0, got {text!r}")
    return value


def _threads(text: str) -> int:
    from .._threads import max_threads

    value = _positive(text)
    if value > max_threads():
        raise argparse.ArgumentTypeError(
            f"--threads {value} exceeds the limit of {max_threads()} (4 per usable core, at least 64)"
        )
    return value


def _lags(text: str) -> tuple[int, ...]:
    try:
        return tuple(_positive(part) for part in text.split(","))
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"lags must be positive whole numbers of windows, e.g. 1 or 1,2; got {text!r}") from None


def _bins(text: str) -> int | str:
    if text == "auto":
        return text
    value = _positive(text)
    if not 2 <= value <= 255:
        raise argparse.ArgumentTypeError(f"bins must be in [2, 255], got {value}")
    return value


def _add_estimator_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--estimator", choices=ESTIMATORS, default="equal_width", help="MI estimator (default: %(default)s)")
    p.add_argument("--bins", type=_bins, default=DEFAULT_BINS, help="bins per unit, 2..255 or 'auto' (default: %(default)s)")
    p.add_argument("--k", type=_positive, default=DEFAULT_K, help="neighbours for ksg (default: %(default)s)")
    p.add_argument(
        "--correction",
        choices=[c for c in CORRECTIONS if c],
        default=None,
        help="bias correction of the binned estimators (default: none)",
    )
    p.add_argument("--n-permutations", type=_positive, default=20, help="shufflings for --correction shuffle")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the shufflings (default: %(default)s)")
    p.add_argument("--units", choices=("bits", "nats"), default="bits", help="(default: %(default)s)")
    p.add_argument("--threads", type=_threads, default=None, help="threads (default: OMP_NUM_THREADS or all cores)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pairmi", description="All-pairs mutual information of a language model's hidden states.")
    parser.add_argument("--version", action="version", version=f"pairmi {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    a = sub.add_parser(
        "analyze",
        help="extract hidden states, compute all-pairs MI per layer, save results and figures",
        description="Extract a model's hidden states for some text, compute the MI of every pair of "
        "units in every layer, and write mi.npz, summary.csv and figures into --out.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=ANALYZE_EXAMPLES,
    )
    a.add_argument("--model", default="minilm", help="hub id (e.g. gpt2), local folder, or 'minilm' (bundled, offline; default)")
    a.add_argument(
        "--tokenizer",
        default=None,
        metavar="NAME_OR_PATH",
        help="tokenizer to use instead of the model's own (e.g. for a model folder without tokenizer files)",
    )
    src = a.add_mutually_exclusive_group(required=True)
    src.add_argument("--text-file", type=Path, action="append", help="text file; each file is one text (repeatable)")
    src.add_argument("--text", action="append", help="text given inline (repeatable)")
    src.add_argument(
        "--corpus",
        type=Path,
        help="stream a corpus file through the model (one document per line, "
        "or per paragraph with --corpus-format paragraphs) into running totals: bounded memory",
    )
    src.add_argument(
        "--python-docs",
        action="store_true",
        help="stream the offline corpus of Python's standard "
        "library docstrings (real English text, about 10^6 tokens, no download)",
    )
    _add_estimator_args(a)
    a.add_argument("--encoding", default="utf-8", help="encoding of --text-file and --corpus (default: %(default)s)")
    a.add_argument(
        "--position-lags",
        type=_lags,
        default=None,
        metavar="S[,S...]",
        help="also the position null: each pair's MI with one unit S whole windows after the other, at the same "
        "positions (what position alone explains; needs more windows than S); figures and summary.csv then show the "
        "MI beyond it. Binned estimators and the copula. A corpus run streams it (each lag costs twice the running "
        "totals; on a cluster each shard's windows pair within the shard) (default: none)",
    )
    a.add_argument("--layers", type=_parse_layers, default=None, metavar="all|I,J,..", help="layers to analyze (default: all)")
    a.add_argument("--dims", type=_parse_dims, default=None, metavar="all|A:B:S|I,J,..", help="units to pair (default: all)")
    a.add_argument(
        "--site",
        type=_parse_site,
        default="residual",
        metavar="residual|mlp|attention|NAME[,NAME..]",
        help="activations to pair: the residual stream (default), MLP neurons, attention outputs, or named "
        "submodules / TransformerLens hook names, one per layer (e.g. transformer.h.5.mlp.act)",
    )
    a.add_argument("--drop-first-token", action="store_true", help="drop each window's first token (GPT-2 outliers)")
    a.add_argument("--max-length", type=_positive, default=None, help="window length in tokens (default: model context)")
    a.add_argument("--stride", type=_positive, default=None, help="step between windows (default: max-length)")
    a.add_argument("--device", default="cpu", help="torch device for the forward pass (default: cpu)")
    a.add_argument("--out", type=Path, required=True, help="output folder")
    a.add_argument("--resume", action="store_true", help="reuse layers an interrupted run with the same settings saved")
    a.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier run in --out: remove the files it wrote (listed in --out/.pairmi-written.json), nothing else",
    )
    a.add_argument(
        "--null",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="score every pair once more on shuffled tokens (each unit's own permutation), print that null and draw "
        "it in every figure (default; --no-null skips it, halving a KSG run)",
    )
    a.add_argument("--no-figures", action="store_true", help="skip the figures")
    _add_figure_args(a)
    a.add_argument(
        "--save-states",
        choices=("none", "sample", "all"),
        default="sample",
        help="hidden states kept in mi.npz for redrawing figures: none, a random sample of 2,000 tokens "
        "(default; all if fewer), or all",
    )
    c = a.add_argument_group("corpus streaming (--corpus, --python-docs)")
    c.add_argument(
        "--corpus-format",
        choices=("lines", "paragraphs"),
        default="lines",
        help="documents of the corpus file: one per line, or blank-line separated (default: %(default)s)",
    )
    c.add_argument("--max-tokens", type=_positive, default=None, help="stop after this many tokens (default: all)")
    c.add_argument("--batch-size", type=_positive, default=8, help="windows per forward pass (default: %(default)s)")
    c.add_argument(
        "--calibration-tokens", type=_positive, default=10_000, help="first tokens that fix the bin edges (default: %(default)s)"
    )
    c.add_argument(
        "--keep-tokens", type=int, default=2_000, help="random tokens kept in mi.npz for the figures (default: %(default)s)"
    )
    c.add_argument(
        "--save-every",
        type=_seconds,
        default=300.0,
        help="seconds between saves of the running totals for --resume, to --out/.corpus-state.npz (binned: layers x "
        "pairs x bins^2 x 8 bytes, e.g. 0.9 GB for 7 layers of 384 units; printed before the run; removed when it "
        "ends) (default: %(default)s)",
    )
    c.add_argument(
        "--workers",
        type=_positive,
        default=None,
        metavar="N",
        help="run the corpus on a local Dask cluster of N worker processes (needs pairmi[dask])",
    )
    c.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run the corpus on a running Dask cluster, e.g. tcp://host:8786 (needs pairmi[dask])",
    )
    c.add_argument(
        "--shard-tokens",
        type=_positive,
        default=100_000,
        help="tokens of documents per Dask task with --workers/--scheduler (default: %(default)s)",
    )
    t = a.add_argument_group("every unit's strongest partners at neuron scale (--corpus, --python-docs)")
    t.add_argument(
        "--topk",
        type=_positive,
        default=None,
        metavar="N",
        help="each unit's N strongest partners by exact binned MI, for 10^4-10^5 units: a screen of every pair "
        "(sums of normal scores and of their magnitudes, d^2 memory), then exact counts of each unit's --candidates "
        "best; the model runs twice over the same tokens. Writes topk.csv and topk.npz (equal-width or "
        "equal-frequency bins; --estimator equal_frequency is advised for language models)",
    )
    t.add_argument(
        "--all-layers",
        action="store_true",
        help="with --topk: partners in any layer (all units of all --layers side by side); without it each unit's "
        "partners are looked for in its own layer",
    )
    t.add_argument(
        "--candidates",
        type=_positive,
        default=None,
        metavar="M",
        help="with --topk: partners per unit counted exactly (default: max(4 N, N + 32)); memory of the exact "
        "counts about units x M x bins^2 x 8 bytes",
    )
    t.add_argument(
        "--screen-tokens",
        type=_positive,
        default=None,
        metavar="N",
        help="with --topk: screen on the first N tokens only (the screen costs units^2 per token and only ranks "
        "candidates; 10^6 tokens rank correlations to about 0.001), then count the chosen pairs over all "
        "tokens (default: all)",
    )
    t.add_argument(
        "--sample-tokens",
        type=int,
        default=10_000,
        metavar="N",
        help="with --topk: a uniform sample of N tokens whose exact binned MI of every pair also nominates each "
        "unit's candidates (it sees dependence correlations miss; costs units^2 / 2 x N counts; 0: none; on a "
        "cluster the calibration tokens are the sample) (default: %(default)s)",
    )

    p = sub.add_parser(
        "plot",
        help="redraw the figures of a saved analysis (no model needed)",
        description="Redraw the PNG figures from the mi.npz that `pairmi analyze` saved.",
    )
    p.add_argument("results", type=Path, help="folder written by `pairmi analyze` (or its mi.npz)")
    p.add_argument("--out", type=Path, default=None, help="where to write the figures (default: the results folder)")
    _add_figure_args(p)

    e = sub.add_parser(
        "explore",
        help="one self-contained HTML file to look inside a saved analysis (opens offline)",
        description="Write an HTML file of a run folder's mi.npz: every layer's MI matrix (zoom, pan, "
        "the null marked), the strongest pairs, a pair's joint distribution and the kept tokens in its "
        "most over-represented cells, a unit's partners in every layer. No server, no network.",
    )
    e.add_argument("results", type=Path, help="folder written by `pairmi analyze` (or its mi.npz; or a --topk run: its partners)")
    e.add_argument("--out", type=Path, default=None, help="the HTML file (default: RESULTS/explorer.html)")

    les = sub.add_parser(
        "lesson",
        help="the theory lesson's figures for one Gaussian pair, offline, in seconds",
        description="The pair x ~ N(0, 1), y = x + N(0, 1) (rho^2 = 1/2, true MI 0.5 bits): its binned "
        "marginals with their entropies, the samples over their 2-D histogram, every estimator's value "
        "beside its shuffle null and the exact Gaussian MI, and each estimator's mean against the "
        "number of samples.",
    )
    les.add_argument("--out", type=Path, default=Path("lesson"), help="output folder (default: %(default)s)")
    les.add_argument("--samples", type=_positive, default=200, help="samples of the pair (default: %(default)s)")
    les.add_argument("--bins", type=_bins, default=DEFAULT_BINS, help="bins (default: %(default)s)")
    les.add_argument("--draws", type=_positive, default=20, help="draws per size in bias.png (default: %(default)s)")
    les.add_argument("--seed", type=_seed, default=0, help="(default: %(default)s)")
    les.add_argument("--format", choices=("png", "svg", "pdf"), default="png", help="figure format (default: png)")
    les.add_argument("--threads", type=_threads, default=None, help="threads (default: OMP_NUM_THREADS or all cores)")

    d = sub.add_parser(
        "demo",
        help="every pair of every layer with every estimator, offline, on the bundled MiniLM and a paragraph on Turkish coffee",
        description="Run the whole analysis offline: all-MiniLM-L6-v2 (bundled), a paragraph on "
        "Turkish coffee, every layer, every unit, every estimator (equal-width and equal-frequency "
        "bins with their shuffled-token null, KSG, Gaussian copula).",
    )
    d.add_argument("--out", type=Path, default=Path("demo"), help="output folder (default: %(default)s)")
    d.add_argument("--threads", type=_threads, default=None, help="threads (default: OMP_NUM_THREADS or all cores)")
    return parser
