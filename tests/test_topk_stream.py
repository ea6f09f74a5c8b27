"""The pair-list accumulator and topk_stream against mi_matrix on the same samples and edges."""

from __future__ import annotations

import numpy as np
import pytest

import pairmi
from pairmi import stats

TOL = 1e-12  # bits: the core's counts are exact, only the entropies' rounding differs


def planted(d: int = 256, n: int = 20000, links: int = 4, rho: tuple = (0.06, 0.16), seed: int = 0):
    """Weak dependencies and four planted strong pairs (unit -> its partner), one of each kind:
    linear, x^2, |x| and a sign flip; unit 0 constant. Each of the ``links`` offsets o joins every
    unit u to u + o (mod d) through a latent of its own, at a correlation drawn from ``rho``: each
    unit has 2 * links weak partners of distinct strengths."""
    rng = np.random.default_rng(seed)
    share = 1.0 / (1.0 - 2 * links * np.mean(rho))  # a unit's variance over its noise's
    x = rng.normal(size=(n, d))
    for o in rng.choice(np.arange(1, d // 2), size=links, replace=False):
        shared = rng.normal(size=(n, d)) * np.sqrt(rng.uniform(*rho, size=d) * share)
        x += shared + np.roll(shared, int(o), axis=1)
    plant = {10: d - 156, 20: d - 56, 30: d - 106, 40: d - 6} if d > 200 else {10: 50, 20: 60, 30: 55, 40: 45}
    (a, b), (c, e), (f, g), (h, i) = plant.items()
    x[:, a] = x[:, b] + 0.3 * rng.normal(size=n) * x[:, b].std()
    x[:, c] = x[:, e] ** 2 + 0.05 * rng.normal(size=n)
    x[:, f] = np.abs(x[:, g]) + 0.05 * rng.normal(size=n)
    x[:, h] = x[:, i] * np.sign(rng.normal(size=n))
    x[:, 0] = 1.0
    return x, plant


def chunks(x: np.ndarray, size: int):
    return lambda: iter([x[s : s + size] for s in range(0, len(x), size)])


# --- PairAccumulator -------------------------------------------------------------------------------


@pytest.mark.parametrize("estimator", ["equal_frequency", "equal_width"])
@pytest.mark.parametrize("correction", [None, "miller_madow"])
def test_pair_list_equals_mi_matrix_and_is_bit_identical_over_chunkings(estimator, correction):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3001, 30))
    x[:, 4] += np.sin(3 * x[:, 17])
    edges = pairmi.fit_edges(x[:500], estimator, bins=9)
    pairs = np.array([(4, 17), (17, 4), (0, 29), (29, 1), (4, 5), (3, 2)] + [(5, j) for j in range(6, 30)])
    want = pairmi.mi_matrix(x, estimator=estimator, edges=edges, correction=correction)
    a = pairmi.PairAccumulator(pairs, estimator, edges=edges, correction=correction)
    for part in np.array_split(x, 7):
        a.update(part)
    b = pairmi.PairAccumulator(pairs, estimator, edges=edges, correction=correction).update(x)
    np.testing.assert_allclose(a.result(), want[pairs[:, 0], pairs[:, 1]], rtol=0, atol=TOL)
    np.testing.assert_array_equal(a.result(), b.result())
    dense = pairmi.Accumulator(estimator, edges=edges, correction=correction).update(x)
    np.testing.assert_allclose(a.bias(), dense.bias()[pairs[:, 0], pairs[:, 1]], rtol=0, atol=1e-15)
    assert a.result()[0] > 0.15 and abs(a.result()[0] - a.result()[1]) < TOL


