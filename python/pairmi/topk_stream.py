"""Every unit's strongest partners among 10^4-10^5 units of a stream, with exact binned MI.

Dense counts of every pair do not fit at that scale (36,864 units at 15 bins: 1.2 TB), so the
stream is read twice. Pass 1 screens all pairs with sums that fit in d^2 memory
(:class:`pairmi.screen.Screen`); each unit keeps its ``candidates`` best-screened partners. Pass 2
counts those pairs exactly (:class:`pairmi.PairAccumulator`), and each unit's ``n_partners``
strongest are ranked by their exact MI over all samples.
"""

from __future__ import annotations

import inspect
import itertools
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import _arrays, stats
from .edges import fit_edges
from .pair_list import PairAccumulator
from .screen import Screen
from .screen_sample import TokenSample, best_pair_keys, sample_candidates
from .settings import BINNED_ESTIMATORS, DEFAULT_BINS
from .topk_result import StreamTopK
from .topk_state import read_state, write_state


def topk_stream(
    source: Callable[..., Iterator[Any]],
    n_partners: int = 16,
    *,
    estimator: str = "equal_frequency",
    bins: int | None = None,
    correction: str | None = None,
    units: str = "bits",
    candidates: int | None = None,
    calibration: int = 10_000,
    layers: Sequence[int] | None = None,
    across_layers: bool = True,
    screen_samples: int | None = None,
    sample_size: int = 10_000,
    threads: int | None = None,
    nan_policy: str = "raise",
    progress: Callable[[int, int | None], None] | None = None,
    state_path: str | os.PathLike | None = None,
    save_every: float = 300.0,
    resume: bool = False,
    context: dict[str, Any] | None = None,
) -> StreamTopK:
    """Each unit's ``n_partners`` strongest partners by exact binned MI, over a stream read twice.

    Parameters
    ----------
    source : callable
        ``source()`` returns a fresh iterator of chunks (n, d) (numpy arrays or tensors), the same
        samples each time: it is read twice. If it takes a ``skip`` keyword, a resumed run asks it
        to start after that many chunks (and tells it, if it takes ``samples``, how many samples
        they held); otherwise they are read and dropped.
    n_partners : int
        Partners per unit, 1 <= n_partners < d.
    estimator : {'equal_frequency', 'equal_width'}
        The binned estimator of the exact MI (equal-frequency by default: a language model's
        outliers crowd equal-width bins). Edges are fitted on the first ``calibration`` samples.
    bins : int, optional
        Bins per unit (default 15).
    correction : {None, 'miller_madow'}
    units : {'bits', 'nats'}
    candidates : int, optional
        Partners per unit counted exactly, chosen by the screen (default ``max(4 * n_partners,
        n_partners + 32)``). Memory of pass 2: about ``d * candidates * bins**2 * 8`` bytes.
    calibration : int
        Samples that fix the edges, the screen's normal-score maps and the degenerate units.
    layers : sequence of int, optional
        Units per layer, in order, when the columns are several layers side by side: degenerate
        units are judged against their own layer's typical spread.
    across_layers : bool
        Partners in any layer (default), or only in the unit's own layer (with ``layers``).
    screen_samples : int, optional
        Screen on the stream's first ``screen_samples`` samples only (at least ``calibration``),
        then count the chosen pairs over all of it: the screen ranks candidates, and 10^6 samples
        rank correlations to about 0.001, while its cost grows with every sample (d^2 each). The
        source is then read only that far the first time. Default: the whole stream.
    sample_size : int
        A uniform sample of this many tokens of pass 1 (reservoir sampling, seeded) whose exact
        binned MI of every pair, at the run's edges, nominates each unit's ``candidates`` best
        too (:mod:`pairmi.screen_sample`): binned MI of real units often ranks pairs otherwise
        than correlations do. Costs d^2 / 2 x sample_size joint-count increments; 0: the
        correlations alone.
    threads, nan_policy
        As in :class:`pairmi.Accumulator`.
    progress : callable(samples_done, total), optional
        After each chunk; samples of both passes count, ``total`` is None in pass 1.
    state_path, save_every, resume
        Save the run's state there every ``save_every`` seconds and on Ctrl-C; ``resume=True``
        continues from it (with the same settings and source).
    context : dict, optional
        JSON settings of the source (a model, a corpus), recorded in the state: a resume with
        other ones is refused.

    Returns
    -------
    StreamTopK
        Each pair's MI equals :func:`pairmi.mi_matrix` of the same samples with ``edges=result.edges``
        within 1e-12 bits.

    Examples
    --------
    >>> import numpy as np, pairmi
    >>> x = np.random.default_rng(0).normal(size=(4000, 40))
    >>> x[:, 3] = x[:, 9] ** 2
    >>> top = pairmi.topk_stream(lambda: iter(np.array_split(x, 4)), n_partners=2, calibration=1000)
    >>> int(top.indices[3, 0])
    9
    """
    if not callable(source):
        raise TypeError("source must be a callable that returns a fresh iterator of chunks (it is read twice)")
    _arrays.check_progress(progress)
    settings = topk_settings(
        n_partners,
        estimator,
        bins,
        correction,
        units,
        candidates,
        calibration,
        layers,
        across_layers,
        screen_samples,
        sample_size,
    )
    settings.update(nan_policy=nan_policy, context=context)
    run = TopKRun(source, settings, threads, progress, state_path, save_every)
    if resume and state_path is not None and Path(state_path).is_file():
        run.load(Path(state_path))
    try:
        return run.finish()
    except KeyboardInterrupt:
        if not run.busy:  # stopped between chunks: the state is whole
            run.save(force=True)
        raise


