"""Regression tests of the defects an adversarial probe found: crashes, a hang after fork, results
lost or silently wrong, memory estimates below the real peak, and damaged or hostile files."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from datagen import make

import pairmi
from pairmi import _outputs, _threads, _written, analysis
from pairmi.cli import main

HERE = Path(__file__).parent


# --- crashes --------------------------------------------------------------------------------------


@pytest.mark.parametrize("estimator", pairmi.ESTIMATORS)
def test_zero_layers_give_an_empty_result(estimator):
    got = pairmi.mi_layers(np.empty((0, 40, 6)), estimator=estimator)
    assert got.shape == (0, 6, 6) and got.dtype == np.float64


def test_thread_count_beyond_the_limit_is_refused():
    with pytest.raises(ValueError, match="threads=2147483647 exceeds the limit"):
        pairmi.mi_matrix(np.random.default_rng(0).random((90, 10)), threads=2**31 - 1)
    assert _threads.max_threads() >= 64


def test_omp_num_threads_beyond_the_limit_is_capped(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2147483647")
    X = make("normal", 60, 5, 0)
    with pytest.warns(UserWarning, match="OMP_NUM_THREADS=2147483647 exceeds"):
        got = pairmi.mi_matrix(X)
    np.testing.assert_array_equal(got, pairmi.mi_matrix(X, threads=1))


@pytest.mark.parametrize("command", ["demo", "analyze"])
def test_cli_thread_count_beyond_the_limit_is_refused_before_any_work(capsys, command):
    with pytest.raises(SystemExit) as info:
        main([command, "--threads", "2147483647", "--out", "unused"] + (["--text", "x"] if command == "analyze" else []))
    assert info.value.code == 2 and "exceeds the limit" in capsys.readouterr().err


# --- the hang after fork ---------------------------------------------------------------------------

FORK_SCRIPT = """
import os, warnings, numpy as np, pairmi
X = np.random.default_rng(0).random((100, 50))
want = pairmi.mi_matrix(X, threads=2)          # the parent's OpenMP pool is started
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = pairmi.mi_matrix(X, threads=2)
        again = pairmi.mi_matrix(X, threads=2)  # warned once only
    ok = np.array_equal(got, want) and np.array_equal(again, want)
    os.write(w, f"{ok} {len(caught)} {caught[0].message}".encode())
    os._exit(0)
