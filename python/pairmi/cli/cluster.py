"""--workers / --scheduler: a run on a local Dask cluster or a running one, for every corpus route."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TypeVar

from .stops import Interrupted

T = TypeVar("T")


def on_cluster(args: argparse.Namespace, run: Callable[[], T]) -> T:
    """``run()`` with a Dask client current: a LocalCluster of --workers processes (--threads each),
    or the scheduler at --scheduler. Ctrl-C: nothing is kept; an unreachable scheduler: ValueError."""
    from distributed import Client, LocalCluster

    try:
        if args.scheduler is not None:
            with Client(args.scheduler, timeout=30) as client:
                print(f"Dask cluster at {args.scheduler}: {len(client.scheduler_info()['workers'])} workers", file=sys.stderr)
                return run()
        threads = args.threads or 1
        with (
            LocalCluster(n_workers=args.workers, threads_per_worker=threads, processes=True, dashboard_address=":0") as local,
            Client(local),
        ):
            print(f"local Dask cluster: {args.workers} worker processes", file=sys.stderr)
            return run()
    except KeyboardInterrupt as exc:
        raise Interrupted(exc, "a cluster run keeps no state: run it again") from None
    except OSError as exc:  # the scheduler cannot be reached
        raise ValueError(f"--scheduler {args.scheduler}: {exc}") from None
