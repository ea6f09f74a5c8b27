"""Nulls and multiple testing: the shared null against per-pair permutations, rotations on
autocorrelated data, false discovery rates against scipy, ties and tie-breaking noise for KSG."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from datagen import make
from scipy import stats as scipy_stats

import pairmi
from pairmi import stats


@pytest.mark.parametrize("estimator,bins", [("equal_frequency", 6), ("gaussian_copula", 15)])
def test_shared_null_agrees_with_per_pair_permutations(estimator, bins):
    """Untied data, 999 permutations each: every pair's shared-null p-value within Monte Carlo error
    (4 standard errors of the per-pair estimate, plus one step of 1/1000) of its own permutation one."""
    X = make("mixed", 120, 12, 0)
    per_pair = pairmi.mi_test(X, estimator=estimator, bins=bins, n_permutations=999, seed=1)
    shared = pairmi.mi_test(X, estimator=estimator, bins=bins, n_permutations=999, seed=2, null="shared")
    np.testing.assert_array_equal(shared.mi, per_pair.mi)
    iu = np.triu_indices(12, k=1)
    p, q = per_pair.p_value[iu], shared.p_value[iu]
    tolerance = 4 * np.sqrt(p * (1 - p) / 1000) + 1e-3
    assert (np.abs(p - q) <= tolerance).all(), np.abs(p - q).max()
    # One null for all pairs: its mean is every pair's permutation null mean, up to their scatter.
    assert abs(per_pair.null_mean[iu].mean() - shared.null_mean[0, 1]) <= 0.02 * shared.null_mean[0, 1]
    assert np.isnan(np.diag(shared.p_value)).all() and shared.null == "shared"


def test_shared_null_is_refused_where_invalid():
    X = make("mixed", 80, 4, 1)
    with pytest.raises(ValueError, match=r"valid for .*equal_frequency"):
        pairmi.mi_test(X, estimator="equal_width", null="shared")
    with pytest.raises(ValueError, match=r"ties in 4 variable\(s\)"):
        pairmi.mi_test(make("ties", 80, 4, 2), estimator="equal_frequency", null="shared")
    with pytest.raises(ValueError, match="null must be one of"):
        pairmi.mi_test(X, null="bootstrap")
    with pytest.raises(ValueError, match="mi_test supports"):
        pairmi.mi_test(X, estimator="ksg")
    with pytest.raises(ValueError, match="segments apply to null='rotation'"):
        pairmi.mi_test(X, segments=[40, 40])


def ar1(n, d, phi, rng):
    """d independent AR(1) series of n steps, x_t = phi x_{t-1} + e_t."""
    e = rng.normal(size=(n, d))
    x = np.empty_like(e)
    x[0] = e[0] / np.sqrt(1 - phi**2)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + e[t]
    return x


@pytest.mark.parametrize("estimator", ["equal_frequency", "gaussian_copula"])
def test_rotation_p_values_are_uniform_on_autocorrelated_independent_data(estimator):
    """Independent AR(1) series (phi = 0.95): no dependence, but neighbouring samples alike.
    Rotations keep that, so their p-values are uniform (Kolmogorov-Smirnov p > 0.01); shuffles
    break it, so theirs are far too small."""
    rng = np.random.default_rng(3)
    X, Y = ar1(400, 20, 0.95, rng), ar1(400, 20, 0.95, rng)
    kw = {"estimator": estimator, "bins": 5, "n_permutations": 199, "seed": 4}
    rot = pairmi.mi_test(X, Y, null="rotation", **kw).p_value.ravel()
    shuf = pairmi.mi_test(X, Y, null="shuffle", **kw).p_value.ravel()
    assert scipy_stats.kstest(rot, "uniform").pvalue > 0.01
    assert (shuf < 0.05).mean() > 0.2 and (rot < 0.05).mean() < 0.1


def test_rotations_stay_inside_their_segments():
    rot = stats.Rotations(10, [4, 1, 5])
    idx = rot.indices(np.random.default_rng(0), 200)
    segment = np.repeat([0, 1, 2], [4, 1, 5])
    assert (segment[idx] == segment).all()  # never across a boundary
    for start, length in ((0, 4), (5, 5)):
        block = idx[:, start : start + length] - start
        shift = (block[:, 0] - 0) % length
        assert (shift > 0).all()  # a real rotation, never the identity
        np.testing.assert_array_equal(block, (np.arange(length) + shift[:, None]) % length)
    assert (idx[:, 4] == 4).all()
    for bad, words in (([4, 5], "add up to the 10"), ([10.0], "positive segment lengths"), ([0, 10], "positive")):
        with pytest.raises(ValueError, match=words):
            stats.Rotations(10, bad)


def test_rotation_keeps_the_window_lengths_of_hidden_states():
    """hs.meta['window_tokens'] are the segment lengths a rotation null needs."""
    texts = ["one short text here", "and another, a little longer than the first one"]
    try:
        hs = pairmi.hidden_states("minilm", texts, max_length=8)
    except ImportError:
        pytest.skip("needs the demo extra")
    assert sum(hs.meta["window_tokens"]) == len(hs.tokens) and len(hs.meta["window_tokens"]) > 2
    t = pairmi.mi_test(
        hs.values[1][:, :6], estimator="gaussian_copula", null="rotation", segments=hs.meta["window_tokens"], n_permutations=19
    )
    assert t.p_value.shape == (6, 6)


# --- false discovery rate ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["bh", "by"])
def test_fdr_equals_scipy(method):
    p = np.random.default_rng(5).uniform(size=300) ** 3
    np.testing.assert_allclose(pairmi.fdr(p, method), scipy_stats.false_discovery_control(p, method=method), rtol=1e-13, atol=0)
    with_nan = np.append(p, np.nan)
    q = pairmi.fdr(with_nan, method)
    assert np.isnan(q[-1])
    np.testing.assert_allclose(q[:-1], scipy_stats.false_discovery_control(p, method=method), rtol=1e-13)
    with pytest.raises(ValueError, match="method"):
        pairmi.fdr(p, "holm")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pairmi.fdr([0.5, 1.5])


def test_test_q_values_count_each_pair_once():
    X = make("mixed", 300, 8, 6)
    t = pairmi.mi_test(X, bins=4, n_permutations=99, seed=0)
    iu = np.triu_indices(8, k=1)
    q = t.q_value("bh")
    np.testing.assert_allclose(q[iu], scipy_stats.false_discovery_control(t.p_value[iu]), rtol=1e-13)
    np.testing.assert_array_equal(q, q.T)
    assert np.isnan(np.diag(q)).all()
    assert t.significant(0.05) == int((q[iu] <= 0.05).sum()) and t.significant(0.05) > 0
    Y = make("normal", 300, 3, 7)
    tests = [t, pairmi.mi_test(X, Y, bins=4, n_permutations=99, seed=0)]
    joint = pairmi.fdr_tests(tests)
    flat = np.concatenate([t.p_value[iu], tests[1].p_value.ravel()])
    want = scipy_stats.false_discovery_control(flat)
    np.testing.assert_allclose(joint[0][iu], want[: iu[0].size], rtol=1e-13)
    np.testing.assert_allclose(joint[1].ravel(), want[iu[0].size :], rtol=1e-13)


def test_mi_test_repr_is_one_line():
    t = pairmi.mi_test(make("normal", 60, 3, 6), bins=4, n_permutations=9)
    assert repr(t) == "MITest(3x3 pairs, null='shuffle', n_permutations=9, units='bits')"


@pytest.mark.parametrize("alpha", [2, 0, 1.0, float("nan"), "0.05", True])
def test_significant_refuses_what_is_no_rate(alpha):
    t = pairmi.mi_test(make("normal", 60, 3, 6), bins=4, n_permutations=9)
    with pytest.raises(ValueError, match=r"alpha \(the false discovery rate\) must be a number in \(0, 1\)"):
        t.significant(alpha)


def test_copula_test_observed_equals_mi_matrix():
    X = make("mixed", 90, 5, 8)
    t = pairmi.mi_test(X, estimator="gaussian_copula", n_permutations=50, seed=1)
    np.testing.assert_allclose(t.mi, pairmi.mi_matrix(X, estimator="gaussian_copula"), rtol=1e-12)
    assert ((t.p_value[np.triu_indices(5, 1)] > 0) & (t.p_value[np.triu_indices(5, 1)] <= 1)).all()


# --- ties ---------------------------------------------------------------------------------------------


def test_tie_shares():
    x = np.array([[1.0, 5.0], [2.0, 5.0], [2.0, 5.0], [3.0, 6.0]])[None]
    np.testing.assert_array_equal(stats.tie_shares(x), [[0.5, 0.75]])


def test_ksg_warns_on_heavy_ties_and_noise_breaks_them():
    rng = np.random.default_rng(9)
    x = rng.normal(size=2000)
    y = 0.6 * x + 0.8 * rng.normal(size=2000)
    coarse = np.round(np.c_[x, y] / 0.03) * 0.03  # 98.8 % of samples tied: KSG reads +0.33 bits
    with pytest.warns(RuntimeWarning, match="over 90% of their samples tied"):
        plain = pairmi.mi_matrix(coarse, estimator="ksg")[0, 1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jittered = pairmi.mi_matrix(coarse, estimator="ksg", noise=1e-10)[0, 1]
        again = pairmi.mi_matrix(coarse, estimator="ksg", noise=1e-10)[0, 1]
        other_seed = pairmi.mi_matrix(coarse, estimator="ksg", noise=1e-10, seed=1)[0, 1]
    truth = pairmi.gaussian_mi(0.6)
    assert plain - truth > 0.2 and abs(jittered - truth) < 0.05
    assert jittered == again and jittered != other_seed  # seeded, deterministic
    with pytest.raises(ValueError, match="noise applies to 'ksg'"):
        pairmi.mi_matrix(coarse, noise=1e-10)
    with pytest.raises(ValueError, match="noise must be"):
        pairmi.mi_matrix(coarse, estimator="ksg", noise=-1)
