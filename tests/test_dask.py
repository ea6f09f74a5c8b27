"""pairmi.dask on a local cluster of 2 worker processes: sample shards reduced and pair tiles
(dense, zarr, top-k) equal the single-process results; a worker killed mid-run changes nothing;
a resumed zarr write equals an uninterrupted one."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
pytest.importorskip("zarr")

from datagen import make  # noqa: E402

import pairmi  # noqa: E402
import pairmi.dask as pdask  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", host="127.0.0.1"
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


def test_accumulate_equals_one_process_bit_for_bit(client):
    rng = np.random.default_rng(0)
    X = rng.standard_t(3, size=(2, 6000, 10)).astype(np.float32)
    edges = pairmi.fit_edges(X[:, :1000], bins=9)
    one = pairmi.Accumulator(edges=edges).update(X)
    for chunks, shards, split in ((1000, None, 8), (700, 5, 2)):
        acc = pdask.accumulate(da.from_array(X, chunks=(2, chunks, 10)), edges=edges, shards=shards, split_every=split)
        assert acc.n_samples == 6000
        np.testing.assert_array_equal(acc.result(), one.result())  # integer counts: any order, the same bits
        np.testing.assert_array_equal(acc._totals["counts"], one._totals["counts"])
    # Chains update their accumulator in place: computing the same graph again counts nothing twice.
    lazy = pdask.accumulate(da.from_array(X, chunks=(2, 1000, 10)), edges=edges, shards=2, compute=False)
    for _ in range(2):
        np.testing.assert_array_equal(lazy.compute()._totals["counts"], one._totals["counts"])
    threaded = lazy.compute(scheduler="threads")
    np.testing.assert_array_equal(threaded._totals["counts"], one._totals["counts"])
    first = pdask.accumulate(da.from_array(X[0], chunks=(1500, 10)), "equal_frequency", bins=6)  # edges from chunk 0
    np.testing.assert_array_equal(
        first.result(), pairmi.Accumulator("equal_frequency", bins=6).update(X[0, :1500]).update(X[0, 1500:]).result()
    )
    copula = pdask.accumulate(
        da.from_array(X[0], chunks=(1000, 10)), "gaussian_copula", edges=pairmi.fit_edges(X[0, :500], "gaussian_copula")
    )
    want = pairmi.Accumulator("gaussian_copula", edges=pairmi.fit_edges(X[0, :500], "gaussian_copula")).update(X[0])
    finite = np.isfinite(want.result())
    np.testing.assert_allclose(copula.result()[finite], want.result()[finite], rtol=0, atol=1e-12)


def test_accumulate_survives_a_killed_worker(client, tmp_path):
    """The first attempt at one chunk kills its worker process; Dask retries the task elsewhere and
    the result is identical."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(4000, 6))
    marker = str(tmp_path / "killed")

    def die_once(block, block_info=None):
        if block_info[0]["chunk-location"][0] == 2 and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)  # the worker process dies mid-run
        return block

    Xd = da.from_array(X, chunks=(500, 6)).map_blocks(die_once, dtype=X.dtype)
    edges = pairmi.fit_edges(X[:500], bins=7)
    acc = pdask.accumulate(Xd, edges=edges, shards=4)
    assert os.path.exists(marker)
    np.testing.assert_array_equal(acc.result(), pairmi.Accumulator(edges=edges).update(X).result())


