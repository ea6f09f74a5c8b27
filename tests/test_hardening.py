"""Bad input, big outputs, interrupts, odd dtypes and a fuzz test of the public API."""

from __future__ import annotations

import _thread
import subprocess
import sys

import numpy as np
import pytest
import reference
from datagen import make
from hypothesis import given
from hypothesis import strategies as st

import pairmi

GOOD = make("normal", 50, 4, 0)
NAN = GOOD.copy()
NAN[3, 2] = np.nan
INF = GOOD.copy()
INF[7, 1] = -np.inf

# (what, call, exception, words the message must contain) -- docs/usage.md's table lists the same cases.
BAD_INPUTS = [
    ("NaN", lambda: pairmi.mi_matrix(NAN), ValueError, "NaN or Inf values in 1 variable(s) (columns 2)"),
    ("Inf", lambda: pairmi.mi_layers(INF[None]), ValueError, "columns 1"),
    ("NaN in Y", lambda: pairmi.mi_matrix(GOOD, NAN), ValueError, "Y has NaN"),
    ("one sample", lambda: pairmi.mi_matrix(GOOD[:1]), ValueError, "at least 2 sample(s)"),
    ("no variables", lambda: pairmi.mi_matrix(GOOD[:, :0]), ValueError, "at least 1 variable"),
    ("bins 1", lambda: pairmi.mi_matrix(GOOD, bins=1), ValueError, "bins must be in [2, 255]"),
    ("bins 256", lambda: pairmi.mi_matrix(make("normal", 300, 2, 0), bins=256), ValueError, "[2, 255]"),
    ("bins > n", lambda: pairmi.mi_matrix(GOOD, bins=60), ValueError, "must not exceed the number of samples"),
    ("bins float", lambda: pairmi.mi_matrix(GOOD, bins=2.5), TypeError, "bins must be an integer"),
    ("k >= n", lambda: pairmi.mi_matrix(GOOD, estimator="ksg", k=50), ValueError, "k must be"),
    ("1-d X", lambda: pairmi.mi_matrix(GOOD[:, 0]), ValueError, "must be 2-d"),
    ("2-d H", lambda: pairmi.mi_layers(GOOD), ValueError, "must be 3-d"),
    ("rows differ", lambda: pairmi.mi_matrix(GOOD, GOOD[:40]), ValueError, "same number of samples"),
    ("strings", lambda: pairmi.mi_matrix(np.array([["a", "b"], ["c", "d"]])), TypeError, "must hold numbers"),
    ("objects", lambda: pairmi.mi_matrix(np.array([[None, 1], [2, 3]], dtype=object)), TypeError, "numbers"),
    ("complex", lambda: pairmi.mi_matrix(GOOD + 1j), TypeError, "complex"),
    ("range overflow", lambda: pairmi.mi_matrix(np.array([[-1e308, 0], [1e308, 1], [0, 2]]), bins=2), ValueError, "overflows"),
    ("units", lambda: pairmi.mi_matrix(GOOD, units="dits"), ValueError, "units"),
    ("threads 0", lambda: pairmi.mi_matrix(GOOD, threads=0), ValueError, "threads"),
    ("dtype int", lambda: pairmi.mi_matrix(GOOD, dtype=np.int32), ValueError, "dtype"),
    ("nan_policy", lambda: pairmi.mi_matrix(GOOD, nan_policy="ignore"), ValueError, "nan_policy"),
    ("dims", lambda: pairmi.mi_layers(GOOD[None], dims=[0, 9]), ValueError, "dims"),
    ("too big", lambda: pairmi.mi_matrix(GOOD, max_bytes=10), MemoryError, "GiB"),
    ("null too big", lambda: pairmi.null_mi(GOOD, max_bytes=10), MemoryError, "null matrices"),
    ("null advice", lambda: pairmi.null_mi(GOOD, max_bytes=10), MemoryError, "use fewer n_permutations"),
    ("test too big", lambda: pairmi.mi_test(GOOD, max_bytes=10), MemoryError, "permutation test"),
    ("test advice", lambda: pairmi.mi_test(GOOD, max_bytes=10), MemoryError, "test fewer variables"),
    (
        "stream advice",
        lambda: pairmi.Accumulator(edges=np.tile(np.linspace(0, 1, 16), (300_000, 1))).update(np.zeros((2, 300_000))),
        MemoryError,
        "stream fewer variables",
    ),
    ("out shape", lambda: pairmi.mi_matrix(GOOD, out=np.empty((4, 3))), ValueError, "out must be"),
    (
        "out shape as given",
        lambda: pairmi.mi_matrix(GOOD, out=np.empty((4, 3))),
        ValueError,
        "of shape (4, 4), got float64 (4, 3)",
    ),
    ("seed -1", lambda: pairmi.mi_matrix(GOOD, correction="shuffle", seed=-1), ValueError, "seed must be a non-negative"),
    ("test seed -1", lambda: pairmi.mi_test(GOOD, seed=-1), ValueError, "seed must be a non-negative"),
    ("progress 5", lambda: pairmi.mi_matrix(GOOD, progress=5), TypeError, "progress must be None or a callable"),
    ("max_bytes str", lambda: pairmi.mi_matrix(GOOD, max_bytes="1"), ValueError, "max_bytes must be a positive integer"),
    ("max_bytes nan", lambda: pairmi.mi_matrix(GOOD, max_bytes=float("nan")), ValueError, "max_bytes must be a positive"),
    ("dims empty", lambda: pairmi.mi_layers(GOOD[None], dims=[]), ValueError, "dims is empty"),
    ("dims huge", lambda: pairmi.mi_layers(GOOD[None], dims=[2**70]), ValueError, "dims indices must be in [-4, 4)"),
    (
        "permutations",
        lambda: pairmi.mi_test(GOOD, n_permutations=2**62),
        ValueError,
        "n_permutations must be an integer in [1, 1,000,000]",
    ),
    ("null permutations", lambda: pairmi.null_mi(GOOD, n_permutations=2**62), ValueError, "n_permutations must be"),
    ("topk n_neighbors", lambda: pairmi.mi_topk(GOOD, 2, estimator="ksg", n_neighbors=0), ValueError, "n_neighbors (KSG's"),
    ("fit auto knots", lambda: pairmi.fit_edges(GOOD, "gaussian_copula", bins=10**11), ValueError, "in [2, 50]"),
    ("out list", lambda: pairmi.mi_matrix(GOOD, out=[[0.0] * 4] * 4), TypeError, "out must be a numpy array"),
    ("out + shuffle", lambda: pairmi.mi_matrix(GOOD, correction="shuffle", out=np.empty((4, 4))), ValueError, "out="),
]