def test_pair_list_merge_save_load_and_refusals(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(1000, 8))
    edges = pairmi.fit_edges(x, "equal_frequency", bins=5)
    pairs = [(0, 1), (2, 7), (7, 3)]
    whole = pairmi.PairAccumulator(pairs, edges=edges).update(x)
    a = pairmi.PairAccumulator(pairs, edges=edges).update(x[:400])
    b = pairmi.PairAccumulator(pairs, edges=edges).update(x[400:])
    np.testing.assert_array_equal(a.merge(b).result(), whole.result())
    a.save(tmp_path / "acc.npz")
    back = pairmi.PairAccumulator.load(tmp_path / "acc.npz")
    np.testing.assert_array_equal(back.result(), whole.result())
    assert back.n_samples == 1000
    # A failed update leaves the state as it was.
    bad = x[:10].copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        back.update(bad)
    with pytest.raises(ValueError, match="variables"):
        back.update(x[:, :5])
    assert back.n_samples == 1000
    np.testing.assert_array_equal(back.result(), whole.result())
    for wrong, match in (([(1, 1)], "different"), ([(0, 1, 2)], r"\(P, 2\)"), ([(-1, 2)], "in \\[0"), ([(0, 8)], "edges")):
        with pytest.raises(ValueError, match=match):
            pairmi.PairAccumulator(wrong, edges=edges)
    with pytest.raises(ValueError, match="binned"):
        pairmi.PairAccumulator(pairs, "ksg")
    with pytest.raises(ValueError, match="different pairs"):
        whole.merge(pairmi.PairAccumulator([(0, 1)], edges=edges).update(x))
    with pytest.raises(ValueError, match="no samples"):
        pairmi.PairAccumulator(pairs, edges=edges).result()
    (tmp_path / "junk.npz").write_bytes(b"not a state")
    with pytest.raises(ValueError, match="cannot load"):
        pairmi.PairAccumulator.load(tmp_path / "junk.npz")


def test_fdr_among_equals_fdr_of_all_tests():
    p = np.random.default_rng(3).random(40) ** 3
    q = stats.fdr_among(p, 300)
    np.testing.assert_allclose(q, stats.fdr(np.concatenate([p, np.ones(260)]))[:40], rtol=1e-15)


# --- topk_stream -----------------------------------------------------------------------------------


def brute_force_top(mi: np.ndarray, k: int, degenerate: np.ndarray) -> list[set[int]]:
    m = mi.astype(np.float64).copy()
    np.fill_diagonal(m, -np.inf)
    m[:, degenerate] = -np.inf
    return [set(np.argsort(-row, kind="stable")[:k].tolist()) for row in m]


def test_topk_stream_finds_every_planted_pair_with_exact_mi():
    x, plant = planted()
    k = 6
    top = pairmi.topk_stream(chunks(x, 4000), n_partners=k, calibration=4000)
    for a, b in plant.items():
        assert top.indices[a, 0] == b and top.indices[b, 0] == a, (a, b, top.indices[a], top.screen[a])
        assert top.q[a, 0] < 1e-10
    assert top.degenerate[0] and top.degenerate.sum() == 1
    assert (top.indices[0] == -1).all() and not (top.indices == 0).any()
    # Exact: every counted pair equals mi_matrix with the run's edges; each unit's top k is
    # the brute-force top k of the dense matrix (the screen lost none here).
    mi = pairmi.mi_matrix(x, estimator="equal_frequency", edges=top.edges, dtype=np.float64)
    has = top.indices >= 0
    rows = np.nonzero(has)[0]
    np.testing.assert_allclose(top.mi[has], mi[rows, top.indices[has]], rtol=0, atol=TOL)
    truth = brute_force_top(mi, k, top.degenerate)
    found = sum(len(set(top.indices[u][top.indices[u] >= 0].tolist()) & truth[u]) for u in range(x.shape[1]) if u != 0)
    assert found / (k * (x.shape[1] - 1)) >= 0.99
    # Null and q as documented: the plug-in bias, the G-test's BH among all non-degenerate pairs.
    n = x.shape[0]
    assert top.n_samples == n
    np.testing.assert_allclose(top.null[10, 0], 14 * 14 / (2 * n) / np.log(2), rtol=1e-12)
    assert (top.counted[1:] >= 4 * k).all() and (top.counted[1:] < x.shape[1] - 1).all()
    assert np.isfinite(top.margin[1:]).all()


def test_topk_stream_within_layers_pairs_no_units_across():
    x, plant = planted()
    top = pairmi.topk_stream(chunks(x, 4000), n_partners=6, calibration=4000, layers=[128, 128], across_layers=False)
    layer = np.arange(256) // 128
    has = top.indices >= 0
    assert has[1:].all() and (layer[top.indices[has]] == layer[np.nonzero(has)[0]]).all()
    for a, b in plant.items():  # planted pairs within a layer are still found; those across are not
        assert (top.indices[a, 0] == b) == (layer[a] == layer[b])
    both = pairmi.topk_stream(chunks(x, 4000), n_partners=6, calibration=4000, layers=[128, 128])
    assert (layer[both.indices[both.indices >= 0]] != layer[np.nonzero(both.indices >= 0)[0]]).any()


