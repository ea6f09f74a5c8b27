"""Figures: built, with the expected content, drawable to PNG; pyplot never involved."""

from __future__ import annotations

import io

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import pairmi
from pairmi import plot


@pytest.fixture
def hs():
    rng = np.random.default_rng(0)
    return rng.normal(size=(4, 90, 12)).astype(np.float32)


def png_bytes(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def test_pair_title_holds_mi(hs):
    fig = plot.pair(hs, 2, 3, 5)
    mi = pairmi.mi_matrix(hs[2][:, [3, 5]].astype(np.float64))[0, 1]
    assert f"{mi:.3f}" in fig.axes[1].get_title()
    assert len(png_bytes(fig)) > 5_000
    fig = plot.pair(hs, 0, 1, 2, estimator="equal_frequency", bins=10)
    assert "equal_frequency" in fig.axes[1].get_title()


def test_layer_histogram_and_heatmap(hs):
    mi = pairmi.mi_layers(hs)
    fig = plot.layer(mi, 1, null=np.linspace(0.3, 0.9, 66))
    ax_h = fig.axes[0]
    assert "66 pairs" in ax_h.get_title() and len(ax_h.patches) == 120  # observed + null bars
    assert len(png_bytes(fig)) > 5_000
    # A null far narrower than the values (a corpus run's first-order bias) is drawn as its line alone.
    narrow = plot.layer(mi, 1, null=np.full(66, 0.5)).axes[0]
    assert len(narrow.patches) == 60 and "null's 95% point (0.5)" in [t.get_text() for t in narrow.get_legend().get_texts()]


def test_layers_one_line_per_layer_plasma(hs):
    from matplotlib import colormaps

    mi = pairmi.mi_layers(hs)
    fig = plot.layers(mi, null=mi[0].ravel())
    lines = fig.axes[0].get_lines()
    assert len(lines) == 5
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["L0", "L1", "L2", "L3", "null"]
    np.testing.assert_allclose(lines[0].get_color(), colormaps["plasma"](0.0))
    assert len(png_bytes(fig)) > 5_000


def test_layers_needs_a_pair():
    from pairmi import plot

    with pytest.raises(ValueError, match=r"d >= 2 units \(a pair to plot\), got shape \(3, 1, 1\)"):
        plot.layers(np.zeros((3, 1, 1)))


def test_layers_ecdf_separates_continuous_estimators_and_titles_say_what():
    from pairmi import plot

    rng = np.random.default_rng(0)
    mi = np.abs(rng.normal(size=(3, 20, 20))) * np.array([0.01, 0.1, 1.0])[:, None, None]
    fig = plot.layers(mi, kind="ecdf", title="model, site, ksg (k = 3), 110 tokens")
    ax = fig.axes[0]
    assert ax.get_xscale() == "symlog" and ax.get_title() == "model, site, ksg (k = 3), 110 tokens"
    iu = np.triu_indices(20, k=1)
    for line, m in zip(ax.lines, mi):
        np.testing.assert_array_equal(line.get_xdata(), np.sort(m[iu]))
        assert line.get_ydata()[-1] == 1.0
    with pytest.raises(ValueError, match="kind"):
        plot.layers(mi, kind="violin")


def test_layer_heatmap_labels_the_real_units():
    from pairmi import plot

    fig = plot.layer(np.zeros((1, 5, 5)), 0, dims=[10, 12, 14, 16, 18], title="about")
    heat = fig.axes[1]
    assert [t.get_text() for t in heat.get_xticklabels()] == ["10", "12", "14", "16", "18"]
    assert fig._suptitle.get_text() == "about"


def _planted_run(null=True, estimator="equal_width"):
    """An analysis of 10 units over 200 tokens where units 7 and 8 are degenerate (scaled by 1e-30)
    copies of one signal: without the exclusion they would be the layer's highest-MI pair."""
    from pairmi.analysis import analyze
    from pairmi.extract import HiddenStates

    rng = np.random.default_rng(5)
    values = rng.normal(size=(2, 200, 10))
    values[:, :, 1] = values[:, :, 0] + 0.8 * rng.normal(size=(2, 200))  # a real dependent pair
    signal = rng.normal(size=(2, 200))
    values[:, :, 7], values[:, :, 8] = 1e-30 * signal, 1e-30 * (signal + 1e-3 * rng.normal(size=(2, 200)))
    hs = HiddenStates(values.astype(np.float32), [f"t{i}" for i in range(200)], ["L0", "L1"], "planted")
    return analyze(hs, null=null, estimator=estimator, bins=8, threads=1)


def test_planted_degenerate_units_leave_summaries_pair_choice_and_colour_scale():
    from pairmi.analysis import summary_rows
    from pairmi.figures import chosen_pair

    run = _planted_run()
    np.testing.assert_array_equal(run.extra["degenerate"], np.tile(np.isin(np.arange(10), [7, 8]), (2, 1)))
    counted = np.triu(np.ones((10, 10), bool), k=1)
    counted[[7, 8], :] = counted[:, [7, 8]] = False
    assert run.mi[1, 7, 8] > run.mi[1][counted].max()  # the degenerate pair would be the highest
    rows = summary_rows(run)
    assert rows[1]["pairs"] == 28 and rows[1]["degenerate_units"] == 2
    assert rows[1]["max"] == pytest.approx(float(run.mi[1][counted].max()))
    assert chosen_pair(run)[1:3] == (0, 1)
    heat = plot.layer(run.mi, 1, degenerate=run.extra["degenerate"][1], null=run.extra["null"][1][counted])
    colorbar = heat.axes[-1]
    assert colorbar.get_ylim()[1] == pytest.approx(float(run.mi[1][counted].max()))
    fig = plot.layers(run.mi, degenerate=run.extra["degenerate"])
    assert fig.axes[0].get_xlim()[1] < run.mi[1, 7, 8]  # the axis spans the real units' pairs


def test_figures_show_every_estimators_null_rank_and_p_value(tmp_path):
    from pairmi.figures import save_figures

    for estimator in ("equal_width", "ksg", "gaussian_copula"):
        run = _planted_run(estimator=estimator)
        paths = save_figures(run, tmp_path / estimator)
        assert [p.name for p in paths] == ["layers.png", "layer_L0.png", "layer_L1.png", "pair.png"]
        with open(paths[0], "rb") as fh:  # 200 dpi by default: 8 x 4.5 inches -> 1600 x 900 pixels
            header = fh.read(24)
        assert int.from_bytes(header[16:20], "big") == 1600
    fig = plot.layers(run.mi, null=run.extra["null"].ravel(), degenerate=run.extra["degenerate"])
    assert fig.axes[0].get_xscale() == "symlog" and "null" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def test_pair_title_says_rank_and_significance():
    from pairmi.figures import pair_significance

    run = _planted_run()
    text = pair_significance(run, 1, 0, 1)
    assert text.startswith("rank 1 of 28 pairs by MI above its null; p = ") and "(pooled shuffled-token null)" in text
    counted = np.triu(np.ones((10, 10), bool), k=1)
    counted[[7, 8], :] = counted[:, [7, 8]] = False
    null = run.extra["null"][1][counted]
    p = (1 + (null >= run.mi[1, 0, 1]).sum()) / (1 + null.size)  # against the layer's pooled null
    assert f"p = {p:.2g}, q = " in text


def test_heatmap_ticks_are_round_and_titles_wrap():
    mi = np.random.default_rng(1).random((1, 384, 384))
    fig = plot.layer(mi, 0, dims=list(range(384)), title="a long line " * 20)
    labels = [t.get_text() for t in fig.axes[1].get_xticklabels()]
    assert labels and all(int(v) % 50 == 0 for v in labels), labels
    assert "\n" in fig._suptitle.get_text()
    bias = plot.bias(pairmi.bias_curve(1 / np.sqrt(2), sizes=(100, 200), draws=2, n_permutations=3))
    assert "rho = 0.707:" in bias.axes[0].get_title()
