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
    fig = plot.layer(mi, 1, null=np.full(66, 0.5))
    ax_h = fig.axes[0]
    assert "66 pairs" in ax_h.get_title() and len(ax_h.patches) == 120  # observed + null bars
    assert len(png_bytes(fig)) > 5_000


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
