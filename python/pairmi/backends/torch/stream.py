"""Streaming on the device: joint counts added to int64 totals (rolled back when interrupted), MI
from the totals, and the core's slot layout."""

from __future__ import annotations

from typing import Any

from .base import shrinking_on_oom, torch_module
from .counts import FLOAT32_EXACT, ONE_HOT_BYTES, entropies, joint_counts, mi_from_joint, one_hot_rows


def add_pair_counts(
    joint: Any,
    marginal_x: Any,
    marginal_y: Any | None,
    cx: Any,
    cy: Any | None,
    bins: int,
    step: int | None = None,
    sign: int = 1,
) -> None:
    """Add the joint counts of codes cx (dx, n) against themselves or cy (dy, n) to joint
    (dx * bins, dy * bins) and the marginal counts to marginal_x (dx, bins) [and marginal_y], int64,
    in blocks of samples whose one-hot codes take about ONE_HOT_BYTES; a block that runs out of device
    memory is halved. On any error (an interrupt too) what was added is subtracted again: exact, as
    the counts are integers, so the totals are as before the call. sign=-1 subtracts the counts."""
    torch = torch_module()
    n = cx.shape[1]
    rows = (cx.shape[0] + (0 if cy is None else cy.shape[0])) * bins
    step = step or max(1, min(n, FLOAT32_EXACT - 1, ONE_HOT_BYTES // max(1, rows)))
    added: list[tuple[int, int]] = []

    def block(s0: int, s1: int, direction: int) -> None:
        ox = one_hot_rows(cx[:, s0:s1], bins)
        oy = ox if cy is None else one_hot_rows(cy[:, s0:s1], bins)
        # Everything that allocates first: a block that runs out of memory has added nothing.
        counts = joint_counts(ox, oy).to(torch.int64)
        counts_x = ox.sum(dim=1, dtype=torch.int64).reshape(marginal_x.shape)
        counts_y = None if marginal_y is None else oy.sum(dim=1, dtype=torch.int64).reshape(marginal_y.shape)
        joint.add_(counts, alpha=direction)
        marginal_x.add_(counts_x, alpha=direction)
        if marginal_y is not None:
            marginal_y.add_(counts_y, alpha=direction)

    what = f"counting the joint bins of {rows // bins:,} variables"
    try:
        s0 = 0
        while s0 < n:

            def first_samples(size: int, s0: int = s0) -> tuple[int, int]:
                block(s0, min(n, s0 + size), sign)
                return min(n, s0 + size), size

            s1, step = shrinking_on_oom(first_samples, step, what, "sample", "stream fewer variables per accumulator")
            added.append((s0, s1))
            s0 = s1
    except BaseException:
        for s0, s1 in added:
            block(s0, s1, -sign)
        raise


def mi_of_joint_totals(
    joint: Any, marginal_x: Any, marginal_y: Any | None, n: int, miller_madow: bool, block_bytes: int = 1 << 30
) -> Any:
    """MI (dx, dy) in nats of int64 joint counts (dx * bins, dy * bins) and marginals; the diagonal
    against itself the entropies. Blocks of rows of about block_bytes of float64."""
    torch = torch_module()
    dx, bins = marginal_x.shape
    hx = entropies(marginal_x, n, miller_madow)
    hy = hx if marginal_y is None else entropies(marginal_y, n, miller_madow)
    dy = hy.shape[0]
    rows = max(1, block_bytes // (8 * bins * bins * max(1, dy)))
    out = torch.empty((dx, dy), dtype=torch.float64, device=joint.device)
    for r0 in range(0, dx, rows):
        r1 = min(dx, r0 + rows)
        out[r0:r1] = mi_from_joint(joint[r0 * bins : r1 * bins], hx[r0:r1], hy, n, miller_madow)
    if marginal_y is None:
        idx = torch.arange(dx, device=joint.device)
        out[idx, idx] = hx
    return out


def joint_to_slots(joint: Any, dx: int, dy: int, cross: bool) -> Any:
    """Joint counts (layers, dx * b, dy * b) to the core's pair slots (layers, pairs, b, b): the upper
    triangle row by row against itself, every (i, j) against Y; x's code the row of each pair."""
    torch = torch_module()
    layers, b = joint.shape[0], joint.shape[1] // dx
    blocks = joint.reshape(layers, dx, b, dy, b).permute(0, 1, 3, 2, 4)
    if cross:
        return blocks.reshape(layers, dx * dy, b, b)
    i, j = torch.triu_indices(dx, dx, 1, device=joint.device)
    return blocks[:, i, j]


def slots_to_joint(slots: Any, marginal_x: Any, dx: int, dy: int, cross: bool) -> Any:
    """The inverse of joint_to_slots (the blocks of a variable with itself from its marginal)."""
    torch = torch_module()
    layers, b = slots.shape[0], slots.shape[-1]
    if cross:
        blocks = slots.reshape(layers, dx, dy, b, b)
    else:
        blocks = torch.zeros((layers, dx, dx, b, b), dtype=slots.dtype, device=slots.device)
        i, j = torch.triu_indices(dx, dx, 1, device=slots.device)
        blocks[:, i, j] = slots
        blocks[:, j, i] = slots.transpose(-1, -2)
        idx = torch.arange(dx, device=slots.device)
        blocks[:, idx, idx] = torch.diag_embed(marginal_x)
    return blocks.permute(0, 1, 3, 2, 4).reshape(layers, dx * b, dy * b).contiguous()
