"""backend='torch': the binned estimators and the Gaussian copula on torch tensors, checked against
the C++ core on one shared matrix of cases (CPU torch here; the same code runs on CUDA tensors)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from datagen import KINDS, make  # noqa: E402

import pairmi  # noqa: E402

CASES = [(e, c) for e in ("equal_width", "equal_frequency") for c in (None, "miller_madow")] + [("gaussian_copula", None)]


def same(got, want, tol=1e-9):
    got = got.numpy() if hasattr(got, "numpy") else got
    finite = np.isfinite(want)
    assert np.array_equal(np.isfinite(got), finite)
    assert np.abs(got[finite] - want[finite]).max(initial=0) <= tol


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("estimator,correction", CASES)
def test_torch_equals_the_core(kind, estimator, correction):
    X = make(kind, 240, 9, 3)
    Y = make("mixed", 240, 4, 4)
    kw = {"estimator": estimator, "correction": correction, "units": "nats"}
    same(pairmi.mi_matrix(torch.from_numpy(X), backend="torch", **kw), pairmi.mi_matrix(X, **kw))
    same(pairmi.mi_matrix(torch.from_numpy(X), torch.from_numpy(Y), backend="torch", **kw), pairmi.mi_matrix(X, Y, **kw))
    H = np.stack([X, make(kind, 240, 9, 5)]).astype(np.float32)
    same(
        pairmi.mi_layers(torch.from_numpy(H), backend="torch", dtype=np.float64, **kw),
        pairmi.mi_layers(H, dtype=np.float64, **kw),
    )


@pytest.mark.parametrize("estimator", ["equal_width", "equal_frequency"])
def test_torch_with_fixed_edges_and_few_samples(estimator):
    X = make("heavy", 400, 6, 6)
    E = pairmi.fit_edges(X[:100], estimator, bins=9)
    same(
        pairmi.mi_matrix(torch.from_numpy(X), estimator=estimator, edges=E, backend="torch"),
        pairmi.mi_matrix(X, estimator=estimator, edges=E),
    )
    small = make("ties", 20, 5, 7)  # 20 samples, 15 bins: the core's rank kernel
    same(pairmi.mi_matrix(torch.from_numpy(small), backend="torch"), pairmi.mi_matrix(small))


@pytest.mark.parametrize("kind", ["normal", "heavy", "outliers", "constant", "mixed"])
def test_torch_ksg_equals_the_core_and_scikit_learn(kind):
    """Brute-force KSG on tensors against the core's walks (1e-9 nats) on untied data, square and
    X against Y with another k, and against scikit-learn's mutual_info_regression (1e-6 nats)."""
    X = make(kind, 150, 7, 11)
    Y = make("mixed", 150, 3, 12)
    same(
        pairmi.mi_matrix(torch.from_numpy(X), estimator="ksg", units="nats", backend="torch"),
        pairmi.mi_matrix(X, estimator="ksg", units="nats"),
    )
    same(
        pairmi.mi_matrix(torch.from_numpy(X), torch.from_numpy(Y), estimator="ksg", k=5, backend="torch"),
        pairmi.mi_matrix(X, Y, estimator="ksg", k=5),
    )
    if kind == "mixed":
        sklearn_fs = pytest.importorskip("sklearn.feature_selection")
        got = pairmi.mi_matrix(torch.from_numpy(X), estimator="ksg", units="nats", backend="torch").numpy()
        want = sklearn_fs.mutual_info_regression(X[:, 1:], X[:, 0], n_neighbors=3, random_state=0)
        np.testing.assert_allclose(got[0, 1:], want, rtol=0, atol=1e-6)


def test_tensors_in_tensors_out_numpy_in_numpy_out():
    X = make("normal", 100, 4, 8)
    t = pairmi.mi_matrix(torch.from_numpy(X).float(), backend="torch", dtype=np.float32)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32 and t.device.type == "cpu"
    n = pairmi.mi_matrix(X, backend="torch")
    assert isinstance(n, np.ndarray) and n.dtype == np.float64
    assert isinstance(pairmi.mi_matrix(torch.from_numpy(X)), np.ndarray)  # a CPU tensor defaults to the core
    layers = pairmi.mi_layers(torch.from_numpy(np.stack([X, X])), dims=[0, 2, 3], backend="torch")
    assert tuple(layers.shape) == (2, 3, 3)


