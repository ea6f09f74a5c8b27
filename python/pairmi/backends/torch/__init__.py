"""The estimators on torch tensors, on whatever device they live.

Binned joint counts are a matrix product of one-hot codes, counts = O_x^T O_y (O: samples x
(variables * bins)), exact in integers (int8 products on accelerators, float64 on the CPU); with
few samples each sample's cell is counted instead. Codes follow the C++ core's edges and rules
(np.histogram2d's), so results equal the core's within rounding. The copula is one product of
normal scores; KSG is brute force over tiles of pairs. Streaming adds the same products to int64
totals. Everything stays on the tensors' device; measurements in docs/gpu.md.

One module a part: ``base``, ``inputs``, ``counts``, ``binned``, ``stream``, ``copula``, ``ksg``, ``nulls``.
"""

from __future__ import annotations

from . import base, binned, copula, counts, inputs, ksg, nulls, stream
from .base import TORCH_ESTIMATORS, out_of_memory, round_up, shrinking_on_oom, torch_module, true_divide
from .binned import binned_mi, binned_mi_of_codes, codes, equal_frequency_edges, equal_width_edges, fit_edges
from .copula import add_score_sums, average_ranks, copula_mi, fit_knots, mapped_scores, mi_of_correlations, unit_scores
from .counts import (
    FLOAT32_EXACT,
    ONE_HOT_BYTES,
    PER_SAMPLE_BYTES,
    PER_SAMPLE_MAX,
    TABLE_COUNTS,
    cell_log_sums,
    entropies,
    entropy_of_sums,
    int8_counts,
    joint_counts,
    mi_from_joint,
    one_hot_rows,
    xlogx_sums,
)
from .inputs import BACKENDS, checked_tensors, is_tensor, same_device, untied_or_raise, wanted
from .ksg import KSG_DISTANCE_CACHE_BYTES, KSG_TILE_BYTES, KSG_TILE_BYTES_DEVICE, ksg_mi, ksg_scaled, kth_smallest
from .nulls import reorderings
from .stream import add_pair_counts, joint_to_slots, mi_of_joint_totals, slots_to_joint

__all__ = [
    "BACKENDS",
    "FLOAT32_EXACT",
    "KSG_DISTANCE_CACHE_BYTES",
    "KSG_TILE_BYTES",
    "KSG_TILE_BYTES_DEVICE",
    "ONE_HOT_BYTES",
    "PER_SAMPLE_BYTES",
    "PER_SAMPLE_MAX",
    "TABLE_COUNTS",
    "TORCH_ESTIMATORS",
    "add_pair_counts",
    "add_score_sums",
    "annotations",
    "average_ranks",
    "base",
    "binned",
    "binned_mi",
    "binned_mi_of_codes",
    "cell_log_sums",
    "checked_tensors",
    "codes",
    "copula",
    "copula_mi",
    "counts",
    "entropies",
    "entropy_of_sums",
    "equal_frequency_edges",
    "equal_width_edges",
    "fit_edges",
    "fit_knots",
    "inputs",
    "int8_counts",
    "is_tensor",
    "joint_counts",
    "joint_to_slots",
    "ksg",
    "ksg_mi",
    "ksg_scaled",
    "kth_smallest",
    "mapped_scores",
    "mi_from_joint",
    "mi_of_correlations",
    "mi_of_joint_totals",
    "nulls",
    "one_hot_rows",
    "out_of_memory",
    "reorderings",
    "round_up",
    "same_device",
    "shrinking_on_oom",
    "slots_to_joint",
    "stream",
    "torch_module",
    "true_divide",
    "unit_scores",
    "untied_or_raise",
    "wanted",
    "xlogx_sums",
]
