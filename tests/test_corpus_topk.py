"""pairmi analyze --topk: every unit's partners across layers over a corpus, exact, resumable."""

from __future__ import annotations

import csv
import itertools
import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import pairmi
from pairmi import corpus_topk
from pairmi.cli import main
from pairmi.corpus import python_docstrings
from pairmi.extract import iter_hidden_states


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    docs = list(itertools.islice(python_docstrings(), 30))
    path = tmp_path_factory.mktemp("topk") / "corpus.txt"
    path.write_text("\n".join(d.replace("\n", " ") for d in docs))
    return path


FLAGS = ["--site", "mlp", "--all-layers", "--topk", "4", "--estimator", "equal_frequency", "--bins", "8"]
FLAGS += ["--max-tokens", "1200", "--calibration-tokens", "300", "--batch-size", "4", "--max-length", "32"]
FLAGS += ["--threads", "2", "--save-every", "0"]


def test_cli_topk_across_layers_is_exact_and_resumes(tiny_gpt2_dir, corpus_file, tmp_path, monkeypatch, capsys):
    args = ["analyze", "--model", str(tiny_gpt2_dir), "--corpus", str(corpus_file), *FLAGS]
    assert main([*args, "--out", str(tmp_path / "straight")]) == 0
    out, err = capsys.readouterr()
    assert "the model runs twice" in err and "2 layers x 128 units = 256 units" in err
    assert "strongest pairs (1,200 tokens" in out and "exact counts" in out
    saved = dict(np.load(tmp_path / "straight" / "topk.npz"))
    header = json.loads(str(saved["header"]))
    assert header["layer_names"] == ["mlp0", "mlp1"] and header["units_per_layer"] == 128
    # Exact: the saved MI of every partner equals mi_matrix of the same activations with the saved edges.
    batches = list(
        iter_hidden_states(
            str(tiny_gpt2_dir),
            [line for line in corpus_file.read_text().splitlines() if line.strip()],
            site="mlp",
            max_length=32,
            batch_size=4,
            max_tokens=1200,
        )
    )
    values = np.concatenate([np.moveaxis(b.values, 0, 1).reshape(len(b.tokens), -1) for b in batches])
    mi = pairmi.mi_matrix(values, estimator="equal_frequency", edges=saved["edges"], dtype=np.float64)
    idx = saved["indices"]
    has = idx >= 0
    np.testing.assert_allclose(saved["mi"][has], mi[np.nonzero(has)[0], idx[has]], rtol=0, atol=1e-12)
    with open(tmp_path / "straight" / "topk.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["layer_a", "unit_a", "layer_b", "unit_b", "rank", "mi_bits", "null_bits", "q", "screen_bits"]
    assert len(rows) == int(has.sum()) and any(r["layer_a"] != r["layer_b"] for r in rows)
    first = rows[0]
    a = int(first["layer_a"]) * 128 + int(first["unit_a"])
    b = int(first["layer_b"]) * 128 + int(first["unit_b"])
    assert float(first["mi_bits"]) == pytest.approx(mi[a, b], abs=1e-5)
    # Ctrl-C in each pass, then --resume: the same result, and no model run on windows already read.
    real = corpus_topk.topk_corpus
    for stop_at in (700, 1900):

        def interrupted(*a, progress=None, stop_at=stop_at, **k):
            def stop(done, total):
                progress(done, total)
                if done >= stop_at:
                    raise KeyboardInterrupt

            return real(*a, progress=stop, **k)

        monkeypatch.setattr(corpus_topk, "topk_corpus", interrupted)
        resume = ["--resume"] if stop_at > 700 else []
        assert main([*args, "--out", str(tmp_path / "r"), *resume]) == 130
        assert "rerun with --resume" in capsys.readouterr().err
    monkeypatch.setattr(corpus_topk, "topk_corpus", real)
    assert main([*args, "--out", str(tmp_path / "r"), "--resume"]) == 0
    again = dict(np.load(tmp_path / "r" / "topk.npz"))
    for name in ("indices", "mi", "q", "pairs", "edges"):
        np.testing.assert_array_equal(again[name], saved[name])
    assert not (tmp_path / "r" / ".corpus-state.npz").exists()


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--all-layers"], "--all-layers applies to --topk"),
        (["--topk", "4", "--estimator", "ksg"], "equal_width or equal_frequency"),
        (["--topk", "4", "--workers", "2", "--resume"], "single-process run"),
        (["--topk", "4", "--candidates", "2"], "at least --topk"),
        (["--topk", "4", "--position-lags", "1"], "position null"),
        (["--topk", "4", "--sample-tokens", "-1"], "--sample-tokens must be >= 0"),
        (["--topk", "4", "--screen-tokens", "10"], "at least --calibration-tokens"),
        (["--screen-tokens", "20000"], "--screen-tokens applies to --topk"),
    ],
)
def test_cli_topk_refusals(tmp_path, capsys, extra, words):
    assert main(["analyze", "--python-docs", "--out", str(tmp_path / "o"), *extra]) == 2
    assert words in capsys.readouterr().err