@pytest.mark.parametrize("kind", ["bool", "uint8"])
def test_torch_ksg_treats_heavy_ties_as_the_core(kind):
    """Booleans and small integers: the same values (1e-9 nats) and the same warnings on both
    backends (a tied k-th neighbour at distance 0 counted as the core counts it)."""
    rng = np.random.default_rng(12)
    base = rng.integers(0, 2 if kind == "bool" else 4, size=(300, 4))
    X = (base > 0) if kind == "bool" else base.astype(np.uint8)
    X[:, 1] = X[:, 0] if kind == "bool" else (X[:, 0] + (rng.random(300) < 0.2)).astype(np.uint8)  # one dependent pair
    with pytest.warns(RuntimeWarning) as on_core:
        want = pairmi.mi_matrix(X, estimator="ksg", units="nats")
    with pytest.warns(RuntimeWarning) as on_torch:
        got = pairmi.mi_matrix(torch.from_numpy(X), estimator="ksg", units="nats", backend="torch")
    assert [str(w.message) for w in on_torch] == [str(w.message) for w in on_core]
    assert got.shape == want.shape and float(want[0, 1]) > 0.3
    same(got, want)


def test_a_meta_tensor_is_named():
    meta = torch.empty((10, 3), device="meta")
    for call in (
        lambda: pairmi.mi_matrix(meta),
        lambda: pairmi.mi_matrix(meta, backend="cpu"),
        lambda: pairmi.Accumulator().update(meta),
    ):
        with pytest.raises(TypeError, match=r"(X|chunk) is a 'meta' tensor"):
            call()


def test_torch_backend_says_what_it_lacks():
    X = torch.from_numpy(make("normal", 60, 3, 9))
    for kw, words in (
        ({"estimator": "ksg", "edges": np.zeros((3, 16))}, "takes no edges"),
        ({"estimator": "ksg", "k": 60}, "k must be"),
        ({"correction": "shuffle"}, "correction"),
        ({"out": np.empty((3, 3))}, "out="),
        ({"backend": "gpu"}, "backend must be one of"),
    ):
        with pytest.raises(ValueError, match=words):
            pairmi.mi_matrix(X, **{"backend": "torch", **kw})
    bad = X.clone()
    bad[4, 1] = float("nan")
    with pytest.raises(ValueError, match=r"NaN or Inf values in 1 variable\(s\) \(columns \[1\]\)"):
        pairmi.mi_matrix(bad, backend="torch")
    grad = X.clone().requires_grad_(True)
    with pytest.warns(UserWarning, match="requires grad"):
        pairmi.mi_matrix(grad, backend="torch")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
@pytest.mark.parametrize("kind", KINDS)
def test_cuda_equals_the_core(kind):  # pragma: no cover - runs where a GPU is
    """The shared matrix of cases on a CUDA device: every estimator, nulls, tests and streaming stay
    there and equal the core (binned, copula 1e-9 bits; KSG 1e-9 nats)."""
    from pairmi.backends import torch as tb

    X, Y = make(kind, 300, 8, 10), make("mixed", 300, 3, 11)
    Xd, Yd = torch.from_numpy(X).cuda(), torch.from_numpy(Y).cuda()
    for estimator, correction in CASES + ([("ksg", None)] if kind != "ties" else []):  # KSG: ties clipped by the core
        kw = {"estimator": estimator, "correction": correction}
        for args, dev in (((X,), (Xd,)), ((X, Y), (Xd, Yd))):
            got = pairmi.mi_matrix(*dev, **kw)
            assert got.is_cuda
            same(got.cpu(), pairmi.mi_matrix(*args, **kw))
    assert tb.counts._INT8_PRODUCTS.get("cuda") is True  # the integer tensor-core product ran
    same(
        pairmi.null_mi(Xd, n_permutations=5, bins=7, dtype=np.float64).cpu(),
        pairmi.null_mi(X, n_permutations=5, bins=7, dtype=np.float64),
    )
    for estimator in ("equal_width", "gaussian_copula"):
        t = pairmi.mi_test(Xd, Yd, estimator=estimator, n_permutations=9)
        want = pairmi.mi_test(X, Y, estimator=estimator, n_permutations=9)
        assert t.p_value.is_cuda
        np.testing.assert_array_equal(t.p_value.cpu().numpy(), want.p_value)
    for estimator in ("equal_width", "gaussian_copula"):
        edges = pairmi.fit_edges(X[:100], estimator, bins=12)
        cpu, dev = pairmi.Accumulator(estimator, edges=edges), pairmi.Accumulator(estimator, edges=edges)
        for s0 in range(0, 300, 70):
            cpu.update(X[s0 : s0 + 70])
            dev.update(Xd[s0 : s0 + 70])
        assert dev.device.type == "cuda" and dev.result().is_cuda
        same(dev.result().cpu(), cpu.result())


