"""The ``pairmi`` command: analyze a model's hidden states, redraw saved results, run the offline demo."""

from __future__ import annotations

import argparse
import hashlib
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .settings import BINNED_ESTIMATORS, CORRECTIONS, DEFAULT_BINS, DEFAULT_K, ESTIMATOR_CLASSES, ESTIMATORS, as_estimator

DEMO_TEXT = (
    "Turkish coffee is made by simmering very finely ground beans with water, and often sugar, in a small "
    "long-handled pot called a cezve. It is served unfiltered in little cups, so the grounds settle at the "
    "bottom and the foam on top is a sign of a well-made cup. In Turkey the drink is part of hospitality and "
    "ceremony: a glass of water comes with it, and some people read fortunes from the patterns the grounds "
    "leave behind. UNESCO recognised the culture and tradition of Turkish coffee in 2013."
)


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
    from ._arrays import max_threads

    value = _positive(text)
    if value > max_threads():
        raise argparse.ArgumentTypeError(
            f"--threads {value} exceeds the limit of {max_threads()} (4 per usable core, at least 64)"
        )
    return value


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

    p = sub.add_parser(
        "plot",
        help="redraw the figures of a saved analysis (no model needed)",
        description="Redraw the PNG figures from the mi.npz that `pairmi analyze` saved.",
    )
    p.add_argument("results", type=Path, help="folder written by `pairmi analyze` (or its mi.npz)")
    p.add_argument("--out", type=Path, default=None, help="where to write the figures (default: the results folder)")
    _add_figure_args(p)

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


class _Progress:
    """A progress bar on stderr: layers done, the current layer's share of tiles, elapsed and ETA."""

    def __init__(self, label: str, layers: int):
        self.label, self.layers, self.t0 = label, layers, time.perf_counter()
        self.done = 0  # layers finished
        self.last = 0.0

    def __call__(self, k: int, n: int, resumed: bool) -> None:
        self.done = k + 1
        note = " (resumed)" if resumed else ""
        self._draw(float(self.done), note, final=self.done == n)

    def tile(self, done: int, total: int) -> None:
        """Inside a layer (KSG on 10^4 tokens takes minutes a layer): at most every 0.5 s."""
        now = time.perf_counter()
        if total and now - self.last >= 0.5:
            self.last = now
            self._draw(self.done + done / total, "")

    def _draw(self, progress: float, note: str, final: bool = False) -> None:
        elapsed = time.perf_counter() - self.t0
        share = progress / self.layers
        eta = f", ETA {elapsed / share - elapsed:.0f} s" if 0 < share < 1 else ""
        filled = int(30 * share)
        end = "\n" if final else ""
        if not final and not sys.stderr.isatty():
            return  # a log file gets one line per run, not one per update
        sys.stderr.write(
            f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] layer {min(self.done + 1, self.layers)}"
            f"/{self.layers}{note} {elapsed:.1f} s{eta}   {end}"
        )
        sys.stderr.flush()


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


def _check_out(out: Path) -> None:
    """--out must be a folder (or not exist yet): checked before any model loads."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")


def _check_selection(model: str, site: str, layers: list[int] | None, dims: Any) -> None:
    """--layers and --dims against the model's configuration, before its weights load."""
    from .extract import site_shape

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


def extract(model: str, texts: list[str], **kwargs: Any) -> Any:
    """Hidden states of `texts` (kwargs go to pairmi.hidden_states), with a line saying their shape."""
    from transformers.utils import logging as hf_logging

    from .extract import hidden_states

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
) -> Any:
    """All-pairs MI of every layer of hs into `out` (mi.npz, summary.csv, figures); returns the Analysis.

    `options` go to pairmi.mi_layers. Finished layers wait in out/.partial (pairmi.analysis keys
    them by the states and settings, so --resume only reuses layers of the same inputs).
    """
    from .analysis import analyze, checkpoint_layers, remove_checkpoint, save, save_figures

    ckpt = out / CHECKPOINT_DIR
    _record(out, CHECKPOINT_DIR)
    bar = _Progress(as_estimator(options.get("estimator", "equal_width")).name, len(hs.layer_names))
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
        raise _Interrupted(exc, kept) from None
    path = save(analysis, out, states)
    remove_checkpoint(ckpt)
    written = [path, out / "summary.csv"] + (save_figures(analysis, out, **(figure_options or {})) if figures else [])
    print("wrote " + ", ".join(str(p) for p in written))
    return analysis


