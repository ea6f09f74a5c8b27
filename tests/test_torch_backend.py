"""backend='torch': the binned estimators and the Gaussian copula on torch tensors, checked against
the C++ core on one shared matrix of cases (CPU torch here; the same code runs on CUDA tensors)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import pairmi  # noqa: E402
from datagen import KINDS, make  # noqa: E402

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
    same(pairmi.mi_layers(torch.from_numpy(H), backend="torch", dtype=np.float64, **kw),
         pairmi.mi_layers(H, dtype=np.float64, **kw))


@pytest.mark.parametrize("estimator", ["equal_width", "equal_frequency"])
def test_torch_with_fixed_edges_and_few_samples(estimator):
    X = make("heavy", 400, 6, 6)
    E = pairmi.fit_edges(X[:100], estimator, bins=9)
    same(pairmi.mi_matrix(torch.from_numpy(X), estimator=estimator, edges=E, backend="torch"),
         pairmi.mi_matrix(X, estimator=estimator, edges=E))
    small = make("ties", 20, 5, 7)  # 20 samples, 15 bins: the core's rank kernel
    same(pairmi.mi_matrix(torch.from_numpy(small), backend="torch"), pairmi.mi_matrix(small))


@pytest.mark.parametrize("kind", ["normal", "heavy", "outliers", "constant", "mixed"])
def test_torch_ksg_equals_the_core_and_scikit_learn(kind):
    """Brute-force KSG on tensors against the core's walks (1e-9 nats) on untied data, square and
    X against Y with another k, and against scikit-learn's mutual_info_regression (1e-6 nats)."""
    X = make(kind, 150, 7, 11)
    Y = make("mixed", 150, 3, 12)
    same(pairmi.mi_matrix(torch.from_numpy(X), estimator="ksg", units="nats", backend="torch"),
         pairmi.mi_matrix(X, estimator="ksg", units="nats"))
    same(pairmi.mi_matrix(torch.from_numpy(X), torch.from_numpy(Y), estimator="ksg", k=5, backend="torch"),
         pairmi.mi_matrix(X, Y, estimator="ksg", k=5))
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


def test_torch_backend_says_what_it_lacks():
    X = torch.from_numpy(make("normal", 60, 3, 9))
    for kw, words in (({"estimator": "ksg", "edges": np.zeros((3, 16))}, "takes no edges"),
                      ({"estimator": "ksg", "k": 60}, "k must be"), ({"correction": "shuffle"}, "correction"),
                      ({"out": np.empty((3, 3))}, "out="), ({"backend": "gpu"}, "backend must be one of")):
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
def test_cuda_tensors_stay_on_the_device():  # pragma: no cover - runs where a GPU is
    X = make("mixed", 300, 8, 10)
    got = pairmi.mi_matrix(torch.from_numpy(X).cuda())
    assert got.is_cuda
    same(got.cpu(), pairmi.mi_matrix(X))


def test_bench_gpu_smoke_test_runs_on_cpu_torch():
    """bench/bench_gpu.py --tiny: every workload on the core and on torch, equal within 1e-9 bits."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parent.parent / "bench" / "bench_gpu.py"
    if not script.exists():
        pytest.skip("bench/ is not beside the tests")
    done = subprocess.run([sys.executable, str(script), "--tiny", "--runs", "1", "--device", "cpu"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and "workload" not in line
            and "---" not in line]
    assert len(rows) == 6
    assert all(float(row.split("|")[-2]) <= 1e-9 for row in rows), rows


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
    same(tb.binned_mi(torch.from_numpy(X)[None], None, "equal_width", 15, 1.0, block=3).numpy()[0],
         pairmi.mi_matrix(X, units="nats"))
