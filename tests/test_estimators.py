"""KSG, Gaussian copula, Miller-Madow, permutation nulls and tests, against independent references:
scikit-learn's mutual_info_regression, scipy, numpy formulas and analytic Gaussian MI."""

from __future__ import annotations

import numpy as np
import pytest
import reference
from datagen import make
from hypothesis import given
from hypothesis import strategies as st

import pairmi
from pairmi.settings import auto_bins

sklearn_fs = pytest.importorskip("sklearn.feature_selection")
scipy_stats = pytest.importorskip("scipy.stats")
scipy_special = pytest.importorskip("scipy.special")

LN2 = np.log(2.0)


def gaussian_mi_bits(rho: float) -> float:
    return -0.5 * np.log2(1 - rho**2)


def bivariate(n: int, rho: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2))
    return np.stack([z[:, 0], rho * z[:, 0] + np.sqrt(1 - rho**2) * z[:, 1]], axis=1)


# --- KSG ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [10, 50, 200, 2000])
def test_ksg_equals_sklearn_mutual_info_regression(n):
    X = make("mixed", n, 5, seed=n)  # continuous: no ties
    got = pairmi.mi_matrix(X, estimator="ksg", k=3, units="nats", threads=2)
    for i in range(5):
        want = sklearn_fs.mutual_info_regression(np.delete(X, i, axis=1), X[:, i], n_neighbors=3, random_state=0)
        np.testing.assert_allclose(np.delete(got[:, i], i), want, rtol=0, atol=1e-6)
    assert np.isinf(np.diag(got)).all() and np.array_equal(got, got.T)


@given(st.integers(10, 300), st.integers(1, 8), st.integers(0, 2**31))
def test_ksg_cross_and_k_against_sklearn(n, k, seed):
    k = min(k, n - 1)
    X, Y = make("mixed", n, 2, seed), make("heavy", n, 3, seed + 1)
    got = pairmi.mi_matrix(X, Y, estimator="ksg", k=k, threads=2)  # bits
    for j in range(3):
        want = sklearn_fs.mutual_info_regression(X, Y[:, j], n_neighbors=k, random_state=0) / LN2
        np.testing.assert_allclose(got[:, j], want, rtol=0, atol=1e-6 / LN2)


def test_ksg_layers_threads_and_constant_columns():
    H = np.stack([make("mixed", 90, 20, s) for s in range(3)]).astype(np.float32)
    H[1, :, 4] = 2.0
    got = pairmi.mi_layers(H, estimator="ksg", threads=3)
    assert np.array_equal(got, pairmi.mi_layers(H, estimator="ksg", threads=1))
    np.testing.assert_array_equal(got[2], pairmi.mi_matrix(H[2], estimator="ksg"))
    assert (np.delete(got[1][4], 4) == 0).all()


# --- Gaussian copula ---------------------------------------------------------------------------


def copula_reference(x, y):
    """scipy: average ranks -> ndtri(r / (n + 1)) -> Pearson correlation -> -1/2 ln(1 - rho^2)."""
    n = x.size
    zx = scipy_special.ndtri(scipy_stats.rankdata(x) / (n + 1))
    zy = scipy_special.ndtri(scipy_stats.rankdata(y) / (n + 1))
    rho = np.corrcoef(zx, zy)[0, 1]
    return -0.5 * np.log(1 - rho**2)


@pytest.mark.parametrize("kind", ["normal", "heavy", "ties", "mixed"])
def test_gaussian_copula_against_scipy(kind):
    X = make(kind, 150, 6, seed=3)
    got = pairmi.mi_matrix(X, estimator="gaussian_copula", units="nats")
    for i in range(6):
        for j in range(6):
            if i != j:
                assert abs(got[i, j] - copula_reference(X[:, i], X[:, j])) <= 1e-9
    Y = make("normal", 150, 2, seed=4)
    cross = pairmi.mi_matrix(X, Y, estimator="gaussian_copula", units="nats")
    assert abs(cross[5, 1] - copula_reference(X[:, 5], Y[:, 1])) <= 1e-9


def test_gaussian_copula_constant_column_is_zero():
    X = make("constant", 50, 4, seed=5)
    got = pairmi.mi_matrix(X, estimator="gaussian_copula")
    assert (got[0, 1:] == 0).all() and np.isinf(got[1, 1])


def copula_whole(x, y):
    """The copula's definition on whole float64 matrices (no blocks), in nats: the normal scores'
    correlation matrix by one product, then -1/2 ln(1 - rho^2)."""
    from pairmi.copula import normal_scores

    zx = normal_scores(x.T)
    zy = zx if y is None else normal_scores(y.T)
    with np.errstate(divide="ignore"):
        return -0.5 * np.log1p(-(np.clip(zx @ zy.T, -1, 1) ** 2))


