"""A :func:`pairmi.topk_stream` run's saved state: written every few minutes and on Ctrl-C, read
back (checked) by a resumed run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ._files import atomic_file
from ._npz import read_npz
from .screen import Screen
from .screen_sample import TokenSample

STATE_FORMAT = "pairmi.topk-stream"
STATE_VERSION = 1


def write_state(run: Any, path: Path) -> None:
    """A run's state (pairmi.topk_stream.TopKRun) to path, whole or not at all: its settings,
    stage and position; the screen's sums and token sample (pass 1), or the chosen pairs and their
    counts (pass 2)."""
    assert run.edges is not None and run.degenerate is not None
    header: dict[str, Any] = {
        "format": STATE_FORMAT,
        "version": STATE_VERSION,
        "settings": run.settings,
        "stage": run.stage,
        "chunks": run.chunks,
        "seconds": run.seconds,
    }
    arrays: dict[str, Any] = {"edges": run.edges, "degenerate": run.degenerate}
    if run.stage == "screen":
        assert run.screen is not None
        header["screen"], screen = run.screen.state()
        arrays.update({f"screen_{key}": v for key, v in screen.items()})
        assert run.sample is not None
        header["sample"], sample = run.sample.state()
        arrays.update({f"sample_{key}": v for key, v in sample.items()})
    else:
        assert run.acc is not None and run.dropped is not None and run.pair_screen is not None
        arrays.update(pairs=run.acc.pairs, pair_screen=run.pair_screen)
        arrays.update(dropped=run.dropped[0], dropped_screen=run.dropped[1])
        header["screened"], header["counted"] = run.screened, run.acc.n_samples
        if run.acc.counts is not None:
            arrays["counts"] = run.acc.counts
    with atomic_file(path) as fh:
        np.savez(fh, run=np.array(json.dumps(header)), **arrays)


def read_state(run: Any, path: Path) -> None:
    """The run (pairmi.topk_stream.TopKRun) set to a saved state; ValueError naming the problem,
    or other settings."""
    try:
        arrays = read_npz(path)
        header = json.loads(str(arrays.pop("run")))
        if header.get("format") != STATE_FORMAT or header.get("version") != STATE_VERSION:
            raise ValueError(f"it is not a {STATE_FORMAT} version {STATE_VERSION} state")
        if header["settings"] != json.loads(json.dumps(run.settings)):
            changed = sorted(k for k in run.settings if header["settings"].get(k) != run.settings[k])
            raise ValueError(f"it was run with other settings ({', '.join(changed)})")
        run.edges, run.degenerate = arrays["edges"], arrays["degenerate"].astype(bool)
        run.stage, run.chunks = header["stage"], int(header["chunks"])
        run.seconds.update(header["seconds"])
        if run.stage == "screen":
            screen = {k[7:]: v for k, v in arrays.items() if k.startswith("screen_")}
            run.screen = Screen.from_state(header["screen"], screen)
            sample = {k[7:]: v for k, v in arrays.items() if k.startswith("sample_")}
            run.sample = TokenSample.from_state(header["sample"], sample)
        else:
            run.dropped = (arrays["dropped"], arrays["dropped_screen"])
            run.pair_screen, run.screened = arrays["pair_screen"], int(header["screened"])
            run.count_pairs(arrays["pairs"])
            assert run.acc is not None
            run.acc.set_counts(arrays.get("counts"), header["counted"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        problem = f"missing {exc}" if isinstance(exc, KeyError) else str(exc) or type(exc).__name__
        raise ValueError(f"cannot resume from {path}: {problem}") from None
