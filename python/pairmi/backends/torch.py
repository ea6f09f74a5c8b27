"""The estimators on torch tensors, on whatever device they live.

Binned joint counts are a matrix product of one-hot codes, counts = O_x^T O_y (O: samples x
(variables * bins)), exact in integers (int8 products on accelerators, float64 on the CPU); with
few samples each sample's cell is counted instead. Codes follow the C++ core's edges and rules
(np.histogram2d's), so results equal the core's within rounding. The copula is one product of
normal scores; KSG is brute force over tiles of pairs. Streaming adds the same products to int64
totals. Everything stays on the tensors' device; measurements in docs/gpu.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..settings import BINNED_ESTIMATORS

TORCH_ESTIMATORS = BINNED_ESTIMATORS + ("ksg", "gaussian_copula")


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ImportError("backend='torch' needs torch: pip install 'pairmi[llm]'") from None
    return torch


def out_of_memory() -> Any:
    """The exception a device allocation failure raises (torch.OutOfMemoryError since torch 2.5)."""
    torch = _torch()
    return getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError


def equal_width_edges(x: Any, bins: int) -> Any:
    """(layers, d, bins + 1) float64 edges of x (layers, n, d), as the core (and np.linspace) makes them."""
    torch = _torch()
    lo, hi = x.amin(dim=1), x.amax(dim=1)
    same = lo == hi
    lo, hi = torch.where(same, lo - 0.5, lo), torch.where(same, hi + 0.5, hi)
    delta = hi - lo
    step = delta / bins
    k = torch.arange(bins, dtype=torch.float64, device=x.device)
    inner = torch.where((step == 0)[..., None], (k / bins) * delta[..., None], k * step[..., None]) + lo[..., None]
    return torch.cat([inner, hi[..., None]], dim=-1)


def equal_frequency_edges(x: Any, bins: int) -> Any:
    """(layers, d, bins + 1) float64 edges: np.percentile's 'linear' method with its operations."""
    torch = _torch()
    n = x.shape[1]
    srt = torch.sort(x, dim=1).values  # (layers, n, d)
    edges = []
    for k in range(bins + 1):
        q = (100.0 if k == bins else k * (100.0 / bins)) / 100.0
        v = (n - 1) * q
        if v >= n - 1:
            edges.append(srt[:, n - 1])
            continue
        below = int(np.floor(v))
        t = v - below
        a, b = srt[:, below], srt[:, below + 1]
        diff = b - a
        edges.append(b - diff * (1.0 - t) if t >= 0.5 else a + diff * t)
    return torch.stack(edges, dim=-1)


def codes(x: Any, edges: Any) -> Any:
    """(layers, d, n) int64 codes: the inner edges at or below each value (np.histogram2d's bins,
    the last closed), counted by a search of the sorted edges. A value below the first edge counts
    as the first edge, as in the core: with tied lowest edges it joins the minimum's bin."""
    torch = _torch()
    inner = edges[..., 1:-1].contiguous()  # (layers, d, bins - 1)
    values = torch.maximum(x.transpose(1, 2), edges[..., :1]).contiguous()  # (layers, d, n), float64 as the edges
    return torch.searchsorted(inner, values, right=True)


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
    torch = _torch()
    hot = codes[:, None, :] == torch.arange(bins, device=codes.device, dtype=codes.dtype)[None, :, None]
    return hot.view(torch.int8).reshape(codes.shape[0] * bins, codes.shape[1])


_INT8_PRODUCTS: dict[str, bool] = {}  # per device type: whether torch._int_mm ran there


def joint_counts(a: Any, b: Any) -> Any:
    """Exact a @ b.T of 0/1 int8 rows a (ra, n) and b (rb, n), counts below 2**31: int32 products
    on accelerators (integer tensor cores; float32 in blocks of 2**24 samples where those are
    missing), float64 on the CPU."""
    torch = _torch()
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
    torch = _torch()
    n = a.shape[1]
    ra, rb, k = max(17, _up(a.shape[0], 8)), _up(b.shape[0], 8), _up(n, 8)
    pa = torch.nn.functional.pad(a, (0, k - n, 0, ra - a.shape[0]))
    pb = pa if b is a and rb == ra else torch.nn.functional.pad(b, (0, k - n, 0, rb - b.shape[0]))
    try:  # b's transpose as a view where the product takes one, else a copy
        out = torch._int_mm(pa, pb.T)
    except RuntimeError:
        out = torch._int_mm(pa, pb.T.contiguous())
    return out[: a.shape[0], : b.shape[0]]


