"""The explorer's file size, first draw and click-to-pair time in headless Chromium.

    python bench/explorer_speed.py [--data gpt2|mlp|noise] [--tokens 2000] [--runs 5] [--chromium /usr/bin/chromium]

An analysis the size of GPT-2's (13 layers x 768 units, the shuffled-token null, 2,000 kept tokens
in order): by default a randomly initialised GPT-2 over Python's docstrings; ``--data mlp``: one
layer of its 3,072 MLP neurons (drawn as max-pooled blocks); ``--data noise``:
random numbers of that size (--layers, --units), which compress worst. The page is written by
pairmi.explore, opened in Debian's Chromium through Playwright, and
timed with performance.now() in the page: from navigation start to ``document.body.dataset.ready``
(the first layer drawn), and from a ``pairmiExplorer.select`` call to its pair view drawn. Medians
of --runs page loads (and of 5 pairs each).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import pairmi
from pairmi.analysis import Analysis


def synthetic(layers: int, units: int, tokens: int) -> Analysis:
    rng = np.random.default_rng(0)
    states = rng.standard_t(3, size=(layers, tokens, units)).astype(np.float32)
    mi = np.abs(rng.normal(0.05, 0.02, size=(layers, units, units))).astype(np.float32)
    mi = (mi + np.swapaxes(mi, 1, 2)) / 2
    null = np.abs(rng.normal(0.04, 0.005, size=mi.shape)).astype(np.float32)  # a null that varies, as measured ones do
    null = (null + np.swapaxes(null, 1, 2)) / 2
    words = ["the", "model", "token", "of", "a", "and", "position", "unit", "layer", "pair"]
    params = {"estimator": "equal_frequency", "bins": 15, "units": "bits", "model": "synthetic", "site": "residual"}
    extra = {"null": null, "degenerate": np.zeros((layers, units), dtype=bool)}
    names = [f"L{k}" for k in range(layers)]
    return Analysis(mi, names, [words[t % 10] for t in range(tokens)], np.arange(units), params, states, extra)


def gpt2_shaped(tokens: int, site: str = "residual", layers: list[int] | None = None) -> Analysis:
    """A GPT-2-shaped run as a user's would be: a randomly initialised GPT-2 (seeded; no hub here)
    over Python's docstrings (the bundled MiniLM's tokenizer), equal-frequency bins (15) with the
    shuffled-token null, the first `tokens` tokens."""
    import itertools

    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from pairmi.analysis import analyze
    from pairmi.corpus import python_docstrings
    from pairmi.extract import HiddenStates
    from pairmi.models import resolve_model

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config()).eval()
    _, tokenizer = resolve_model("minilm", None)
    docs = list(itertools.islice(python_docstrings(), 200))
    kw = {"tokenizer": tokenizer, "max_length": 128, "max_tokens": tokens, "site": site, "layers": layers}
    batches = list(pairmi.iter_hidden_states(model, docs, **kw))
    values = np.concatenate([b.values for b in batches], axis=1)
    words = [t for b in batches for t in b.tokens]
    states = HiddenStates(values, words, list(batches[0].layer_names), "gpt2 (random init)", site, {})
    return analyze(states, null=True, estimator="equal_frequency", threads=2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layers", type=int, default=13)
    ap.add_argument("--units", type=int, default=768)
    ap.add_argument("--tokens", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    ap.add_argument(
        "--data",
        choices=("gpt2", "mlp", "noise"),
        default="gpt2",
        help="GPT-2's 13 x 768 residual stream, one 3,072-neuron MLP layer (6), or random numbers",
    )
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    if args.data == "gpt2":
        args.layers, args.units = 13, 768
        analysis = gpt2_shaped(args.tokens)
    elif args.data == "mlp":
        args.layers, args.units = 1, 3072
        analysis = gpt2_shaped(args.tokens, "mlp", [6])
    else:
        analysis = synthetic(args.layers, args.units, args.tokens)
    path = Path(tempfile.mkdtemp()) / "explorer.html"
    t0 = time.perf_counter()
    pairmi.explore(analysis, path)
    written = time.perf_counter() - t0
    size = path.stat().st_size
    first, clicks = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        for run in range(args.runs):
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(path.as_uri())
            page.wait_for_function("document.body.dataset.ready === '1'", timeout=120_000)
            first.append(page.evaluate("performance.now()") / 1000)
            rng = np.random.default_rng(run)
            for _ in range(5):
                i, j = (int(v) for v in rng.choice(args.units, 2, replace=False))
                call = f"window.pairmiExplorer.select({args.layers - 1}, {i}, {j})"
                timed = f"(async () => {{ const t = performance.now(); await {call}; return performance.now() - t; }})()"
                clicks.append(page.evaluate(timed) / 1000)
            page.close()
        browser.close()
    shape = f"{args.layers} layers x {args.units} units, {args.tokens:,} kept tokens"
    print(f"{shape}: file {size / 2**20:.1f} MiB (written in {written:.1f} s)")
    draw, click = statistics.median(first), statistics.median(clicks) * 1000
    print(f"first draw {draw:.2f} s (median of {args.runs} loads); select to pair view {click:.0f} ms (median of {len(clicks)})")


if __name__ == "__main__":
    main()
