"""An accumulator's totals as tensors on a device, counted by torch: the interface of
:class:`pairmi.backends.cpu.CoreTotals`, so a corpus run on a GPU never moves activations to the host."""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import _arrays
from ...copula import knot_scores
from . import stream as torch_stream
from .base import out_of_memory, torch_module
from .binned import codes, fit_edges
from .copula import add_score_sums, fit_knots, mi_of_correlations
from .inputs import checked_tensors, is_tensor, same_device
from .stream import joint_to_slots, mi_of_joint_totals, slots_to_joint


class DeviceTotals:
    """Totals on ``device``; results as numpy when ``numpy_out`` (the chunks were numpy)."""

    def __init__(self, device: Any, numpy_out: bool) -> None:
        self.device = device
        self.numpy_out = numpy_out
        self._maps: tuple[Any, ...] | None = None  # the edges (or knots and scores) on the device, for the edges they belong to

    def same_place(self, other: Any) -> bool:
        return other.device is not None and same_device(self.device, other.device)

    def chunk(self, chunk: Any, y: Any, nan_policy: str, check: Any, fitting: bool) -> tuple[Any, Any, bool, str]:
        """As CoreTotals.chunk: float64 tensors on the device."""
        given = [chunk] if y is None else [chunk, y]
        names = ["chunk", "y"][: len(given)]
        ndims = [v.ndim if is_tensor(v) else np.ndim(v) for v in given]
        dtype = _dtype_name(chunk)
        tensors = checked_tensors(given, names, (2, 3), nan_policy, self.device, min_samples=1)
        x, y_t = tensors[0], (tensors[1] if y is not None else None)
        squeeze = ndims[0] == 2
        if y_t is not None and (ndims[1] != ndims[0] or y_t.shape[0] != x.shape[0]):
            raise ValueError(f"y must have the chunk's layers and samples: {tuple(x.shape[:2])} != {tuple(y_t.shape[:2])}")
        check(tuple(x.shape), dtype, None if y_t is None else tuple(y_t.shape), squeeze)
        if fitting:
            torch = torch_module()
            for arr, name in zip(tensors, names):
                span = arr.amax(dim=1) - arr.amin(dim=1)
                bad = torch.nonzero(~torch.isfinite(span).all(dim=0)).flatten()
                if bad.numel():
                    raise ValueError(
                        f"{name} has variables whose range overflows float64 (columns {bad[:10].tolist()}): rescale them"
                    )
        return x, y_t, squeeze, dtype

    def fit(self, arr: Any, estimator: str, bins: int, threads: int | None) -> np.ndarray:
        """Edges (knots) fitted on a first chunk on its device, as pairmi.fit_edges fits them."""
        if estimator == "gaussian_copula":
            return fit_knots(arr, bins).cpu().numpy()
        return fit_edges(arr, estimator, bins).cpu().numpy()

    def zeros(self, shapes: dict[str, tuple[tuple[int, ...], Any]], what: str) -> dict[str, Any]:
        """Zero totals for the canonical shapes: binned joint counts as one (layers, dx * b, dy * b)
        matrix a layer (the one-hot products' shape), every pair both ways."""
        torch = torch_module()
        out_shapes: dict[str, tuple[int, ...]] = {}
        for name, (shape, _) in shapes.items():
            if name != "counts":
                out_shapes[name] = shape
        if "counts" in shapes:
            mx = shapes["marginal_x"][0]
            my = shapes.get("marginal_y", shapes["marginal_x"])[0]
            out_shapes = {"joint": (mx[0], mx[1] * mx[2], my[1] * my[2]), **out_shapes}
        dtype = torch.int64 if "counts" in shapes else torch.float64
        try:
            return {k: torch.zeros(v, dtype=dtype, device=self.device) for k, v in out_shapes.items()}
        except out_of_memory():
            nbytes = sum(8 * int(np.prod(v)) for v in out_shapes.values())
            raise MemoryError(
                f"{what} need {nbytes / 2**30:.1f} GiB on {self.device}: stream fewer variables per accumulator"
            ) from None

    def _device_maps(self, estimator: str, edges: np.ndarray, edges_y: np.ndarray | None) -> tuple[Any, ...]:
        """The edges on the device (binned), or the knots and their scores (copula), once per edges."""
        torch = torch_module()
        if self._maps is None or self._maps[0] is not edges:

            def put(a: np.ndarray | None) -> Any:
                return None if a is None else torch.tensor(a, dtype=torch.float64, device=self.device)  # a copy

            maps: tuple[Any, ...]
            if estimator == "gaussian_copula":
                maps = (put(edges), put(knot_scores(edges)), put(edges_y), None if edges_y is None else put(knot_scores(edges_y)))
            else:
                maps = (put(edges), put(edges_y))
            self._maps = (edges, maps)
        return self._maps[1]

    def add(
        self, totals: dict[str, Any], x: Any, y: Any, edges: np.ndarray, edges_y: Any, estimator: str, threads: int | None
    ) -> None:
        """Add a checked chunk to totals, all layers or none (those added are taken out again on failure)."""
        maps = self._device_maps(estimator, edges, edges_y)
        if estimator == "gaussian_copula":
            add_score_sums(totals, x, y, maps)
            return
        bins = edges.shape[2] - 1
        cx = codes(x, maps[0])
        cy = None if y is None else codes(y, maps[1])
        done = []
        try:
            for l in range(x.shape[0]):
                args = (
                    totals["joint"][l],
                    totals["marginal_x"][l],
                    totals["marginal_y"][l] if y is not None else None,
                    cx[l],
                    None if cy is None else cy[l],
                    bins,
                )
                torch_stream.add_pair_counts(*args)
                done.append(args)
        except BaseException:
            for args in done:  # the layers already added, taken out again: the state as before
                torch_stream.add_pair_counts(*args, sign=-1)
            raise

    def mi(
        self,
        totals: dict[str, Any],
        n: int,
        estimator: str,
        correction: str | None,
        scale: float,
        threads: int | None,
        shape: tuple[int, int, int],
        dtype: np.dtype,
        bins: int,
    ) -> Any:
        """MI (layers, dx, dy) in nats times scale, float64, on the device (output() sets the dtype)."""
        torch = torch_module()
        t = totals
        if estimator == "gaussian_copula":
            mean_x = t["sum_x"] / n
            var_x = torch.clamp(t["sq_x"] / n - mean_x**2, min=0.0)
            if "sum_y" in t:
                mean_y = t["sum_y"] / n
                var_y = torch.clamp(t["sq_y"] / n - mean_y**2, min=0.0)
            else:
                mean_y, var_y = mean_x, var_x
            cov = t["cross"] / n - mean_x[:, :, None] * mean_y[:, None, :]
            denom = torch.sqrt(var_x[:, :, None] * var_y[:, None, :])
            rho = torch.where(denom > 0, cov / torch.where(denom > 0, denom, torch.ones_like(denom)), torch.zeros_like(cov))
            mi = mi_of_correlations(rho, scale)
            if "sum_y" not in t:
                idx = torch.arange(mi.shape[-1], device=mi.device)
                mi[:, idx, idx] = float("inf")
            return mi
        mm = correction == "miller_madow"
        layers = [
            mi_of_joint_totals(t["joint"][l], t["marginal_x"][l], t["marginal_y"][l] if "marginal_y" in t else None, n, mm)
            for l in range(t["joint"].shape[0])
        ]
        return torch.stack(layers) * scale

    def canonical(self, totals: dict[str, Any], estimator: str, layout: dict[str, Any]) -> dict[str, np.ndarray]:
        """The totals as the C++ core keeps them (numpy; binned: uint64 pair slots)."""
        if estimator == "gaussian_copula":
            return {k: v.cpu().numpy() for k, v in totals.items()}
        out = {k: v.cpu().numpy().view(np.uint64) for k, v in totals.items() if k != "joint"}
        dy = layout["dy"] if layout["cross"] else layout["dx"]
        out["counts"] = joint_to_slots(totals["joint"], layout["dx"], dy, layout["cross"]).cpu().numpy().view(np.uint64)
        return out

    def from_canonical(self, totals: dict[str, np.ndarray], estimator: str, layout: dict[str, Any]) -> dict[str, Any]:
        """Canonical totals (see canonical) on this device."""
        torch = torch_module()

        def put(a: np.ndarray) -> Any:
            return torch.from_numpy(np.ascontiguousarray(a.view(np.int64) if a.dtype == np.uint64 else a)).to(self.device)

        if estimator == "gaussian_copula":
            return {k: put(v) for k, v in totals.items()}
        out = {k: put(v) for k, v in totals.items() if k != "counts"}
        dy = layout["dy"] if layout["cross"] else layout["dx"]
        out["joint"] = slots_to_joint(put(totals["counts"]), out["marginal_x"], layout["dx"], dy, layout["cross"])
        return out

    def output(self, values: Any, dtype: np.dtype, squeeze: bool) -> Any:
        """values (layers, dx, dy) in dtype, squeezed as the chunks were: numpy, or a tensor here."""
        if self.numpy_out:
            out = _arrays.host(values).astype(dtype, copy=False)
            return out[0] if squeeze else out
        torch = torch_module()
        out = torch.as_tensor(values, device=self.device).to(torch.float32 if dtype == np.float32 else torch.float64)
        return out[0] if squeeze else out


def _dtype_name(data: Any) -> str:
    """The dtype of an array or tensor, named as numpy names it."""
    if is_tensor(data):
        return str(data.dtype).removeprefix("torch.")
    return _arrays.to_numpy(data, "chunk").dtype.name
