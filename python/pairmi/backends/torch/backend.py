"""torch as a backend: the same interface as :class:`pairmi.backends.cpu.CPU`, on the tensors'
device; results are tensors there (numpy when the caller passed numpy)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import _arrays, _dispatch, _ksg_ties
from ...settings import Estimator, Settings
from ..backend import Backend
from .base import TORCH_ESTIMATORS, torch_module, true_divide
from .binned import binned_mi, binned_mi_of_codes, codes, fit_edges
from .copula import copula_mi, mi_of_correlations, unit_scores
from .inputs import checked_tensors, is_tensor, untied_or_raise
from .ksg import ksg_mi
from .nulls import reorderings
from .totals import DeviceTotals


class Torch(Backend):
    """The estimators as torch operations on the tensors' device."""

    name = "torch"

    # --- inputs -----------------------------------------------------------------------------------

    def as_array(self, data: Any, name: str) -> Any:
        return data if is_tensor(data) else _arrays.to_numpy(data, name)

    def inputs(self, arrays: list[Any], names: list[str], ndim: int, nan_policy: str, dims: Any = None) -> list[Any]:
        """Checked float64 tensors (layers, n, d) on the first tensor's device (the CPU for numpy)."""
        picked = [a if dims is None else a[:, :, dims] for a in arrays]
        return checked_tensors(picked, names, (ndim,), nan_policy)

    def fixed_edges(self, est: Estimator, x_shape: tuple, y_shape: tuple | None, edges: Any, edges_y: Any) -> tuple[Any, Any]:
        if est.name in ("gaussian_copula", "ksg") and (edges is not None or edges_y is not None):
            raise ValueError(f"the torch backend's {est.name} takes no edges: use backend='cpu'")
        return _dispatch.fixed_edges(est.name, tuple(x_shape), None if y_shape is None else tuple(y_shape), edges, edges_y)

    def check_memory(self, nbytes: int, what: str, max_bytes: int | None, advice: str) -> None:
        """Nothing: the host's memory is not the device's; an allocation that fails there says so."""

    def layered_out(self, out: Any, shape: tuple[int, int]) -> Any:
        return out  # refused by mi()

    def to_caller(self, values: Any, like: Any) -> Any:
        """values as numpy when the caller's data were numpy, else the tensor."""
        return values if is_tensor(like) else values.cpu().numpy()

    # --- the MI of all pairs ----------------------------------------------------------------------

    def mi(self, x: Any, y: Any, s: Settings, progress: Any, out: Any, max_bytes: Any, name: str) -> Any:
        """MI (layers, dx, dy) of x against itself or y, a float64-accumulated tensor in s.dtype."""
        torch = torch_module()
        if s.name not in TORCH_ESTIMATORS:
            raise ValueError(
                f"the torch backend computes {TORCH_ESTIMATORS}; {s.name!r} is not there yet: "
                "use backend='cpu' (a device tensor is then copied to the host)"
            )
        if s.correction not in (None, "miller_madow"):
            raise ValueError(f"the torch backend takes correction=None or 'miller_madow' (binned), not {s.correction!r}")
        if out is not None or s.noise:
            raise ValueError("the torch backend takes neither out= nor noise=: use backend='cpu'")
        if s.name == "gaussian_copula":
            result = copula_mi(x, y, s.scale)
        elif s.name == "ksg":
            # Ties as the core treats them (docs/gpu.md): the same warning, and values above what tied
            # data allow clipped to min(H(X), H(Y)), computed on host copies (small beside KSG's n^2 work).
            xh, yh = x.cpu().numpy(), None if y is None else y.cpu().numpy()
            _ksg_ties.warn_heavy_ties(xh, yh, stacklevel=4)
            clipped = ksg_mi(x, y, s.k, s.scale).cpu().numpy()
            _ksg_ties.clip_tied(xh, yh, s.scale, clipped)
            result = torch.from_numpy(clipped).to(x.device)
        else:
            ex, ey = (None if e is None else torch.tensor(e, device=x.device) for e in s.edges)  # copies
            result = binned_mi(x, y, s.name, s.bins, s.scale, s.correction == "miller_madow", (ex, ey))
        return result.to(torch.float32 if s.dtype == np.float32 else torch.float64)

    # --- permutations -----------------------------------------------------------------------------

    def nulls(self, x: Any, y: Any, s: Settings) -> Any:
        """As CPU.nulls: codes on the device, each pass a gather of them by the core's permutations."""
        torch = torch_module()
        cx = codes(x, fit_edges(x, s.name, s.bins))
        cy = None if y is None else codes(y, fit_edges(y, s.name, s.bins))
        target = cx if cy is None else cy
        nulls = torch.empty(
            (s.n_permutations, cx.shape[1], target.shape[1]),
            dtype=torch.float32 if s.dtype == np.float32 else torch.float64,
            device=x.device,
        )
        for k, moved in enumerate(reorderings(target[0], s.n_permutations, s.seed, None)):
            a, b = (moved[None], None) if cy is None else (cx, moved[None])
            nulls[k] = binned_mi_of_codes(a, b, s.bins, s.scale)[0]
        return nulls

    def test(
        self, x: Any, y: Any, s: Settings, reorder: Any, shared: np.ndarray | None, kept: np.ndarray
    ) -> tuple[Any, Any, Any, Any]:
        """As CPU.test: observed MI, reorderings and statistics on the device."""
        torch = torch_module()
        common = y is None and getattr(reorder, "common", False)  # rows in place against moved columns
        if s.name == "gaussian_copula":
            zx = unit_scores(x[0].T)
            zy = zx if y is None else unit_scores(y[0].T)

            def mi(a: Any, b: Any) -> Any:
                out = mi_of_correlations(a @ b.T, s.scale)
                if y is None:
                    out.fill_diagonal_(float("inf"))
                return out

            observed = mi(zx, zy)
            moves = reorderings(zy, s.n_permutations, s.seed, reorder)
            if common:
                nulls = (_mirrored_upper(mi(zx, z), float("inf")) for z in moves)
            else:
                nulls = (mi(z, z) if y is None else mi(zx, z) for z in moves)
        else:
            cx = codes(x, fit_edges(x, s.name, s.bins))
            cy = None if y is None else codes(y, fit_edges(y, s.name, s.bins))
            observed = binned_mi_of_codes(cx, cy, s.bins, s.scale)[0]
            moves = reorderings((cx if cy is None else cy)[0], s.n_permutations, s.seed, reorder)
            if common:
                diagonal = observed.diagonal().clone()
                nulls = (_mirrored_upper(binned_mi_of_codes(cx, m[None], s.bins, s.scale)[0], diagonal) for m in moves)
            else:
                nulls = (
                    binned_mi_of_codes(m[None], None, s.bins, s.scale)[0]
                    if cy is None
                    else binned_mi_of_codes(cx, m[None], s.bins, s.scale)[0]
                    for m in moves
                )
        tol = 1e-12 * max(1.0, s.scale)  # as the core's test
        moments = None
        if shared is not None:
            draws = torch.sort(torch.as_tensor(shared, device=x.device)).values
            exceed = draws.numel() - torch.searchsorted(draws, (observed - tol).contiguous(), right=False)
            p = true_divide(1.0 + exceed.to(torch.float64), 1.0 + draws.numel())
            total = torch.full_like(observed, float(draws.mean()))
        else:
            threshold = observed - tol
            total = torch.zeros_like(observed)
            sumsq = torch.zeros_like(observed)
            index = torch.as_tensor(kept, device=x.device)
            draws = torch.empty((s.n_permutations, kept.size), dtype=torch.float32, device=x.device)
            exceed = torch.zeros(observed.shape, dtype=torch.int64, device=x.device)
            for k, draw in enumerate(nulls):
                total += draw
                sumsq += draw * draw
                draws[k] = draw.reshape(-1)[index]
                exceed += draw >= threshold
            p = true_divide(exceed.to(torch.float64) + 1.0, 1.0 + s.n_permutations)
            total = true_divide(total, s.n_permutations)
            moments = (sumsq.cpu().numpy(), draws.cpu().numpy())
        if y is None:
            p.fill_diagonal_(float("nan"))
        return observed, total, p, moments

    def untied_or_raise(self, x: Any, name: str) -> None:
        untied_or_raise(x, name)

    def totals(self, chunk: Any, y: Any) -> DeviceTotals:
        """A stream's totals store on the chunks' device (the CPU for numpy chunks), results as
        numpy when the chunks are numpy."""
        tensors = [v for v in (chunk, y) if is_tensor(v)]
        return self.totals_on(tensors[0].device if tensors else "cpu", numpy_out=not is_tensor(chunk))

    def totals_on(self, device: Any, numpy_out: bool) -> DeviceTotals:
        return DeviceTotals(torch_module().device(device), numpy_out)


def _mirrored_upper(values: Any, diagonal: Any) -> Any:
    """As pairmi.stats.mirrored_upper, on the device."""
    torch = torch_module()
    out = torch.triu(values, 1)
    out = out + out.T
    if isinstance(diagonal, float):
        out.fill_diagonal_(diagonal)
    else:
        out.diagonal().copy_(diagonal)
    return out
