"""Figures: built, with the expected content, drawable to PNG; pyplot never involved."""

from __future__ import annotations

import io

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import pairmi  # noqa: E402
from pairmi import plot  # noqa: E402


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
