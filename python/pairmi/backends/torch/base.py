"""torch itself, imported lazily, and what every part shares: out-of-memory handling, exact division."""

from __future__ import annotations

from typing import Any

from ...settings import BINNED_ESTIMATORS

TORCH_ESTIMATORS = BINNED_ESTIMATORS + ("ksg", "gaussian_copula")


def torch_module() -> Any:
    try:
        import torch
    except ImportError:
        raise ImportError("backend='torch' needs torch: pip install 'pairmi[llm]'") from None
    return torch


def out_of_memory() -> Any:
    """The exception a device allocation failure raises (torch.OutOfMemoryError since torch 2.5)."""
    torch = torch_module()
    return getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError


def round_up(v: int, m: int) -> int:
    return -(-v // m) * m


def true_divide(a: Any, b: float) -> Any:
    """a / b rounded as numpy rounds it: CUDA divides by a scalar as a product with its reciprocal."""
    torch = torch_module()
    return a / torch.full_like(a, float(b))


def shrinking_on_oom(
    run: Any,
    block: int,
    what: str,
    unit: str = "row",
    advice: str = "select fewer variables (dims=), fewer layers, or use backend='cpu'",
) -> Any:
    """run(block), halving the block while the device runs out of memory; at one `unit` a clear
    MemoryError naming the size and what to do (`advice`)."""
    torch = torch_module()
    while True:
        try:
            return run(block)
        except out_of_memory() as exc:  # CUDA (and other accelerators') allocation failures
            if block == 1:
                raise MemoryError(f"{what} does not fit on the device even one {unit} at a time ({exc}): {advice}") from None
            block = max(1, block // 2)
            torch.cuda.empty_cache() if torch.cuda.is_available() else None
