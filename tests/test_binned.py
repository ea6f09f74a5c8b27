"""Binned estimators against the plain numpy reference (np.histogram2d, p = counts/N, log2)."""

from __future__ import annotations

import numpy as np
import pytest
import reference
from datagen import KINDS, make
from hypothesis import given
from hypothesis import strategies as st

import pairmi
from pairmi import binned

TOL = 1e-9  # bits (or nats): both compute the same plug-in entropies in float64
ESTIMATORS = ("equal_width", "equal_frequency")


@st.composite
def problems(draw, max_n=400, max_d=10):
    n = draw(st.integers(2, max_n))
    d = draw(st.integers(1, max_d))
    bins = draw(st.integers(2, min(64, n)))
    return draw(st.sampled_from(KINDS)), n, d, bins, draw(st.integers(0, 2**32 - 1))


@given(problems(), st.sampled_from(ESTIMATORS), st.sampled_from(["bits", "nats"]))
def test_square_matches_reference(problem, estimator, units):
    kind, n, d, bins, seed = problem
    X = make(kind, n, d, seed)
    got = pairmi.mi_matrix(X, estimator=estimator, bins=bins, units=units, threads=2)
    want = reference.mi_matrix(X, estimator=estimator, bins=bins, units=units)
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL)


@given(problems(max_d=6), st.integers(1, 6), st.sampled_from(ESTIMATORS))
def test_cross_matches_reference(problem, dy, estimator):
    kind, n, dx, bins, seed = problem
    X = make(kind, n, dx, seed)
    Y = make("mixed", n, dy, seed + 1)
    got = pairmi.mi_matrix(X, Y, estimator=estimator, bins=bins, threads=2)
    assert got.shape == (dx, dy)
    np.testing.assert_allclose(got, reference.mi_matrix(X, Y, estimator, bins), rtol=0, atol=TOL)


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("n,d,bins", [(5000, 300, 15), (2, 3, 2), (90, 64, 64), (300, 40, 255)])
def test_large_shapes_on_sampled_pairs(estimator, n, d, bins):
    if bins > n:
        pytest.skip("bins above n are rejected")
    X = make("outliers", n, d, seed=n + d)
    got = pairmi.mi_matrix(X, estimator=estimator, bins=bins, threads=2)
    rng = np.random.default_rng(0)
    for i, j in rng.integers(0, d, size=(60, 2)):
        assert abs(got[i, j] - reference.mi_pair(X[:, i], X[:, j], estimator, bins)) <= TOL


@given(problems(max_d=8), st.sampled_from(ESTIMATORS))
def test_invariants(problem, estimator):
    kind, n, d, bins, seed = problem
    mi = pairmi.mi_matrix(make(kind, n, d, seed), estimator=estimator, bins=bins, threads=1)
    h = np.diag(mi)
    assert np.array_equal(mi, mi.T)
    assert (mi >= 0).all()
    assert (mi <= np.minimum.outer(h, h) + 1e-12).all()
    assert (h <= np.log2(bins) + 1e-12).all()


def test_independent_shuffles_score_near_zero_at_large_n():
    rng = np.random.default_rng(1)
    x = rng.normal(size=200_000)
    X = np.stack([x, rng.permutation(x), rng.permutation(x)], axis=1)
    mi = pairmi.mi_matrix(X, bins=15)
    # Bias of plug-in MI is about (B-1)^2 / (2 N ln 2) = 7e-4 bits here.
    assert mi[0, 1] < 3e-3 and mi[0, 2] < 3e-3 and mi[1, 2] < 3e-3
    assert mi[0, 0] > 2.5  # entropy of the binned normal


def test_dependence_is_detected():
    rng = np.random.default_rng(2)
    x = rng.normal(size=20_000)
    X = np.stack([x, x + 0.5 * rng.normal(size=x.size)], axis=1)
    rho = 1 / np.sqrt(1.25)
    # Binned MI approaches the analytic Gaussian MI from below with fine bins and many samples.
    assert abs(pairmi.mi_matrix(X, bins=30)[0, 1] - (-0.5 * np.log2(1 - rho**2))) < 0.1


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_mi_layers_equals_stacked_mi_matrix(estimator):
    H = np.stack([make(k, 90, 40, s) for s, k in enumerate(KINDS)]).astype(np.float32)
    got = pairmi.mi_layers(H, estimator=estimator, threads=2)
    assert got.dtype == np.float64 and got.shape == (len(KINDS), 40, 40)  # float64 unless asked, as mi_matrix
    want = np.stack([pairmi.mi_matrix(h, estimator=estimator) for h in H])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    ref = reference.mi_matrix(H[2].astype(np.float64), estimator=estimator)
    np.testing.assert_allclose(got[2], ref, rtol=0, atol=1e-9)


def test_mi_layers_dims_selects_every_other_dimension():
    H = make("mixed", 90, 30, 3).reshape(1, 90, 30)
    np.testing.assert_array_equal(
        pairmi.mi_layers(H, dims=slice(0, None, 2), dtype=np.float64)[0], pairmi.mi_matrix(H[0][:, ::2])
    )
    np.testing.assert_array_equal(pairmi.mi_layers(H, dims=[4, 1], dtype=np.float64)[0], pairmi.mi_matrix(H[0][:, [4, 1]]))


def test_units_are_a_factor_ln2_apart():
    X = make("normal", 200, 5, 4)
    np.testing.assert_allclose(
        pairmi.mi_matrix(X, units="nats"), pairmi.mi_matrix(X, units="bits") * np.log(2), rtol=1e-12, atol=0
    )


