"""Corpus streaming: batches equal the in-memory extraction, a streamed corpus equals mi_layers on
the same tokens with the calibration edges, a resumed run is bit-identical, sites by name, the CLI."""

from __future__ import annotations

import itertools
import os
import signal
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import pairmi  # noqa: E402
from pairmi import analysis, corpus, texts  # noqa: E402
from pairmi.cli import main  # noqa: E402
from pairmi.extract import iter_hidden_states  # noqa: E402

ATOL = 1e-5  # float32 forward passes, batched with padding vs one window alone


@pytest.fixture(scope="module")
def docs():
    return list(itertools.islice(corpus.python_docstrings(), 40))


@pytest.fixture(scope="module")
def tiny(tiny_gpt2_dir, bert_tokenizer):
    from transformers import GPT2LMHeadModel

    return GPT2LMHeadModel.from_pretrained(tiny_gpt2_dir).eval(), bert_tokenizer


def test_python_docstrings_are_real_text(docs):
    assert len(docs) == 40 and all(len(d) >= 80 for d in docs)
    words = " ".join(docs).split()
    assert len(words) > 1000 and sum(w.lower() in ("the", "of", "a", "to", "is") for w in words) > 100


def test_read_documents(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("first line\n\nsecond line\nthird\n\n\nfourth\n")
    assert list(corpus.read_documents(path)) == ["first line", "second line", "third", "fourth"]
    assert list(corpus.read_documents(path, by="paragraph")) == ["first line", "second line\nthird", "fourth"]
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9 cr\xe8me\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin\.txt is not valid utf-8 text"):
        list(corpus.read_documents(latin))
    assert list(corpus.read_documents(latin, encoding="latin-1")) == ["caf\xe9 cr\xe8me"]


def test_dataset_texts():
    rows = [{"text": "a"}, {"text": "b"}]
    assert list(corpus.dataset_texts(rows)) == ["a", "b"]
    with pytest.raises(ValueError, match="no column 'body'"):
        list(corpus.dataset_texts(rows, "body"))
    datasets = pytest.importorskip("datasets")
    assert list(corpus.dataset_texts(datasets.Dataset.from_dict({"text": ["x y", "z"]}))) == ["x y", "z"]


def test_batches_equal_the_in_memory_extraction(tiny, docs):
    model, tok = tiny
    texts = docs[:6]
    whole = pairmi.hidden_states(model, texts, tokenizer=tok, max_length=32, batch_size=5)
    batches = list(iter_hidden_states(model, iter(texts), tokenizer=tok, max_length=32, batch_size=3))
    np.testing.assert_allclose(np.concatenate([b.values for b in batches], axis=1), whole.values, atol=ATOL, rtol=0)
    assert [t for b in batches for t in b.tokens] == whole.tokens
    cut = list(iter_hidden_states(model, iter(texts), tokenizer=tok, max_length=32, batch_size=3, max_tokens=50))
    assert sum(len(b.tokens) for b in cut) == 50
    skip = sum(b.windows for b in batches[:2])
    rest = list(iter_hidden_states(model, iter(texts), tokenizer=tok, max_length=32, batch_size=3, skip_windows=skip))
    np.testing.assert_array_equal(rest[0].values, batches[2].values)


def test_drop_special_tokens(tiny, docs):
    model, tok = tiny
    hs = pairmi.hidden_states(model, docs[0], tokenizer=tok, max_length=20, drop_special_tokens=True)
    body = tok(docs[0], add_special_tokens=False)["input_ids"]
    assert hs.tokens == tok.convert_ids_to_tokens(body)


def test_text_with_no_tokens_is_a_clear_error(tiny):
    model, _ = tiny

    class Empty:
        """A tokenizer that knows no tokens, as transformers builds for a folder without tokenizer files."""

        pad_token_id = 0

        def __call__(self, text, add_special_tokens=True, verbose=True):
            return {"input_ids": []}

        def __len__(self):
            return 0

    with pytest.raises(ValueError, match="became no tokens"):
        pairmi.hidden_states(model, "some text", tokenizer=Empty())


# --- sites ----------------------------------------------------------------------------------------


def _hooked(model, modules, ids, pick=lambda out: out):
    """Outputs of the given modules in one plain forward pass of one window: the reference."""
    seen = {}
    handles = [m.register_forward_hook(lambda mod, a, out, k=k: seen.__setitem__(k, pick(out))) for k, m in enumerate(modules)]
    try:
        with torch.inference_mode():
            model(input_ids=torch.tensor([ids]))
    finally:
        for h in handles:
            h.remove()
    return np.stack([seen[k][0].numpy() for k in range(len(modules))])


def test_attention_and_named_sites(tiny, docs):
    model, tok = tiny
    text = docs[1][:200]
    ids = tok(text)["input_ids"]
    attn = pairmi.hidden_states(model, text, tokenizer=tok, site="attention")
    assert attn.layer_names == ["attn0", "attn1"] and attn.values.shape == (2, len(ids), 32)
    want = _hooked(model, [b.attn for b in model.transformer.h], ids, pick=lambda out: out[0])
    np.testing.assert_allclose(attn.values, want, atol=ATOL, rtol=0)
    named = pairmi.hidden_states(model, text, tokenizer=tok, site=["transformer.h.1.mlp.act", "transformer.h.0.mlp.act"])
    assert named.layer_names == ["transformer.h.1.mlp.act", "transformer.h.0.mlp.act"]  # in the order asked
    mlp = pairmi.hidden_states(model, text, tokenizer=tok, site="mlp")
    np.testing.assert_allclose(named.values, mlp.values[::-1], atol=ATOL, rtol=0)
    with pytest.raises(ValueError, match="no module of GPT2LMHeadModel"):
        pairmi.hidden_states(model, text, tokenizer=tok, site="transformer.h.9.mlp")


def test_bert_attention_site():
    text = "Turkish coffee is brewed slowly in a small pot."
    model, tok = pairmi.demo_model()
    hs = pairmi.hidden_states(model, text, tokenizer=tok, site="attention", layers=[0, -1])
    blocks = model.encoder.layer
    want = _hooked(
        model,
        [blocks[0].attention, blocks[-1].attention],
        tok(text)["input_ids"],
        pick=lambda out: out[0] if isinstance(out, tuple) else out,
    )
    np.testing.assert_allclose(hs.values, want, atol=ATOL, rtol=0)


def test_transformer_lens_hook_names(bert_tokenizer, docs):
    lens = pytest.importorskip("transformer_lens")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # HookedTransformer's own notice
        cfg = lens.HookedTransformerConfig(
            n_layers=2, d_model=32, n_ctx=64, d_head=8, n_heads=4, d_mlp=128, d_vocab=bert_tokenizer.vocab_size, act_fn="gelu"
        )
        torch.manual_seed(0)
        model = lens.HookedTransformer(cfg).eval()
    text = docs[2][:150]
    ids = torch.tensor([bert_tokenizer(text)["input_ids"]])
    with torch.inference_mode():
        _, cache = model.run_with_cache(ids)
    got = pairmi.hidden_states(model, text, tokenizer=bert_tokenizer, site=["blocks.1.mlp.hook_post"])
    np.testing.assert_allclose(got.values[0], cache["blocks.1.mlp.hook_post"][0].numpy(), atol=ATOL, rtol=0)
    resid = pairmi.hidden_states(model, text, tokenizer=bert_tokenizer)
    assert resid.values.shape[0] == 3
    np.testing.assert_allclose(resid.values[2], cache["blocks.1.hook_resid_post"][0].numpy(), atol=ATOL, rtol=0)
    mlp = pairmi.hidden_states(model, text, tokenizer=bert_tokenizer, site="mlp")
    np.testing.assert_allclose(mlp.values[1], got.values[0], atol=ATOL, rtol=0)


# --- streamed corpus == in memory ------------------------------------------------------------------


@pytest.mark.parametrize("estimator", ["equal_width", "equal_frequency", "gaussian_copula"])
def test_corpus_equals_mi_layers_with_the_calibration_edges(tiny, docs, estimator):
    model, tok = tiny
    texts = docs[:12]
    run = corpus.analyze_corpus(
        model,
        iter(texts),
        tokenizer=tok,
        estimator=estimator,
        bins=8,
        max_length=32,
        batch_size=4,
        calibration_tokens=300,
        keep_tokens=100,
        max_tokens=1000,
    )
    hs = pairmi.hidden_states(model, texts, tokenizer=tok, max_length=32, batch_size=4)
    values = hs.values[:, :1000]
    # The calibration sample: whole batches until 300 tokens were seen.
    seen = 0
    for b in iter_hidden_states(model, iter(texts), tokenizer=tok, max_length=32, batch_size=4):
        seen += len(b.tokens)
        if seen >= 300:
            break
    edges = pairmi.fit_edges(values[:, :seen], estimator, bins=8 if estimator != "gaussian_copula" else None)
    want = pairmi.mi_layers(values, estimator=estimator, edges=edges, dtype=np.float64)
    assert run.tokens == 1000 and hs.values.shape[1] > 1000
    np.testing.assert_allclose(run.analysis.mi, want, atol=1e-6, rtol=1e-6)
    assert run.analysis.hidden_states.shape == (3, 100, 32) and len(run.analysis.tokens) == 100
    if estimator != "gaussian_copula":
        np.testing.assert_allclose(run.analysis.extra["bias"], run.accumulator.bias(), rtol=0, atol=0)


def test_a_resumed_run_is_bit_identical(tiny, docs, tmp_path):
    model, tok = tiny
    kw = {
        "tokenizer": tok,
        "bins": 10,
        "max_length": 32,
        "batch_size": 3,
        "calibration_tokens": 200,
        "keep_tokens": 50,
        "max_tokens": 1200,
        "seed": 3,
    }
    straight = corpus.analyze_corpus(model, iter(docs[:12]), **kw)
    state = tmp_path / "state.npz"

    def stop_at_700(done, total):
        if done >= 700:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        corpus.analyze_corpus(model, iter(docs[:12]), state_path=state, save_every=1e9, progress=stop_at_700, **kw)
    assert state.is_file()  # saved on Ctrl-C
    resumed = corpus.analyze_corpus(model, iter(docs[:12]), state_path=state, resume=True, **kw)
    assert 0 < resumed.resumed_from < 1200 and resumed.tokens == 1200
    np.testing.assert_array_equal(resumed.analysis.mi, straight.analysis.mi)
    np.testing.assert_array_equal(resumed.analysis.hidden_states, straight.analysis.hidden_states)
    assert resumed.analysis.tokens == straight.analysis.tokens
    with pytest.raises(ValueError, match=r"other settings \(bins\)"):
        corpus.analyze_corpus(model, iter(docs[:12]), state_path=state, resume=True, **{**kw, "bins": 11})
    # Another batch size batches the stream (and the copula's float sums) differently: refused too.
    with pytest.raises(ValueError, match=r"other settings \(batch_size\)"):
        corpus.analyze_corpus(model, iter(docs[:12]), state_path=state, resume=True, **{**kw, "batch_size": 4})


def test_cli_corpus_interrupt_and_resume(tiny_gpt2_dir, docs, tmp_path, monkeypatch, capsys):
    text = tmp_path / "corpus.txt"
    text.write_text("\n".join(d.replace("\n", " ") for d in docs[:15]))
    args = [
        "analyze",
        "--model",
        str(tiny_gpt2_dir),
        "--corpus",
        str(text),
        "--max-tokens",
        "1000",
        "--calibration-tokens",
        "200",
        "--batch-size",
        "4",
        "--max-length",
        "32",
        "--keep-tokens",
        "64",
        "--threads",
        "2",
        "--save-every",
        "0",
    ]
    assert main(args + ["--out", str(tmp_path / "straight")]) == 0
    out, err = capsys.readouterr()
    assert "1,000 tokens" in out and "plug-in bias under independence" in out and "model forward" in out
    # The scratch state's size, said up front: 3 layers x 32 * 31 / 2 pairs x 15^2 cells x 8 bytes (+ marginals).
    size = 3 * (32 * 31 // 2 * 15**2 + 32 * 15) * 8
    assert f"running totals: 3 layers x 32 units, {size / 2**30:.2f} GiB in memory, saved to " in err
    calls = []
    real = corpus.analyze_corpus

    def interrupted(*a, progress=None, **k):
        def stop(done, total):
            calls.append(done)
            progress(done, total)
            if done >= 500:
                raise KeyboardInterrupt

        return real(*a, progress=stop, **k)

    monkeypatch.setattr(corpus, "analyze_corpus", interrupted)
    assert main(args + ["--out", str(tmp_path / "r")]) == 130
    assert "rerun with --resume" in capsys.readouterr().err
    monkeypatch.setattr(corpus, "analyze_corpus", real)
    assert main(args + ["--out", str(tmp_path / "r"), "--resume"]) == 0
    assert "resumed after" in capsys.readouterr().out
    a, b = pairmi.analysis.load(tmp_path / "straight"), pairmi.analysis.load(tmp_path / "r")
    np.testing.assert_array_equal(a.mi, b.mi)
    # Degenerate units found in the kept token sample, as the in-memory analysis finds them.
    np.testing.assert_array_equal(a.extra["degenerate"], pairmi.analysis.degenerate_units(a.hidden_states[:, :, a.dims]))
    assert a.tokens == b.tokens and not (tmp_path / "r" / ".corpus-state.npz").exists()
    for name in ("layers.png", "pair.png", "summary.csv"):
        assert (tmp_path / "r" / name).is_file()


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP"])
def test_cli_corpus_sigterm_saves_and_resumes(tiny_gpt2_dir, docs, tmp_path, monkeypatch, capsys, name):
    """SIGTERM (timeout, kill, SLURM pre-emption) and SIGHUP save the running totals as Ctrl-C does,
    exit 128 + the signal's number, and --resume ends as an uninterrupted run."""
    sig = getattr(signal, name)
    text = tmp_path / "corpus.txt"
    text.write_text("\n".join(d.replace("\n", " ") for d in docs[:15]))
    args = ["analyze", "--model", str(tiny_gpt2_dir), "--corpus", str(text), "--max-tokens", "1000"]
    args += ["--calibration-tokens", "200", "--max-length", "32", "--threads", "2", "--save-every", "1e9", "--no-figures"]
    assert main(args + ["--out", str(tmp_path / "straight")]) == 0
    real = corpus.analyze_corpus

    def signalled(*a, progress=None, **k):
        def send(done, total):
            progress(done, total)
            if done >= 500:
                os.kill(os.getpid(), sig)

        return real(*a, progress=send, **k)

    def not_handled(signum, frame):
        raise AssertionError(f"pairmi left {name} unhandled")  # instead of ending the test process

    previous = signal.signal(sig, not_handled)
    try:
        monkeypatch.setattr(corpus, "analyze_corpus", signalled)
        capsys.readouterr()
        assert main(args + ["--out", str(tmp_path / "r")]) == 128 + sig
        assert signal.getsignal(sig) is not_handled  # main put the handler back
    finally:
        signal.signal(sig, previous)
    err = capsys.readouterr().err
    assert f"stopped by {name}; running totals saved" in err and "rerun with --resume" in err
    monkeypatch.setattr(corpus, "analyze_corpus", real)
    assert main(args + ["--out", str(tmp_path / "r"), "--resume"]) == 0
    assert "resumed after" in capsys.readouterr().out
    np.testing.assert_array_equal(pairmi.analysis.load(tmp_path / "straight").mi, pairmi.analysis.load(tmp_path / "r").mi)


def test_corpus_runs_record_degenerate_units_and_the_null_of_every_estimator():
    """A corpus run's extra: degenerate units of the kept tokens (planted here) and each pair's
    first-order value under independence, the copula's 1 / (2 n) nats too."""
    rng = np.random.default_rng(3)
    kept = rng.normal(size=(2, 500, 6)).astype(np.float32)
    kept[:, :, 4] *= 1e-30
    for estimator in ("equal_width", "gaussian_copula"):
        acc = pairmi.Accumulator(estimator, bins=None if estimator == "gaussian_copula" else 8).update(kept)
        extra = corpus.corpus_extra(acc, kept, np.arange(6))
        np.testing.assert_array_equal(extra["degenerate"], np.tile(np.arange(6) == 4, (2, 1)))
        np.testing.assert_array_equal(extra["bias"], acc.bias())
    off = ~np.eye(6, dtype=bool)
    assert (
        np.allclose(acc.bias()[:, off], 1 / (2 * 500) / np.log(2), rtol=1e-15)
        and (np.diagonal(acc.bias(), axis1=1, axis2=2) == 0).all()
    )
    assert not corpus.corpus_extra(acc, None, np.arange(6))["degenerate"].any()


def test_a_document_too_long_to_hold_is_refused(tmp_path, monkeypatch):
    """A file without line breaks (or blank lines) is not read whole into memory."""
    monkeypatch.setattr(texts, "MAX_DOCUMENT_CHARS", 100)
    path = tmp_path / "flat.txt"
    path.write_text("short\n" + "x" * 101 + "\n")
    with pytest.raises(ValueError, match=r"flat\.txt: the document at line 2 is longer than 100 characters"):
        list(corpus.read_documents(path))
    path.write_text("a\n" + "\n".join(["y" * 40] * 3) + "\n")
    assert len(list(corpus.read_documents(path))) == 4
    with pytest.raises(ValueError, match="without blank lines"):
        list(corpus.read_documents(path, by="paragraph"))


@pytest.mark.parametrize(
    "args,words",
    [
        (["--estimator", "ksg"], "no statistics that add up"),
        (["--correction", "shuffle"], "--correction miller_madow"),
        (["--bins", "auto"], "needs --max-tokens"),
    ],
)
def test_cli_corpus_bad_settings(tmp_path, capsys, args, words):
    text = tmp_path / "c.txt"
    text.write_text("a line\n")
    assert main(["analyze", "--corpus", str(text), "--out", str(tmp_path / "o")] + args) == 2
    assert words in capsys.readouterr().err


def test_cli_missing_corpus_file(tmp_path, capsys):
    assert main(["analyze", "--corpus", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "o")]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.parametrize("estimator", ["equal_frequency", "gaussian_copula"])
def test_the_streamed_position_null_equals_the_in_memory_one(tiny, docs, estimator):
    """Same tokens, same lags, the run's edges: the stream's lagged counts give pairmi.position_null."""
    model, tok = tiny
    kw = {"tokenizer": tok, "max_length": 32, "batch_size": 4}
    run = corpus.analyze_corpus(
        model, iter(docs[:12]), estimator=estimator, bins=8, calibration_tokens=300, max_tokens=1000, window_lags=(1, 2), **kw
    )
    hs = pairmi.hidden_states(model, docs[:12], **kw)
    windows = np.array(hs.meta["window_tokens"])
    ends = np.cumsum(windows)
    last = int(np.searchsorted(ends, 1000))  # the window the run stopped in
    segments = [*windows[:last].tolist(), 1000 - int(ends[last - 1])]
    want = pairmi.position_null(hs.values[:, :1000], segments, lags=(1, 2), estimator=estimator, edges=run.accumulator.edges)
    got = run.analysis.extra["position_null"]
    assert got.shape == want.shape == run.analysis.mi.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert (got[:, 0, 1] > 0).all()  # a random GPT-2's units all depend on position
    row = analysis.summary_rows(run.analysis)[0]
    assert row["beyond_position_mean"] == pytest.approx(row["mean"] - row["position_null_mean"], rel=1e-6)


def test_a_resumed_run_keeps_its_position_null(tiny, docs, tmp_path):
    model, tok = tiny
    kw = {"tokenizer": tok, "bins": 6, "max_length": 32, "batch_size": 3, "calibration_tokens": 200, "max_tokens": 900}
    straight = corpus.analyze_corpus(model, iter(docs[:12]), window_lags=1, **kw)
    state = tmp_path / "state.npz"

    def stop_at_500(done, total):
        if done >= 500:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        corpus.analyze_corpus(model, iter(docs[:12]), window_lags=1, state_path=state, save_every=1e9, progress=stop_at_500, **kw)
    resumed = corpus.analyze_corpus(model, iter(docs[:12]), window_lags=1, state_path=state, resume=True, **kw)
    assert 0 < resumed.resumed_from < 900
    np.testing.assert_array_equal(resumed.analysis.extra["position_null"], straight.analysis.extra["position_null"])
    with pytest.raises(ValueError, match=r"other settings \(window_lags\)"):
        corpus.analyze_corpus(model, iter(docs[:12]), state_path=state, resume=True, **kw)
    with pytest.raises(ValueError, match="window lags must be positive"):
        corpus.analyze_corpus(model, iter(docs[:12]), window_lags=0, **kw)


def test_cli_corpus_with_the_position_null(tiny_gpt2_dir, docs, tmp_path, capsys):
    text = tmp_path / "corpus.txt"
    text.write_text("\n".join(d.replace("\n", " ") for d in docs[:15]))
    out = tmp_path / "o"
    args = ["analyze", "--model", str(tiny_gpt2_dir), "--corpus", str(text), "--max-tokens", "600", "--max-length", "32"]
    args += ["--calibration-tokens", "200", "--position-lags", "1,2", "--threads", "2", "--estimator", "equal_frequency"]
    assert main([*args, "--bins", "6", "--out", str(out), "--no-figures"]) == 0
    printed = capsys.readouterr()
    assert "MI from position alone (units 1, 2 window(s) apart)" in printed.out
    assert "beyond_position_mean" in (out / "summary.csv").read_text().splitlines()[0]
    saved = pairmi.analysis.load(out / "mi.npz")
    assert saved.extra["position_null"].shape == saved.mi.shape
    with pytest.raises(SystemExit):
        main([*args, "--position-lags", "0", "--out", str(tmp_path / "p")])
    assert "lags must be positive whole numbers" in capsys.readouterr().err


def test_auto_bins_grow_with_the_planned_tokens(tiny, docs):
    """bins='auto' in a corpus run: the rule of mi_matrix for max_tokens, not for the calibration sample."""
    model, tok = tiny
    kw = {"tokenizer": tok, "max_length": 32, "batch_size": 4, "calibration_tokens": 100}
    run = corpus.analyze_corpus(model, iter(docs[:12]), bins="auto", max_tokens=800, **kw)
    assert run.accumulator.edges.shape[-1] - 1 == pairmi.settings.auto_bins(800) == 8 > pairmi.settings.auto_bins(100)
    assert run.analysis.params["bins"] == 8
    with pytest.raises(ValueError, match="needs max_tokens"):
        corpus.analyze_corpus(model, iter(docs[:12]), bins="auto", **kw)
