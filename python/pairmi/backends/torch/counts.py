"""Joint bin counts as products of one-hot codes (int8 on accelerators), and entropies and MI from counts."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import round_up, torch_module

# Count values up to this are turned into c ln c through a float64 table (a gather, cheaper in
# memory traffic than converting every count and taking its logarithm).
TABLE_COUNTS = 1 << 22


# Bytes of int8 one-hot codes built at once for one product of streamed samples.
ONE_HOT_BYTES = 1 << 30


# Samples per float32 product: its counts are exact integers below 2**24.
FLOAT32_EXACT = 1 << 24


# Up to this many samples (and fewer than bins**2) binned MI counts each sample's cell instead of
# every cell: half-precision products of 0/1 values are exact integers up to 2048.
PER_SAMPLE_MAX = 2048


# Bytes of the per-sample counts (and their logarithms) computed at once.
PER_SAMPLE_BYTES = 1 << 30


def one_hot_rows(codes: Any, bins: int) -> Any:
    """(d * bins, n) int8 one-hot rows of codes (d, n): row v * bins + b marks variable v's samples
    in bin b, so that rows @ rows.T are the joint counts of every pair of variables."""
    torch = torch_module()
    hot = codes[:, None, :] == torch.arange(bins, device=codes.device, dtype=codes.dtype)[None, :, None]
    return hot.view(torch.int8).reshape(codes.shape[0] * bins, codes.shape[1])


_INT8_PRODUCTS: dict[str, bool] = {}  # per device type: whether torch._int_mm ran there


def joint_counts(a: Any, b: Any) -> Any:
    """Exact a @ b.T of 0/1 int8 rows a (ra, n) and b (rb, n), counts below 2**31: int32 products
    on accelerators (integer tensor cores; float32 in blocks of 2**24 samples where those are
    missing), float64 on the CPU."""
    torch = torch_module()
    if a.device.type == "cpu":
        return a.to(torch.float64) @ b.to(torch.float64).T
    if _INT8_PRODUCTS.get(a.device.type, True):
        try:
            out = int8_counts(a, b)
            _INT8_PRODUCTS[a.device.type] = True
            return out
        except (RuntimeError, AttributeError, NotImplementedError):
            _INT8_PRODUCTS[a.device.type] = False
    total = None
    for s0 in range(0, a.shape[1], FLOAT32_EXACT):
        part = a[:, s0 : s0 + FLOAT32_EXACT].to(torch.float32) @ b[:, s0 : s0 + FLOAT32_EXACT].to(torch.float32).T
        part = part.to(torch.int64)
        total = part if total is None else total + part
    return total


def int8_counts(a: Any, b: Any) -> Any:
    """a @ b.T of int8 rows by torch._int_mm (int32 sums), which wants more than 16 rows and
    multiples of 8 elsewhere: zero padding, cut off again."""
    torch = torch_module()
    n = a.shape[1]
    ra, rb, k = max(17, round_up(a.shape[0], 8)), round_up(b.shape[0], 8), round_up(n, 8)
    pa = torch.nn.functional.pad(a, (0, k - n, 0, ra - a.shape[0]))
    pb = pa if b is a and rb == ra else torch.nn.functional.pad(b, (0, k - n, 0, rb - b.shape[0]))
    try:  # b's transpose as a view where the product takes one, else a copy
        out = torch._int_mm(pa, pb.T)
    except RuntimeError:
        out = torch._int_mm(pa, pb.T.contiguous())
    return out[: a.shape[0], : b.shape[0]]


def xlogx_sums(counts: Any, dims: tuple[int, ...], miller_madow: bool, top: int | None = None) -> Any:
    """Sum over `dims` of c ln c (minus 1/2 per non-empty cell for Miller-Madow), float64, of
    integer counts at most `top` (default: their maximum, a synchronisation on an accelerator)."""
    torch = torch_module()
    if top is None:
        top = int(counts.max()) if counts.numel() else 0
    if top <= TABLE_COUNTS:
        table = torch.special.xlogy(*(torch.arange(top + 1, dtype=torch.float64, device=counts.device),) * 2)
        if miller_madow:
            table[1:] -= 0.5
        return table[counts if counts.dtype in (torch.int32, torch.int64) else counts.to(torch.int64)].sum(dim=dims)
    c = counts.to(torch.float64)
    s = torch.special.xlogy(c, c).sum(dim=dims)
    return s - 0.5 * (c > 0).sum(dim=dims) if miller_madow else s


def entropy_of_sums(sum_terms: Any, n: int, miller_madow: bool) -> Any:
    torch = torch_module()
    h = float(np.log(n)) - sum_terms / n - (0.5 / n if miller_madow else 0.0)
    return torch.clamp(h, min=0.0)


def entropies(marginals: Any, n: int, miller_madow: bool) -> Any:
    """Entropies (nats) of marginal counts (..., bins) of n samples."""
    return entropy_of_sums(xlogx_sums(marginals, (-1,), miller_madow, n), n, miller_madow)


def cell_log_sums(cx: Any, cy: Any, miller_madow: bool) -> Any:
    """For every pair of codes cx (rx, n) and cy (dy, n): the sum over cells of c ln c (minus 1/2
    per non-empty cell for Miller-Madow), float64, as the sum over samples of ln c(s) (minus
    1/(2 c(s))), c(s) the count of sample s's cell. For sample s all pairs' c(s) are one product:
    [cx_i(s) == cx_i(t)] (rx x n) times [cy_j(s) == cy_j(t)] (n x dy), batched over s; exact in
    half precision up to PER_SAMPLE_MAX samples (float64 on the CPU). Fewer values than the joint
    counts of every cell when n < bins**2."""
    torch = torch_module()
    rx, n = cx.shape
    dy = cy.shape[0]
    dtype = torch.float64 if cx.device.type == "cpu" else torch.float16
    c = torch.arange(n + 1, dtype=torch.float64, device=cx.device)
    table = torch.log(c) - (0.5 / c if miller_madow else 0.0)
    table[0] = 0.0  # never used: a sample's own cell holds it
    total = torch.zeros((rx, dy), dtype=torch.float64, device=cx.device)
    step = max(1, PER_SAMPLE_BYTES // (14 * rx * dy))
    for s0 in range(0, n, step):
        s1 = min(n, s0 + step)
        ex = (cx.T[s0:s1, :, None] == cx[None]).to(dtype)  # (s, rx, n)
        ey = (cy.T[s0:s1, :, None] == cy[None]).to(dtype)  # (s, dy, n)
        counts = torch.bmm(ex, ey.transpose(1, 2)).to(torch.int32)  # (s, rx, dy)
        total += table[counts].sum(dim=0)
    return total


def mi_from_joint(joint: Any, hx: Any, hy: Any, n: int, miller_madow: bool) -> Any:
    """MI (rx, dy) in nats from joint counts (rx * bins, dy * bins) and the entropies hx (rx,),
    hy (dy,); clipped at 0 unless Miller-Madow (as the core)."""
    rx, dy = hx.shape[0], hy.shape[0]
    bins = joint.shape[0] // rx
    hxy = entropy_of_sums(xlogx_sums(joint.reshape(rx, bins, dy, bins), (1, 3), miller_madow, n), n, miller_madow)
    mi = hx[:, None] + hy[None, :] - hxy
    return mi if miller_madow else mi.clamp(min=0.0)
