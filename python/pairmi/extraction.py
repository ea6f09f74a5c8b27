"""How hidden states are taken from a model: one frozen object for the extraction options, checked
once, passed whole to the extraction, the corpus runners, the Dask runners and the CLI."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

SITES = ("residual", "mlp", "attention")


@dataclass(frozen=True)
class Extraction:
    """The extraction options of :func:`pairmi.hidden_states` and the corpus runs, checked.

    Parameters
    ----------
    tokenizer : transformers tokenizer or str, optional
        Needed when the model is a loaded model without its own; a name or folder is loaded.
    layers : sequence of int, optional
        Layers to keep (negative counts from the end); default all.
    site : str or sequence of str
        ``'residual'``, ``'mlp'``, ``'attention'``, or named submodules / TransformerLens hook
        names, one layer each.
    max_length, stride : int, optional
        Window length (default: the model's context) and the step between windows (default:
        ``max_length``); checked against the model when it is known.
    batch_size : int
        Windows per forward pass.
    device : str
        torch device of the forward pass.
    drop_first_token, drop_special_tokens : bool
        Remove each window's first position, or the special tokens the tokenizer adds.
    max_tokens : int, optional
        Stop after this many kept tokens.

    Examples
    --------
    >>> from pairmi import Extraction
    >>> Extraction(site="mlp", max_length=128, drop_first_token=True).params()["site"]
    'mlp'
    """

    tokenizer: Any = None
    layers: tuple[int, ...] | None = None
    site: str | tuple[str, ...] = "residual"
    max_length: int | None = None
    stride: int | None = None
    batch_size: int = 8
    device: str = "cpu"
    drop_first_token: bool = False
    drop_special_tokens: bool = False
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.layers is not None:
            layers = tuple(self.layers) if isinstance(self.layers, Sequence) and not isinstance(self.layers, str) else None
            if layers is None or not all(_is_int(k) for k in layers):
                raise TypeError(f"layers must be a sequence of integer layer indices or None, got {self.layers!r}")
            object.__setattr__(self, "layers", tuple(int(k) for k in layers))
        if not isinstance(self.site, str):
            site = tuple(self.site) if isinstance(self.site, Sequence) else ()
            if not site or not all(isinstance(s, str) and s for s in site):
                raise ValueError(f"site must be one of {SITES}, a module name, or a list of module names, got {self.site!r}")
            object.__setattr__(self, "site", site)
        elif not self.site:
            raise ValueError(f"site must be one of {SITES} or a module name, got {self.site!r}")
        for name in ("batch_size", "max_tokens", "max_length", "stride"):
            value = getattr(self, name)
            if value is None and name != "batch_size":
                continue
            if not _is_int(value):
                raise TypeError(f"{name} must be a positive integer, got {value!r}")
            if value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        for name in ("drop_first_token", "drop_special_tokens"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if not isinstance(self.device, str):
            raise TypeError(f"device must be a torch device name such as 'cpu' or 'cuda:0', got {self.device!r}")

    def params(self) -> dict[str, Any]:
        """What a saved run records of these options (JSON-serialisable): every option that decides
        which tokens and activations are taken (the tokenizer object and the device are left out)."""
        return {
            "layers": None if self.layers is None else list(self.layers),
            "site": self.site if isinstance(self.site, str) else list(self.site),
            "max_length": self.max_length,
            "stride": self.stride,
            "batch_size": self.batch_size,
            "drop_first_token": bool(self.drop_first_token),
            "drop_special_tokens": bool(self.drop_special_tokens),
            "max_tokens": self.max_tokens,
        }

    def replace(self, **changes: Any) -> Extraction:
        """A copy with some options changed (checked again)."""
        return Extraction(**{**{f.name: getattr(self, f.name) for f in fields(self)}, **changes})


KEYWORDS = tuple(f.name for f in fields(Extraction))
DEFAULTS = {f.name: f.default for f in fields(Extraction)}


def as_extraction(extraction: Extraction | None, keywords: dict[str, Any]) -> Extraction:
    """The one place loose extraction keywords become an :class:`Extraction`: the object given, or
    one made of the keywords (not both); a keyword that is no extraction option is a TypeError."""
    unknown = sorted(set(keywords) - set(KEYWORDS))
    if unknown:
        raise TypeError(f"unexpected keyword argument(s) {unknown}; the extraction options are {list(KEYWORDS)}")
    if extraction is None:
        return Extraction(**keywords)
    if not isinstance(extraction, Extraction):
        raise TypeError(f"extraction must be a pairmi.Extraction, got {type(extraction).__name__}")
    if keywords:
        raise TypeError(f"pass extraction= or its options ({', '.join(sorted(keywords))}), not both")
    return extraction


def _is_int(value: Any) -> bool:
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, np.integer))
