"""Tensors in: which backend a call takes, and the checks that turn arrays and tensors into float64 tensors on one device."""

from __future__ import annotations

from typing import Any

from .base import torch_module

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
    torch = torch_module()
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

    from ... import _arrays

    torch = torch_module()
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
        _arrays.check_left(name, t.shape[1], t.shape[2], min_samples, int((~keep).sum()))
    return out


def untied_or_raise(x: Any, name: str) -> None:
    """As pairmi.stats.untied_or_raise, on the device."""
    torch = torch_module()
    srt = torch.sort(x, dim=1).values
    tied = torch.nonzero((srt[:, 1:] == srt[:, :-1]).any(dim=0).any(dim=0)).flatten()
    if tied.numel():
        raise ValueError(
            f"null='shared' needs variables without tied values (their null then depends on the number "
            f"of samples alone); {name} has ties in {tied.numel()} variable(s) (columns "
            f"{tied[:10].tolist()}): use null='shuffle'"
        )
