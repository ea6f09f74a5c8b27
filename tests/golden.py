"""Golden outputs: fixed inputs through every public function, saved so that a refactor can prove its
results unchanged (tests/test_golden.py). Regenerate only when a result is meant to change:

    python tests/golden.py --write      # rewrites tests/golden.npz from the installed pairmi
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from datagen import make

import pairmi

PATH = Path(__file__).with_name("golden.npz")
ESTIMATORS = ("equal_width", "equal_frequency", "ksg", "gaussian_copula")
# Compared within this many bits, not bit for bit: KSG's float sums, and the copula's matrix
# products, whose BLAS kernel (and so its rounding) depends on the processor.
LOOSE = {"ksg": 1e-12, "gaussian_copula": 1e-12}


def inputs() -> dict[str, np.ndarray]:
    """The fixed inputs (saved with the outputs, so a change of numpy's generators changes nothing)."""
    return {
        "X": make("mixed", 120, 10, 1),
        "Y": make("heavy", 120, 4, 2),
        "H": np.stack([make(kind, 90, 12, 3) for kind in ("outliers", "heavy", "normal")]).astype(np.float32),
    }


def cases(inp: dict[str, np.ndarray]) -> dict[str, Callable[[], np.ndarray]]:
    """Name -> a call whose result is saved; names start with the estimator whose tolerance applies."""
    X, Y, H = inp["X"], inp["Y"], inp["H"]
    out: dict[str, Callable[[], np.ndarray]] = {}
    for est in ESTIMATORS:
        out[f"{est}/mi_matrix"] = lambda est=est: pairmi.mi_matrix(X, estimator=est)
        out[f"{est}/mi_matrix_xy"] = lambda est=est: pairmi.mi_matrix(X, Y, estimator=est)
        out[f"{est}/mi_layers"] = lambda est=est: pairmi.mi_layers(H, estimator=est)
        out[f"{est}/mi_layers_f32"] = lambda est=est: pairmi.mi_layers(H, estimator=est, dtype=np.float32)
        out[f"{est}/mi_topk_indices"] = lambda est=est: pairmi.mi_topk(X, n_partners=3, estimator=est).indices
        out[f"{est}/mi_topk_values"] = lambda est=est: pairmi.mi_topk(X, n_partners=3, estimator=est).values
        out[f"{est}/out_rows"] = lambda est=est: pairmi.mi_matrix(X, estimator=est, out=np.empty((10, 10)))
        out[f"{est}/out_rows_xy"] = lambda est=est: pairmi.mi_matrix(X, Y, estimator=est, out=np.empty((10, 4), np.float32))
        out[f"{est}/zarr_tiles"] = lambda est=est: _zarr(X, est)
    out["equal_frequency/mi_layers_dims"] = lambda: pairmi.mi_layers(H, estimator="equal_frequency", dims=[0, 3, 5, 7])
    out["equal_width/miller_madow"] = lambda: pairmi.mi_matrix(X, correction="miller_madow", units="nats")
    out["equal_width/shuffle"] = lambda: pairmi.mi_matrix(X, correction="shuffle", n_permutations=5, seed=3)
    out["equal_width/auto_bins"] = lambda: pairmi.mi_matrix(X, bins="auto")
    out["ksg/k4_noise"] = lambda: pairmi.mi_matrix(X, estimator=pairmi.KSG(k=4, noise=1e-10))
    for est in ("equal_width", "equal_frequency", "gaussian_copula"):
        edges = lambda est=est: pairmi.fit_edges(X[:60], est, bins=None if est == "gaussian_copula" else 8)  # noqa: E731
        out[f"{est}/fit_edges"] = edges
        out[f"{est}/with_edges"] = lambda est=est, edges=edges: pairmi.mi_matrix(X, estimator=est, edges=edges())
        out[f"{est}/accumulator"] = lambda est=est, edges=edges: _streamed(est, edges(), X)
        out[f"{est}/accumulator_bias"] = lambda est=est, edges=edges: _streamed(est, edges(), X, bias=True)
    tests = (
        ("equal_width", "shuffle"),
        ("equal_frequency", "rotation"),
        ("gaussian_copula", "shuffle"),
        ("gaussian_copula", "windows"),
    )
    for est, null in tests:
        segments = {"rotation": [60, 60], "windows": [30] * 4}.get(null)
        test = lambda est=est, null=null, segments=segments: pairmi.mi_test(  # noqa: E731
            X, estimator=est, null=null, segments=segments, n_permutations=19, seed=0
        )
        out[f"{est}/mi_test_{null}_p"] = lambda test=test: test().p_value
        out[f"{est}/mi_test_{null}_null_mean"] = lambda test=test: test().null_mean
        out[f"{est}/mi_test_{null}_p_tail"] = lambda test=test: test().p_tail
    out["equal_width/null_mi"] = lambda: pairmi.null_mi(X, n_permutations=4, bins=6)
    try:
        import dask.array as da
    except ImportError:
        return out
    for est in ("equal_width", "ksg", "gaussian_copula"):
        out[f"{est}/dask_mi_tiles"] = lambda est=est: _tiles(da, X, est)
    return out


def _zarr(X: np.ndarray, est: str) -> np.ndarray:
    """mi_matrix written tile by tile into a zarr store (4 variables a side), read back."""
    import tempfile

    try:
        import zarr  # noqa: F401
    except ImportError:
        return pairmi.mi_matrix(X, estimator=est)  # the value the store must hold
    with tempfile.TemporaryDirectory() as folder:
        return np.asarray(pairmi.mi_matrix(X, estimator=est, out=f"{folder}/mi.zarr", tile_size=4)[...])


def _streamed(est: str, edges: np.ndarray, X: np.ndarray, bias: bool = False) -> np.ndarray:
    acc = pairmi.Accumulator(est, edges=edges)
    for part in np.array_split(X, 3):
        acc.update(part)
    return acc.bias() if bias else acc.result()


def _tiles(da: object, X: np.ndarray, est: str) -> np.ndarray:
    import dask

    import pairmi.dask as pdask

    with dask.config.set(scheduler="synchronous"):  # one process: the tiles are what a cluster computes
        return pdask.mi_tiles(da.from_array(X, chunks=(120, 4)), estimator=est)  # type: ignore[attr-defined]


def compute(inp: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: np.asarray(call()) for name, call in cases(inp).items()}


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(__doc__)
    inp = inputs()
    results = compute(inp)
    np.savez(PATH, **{f"input/{k}": v for k, v in inp.items()}, **{f"output/{k}": v for k, v in results.items()})
    print(f"wrote {len(results)} outputs to {PATH}")
