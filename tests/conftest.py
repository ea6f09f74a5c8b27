import os

# Tests never reach a model hub: set before transformers/huggingface_hub are imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from hypothesis import HealthCheck, settings

# The first OpenMP call is slow, and CI machines are shared: no deadlines.
settings.register_profile("default", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
# CI: more examples, and the same ones every run, so a submission cannot fail on a fresh draw.
settings.register_profile("ci", deadline=None, max_examples=150, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def bert_tokenizer():
    """The bundled MiniLM's tokenizer: real, and needs no download."""
    transformers = pytest.importorskip("transformers")
    from pairmi.models import demo_model_path

    return transformers.AutoTokenizer.from_pretrained(demo_model_path())


@pytest.fixture(scope="session")
def gpt2_random():
    """GPT-2's real architecture (12 blocks, 768 dims) with random weights from a fixed seed."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    return transformers.GPT2LMHeadModel(transformers.GPT2Config()).eval()


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory, bert_tokenizer):
    """A tiny random GPT-2 saved with a tokenizer, loadable by path like any hub model."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(1)
    config = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, n_positions=64, vocab_size=bert_tokenizer.vocab_size)
    path = tmp_path_factory.mktemp("tiny-gpt2")
    transformers.GPT2LMHeadModel(config).save_pretrained(path)
    bert_tokenizer.save_pretrained(path)
    return path