# What pairmi writes into --out besides mi.npz, summary.csv and the figures. Each file is listed in
# the folder's manifest (pairmi._written) before it is written; --overwrite removes those alone.
STATE_FILE = ".corpus-state.npz"
CHECKPOINT_DIR = ".partial"  # finished layers of an interrupted analysis (pairmi.analysis)
# The exact names of a run written before manifests existed (figures: every format, per layer).
RUN_FILES = ("mi.npz", "summary.csv", STATE_FILE, CHECKPOINT_DIR)


class _Interrupted(Exception):
    """Ctrl-C (or SIGTERM, SIGHUP), with what the interrupted command kept: main prints it and exits
    with `code` (130 for Ctrl-C, 128 + the signal's number for the others, as a shell reports them)."""

    def __init__(self, stop: KeyboardInterrupt, kept: str) -> None:
        how = f"stopped by {stop.name}" if isinstance(stop, _Terminated) else "interrupted"
        super().__init__(f"{how}; {kept}")
        self.code = 128 + stop.signum if isinstance(stop, _Terminated) else 130


class _Terminated(KeyboardInterrupt):
    """SIGTERM (timeout, kill, SLURM pre-emption) or SIGHUP, raised where Ctrl-C would be, so a run
    saves what Ctrl-C saves."""

    def __init__(self, signum: int) -> None:
        self.signum, self.name = signum, signal.Signals(signum).name
        super().__init__(self.name)


STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextmanager
def _stop_signals_interrupt() -> Iterator[None]:
    """While a command runs, SIGTERM and SIGHUP stop it as Ctrl-C does (once: a second signal while
    the state is being saved is ignored); the previous handlers are restored after."""
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise _Terminated(signum)

    previous = {}
    for sig in STOP_SIGNALS:
        try:
            previous[sig] = signal.signal(sig, stop)
        except ValueError:  # not the main thread: signals stay as they are
            break
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _prepare_out(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuse an --out holding an earlier run unless resuming it or told to overwrite it; with
    --overwrite remove that run's files first, and nothing else. Checked before any model loads."""
    from ._written import earlier_outputs, forget
    from .analysis import checkpoint_layers, remove_checkpoint

    _check_out(out)
    earlier = [p for p in earlier_outputs(out, RUN_FILES, "layer_{}") if p.name != CHECKPOINT_DIR or checkpoint_layers(p)]
    if not earlier or resume:
        return
    if not overwrite:
        names = ", ".join(p.name for p in earlier[:4]) + (", ..." if len(earlier) > 4 else "")
        raise ValueError(
            f"--out {out} holds the results of an earlier pairmi run ({names}): pass --overwrite to replace "
            "them (only the files pairmi wrote there), --resume to continue an interrupted run of the same "
            "settings, or another --out"
        )
    for p in earlier:
        if p.name == CHECKPOINT_DIR:
            remove_checkpoint(p)
        elif p.is_symlink() or not p.is_dir():
            p.unlink()
    forget(out, [p.name for p in earlier])


def _record(out: Path, *names: str) -> None:
    """List files this run is about to write in --out (created if needed) in its manifest."""
    from ._written import record

    out.mkdir(parents=True, exist_ok=True)
    record(out, names)


def _sha256(texts: list[str]) -> str:
    return hashlib.sha256("\0".join(texts).encode()).hexdigest()


def _extraction_of(args: argparse.Namespace) -> Any:
    """The Extraction the flags describe, made and checked once for every route (in memory, corpus,
    Dask)."""
    from .extraction import Extraction

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


def _print_summary(analysis: Any) -> None:
    from .analysis import summary_rows

    units = analysis.params.get("units", "bits")
    est = analysis.params.get("estimator")
    if est in BINNED_ESTIMATORS:
        detail = f"{analysis.params.get('bins')} bins"
    else:
        detail = f"k={analysis.params.get('k', 3)}" if est == "ksg" else "ranks"
    tokens = analysis.params.get("tokens", len(analysis.tokens))  # a corpus run keeps only a sample of them
    print(f"{'layer':>6} {'mean':>8} {'median':>8} {'q95':>8}   ({units}, {est}, {detail}, {tokens:,} tokens)")
    for row in summary_rows(analysis):
        print(f"{row['name']:>6} {row['mean']:8.3f} {row['q50']:8.3f} {row['q95']:8.3f}")


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """Settings for pairmi.mi_layers: the estimator object the flags describe (it checks them and
    ignores --bins or --k where they do not apply), and the shuffle correction's permutations."""
    estimator = as_estimator(args.estimator, bins=args.bins, k=args.k, correction=args.correction or None)
    options: dict[str, Any] = {"estimator": estimator, "units": args.units}
    if args.correction == "shuffle":
        options.update(n_permutations=args.n_permutations, seed=args.seed)
    return options


def _cmd_analyze(args: argparse.Namespace) -> None:
    if args.corpus is not None or args.python_docs:
        return _analyze_corpus(args)
    options = _options(args)
    texts = _read_texts(args)
    _prepare_out(args.out, args.resume, args.overwrite)
    _check_selection(args.model, args.site, args.layers, args.dims)
    hs = extract(args.model, texts, extraction=_extraction_of(args).replace(max_tokens=None))
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
        figure_options=_figure_options(args),
    )
    _print_summary(analysis)
    _print_null(analysis)
    _print_degenerate(analysis)