def test_bench_gpu_smoke_test_runs_on_cpu_torch():
    """bench/bench_gpu.py --tiny: every workload on the core and on torch, equal within 1e-9 bits."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parent.parent / "bench" / "bench_gpu.py"
    if not script.exists():
        pytest.skip("bench/ is not beside the tests")
    done = subprocess.run(
        [sys.executable, str(script), "--tiny", "--runs", "1", "--device", "cpu"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and "workload" not in line and "---" not in line]
    assert len(rows) == 8
    assert all(float(row.split("|")[6]) <= 1e-9 for row in rows), rows


def test_out_of_device_memory_halves_the_block_then_says_what_to_do():
    from pairmi.backends import torch as tb

    blocks = []

    def run(block):
        blocks.append(block)
        if block > 32:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return block

    assert tb.shrinking_on_oom(run, 256, "test") == 32 and blocks == [256, 128, 64, 32]

    def never(block):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    with pytest.raises(MemoryError, match="does not fit on the device even one row at a time"):
        tb.shrinking_on_oom(never, 4, "binned MI of 10 x 10 variables")
    X = make("normal", 100, 20, 13)  # a small block gives the same result as one block
    same(
        tb.binned_mi(torch.from_numpy(X)[None], None, "equal_width", 15, 1.0, block=3).numpy()[0],
        pairmi.mi_matrix(X, units="nats"),
    )


# --- nulls and tests on torch: the core's permutations, the same numbers ---------------------------


@pytest.mark.parametrize("estimator", ["equal_width", "equal_frequency"])
def test_torch_null_mi_equals_the_core(estimator):
    X, Y = make("heavy", 120, 6, 21), make("mixed", 120, 3, 22)
    for args in ((X,), (X, Y)):
        want = pairmi.null_mi(*args, n_permutations=7, seed=3, estimator=estimator, bins=6, dtype=np.float64)
        got = pairmi.null_mi(
            *(torch.from_numpy(a) for a in args),
            n_permutations=7,
            seed=3,
            estimator=estimator,
            bins=6,
            dtype=np.float64,
            backend="torch",
        )
        assert isinstance(got, torch.Tensor) and tuple(got.shape) == want.shape
        same(got, want)
    assert isinstance(pairmi.null_mi(X, n_permutations=2, backend="torch"), np.ndarray)  # numpy in, numpy out
    with pytest.raises(ValueError, match="binned estimators"):
        pairmi.null_mi(torch.from_numpy(X), estimator="ksg", backend="torch")


@pytest.mark.parametrize(
    "estimator,null",
    [
        ("equal_width", "shuffle"),
        ("equal_frequency", "rotation"),
        ("equal_frequency", "shared"),
        ("gaussian_copula", "shuffle"),
        ("gaussian_copula", "rotation"),
        ("gaussian_copula", "shared"),
        ("equal_frequency", "windows"),
        ("gaussian_copula", "windows"),
    ],
)
def test_torch_mi_test_equals_the_core(estimator, null):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(150, 5))
    X[:, 1] += X[:, 0]
    Y = rng.normal(size=(150, 3))
    kw = {"estimator": estimator, "null": null, "n_permutations": 19, "seed": 4, "bins": 5}
    if null in ("rotation", "windows"):
        kw["segments"] = [50, 60, 40] if null == "rotation" else [30] * 5
    for args in ((X,), (X, Y)):
        want = pairmi.mi_test(*args, **kw)
        got = pairmi.mi_test(*(torch.from_numpy(a) for a in args), backend="torch", **kw)
        assert isinstance(got.p_value, torch.Tensor)
        same(got.mi, want.mi)
        same(got.null_mean, want.null_mean)
        np.testing.assert_array_equal(got.p_value.numpy(), want.p_value)  # the same reorderings
        np.testing.assert_allclose(got.p_tail, want.p_tail, rtol=1e-6, equal_nan=True)
        np.testing.assert_array_equal(got.q_value(), want.q_value())
        assert got.significant(0.05) == want.significant(0.05)
    tied = np.round(X, 0)
    if null == "shared":
        with pytest.raises(ValueError, match="without tied values"):
            pairmi.mi_test(torch.from_numpy(tied), backend="torch", **kw)


def test_torch_nan_policy_omit_drops_the_same_samples():
    X = make("normal", 200, 5, 31)
    X[[3, 50, 120], [0, 2, 4]] = np.nan
    for estimator in ("equal_width", "gaussian_copula", "ksg"):
        same(
            pairmi.mi_matrix(torch.from_numpy(X), estimator=estimator, nan_policy="omit", backend="torch"),
            pairmi.mi_matrix(X, estimator=estimator, nan_policy="omit"),
        )


def test_int8_counts_are_exact():
    """The integer-tensor-core product the accelerators use (torch._int_mm), checked on the CPU."""
    from pairmi.backends import torch as tb

    gen = torch.Generator().manual_seed(0)
    a = (torch.rand(30, 77, generator=gen) < 0.3).to(torch.int8)
    b = (torch.rand(13, 77, generator=gen) < 0.5).to(torch.int8)
    for u, v in ((a, b), (a, a), (b, a)):
        assert torch.equal(tb.int8_counts(u, v).to(torch.float64), u.double() @ v.double().T)


# --- streaming on torch: the same counts, the same state, merges across backends -----------------


@pytest.mark.parametrize("estimator", ["equal_width", "equal_frequency", "gaussian_copula"])
def test_torch_accumulator_equals_the_core(estimator, tmp_path):
    rng = np.random.default_rng(8)
    H = rng.standard_t(3, size=(2, 900, 7)).astype(np.float32)
    Y = rng.normal(size=(2, 900, 3)).astype(np.float32)
    correction = "miller_madow" if estimator == "equal_width" else None
    for y in (None, Y):
        edges = {"bins": 9} if estimator != "gaussian_copula" else {"bins": 50}
        cpu = pairmi.Accumulator(estimator, correction=correction, **edges)
        dev = pairmi.Accumulator(estimator, correction=correction, backend="torch", **edges)
        for s0 in range(0, 900, 250):
            cpu.update(H[:, s0 : s0 + 250], None if y is None else y[:, s0 : s0 + 250])
            dev.update(torch.from_numpy(H[:, s0 : s0 + 250]), None if y is None else torch.from_numpy(y[:, s0 : s0 + 250]))
        np.testing.assert_array_equal(dev.edges, cpu.edges)  # fitted on the device, the same edges
        got = dev.result()
        assert isinstance(got, torch.Tensor)
        same(got, cpu.result(), 1e-12)
        if estimator != "gaussian_copula":
            same(torch.as_tensor(dev.bias()), cpu.bias(), 1e-15)
        cpu.save(tmp_path / "cpu.npz")
        dev.save(tmp_path / "dev.npz")
        with np.load(tmp_path / "cpu.npz") as a, np.load(tmp_path / "dev.npz") as b:
            assert sorted(a.files) == sorted(b.files)
            for k in a.files:
                if k != "header":
                    if estimator == "gaussian_copula":
                        np.testing.assert_allclose(b[k], a[k], rtol=1e-12, atol=1e-9)
                    else:
                        np.testing.assert_array_equal(b[k], a[k])  # the core's exact counts, in its layout
        back = pairmi.Accumulator.load(tmp_path / "cpu.npz", device="cpu")
        same(back.result(), cpu.result(), 1e-12)
        mixed = pairmi.Accumulator(estimator, correction=correction, backend="torch").merge(dev).merge(cpu)
        doubled = pairmi.Accumulator(estimator, correction=correction).merge(cpu).merge(dev)
        assert mixed.n_samples == doubled.n_samples == 1800
        same(mixed.result(), doubled.result(), 1e-12)


def test_torch_accumulator_numpy_chunks_give_numpy_and_checks_hold():
    rng = np.random.default_rng(9)
    acc = pairmi.Accumulator("equal_width", bins=5, backend="torch")
    acc.update(rng.normal(size=(100, 4)))
    assert isinstance(acc.result(), np.ndarray) and acc.result().shape == (4, 4)
    for bad, words in (
        (rng.normal(size=(100, 5)), "5 variables"),
        (rng.normal(size=(2, 100, 4)), "the first was"),
        (rng.normal(size=(100, 4)).astype(np.float32), "dtype float32 differs"),
    ):
        with pytest.raises(ValueError, match=words):
            acc.update(bad)
    nan = rng.normal(size=(100, 4))
    nan[5, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        acc.update(nan)
    assert acc.n_samples == 100


def test_torch_accumulator_failed_update_leaves_the_counts(monkeypatch):
    """A layer that fails after another was counted: the counted one is subtracted again."""
    from pairmi.backends import torch as tb

    rng = np.random.default_rng(10)
    H = torch.from_numpy(rng.normal(size=(3, 200, 5)))
    acc = pairmi.Accumulator("equal_width", bins=6, backend="torch").update(H)
    before = {k: v.clone() for k, v in acc._totals.items()}
    real, calls = tb.stream.add_pair_counts, []

    def flaky(*args, **kw):
        calls.append(kw.get("sign", 1))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(tb.stream, "add_pair_counts", flaky)
    with pytest.raises(KeyboardInterrupt):
        acc.update(H)
    assert calls == [1, 1, -1]
    assert acc.n_samples == 200 and all(torch.equal(before[k], acc._totals[k]) for k in before)


def test_add_pair_counts_rolls_back_its_own_blocks_on_interrupt(monkeypatch):
    from pairmi.backends import torch as tb

    codes = torch.randint(0, 4, (3, 50))
    joint, mx = torch.zeros((12, 12), dtype=torch.int64), torch.zeros((3, 4), dtype=torch.int64)
    real, seen = tb.joint_counts, []

    def flaky(a, b):
        seen.append(1)
        if len(seen) == 3:
            raise KeyboardInterrupt
        return real(a, b)

    monkeypatch.setattr(tb.stream, "joint_counts", flaky)
    with pytest.raises(KeyboardInterrupt):
        tb.add_pair_counts(joint, mx, None, codes, None, 4, step=10)
    assert not joint.any() and not mx.any()


def test_add_pair_counts_halves_blocks_that_run_out_of_memory(monkeypatch):
    """Blocks of samples too big for the device are halved (the counts as from one block); a device
    that cannot take one sample says so."""
    from pairmi.backends import torch as tb

    codes = torch.randint(0, 4, (3, 50), generator=torch.Generator().manual_seed(0))
    want = torch.zeros((12, 12), dtype=torch.int64), torch.zeros((3, 4), dtype=torch.int64)
    tb.add_pair_counts(*want, None, codes, None, 4)
    real, sizes = tb.joint_counts, []

    def small_device(a, b):
        sizes.append(a.shape[1])
        if a.shape[1] > 12:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(a, b)

    monkeypatch.setattr(tb.stream, "joint_counts", small_device)
    got = torch.zeros((12, 12), dtype=torch.int64), torch.zeros((3, 4), dtype=torch.int64)
    tb.add_pair_counts(*got, None, codes, None, 4, step=50)
    assert sizes[:3] == [50, 25, 12] and max(sizes[3:]) <= 12
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])

    def no_device(a, b):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(tb.stream, "joint_counts", no_device)
    empty = torch.zeros((12, 12), dtype=torch.int64), torch.zeros((3, 4), dtype=torch.int64)
    with pytest.raises(MemoryError, match="counting the joint bins of 3 variables does not fit on the device even one sample"):
        tb.add_pair_counts(*empty, None, codes, None, 4, step=8)
    assert not empty[0].any() and not empty[1].any()


def test_torch_ksg_scales_as_the_core_and_tiles_any_way(monkeypatch):
    """The core's scaling (tiny and huge values too), and every tiling and the uncached distances
    give the core's numbers."""
    from pairmi.backends import torch as tb

    X = make("heavy", 90, 9, 41).astype(np.float32).astype(np.float64)
    want = pairmi.mi_matrix(X, estimator="ksg", units="nats")
    for factor in (1e-160, 1e150):
        same(
            pairmi.mi_matrix(torch.from_numpy(X * factor), estimator="ksg", units="nats", backend="torch"),
            pairmi.mi_matrix(X * factor, estimator="ksg", units="nats"),
        )
    same(tb.ksg_mi(torch.from_numpy(X)[None], None, 3, 1.0, pairs_per_tile=4)[0], want)
    monkeypatch.setattr(tb.ksg, "KSG_DISTANCE_CACHE_BYTES", 0)
    same(tb.ksg_mi(torch.from_numpy(X)[None], None, 3, 1.0, pairs_per_tile=9)[0], want)
    Y = make("normal", 90, 4, 42)
    same(
        tb.ksg_mi(torch.from_numpy(X)[None], torch.from_numpy(Y)[None], 4, 1.0, pairs_per_tile=2)[0],
        pairmi.mi_matrix(X, Y, estimator="ksg", k=4, units="nats"),
    )