@pytest.mark.parametrize("estimator", ["equal_width", "gaussian_copula", "ksg"])
def test_pair_tiles_equal_mi_matrix(client, estimator, tmp_path):
    X = make("mixed", 200, 23, 3)
    Xd = da.from_array(X, chunks=(200, 7))
    want = pairmi.mi_matrix(X, estimator=estimator)
    finite = np.isfinite(want)

    def same(got):
        assert np.array_equal(np.isfinite(got), finite)
        np.testing.assert_allclose(got[finite], want[finite], rtol=0, atol=1e-12)

    same(pdask.mi_tiles(Xd, estimator=estimator, dtype=np.float64))
    same(pdask.mi_tiles(Xd, estimator=estimator, out=str(tmp_path / "m.zarr"), dtype=np.float64)[...])
    got = pdask.mi_tiles(Xd, estimator=estimator, topk_k=4, threshold=0.2)
    ref = pairmi.mi_topk(X, n_partners=4, estimator=estimator, threshold=0.2)
    np.testing.assert_array_equal(got.indices, ref.indices)
    np.testing.assert_allclose(got.values, ref.values, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(got.above, ref.above)
    np.testing.assert_array_equal(got.pairs[0], ref.pairs[0])
    np.testing.assert_array_equal(got.pairs[1], ref.pairs[1])


def test_resumed_dask_zarr_write_equals_an_uninterrupted_one(client, tmp_path):
    import dask

    X = make("heavy", 150, 20, 4)
    Xd = da.from_array(X, chunks=(150, 6))
    path = str(tmp_path / "r.zarr")
    writes = pdask.mi_tiles(Xd, out=path, dtype=np.float32, compute=False)
    assert len(writes) == 10  # 4 blocks of columns: 10 tiles of the upper triangle
    dask.compute(*writes[:3])  # a run that stopped after 3 tiles
    assert len(pdask.mi_tiles(Xd, out=path, dtype=np.float32, compute=False)) == 7
    done = pdask.mi_tiles(Xd, out=path, dtype=np.float32)
    np.testing.assert_array_equal(done[...], pairmi.mi_matrix(X, dtype=np.float32))


def test_accumulate_corpus_equals_one_process(client, tiny_gpt2_dir):
    from pairmi.corpus import python_docstrings
    from pairmi.extract import iter_hidden_states

    docs = [d for _, d in zip(range(12), python_docstrings())]
    shards = [docs[:5], docs[5:9], docs[9:]]
    kw = {"max_length": 32, "batch_size": 4}
    sample = np.concatenate([b.values for b in iter_hidden_states(str(tiny_gpt2_dir), docs[:2], **kw)], axis=1)
    edges = pairmi.fit_edges(sample, bins=8)
    got = pdask.accumulate_corpus(shards, str(tiny_gpt2_dir), edges=edges, **kw)
    want = pairmi.Accumulator(edges=edges, dtype=np.float32)
    for b in iter_hidden_states(str(tiny_gpt2_dir), docs, **kw):
        want.update(b.values)
    assert got.n_samples == want.n_samples > 0
    np.testing.assert_array_equal(got.result(), want.result())


def test_accumulate_corpus_streams_the_position_null_within_each_shard(client, tiny_gpt2_dir):
    """Each shard pairs its own windows a window apart; the merged counts give the MI of all those
    pairs (pairmi.stats.lagged_pairs of each shard, concatenated), within 1e-12 bits."""
    from pairmi.corpus import python_docstrings
    from pairmi.extract import iter_hidden_states
    from pairmi.stats import lagged_pairs

    docs = [d for _, d in zip(range(12), python_docstrings())]
    shards = [docs[:5], docs[5:9], docs[9:]]
    kw = {"max_length": 32, "batch_size": 4}
    sample = np.concatenate([b.values for b in iter_hidden_states(str(tiny_gpt2_dir), docs[:2], **kw)], axis=1)
    edges = pairmi.fit_edges(sample, "equal_frequency", bins=6)
    got = pdask.accumulate_corpus(shards, str(tiny_gpt2_dir), edges=edges, estimator="equal_frequency", window_lags=1, **kw)
    firsts, laters = [], []
    for shard in shards:
        batches = list(iter_hidden_states(str(tiny_gpt2_dir), shard, **kw))
        values = np.concatenate([b.values for b in batches], axis=1)
        a, b = lagged_pairs([k for batch in batches for k in batch.window_tokens], 1)
        firsts.append(values[:, a])
        laters.append(values[:, b])
    first, later = np.concatenate(firsts, axis=1), np.concatenate(laters, axis=1)
    for layer, null in enumerate(got.lags.null()):
        m = pairmi.mi_matrix(first[layer], later[layer], estimator="equal_frequency", edges=edges[layer], edges_y=edges[layer])
        want = 0.5 * (m + m.T)
        np.fill_diagonal(want, 0.0)
        np.testing.assert_allclose(null, want, rtol=0, atol=1e-12)
    assert got.lags.accumulators[1].n_samples == first.shape[1] > 0


def test_clear_errors():
    X = da.zeros((10, 4), chunks=(5, 4))
    with pytest.raises(TypeError, match="dask array"):
        pdask.accumulate(np.zeros((10, 4)))
    with pytest.raises(ValueError, match="split_every"):
        pdask.accumulate(X, split_every=1)
    with pytest.raises(ValueError, match="not both"):
        pdask.mi_tiles(X, out="x.zarr", topk_k=2)
    with pytest.raises(ValueError, match="topk_k"):
        pdask.mi_tiles(X, topk_k=4, bins=3)
    with pytest.raises(ValueError, match="tile_size must be a positive integer"):
        pdask.mi_tiles(X, tile_size=0, bins=3)
    with pytest.raises(ValueError, match="dtype must be float16, float32 or float64"):
        pdask.mi_tiles(X, out="x.zarr", dtype=np.int32, bins=3)


@pytest.mark.parametrize("estimator", ["equal_width", "gaussian_copula", "ksg"])
def test_mi_tiles_applies_the_nan_policy_of_mi_matrix(client, estimator):
    """NaN or Inf: refused with X's own column indices (not a tile's), or those samples omitted,
    as mi_matrix does; never finite numbers from bad data."""
    X = make("normal", 80, 12, 40)
    X[7, 9], X[20, 10] = np.nan, -np.inf
    dX = da.from_array(X, chunks=(80, 4))
    with pytest.raises(ValueError, match=r"X has NaN or Inf values in 2 variable\(s\) \(columns 9, 10\)"):
        pdask.mi_tiles(dX, estimator=estimator, bins=5)
    got = pdask.mi_tiles(dX, estimator=estimator, bins=5, nan_policy="omit")
    want = pairmi.mi_matrix(X, estimator=estimator, bins=5, nan_policy="omit")
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_in_process_zarr_out_resumes_and_refuses_other_data(tmp_path):
    X = make("normal", 120, 30, 5)
    path = tmp_path / "m.zarr"
    calls = []

    def stop_after_two(done, total):
        calls.append(done)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pairmi.mi_matrix(X, out=str(path), tile_size=8, progress=stop_after_two)
    import zarr

    partial = zarr.open_group(str(path))["mi"][...]
    assert np.isnan(partial).any() and not np.isnan(partial[:8, :8]).any()  # readable while unfinished
    seen = []
    z = pairmi.mi_matrix(X, out=str(path), tile_size=8, progress=lambda d, t: seen.append(d))
    assert seen[0] == 3 and seen[-1] == 10  # the two written tiles were skipped
    np.testing.assert_array_equal(z[...], pairmi.mi_matrix(X))  # float64, as mi_matrix by default
    with pytest.raises(ValueError, match="other data or settings"):
        pairmi.mi_matrix(X * 2, out=str(path), tile_size=8)
    half = pairmi.mi_matrix(X, out=str(tmp_path / "h.zarr"), dtype=np.float16, tile_size=16)
    assert half.dtype == np.float16
    with pytest.raises(ValueError, match="no Y"):
        pairmi.mi_matrix(X, X, out=str(tmp_path / "y.zarr"))
    shutil.rmtree(path)


def test_mi_topk_equals_a_stable_argsort_of_the_dense_matrix():
    """Ties broken by index: integer-valued data gives many equal MIs."""
    X = make("ties", 300, 25, 6)
    X[:, 3] = X[:, 2]  # an exact duplicate: equal values in two columns of every row
    for estimator in ("equal_width", "equal_frequency", "gaussian_copula"):
        dense = pairmi.mi_matrix(X, estimator=estimator)
        np.fill_diagonal(dense, -np.inf)
        order = np.argsort(-dense, axis=1, kind="stable")[:, :6]
        top = pairmi.mi_topk(X, n_partners=6, estimator=estimator, threshold=0.05)
        np.testing.assert_array_equal(top.indices, order)
        np.testing.assert_array_equal(top.values, np.take_along_axis(dense, order, axis=1))
        off = ~np.eye(25, dtype=bool)
        np.testing.assert_allclose(top.mean, np.where(off, dense, 0).sum(axis=1) / 24, rtol=1e-12)
        np.testing.assert_array_equal(top.above, ((dense >= 0.05) & off).sum(axis=1))
        i, j = np.nonzero(np.triu(dense >= 0.05, 1))
        np.testing.assert_array_equal(top.pairs[0], i)
        np.testing.assert_array_equal(top.pairs[1], j)
        np.testing.assert_array_equal(top.max_partner, order[:, 0])
    for bad, words in (
        ({"n_partners": 25}, "n_partners must be"),
        ({"n_partners": 0}, "n_partners must be"),
        ({"threshold": np.nan}, "threshold"),
        ({"estimator": "x"}, "estimator"),
    ):
        with pytest.raises(ValueError, match=words):
            pairmi.mi_topk(X, **{"n_partners": 3, **bad})


def test_mi_topk_k_is_a_deprecated_alias_of_n_partners():
    X = make("mixed", 100, 6, 8)
    with pytest.warns(DeprecationWarning, match="pass n_partners="):
        old = pairmi.mi_topk(X, k=3)
    np.testing.assert_array_equal(old.indices, pairmi.mi_topk(X, n_partners=3).indices)
    with pytest.raises(TypeError, match="not both"):
        pairmi.mi_topk(X, n_partners=3, k=3)
    assert repr(old) == "TopK(6 variables x 3 partners, estimator='equal_width', units='bits')"


def test_mi_topk_breaks_ksg_ties_as_mi_matrix_and_mi_tiles_refuses_what_needs_the_whole_matrix():
    X = make("ties", 200, 8, 9)
    est = pairmi.KSG(k=3, noise=1e-10)
    dense = pairmi.mi_matrix(X, estimator=est)
    np.fill_diagonal(dense, -np.inf)
    top = pairmi.mi_topk(X, n_partners=3, estimator=est)
    np.testing.assert_array_equal(top.indices, np.argsort(-dense, axis=1, kind="stable")[:, :3])
    np.testing.assert_allclose(top.values, np.sort(dense, axis=1)[:, ::-1][:, :3], rtol=0, atol=1e-12)
    lazy = da.from_array(X, chunks=(200, 4))
    for bad in (est, pairmi.EqualWidth(bins=5, correction="shuffle")):
        with pytest.raises(ValueError, match="mi_tiles takes neither correction='shuffle' nor KSG noise"):
            pdask.mi_tiles(lazy, estimator=bad)


def test_mi_topk_blocks_do_not_matter(monkeypatch):
    from pairmi import _blocks, topk

    X = make("mixed", 200, 40, 7)
    want = pairmi.mi_topk(X, n_partners=5, estimator="gaussian_copula")
    monkeypatch.setattr(topk, "BLOCK_BYTES", 1)
    monkeypatch.setattr(_blocks, "SCORE_VARIABLES", 3)
    got = pairmi.mi_topk(X, n_partners=5, estimator="gaussian_copula")
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_allclose(got.values, want.values, rtol=0, atol=1e-12)  # products of other shapes round alike to 1e-15


def test_cli_corpus_on_a_local_cluster_equals_one_process(tiny_gpt2_dir, tmp_path, capfd):
    from pairmi.cli import main
    from pairmi.corpus import python_docstrings

    text = tmp_path / "corpus.txt"
    text.write_text("\n".join(d.replace("\n", " ") for _, d in zip(range(15), python_docstrings())))
    args = [
        "analyze",
        "--model",
        str(tiny_gpt2_dir),
        "--corpus",
        str(text),
        "--calibration-tokens",
        "200",
        "--batch-size",
        "4",
        "--max-length",
        "32",
        "--keep-tokens",
        "64",
        "--threads",
        "1",
        "--no-figures",
    ]
    assert main(args + ["--out", str(tmp_path / "one")]) == 0
    assert main(args + ["--out", str(tmp_path / "two"), "--workers", "2", "--shard-tokens", "300"]) == 0
    captured = capfd.readouterr()
    assert "local Dask cluster: 2 worker processes" in captured.err
    one, two = pairmi.analysis.load(tmp_path / "one"), pairmi.analysis.load(tmp_path / "two")
    assert two.params["shards"] > 1 and two.params["tokens"] == one.params["tokens"]
    np.testing.assert_array_equal(two.mi, one.mi)  # the same edges, the same tokens: the same counts
    # --max-tokens ending inside a document: exactly that many tokens, the same ones as in one process.
    cut = args + ["--max-tokens", "777"]
    assert main(cut + ["--out", str(tmp_path / "one-cut")]) == 0
    assert main(cut + ["--out", str(tmp_path / "two-cut"), "--workers", "2", "--shard-tokens", "300"]) == 0
    err = capfd.readouterr().err
    assert "Loading weights" not in err and "longer than the specified maximum" not in err
    one, two = pairmi.analysis.load(tmp_path / "one-cut"), pairmi.analysis.load(tmp_path / "two-cut")
    assert one.params["tokens"] == two.params["tokens"] == 777
    np.testing.assert_array_equal(two.mi, one.mi)
    # The position null on the cluster: each shard's windows a window apart.
    assert main(cut + ["--out", str(tmp_path / "lags"), "--workers", "2", "--shard-tokens", "300", "--position-lags", "1"]) == 0
    lags = pairmi.analysis.load(tmp_path / "lags")
    assert lags.extra["position_null"].shape == lags.mi.shape and lags.params["window_lags"] == [1]
    assert "MI from position alone" in capfd.readouterr().out
    for bad, words in (
        (["--workers", "2", "--resume"], "--resume applies to a single-process run"),
        (["--workers", "2", "--scheduler", "tcp://127.0.0.1:9"], "not both"),
    ):
        assert main(args + ["--out", str(tmp_path / "bad")] + bad) == 2
        assert words in capfd.readouterr().err


def test_dask_corpus_takes_every_extraction_option(tiny_gpt2_dir, bert_tokenizer):
    """The Dask corpus run takes the same Extraction as the in-process one (drop_special_tokens was
    missing from its keywords): the same tokens, the same counts."""
    import dask

    from pairmi.corpus import analyze_corpus, python_docstrings

    docs = [d.replace("\n", " ") for _, d in zip(range(8), python_docstrings())]
    ex = pairmi.Extraction(tokenizer=str(tiny_gpt2_dir), max_length=32, drop_special_tokens=True, max_tokens=600)
    kw = {"estimator": "equal_width", "bins": 6, "calibration_tokens": 200, "keep_tokens": 50, "threads": 1}
    one = analyze_corpus(str(tiny_gpt2_dir), docs, extraction=ex, **kw)
    with dask.config.set(scheduler="synchronous"):
        two = pdask.analyze_corpus(str(tiny_gpt2_dir), docs, extraction=ex, shard_tokens=250, **kw)
    assert one.tokens == two.tokens == 600 and two.analysis.params["drop_special_tokens"] is True
    assert "[CLS]" not in two.analysis.tokens and "[SEP]" not in two.analysis.tokens
    np.testing.assert_array_equal(one.analysis.mi, two.analysis.mi)


def test_missing_dask_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "dask", None)
    with pytest.raises(ImportError, match=r"pairmi\[dask\]"):
        pdask.accumulate(None)
    monkeypatch.setitem(sys.modules, "zarr", None)
    with pytest.raises(ImportError, match=r"pairmi\[dask\]"):
        pairmi.mi_matrix(make("normal", 50, 3, 8), out="m.zarr")


def test_cli_scheduler_address(client, tiny_gpt2_dir, tmp_path, capsys):
    """--scheduler uses a running cluster (here the test's own)."""
    from pairmi.cli import main

    text = tmp_path / "corpus.txt"
    text.write_text("The first document is short.\nA second one follows it, a little longer than the first.\n")
    address = client.scheduler.address
    args = [
        "analyze",
        "--model",
        str(tiny_gpt2_dir),
        "--corpus",
        str(text),
        "--calibration-tokens",
        "10",
        "--max-length",
        "32",
        "--no-figures",
        "--scheduler",
        address,
        "--out",
        str(tmp_path / "s"),
    ]
    assert main(args) == 0
    assert f"Dask cluster at {address}: 2 workers" in capsys.readouterr().err
    assert (tmp_path / "s" / "mi.npz").is_file()
