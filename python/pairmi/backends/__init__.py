"""Where the estimators run: a backend object, chosen once per call by :func:`choose`.

Every backend has the same small interface: ``inputs`` (checked arrays or tensors), ``mi`` (the MI
of all pairs of every layer), ``nulls`` and ``test`` (permutations), ``to_caller`` (results in the
caller's kind of array), and ``totals`` (where a stream's counts live: ``CoreTotals`` or the
torch ``DeviceTotals``). :class:`CPU` is
the C++ core; :class:`Torch` computes on the tensors' device. The public functions translate their
``backend=`` name into one of these objects on their first lines and call only its methods.
"""

from __future__ import annotations

from typing import Any

from .cpu import CPU, CoreTotals
from .torch.inputs import BACKENDS, is_tensor, wanted


def choose(backend: str | None, *data: Any) -> Any:
    """The backend object for a ``backend=`` name: ``'cpu'``, ``'torch'``, or (None) torch when
    any of ``data`` is a tensor on an accelerator, else the C++ core."""
    if wanted(backend, *data):
        from .torch.backend import Torch

        return Torch()
    return CPU()


def totals_on(device: Any, numpy_out: bool) -> Any:
    """An accumulator's totals store: numpy (device None) or tensors on a torch device, results as
    numpy or not."""
    if device is None:
        return CoreTotals()
    from .torch.backend import Torch

    return Torch().totals_on(device, numpy_out)


def totals_like(backend: str | None, other: Any) -> Any:
    """The totals store of a fresh accumulator taking over another's state: in the other's place
    (its device) unless ``backend`` is 'cpu', else the place ``backend`` chooses."""
    if backend != "cpu" and other.device is not None:
        return totals_on(other.device, other.numpy_out)
    return choose(backend).totals(None, None)


__all__ = ["BACKENDS", "CPU", "choose", "is_tensor", "totals_like", "totals_on"]
