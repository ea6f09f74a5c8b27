"""The explorer: its data round-trips exactly, and the page works in a real headless Chromium
(Debian's package, driven by Playwright; skipped where either is missing)."""

from __future__ import annotations

import base64
import gzip
import importlib.util
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import pairmi
from pairmi import explorer
from pairmi.analysis import analyze, save
from pairmi.cli import DEMO_TEXT, main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def unpacked(b64: str, dtype) -> np.ndarray:
    return np.frombuffer(gzip.decompress(base64.b64decode(b64)), dtype=dtype)


@pytest.fixture(scope="module")
def run():
    hs = pairmi.hidden_states("minilm", DEMO_TEXT)
    return analyze(hs, dims=slice(0, 40), null=True, estimator="equal_frequency", bins=6, threads=2)


def shown(packed: dict) -> np.ndarray:
    """The page's decoding of values shown to 4 decimals (explorer._shown)."""
    planes = unpacked(packed["data"], np.uint8).reshape(2, -1)
    values = (packed["base"] + (planes[0].astype(np.int64) | (planes[1].astype(np.int64) << 8))) / packed["scale"]
    index, aside = packed["over"]
    values[index] = [np.nan if v is None else v for v in aside]
    return values


def test_the_data_round_trip_to_what_the_page_shows(run):
    data = explorer.payload(run)
    d = run.mi.shape[1]
    upper = np.triu_indices(d, 1)
    for k in range(run.mi.shape[0]):
        assert [f"{v:.4f}" for v in shown(data["mi"][k])] == [f"{v:.4f}" for v in run.mi[k][upper]]  # 4 decimals, exactly
        assert [f"{v:.3f}" for v in shown(data["null"][k])] == [f"{v:.3f}" for v in run.extra["null"][k][upper]]
    wide = np.array([-1.5, 0.0, 7.25, np.inf, 2.00005])  # beyond 6.5534 above the smallest, or not finite: aside
    np.testing.assert_array_equal(shown(explorer._shown(wide)), [-1.5, 0.0, 7.25, np.nan, 2.0])
    top = data["top"][-1]
    above = [row[2] - row[3] for row in top]
    assert above == sorted(above, reverse=True) and len(top) == min(explorer.TABLE_PAIRS, d * (d - 1) // 2)
    i, j, mi, _, q = top[0]
    a, b = list(run.dims).index(i), list(run.dims).index(j)
    assert mi == pytest.approx(float(run.mi[-1][a, b]), abs=1e-6) and 0 < q <= 1
    kept = data["kept"]
    codes = np.zeros((kept["n"], d), dtype=np.int64)
    for k, packed in enumerate(kept["codes"]):  # each layer its change from the one before, mod bins
        pairs = unpacked(packed, np.uint8)
        change = np.stack([pairs & 15, pairs >> 4], axis=1).ravel()[: kept["n"] * d].reshape(kept["n"], d)
        codes = change if k == 0 else (codes + change) % 6
        # At the run's equal-frequency edges, as np.histogram2d bins each unit (the last bin closed).
        for u in range(d):
            x = run.hidden_states[k][:, run.dims[u]].astype(np.float64)
            edges = np.percentile(x, np.linspace(0, 100, 7))
            want = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, 5)
            np.testing.assert_array_equal(codes[:, u], want)
    assert kept["bins"] == 6 and kept["tokens"][:3] == run.tokens[:3]
    json.dumps(data)  # serialisable as is


def test_cli_writes_the_file_into_the_run_folder(run, tmp_path, capsys):
    folder = tmp_path / "run"
    save(run, folder)
    assert main(["explore", str(folder)]) == 0
    page = (folder / "explorer.html").read_text()
    assert "wrote" in capsys.readouterr().out and "<script>" in page and "https://" not in page
    assert "explorer.html" in json.loads((folder / ".pairmi-written.json").read_text())["files"]
    assert main(["explore", str(tmp_path / "nothing")]) == 2
    saved = np.load(folder / "mi.npz")
    assert saved["edges"].shape == (7, 40, 7)  # the run's edges travel with it
    bad = dict(saved)
    bad["edges"] = bad["edges"][:, :, ::-1]  # unsorted: refused on reading, naming the file
    np.savez(tmp_path / "bad.npz", **bad)
    with pytest.raises(ValueError, match=r"bad\.npz.*'edges' must be finite and sorted"):
        pairmi.analysis.load(tmp_path / "bad.npz")


def planted() -> pairmi.analysis.Analysis:
    """A run where units 0 and 1 are driven by one token type: both high on 'coffee', noise elsewhere."""
    rng = np.random.default_rng(3)
    words = ["the", "cup", "is", "of", "a", "sugar", "water", "pot", "in", "with"]
    tokens = [("coffee" if rng.random() < 0.08 else words[rng.integers(10)]) for _ in range(600)]
    states = rng.normal(size=(2, 600, 8)).astype(np.float32)
    hot = np.array([t == "coffee" for t in tokens])
    states[:, hot, :2] += 4.0
    hs = pairmi.extract.HiddenStates(states, tokens, ["L0", "L1"], "planted", "residual", {})
    return analyze(hs, null=True, estimator="equal_frequency", bins=8, threads=2)