def _figure_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"pair": args.pair, "fmt": args.format, "dpi": args.dpi}


def _print_degenerate(analysis: Any) -> None:
    degenerate = analysis.extra.get("degenerate")
    if degenerate is None or not degenerate.any():
        return
    parts = []
    for name, row in zip(analysis.layer_names, degenerate):
        units = [int(analysis.dims[u]) for u in np.flatnonzero(row)]
        if units:
            parts.append(f"{name}: {', '.join(map(str, units[:8]))}{', ...' if len(units) > 8 else ''}")
    print(
        "   degenerate units (constant, or under 1e-6 of their layer's typical spread; left out of the summaries, "
        f"figures and pair choice): {'; '.join(parts)}"
    )


def _print_null(analysis: Any) -> None:
    """The shuffled-token null beside the observed values, and how the layers compare with it
    (pairs of degenerate units left out)."""
    from .analysis import counted_pairs

    null = analysis.extra.get("null")
    if null is None:
        return
    counted = [counted_pairs(analysis, k) for k in range(len(analysis.layer_names))]
    pooled = np.concatenate([n[c] for n, c in zip(null, counted)])
    q95 = float(np.quantile(pooled, 0.95))
    observed = [m[c] for m, c in zip(analysis.mi, counted)]
    units = analysis.params.get("units", "bits")
    binned = analysis.params.get("estimator") in BINNED_ESTIMATORS
    print(
        f"   null (shuffled tokens), mean over layers and pairs: {pooled.mean():.3f} {units} (95th percentile "
        f"{q95:.3f}): {'the plug-in bias' if binned else 'what independence gives'} at {len(analysis.tokens):,} tokens"
    )
    above = sum(int((o > q95).sum()) for o in observed)
    total = sum(o.size for o in observed)
    print(f"   {above:,} of {total:,} pairs ({above / max(total, 1):.1%}) exceed the null's 95th percentile (5% would by chance)")
    within = [name for name, o in zip(analysis.layer_names, observed) if o.mean() <= q95]
    if len(within) == len(observed):
        print("   every layer's mean MI is within the null: at this many tokens these values are not evidence of dependence")
    elif within:
        print(f"   layers {', '.join(within)} have mean MI within the null; the others exceed its 95th percentile")