@pytest.mark.parametrize("correction", [None, "miller_madow"])
def test_torch_binned_counts_per_sample_and_per_cell_agree(correction, monkeypatch):
    """Few samples (n < bins**2): each sample's cell counted by a batched product; else the one-hot
    product of every cell. Both equal the core on the same data, square and against Y."""
    from pairmi.backends import torch as tb

    X, Y = make("mixed", 150, 10, 51), make("heavy", 150, 4, 52)
    kw = {"correction": correction, "units": "nats", "bins": 15}
    for args in ((X,), (X, Y)):
        want = pairmi.mi_matrix(*args, **kw)
        same(pairmi.mi_matrix(*(torch.from_numpy(a) for a in args), backend="torch", **kw), want)
        with monkeypatch.context() as m:
            m.setattr(tb, "PER_SAMPLE_MAX", 0)
            same(pairmi.mi_matrix(*(torch.from_numpy(a) for a in args), backend="torch", **kw), want)
        with monkeypatch.context() as m:
            m.setattr(tb, "PER_SAMPLE_BYTES", 1)  # one sample at a time
            same(pairmi.mi_matrix(*(torch.from_numpy(a) for a in args), backend="torch", **kw), want)


def test_kth_smallest_counts_repeats():
    from pairmi.backends import torch as tb

    d = torch.tensor([[0.0, 3.0, 1.0, 1.0, 2.0], [0.0, 0.0, 5.0, 4.0, 4.0]], dtype=torch.float64)
    assert tb.kth_smallest(d, 0).flatten().tolist() == [0.0, 0.0]
    assert tb.kth_smallest(d, 2).flatten().tolist() == [1.0, 4.0]
    assert tb.kth_smallest(d, 3).flatten().tolist() == [2.0, 4.0]
    assert d[0, 1] == 3.0  # the input is left as it was