def topk_settings(
    n_partners: Any,
    estimator: str,
    bins: Any,
    correction: Any,
    units: str,
    candidates: Any,
    calibration: Any,
    layers: Any,
    across_layers: bool,
    screen_samples: Any = None,
    sample_size: Any = 10_000,
) -> dict[str, Any]:
    """A top-k run's settings, checked (as :func:`topk_stream` takes them): what a state records."""
    if estimator not in BINNED_ESTIMATORS:
        raise ValueError(f"topk_stream counts the binned estimators {BINNED_ESTIMATORS}, not {estimator!r}")
    for name, value, low in (("n_partners", n_partners, 1), ("calibration", calibration, 2)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    m = max(4 * n_partners, n_partners + 32) if candidates is None else candidates
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < n_partners:
        raise ValueError(f"candidates must be an integer >= n_partners = {n_partners}, got {candidates!r}")
    if screen_samples is not None and (
        isinstance(screen_samples, bool) or not isinstance(screen_samples, (int, np.integer)) or screen_samples < calibration
    ):
        raise ValueError(f"screen_samples must be an integer >= calibration = {calibration}, or None, got {screen_samples!r}")
    if isinstance(sample_size, bool) or not isinstance(sample_size, (int, np.integer)) or sample_size < 0:
        raise ValueError(f"sample_size must be an integer >= 0, got {sample_size!r}")
    settings = {
        "n_partners": int(n_partners),
        "estimator": estimator,
        "bins": DEFAULT_BINS if bins is None else bins,
        "correction": correction,
        "units": units,
        "candidates": int(m),
        "calibration": int(calibration),
        "layers": None if layers is None else [int(v) for v in layers],
        "across_layers": bool(across_layers),
        "screen_samples": None if screen_samples is None else int(screen_samples),
        "sample_size": int(sample_size),
        "nan_policy": "raise",
        "context": None,
    }
    return settings


class TopKRun:
    """The two passes, the state a resumed run continues from, and the result; the Dask route
    (:mod:`pairmi.dask.topk_run`) drives its steps (calibrate, choose, result) with shards' sums."""

    def __init__(self, source: Any, settings: dict[str, Any], threads: Any, progress: Any, path: Any, every: float) -> None:
        self.source, self.settings, self.threads, self.progress = source, settings, threads, progress
        self.path, self.every = (None if path is None else Path(path)), every
        self.stage, self.chunks = "screen", 0  # stage and the chunks of its pass consumed
        self.screen: Screen | None = None  # pass 1's sums, freed once the pairs are chosen
        self.screened = 0  # samples of pass 1
        self.pair_screen: np.ndarray | None = None  # the chosen pairs' screen scores
        self.sample: TokenSample | None = TokenSample(settings["sample_size"])  # pass 1's token sample
        self.edges: np.ndarray | None = None
        self.degenerate: np.ndarray | None = None
        self.acc: PairAccumulator | None = None
        self.dropped: tuple[np.ndarray, np.ndarray] | None = None
        self.seconds = {"screen": 0.0, "select": 0.0, "count": 0.0, "source": 0.0}
        self.last_save = time.monotonic()
        self.busy = False  # inside a chunk's update: a state saved now could be half updated

    # --- passes ---------------------------------------------------------------------------------

    def finish(self) -> StreamTopK:
        if self.stage == "screen":
            self._screen_pass()
            t0 = time.perf_counter()
            self.choose()
            self.seconds["select"] += time.perf_counter() - t0
            self.stage, self.chunks = "count", 0
            self.save(force=True)
        self._count_pass()
        return self.result()

    def _chunks(self) -> Iterator[np.ndarray]:
        """The source's chunks after those already consumed, checked: (n, d), finite (or omitted)."""
        params = inspect.signature(self.source).parameters
        takes_skip = "skip" in params
        done = {"samples": self._done()} if "samples" in params else {}
        it = self.source(skip=self.chunks, **done) if takes_skip and self.chunks else self.source()
        skip = 0 if takes_skip else self.chunks
        while True:
            t0 = time.perf_counter()
            chunk = next(it, None)
            self.seconds["source"] += time.perf_counter() - t0
            if chunk is None:
                return
            if skip:
                skip -= 1
                continue
            x = _arrays.to_numpy(chunk, "chunk")
            if x.ndim != 2 or x.shape[0] == 0:
                raise ValueError(f"each chunk must be 2-d (samples, units) with samples, got shape {x.shape}")
            if self.edges is not None and x.shape[1] != self.edges.shape[0]:
                raise ValueError(f"a chunk has {x.shape[1]} units; the first had {self.edges.shape[0]}")
            yield _arrays.apply_nan_policy([np.ascontiguousarray(x)], ["chunk"], self.settings["nan_policy"], 1)[0]

    def _done(self) -> int:
        """Samples of the current pass already consumed."""
        if self.stage == "screen":
            return 0 if self.screen is None else self.screen.n_samples
        return 0 if self.acc is None else self.acc.n_samples

    def _screen_room(self) -> int | None:
        """Samples the screen still takes (None: all the stream's)."""
        cap = self.settings["screen_samples"]
        return None if cap is None or self.screen is None else max(0, cap - self.screen.n_samples)

    def _screen_pass(self) -> None:
        pending: list[np.ndarray] = []
        for x in self._chunks():
            t0 = time.perf_counter()
            self.busy = True
            if self.screen is None:
                pending.append(x)
                if sum(len(p) for p in pending) >= self.settings["calibration"]:
                    self.calibrate(pending)
                    pending = []
            else:
                x = x[: self._screen_room()]
                self.screen.update(x)
                assert self.sample is not None
                self.sample.update(x)
            self.chunks += 1
            self.busy = False
            self.seconds["screen"] += time.perf_counter() - t0
            self._report(self.screen.n_samples if self.screen else sum(len(p) for p in pending), None)
            if self.screen is not None and self._screen_room() == 0:
                break  # the screen has its samples: pass 2 counts them all
            self.save()
        if self.screen is None:
            if sum(len(p) for p in pending) < 2:
                raise ValueError("the source gave fewer than 2 samples: MI needs at least 2")
            self.calibrate(pending)

    def calibrate(self, chunks: list[np.ndarray], take_in: bool = True) -> None:
        """Edges, normal-score maps and degenerate units from the calibration chunks, which the
        screen then takes in (unless ``take_in`` is False: their tokens come again in a shard)."""
        sample = np.concatenate(chunks)
        d = sample.shape[1]
        if not self.settings["n_partners"] < d:
            raise ValueError(f"n_partners must be below the number of units ({d}), got {self.settings['n_partners']}")
        layers = self.settings["layers"] or [d]
        if sum(layers) != d or min(layers) < 1:
            raise ValueError(f"layers must be positive unit counts summing to the chunks' {d} units, got {layers}")
        self.edges = fit_edges(sample, self.settings["estimator"], self.settings["bins"], threads=self.threads)
        bounds = np.cumsum([0, *layers])
        self.degenerate = np.concatenate([stats.degenerate_units(sample[None, :, a:b])[0] for a, b in itertools.pairwise(bounds)])
        self.screen = Screen.fitted(sample)
        assert self.sample is not None
        if take_in:
            self.screen.update(sample)
        self.sample.update(sample)  # on Dask (take_in False) the calibration tokens are the sample

    def choose(self) -> None:
        """The pairs to count: each unit's best-screened candidates (both ways, once each); and
        each unit's best partner left out."""
        assert self.screen is not None and self.degenerate is not None
        d, m = self.screen.d, self.settings["candidates"]
        keys = []
        for rows in self.screen.row_blocks():
            keys.append(best_pair_keys(self._scores(rows), rows, m))
        taken = None if self.sample is None else self.sample.taken()
        if taken is not None and self.edges is not None:
            est, threads = self.settings["estimator"], self.threads
            keys.append(sample_candidates(taken, self.edges, est, m, self._mask, threads))
        self.sample = None
        flat = np.unique(np.concatenate(keys)) if keys else np.zeros(0, dtype=np.int64)
        pairs = np.stack([flat // d, flat % d], axis=1)
        dropped, dropped_screen = np.full(d, -1), np.full(d, -np.inf)
        self.pair_screen = np.empty(len(pairs))
        for rows in self.screen.row_blocks():  # once the pairs are known: their scores, each unit's best left out
            s = self._scores(rows)
            first = np.flatnonzero((pairs[:, 0] >= rows.start) & (pairs[:, 0] < rows.stop))
            self.pair_screen[first] = s[pairs[first, 0] - rows.start, pairs[first, 1]]
            r, c = _pairs_in_rows(pairs, rows)
            s[r - rows.start, c] = -np.inf
            best = np.argmax(s, axis=1)
            val = s[np.arange(s.shape[0]), best]
            hit = np.isfinite(val)
            dropped[rows][hit], dropped_screen[rows][hit] = best[hit], val[hit]
        self.dropped = (dropped, dropped_screen)
        self.screened, self.screen = self.screen.n_samples, None
        self.count_pairs(pairs)

    def _scores(self, rows: slice) -> np.ndarray:
        assert self.screen is not None and self.degenerate is not None
        s = self.screen.scores(rows)
        self._mask(rows, s)
        return s

    def _mask(self, rows: slice, s: np.ndarray) -> None:
        """Pairs no unit may choose set to -inf in scores s (rows, d): degenerate units, other layers."""
        assert self.degenerate is not None
        if not self.settings["across_layers"]:
            layer = self._layer_of()
            s[layer[rows, None] != layer[None, :]] = -np.inf
        s[:, self.degenerate] = -np.inf
        s[self.degenerate[rows]] = -np.inf

    def _layer_of(self) -> np.ndarray:
        """Each unit's layer (0 for all without ``layers``)."""
        assert self.degenerate is not None
        sizes = self.settings["layers"] or [self.degenerate.size]
        return np.repeat(np.arange(len(sizes)), sizes)

    def _count_pass(self) -> None:
        assert self.acc is not None
        total = 2 * self.screened if self.settings["screen_samples"] is None else None
        for x in self._chunks():
            t0 = time.perf_counter()
            self.busy = True
            self.acc.update(x)
            self.chunks += 1
            self.busy = False
            self.seconds["count"] += time.perf_counter() - t0
            self._report(self.screened + self.acc.n_samples, total)
            self.save()
        partial = self.settings["screen_samples"] is not None
        if self.acc.n_samples < self.screened or (not partial and self.acc.n_samples != self.screened):
            raise ValueError(
                f"the source gave {self.acc.n_samples:,} samples on its second reading and "
                f"{self.screened:,} on its first: it must give the same samples each time"
            )

    def _report(self, done: int, total: int | None) -> None:
        if self.progress is not None:
            self.progress(done, total)

    # --- the result -----------------------------------------------------------------------------

    def result(self) -> StreamTopK:
        assert self.acc is not None and self.degenerate is not None and self.dropped is not None
        assert self.edges is not None and self.pair_screen is not None
        d, k = self.edges.shape[0], self.settings["n_partners"]
        pairs, n = self.acc.pairs, self.acc.n_samples
        scale = _arrays.unit_scale(self.settings["units"])
        mi = self.acc.result() if len(pairs) else np.zeros(0)
        null = self.acc.bias() if len(pairs) else np.zeros(0)
        alive = np.bincount(self._layer_of(), weights=~self.degenerate).astype(np.int64)  # per layer
        tests = alive.sum() * (alive.sum() - 1) // 2 if self.settings["across_layers"] else (alive * (alive - 1) // 2).sum()
        p = stats.g_test_p(mi / scale, null / scale, n)
        q = stats.fdr_among(p, int(tests))
        screen = self.pair_screen
        # Each pair seen from both ends, ranked per unit: larger MI, then lower partner.
        unit = np.concatenate([pairs[:, 0], pairs[:, 1]])
        partner = np.concatenate([pairs[:, 1], pairs[:, 0]])
        which = np.concatenate([np.arange(len(pairs))] * 2)
        order = np.lexsort((partner, -mi[which], unit))
        unit, partner, which = unit[order], partner[order], which[order]
        counted = np.bincount(unit, minlength=d)
        rank = np.arange(len(unit)) - np.repeat(np.cumsum(counted) - counted, counted)
        top = rank < k
        shape = (d, k)
        idx = np.full(shape, -1, dtype=np.int64)
        out = {name: np.full(shape, np.nan) for name in ("mi", "null", "q", "screen")}
        idx[unit[top], rank[top]] = partner[top]
        for name, values in (("mi", mi), ("null", null), ("q", q), ("screen", screen)):
            out[name][unit[top], rank[top]] = values[which[top]]
        dropped, dropped_screen = self.dropped
        return StreamTopK(
            indices=idx,
            mi=out["mi"],
            null=out["null"],
            q=out["q"],
            screen=out["screen"],
            counted=counted.astype(np.int64),
            dropped=dropped,
            dropped_screen=dropped_screen,
            margin=out["mi"][:, -1] - out["null"][:, -1] - dropped_screen,
            degenerate=self.degenerate,
            pairs=pairs,
            n_samples=n,
            units=self.settings["units"],
            estimator=self.settings["estimator"],
            bins=self.edges.shape[1] - 1,
            edges=self.edges,
            seconds={key: round(v, 3) for key, v in self.seconds.items()},
        )

    # --- saving ---------------------------------------------------------------------------------

    def save(self, force: bool = False) -> None:
        """The state, every save_every seconds (or now with force), once the edges are fixed."""
        if self.path is None or self.edges is None or (not force and time.monotonic() - self.last_save < self.every):
            return
        write_state(self, self.path)
        self.last_save = time.monotonic()

    def load(self, path: Path) -> None:
        read_state(self, path)

    def count_pairs(self, pairs: np.ndarray) -> None:
        """The accumulator of the chosen pairs' exact counts."""
        self.acc = PairAccumulator(
            pairs,
            self.settings["estimator"],
            edges=self.edges,
            correction=self.settings["correction"],
            units=self.settings["units"],
            threads=self.threads,
        )


def _pairs_in_rows(pairs: np.ndarray, rows: slice) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of every counted pair seen from a unit in ``rows`` (both orientations)."""
    a = (pairs[:, 0] >= rows.start) & (pairs[:, 0] < rows.stop)
    b = (pairs[:, 1] >= rows.start) & (pairs[:, 1] < rows.stop)
    return np.concatenate([pairs[a, 0], pairs[b, 1]]), np.concatenate([pairs[a, 1], pairs[b, 0]])
