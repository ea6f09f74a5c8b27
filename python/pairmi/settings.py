"""The estimators and the settings every entry point shares: their defaults, their checks, and what
a result records of them, in one place.

Every function that takes ``estimator=`` accepts a name (``'equal_width'``, ...) with the keywords
``bins``, ``k``, ``correction`` and ``noise``, or one of the objects below, which carry their own
parameters::

    pairmi.mi_matrix(X, estimator=pairmi.KSG(k=5))
    pairmi.mi_matrix(X, estimator="ksg", k=5)          # the same
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np

from . import _arrays, _threads

DEFAULT_BINS = 15  # bins per variable of the binned estimators
DEFAULT_K = 3  # KSG's neighbours, as scikit-learn's default
BINNED_ESTIMATORS = ("equal_width", "equal_frequency")
ESTIMATORS = BINNED_ESTIMATORS + ("ksg", "gaussian_copula")
CORRECTIONS = (None, "miller_madow", "shuffle")
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# Results are float64 unless a caller asks for float32 (half the memory, 7 significant digits).
DEFAULT_DTYPE = np.dtype(np.float64)
# Most permutations one call draws: p-values then reach 1e-6, and even two variables take minutes.
MAX_PERMUTATIONS = 1_000_000


def _is_int(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, np.integer))


def auto_bins(n: int) -> int:
    """Bins for n samples by Hacine-Gharbi et al.'s rule for MI estimation with rho = 0.

    ``round(sqrt(1 + sqrt(1 + 24 n)) / sqrt(2))``: A. Hacine-Gharbi, P. Ravier, R. Harba,
    T. Mohamadi, "Low bias histogram-based estimation of mutual information for feature selection",
    Pattern Recognition Letters 33(10), 2012. n = 90 gives 5 bins, n = 4096 gives 13. Clipped to
    [2, min(255, n)].
    """
    b = round(np.sqrt(1.0 + np.sqrt(1.0 + 24.0 * n)) / np.sqrt(2.0))
    return max(2, min(255, n, b))


@dataclass(frozen=True)
class Estimator:
    """An estimator with its parameters; pass one as ``estimator=`` to any pairmi function.

    Examples
    --------
    >>> import numpy as np, pairmi
    >>> X = np.random.default_rng(0).normal(size=(200, 3))
    >>> est = pairmi.KSG(k=5)
    >>> est.params()
    {'estimator': 'ksg', 'k': 5, 'noise': 0.0}
    >>> bool((pairmi.mi_matrix(X, estimator=est) == pairmi.mi_matrix(X, estimator="ksg", k=5)).all())
    True
    """

    name: ClassVar[str] = ""

    def params(self) -> dict[str, Any]:
        """What a result records of this estimator: its name and its parameters."""
        return {"estimator": self.name, **{f.name: getattr(self, f.name) for f in fields(self)}}


@dataclass(frozen=True)
class _Binned(Estimator):
    bins: int | str = DEFAULT_BINS
    correction: str | None = None

    def __post_init__(self) -> None:
        if self.bins != "auto":
            if not _is_int(self.bins):
                raise TypeError(f"bins must be an integer in [2, 255] or 'auto', got {self.bins!r}")
            if not 2 <= int(self.bins) <= 255:
                raise ValueError(f"bins must be in [2, 255], got {self.bins}")
            object.__setattr__(self, "bins", int(self.bins))
        if self.correction not in CORRECTIONS:
            raise ValueError(f"correction must be one of {CORRECTIONS}, got {self.correction!r}")


@dataclass(frozen=True)
class EqualWidth(_Binned):
    """``bins`` equal-width bins over each variable's range, as ``np.histogram2d`` bins; optional
    bias ``correction`` (``'miller_madow'`` or ``'shuffle'``)."""

    name: ClassVar[str] = "equal_width"


@dataclass(frozen=True)
class EqualFrequency(_Binned):
    """``bins`` bins with ``np.percentile`` edges; optional bias ``correction``."""

    name: ClassVar[str] = "equal_frequency"


@dataclass(frozen=True)
class KSG(Estimator):
    """Kraskov-Stögbauer-Grassberger (algorithm 1) with ``k`` neighbours, as scikit-learn computes
    it; ``noise`` > 0 breaks tied values with seeded noise of that relative scale."""

    k: int = DEFAULT_K
    noise: float = 0.0
    name: ClassVar[str] = "ksg"

    def __post_init__(self) -> None:
        if not _is_int(self.k) or self.k < 1:
            raise ValueError(f"k must be a positive integer, got {self.k!r}")
        object.__setattr__(self, "k", int(self.k))
        if isinstance(self.noise, bool) or not isinstance(self.noise, (int, float, np.number)) or not 0 <= self.noise < 1:
            raise ValueError(f"noise must be a number in [0, 1), got {self.noise!r}")
        object.__setattr__(self, "noise", float(self.noise))


@dataclass(frozen=True)
class GaussianCopula(Estimator):
    """Ranks mapped to normal scores, MI = -½ log(1 - ρ²) of their correlation."""

    name: ClassVar[str] = "gaussian_copula"


ESTIMATOR_CLASSES: dict[str, type[Estimator]] = {c.name: c for c in (EqualWidth, EqualFrequency, KSG, GaussianCopula)}


def as_estimator(
    estimator: str | Estimator,
    *,
    bins: int | str | None = None,
    k: int | None = None,
    correction: str | None = None,
    noise: float | None = None,
) -> Estimator:
    """The estimator object for a name and the keywords given with it (None: the default), or an
    object as it is (then its parameters may not be given again as keywords).

    ``bins`` and ``k`` are ignored by the estimators they do not apply to (so one set of options can
    serve several estimators); ``correction`` and ``noise`` are refused there.
    """
    given = {"bins": bins, "k": k, "correction": correction, "noise": noise}
    given = {key: v for key, v in given.items() if v is not None and not (key == "noise" and v == 0)}
    if isinstance(estimator, Estimator):
        if given:
            raise ValueError(
                f"{', '.join(given)} given as keyword(s) with the estimator object {estimator!r}: set them in the object"
            )
        return estimator
    if not isinstance(estimator, str) or estimator not in ESTIMATOR_CLASSES:
        raise ValueError(
            f"estimator must be one of {ESTIMATORS} or an estimator object (pairmi.EqualWidth(bins=15), "
            f"pairmi.KSG(k=3), ...), got {estimator!r}"
        )
    cls = ESTIMATOR_CLASSES[estimator]
    own = {f.name for f in fields(cls)}
    if "correction" in given and "correction" not in own:
        raise ValueError(f"correction={correction!r} applies to the binned estimators {BINNED_ESTIMATORS}, not {estimator!r}")
    if "noise" in given and "noise" not in own:
        raise ValueError(f"noise applies to 'ksg' (tie-breaking), not {estimator!r}")
    return cls(**{key: v for key, v in given.items() if key in own})


@dataclass(frozen=True)
class Settings:
    """Checked settings of one computation, resolved for its number of samples: the estimator
    object, the backend object that computes, and what every backend needs besides."""

    estimator: Estimator
    bins: int  # resolved ('auto' or fixed edges); 0 for the continuous estimators
    n_permutations: int
    seed: Any
    units: str
    threads: int
    dtype: np.dtype
    # Fixed edges (binned) or normal-score knots (copula) of x and of y, (layers, d, k), or None:
    # from the data (the default).
    edges: tuple[np.ndarray | None, np.ndarray | None] = (None, None)
    backend: Any = None  # a pairmi.backends object; None: the C++ core
    scale: float = field(init=False)  # nats -> units

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", _arrays.unit_scale(self.units))

    @property
    def name(self) -> str:
        """The estimator's name."""
        return self.estimator.name

    @property
    def k(self) -> int:
        """KSG's neighbours (the default for the other estimators)."""
        return getattr(self.estimator, "k", DEFAULT_K)

    @property
    def correction(self) -> str | None:
        return getattr(self.estimator, "correction", None)

    @property
    def noise(self) -> float:
        """KSG: relative scale of the seeded tie-breaking noise."""
        return getattr(self.estimator, "noise", 0.0)

    @classmethod
    def resolve(
        cls,
        n: int,
        estimator: Estimator,
        *,
        n_permutations: int = 20,
        seed: Any = 0,
        units: str = "bits",
        threads: int | None = None,
        dtype: Any = None,
        edges: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
        backend: Any = None,
    ) -> Settings:
        """Settings for n samples of an estimator object and a function's other arguments, every one
        checked."""
        if not isinstance(estimator, Estimator):
            raise TypeError(f"estimator must be an estimator object here (pairmi.as_estimator), got {estimator!r}")
        resolved_bins = 0
        if isinstance(estimator, _Binned):
            if edges[0] is not None:  # fixed edges: bins from them, and they may exceed these samples
                resolved_bins = edges[0].shape[2] - 1
            else:
                resolved_bins = auto_bins(n) if estimator.bins == "auto" else _arrays.check_bins(estimator.bins, n)
        if isinstance(estimator, KSG) and not estimator.k < n:
            raise ValueError(f"k must be an integer in [1, n_samples - 1] = [1, {n - 1}], got {estimator.k!r}")
        check_seed(seed)
        if not _is_int(n_permutations) or not 1 <= n_permutations <= MAX_PERMUTATIONS:
            raise ValueError(
                f"n_permutations must be an integer in [1, {MAX_PERMUTATIONS:,}] (p-values down to "
                f"1 / (n_permutations + 1)), got {n_permutations!r}"
            )
        return cls(
            estimator,
            resolved_bins,
            int(n_permutations),
            seed,
            units,
            _threads.resolve_threads(threads),
            check_dtype(dtype),
            edges,
            backend,
        )

    def params(self) -> dict[str, Any]:
        """What a result file records of these settings (JSON-serialisable)."""
        out: dict[str, Any] = {"estimator": self.name, "units": self.units}
        if self.name in BINNED_ESTIMATORS:
            out.update(bins=self.bins, correction=self.correction)
        if self.name == "ksg":
            out.update(k=self.k, noise=self.noise)
        if self.correction == "shuffle":
            out.update(n_permutations=self.n_permutations, seed=self.seed)
        return out


