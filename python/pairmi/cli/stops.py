"""Ctrl-C, SIGTERM and SIGHUP: a command stops as Ctrl-C stops it, saying what it kept."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class Interrupted(Exception):
    """Ctrl-C (or SIGTERM, SIGHUP), with what the interrupted command kept: main prints it and exits
    with `code` (130 for Ctrl-C, 128 + the signal's number for the others, as a shell reports them)."""

    def __init__(self, stop: KeyboardInterrupt, kept: str) -> None:
        how = f"stopped by {stop.name}" if isinstance(stop, _Terminated) else "interrupted"
        super().__init__(f"{how}; {kept}")
        self.code = 128 + stop.signum if isinstance(stop, _Terminated) else 130


class _Terminated(KeyboardInterrupt):
    """SIGTERM (timeout, kill, SLURM pre-emption) or SIGHUP, raised where Ctrl-C would be, so a run
    saves what Ctrl-C saves."""

    def __init__(self, signum: int) -> None:
        self.signum, self.name = signum, signal.Signals(signum).name
        super().__init__(self.name)


STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """While a command runs, SIGTERM and SIGHUP stop it as Ctrl-C does (once: a second signal while
    the state is being saved is ignored); the previous handlers are restored after."""
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise _Terminated(signum)

    previous = {}
    for sig in STOP_SIGNALS:
        try:
            previous[sig] = signal.signal(sig, stop)
        except ValueError:  # not the main thread: signals stay as they are
            break
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def resumable(state: Path, what: str, bar: Any, run: Callable[[], T]) -> T:
    """``run()`` (a corpus run saving ``what`` to ``state``) with its progress ``bar`` closed after;
    Ctrl-C says whether a rerun with --resume can continue."""
    try:
        result = run()
    except KeyboardInterrupt as exc:
        bar.close()
        kept = f"{what} saved in {state}; rerun with --resume" if state.exists() else "nothing was saved yet"
        raise Interrupted(exc, kept) from None
    bar.close()
    return result