def reported(top: dict) -> dict:
    """(unit, partner) -> MI of every partner a saved top-k run reports."""
    return {(u, int(j)): v for u, (row, vals) in enumerate(zip(top["indices"], top["mi"])) for j, v in zip(row, vals) if j >= 0}


def test_cli_topk_on_a_local_dask_cluster_counts_as_one_process(tiny_gpt2_dir, corpus_file, tmp_path, capfd):
    pytest.importorskip("distributed")
    args = ["analyze", "--model", str(tiny_gpt2_dir), "--corpus", str(corpus_file), *FLAGS]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    assert main([*args, "--out", str(tmp_path / "two"), "--workers", "2", "--shard-tokens", "400"]) == 0
    assert "local Dask cluster: 2 worker processes" in capfd.readouterr().err
    one, two = dict(np.load(tmp_path / "one" / "topk.npz")), dict(np.load(tmp_path / "two" / "topk.npz"))
    assert json.loads(str(two["header"]))["shards"] > 1 and int(json.loads(str(two["header"]))["n_samples"]) == 1200
    np.testing.assert_array_equal(two["edges"], one["edges"])  # the same calibration tokens
    np.testing.assert_array_equal(two["degenerate"], one["degenerate"])
    # The same tokens and edges give the same counts: a pair both runs report has the same MI; the
    # screen's float sums round with the sharding, so a pair at the candidates' edge may differ.
    a, b = reported(one), reported(two)
    common = set(a) & set(b)
    assert len(common) >= 0.97 * len(a)
    assert all(a[p] == b[p] for p in common)


def test_topk_corpus_refuses_a_one_shot_iterator(tiny_gpt2_dir):
    with pytest.raises(TypeError, match="read twice"):
        corpus_topk.topk_corpus(str(tiny_gpt2_dir), iter(["a text"]))


def test_the_partners_explorer_of_a_topk_run(tmp_path):
    """pairmi explore on a top-k run's folder: every unit's partners, in Debian's Chromium, offline."""
    import importlib.util
    import os
    import shutil
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_topk_stream import chunks, planted

    x, plant = planted()
    top = pairmi.topk_stream(chunks(x, 4000), n_partners=6, calibration=4000, layers=[128, 128])
    corpus_topk.CorpusTopK(top, ["L0", "L1"], 128, {}).save(tmp_path)
    assert main(["explore", str(tmp_path)]) == 0
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if os.environ.get("CI") and (chromium is None or importlib.util.find_spec("playwright") is None):
        pytest.fail(".ci/run installs chromium and playwright: the browser tests must run in CI")
    playwright = pytest.importorskip("playwright.sync_api")
    if chromium is None:
        pytest.skip("no chromium here (apt-get install chromium)")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        tab = browser.new_context(offline=True, viewport={"width": 1300, "height": 900}).new_page()
        errors: list[str] = []
        tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        tab.on("pageerror", lambda e: errors.append(str(e)))
        tab.goto((tmp_path / "explorer.html").as_uri())
        tab.wait_for_function("document.body.dataset.ready === '1'", timeout=30_000)
        a, b = 20, plant[20]  # the x^2 pair, across the two layers
        tab.evaluate(f"window.pairmiExplorer.showUnit({a // 128}, {a % 128})")
        first = tab.locator("#partners tbody tr").first
        assert first.get_attribute("data-partner") == f"{b // 128}:{b % 128}"
        assert first.get_attribute("data-mi") == f"{top.mi[a, 0]:.4f}"
        assert tab.locator("#partners tbody tr").count() == 6
        first.click()  # a partner opens its own partners, the planted one first
        assert tab.text_content("#unitName") == f"L{b // 128} unit {b % 128}"
        assert tab.locator("#partners tbody tr").first.get_attribute("data-partner") == f"{a // 128}:{a % 128}"
        assert tab.locator("#strongest tbody tr").count() > 100
        shots = Path(__file__).resolve().parent.parent / "build"
        shots.mkdir(exist_ok=True)
        tab.screenshot(path=str(shots / "topk-explorer-test.png"), full_page=True)
        browser.close()
    assert errors == []
