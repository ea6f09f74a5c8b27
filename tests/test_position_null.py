"""Dependence beyond position: the window null keeps each token's position, rotations never leave
a pair aligned, and the tail p-values go below the permutation floor, calibrated."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as ss

import pairmi
from pairmi import stats


def positional(rng: np.random.Generator, windows: int = 30, length: int = 64, units: int = 16, noise: float = 0.5):
    """Independent units that each follow their own profile over the positions of a window (the
    same in every window), plus independent noise: every pair shares position, nothing beyond it."""
    profile = rng.normal(size=(length, units))
    return np.tile(profile, (windows, 1)) + noise * rng.normal(size=(windows * length, units)), [length] * windows


def false_positives(null: str, which: str, replicates: int = 12) -> float:
    rates = []
    for r in range(replicates):
        X, segments = positional(np.random.default_rng(r))
        t = pairmi.mi_test(X, estimator="gaussian_copula", null=null, segments=segments, n_permutations=29, seed=r)
        p = t.p_value if which == "permutation" else t.p_tail
        rates.append((p[np.triu_indices(X.shape[1], 1)] <= 0.05).mean())
    return float(np.mean(rates))


def test_the_window_null_is_calibrated_where_rotation_counts_position_as_dependence():
    """12 replicates x 120 pairs, all independent beyond position: rotations within the windows
    flag most of them (the shared positional profile), whole windows moved flag about 5 %."""
    assert false_positives("rotation", "permutation") > 0.5
    assert false_positives("windows", "permutation") <= 0.07
    assert false_positives("windows", "tail") <= 0.07


def test_window_shifts_keep_positions_and_move_every_sample_to_another_window():
    segments = [5, 5, 5, 3]  # a shorter last window, as a document's end gives
    n = sum(segments)
    shifts = stats.WindowShifts(n, segments)
    window = np.repeat(np.arange(4), segments)
    position = np.arange(n) - np.repeat(np.cumsum([0] + segments[:-1]), segments)
    rng = np.random.default_rng(0)
    for _ in range(20):
        order = shifts.indices(rng, 3)
        assert (order == order[0]).all()  # one order for every moved variable
        assert sorted(order[0]) == list(range(n))  # a reordering
        np.testing.assert_array_equal(position[order[0]], position)  # positions kept
        assert (window[order[0]] != window).all()  # no sample left in its window
    with pytest.raises(ValueError, match="at least two windows"):
        stats.WindowShifts(5, [5])
    with pytest.raises(ValueError, match="needs segments"):
        pairmi.mi_test(np.random.default_rng(0).normal(size=(40, 3)), null="windows")


def test_rotations_never_leave_a_pair_aligned():
    """A near copy at 110 tokens: every rotation moves the copy against the original, so no draw
    reaches the observed MI and p is at its floor 1 / (n + 1) (with an offset per variable, two of
    them could draw the same offset: p = 0.006 here before)."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=110)
    X = np.column_stack([x, x + 0.01 * rng.normal(size=110), rng.normal(size=110)])
    for est in ("equal_frequency", "gaussian_copula"):
        t = pairmi.mi_test(X, estimator=est, null="rotation", n_permutations=999, seed=1)
        assert t.p_value[0, 1] == t.p_value[1, 0] == 1 / 1000


@pytest.mark.parametrize("estimator", ["equal_frequency", "gaussian_copula"])
def test_tail_p_values_are_uniform_on_independent_data(estimator):
    X = np.random.default_rng(11).normal(size=(1_000, 40))
    t = pairmi.mi_test(X, estimator=estimator, bins=6, n_permutations=49, seed=2)
    p = t.p_tail[np.triu_indices(40, 1)]
    assert t.tail == "pooled-gpd" and np.isnan(np.diag(t.p_tail)).all()
    assert ss.kstest(p, "uniform").pvalue > 0.01
    assert p.min() > 1e-5  # 780 null pairs: nothing far beyond the null's own range


def test_tail_p_values_rank_pairs_below_the_permutation_floor_and_keep_the_fdr():
    """5 % of 190 pairs dependent (groups of units sharing a weak factor): permutation p-values
    stop at 1 / 50, so BH at 5 % over 190 pairs finds nothing; the tail p-values reach below
    1e-4, find most dependent pairs, and few independent ones."""
    found, false, hits = [], [], 0
    for r in range(4):
        rng = np.random.default_rng(100 + r)
        n, units = 2_000, 20
        groups = np.repeat(np.arange(10), 2)  # 10 pairs of units share a factor: 10 of 190 pairs
        X = 0.35 * rng.normal(size=(n, 10))[:, groups] + rng.normal(size=(n, units))
        truth = (groups[:, None] == groups[None, :])[np.triu_indices(units, 1)]
        t = pairmi.mi_test(X, estimator="gaussian_copula", n_permutations=49, seed=r)
        assert t.significant(0.05) == 0  # the floor: 1/50 > 0.05 * k / 190 for k < 5
        q = t.q_value(which="tail")[np.triu_indices(units, 1)]
        found.append((q[truth] <= 0.05).mean())
        false.append((q[~truth] <= 0.05).sum() / max(1, (q <= 0.05).sum()))
        hits += int((t.p_tail[np.triu_indices(units, 1)][truth] < 1e-4).sum())
    assert np.mean(found) >= 0.8 and np.mean(false) <= 0.05 and hits > 0


def test_tail_p_matches_the_empirical_p_inside_the_null_and_extends_it_beyond():
    rng = np.random.default_rng(0)
    null = rng.exponential(size=100_000)
    inside = np.array([0.5, 2.0, 5.0])
    np.testing.assert_allclose(stats.tail_p(inside, null), (1 + (null[None] >= inside[:, None]).sum(1)) / 100_001)
    beyond = np.array([12.0, 15.0, 20.0])  # past the largest of 1e5 exponential draws (about 11.5)
    # A fitted tail (not the floor 1e-5): within a factor e of the true exp(-x) out to 1e-9.
    np.testing.assert_allclose(np.log(stats.tail_p(beyond, null)), -beyond, atol=1.0)
    assert (np.diff(stats.tail_p(beyond, null)) < 0).all()


def test_fdr_of_tail_p_values_needs_them():
    t = pairmi.mi_test(np.random.default_rng(0).normal(size=(60, 3)), n_permutations=9)
    with pytest.raises(ValueError, match="which must be"):
        t.q_value(which="asymptotic")
    old = pairmi.MITest(t.mi, t.null_mean, t.p_value, 9, "bits")
    with pytest.raises(ValueError, match="without tail p-values"):
        pairmi.fdr_tests([old], which="tail")


def test_a_saturated_permutation_test_says_so():
    """40 variables, 780 pairs, 99 permutations: BH at 5 % needs 156 pairs at the floor 1/100."""
    X = np.random.default_rng(0).normal(size=(100, 40))
    with pytest.warns(pairmi.PermutationFloorWarning, match=r"unless 156 pairs all reach the floor p = 1/100.*>= 15,599"):
        pairmi.mi_test(X, n_permutations=99)
    assert stats.floor_message(780, 15_599) is None