@pytest.mark.parametrize("cross", [False, True])
def test_gaussian_copula_in_blocks_equals_the_whole_product(monkeypatch, cross):
    """Blocks of rows (here 7 rows at a time, so the square blocks, the mirrored strips and a short
    last block all occur) give the whole-matrix values within 1e-12 nats, exactly symmetric."""
    X = make("mixed", 120, 45, seed=6)
    Y = make("heavy", 120, 30, seed=7) if cross else None
    monkeypatch.setattr(pairmi.copula, "BLOCK_BYTES", 7 * 8 * (30 if cross else 45))
    got = pairmi.mi_matrix(X, Y, estimator="gaussian_copula", units="nats")
    want = copula_whole(X, Y)
    if not cross:
        np.fill_diagonal(want, np.inf)
        np.testing.assert_array_equal(got, got.T)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_gaussian_copula_layers_into_memmap_equal_in_memory(tmp_path, monkeypatch):
    monkeypatch.setattr(pairmi.copula, "BLOCK_BYTES", 10 * 8 * 40)
    H = np.stack([make("normal", 80, 40, seed=s) for s in (8, 9, 10)]).astype(np.float32)
    out = np.lib.format.open_memmap(tmp_path / "mi.npy", mode="w+", dtype=np.float32, shape=(3, 40, 40))
    pairmi.mi_layers(H, estimator="gaussian_copula", out=out)
    del out
    np.testing.assert_array_equal(
        np.load(tmp_path / "mi.npy"), pairmi.mi_layers(H, estimator="gaussian_copula", dtype=np.float32)
    )


