"""Streaming accumulators: streamed == in memory with the same edges, any chunking and merge order
bit-identical, fixed edges against numpy, save/load, and bad input leaving the state unchanged."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from datagen import make
from hypothesis import given
from hypothesis import strategies as st

import pairmi
from pairmi import stream

BITS = 1.0 / np.log(2.0)


def chunks(x, sizes):
    """x split along the samples axis (-2) into pieces of the given sizes (the rest last)."""
    cuts = np.cumsum(sizes)
    cuts = cuts[cuts < x.shape[-2]]
    return np.split(x, cuts, axis=-2)


def binned_reference(x, y, ex, ey):
    """Plug-in MI (bits) of one pair with fixed edges, by numpy: values beyond the edges are
    clipped into the end bins, then np.histogram2d and the entropy formulas."""
    counts = np.histogram2d(np.clip(x, ex[0], ex[-1]), np.clip(y, ey[0], ey[-1]), bins=[ex, ey])[0]
    p = counts / counts.sum()

    def h(q):
        q = q[q > 0]
        return -(q * np.log2(q)).sum()

    return max(0.0, h(p.sum(axis=1)) + h(p.sum(axis=0)) - h(p.ravel()))


# --- fixed edges ----------------------------------------------------------------------------------


def test_fit_edges_resolves_auto_bins_from_the_sample():
    X = make("normal", 1000, 3, 1)
    edges = pairmi.fit_edges(X, bins="auto")
    assert edges.shape == (3, pairmi.settings.auto_bins(1000) + 1)
    np.testing.assert_array_equal(pairmi.mi_matrix(X, edges=edges), pairmi.mi_matrix(X, bins="auto"))


def test_fit_edges_follow_numpy():
    X = make("heavy", 300, 5, 0)
    ew = pairmi.fit_edges(X, "equal_width", bins=12)
    ef = pairmi.fit_edges(X, "equal_frequency", bins=12)
    for c in range(5):
        np.testing.assert_array_equal(ew[c], np.linspace(X[:, c].min(), X[:, c].max(), 13))
        np.testing.assert_array_equal(ef[c], np.percentile(X[:, c], np.linspace(0, 100, 13)))
    knots = pairmi.fit_edges(X, "gaussian_copula", bins=300)
    np.testing.assert_array_equal(knots, np.sort(X, axis=0).T)  # K = n: the sorted sample
    assert pairmi.fit_edges(X[None].repeat(2, axis=0), "equal_width").shape == (2, 5, 16)


@pytest.mark.parametrize("estimator", ["equal_width", "equal_frequency"])
def test_mi_matrix_with_fixed_edges_against_numpy(estimator):
    calibration = make("normal", 200, 4, 1)
    E = pairmi.fit_edges(calibration, estimator, bins=7)
    X = make("heavy", 500, 4, 2) * 1.5  # well beyond the calibration range: end bins
    Y = make("ties", 500, 3, 3)
    EY = pairmi.fit_edges(make("ties", 100, 3, 4), estimator, bins=7)
    got = pairmi.mi_matrix(X, estimator=estimator, edges=E)
    cross = pairmi.mi_matrix(X, Y, estimator=estimator, edges=E, edges_y=EY)
    for i in range(4):
        for j in range(4):
            if i != j:
                assert abs(got[i, j] - binned_reference(X[:, i], X[:, j], E[i], E[j])) <= 1e-12
        for j in range(3):
            assert abs(cross[i, j] - binned_reference(X[:, i], Y[:, j], E[i], EY[j])) <= 1e-12


def test_copula_map_of_the_sample_itself_equals_ranks():
    X = make("mixed", 150, 6, 5)  # no ties
    knots = pairmi.fit_edges(X, "gaussian_copula", bins=150)
    got = pairmi.mi_matrix(X, estimator="gaussian_copula", edges=knots)
    np.testing.assert_allclose(got, pairmi.mi_matrix(X, estimator="gaussian_copula"), rtol=0, atol=1e-12)


def test_mi_layers_edges_follow_dims():
    H = np.stack([make("normal", 100, 6, s) for s in (6, 7)])
    E = pairmi.fit_edges(H, "equal_width", bins=5)
    got = pairmi.mi_layers(H, dims=[4, 1], edges=E, dtype=np.float64)
    np.testing.assert_array_equal(got[1], pairmi.mi_matrix(H[1][:, [4, 1]], edges=E[1][[4, 1]]))


# --- streamed == in memory -----------------------------------------------------------------------


@pytest.mark.parametrize("estimator", ["equal_width", "equal_frequency"])
@pytest.mark.parametrize("correction", [None, "miller_madow"])
def test_streamed_binned_equals_in_memory(estimator, correction):
    X = make("outliers", 3000, 9, 8).astype(np.float32)
    E = pairmi.fit_edges(X[:500], estimator, bins=10)
    acc = pairmi.Accumulator(estimator, edges=E, correction=correction)
    for c in chunks(X, [700, 1, 999, 300]):
        acc.update(c)
    assert acc.n_samples == 3000
    want = pairmi.mi_matrix(X, estimator=estimator, edges=E, correction=correction)
    np.testing.assert_allclose(acc.result(), want, rtol=0, atol=1e-12)


def test_streamed_layers_and_cross_equal_in_memory():
    H = np.stack([make("mixed", 1200, 7, s) for s in (9, 10, 11)])
    Y = np.stack([make("heavy", 1200, 4, s) for s in (12, 13, 14)])
    E, EY = pairmi.fit_edges(H[:, :300], "equal_width"), pairmi.fit_edges(Y[:, :300], "equal_width")
    square = pairmi.Accumulator(edges=E)
    cross = pairmi.Accumulator(edges=E, edges_y=EY)
    for c, cy in zip(chunks(H, [400, 400]), chunks(Y, [400, 400])):
        square.update(c)
        cross.update(c, cy)
    np.testing.assert_allclose(square.result(), pairmi.mi_layers(H, edges=E, dtype=np.float64), rtol=0, atol=1e-12)
    for l in range(3):
        want = pairmi.mi_matrix(H[l], Y[l], edges=E[l], edges_y=EY[l])
        np.testing.assert_allclose(cross.result()[l], want, rtol=0, atol=1e-12)


def test_streamed_copula_equals_in_memory_with_the_same_map():
    X = make("mixed", 5000, 8, 15)
    knots = pairmi.fit_edges(X[:800], "gaussian_copula", bins=200)
    acc = pairmi.Accumulator("gaussian_copula", edges=knots)
    for c in chunks(X, [1000] * 4):
        acc.update(c)
    want = pairmi.mi_matrix(X, estimator="gaussian_copula", edges=knots, units="bits")
    np.testing.assert_allclose(acc.result(), want, rtol=0, atol=1e-9)
    Y = make("heavy", 5000, 3, 16)
    ky = pairmi.fit_edges(Y[:800], "gaussian_copula", bins=200)
    cross = pairmi.Accumulator("gaussian_copula", edges=knots, edges_y=ky)
    for c, cy in zip(chunks(X, [2500]), chunks(Y, [2500])):
        cross.update(c, cy)
    np.testing.assert_allclose(
        cross.result(), pairmi.mi_matrix(X, Y, estimator="gaussian_copula", edges=knots, edges_y=ky), rtol=0, atol=1e-9
    )


@given(
    sizes=st.lists(st.integers(1, 400), min_size=1, max_size=6),
    order=st.permutations(range(4)),
    estimator=st.sampled_from(["equal_width", "equal_frequency"]),
)
def test_any_chunking_and_merge_order_is_bit_identical(sizes, order, estimator):
    X = make("ties", 1000, 6, 17)
    E = pairmi.fit_edges(X[:200], estimator, bins=9)
    whole = pairmi.Accumulator(estimator, edges=E).update(X).result()
    one = pairmi.Accumulator(estimator, edges=E)
    for c in chunks(X, sizes):
        one.update(c)
    np.testing.assert_array_equal(one.result(), whole)
    shards = [pairmi.Accumulator(estimator, edges=E).update(c) for c in chunks(X, [250] * 3)]
    merged = pairmi.Accumulator(estimator, edges=E)
    for k in order:
        merged.merge(shards[k])
    np.testing.assert_array_equal(merged.result(), whole)


def test_counts_beyond_32_bits():
    """Totals are 64-bit: counts scaled by 2^33 (as after 2^33 times the samples) give the same MI."""
    X = make("normal", 2000, 5, 18)
    acc = pairmi.Accumulator(edges=pairmi.fit_edges(X)).update(X)
    want = acc.result()
    for total in acc._totals.values():
        total *= np.uint64(2**33)
    acc.n_samples *= 2**33
    assert acc._totals["counts"].dtype == np.uint64 and acc._totals["counts"].max() > 2**38
    np.testing.assert_allclose(acc.result(), want, rtol=0, atol=1e-9)


def test_bias_is_the_first_order_plug_in_bias():
    X = make("ties", 800, 4, 19)
    E = pairmi.fit_edges(X, "equal_width", bins=8)
    acc = pairmi.Accumulator(edges=E).update(X)
    occupied = [np.count_nonzero(np.histogram(np.clip(X[:, c], E[c][0], E[c][-1]), E[c])[0]) for c in range(4)]
    for i in range(4):
        for j in range(4):
            want = 0.0 if i == j else (occupied[i] - 1) * (occupied[j] - 1) / (2 * 800) * BITS
            assert abs(acc.bias()[i, j] - want) <= 1e-15


def test_first_chunk_fits_the_edges_when_none_are_given():
    X = make("normal", 900, 5, 20)
    acc = pairmi.Accumulator("equal_frequency", bins=6).update(X[:300]).update(X[300:])
    np.testing.assert_array_equal(acc.edges[0], pairmi.fit_edges(X[:300], "equal_frequency", bins=6))
    np.testing.assert_allclose(
        acc.result(), pairmi.mi_matrix(X, estimator="equal_frequency", edges=acc.edges[0]), rtol=0, atol=1e-12
    )


def test_torch_chunks():
    torch = pytest.importorskip("torch")
    X = make("normal", 600, 4, 21).astype(np.float32)
    E = pairmi.fit_edges(X)
    got = pairmi.Accumulator(edges=E).update(torch.from_numpy(X[:300])).update(torch.from_numpy(X[300:])).result()
    np.testing.assert_array_equal(got, pairmi.Accumulator(edges=E).update(X).result())


# --- save and load --------------------------------------------------------------------------------


@pytest.mark.parametrize("estimator", stream.STREAM_ESTIMATORS)
def test_save_load_resume_is_bit_identical(tmp_path, estimator):
    X = make("mixed", 1500, 5, 22)
    E = pairmi.fit_edges(X[:300], estimator)
    straight = pairmi.Accumulator(estimator, edges=E, units="nats").update(X[:700]).update(X[700:])
    first = pairmi.Accumulator(estimator, edges=E, units="nats").update(X[:700])
    first.save(tmp_path / "state.npz")
    resumed = pairmi.Accumulator.load(tmp_path / "state.npz").update(X[700:])
    assert resumed.n_samples == 1500 and resumed.units == "nats"
    np.testing.assert_array_equal(resumed.result(), straight.result())
    assert not [p for p in tmp_path.iterdir() if p.name != "state.npz"]


def test_load_refuses_other_files_and_versions(tmp_path):
    acc = pairmi.Accumulator().update(make("normal", 100, 3, 23))
    acc.save(tmp_path / "s.npz")
    with np.load(tmp_path / "s.npz") as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(str(arrays["header"]))
    cases = {
        "newer": {**arrays, "header": np.array(json.dumps({**header, "version": 99}))},
        "other": {"weights": np.zeros(3)},
        "shapes": {**arrays, "total_counts": np.zeros((1, 2, 15, 15), np.uint64)},
    }
    for name, content in cases.items():
        np.savez(tmp_path / f"{name}.npz", **content)
        with pytest.raises(ValueError, match=f"{name}.npz is not a readable pairmi accumulator state"):
            pairmi.Accumulator.load(tmp_path / f"{name}.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"junk\.npz"):
        pairmi.Accumulator.load(tmp_path / "junk.npz")


def _saved_state(tmp_path, estimator="equal_width"):
    acc = pairmi.Accumulator(estimator).update(make("normal", 100, 3, 23))
    acc.save(tmp_path / "s.npz")
    with np.load(tmp_path / "s.npz") as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, json.loads(str(arrays["header"]))


def _edges_changed(arrays, change):
    edges = arrays["edges"].copy()
    change(edges)
    return {**arrays, "edges": edges}


def test_load_checks_edges_and_totals(tmp_path):
    """A state that would give silently wrong results is refused, naming the file: edges as the
    constructor checks them, and totals that add up to n_samples."""
    arrays, header = _saved_state(tmp_path)
    counts = arrays["total_counts"].copy()
    counts[0, 0, 0, 0] += 7
    cases = {
        "decreasing": (_edges_changed(arrays, lambda e: e.__setitem__((..., slice(None)), e[..., ::-1].copy())), "sorted"),
        "nan_edges": (_edges_changed(arrays, lambda e: e.__setitem__((0, 0, 3), np.nan)), "finite"),
        "more_samples": ({**arrays, "header": np.array(json.dumps({**header, "n_samples": 200}))}, "not n_samples = 200"),
        "counts": ({**arrays, "total_counts": counts}, "counts add up to 107"),
        "negative": ({**arrays, "header": np.array(json.dumps({**header, "n_samples": -3}))}, "non-negative"),
        "bins": (
            {
                **arrays,
                "edges": np.tile(np.linspace(0, 1, 300), (1, 3, 1)),
                "total_counts": np.zeros((1, 3, 299, 299), np.uint64),
                "total_marginal_x": np.zeros((1, 3, 299), np.uint64),
            },
            "bins in [2, 255]",
        ),
    }
    for name, (content, words) in cases.items():
        np.savez(tmp_path / f"{name}.npz", **content)
        with pytest.raises(ValueError, match=f"{name}.npz is not a readable pairmi accumulator state") as info:
            pairmi.Accumulator.load(tmp_path / f"{name}.npz")
        assert words in str(info.value), (name, info.value)


def test_load_survives_hostile_files(tmp_path):
    """A member declaring a huge shape, random bytes, a pickled object: each a ValueError naming the
    file, without a MemoryError or numpy's allow_pickle advice."""
    arrays, _ = _saved_state(tmp_path)
    np.savez(tmp_path / "huge.npz", **arrays)
    data = (tmp_path / "huge.npz").read_bytes()
    header = b"{'descr': '<u8', 'fortran_order': False, 'shape': (1, 3, 15, 15), }"
    assert data.count(header) == 1
    huge = b"{'descr': '<u8', 'fortran_order': False, 'shape': (99999999999,), }"  # 800 GB, as long
    assert len(huge) == len(header)
    (tmp_path / "huge.npz").write_bytes(data.replace(header, huge))
    (tmp_path / "random.npz").write_bytes(np.random.default_rng(0).bytes(5000))
    np.savez(
        tmp_path / "pickled.npz", header=np.array([{"a": 1}], dtype=object), **{k: v for k, v in arrays.items() if k != "header"}
    )
    for name in ("huge", "random", "pickled"):
        with pytest.raises(ValueError, match=f"{name}.npz is not a readable pairmi accumulator state") as info:
            pairmi.Accumulator.load(tmp_path / f"{name}.npz")
        assert "allow_pickle" not in str(info.value), info.value