def _analyze_corpus(args: argparse.Namespace) -> None:
    """--corpus / --python-docs: stream documents through the model into an Accumulator."""
    from .corpus import analyze_corpus, python_docstrings, read_documents
    from .stream import STREAM_ESTIMATORS

    if args.estimator not in STREAM_ESTIMATORS:
        raise ValueError(
            f"--corpus streams the estimators {STREAM_ESTIMATORS}; {args.estimator!r} has no statistics that add up over tokens"
        )
    if args.correction not in (None, "miller_madow"):
        raise ValueError("--corpus supports --correction miller_madow (the null is reported as the plug-in bias)")
    if args.keep_tokens < 0:
        raise ValueError("--keep-tokens must be >= 0")
    if args.bins == "auto":
        raise ValueError("--corpus needs a fixed number of --bins")
    if args.corpus is not None and not args.corpus.is_file():
        raise ValueError(f"--corpus {args.corpus}: no such file")
    cluster = args.workers is not None or args.scheduler is not None
    if args.workers is not None and args.scheduler is not None:
        raise ValueError("pass --workers (a local cluster) or --scheduler (a running one), not both")
    if cluster and args.resume:
        raise ValueError("--resume applies to a single-process run: on a cluster a lost task is retried instead")
    if cluster:
        from .dask import _dask

        _dask()  # a clear ImportError naming the extra, before any model loads
    _prepare_out(args.out, args.resume, args.overwrite)
    _check_selection(args.model, args.site, args.layers, args.dims)
    _record(args.out, STATE_FILE)
    state = args.out / STATE_FILE  # without --resume, _prepare_out refused or removed an earlier one
    _print_totals_size(args, None if cluster else state)
    docs = (
        python_docstrings()
        if args.python_docs
        else read_documents(args.corpus, by="line" if args.corpus_format == "lines" else "paragraph", encoding=args.encoding)
    )
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one bar: ours
    if cluster:
        run = _corpus_on_cluster(args, docs)
        return _report_corpus(args, run, state)
    bar = _TokenBar(args.max_tokens)
    try:
        run = analyze_corpus(
            args.model,
            docs,
            **_corpus_options(args),
            seed=args.seed,
            threads=args.threads,
            state_path=state,
            save_every=args.save_every,
            resume=args.resume,
            progress=bar,
        )
    except KeyboardInterrupt as exc:
        bar.close()
        kept = f"running totals saved in {state}; rerun with --resume" if state.exists() else "nothing was saved yet"
        raise _Interrupted(exc, kept) from None
    bar.close()
    _report_corpus(args, run, state)


def _corpus_options(args: argparse.Namespace) -> dict[str, Any]:
    """What the in-process and the Dask corpus runs both take from the flags."""
    return {
        "extraction": _extraction_of(args),
        "estimator": args.estimator,
        "bins": args.bins,
        "correction": args.correction,
        "units": args.units,
        "dims": args.dims,
        "calibration_tokens": args.calibration_tokens,
        "keep_tokens": args.keep_tokens,
    }


def _print_totals_size(args: argparse.Namespace, state: Path | None) -> None:
    """The running totals' size (in memory, and the scratch state file), when the model's
    configuration tells the layers and units: said before the model loads."""
    from .extract import site_shape

    count, units = site_shape(args.model, args.site)
    if count is None or units is None:
        return
    layers = count if args.layers is None else len(args.layers)
    d = units if args.dims is None else np.unique(np.arange(units)[args.dims] % units).size
    per_layer = d * d * 8 if args.estimator == "gaussian_copula" else d * (d - 1) // 2 * args.bins**2 * 8 + d * args.bins * 8
    size = layers * per_layer
    where = f", saved to {state} every {args.save_every:g} s and on a stop (removed at the end)" if state else ""
    print(f"running totals: {layers} layers x {d:,} units, {size / 2**30:.2f} GiB in memory{where}", file=sys.stderr)


def _corpus_on_cluster(args: argparse.Namespace, docs: Any) -> Any:
    """The corpus run on a local Dask cluster (--workers) or a running one (--scheduler)."""
    from distributed import Client, LocalCluster

    from . import dask as pdask

    kwargs = {**_corpus_options(args), "shard_tokens": args.shard_tokens, "threads": args.threads or 1}
    try:
        if args.scheduler is not None:
            with Client(args.scheduler, timeout=30) as client:
                print(f"Dask cluster at {args.scheduler}: {len(client.scheduler_info()['workers'])} workers", file=sys.stderr)
                return pdask.analyze_corpus(args.model, docs, **kwargs)
        with (
            LocalCluster(
                n_workers=args.workers, threads_per_worker=args.threads or 1, processes=True, dashboard_address=":0"
            ) as local,
            Client(local),
        ):
            print(f"local Dask cluster: {args.workers} worker processes", file=sys.stderr)
            return pdask.analyze_corpus(args.model, docs, **kwargs)
    except KeyboardInterrupt as exc:
        raise _Interrupted(exc, "a cluster run keeps no state: run it again") from None
    except OSError as exc:  # the scheduler cannot be reached
        raise ValueError(f"--scheduler {args.scheduler}: {exc}") from None