@pytest.mark.parametrize("n", [90, 1000, 70_000])  # both few-sample kernels; four-byte counts
def test_thread_count_does_not_change_a_bit(n):
    X = make("heavy", n, 70 if n < 10_000 else 9, 5)
    one = pairmi.mi_matrix(X, threads=1)
    for threads in (2, 3, 7):
        assert np.array_equal(one, pairmi.mi_matrix(X, threads=threads))


def test_course_percentile_edges_are_bins_14():
    """The course's edges np.percentile(x, np.linspace(0, 100, 15)) make 14 bins."""
    X = make("normal", 90, 4, 6)
    x, y = X[:, 0], X[:, 1]
    ex, ey = (np.percentile(v, np.linspace(0, 100, 15)) for v in (x, y))
    course = reference.mi_from_counts(np.histogram2d(x, y, bins=[ex, ey])[0])
    assert abs(pairmi.mi_matrix(X, estimator="equal_frequency", bins=14)[0, 1] - course) <= TOL


def test_values_next_to_equal_width_edges_get_numpys_bin():
    """Equal-width codes start from a guess (v - lo) / width that rounding can put one bin too high
    or too low next to an edge; the correction must land every value where np.histogram2d does."""
    rng = np.random.default_rng(7)
    d = 2000
    for bins in (2, 6, 15, 28, 64):
        scale = rng.choice([1e-3, 1.0, 10.0], size=(2, d))
        lo = (rng.normal(size=d) * scale[0]).astype(np.float32)
        hi = (lo + np.abs(rng.normal(size=d)) * scale[1] + 1e-6).astype(np.float32)
        edges = np.linspace(lo.astype(np.float64), hi.astype(np.float64), bins + 1, axis=1)  # (d, bins + 1)
        at = edges[:, 1:-1].T.astype(np.float32)  # the float32 values nearest the inner edges, and their neighbours
        X = np.concatenate([lo[None], hi[None], np.nextafter(at, -np.inf), at, np.nextafter(at, np.inf)])
        X = np.clip(X, lo, hi)
        assert (X.min(0) == lo).all() and (X.max(0) == hi).all()
        codes = binned.code_layers(X[None], "equal_width", bins, threads=2).codes[0]
        # np.histogram2d's bin: the number of inner edges <= v.
        want = (X.T[:, :, None] >= edges[:, None, 1:-1]).sum(axis=2)
        np.testing.assert_array_equal(codes, want)


@given(problems(max_d=6), st.sampled_from([np.float32, np.float64]))
def test_equal_frequency_edges_are_numpys_bit_for_bit(problem, dtype):
    """Edges computed in C++ equal np.percentile's exactly, so every sample lands in numpy's bin."""
    kind, n, d, bins, seed = problem
    X = make(kind, n, d, seed).astype(dtype)
    got = binned.bin_edges(X[None], "equal_frequency", bins, threads=2)[0]
    want = np.percentile(X.astype(np.float64), np.linspace(0, 100, bins + 1), axis=0).T
    assert np.array_equal(got, want)


@pytest.mark.parametrize("n,bins", [(1, 2), (4096, 15), (5000, 255), (70_000, 7)])
def test_equal_frequency_edges_long_columns(n, bins):
    X = make("mixed", n, 3, 11)
    got = binned.bin_edges(X[None], "equal_frequency", bins, threads=2)[0]
    assert np.array_equal(got, np.percentile(X, np.linspace(0, 100, bins + 1), axis=0).T)


def test_float32_is_binned_as_float64():
    X = make("heavy", 300, 6, 7).astype(np.float32)
    want = reference.mi_matrix(X.astype(np.float64))
    np.testing.assert_allclose(pairmi.mi_matrix(X), want, rtol=0, atol=TOL)


def test_torch_tensors_any_float_dtype():
    torch = pytest.importorskip("torch")
    X = make("mixed", 120, 5, 8)
    for dtype in (torch.float64, torch.float32, torch.float16, torch.bfloat16):
        t = torch.tensor(X).to(dtype)
        exact = t.to(torch.float64).numpy()  # every one of these dtypes converts exactly
        np.testing.assert_allclose(pairmi.mi_matrix(t), reference.mi_matrix(exact), rtol=0, atol=TOL)
    # torch (with its own OpenMP runtime) and pairmi in one process, explicit threads.
    H = torch.tensor(make("normal", 90, 12, 9)).reshape(1, 90, 12)
    np.testing.assert_array_equal(pairmi.mi_layers(H, threads=2), pairmi.mi_layers(H.numpy(), threads=1))


def test_progress_is_reported():
    calls = []
    pairmi.mi_matrix(make("normal", 90, 300, 10), threads=1, progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1][0] == calls[-1][1] and all(t == calls[0][1] for _, t in calls)


def test_openmp_flag_matches_the_linked_runtime():
    """has_openmp says what the compiled module links: an OpenMP runtime among its needed libraries."""
    from pathlib import Path

    binary = Path(pairmi._core.__file__).read_bytes()
    linked = any(name in binary for name in (b"libgomp", b"libomp", b"libiomp5"))
    assert pairmi.has_openmp is linked


def test_installed_package_ships_its_module_stubs_and_marker():
    """The tests import the installed wheel, not the source tree, and it holds what type checkers
    and users need: the compiled core, its stub and the py.typed marker."""
    from pathlib import Path

    package = Path(pairmi.__file__).parent
    assert package.resolve() != (Path(__file__).parents[1] / "python" / "pairmi").resolve(), package
    assert Path(pairmi._core.__file__).parent == package
    assert (package / "_core.pyi").is_file() and (package / "py.typed").is_file()