@pytest.fixture(scope="module")
def page(run, tmp_path_factory):
    if os.environ.get("CI") and (CHROMIUM is None or importlib.util.find_spec("playwright") is None):
        pytest.fail(".ci/run installs chromium and playwright: the browser tests must run in CI")
    playwright = pytest.importorskip("playwright.sync_api")
    if CHROMIUM is None:
        pytest.skip("no chromium here (apt-get install chromium)")
    folder = tmp_path_factory.mktemp("explorer")
    pairmi.explore(run, folder / "explorer.html")
    pairmi.explore(planted(), folder / "planted.html")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(offline=True, viewport={"width": 1400, "height": 1000})  # no network at all
        tab = context.new_page()
        tab.folder = folder  # type: ignore[attr-defined]
        errors: list[str] = []
        tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        tab.on("pageerror", lambda e: errors.append(str(e)))
        tab.goto((folder / "explorer.html").as_uri())
        tab.wait_for_function("document.body.dataset.ready === '1'", timeout=30_000)
        tab.errors = errors  # type: ignore[attr-defined]
        yield tab
        # A screenshot of each run, to look at (build/ is ignored by git).
        shots = Path(__file__).resolve().parent.parent / "build"
        shots.mkdir(exist_ok=True)
        tab.screenshot(path=str(shots / "explorer-test.png"), full_page=True)
        browser.close()


def test_the_page_loads_without_errors(page):
    assert page.errors == []
    assert page.text_content("#layerName") == "L6"


def test_select_shows_the_pair_and_the_tokens_behind_it(page, run):
    i, j = int(run.dims[3]), int(run.dims[17])
    page.evaluate(f"window.pairmiExplorer.select(6, {i}, {j})")
    page.wait_for_function("document.querySelector('[data-pair-mi]').dataset.pairMi !== ''")
    assert page.get_attribute("[data-pair-mi]", "data-pair-mi") == f"{run.mi[6][3, 17]:.4f}"
    tokens = page.eval_on_selector_all("[data-token]", "els => els.map(e => e.dataset.token)")
    assert tokens and set(tokens) <= set(run.tokens)
    assert page.errors == []


def test_a_real_click_on_a_cell_opens_that_pair(page, run):
    box = page.locator("#heat").bounding_box()
    d = run.mi.shape[1]
    a, b = 5, 30  # row a, column b: the cell's centre
    page.mouse.click(box["x"] + (b + 0.5) * box["width"] / d, box["y"] + (a + 0.5) * box["height"] / d)
    page.wait_for_function(f"document.querySelector('#pairName').textContent.endsWith('{run.dims[a]} – {run.dims[b]}')")
    assert page.get_attribute("[data-pair-mi]", "data-pair-mi") == f"{run.mi[6][a, b]:.4f}"


def test_layers_by_key_the_table_and_the_unit_view(page, run):
    page.keyboard.press("ArrowLeft")
    page.wait_for_function("document.querySelector('#layerName').textContent === 'L5'")
    page.click("#pairs tbody tr:first-child")
    i, j, mi, _, _ = explorer.payload(run)["top"][5][0]
    page.wait_for_function(f"document.querySelector('#pairName').textContent.endsWith('{i} – {j}')")
    assert page.get_attribute("[data-pair-mi]", "data-pair-mi") == f"{mi:.4f}"
    page.click("#pairUnits .unit")
    page.wait_for_function("document.querySelectorAll('#unit tr').length === 8")  # a header and 7 layers
    assert page.errors == []


def test_select_across_layers(page, run):
    for layer, a, b in ((0, 2, 9), (3, 11, 25), (6, 0, 39)):
        page.evaluate(f"window.pairmiExplorer.select({layer}, {int(run.dims[a])}, {int(run.dims[b])})")
        page.wait_for_function(f"document.querySelector('#layerName').textContent === 'L{layer}'")
        assert page.get_attribute("[data-pair-mi]", "data-pair-mi") == f"{run.mi[layer][a, b]:.4f}"
    assert page.errors == []


def test_the_tokens_of_a_planted_dependence_are_its_token_type(page):
    """Units 0 and 1 are driven by 'coffee': the pair's most over-represented cell holds coffee."""
    page.goto((page.folder / "planted.html").as_uri())
    page.wait_for_function("document.body.dataset.ready === '1'")
    page.evaluate("window.pairmiExplorer.select(1, 0, 1)")
    page.wait_for_function("document.querySelectorAll('[data-token]').length > 0")
    first_cell = page.eval_on_selector_all("#tokens .cell:first-child [data-token]", "els => els.map(e => e.dataset.token)")
    assert len(first_cell) >= 5 and set(first_cell) == {"coffee"}
    assert page.errors == []


def test_p_values_come_from_the_shuffled_null_not_the_position_null(run):
    """A position null is a level, not a distribution: with both, the pooled shuffled-token null
    gives the p-values (the figures' and the explorer's alike)."""
    import dataclasses

    from pairmi.analysis import counted_pairs
    from pairmi.figures import layer_p_values
    from pairmi.stats import pooled_null_p

    both = dataclasses.replace(run, extra={**run.extra, "position_null": np.zeros_like(run.extra["null"])})
    counted = counted_pairs(run, 3)
    want = pooled_null_p(run.mi[3][counted].astype(np.float64), run.extra["null"][3][counted])
    p, how = layer_p_values(both, 3)
    np.testing.assert_array_equal(p, want)
    assert how == "pooled shuffled-token null"
    without = dataclasses.replace(run, extra={"position_null": run.extra["null"], "degenerate": run.extra["degenerate"]})
    assert layer_p_values(without, 3) is None and explorer.payload(without)["q"] is None
