"""Extraction: shapes, token alignment, windows without padding, the MLP site, the offline model."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import pairmi  # noqa: E402

TEXT = "Turkish coffee is brewed slowly in a small pot, and the grounds settle at the bottom of the cup."
ATOL = 1e-5  # float32 forward passes, batched with padding vs one window alone


def direct(model, ids, site="residual"):
    """Hidden states of one unpadded window by a plain forward pass: the reference."""
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([ids]), output_hidden_states=True)
    return torch.stack(out.hidden_states)[:, 0].numpy()


def test_gpt2_residual_shapes_and_token_alignment(gpt2_random, bert_tokenizer):
    hs = pairmi.hidden_states(gpt2_random, TEXT, tokenizer=bert_tokenizer)
    ids = bert_tokenizer(TEXT)["input_ids"]
    assert hs.values.shape == (13, len(ids), 768) and hs.values.dtype == np.float32
    assert hs.tokens == bert_tokenizer.convert_ids_to_tokens(ids)
    assert hs.layer_names[0] == "L0" and len(hs.layer_names) == 13
    np.testing.assert_allclose(hs.values, direct(gpt2_random, ids), atol=ATOL, rtol=0)


def test_windows_and_batches_never_include_padding(gpt2_random, bert_tokenizer):
    texts = [TEXT, "Short one.", TEXT + " " + TEXT]
    hs = pairmi.hidden_states(gpt2_random, texts, tokenizer=bert_tokenizer, max_length=16, stride=16, batch_size=3)
    want, tokens = [], []
    for text in texts:
        body = bert_tokenizer(text, add_special_tokens=False)["input_ids"]
        for start in range(0, len(body), 14):  # 16 minus [CLS] and [SEP]
            window = [bert_tokenizer.cls_token_id] + body[start : start + 14] + [bert_tokenizer.sep_token_id]
            want.append(direct(gpt2_random, window))
            tokens += bert_tokenizer.convert_ids_to_tokens(window)
    np.testing.assert_allclose(hs.values, np.concatenate(want, axis=1), atol=ATOL, rtol=0)
    assert hs.tokens == tokens


def test_overlapping_windows_keep_each_token_once(gpt2_random, bert_tokenizer):
    hs = pairmi.hidden_states(gpt2_random, TEXT, tokenizer=bert_tokenizer, max_length=12, stride=5)
    body = bert_tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    words = [t for t in hs.tokens if t not in ("[CLS]", "[SEP]")]
    assert words == bert_tokenizer.convert_ids_to_tokens(body)
    # The first window is kept whole; later windows add only their new tokens.
    first = [bert_tokenizer.cls_token_id] + body[:10] + [bert_tokenizer.sep_token_id]
    np.testing.assert_allclose(hs.values[:, :12], direct(gpt2_random, first), atol=ATOL, rtol=0)


def test_drop_first_token(gpt2_random, bert_tokenizer):
    full = pairmi.hidden_states(gpt2_random, TEXT, tokenizer=bert_tokenizer, layers=[0, -1])
    dropped = pairmi.hidden_states(gpt2_random, TEXT, tokenizer=bert_tokenizer, layers=[0, -1], drop_first_token=True)
    assert dropped.tokens == full.tokens[1:]
    np.testing.assert_array_equal(dropped.values, full.values[:, 1:])
    assert full.layer_names == ["L0", "L12"]


def test_mlp_site_matches_hooked_activations(gpt2_random, bert_tokenizer):
    hs = pairmi.hidden_states(gpt2_random, TEXT, tokenizer=bert_tokenizer, site="mlp")
    n = len(hs.tokens)
    assert hs.values.shape == (12, n, 3072) and hs.layer_names[0] == "mlp0"
    seen = []
    handles = [b.mlp.act.register_forward_hook(lambda m, a, out: seen.append(out[0].numpy())) for b in gpt2_random.transformer.h]
    try:
        direct(gpt2_random, bert_tokenizer(TEXT)["input_ids"])
    finally:
        for h in handles:
            h.remove()
    np.testing.assert_allclose(hs.values, np.stack(seen), atol=ATOL, rtol=0)


def test_minilm_offline_residual_and_mlp():
    hs = pairmi.hidden_states("minilm", TEXT)
    assert hs.values.shape[0] == 7 and hs.values.shape[2] == 384
    assert hs.tokens[0] == "[CLS]" and hs.tokens[-1] == "[SEP]" and hs.model_name == "minilm"
    mlp = pairmi.hidden_states("minilm", TEXT, site="mlp")
    assert mlp.values.shape == (6, len(hs.tokens), 1536)
    model, tok = pairmi.demo_model()
    again = pairmi.hidden_states(model, TEXT, tokenizer=tok)
    np.testing.assert_allclose(again.values, hs.values, atol=ATOL, rtol=0)


def test_unreachable_hub_id_names_the_offline_option():
    with pytest.raises(OSError, match="minilm"):
        pairmi.hidden_states("no-such-org/no-such-model", TEXT)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"site": "attn"}, "site"),
        ({"max_length": 1}, "max_length"),
        ({"stride": 0}, "stride"),
        ({"batch_size": 0}, "batch_size"),
        ({"device": "warp-drive"}, "not a torch device"),
        ({"layers": [13]}, "layers must be"),
    ],
)
def test_bad_arguments(gpt2_random, bert_tokenizer, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pairmi.hidden_states(gpt2_random, TEXT, tokenizer=bert_tokenizer, **kwargs)
    with pytest.raises(ValueError, match="tokenizer"):
        pairmi.hidden_states(gpt2_random, TEXT)
    with pytest.raises(ValueError, match="text"):
        pairmi.hidden_states(gpt2_random, [], tokenizer=bert_tokenizer)


def test_hidden_states_repr_is_one_line(gpt2_random, bert_tokenizer):
    hs = pairmi.hidden_states(gpt2_random, TEXT, tokenizer=bert_tokenizer, layers=[0, 1, 2, 12])
    text = repr(hs)
    assert "\n" not in text and len(text) < 200, text
    assert text.startswith("HiddenStates('GPT2LMHeadModel', site='residual', 4 layers (L0, L1, L2, ..., L12) x ")
    assert text.endswith(" tokens x 768 units, float32)")


def test_argument_types_are_named_before_any_model_loads(monkeypatch):
    monkeypatch.setattr(pairmi.models, "load_model", lambda *a, **k: pytest.fail("the model was loaded"))
    with pytest.raises(TypeError, match="batch_size must be a positive integer, got '2'"):
        pairmi.hidden_states("minilm", TEXT, batch_size="2")
    with pytest.raises(TypeError, match=r"model must be a hub id .* got int 42"):
        pairmi.hidden_states(42, TEXT)
    with pytest.raises(ValueError, match="max_tokens must be a positive integer"):
        next(pairmi.extract.iter_hidden_states("minilm", [TEXT], max_tokens=0))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_clear_error(gpt2_random, bert_tokenizer):
    with pytest.raises(ValueError, match="no CUDA device"):
        pairmi.hidden_states(gpt2_random, TEXT, tokenizer=bert_tokenizer, device="cuda")


# --- token ids, tokenizers, paths ---------------------------------------------------------------------


def test_input_ids_route_needs_no_tokenizer(gpt2_random):
    ids = list(range(100, 140))
    hs = pairmi.hidden_states(gpt2_random, input_ids=ids)
    np.testing.assert_allclose(hs.values, direct(gpt2_random, ids), atol=ATOL, rtol=0)
    assert hs.tokens == [str(i) for i in ids]
    two = pairmi.hidden_states(gpt2_random, input_ids=[ids[:10], ids[10:]], max_length=8)
    assert two.values.shape[1] == 40 and two.meta["window_tokens"] == [8, 2, 8, 8, 8, 6]
    for bad, words in (([], "input_ids is empty"), ([[1, 2], []], r"input_ids\[1\]"), ([-1, 2], "non-negative")):
        with pytest.raises(ValueError, match=words):
            pairmi.hidden_states(gpt2_random, input_ids=bad)
    with pytest.raises(ValueError, match="one of them"):
        pairmi.hidden_states(gpt2_random, TEXT, input_ids=ids)


def test_model_folder_without_tokenizer_files(tmp_path, gpt2_random):
    """Current transformers builds an empty tokenizer for such a folder: a clear error, never a
    reshape traceback; --tokenizer / tokenizer= names one to use."""
    import transformers

    torch.manual_seed(2)
    folder = tmp_path / "gpt2-no-tokenizer"
    transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=1, n_embd=16, n_head=2)).save_pretrained(folder)
    try:
        pairmi.hidden_states(str(folder), TEXT)
    except (ValueError, OSError) as exc:
        assert "tokenizer" in str(exc)
    else:
        pytest.fail("an empty tokenizer must be an error")
    hs = pairmi.hidden_states(str(folder), TEXT, tokenizer="minilm")
    assert hs.values.shape[0] == 2 and hs.tokens[0] == "[CLS]"
    from pairmi.cli import main

    assert (
        main(
            [
                "analyze",
                "--model",
                str(folder),
                "--tokenizer",
                "minilm",
                "--text",
                TEXT,
                "--out",
                str(tmp_path / "r"),
                "--no-figures",
                "--threads",
                "1",
            ]
        )
        == 0
    )


def test_a_missing_local_folder_is_not_called_a_hub_id(tmp_path):
    with pytest.raises(OSError, match=r"no model folder .*it is a path"):
        pairmi.hidden_states(str(tmp_path / "no" / "such" / "model"), TEXT)
    with pytest.raises(OSError, match="no model folder"):
        pairmi.hidden_states("./gtp2-typo", TEXT)


def test_an_unreachable_hub_fails_fast_and_clearly(tmp_path):
    """No offline flag, and a hub endpoint that refuses connections (loopback): one clear error
    instead of transformers' retries (26 s measured before the check, 3.6 s after, mostly imports).
    Run in a subprocess: huggingface_hub reads its settings once, at import."""
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "",
        "TRANSFORMERS_OFFLINE": "",
        "HF_ENDPOINT": "http://127.0.0.1:9",
        "HF_HOME": str(tmp_path / "hf"),
    }
    script = "import pairmi\ntry:\n    pairmi.hidden_states('no-org/no-model', 'text')\nexcept OSError as e:\n    print(e)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert "not in the local cache and the hub is unreachable" in done.stdout, done.stdout + done.stderr
    assert "127.0.0.1:9 cannot be reached" in done.stdout and "minilm" in done.stdout


def test_extraction_object_is_checked_once_and_recorded():
    ex = pairmi.Extraction(layers=[0, -1], site=["h.0.mlp", "h.1.mlp"], max_length=32, drop_first_token=True)
    assert ex.layers == (0, -1) and ex.site == ("h.0.mlp", "h.1.mlp")
    assert ex.params() == {
        "layers": [0, -1],
        "site": ["h.0.mlp", "h.1.mlp"],
        "max_length": 32,
        "stride": None,
        "batch_size": 8,
        "drop_first_token": True,
        "drop_special_tokens": False,
        "max_tokens": None,
    }
    for kwargs, exc, words in (
        ({"batch_size": 0}, ValueError, "batch_size must be a positive integer"),
        ({"max_tokens": 2.5}, TypeError, "max_tokens must be a positive integer"),
        ({"layers": "0,1"}, TypeError, "layers must be a sequence of integer"),
        ({"site": []}, ValueError, "site must be one of"),
        ({"drop_first_token": "yes"}, TypeError, "drop_first_token must be True or False"),
        ({"device": 0}, TypeError, "device must be a torch device name"),
    ):
        with pytest.raises(exc, match=words):
            pairmi.Extraction(**kwargs)
    with pytest.raises(TypeError, match="not both"):
        pairmi.hidden_states("minilm", TEXT, extraction=ex, layers=[0])
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        next(pairmi.iter_hidden_states("minilm", [TEXT], max_token=5))


def test_extraction_object_equals_the_keywords(gpt2_random, bert_tokenizer):
    ex = pairmi.Extraction(tokenizer=bert_tokenizer, layers=[0, 5], max_length=16, stride=8, batch_size=3)
    by_object = pairmi.hidden_states(gpt2_random, [TEXT, TEXT[::-1]], extraction=ex)
    by_keywords = pairmi.hidden_states(
        gpt2_random, [TEXT, TEXT[::-1]], tokenizer=bert_tokenizer, layers=[0, 5], max_length=16, stride=8, batch_size=3
    )
    np.testing.assert_array_equal(by_object.values, by_keywords.values)
    assert by_object.tokens == by_keywords.tokens and by_object.meta == by_keywords.meta