def _up(v: int, m: int) -> int:
    return -(-v // m) * m


def true_divide(a: Any, b: float) -> Any:
    """a / b rounded as numpy rounds it: CUDA divides by a scalar as a product with its reciprocal."""
    torch = _torch()
    return a / torch.full_like(a, float(b))


def xlogx_sums(counts: Any, dims: tuple[int, ...], miller_madow: bool, top: int | None = None) -> Any:
    """Sum over `dims` of c ln c (minus 1/2 per non-empty cell for Miller-Madow), float64, of
    integer counts at most `top` (default: their maximum, a synchronisation on an accelerator)."""
    torch = _torch()
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


def _entropy(sum_terms: Any, n: int, miller_madow: bool) -> Any:
    torch = _torch()
    h = float(np.log(n)) - sum_terms / n - (0.5 / n if miller_madow else 0.0)
    return torch.clamp(h, min=0.0)


def entropies(marginals: Any, n: int, miller_madow: bool) -> Any:
    """Entropies (nats) of marginal counts (..., bins) of n samples."""
    return _entropy(xlogx_sums(marginals, (-1,), miller_madow, n), n, miller_madow)


def cell_log_sums(cx: Any, cy: Any, miller_madow: bool) -> Any:
    """For every pair of codes cx (rx, n) and cy (dy, n): the sum over cells of c ln c (minus 1/2
    per non-empty cell for Miller-Madow), float64, as the sum over samples of ln c(s) (minus
    1/(2 c(s))), c(s) the count of sample s's cell. For sample s all pairs' c(s) are one product:
    [cx_i(s) == cx_i(t)] (rx x n) times [cy_j(s) == cy_j(t)] (n x dy), batched over s; exact in
    half precision up to PER_SAMPLE_MAX samples (float64 on the CPU). Fewer values than the joint
    counts of every cell when n < bins**2."""
    torch = _torch()
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
    hxy = _entropy(xlogx_sums(joint.reshape(rx, bins, dy, bins), (1, 3), miller_madow, n), n, miller_madow)
    mi = hx[:, None] + hy[None, :] - hxy
    return mi if miller_madow else mi.clamp(min=0.0)


def shrinking_on_oom(
    run: Any,
    block: int,
    what: str,
    unit: str = "row",
    advice: str = "select fewer variables (dims=), fewer layers, or use backend='cpu'",
) -> Any:
    """run(block), halving the block while the device runs out of memory; at one `unit` a clear
    MemoryError naming the size and what to do (`advice`)."""
    torch = _torch()
    while True:
        try:
            return run(block)
        except out_of_memory() as exc:  # CUDA (and other accelerators') allocation failures
            if block == 1:
                raise MemoryError(f"{what} does not fit on the device even one {unit} at a time ({exc}): {advice}") from None
            block = max(1, block // 2)
            torch.cuda.empty_cache() if torch.cuda.is_available() else None


def fit_edges(x: Any, estimator: str, bins: int) -> Any:
    """Edges (layers, d, bins + 1) of x (layers, n, d) as the core fits them."""
    return (equal_width_edges if estimator == "equal_width" else equal_frequency_edges)(x, bins)


def binned_mi(
    x: Any,
    y: Any | None,
    estimator: str,
    bins: int,
    scale: float,
    miller_madow: bool = False,
    edges: tuple[Any, Any] = (None, None),
    block: int = 1024,
) -> Any:
    """MI (layers, dx, dy) in nats times `scale`, float64, of x (layers, n, dx) against itself or y."""
    ex = edges[0] if edges[0] is not None else fit_edges(x, estimator, bins)
    cx = codes(x, ex)
    cy = None if y is None else codes(y, edges[1] if edges[1] is not None else fit_edges(y, estimator, bins))
    return binned_mi_of_codes(cx, cy, bins, scale, miller_madow, block)


def binned_mi_of_codes(cx: Any, cy: Any | None, bins: int, scale: float, miller_madow: bool = False, block: int = 1024) -> Any:
    """MI (layers, dx, dy) of codes cx (layers, dx, n) against themselves (entropies on the
    diagonal) or cy. Joint counts of `block` x variables against all y variables per one-hot
    product; out of device memory, the block is halved and the layers computed again."""
    other = cx if cy is None else cy
    return shrinking_on_oom(
        lambda b: _binned_mi_of_codes(cx, cy, bins, scale, miller_madow, b),
        block,
        f"binned MI of {cx.shape[1]:,} x {other.shape[1]:,} variables",
    )


def _binned_mi_of_codes(cx: Any, cy: Any | None, bins: int, scale: float, miller_madow: bool, block: int) -> Any:
    torch = _torch()
    layers, dx, n = cx.shape
    dy = dx if cy is None else cy.shape[1]
    out = torch.empty((layers, dx, dy), dtype=torch.float64, device=cx.device)
    for l in range(layers):
        oy = one_hot_rows(cx[l] if cy is None else cy[l], bins)
        hy = entropies(oy.sum(dim=1, dtype=torch.int64).reshape(dy, bins), n, miller_madow)
        hx = (
            hy
            if cy is None
            else entropies(one_hot_rows(cx[l], bins).sum(dim=1, dtype=torch.int64).reshape(dx, bins), n, miller_madow)
        )
        for r0 in range(0, dx, block):
            r1 = min(dx, r0 + block)
            if n <= PER_SAMPLE_MAX and n < bins * bins:
                sums = cell_log_sums(cx[l, r0:r1], cx[l] if cy is None else cy[l], miller_madow)
                mi = hx[r0:r1, None] + hy[None, :] - _entropy(sums, n, miller_madow)
                out[l, r0:r1] = mi if miller_madow else mi.clamp(min=0.0)
                continue
            ox = oy[r0 * bins : r1 * bins] if cy is None else one_hot_rows(cx[l, r0:r1], bins)
            out[l, r0:r1] = mi_from_joint(joint_counts(ox, oy), hx[r0:r1], hy, n, miller_madow)
        if cy is None:
            idx = torch.arange(dx, device=cx.device)
            out[l, idx, idx] = hx
    return out * scale


def _average_ranks(x: Any) -> Any:
    """Ranks 1..n along the last axis, ties sharing their average rank, float64."""
    torch = _torch()
    n = x.shape[-1]
    xs, order = torch.sort(x, dim=-1, stable=True)
    pos = torch.arange(n, device=x.device).expand_as(xs)
    starts = torch.ones_like(xs, dtype=torch.bool)
    starts[..., 1:] = xs[..., 1:] != xs[..., :-1]
    ends = torch.ones_like(xs, dtype=torch.bool)
    ends[..., :-1] = starts[..., 1:]
    first = torch.cummax(torch.where(starts, pos, torch.zeros_like(pos)), dim=-1).values
    last = torch.flip(torch.cummin(torch.flip(torch.where(ends, pos, torch.full_like(pos, n)), [-1]), dim=-1).values, [-1])
    ranks = torch.empty_like(xs, dtype=torch.float64)
    ranks.scatter_(-1, order, (first + last).to(torch.float64) / 2.0 + 1.0)
    return ranks


def unit_scores(v: Any) -> Any:
    """Variables in rows (d, n) to centred, unit-norm normal scores Phi^-1(rank / (n + 1))."""
    torch = _torch()
    n = v.shape[-1]
    z = torch.special.ndtri(_average_ranks(v.to(torch.float64)) / (n + 1))
    z = z - z.mean(dim=-1, keepdim=True)
    norm = torch.linalg.vector_norm(z, dim=-1, keepdim=True)
    return torch.where(norm > 0, z / torch.where(norm > 0, norm, torch.ones_like(norm)), torch.zeros_like(z))


def copula_mi(x: Any, y: Any | None, scale: float) -> Any:
    """Gaussian-copula MI (layers, dx, dy), float64, nats times `scale`; +inf diagonal against itself."""
    torch = _torch()
    out = []
    for l in range(x.shape[0]):
        zx = unit_scores(x[l].T)
        zy = zx if y is None else unit_scores(y[l].T)
        mi = mi_of_correlations(zx @ zy.T, scale)
        if y is None:
            mi.fill_diagonal_(float("inf"))
        out.append(mi)
    return torch.stack(out)


# Bytes of one tile of pairwise distances (float64, pairs x n x n) for KSG: larger tiles mean fewer
# kernel launches, which dominate at a context window's n on an accelerator.
KSG_TILE_BYTES = {"cpu": 64 << 20}
KSG_TILE_BYTES_DEVICE = 512 << 20
# Per-variable distance matrices (d x n x n float64) are kept for a layer when they take at most this.
KSG_DISTANCE_CACHE_BYTES = 1 << 30


def ksg_mi(x: Any, y: Any | None, k: int, scale: float, pairs_per_tile: int | None = None) -> Any:
    """KSG (algorithm 1) MI (layers, dx, dy), float64, nats times `scale`, by brute force: each
    variable scaled to unit (population) variance exactly as the core scales it; for a tile of
    (block of x variables) x (block of y variables) at once, max-norm distances between all
    samples, the k-th neighbour's distance by repeated argmin, and the neighbours strictly inside it counted
    by comparison; digamma sums in float64. Each variable's own distance matrix is computed once
    per layer where they fit KSG_DISTANCE_CACHE_BYTES. +inf diagonal against itself; constant
    variables share nothing; clipped at 0, as the core and scikit-learn."""
    torch = _torch()
    n = x.shape[1]
    tile_bytes = KSG_TILE_BYTES.get(x.device.type, KSG_TILE_BYTES_DEVICE)
    side = max(1, int(np.sqrt(pairs_per_tile or max(1, tile_bytes // (8 * n * n)))))

    def distances(v: Any) -> Any:  # (P, n) -> (P, n, n)
        return (v[:, :, None] - v[:, None, :]).abs()

    sx, cx = ksg_scaled(x)
    sy, cy = (sx, cx) if y is None else ksg_scaled(y)
    layers, dx, dy = sx.shape[0], sx.shape[1], sy.shape[1]
    cached = 8 * n * n * (dx + (0 if y is None else dy)) <= KSG_DISTANCE_CACHE_BYTES
    psi = float(torch.special.digamma(torch.tensor(float(n), dtype=torch.float64))) + float(
        torch.special.digamma(torch.tensor(float(k), dtype=torch.float64))
    )
    table = torch.special.digamma(torch.arange(1, n + 1, dtype=torch.float64, device=x.device))  # psi(count + 1)
    out = torch.zeros((layers, dx, dy), dtype=torch.float64, device=x.device)
    for l in range(layers):
        all_x: Any = distances(sx[l]) if cached else None
        all_y: Any = (all_x if y is None else distances(sy[l])) if cached else None
        for i0 in range(0, dx, side):
            i1 = min(dx, i0 + side)
            a = all_x[i0:i1] if cached else distances(sx[l, i0:i1])  # (bi, n, n)
            for j0 in range(i0 if y is None else 0, dy, side):  # against itself: blocks on and right of the diagonal
                j1 = min(dy, j0 + side)
                b = all_y[j0:j1] if cached else distances(sy[l, j0:j1])  # (bj, n, n)
                dist = torch.maximum(a[:, None], b[None])  # (bi, bj, n, n)
                eps = kth_smallest(dist, k)  # self at distance 0 is the 0th
                del dist
                # The sample itself included (count + 1); a tied k-th neighbour (eps = 0) leaves the
                # count 0 as in the core, whose own distance is then not below eps either: 1 at least.
                nx = (a[:, None] < eps).sum(dim=-1).clamp(min=1)
                ny = (b[None] < eps).sum(dim=-1).clamp(min=1)
                terms = (table[nx - 1] + table[ny - 1]).mean(dim=-1)
                out[l, i0:i1, j0:j1] = torch.clamp(psi - terms, min=0.0)
        out[l, cx[l]] = 0.0
        out[l, :, cy[l]] = 0.0
        if y is None:
            upper = torch.triu(out[l], diagonal=1)
            out[l] = upper + upper.T
            out[l].fill_diagonal_(float("inf"))
    return out * scale


def kth_smallest(dist: Any, k: int) -> Any:
    """The k-th smallest (0-based, repeats counted) of each row of dist (..., n), shape (..., 1), by
    taking out the smallest k times: for KSG's small k faster than topk's selection on a GPU
    (docs/gpu.md)."""
    work = dist if k == 0 else dist.clone()
    for _ in range(k):
        work.scatter_(-1, work.argmin(dim=-1, keepdim=True), float("inf"))
    return work.amin(dim=-1, keepdim=True)


def ksg_scaled(x: Any) -> tuple[Any, Any]:
    """Variables of x (layers, n, d) in rows (layers, d, n), float64, divided by their population
    standard deviation computed as the core computes it (sums in sample order, one add per sample:
    the same roundings, so distances tie and order exactly as in the core), and which are constant."""
    torch = _torch()
    v = x.transpose(1, 2).to(torch.float64).contiguous()
    n = v.shape[-1]

    def sd_of(w: Any) -> Any:
        mean = torch.zeros(w.shape[:-1], dtype=torch.float64, device=w.device)
        for t in range(n):
            mean = mean + w[..., t]
        mean = mean / torch.full_like(mean, float(n))
        var = torch.zeros_like(mean)
        for t in range(n):
            dev = w[..., t] - mean
            var = var + dev * dev
        return torch.sqrt(var / torch.full_like(var, float(n)))

    sd = sd_of(v)
    lo, hi = v.amin(dim=-1), v.amax(dim=-1)
    constant = lo == hi
    odd = ~(torch.isfinite(sd) & (sd > 1e-140)) & ~constant
    if bool(odd.any()):  # tiny or overflowing: the same on values divided by their largest magnitude
        big = torch.maximum(lo.abs(), hi.abs())
        safe = torch.where(odd, big, torch.ones_like(big))
        sd = torch.where(odd, safe * sd_of(v / safe[..., None]), sd)
    sd = torch.where(constant, torch.zeros_like(sd), sd)
    scaled = torch.where(sd[..., None] > 0, v / torch.where(sd > 0, sd, torch.ones_like(sd))[..., None], v)
    return scaled, constant


# --- inputs -------------------------------------------------------------------------------------

BACKENDS = (None, "cpu", "torch")


def is_tensor(data: Any) -> bool:
    """Whether data is a torch tensor (without importing torch)."""
    return hasattr(data, "detach") and hasattr(data, "device") and hasattr(data, "is_cuda")


def wanted(backend: str | None, *data: Any) -> bool:
    """Whether to compute with torch: asked for, or (by default) a tensor on an accelerator."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend is not None:
        return backend == "torch"
    return any(is_tensor(v) and v.device.type != "cpu" for v in data)


def same_device(a: Any, b: Any) -> bool:
    """Whether devices a and b are one (a device without an index meaning the current one of its type)."""
    torch = _torch()
    a, b = torch.device(a), torch.device(b)
    if a.type != b.type:
        return False
    if a.index is None or b.index is None:
        current = torch.cuda.current_device() if a.type == "cuda" else 0
        return (a.index if a.index is not None else current) == (b.index if b.index is not None else current)
    return a.index == b.index


def checked_tensors(
    arrays: list[Any], names: list[str], ndims: tuple[int, ...], nan_policy: str, device: Any = None, min_samples: int = 2
) -> list[Any]:
    """Tensors (layers, n, d) float64 of arrays sharing their samples (axis -2), on `device` (default:
    the first tensor's, else the CPU): real numbers, ndim in `ndims` (2-d gets a layer axis), NaN or
    Inf raised or their samples dropped by `nan_policy`, at least `min_samples` left; a tensor that
    requires grad is detached with a warning."""
    import warnings

    from .. import _arrays

    torch = _torch()
    if nan_policy not in _arrays.NAN_POLICIES:
        raise ValueError(f"nan_policy must be one of {_arrays.NAN_POLICIES}, got {nan_policy!r}")
    for data, name in zip(arrays, names):
        _arrays.refuse_meta(data, name)
    if device is None:
        device = next((a.device for a in arrays if is_tensor(a)), torch.device("cpu"))
    out = []
    for data, name in zip(arrays, names):
        t = data if is_tensor(data) else torch.as_tensor(_arrays.to_numpy(data, name))
        if t.requires_grad:
            warnings.warn(f"{name} requires grad: pairmi detaches it (MI is not differentiable)", stacklevel=5)
            t = t.detach()
        if t.is_complex() or not (
            t.dtype.is_floating_point or t.dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8, torch.bool)
        ):
            raise TypeError(f"{name} must hold real numbers, got {t.dtype}")
        if t.ndim not in ndims:
            shape = " or ".join("(samples, variables)" if d == 2 else "(layers, samples, variables)" for d in ndims)
            raise ValueError(f"{name} must be {' or '.join(f'{d}-d' for d in ndims)} {shape}, got shape {tuple(t.shape)}")
        if not same_device(t.device, device) and t.device.type != "cpu":
            raise ValueError(f"{name} is on {t.device}, the computation on {device}: move it there first")
        out.append((t[None] if t.ndim == 2 else t).to(device=device, dtype=torch.float64))
    n = out[0].shape[1]
    if any(t.shape[1] != n for t in out):
        raise ValueError(f"{' and '.join(names)} must have the same number of samples, got {[t.shape[1] for t in out]}")
    keep = torch.ones(n, dtype=torch.bool, device=device)
    for t, name in zip(out, names):
        finite = torch.isfinite(t)
        if bool(finite.all()):
            continue
        if nan_policy == "raise":
            bad = torch.nonzero(~finite.all(dim=(0, 1))).flatten()
            raise ValueError(
                f"{name} has NaN or Inf values in {bad.numel()} variable(s) (columns "
                f"{bad[:10].tolist()}); pass nan_policy='omit' to drop those samples"
            )
        keep &= finite.all(dim=(0, 2))
    if not bool(keep.all()):
        out = [t[:, keep] for t in out]
    for t, name in zip(out, names):
        if t.shape[1] < min_samples:
            omitted = f" after omitting {int((~keep).sum())} with NaN/Inf" if not bool(keep.all()) else ""
            raise ValueError(f"{name} needs at least {min_samples} sample(s) (rows){omitted}, got {t.shape[1]}")
        if t.shape[2] < 1:
            raise ValueError(f"{name} needs at least 1 variable (column)")
    return out


def untied_or_raise(x: Any, name: str) -> None:
    """As pairmi.stats.untied_or_raise, on the device."""
    torch = _torch()
    srt = torch.sort(x, dim=1).values
    tied = torch.nonzero((srt[:, 1:] == srt[:, :-1]).any(dim=0).any(dim=0)).flatten()
    if tied.numel():
        raise ValueError(
            f"null='shared' needs variables without tied values (their null then depends on the number "
            f"of samples alone); {name} has ties in {tied.numel()} variable(s) (columns "
            f"{tied[:10].tolist()}): use null='shuffle'"
        )


# --- streaming ----------------------------------------------------------------------------------


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
    torch = _torch()
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
    torch = _torch()
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
    torch = _torch()
    layers, b = joint.shape[0], joint.shape[1] // dx
    blocks = joint.reshape(layers, dx, b, dy, b).permute(0, 1, 3, 2, 4)
    if cross:
        return blocks.reshape(layers, dx * dy, b, b)
    i, j = torch.triu_indices(dx, dx, 1, device=joint.device)
    return blocks[:, i, j]


def slots_to_joint(slots: Any, marginal_x: Any, dx: int, dy: int, cross: bool) -> Any:
    """The inverse of joint_to_slots (the blocks of a variable with itself from its marginal)."""
    torch = _torch()
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


def fit_knots(x: Any, knots: int) -> Any:
    """pairmi.copula.fit_knots on the device, with the same operations (the same values)."""
    torch = _torch()
    n = x.shape[1]
    srt = torch.sort(x.to(torch.float64), dim=1).values
    q, r = np.divmod(np.arange(1, knots + 1) * (n + 1), knots + 1)
    below = srt[:, torch.as_tensor(np.clip(q - 1, 0, n - 1), device=x.device)]
    above = srt[:, torch.as_tensor(np.clip(q, 0, n - 1), device=x.device)]
    t = torch.as_tensor(np.where((q >= 1) & (q < n), r / (knots + 1), 0.0), device=x.device)[None, :, None]
    return (below + t * (above - below)).transpose(1, 2).contiguous()


def mapped_scores(x: Any, knots: Any, scores: Any) -> Any:
    """Normal scores of x (d, n) by each variable's knots (d, K) and their scores (d, K), as np.interp
    computes them: linear between knots, the end scores beyond them."""
    torch = _torch()
    k = knots.shape[1]
    j = (torch.searchsorted(knots, x, right=True) - 1).clamp(0, k - 2)
    x0, x1 = knots.gather(1, j), knots.gather(1, j + 1)
    f0, f1 = scores.gather(1, j), scores.gather(1, j + 1)
    dxp = x1 - x0
    slope = (f1 - f0) / torch.where(dxp > 0, dxp, torch.ones_like(dxp))
    z = torch.where(dxp > 0, slope * (x - x0) + f0, f0)
    z = torch.where(x >= knots[:, -1:], scores[:, -1:], z)
    return torch.where(x < knots[:, :1], scores[:, :1], z)


def add_score_sums(totals: dict[str, Any], x: Any, y: Any | None, maps: tuple[Any, ...], block_bytes: int = 1 << 30) -> None:
    """Add the copula's sums (sum_x, sq_x, cross [, sum_y, sq_y]) of x (layers, n, dx) [and y] mapped
    by maps = (knots_x, scores_x, knots_y, scores_y): computed first, then added, so a failure leaves
    the totals unchanged."""
    torch = _torch()
    layers, n, dx = x.shape
    step = max(1, block_bytes // (8 * (dx + (0 if y is None else y.shape[2]))))
    delta = {k: torch.zeros_like(v) for k, v in totals.items()}
    for l in range(layers):
        for s0 in range(0, n, step):
            zx = mapped_scores(x[l, s0 : s0 + step].T.contiguous(), maps[0][l], maps[1][l])
            zy = zx if y is None else mapped_scores(y[l, s0 : s0 + step].T.contiguous(), maps[2][l], maps[3][l])
            delta["sum_x"][l] += zx.sum(dim=1)
            delta["sq_x"][l] += (zx * zx).sum(dim=1)
            delta["cross"][l] += zx @ zy.T
            if y is not None:
                delta["sum_y"][l] += zy.sum(dim=1)
                delta["sq_y"][l] += (zy * zy).sum(dim=1)
    for k, v in delta.items():
        totals[k] += v


def mi_of_correlations(rho: Any, scale: float = 1.0) -> Any:
    """-1/2 ln(1 - min(rho^2, 1)) * scale."""
    torch = _torch()
    return -0.5 * torch.log1p(-torch.clamp(rho * rho, max=1.0)) * scale


def reorderings(rows: Any, count: int, seed: Any, reorder: Any) -> Any:
    """Yield `count` reorderings of each row's samples of rows (d, n) on their device: the core's
    permutations (np.random.Generator.permuted of each row, seeded with `seed`) or rotations
    (pairmi.stats.Rotations), their indices drawn on the host, then a gather on the device."""
    torch = _torch()
    rng = np.random.default_rng(seed)
    d, n = rows.shape
    order = np.broadcast_to(np.arange(n), (d, n))
    for _ in range(count):
        idx = rng.permuted(order, axis=-1) if reorder is None else reorder.indices(rng, d)
        yield rows.gather(1, torch.as_tensor(idx, device=rows.device))
