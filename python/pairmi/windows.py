"""Texts to windows of token ids: each document cut into windows of the model's context (overlaps kept
once), special and first tokens dropped as asked, batches padded; token ids given as they are."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from .extraction import Extraction
from .models import context_length


def cut_counts(counts: list[int], total: int) -> list[int]:
    """Per-window token counts cut so that they add up to at most `total`."""
    out = []
    for c in counts:
        out.append(min(c, max(total, 0)))
        total -= c
    return out


def id_sequences(input_ids: Any) -> list[list[int]]:
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


def window_sizes(model: Any, max_length: int | None, stride: int | None) -> tuple[int, int]:
    context = context_length(model)
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
    length, step = window_sizes(model, extraction.max_length, extraction.stride)
    drop_first, drop_special = extraction.drop_first_token, extraction.drop_special_tokens

    def count(doc: str) -> int:
        return sum(len(keep) for _, keep in stream_windows(tokenizer, [doc], length, step, drop_first, drop_special))

    return count


def stream_windows(
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


def padded_batch(batch, tokenizer: Any, device: str):
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


def kept_tokens(tokenizer: Any, window: list[int], keep: list[int]) -> list[str]:
    toks = [str(i) for i in window] if tokenizer is None else tokenizer.convert_ids_to_tokens(window)
    return [toks[p] for p in keep]