def test_topk_stream_resumes_identically_and_uses_skip(tmp_path):
    x, _ = planted(d=64, n=3000, seed=4)
    whole = pairmi.topk_stream(chunks(x, 300), n_partners=4, calibration=600)
    state = tmp_path / "run.npz"
    calls = []

    def stop_at(done, total):
        calls.append(done)
        if len(calls) in (4, 14):  # once in the screen, once while counting
            raise KeyboardInterrupt

    skipped = []

    def source(skip=0):
        skipped.append(skip)
        return iter([x[s : s + 300] for s in range(0, len(x), 300)][skip:])

    for _ in range(2):
        with pytest.raises(KeyboardInterrupt):
            pairmi.topk_stream(source, n_partners=4, calibration=600, state_path=state, resume=True, progress=stop_at)
        assert state.exists()
    again = pairmi.topk_stream(source, n_partners=4, calibration=600, state_path=state, resume=True)
    assert skipped[-1] > 0
    for name in ("indices", "mi", "q", "null", "pairs", "counted", "dropped", "edges"):
        np.testing.assert_array_equal(getattr(again, name), getattr(whole, name))
    with pytest.raises(ValueError, match="other settings"):
        pairmi.topk_stream(source, n_partners=5, calibration=600, state_path=state, resume=True)


def test_topk_stream_refusals():
    x = np.random.default_rng(5).normal(size=(500, 20))
    with pytest.raises(TypeError, match="callable"):
        pairmi.topk_stream(iter([x]))
    with pytest.raises(ValueError, match="n_partners"):
        pairmi.topk_stream(chunks(x, 100), n_partners=20, calibration=100)
    with pytest.raises(ValueError, match="candidates"):
        pairmi.topk_stream(chunks(x, 100), n_partners=4, candidates=2)
    with pytest.raises(ValueError, match="layers"):
        pairmi.topk_stream(chunks(x, 100), n_partners=4, calibration=100, layers=[10, 5])
    with pytest.raises(ValueError, match="binned"):
        pairmi.topk_stream(chunks(x, 100), estimator="gaussian_copula")
    twice = iter([x[:100], x[100:]])
    with pytest.raises(ValueError, match="same samples"):
        pairmi.topk_stream(lambda: twice, n_partners=2, calibration=100)


def test_a_screen_on_the_first_samples_counts_every_sample():
    x, plant = planted()
    reads = []

    def source():
        reads.append(0)
        for s in range(0, len(x), 2000):
            reads[-1] += 1
            yield x[s : s + 2000]

    top = pairmi.topk_stream(source, n_partners=4, calibration=4000, screen_samples=6000)
    assert reads == [3, 10]  # pass 1 stopped once the screen had 6,000 samples
    assert top.n_samples == len(x)
    for a, b in plant.items():
        assert top.indices[a, 0] == b
    mi = pairmi.mi_matrix(x, estimator="equal_frequency", edges=top.edges, dtype=np.float64)
    has = top.indices >= 0
    np.testing.assert_allclose(top.mi[has], mi[np.nonzero(has)[0], top.indices[has]], rtol=0, atol=TOL)
    with pytest.raises(ValueError, match="screen_samples"):
        pairmi.topk_stream(source, calibration=4000, screen_samples=100)


def test_the_token_sample_finds_what_the_correlations_miss():
    """A sawtooth, y = 3x mod 1: no correlation of z or |z| sees it, the binned MI of the token sample does."""
    x, _ = planted()
    x[:, 60] = (3 * x[:, 70] / x[:, 70].std()) % 1 + 0.05 * np.random.default_rng(9).normal(size=len(x))
    both = pairmi.topk_stream(chunks(x, 4000), n_partners=4, calibration=4000, candidates=8, sample_size=4000)
    alone = pairmi.topk_stream(chunks(x, 4000), n_partners=4, calibration=4000, candidates=8, sample_size=0)
    assert both.indices[60, 0] == 70 and both.mi[60, 0] > 0.3
    assert 70 not in alone.indices[60] and alone.screen[60, 0] < 0.05
    assert len(both.pairs) > len(alone.pairs)
    with pytest.raises(ValueError, match="sample_size"):
        pairmi.topk_stream(chunks(x, 4000), sample_size=-1)
