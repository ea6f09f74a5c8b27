from collections.abc import Callable

import numpy as np
import numpy.typing as npt

has_openmp: bool
__version__: str

def equal_width_edges(x: npt.NDArray[np.floating], bins: int, threads: int) -> npt.NDArray[np.float64]: ...
def equal_frequency_edges(x: npt.NDArray[np.floating], bins: int, threads: int) -> npt.NDArray[np.float64]: ...
def bin_codes(x: npt.NDArray[np.floating], edges: npt.NDArray[np.float64], threads: int) -> npt.NDArray[np.uint8]: ...
def entropies(codes: npt.NDArray[np.uint8], bins: int, threads: int, miller_madow: bool = False) -> npt.NDArray[np.float64]: ...
def binned_mi(
    codes_x: npt.NDArray[np.uint8],
    entropy_x: npt.NDArray[np.float64],
    codes_y: npt.NDArray[np.uint8] | None,
    entropy_y: npt.NDArray[np.float64] | None,
    bins: int,
    scale: float,
    out: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    threads: int,
    progress: Callable[[int, int], None] | None = None,
    miller_madow: bool = False,
) -> None: ...
def ksg_mi(
    x: npt.NDArray[np.floating],
    y: npt.NDArray[np.floating] | None,
    k: int,
    scale: float,
    out: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    threads: int,
    progress: Callable[[int, int], None] | None = None,
) -> None: ...
def ksg_worker_bytes(samples: int, k: int) -> int: ...
def ksg_sorted_bytes(cols: int, samples: int) -> int: ...
def binned_plan_bytes(layers: int, samples: int, x_cols: int, y_cols: int, bins: int) -> int: ...
def add_pair_counts(
    codes_x: npt.NDArray[np.uint8],
    codes_y: npt.NDArray[np.uint8] | None,
    bins: int,
    counts: npt.NDArray[np.uint64],
    marginal_x: npt.NDArray[np.uint64],
    marginal_y: npt.NDArray[np.uint64] | None,
    threads: int,
) -> None: ...
def mi_from_counts(
    counts: npt.NDArray[np.uint64],
    marginal_x: npt.NDArray[np.uint64],
    marginal_y: npt.NDArray[np.uint64] | None,
    bins: int,
    n: int,
    miller_madow: bool,
    scale: float,
    out: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    threads: int,
) -> None: ...
def add_pair_list_counts(
    codes: npt.NDArray[np.uint8],
    first: npt.NDArray[np.uint32],
    second: npt.NDArray[np.uint32],
    bins: int,
    counts: npt.NDArray[np.uint64],
    threads: int,
) -> None: ...
def mi_from_pair_list_counts(
    counts: npt.NDArray[np.uint64],
    bins: int,
    n: int,
    miller_madow: bool,
    scale: float,
    out: npt.NDArray[np.float64],
    threads: int,
) -> None: ...
