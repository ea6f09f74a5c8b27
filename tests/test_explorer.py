"""The explorer: its data round-trips exactly, and the page works in a real headless Chromium
(Debian's package, driven by Playwright; skipped where either is missing)."""

from __future__ import annotations

import base64
import gzip
import importlib.util
import json
import os
import shutil

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


def test_the_data_round_trip_exactly(run):
    data = explorer.payload(run)
    d = run.mi.shape[1]
    upper = np.triu_indices(d, 1)
    for k in range(run.mi.shape[0]):
        np.testing.assert_array_equal(unpacked(data["mi"][k], np.float32), run.mi[k][upper].astype(np.float32))
        np.testing.assert_array_equal(unpacked(data["null"][k], np.float32), run.extra["null"][k][upper].astype(np.float32))
    top = data["top"][-1]
    above = [row[2] - row[3] for row in top]
    assert above == sorted(above, reverse=True) and len(top) == min(explorer.TABLE_PAIRS, d * (d - 1) // 2)
    i, j, mi, _, q = top[0]
    a, b = list(run.dims).index(i), list(run.dims).index(j)
    assert mi == pytest.approx(float(run.mi[-1][a, b]), abs=1e-6) and 0 < q <= 1
    kept = data["kept"]
    levels = unpacked(kept["levels"][0], np.uint8).reshape(kept["n"], d)
    ranks = run.hidden_states[0][:, run.dims].argsort(axis=0, kind="stable").argsort(axis=0, kind="stable")
    np.testing.assert_array_equal(levels, np.floor(ranks * 256 / kept["n"]).astype(np.uint8))  # equal-frequency: ranks
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


@pytest.fixture(scope="module")
def page(run, tmp_path_factory):
    if os.environ.get("CI") and (CHROMIUM is None or importlib.util.find_spec("playwright") is None):
        pytest.fail(".ci/run installs chromium and playwright: the browser tests must run in CI")
    playwright = pytest.importorskip("playwright.sync_api")
    if CHROMIUM is None:
        pytest.skip("no chromium here (apt-get install chromium)")
    path = tmp_path_factory.mktemp("explorer") / "explorer.html"
    pairmi.explore(run, path)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        tab.on("pageerror", lambda e: errors.append(str(e)))
        tab.goto(path.as_uri())
        tab.wait_for_function("document.body.dataset.ready === '1'", timeout=30_000)
        tab.errors = errors  # type: ignore[attr-defined]
        yield tab
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