def _report_corpus(args: argparse.Namespace, run: Any, state: Path) -> None:
    """Save a corpus run's analysis and figures, and print its summary."""
    from .analysis import save, save_figures

    path = save(run.analysis, args.out, args.save_states)
    written = [path, args.out / "summary.csv"] + (
        [] if args.no_figures else save_figures(run.analysis, args.out, **_figure_options(args))
    )
    state.unlink(missing_ok=True)
    print("wrote " + ", ".join(str(p) for p in written))
    _print_summary(run.analysis)
    if "bias" in run.analysis.extra:
        iu = np.triu_indices(run.analysis.mi.shape[-1], k=1)
        bias = float(run.analysis.extra["bias"][(slice(None), *iu)].mean())
        what = "copula MI" if args.estimator == "gaussian_copula" else "plug-in bias"
        print(
            f"   {what} under independence at {run.tokens:,} tokens (first order), mean over layers and pairs: "
            f"{bias:.4f} {args.units}"
        )
    _print_degenerate(run.analysis)
    print(
        f"time: model forward {run.seconds_model:.1f} s, MI accumulation {run.seconds_mi:.1f} s "
        f"({run.tokens:,} tokens{f', resumed after {run.resumed_from:,}' if run.resumed_from else ''})"
    )


class _TokenBar:
    """tqdm's bar of tokens done, rate and ETA (total known with --max-tokens), fed the running count."""

    def __init__(self, total: int | None):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, unit="tok", unit_scale=True, desc="tokens", file=sys.stderr, dynamic_ncols=True)

    def __call__(self, done: int, total: int | None) -> None:
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def _cmd_plot(args: argparse.Namespace) -> None:
    from .analysis import load, save_figures

    analysis = load(args.results)
    out = args.out or (args.results if args.results.is_dir() else args.results.parent)
    out.mkdir(parents=True, exist_ok=True)
    print("wrote " + ", ".join(str(p) for p in save_figures(analysis, out, **_figure_options(args))))


def _cmd_lesson(args: argparse.Namespace) -> None:
    from . import plot
    from .analysis import write_figures
    from .compare import bias_curve, compare

    if args.bins == "auto" or args.bins > args.samples:
        raise ValueError(f"--bins must be a number of bins up to --samples ({args.samples})")
    _check_out(args.out)
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


def _cmd_demo(args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    hs = extract("minilm", [DEMO_TEXT])
    for estimator in ESTIMATORS:
        options = {"estimator": ESTIMATOR_CLASSES[estimator](), "units": "bits"}  # each with its defaults
        _prepare_out(args.out / estimator, resume=False, overwrite=True)  # the demo replaces its own results
        analysis = analyze_and_save(
            hs,
            args.out / estimator,
            options=options,
            text_sha256=_sha256([DEMO_TEXT]),
            threads=args.threads,
            null=True,
        )
        _print_summary(analysis)
        _print_null(analysis)
    _print_degenerate(analysis)
    print(
        f"demo done in {time.perf_counter() - t0:.1f} s, {len(analysis.tokens)} tokens. Every estimator is shown beside "
        "its null (the same units, tokens shuffled): only values above it are evidence of dependence."
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    commands = {"analyze": _cmd_analyze, "plot": _cmd_plot, "demo": _cmd_demo, "lesson": _cmd_lesson}
    try:
        with _stop_signals_interrupt():
            commands[args.command](args)
    except (ValueError, TypeError, OSError, ImportError, NotImplementedError) as exc:
        print(f"pairmi {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except _Interrupted as exc:
        print(f"\npairmi {args.command}: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt as exc:
        stopped = _Interrupted(exc, "nothing was kept")
        print(f"\npairmi {args.command}: {stopped}", file=sys.stderr)
        return stopped.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