def check_seed(seed: Any) -> None:
    """A seed of numpy's generators: a non-negative integer, or None for fresh entropy."""
    if seed is not None and not _is_int(seed):
        raise TypeError(f"seed must be a non-negative integer or None, got {seed!r}")
    if seed is not None and seed < 0:
        raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")


def check_dtype(dtype: Any) -> np.dtype:
    """A result dtype: float32 or float64 (None: float64)."""
    resolved = DEFAULT_DTYPE if dtype is None else np.dtype(dtype)
    if resolved not in DTYPES:
        raise ValueError(f"dtype must be float32 or float64, got {resolved}")
    return resolved


ESTIMATOR_OPTIONS = ("estimator", "bins", "k", "correction", "noise")


def options_estimator(options: dict[str, Any]) -> Estimator:
    """The estimator object of a function's options (``estimator`` with ``bins``, ``k``, ... as
    :func:`as_estimator` takes them)."""
    return as_estimator(options.get("estimator", "equal_width"), **{key: options.get(key) for key in ESTIMATOR_OPTIONS[1:]})


def recorded(options: dict[str, Any]) -> dict[str, Any]:
    """What a result file records of a function's options: the estimator's name and its own
    parameters (an object's, or the keywords given with a name, defaults filled in), then the other
    options as given; JSON-serialisable when those are."""
    est = options_estimator(options)
    rest = {key: v for key, v in options.items() if key not in ESTIMATOR_OPTIONS}
    return {**est.params(), "units": "bits", **rest}
