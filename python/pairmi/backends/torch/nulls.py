"""Reorderings for the nulls on the device: the core's permutations and rotations, drawn on the host and gathered."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import torch_module


def reorderings(rows: Any, count: int, seed: Any, reorder: Any) -> Any:
    """Yield `count` reorderings of each row's samples of rows (d, n) on their device: the core's
    permutations (np.random.Generator.permuted of each row, seeded with `seed`), rotations or window
    shifts (pairmi.stats.Rotations, WindowShifts), their indices drawn on the host, then a gather
    on the device."""
    torch = torch_module()
    rng = np.random.default_rng(seed)
    d, n = rows.shape
    order = np.broadcast_to(np.arange(n), (d, n))
    for _ in range(count):
        idx = rng.permuted(order, axis=-1) if reorder is None else np.ascontiguousarray(reorder.indices(rng, d))
        yield rows.gather(1, torch.as_tensor(idx, device=rows.device))