os.waitpid(pid, 0)
print(os.read(r, 1000).decode())
"""


def test_forked_child_runs_single_threaded_instead_of_hanging():
    run = subprocess.run(
        [sys.executable, "-c", FORK_SCRIPT],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "2"},
    )
    assert run.returncode == 0, run.stderr
    ok, count, message = run.stdout.split(" ", 2)
    assert ok == "True" and count == "1" and "forked" in message


# --- silent wrong or lost results ------------------------------------------------------------------


def test_copy_on_write_memmap_out_keeps_the_results(tmp_path):
    path = tmp_path / "o.npy"
    np.save(path, np.full((4, 4), 7.0))
    X = make("normal", 50, 4, 1)
    got = pairmi.mi_matrix(X, out=np.load(path, mmap_mode="c"))
    np.testing.assert_array_equal(got, pairmi.mi_matrix(X))
    np.testing.assert_array_equal(np.load(path), np.full((4, 4), 7.0))  # the file is untouched


@pytest.mark.parametrize("estimator", pairmi.ESTIMATORS)
def test_out_overlapping_the_input_is_still_exact(monkeypatch, estimator):
    monkeypatch.setattr(_outputs, "OUT_BLOCK_BYTES", 10 * 60 * 8)  # six blocks of ten rows
    monkeypatch.setattr(pairmi.copula, "BLOCK_BYTES", 10 * 60 * 8)
    X = make("normal", 60, 60, 2)
    want = pairmi.mi_matrix(X.copy(), estimator=estimator, out=np.empty((60, 60)))
    got = pairmi.mi_matrix(X, estimator=estimator, out=X)
    assert np.shares_memory(got, X)
    np.testing.assert_array_equal(got, want)  # as with a separate out
    # and as in memory (KSG's out= blocks sum a pair's terms in the other variable's order)
    np.testing.assert_allclose(got, pairmi.mi_matrix(make("normal", 60, 60, 2), estimator=estimator), rtol=1e-12)


@pytest.mark.parametrize("factor", [1e160, 1e-160, 2.0**-1000])
def test_ksg_is_scale_free_at_extreme_magnitudes(factor):
    X = make("normal", 300, 3, 3)
    X[:, 1] += X[:, 0]
    want = pairmi.mi_matrix(X, estimator="ksg")
    got = pairmi.mi_matrix(X * factor, estimator="ksg")
    assert want[0, 1] > 0.3
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)


def test_ksg_on_heavily_tied_data_is_clipped_to_the_entropies_with_a_warning():
    rng = np.random.default_rng(0)
    X = (rng.random((4096, 3)) > 0.5).astype(np.float64)
    X[:, 2] = rng.normal(size=4096)  # untied: its pairs are bounded by the binary one's entropy only
    with pytest.warns(RuntimeWarning) as caught:
        got = pairmi.mi_matrix(X, estimator="ksg")
    messages = [str(w.message) for w in caught]
    assert any("heavily tied variable" in m for m in messages)  # the clip
    assert any("samples tied" in m for m in messages)  # and the warning before it
    p = X[:, :2].mean(axis=0)
    entropy = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))  # bits, the bound
    assert got[0, 1] <= min(entropy) + 1e-12 and got[0, 1] == got[1, 0]
    assert np.isinf(np.diag(got)).all()
    assert (got[:2, 2] <= entropy + 1e-12).all()


def test_ksg_on_untied_data_warns_nothing_and_is_unchanged():
    X = make("heavy", 200, 6, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = pairmi.mi_matrix(X, estimator="ksg", units="nats")
    off = got[np.triu_indices(6, 1)]
    assert np.isfinite(off).all() and off.max() < np.log(200) and np.isinf(np.diag(got)).all()


def _clear_refs_works() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not _clear_refs_works(), reason="needs Linux's /proc/self/clear_refs to reset the peak RSS")
@pytest.mark.parametrize("case", ["binned", "shuffle", "mi_test", "copula", "ksg"])
def test_memory_estimate_matches_the_measured_peak(case):
    """The guard's estimate against the peak resident set of the call in a fresh process: never more
    than 5 % (plus 4 MB of allocator slack) below it, and at most 25 % above it."""
    run = subprocess.run(
        [sys.executable, str(HERE / "peak_memory.py"), case],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "2"},
    )
    assert run.returncode == 0, run.stderr
    estimate, measured = map(int, run.stdout.split())
    assert measured <= 1.05 * estimate + (4 << 20), (estimate, measured)
    assert estimate <= 1.25 * measured + (4 << 20), (estimate, measured)


# --- files ----------------------------------------------------------------------------------------


def _saved(tmp_path: Path, **overrides) -> Path:
    """A small valid mi.npz written by analysis.save, with some arrays replaced."""
    mi = pairmi.mi_layers(make("normal", 40, 4, 5)[None].repeat(2, axis=0))
    a = analysis.Analysis(
        mi,
        ["L0", "L1"],
        [f"t{i}" for i in range(40)],
        np.arange(4),
        {"estimator": "equal_width"},
        make("normal", 40, 4, 5)[None].repeat(2, axis=0).astype(np.float32),
    )
    out = tmp_path / "r"
    analysis.save(a, out)
    if overrides:
        with np.load(out / "mi.npz") as z:
            arrays = {k: z[k] for k in z.files}
        arrays.update(overrides)
        for k in [k for k, v in arrays.items() if v is None]:
            del arrays[k]
        np.savez(out / "mi.npz", **arrays)
    return out / "mi.npz"


def _write(path, save, *args, **kwargs):
    with open(path, "wb") as fh:  # a file object: np.save would add ".npy" to the name
        save(fh, *args, **kwargs)


MALFORMED = {
    "empty": lambda p: p.write_bytes(b""),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[:200]),
    "text": lambda p: p.write_text("hello"),
    "npy": lambda p: _write(p, np.save, np.zeros(3)),
    "other npz": lambda p: _write(p, np.savez, weights=np.zeros(3)),
}


@pytest.mark.parametrize("kind", list(MALFORMED))
def test_plot_on_a_malformed_file_is_one_line_and_exit_2(tmp_path, capsys, kind):
    path = _saved(tmp_path)
    MALFORMED[kind](path)
    assert main(["plot", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and err.count("\n") == 1 and "Traceback" not in err


WRONG_INSIDE = {
    "mi 2-d": {"mi": np.zeros((4, 4))},
    "mi ints": {"mi": np.zeros((2, 4, 4), dtype=np.int64)},
    "names count": {"layer_names": np.array(["L0"])},
    "dims negative": {"dims": np.array([-1, 0, 1, 2])},
    "params list": {"params": np.array(json.dumps([1, 2]))},
    "params junk": {"params": np.array("{nope")},
    "states short": {"hidden_states": np.zeros((2, 40, 2), dtype=np.float32)},
    "null shape": {"null": np.zeros((1, 4, 4))},
    "no tokens": {"tokens": None},
}


@pytest.mark.parametrize("kind", list(WRONG_INSIDE))
def test_load_names_the_file_and_the_wrong_array(tmp_path, kind):
    path = _saved(tmp_path, **WRONG_INSIDE[kind])
    with pytest.raises(ValueError, match="is not a readable pairmi analysis") as info:
        analysis.load(path)
    assert str(path) in str(info.value)


def test_layer_names_never_become_paths_outside_the_folder(tmp_path):
    path = _saved(tmp_path, layer_names=np.array(["a/../../PWN", ".hidden"]))
    out = tmp_path / "figs"
    assert main(["plot", str(path), "--out", str(out)]) == 0
    written = sorted(p.name for p in out.iterdir())
    assert "layer_a_.._.._PWN.png" in written and "layer_hidden.png" in written
    assert not list(tmp_path.rglob("PWN*")) and sorted(p.name for p in tmp_path.iterdir()) == ["figs", "r"]


@pytest.mark.parametrize(
    "name,want", [("a/../b", "a_.._b"), ("..", "_"), ("", "_"), (".hidden", "hidden"), ("L 3\n", "L_3_"), ("x.y-z_1", "x.y-z_1")]
)
def test_safe_name(name, want):
    assert _written.safe_name(name) == want


class _States:
    """The parts of HiddenStates that analysis.analyze reads."""

    def __init__(self, values):
        self.values, self.site, self.model_name, self.meta = values, "residual", "test", {}
        self.layer_names = [f"L{k}" for k in range(len(values))]
        self.tokens = [f"t{i}" for i in range(values.shape[1])]


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong arrays"])
def test_a_damaged_checkpoint_is_recomputed(tmp_path, capsys, damage):
    hs = _States(make("normal", 50, 5, 6)[None].repeat(3, axis=0))
    ckpt = tmp_path / "ckpt"
    want = analysis.analyze(hs, checkpoint_dir=ckpt).mi
    layer1 = ckpt / "layer0001.npz"
    if damage == "garbage":
        layer1.write_bytes(b"PK\x03\x04 not really a zip")
    elif damage == "truncated":
        layer1.write_bytes(layer1.read_bytes()[:100])
    else:
        np.savez(layer1, other=np.zeros(3))
    got = analysis.analyze(hs, checkpoint_dir=ckpt).mi
    np.testing.assert_array_equal(got, want)
    assert "layer0001.npz is damaged" in capsys.readouterr().err
    with np.load(layer1) as z:  # rewritten whole
        np.testing.assert_array_equal(z["mi"], want[1])


def test_a_full_disk_leaves_no_temporary_file(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        analysis.atomic_write_bytes(tmp_path / "mi.npz", b"x" * 1000)
    assert list(tmp_path.iterdir()) == []


# --- smaller --------------------------------------------------------------------------------------


def test_ctrl_c_is_checked_inside_one_long_ksg_pair():
    """One pair of 200,000 samples is a single tile: the monitor (Ctrl-C check and progress) must
    run while the pair is being computed, not only after it. Its first call reports 0 tiles done."""
    X = make("normal", 200_000, 2, 7)
    calls = []

    def progress(done, total):
        calls.append((done, total))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pairmi.mi_matrix(X, estimator="ksg", threads=1, progress=progress)
    assert calls == [(0, 1)]


def test_cli_refuses_fewer_than_two_units_before_loading_a_model(capsys):
    for spec in ("0:1", "5", "3,3", "4:2"):
        with pytest.raises(SystemExit) as info:
            main(["analyze", "--text", "x", "--dims", spec, "--out", "unused"])
        assert info.value.code == 2
        assert "pairwise MI needs at least 2" in capsys.readouterr().err


def test_analyze_refuses_fewer_than_two_units():
    hs = _States(make("normal", 30, 5, 8)[None])
    with pytest.raises(ValueError, match="selects 1 unit"):
        analysis.analyze(hs, dims=slice(4, None))


def test_plot_layers_checks_the_names():
    pytest.importorskip("matplotlib")
    from pairmi import plot

    with pytest.raises(ValueError, match="names has 1 entries for 3 layers"):
        plot.layers(np.zeros((3, 4, 4)), names=["a"])


def test_a_memmap_on_a_full_file_system_raises_instead_of_sigbus(tmp_path, monkeypatch):
    out = np.lib.format.open_memmap(tmp_path / "o.npy", mode="w+", dtype=np.float64, shape=(5, 5))

    def no_room(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", no_room, raising=False)
    with pytest.raises(OSError, match=r"no room for the .* result in .*o\.npy"):
        pairmi.mi_matrix(make("normal", 30, 5, 9), out=out)


def test_a_memmap_out_is_reserved_then_filled(tmp_path):
    out = np.lib.format.open_memmap(tmp_path / "o.npy", mode="w+", dtype=np.float32, shape=(6, 6))
    X = make("normal", 30, 6, 10)
    pairmi.mi_matrix(X, out=out)
    del out
    np.testing.assert_array_equal(np.load(tmp_path / "o.npy"), pairmi.mi_matrix(X, dtype=np.float32))
