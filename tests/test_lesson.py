"""The theory lesson: every estimator side by side, the Gaussian truth, the bias curve, its figures."""

from __future__ import annotations

import numpy as np
import pytest

import pairmi

RHO = 0.7
TRUTH = -0.5 * np.log2(1 - RHO**2)  # 0.4859 bits


def gaussian_pair(n, rho, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return x, rho * x + np.sqrt(1 - rho**2) * rng.normal(size=n)


def test_gaussian_mi_is_the_analytic_formula():
    assert abs(pairmi.gaussian_mi(RHO) - TRUTH) < 1e-15
    assert abs(pairmi.gaussian_mi(np.sqrt(0.5)) - 0.5) < 1e-12  # the lesson's pair
    assert abs(pairmi.gaussian_mi(0.3, units="nats") + 0.5 * np.log(1 - 0.09)) < 1e-15
    with pytest.raises(ValueError, match="rho"):
        pairmi.gaussian_mi(1.0)


def test_compare_equals_each_estimator_and_its_null():
    x, y = gaussian_pair(300, RHO, 0)
    c = pairmi.compare(x, y, bins=12, k=4, n_permutations=30, seed=5, gaussian=True, units="nats")
    X, Y = x[:, None], y[:, None]
    for e, kw in (("equal_width", {"bins": 12}), ("equal_frequency", {"bins": 12}), ("ksg", {"k": 4}), ("gaussian_copula", {})):
        assert c.mi[e] == pairmi.mi_matrix(X, Y, estimator=e, units="nats", **kw)[0, 0]
        rng = np.random.default_rng(5)
        null = np.mean(
            [pairmi.mi_matrix(X, rng.permutation(y)[:, None], estimator=e, units="nats", **kw)[0, 0] for _ in range(30)]
        )
        assert abs(c.null[e] - null) <= 1e-12
        assert c.corrected[e] == c.mi[e] - c.null[e]
    assert abs(c.analytic + 0.5 * np.log(1 - np.corrcoef(x, y)[0, 1] ** 2)) < 1e-15
    assert "Gaussian, exact" in str(c) and "equal_frequency" in str(c)
    assert pairmi.compare(x, y, n_permutations=0).analytic is None


def test_compare_bad_input():
    with pytest.raises(ValueError, match="same number of samples"):
        pairmi.compare(np.zeros(10), np.zeros(11))
    with pytest.raises(ValueError, match="1-d"):
        pairmi.compare(np.zeros((10, 2)), np.zeros(10))
    with pytest.raises(ValueError, match="estimators must be among"):
        pairmi.compare(np.arange(10.0), np.arange(10.0), estimators=["pearson"])


def test_at_ten_thousand_samples_ksg_and_copula_hit_the_truth_binning_loses_information():
    """rho = 0.7, 10,000 samples, mean of 30 draws (one draw's KSG spreads by 0.015 bits, the
    copula's by 0.009: the mean's by under 0.003): KSG and the copula within 0.01 bits of the truth;
    shuffle-corrected 15-bin equal-frequency MI about 0.03 bits below it (binning discards the
    information within bins: the data processing inequality), not above."""
    curve = pairmi.bias_curve(RHO, sizes=(10_000,), draws=30, n_permutations=10, seed=1)
    assert abs(curve.truth - TRUTH) < 1e-15
    assert abs(curve.mean["ksg"][0] - TRUTH) < 0.01
    assert abs(curve.mean["gaussian_copula"][0] - TRUTH) < 0.01
    assert -0.045 < curve.mean["equal_frequency, shuffle-corrected"][0] - TRUTH < -0.015


def test_bias_curve_plug_in_binned_values_fall_with_samples():
    curve = pairmi.bias_curve(RHO, sizes=(50, 500, 5000), draws=3, seed=2, corrected=())
    for e in ("equal_width", "equal_frequency"):
        assert curve.mean[e][0] > curve.mean[e][1] > curve.mean[e][2] > TRUTH - 0.05
        assert curve.mean[e][0] > 1.0  # at 50 samples mostly bias
    with pytest.raises(ValueError, match="corrected must name binned"):
        pairmi.bias_curve(RHO, sizes=(100,), corrected=("ksg",))


# --- figures ----------------------------------------------------------------------------------------


def test_marginals_legend_gives_the_entropies():
    pytest.importorskip("matplotlib")
    from pairmi import plot

    x, y = gaussian_pair(200, RHO, 3)
    fig = plot.marginals(x, y, bins=15, names=("x", "y"))
    h = np.diag(pairmi.mi_matrix(np.stack([x, y], axis=1), bins=15))
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == [f"x: H = {h[0]:.3f} bits", f"y: H = {h[1]:.3f} bits"]
    shares = fig.axes[0].lines[0].get_ydata()
    np.testing.assert_allclose(shares, np.histogram(x, 15)[0] / 200)
    with pytest.raises(ValueError, match="binned"):
        plot.marginals(x, y, estimator="ksg")


def test_pair_overlay_draws_samples_over_the_histogram():
    pytest.importorskip("matplotlib")
    from pairmi import plot

    x, y = gaussian_pair(150, RHO, 4)
    fig = plot.pair(np.stack([x, y], axis=1), 0, 0, 1, overlay=True, names=("x", "y"))
    main = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(main) == 1 and len(main[0].collections) == 1 and len(main[0].lines) == 1
    np.testing.assert_array_equal(main[0].lines[0].get_xdata(), x)
    assert main[0].get_xlabel() == "x" and "MI = " in main[0].get_title()


def test_bias_figure_has_every_curve_and_the_truth():
    pytest.importorskip("matplotlib")
    from pairmi import plot

    curve = pairmi.bias_curve(RHO, sizes=(100, 1000, 2000), draws=2, n_permutations=5, seed=6)
    fig = plot.bias(curve)
    left, zoom = fig.axes
    labels = [t.get_text() for t in left.get_legend().get_texts()]
    assert labels[:5] == list(curve.mean) and labels[5].startswith("truth")
    assert left.lines[-1].get_ydata()[0] == curve.truth
    np.testing.assert_allclose(zoom.lines[0].get_ydata(), curve.mean["equal_width"][1:] - curve.truth)


def test_lesson_command_writes_its_figures(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from pairmi.cli import main

    assert main(["lesson", "--out", str(tmp_path), "--draws", "2", "--threads", "2"]) == 0
    out = capsys.readouterr().out
    assert "true MI is -1/2 log2(1 - 1/2) = 0.5 bits" in out and "Gaussian, exact" in out
    for name in ("marginals", "pair", "bias"):
        data = (tmp_path / f"{name}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