def test_gaussian_copula_progress_counts_blocks(monkeypatch):
    monkeypatch.setattr(pairmi.copula, "BLOCK_BYTES", 16 * 8 * 50)
    calls = []
    pairmi.mi_layers(
        make("normal", 60, 50, seed=11)[None].repeat(2, axis=0),
        estimator="gaussian_copula",
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls == [(k, 8) for k in range(1, 9)]  # 2 layers x 4 blocks of 16, 16, 16, 2 rows


# --- Miller-Madow and auto bins ------------------------------------------------------------------


def miller_madow_reference(x, y, estimator, bins):
    counts = np.histogram2d(x, y, bins=[reference.edges(x, estimator, bins), reference.edges(y, estimator, bins)])[0]
    n = counts.sum()

    def h(c):
        p = c[c > 0] / n
        return -np.sum(p * np.log(p)) + (np.count_nonzero(c) - 1) / (2 * n)

    return (h(counts.sum(1)) + h(counts.sum(0)) - h(counts)) / LN2


@pytest.mark.parametrize("estimator", ["equal_width", "equal_frequency"])
@pytest.mark.parametrize("n", [30, 90, 1000])
def test_miller_madow_against_reference(estimator, n):
    X = make("outliers", n, 6, seed=n)
    got = pairmi.mi_matrix(X, estimator=estimator, bins=12, correction="miller_madow")
    for i in range(6):
        for j in range(6):
            want = miller_madow_reference(X[:, i], X[:, j], estimator, 12)
            assert abs(got[i, j] - want) <= 1e-9, (i, j)


def test_auto_bins_rule():
    assert auto_bins(90) == 5 and auto_bins(4096) == 13 and auto_bins(2) == 2
    X = make("normal", 90, 3, 6)
    np.testing.assert_array_equal(pairmi.mi_matrix(X, bins="auto"), pairmi.mi_matrix(X, bins=5))


# --- nulls, shuffle correction, tests -----------------------------------------------------------


def test_null_mi_reproducible_and_consistent_with_mi_test():
    X = make("mixed", 90, 8, seed=7)
    null = pairmi.null_mi(X, n_permutations=30, seed=11, dtype=np.float64)
    assert null.shape == (30, 8, 8)
    np.testing.assert_array_equal(null, pairmi.null_mi(X, n_permutations=30, seed=11, dtype=np.float64, threads=1))
    assert not np.array_equal(null, pairmi.null_mi(X, n_permutations=30, seed=12, dtype=np.float64))
    h = np.diag(pairmi.mi_matrix(X))
    np.testing.assert_allclose(null[:, np.arange(8), np.arange(8)], np.broadcast_to(h, (30, 8)), atol=1e-12)
    test = pairmi.mi_test(X, n_permutations=30, seed=11)
    observed = pairmi.mi_matrix(X)
    np.testing.assert_allclose(test.mi, observed, atol=1e-12)
    np.testing.assert_allclose(test.null_mean, null.mean(axis=0), atol=1e-12)
    p = (1 + (null >= observed - 1e-12).sum(axis=0)) / 31
    off = ~np.eye(8, dtype=bool)
    np.testing.assert_array_equal(test.p_value[off], p[off])
    assert np.isnan(np.diag(test.p_value)).all()


def test_null_values_are_mi_of_permuted_samples():
    """Each null entry is the reference MI of x against some permutation of y: same marginals."""
    X = make("normal", 60, 2, seed=8)
    null = pairmi.null_mi(X[:, [0]], X[:, [1]], n_permutations=5, seed=1, dtype=np.float64)[:, 0, 0]
    rng = np.random.default_rng(1)
    for value in null:
        # An independent re-derivation: the permutation numpy's Generator.permuted draws for y.
        perm = rng.permuted(np.arange(60))
        assert abs(value - reference.mi_pair(X[:, 0], X[perm, 1])) <= 1e-9


def test_shuffle_correction_subtracts_null_mean():
    X = make("mixed", 90, 6, seed=9)
    corrected = pairmi.mi_matrix(X, estimator="equal_frequency", correction="shuffle", n_permutations=15, seed=3)
    null = pairmi.null_mi(X, estimator="equal_frequency", n_permutations=15, seed=3, dtype=np.float64)
    want = pairmi.mi_matrix(X, estimator="equal_frequency") - null.mean(axis=0)
    off = ~np.eye(6, dtype=bool)
    np.testing.assert_allclose(corrected[off], want[off], atol=1e-12)
    np.testing.assert_allclose(np.diag(corrected), np.diag(pairmi.mi_matrix(X, estimator="equal_frequency")))


def test_mi_test_separates_dependence_from_independence():
    X = np.concatenate([bivariate(300, 0.8, 1), np.random.default_rng(2).normal(size=(300, 2))], axis=1)
    t = pairmi.mi_test(X, n_permutations=99, seed=0)
    assert t.p_value[0, 1] == pytest.approx(0.01) and t.p_value[2, 3] > 0.05
    assert t.corrected[0, 1] > 0.3 and abs(t.corrected[2, 3]) < 0.05


# --- validation on Gaussians with known MI --------------------------------------------------------


def test_shuffle_corrected_equal_frequency_is_unbiased_at_90_tokens():
    plain, corrected = [], []
    for seed in range(40):
        X = bivariate(90, 0.0, seed)
        plain.append(pairmi.mi_matrix(X, estimator="equal_frequency")[0, 1])
        corrected.append(pairmi.mi_matrix(X, estimator="equal_frequency", correction="shuffle", seed=seed)[0, 1])
    assert np.mean(plain) > 1.0  # the plug-in bias the correction removes
    assert abs(np.mean(corrected)) <= 0.05


@pytest.mark.parametrize(
    "kwargs",
    [
        {"estimator": "equal_width"},
        {"estimator": "equal_frequency"},
        {"estimator": "equal_width", "correction": "shuffle"},
        {"estimator": "equal_frequency", "correction": "miller_madow"},
        {"estimator": "ksg"},
        {"estimator": "gaussian_copula"},
    ],
)
def test_all_estimators_recover_gaussian_mi_at_4096(kwargs):
    est = np.mean([pairmi.mi_matrix(bivariate(4096, 0.6, seed), **kwargs)[0, 1] for seed in range(3)])
    assert abs(est - gaussian_mi_bits(0.6)) <= 0.03


@pytest.mark.parametrize("estimator", ["ksg", "gaussian_copula"])
def test_continuous_estimators_at_90_tokens(estimator):
    est = np.mean([pairmi.mi_matrix(bivariate(90, 0.6, seed), estimator=estimator)[0, 1] for seed in range(40)])
    assert abs(est - gaussian_mi_bits(0.6)) <= 0.06


# --- argument errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"estimator": "ksg", "correction": "shuffle"}, "correction"),
        ({"estimator": "ksg", "k": 20}, "k must be"),
        ({"estimator": "ksg", "k": 0}, "k must be"),
        ({"estimator": "magic"}, "estimator"),
        ({"correction": "bonferroni"}, "correction"),
        ({"correction": "shuffle", "n_permutations": 0}, "n_permutations"),
        ({"bins": "sturges"}, "bins"),
    ],
)
def test_bad_estimator_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        pairmi.mi_matrix(make("normal", 20, 3, 0), **kwargs)
    with pytest.raises(ValueError, match="binned"):
        pairmi.mi_test(make("normal", 20, 3, 0), estimator="ksg")


def test_layer_nulls_do_not_depend_on_batching():
    H = np.stack([make("mixed", 90, 10, s) for s in range(3)])
    together = pairmi.mi_layers(H, estimator="equal_frequency", correction="shuffle", seed=5)
    for layer in range(3):
        alone = pairmi.mi_layers(H[layer : layer + 1], estimator="equal_frequency", correction="shuffle", seed=5)
        np.testing.assert_array_equal(together[layer], alone[0])