@pytest.mark.parametrize("backend", ["cpu", "torch"])
def test_accumulator_refuses_unfittable_first_chunk_on_either_backend(backend):
    """Edges fitted on the first chunk, on the host or on the device, refuse the same inputs with
    the same messages, and the accumulator stays empty."""
    wide = np.array([[-1e308, 0.0], [1e308, 1.0], [0.0, 2.0]])
    chunk = torch.from_numpy(wide) if backend == "torch" else wide
    acc = pairmi.Accumulator("equal_width", bins=2, backend=backend)
    with pytest.raises(ValueError, match=r"range overflows float64 \(columns \[0\]\)"):
        acc.update(chunk)
    assert acc.n_samples == 0
    normal = make("normal", 50, 3, 0)
    acc.update(torch.from_numpy(normal) if backend == "torch" else normal)
    want = pairmi.mi_matrix(normal, edges=pairmi.fit_edges(normal, bins=2))
    np.testing.assert_allclose(np.asarray(acc.result()), want, rtol=0, atol=1e-12)
    copula = pairmi.Accumulator("gaussian_copula", bins=1, backend=backend)
    with pytest.raises(ValueError, match="knots"):
        copula.update(torch.from_numpy(normal) if backend == "torch" else normal)
    assert copula.n_samples == 0