@pytest.mark.parametrize("what,call,exc,words", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_gets_a_clear_exception(what, call, exc, words):
    with pytest.raises(exc) as info:
        call()
    assert words in str(info.value)


def test_constant_columns_are_valid():
    X = make("constant", 60, 4, 1)
    for estimator in pairmi.ESTIMATORS:
        mi = pairmi.mi_matrix(X, estimator=estimator)
        assert (mi[0, 1:] == 0).all(), estimator
    assert pairmi.mi_matrix(X)[0, 0] == 0  # entropy of a constant


def test_nan_policy_omit_drops_samples_everywhere():
    got = pairmi.mi_matrix(NAN, GOOD[:, :2], nan_policy="omit")
    keep = np.ones(50, dtype=bool)
    keep[3] = False
    np.testing.assert_array_equal(got, pairmi.mi_matrix(NAN[keep], GOOD[keep, :2]))
    H = np.stack([GOOD, INF])
    want = pairmi.mi_layers(H[:, np.arange(50) != 7], dtype=np.float64)
    np.testing.assert_array_equal(pairmi.mi_layers(H, nan_policy="omit", dtype=np.float64), want)
    with pytest.raises(ValueError, match="after omitting 49"):
        pairmi.mi_matrix(np.where(np.arange(50)[:, None] > 0, np.nan, GOOD), nan_policy="omit")


@pytest.mark.parametrize(
    "convert",
    [
        lambda x: x.astype(np.float16),
        lambda x: np.round(x * 10).astype(np.int16),
        lambda x: x > 0,
        lambda x: x.astype(">f8"),
        lambda x: x.astype(">f4"),
        np.asfortranarray,
        lambda x: np.repeat(x, 2, axis=1)[:, ::2],
        lambda x: x.tolist(),
    ],
)
def test_odd_dtypes_and_layouts_are_accepted(convert):
    X = convert(make("heavy", 80, 5, 2))
    exact = np.asarray(X).astype(np.float64)
    np.testing.assert_allclose(pairmi.mi_matrix(X), reference.mi_matrix(exact), rtol=0, atol=1e-9)


@pytest.mark.parametrize("estimator", pairmi.ESTIMATORS)
@pytest.mark.parametrize("square", [True, False])
def test_out_filled_in_blocks_equals_in_memory(estimator, square):
    X, Y = make("mixed", 90, 37, 3), make("heavy", 90, 11, 4)
    args = (X,) if square else (X, Y)
    want = pairmi.mi_matrix(*args, estimator=estimator, dtype=np.float32)
    out = np.full(want.shape, -1.0, dtype=np.float32)
    got = pairmi.mi_matrix(*args, estimator=estimator, out=out, dtype=np.float32)
    assert np.shares_memory(got, out) and (out != -1).all()
    np.testing.assert_allclose(out, want, rtol=1e-6, atol=1e-6)
    H = np.stack([X, X[::-1]])
    out3 = np.empty((2, 37, 37), dtype=np.float64)
    pairmi.mi_layers(H, estimator=estimator, out=out3)
    np.testing.assert_allclose(out3, pairmi.mi_layers(H, estimator=estimator, dtype=np.float64), rtol=1e-9, atol=1e-9)


def test_memmap_output_larger_than_peak_memory(tmp_path):
    """D = 20,000: a 1.6 GB float32 result written through np.memmap with a far smaller peak RSS."""
    script = f"""
import numpy as np, pairmi
d, n = 20_000, 8
X = np.random.default_rng(0).normal(size=(n, d))
out = np.lib.format.open_memmap({str(tmp_path / "mi.npy")!r}, mode="w+", dtype=np.float32, shape=(d, d))
pairmi.mi_matrix(X, bins=2, out=out, threads=2)
ok = abs(out[123, 4567] - pairmi.mi_matrix(X[:, [123, 4567]], bins=2)[0, 1]) < 1e-6 and out[5, 5] > 0
# VmHWM: this process's peak RSS (ru_maxrss would also count the parent's, inherited across exec).
peak = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) * 1024
print(ok, peak, out.nbytes)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    ok, peak, size = done.stdout.split()
    assert ok == "True"
    assert int(peak) < int(size) / 4, (peak, size)


def test_ctrl_c_stops_a_long_run():
    """Ctrl-C arrives from inside the run (at its first progress call), so no machine is fast enough
    to finish first: the run stops at the next tile, long before the last."""
    X = make("normal", 2000, 400, 5)
    seen = []

    def progress(done, total):
        seen.append((done, total))
        _thread.interrupt_main()  # what Ctrl-C does: Python raises KeyboardInterrupt at once

    with pytest.raises(KeyboardInterrupt):
        pairmi.mi_matrix(X, estimator="ksg", threads=2, progress=progress)
    assert len(seen) == 1 and seen[0][0] < seen[0][1] / 10, seen


def test_shuffle_correction_reports_progress_through_its_permutations():
    """Progress runs over the observed pass and every permutation pass, to the end."""
    X, plain, seen = make("normal", 60, 200, 7), [], []
    pairmi.mi_matrix(X, progress=lambda d, t: plain.append((d, t)))
    pairmi.mi_matrix(X, correction="shuffle", n_permutations=3, progress=lambda d, t: seen.append((d, t)))
    total = 4 * plain[-1][1]  # the observed pass and 3 permutation passes, each as many tiles
    assert seen[-1] == (total, total) and all(t == total for _, t in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and sum(d > total // 4 for d, _ in seen) >= 3


def test_exception_in_progress_callback_stops_and_propagates():
    def boom(done, total):
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        pairmi.mi_matrix(make("normal", 90, 300, 6), progress=boom)


# --- fuzz ---------------------------------------------------------------------------------------

DTYPES = [np.float64, np.float32, np.float16, np.int32, np.uint8, np.int64]
SPECIALS = [np.nan, np.inf, -np.inf, 0.0, 1e300, -1e300, 5e-324, 65504.0]


@given(
    n=st.integers(0, 40),
    d=st.integers(0, 6),
    dtype=st.sampled_from(DTYPES),
    estimator=st.sampled_from(["equal_width", "equal_frequency"]),
    bins=st.one_of(st.integers(2, 12), st.integers(-1, 300)),
    specials=st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(SPECIALS)), max_size=4),
    seed=st.integers(0, 2**32 - 1),
)
def test_fuzz_mi_matrix_is_exact_or_refuses(n, d, dtype, estimator, bins, specials, seed):
    X = np.random.default_rng(seed).standard_t(2, size=(n, d)) * 100
    with np.errstate(all="ignore"):
        for pos, value in specials:
            if X.size:
                X.flat[pos % X.size] = value
        X = X.astype(dtype)
    try:
        got = pairmi.mi_matrix(X, estimator=estimator, bins=bins)
    except (ValueError, TypeError) as exc:
        # A documented refusal, for a reason the input really has.
        finite = np.isfinite(X.astype(np.float64)).all()
        assert not finite or n < 2 or d < 1 or not 2 <= bins <= min(255, n) or "overflows" in str(exc), exc
        return
    want = reference.mi_matrix(X.astype(np.float64), estimator=estimator, bins=bins)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


@given(
    n=st.integers(2, 30),
    d=st.integers(1, 5),
    estimator=st.sampled_from(["ksg", "gaussian_copula"]),
    special=st.sampled_from([None, np.nan, np.inf, 1e300]),
    seed=st.integers(0, 2**32 - 1),
)
def test_fuzz_continuous_estimators_finite_or_refuse(n, d, estimator, special, seed):
    X = np.random.default_rng(seed).normal(size=(n, d))
    if special is not None:
        X[0, 0] = special
        X[-1, 0] = -special if special == 1e300 else special
    if special is not None and not np.isfinite(special):
        with pytest.raises(ValueError, match="NaN or Inf values in 1 variable"):
            pairmi.mi_matrix(X, estimator=estimator, k=min(3, n - 1))
        return
    got = pairmi.mi_matrix(X, estimator=estimator, k=min(3, n - 1))
    off = ~np.eye(d, dtype=bool)
    assert (got[off] >= 0).all() and np.array_equal(got, got.T)
    ranks = np.argsort(np.argsort(X, axis=0), axis=0)
    for i, j in zip(*np.nonzero(off & ~np.isfinite(got))):
        # Infinite only for the copula of two columns in the same (or reversed) order: |rho| = 1.
        assert estimator == "gaussian_copula"
        assert np.array_equal(ranks[:, i], ranks[:, j]) or np.array_equal(ranks[:, i], n - 1 - ranks[:, j])


def test_core_works_without_optional_dependencies():
    """numpy alone: torch, transformers and matplotlib hidden, the estimators still run and the
    extraction and plots say what to install."""
    script = """
import sys
for name in ("torch", "transformers", "matplotlib"):
    sys.modules[name] = None  # makes `import name` fail
import numpy as np, pairmi
x = np.random.default_rng(0).normal(size=(50, 3))
for estimator in pairmi.ESTIMATORS:
    pairmi.mi_matrix(x, estimator=estimator)
for call in (lambda: pairmi.hidden_states("minilm", "text"), lambda: pairmi.plot.layers(np.zeros((1, 3, 3)))):
    try:
        call()
    except ImportError as exc:
        print(exc)
"""
    done = subprocess.run(
        [sys.executable, "-c", script.replace("pairmi.plot", "__import__('pairmi.plot').plot")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert "pip install 'pairmi[llm]'" in lines[0] and "pip install 'pairmi[plot]'" in lines[1]
