"""Hidden states of a Hugging Face model for some text: every token a sample, every unit a variable.

torch and transformers are imported lazily (the extra ``pairmi[llm]``); the estimators need numpy only."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .extraction import DEFAULTS, SITES, Extraction, as_extraction
from .models import is_lens, model_name, require_module, resolve_model
from .windows import cut_counts, id_sequences, kept_tokens, padded_batch, stream_windows, window_sizes


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

    def __repr__(self) -> str:
        layers, tokens, units = self.values.shape
        names = ", ".join(self.layer_names[:3]) + (f", ..., {self.layer_names[-1]}" if layers > 3 else "")
        return (
            f"HiddenStates({self.model_name!r}, site={self.site!r}, {layers} layers ({names}) x {tokens:,} tokens "
            f"x {units:,} units, {self.values.dtype})"
        )


@dataclass
class StateBatch:
    """One forward batch of :func:`iter_hidden_states`: its kept tokens' activations.

    Attributes
    ----------
    values : ndarray of float32, shape (n_layers, n_tokens, n_units)
    tokens : list of str
    layer_names : list of str
    windows : int
        Windows of the token stream this batch consumed (counted to resume a stream).
    window_tokens : list of int
        Tokens kept from each of them.
    """

    values: np.ndarray
    tokens: list[str]
    layer_names: list[str]
    windows: int
    window_tokens: list[int]  # tokens kept from each window, in order: segments for rotation nulls


def hidden_states(
    model: Any,
    text_or_texts: str | Sequence[str] | None = None,
    *,
    input_ids: Sequence[Sequence[int]] | Sequence[int] | None = None,
    extraction: Extraction | None = None,
    tokenizer: Any = None,
    layers: Sequence[int] | None = None,
    site: str | Sequence[str] = "residual",
    max_length: int | None = None,
    stride: int | None = None,
    batch_size: int = 8,
    device: str = "cpu",
    drop_first_token: bool = False,
    drop_special_tokens: bool = False,
) -> HiddenStates:
    """Run a model over text and return its activations, all tokens of all texts as one sample set.

    Parameters
    ----------
    model : str or transformers model or TransformerLens HookedTransformer
        ``'minilm'`` (bundled, offline), a hub id (``'gpt2'``), a local folder, or a loaded model
        (then ``tokenizer`` is required unless the model carries one). Causal LMs and BERT-like
        encoders both work.
    text_or_texts : str or sequence of str
        Every token of every text becomes one sample (row).
    input_ids : sequence of int, or sequence of sequences of int, optional
        Token ids instead of text (one sequence per text), from any tokenizer: they go to the model
        as given, with no special tokens added. Then ``tokenizer`` is optional (it names the
        tokens; without it they are the ids).
    extraction : Extraction, optional
        All the options below as one object (then pass none of them).
    tokenizer : transformers tokenizer or str, optional
        Needed when ``model`` is a loaded model without its own; a name or folder is loaded (use
        it for a model folder without tokenizer files).
    layers : sequence of int, optional
        Layers to keep (indices into the full list; negative counts from the end). Default: all.
    site : str or sequence of str
        ``'residual'``: ``output_hidden_states`` (L = blocks + 1, index 0 = embedding output; for
        GPT-2 the last entry has the final layer norm applied, as transformers returns it).
        ``'mlp'``: MLP neurons after the nonlinearity (GPT-2, BERT-like, TransformerLens),
        L = blocks, units = 4 x hidden. ``'attention'``: each block's attention output (before it
        is added to the residual stream), L = blocks. Any other string, or a list of them: the
        outputs of those named submodules, one layer each (``'transformer.h.5.mlp.act'``;
        TransformerLens hook names such as ``'blocks.5.mlp.hook_post'``).
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
    drop_special_tokens : bool
        Remove the special tokens the tokenizer adds around each window ([CLS] and [SEP] for BERT).

    Returns
    -------
    HiddenStates

    Examples
    --------
    >>> import pairmi
    >>> hs = pairmi.hidden_states("minilm", "Turkish coffee is served in small cups.")  # doctest: +SKIP
    >>> hs.values.shape  # doctest: +SKIP
    (7, 11, 384)
    """
    if (text_or_texts is None) == (input_ids is None):
        raise ValueError("pass the text (text_or_texts) or input_ids, one of them")
    given = {
        "tokenizer": tokenizer,
        "layers": layers,
        "site": site,
        "max_length": max_length,
        "stride": stride,
        "batch_size": batch_size,
        "device": device,
        "drop_first_token": drop_first_token,
        "drop_special_tokens": drop_special_tokens,
    }
    # The keywords are this function's convenience door: they become the object once, here.
    changed = {k: v for k, v in given.items() if not (v is DEFAULTS[k] or (isinstance(v, (str, bool, int)) and v == DEFAULTS[k]))}
    ex = as_extraction(extraction, changed if extraction is not None else given)
    if input_ids is not None:
        texts: list[Any] = id_sequences(input_ids)
    else:
        assert text_or_texts is not None
        texts = [text_or_texts] if isinstance(text_or_texts, str) else list(text_or_texts)
        if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
            raise ValueError("text_or_texts must be a non-empty string or a list of non-empty strings")
    model, tokenizer = resolve_model(model, ex.tokenizer, need_tokenizer=input_ids is None)
    batches = list(iter_hidden_states(model, texts, ex.replace(tokenizer=tokenizer)))
    if not batches:
        raise ValueError(
            f"the text(s) became no tokens with this tokenizer ({type(tokenizer).__name__}, "
            f"vocabulary of {len(tokenizer)}): a model folder without tokenizer files gets an empty "
            "one; pass tokenizer= (a name or a loaded tokenizer), or input_ids="
        )
    max_length, stride = window_sizes(model, ex.max_length, ex.stride)
    return HiddenStates(
        np.concatenate([b.values for b in batches], axis=1),
        [tok for b in batches for tok in b.tokens],
        batches[0].layer_names,
        model_name(model),
        ex.site if isinstance(ex.site, str) else ",".join(ex.site),
        {
            "max_length": max_length,
            "stride": stride,
            "drop_first_token": ex.drop_first_token,
            "drop_special_tokens": ex.drop_special_tokens,
            "texts": len(texts),
            "window_tokens": [k for b in batches for k in b.window_tokens],
        },
    )


def iter_hidden_states(
    model: Any,
    texts: str | Iterable[str],
    extraction: Extraction | None = None,
    *,
    skip_windows: int = 0,
    **options: Any,
) -> Iterator[StateBatch]:
    """Activations of a stream of texts, one forward batch at a time, in bounded memory.

    Parameters
    ----------
    model
        As in :func:`hidden_states`.
    texts : str or iterable of str
        Documents, read lazily (a generator, :func:`pairmi.corpus.read_documents`, a column of a
        ``datasets`` dataset); blank documents are skipped. Windows never cross documents.
    extraction : Extraction, optional
        The extraction options (tokenizer, layers, site, windows, batches, device, dropped tokens,
        ``max_tokens``: stop after this many kept tokens, the last batch cut).
    skip_windows : int
        Skip the stream's first windows without running the model (to resume a run).
    **options
        The same options as keywords instead of ``extraction`` (``tokenizer=``, ``site=``, ...).

    Yields
    ------
    StateBatch

    Examples
    --------
    >>> from pairmi.extract import iter_hidden_states
    >>> from pairmi.corpus import python_docstrings
    >>> for batch in iter_hidden_states("minilm", python_docstrings(), max_tokens=1000):  # doctest: +SKIP
    ...     print(batch.values.shape)
    """
    ex = as_extraction(extraction, options)
    layers, site, batch_size, device = ex.layers, ex.site, ex.batch_size, ex.device
    torch = require_module("torch")
    model, tokenizer = resolve_model(model, ex.tokenizer, need_tokenizer=False)
    _check_device(torch, device)
    max_length, stride = window_sizes(model, ex.max_length, ex.stride)
    points = _site_points(model, site)  # checked before any forward pass
    model = model.to(device).eval()
    docs = [texts] if isinstance(texts, str) else texts
    windows = stream_windows(tokenizer, docs, max_length, stride, ex.drop_first_token, ex.drop_special_tokens)
    for _ in range(skip_windows):
        if next(windows, None) is None:
            return
    left = ex.max_tokens
    while left is None or left > 0:
        batch = list(itertools.islice(windows, batch_size))
        if not batch:
            return
        # Inference mode and the hooks last one forward pass, never across a yield: a consumer that
        # stops early must not leave them on the model or on torch's global state.
        with torch.inference_mode(), _Recorder(points) as recorder:
            ids, mask = padded_batch(batch, tokenizer, device)
            out = _forward(model, ids, mask, hidden=points is None)
            acts = out.hidden_states if points is None else recorder.take()
            idx = _layer_index(layers, len(acts))
            stacked = torch.stack([acts[i].float() for i in idx])  # (L, batch, positions, units)
            values = [
                stacked[:, b, torch.as_tensor(keep, device=stacked.device)].cpu().numpy() for b, (_, keep) in enumerate(batch)
            ]
        tokens = [tok for window in batch for tok in kept_tokens(tokenizer, *window)]
        chunk = np.ascontiguousarray(np.concatenate(values, axis=1), dtype=np.float32)
        kept = [len(keep) for _, keep in batch]
        if left is not None:
            chunk, tokens = chunk[:, :left], tokens[:left]
            kept = cut_counts(kept, left)
            left -= len(tokens)
        if tokens:
            yield StateBatch(chunk, tokens, _layer_names(site, points, idx), len(batch), [k for k in kept if k])


def _forward(model: Any, ids: Any, mask: Any, hidden: bool) -> Any:
    """One forward pass: transformers models by keyword; TransformerLens models (a ``cfg``) take the
    tokens and need no attention mask for right padding (their attention is causal)."""
    if is_lens(model):
        return model(ids, return_type=None)
    return model(input_ids=ids, attention_mask=mask, output_hidden_states=hidden)


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


def _site_points(model: Any, site: str | Sequence[str]) -> list[tuple[str, Any, bool]] | None:
    """Where a site's activations are recorded: (name, module, True to record the module's input)
    per layer; None for the residual stream of a transformers model (output_hidden_states)."""
    base = getattr(model, "base_model", model)
    lens = is_lens(model)
    blocks = getattr(base, "h", None) or getattr(getattr(base, "encoder", None), "layer", None)
    if site == "residual":
        if not lens:
            return None
        names = ["blocks.0.hook_resid_pre"] + [f"blocks.{i}.hook_resid_post" for i in range(model.cfg.n_layers)]
        return _named_points(model, names)
    if site == "mlp":
        if lens:
            return _named_points(model, [f"blocks.{i}.mlp.hook_post" for i in range(model.cfg.n_layers)])
        if hasattr(base, "h"):  # GPT-2: the input of mlp.c_proj is act(c_fc(x))
            return [(f"mlp{i}", b.mlp.c_proj, True) for i, b in enumerate(base.h)]
        if blocks is not None:  # BERT-like
            return [(f"mlp{i}", b.intermediate, False) for i, b in enumerate(blocks)]
        raise NotImplementedError(
            f"site='mlp' supports GPT-2, BERT-like and TransformerLens models, not "
            f"{type(model).__name__}: name its modules instead (site='...')"
        )
    if site == "attention":
        if lens:
            return _named_points(model, [f"blocks.{i}.hook_attn_out" for i in range(model.cfg.n_layers)])
        if hasattr(base, "h"):
            return [(f"attn{i}", b.attn, False) for i, b in enumerate(base.h)]
        if blocks is not None:
            return [(f"attn{i}", b.attention, False) for i, b in enumerate(blocks)]
        raise NotImplementedError(
            f"site='attention' supports GPT-2, BERT-like and TransformerLens models, not "
            f"{type(model).__name__}: name its modules instead (site='...')"
        )
    return _named_points(model, [site] if isinstance(site, str) else list(site))


def _named_points(model: Any, names: list[str]) -> list[tuple[str, Any, bool]]:
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"site must be {SITES} or module names, got {names!r}")
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        near = [m for m in modules if missing[0].split(".")[-1] in m][:5]
        raise ValueError(
            f"site {missing[0]!r} is none of {SITES} and no module of {type(model).__name__}"
            + (f"; modules with that name end: {near}" if near else "")
        )
    return [(n, modules[n], False) for n in names]


def _layer_names(site: str | Sequence[str], points: list[tuple[str, Any, bool]] | None, idx: list[int]) -> list[str]:
    if points is None or site == "residual":
        return [f"L{i}" for i in idx]
    return [points[i][0] for i in idx]


class _Recorder:
    """Forward hooks that record, per forward pass, each point's module output (its first element
    when a tuple) or input, in the points' order whatever order the modules run in."""

    def __init__(self, points: list[tuple[str, Any, bool]] | None):
        self.handles: list[Any] = []
        self.acts: list[Any] = [None] * len(points or [])
        for k, (_, module, record_input) in enumerate(points or []):
            if record_input:
                self.handles.append(module.register_forward_pre_hook(functools.partial(self._pre, k)))
            else:
                self.handles.append(module.register_forward_hook(functools.partial(self._post, k)))

    def _pre(self, k, module, args):
        self.acts[k] = args[0]

    def _post(self, k, module, args, output):
        self.acts[k] = output[0] if isinstance(output, tuple) else output

    def take(self) -> list[Any]:
        acts, self.acts = self.acts, [None] * len(self.acts)
        return acts

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()
        return False