def test_save_does_not_follow_a_planted_link(tmp_path, monkeypatch):
    """The temporary file has an unpredictable name, created exclusively: a symlink planted under the
    old predictable name (or at the target itself) never redirects the write."""
    import os

    monkeypatch.chdir(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    os.symlink("victim.txt", f".acc.npz.tmp{os.getpid()}")
    os.symlink("victim.txt", "link.npz")
    acc = pairmi.Accumulator().update(X0)
    acc.save("acc.npz")
    acc.save("link.npz")
    assert victim.read_text() == "precious"
    assert not (tmp_path / "acc.npz").is_symlink() and not (tmp_path / "link.npz").is_symlink()
    np.testing.assert_array_equal(pairmi.Accumulator.load("link.npz").result(), acc.result())
    assert oct((tmp_path / "acc.npz").stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask():
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


# --- bad input ------------------------------------------------------------------------------------

X0 = make("normal", 200, 4, 24)
NAN = X0.copy()
NAN[5, 2] = np.nan

BAD_UPDATES = [
    ("variables", lambda a: a.update(X0[:, :3]), "3 variables; the accumulator has 4"),
    ("dtype", lambda a: a.update(X0.astype(np.float32)), "dtype float32 differs"),
    ("layers", lambda a: a.update(X0[None]), "the first was (n, d)"),
    ("empty", lambda a: a.update(X0[:0]), "no samples"),
    ("nan", lambda a: a.update(NAN), "NaN or Inf"),
    ("y", lambda a: a.update(X0, X0), "pairs X against itself"),
    ("1-d", lambda a: a.update(X0[:, 0]), "must be 2-d"),
    ("strings", lambda a: a.update(np.array([["a"]])), "must hold numbers"),
]


@pytest.mark.parametrize("estimator", stream.STREAM_ESTIMATORS)
@pytest.mark.parametrize("what,call,words", BAD_UPDATES, ids=[b[0] for b in BAD_UPDATES])
def test_a_bad_chunk_is_refused_and_changes_nothing(estimator, what, call, words):
    acc = pairmi.Accumulator(estimator, edges=pairmi.fit_edges(X0, estimator)).update(X0)
    before = acc.result()
    with pytest.raises((ValueError, TypeError), match=re.escape(words)):
        call(acc)
    assert acc.n_samples == 200
    np.testing.assert_array_equal(acc.result(), before)


def test_threads_sharing_one_accumulator_lose_nothing():
    """Four Python threads updating (and merging into) one accumulator: every count arrives, equal
    to the same chunks added one after another."""
    import threading

    X = make("mixed", 48_000, 24, 30)
    E = pairmi.fit_edges(X)
    parts = chunks(X, [1500] * 31)
    shared = pairmi.Accumulator(edges=E, threads=1)
    extra = pairmi.Accumulator(edges=E, threads=1).update(X[:100])
    start = threading.Barrier(4)

    def work(mine):
        start.wait()  # all at once, so the kernels overlap
        for chunk in mine:
            shared.update(chunk)
        shared.merge(extra)

    workers = [threading.Thread(target=work, args=(parts[k::4],)) for k in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    serial = pairmi.Accumulator(edges=E, threads=1)
    for chunk in parts:
        serial.update(chunk)
    for _ in range(4):
        serial.merge(extra)
    assert shared.n_samples == serial.n_samples == 48_400
    np.testing.assert_array_equal(shared.result(), serial.result())


def test_ctrl_c_during_a_large_update_stops_and_changes_nothing():
    """The count kernel checks for Ctrl-C between tiles; the tiles already added are taken out, so
    the accumulator is as before and goes on to the right answer."""
    import _thread
    import sys
    import threading

    X = make("normal", 20_000, 200, 31)
    E = pairmi.fit_edges(X[:1000])
    acc = pairmi.Accumulator(edges=E, threads=2).update(X[:1000])
    before = acc.result()
    main = threading.main_thread().ident
    sent = threading.Event()

    def interrupt_inside_the_kernel():
        # Wait until the main thread is inside the core's count (its Python frame stays on the call
        # while the kernel runs without the GIL), then do what Ctrl-C does.
        for _ in range(20_000):
            frame = sys._current_frames().get(main)
            if frame is not None and frame.f_code.co_name == "add" and "add_pair_counts" in _line(frame):
                _thread.interrupt_main()
                sent.set()
                return
            threading.Event().wait(0.0005)

    watcher = threading.Thread(target=interrupt_inside_the_kernel)
    watcher.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            acc.update(X)
            threading.Event().wait(5)  # the interrupt may land just after the update returned
    finally:
        watcher.join()
    assert sent.is_set(), "the update ended before the kernel was seen running"
    assert acc.n_samples == 1000
    np.testing.assert_array_equal(acc.result(), before)
    acc.update(X[1000:])
    np.testing.assert_array_equal(acc.result(), pairmi.Accumulator(edges=E).update(X).result())


def _line(frame):
    import linecache

    return linecache.getline(frame.f_code.co_filename, frame.f_lineno)


def test_values_below_tied_lowest_edges_join_the_minimums_bin():
    """Equal-frequency edges of data with many equal minima (ReLU zeros) start with tied edges; a
    later value below them falls in the bin of the minimum's values, as a value above the range
    falls in the last bin (the core and the torch backend alike)."""
    rng = np.random.default_rng(32)
    calib = np.maximum(rng.normal(size=(400, 2)), 0.0)  # half zeros
    E = pairmi.fit_edges(calib, "equal_frequency", bins=6)
    assert E[0, 0] == E[0, 1] == 0.0
    later = np.array([[-1.0, 0.5], [0.0, -2.0], [5.0, 0.0], [0.3, 9.0]])
    data = np.vstack([calib, later])
    got = pairmi.Accumulator("equal_frequency", edges=E).update(data).result()
    clipped = np.clip(data, E[:, 0], E[:, -1])  # below the range: the lowest value, in its bin
    want = pairmi.Accumulator("equal_frequency", edges=E).update(clipped).result()
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(
        pairmi.mi_matrix(data, estimator="equal_frequency", edges=E),
        pairmi.mi_matrix(clipped, estimator="equal_frequency", edges=E),
    )
    np.testing.assert_allclose(got[0, 1], binned_reference(clipped[:, 0], clipped[:, 1], E[0], E[1]), rtol=0, atol=1e-12)
    pytest.importorskip("torch")
    on_torch = pairmi.Accumulator("equal_frequency", edges=E, backend="torch").update(data).result()
    np.testing.assert_allclose(on_torch, got, rtol=0, atol=1e-12)  # the same counts; sums rounded in another order


def test_nan_policy_omit_drops_the_samples():
    E = pairmi.fit_edges(X0)
    got = pairmi.Accumulator(edges=E, nan_policy="omit").update(NAN).result()
    np.testing.assert_array_equal(got, pairmi.Accumulator(edges=E).update(np.delete(NAN, 5, axis=0)).result())


BAD_SETTINGS = [
    ("ksg", lambda: pairmi.Accumulator("ksg"), "KSG has no statistics"),
    ("shuffle", lambda: pairmi.Accumulator(correction="shuffle"), "correction"),
    ("edges shape", lambda: pairmi.Accumulator(edges=np.zeros((3, 16))).update(X0), "edges must be (4, k)"),
    ("edges unsorted", lambda: pairmi.Accumulator(edges=np.tile(np.arange(16.0)[::-1], (4, 1))).update(X0), "must be sorted"),
    ("edges nan", lambda: pairmi.Accumulator(edges=np.full((4, 16), np.nan)).update(X0), "finite"),
    ("one bin", lambda: pairmi.Accumulator(edges=np.zeros((4, 2))).update(X0), "bins in [2, 255]"),
    ("y missing", lambda: pairmi.Accumulator(edges=pairmi.fit_edges(X0), edges_y=pairmi.fit_edges(X0)).update(X0), "pass y"),
    ("no samples", lambda: pairmi.Accumulator().result(), "no samples yet"),
    ("fit ksg", lambda: pairmi.fit_edges(X0, "ksg"), "streaming supports"),
    ("fit knots", lambda: pairmi.fit_edges(X0, "gaussian_copula", bins=1), "knots"),
    (
        "fit too many knots",
        lambda: pairmi.fit_edges(X0, "gaussian_copula", bins=10**11),
        "knots (bins) must be an integer in [2, 200]",
    ),
]


@pytest.mark.parametrize("what,call,words", BAD_SETTINGS, ids=[b[0] for b in BAD_SETTINGS])
def test_bad_settings_get_a_clear_error(what, call, words):
    with pytest.raises(ValueError) as info:
        call()
    assert words in str(info.value)


def test_merge_refuses_what_does_not_add_up():
    a = pairmi.Accumulator(edges=pairmi.fit_edges(X0)).update(X0)
    b = pairmi.Accumulator(edges=pairmi.fit_edges(X0 * 2)).update(X0)
    c = pairmi.Accumulator("equal_frequency", edges=pairmi.fit_edges(X0, "equal_frequency")).update(X0)
    before = a.result()
    for other, words in ((b, "different edges"), (c, "estimator"), (object(), "only merge an Accumulator")):
        with pytest.raises((ValueError, TypeError), match=words):
            a.merge(other)
    assert a.n_samples == 200
    np.testing.assert_array_equal(a.result(), before)
    empty = pairmi.Accumulator(edges=pairmi.fit_edges(X0 * 3))
    with pytest.raises(ValueError, match="edges differ"):
        empty.merge(a)


def test_the_copulas_default_knots_are_min_n_1000():
    """As documented (fit_edges, docs/streaming.md): K = min(n, 1000) knots unless bins is given,
    by name or object, in fit_edges and in an accumulator's first chunk (15 knots before 0.x)."""
    X = make("normal", 1_500, 3, 5)
    assert pairmi.fit_edges(X[:300], "gaussian_copula").shape == (3, 300)
    assert pairmi.fit_edges(X, pairmi.GaussianCopula()).shape == (3, 1000)
    assert pairmi.fit_edges(X[:300], "gaussian_copula", bins=40).shape == (3, 40)
    for est in ("gaussian_copula", pairmi.GaussianCopula()):
        acc = pairmi.Accumulator(est).update(X[:300])
        assert acc.edges.shape == (1, 3, 300)
