"""pairmi: mutual information between all pairs of variables, fast, with a C++/OpenMP core.

>>> import pairmi
>>> mi = pairmi.mi_matrix(X)                 # (n, d) -> (d, d), bits
>>> mis = pairmi.mi_layers(hidden_states)    # (L, n, d) -> (L, d, d)
"""

from __future__ import annotations

try:
    from . import _core
except ImportError as exc:  # pragma: no cover - only without a build
    raise ImportError(
        "pairmi's compiled core (pairmi._core) is missing: install the package with "
        "`pip install .` from the source tree (it needs a C++17 compiler) rather than importing "
        "python/pairmi directly."
    ) from exc

from .api import mi_layers, mi_matrix
from .compare import BiasCurve, Comparison, bias_curve, compare, gaussian_mi
from .explorer import explore
from .extract import HiddenStates, hidden_states, iter_hidden_states
from .extraction import Extraction
from .models import demo_model
from .nulls import MITest, fdr_tests, mi_test, null_mi, position_null
from .pair_list import PairAccumulator
from .settings import ESTIMATORS, KSG, EqualFrequency, EqualWidth, Estimator, GaussianCopula
from .stats import PermutationFloorWarning, fdr
from .stream import Accumulator, fit_edges
from .topk import TopK, mi_topk
from .topk_stream import StreamTopK, topk_stream

__version__: str = _core.__version__
has_openmp: bool = _core.has_openmp

__all__ = [
    "ESTIMATORS",
    "KSG",
    "Accumulator",
    "BiasCurve",
    "Comparison",
    "EqualFrequency",
    "EqualWidth",
    "Estimator",
    "Extraction",
    "GaussianCopula",
    "HiddenStates",
    "MITest",
    "PairAccumulator",
    "PermutationFloorWarning",
    "StreamTopK",
    "TopK",
    "__version__",
    "bias_curve",
    "compare",
    "demo_model",
    "explore",
    "fdr",
    "fdr_tests",
    "fit_edges",
    "gaussian_mi",
    "has_openmp",
    "hidden_states",
    "iter_hidden_states",
    "mi_layers",
    "mi_matrix",
    "mi_test",
    "mi_topk",
    "null_mi",
    "position_null",
    "topk_stream",
]
