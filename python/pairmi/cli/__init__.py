"""The ``pairmi`` command: analyze a model's hidden states, redraw saved results, run the offline demo.

One module a job: ``parser`` (subcommands and flags), ``analyze`` (texts in memory, the demo),
``corpus`` (streamed corpora, in process or on Dask), ``topk`` (every unit's partners, --topk),
``cluster`` (--workers, --scheduler), ``figures`` (plot, explore, lesson), ``outdir`` (the output
folder), ``stops`` (Ctrl-C and termination signals), ``progress`` (bars on stderr).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .analyze import DEMO_TEXT, cmd_analyze, cmd_demo
from .corpus import run_corpus
from .figures import cmd_explore, cmd_lesson, cmd_plot
from .parser import build_parser
from .stops import Interrupted, stop_signals_interrupt

__all__ = ["DEMO_TEXT", "build_parser", "main"]


def _analyze(args: argparse.Namespace) -> None:
    """pairmi analyze: a corpus streamed (--corpus, --python-docs), or texts in memory."""
    if args.corpus is not None or args.python_docs:
        run_corpus(args)
    else:
        cmd_analyze(args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    commands = {"analyze": _analyze, "plot": cmd_plot, "explore": cmd_explore, "demo": cmd_demo, "lesson": cmd_lesson}
    try:
        with stop_signals_interrupt():
            commands[args.command](args)
    except (ValueError, TypeError, OSError, ImportError, NotImplementedError) as exc:
        print(f"pairmi {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except Interrupted as exc:
        print(f"\npairmi {args.command}: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt as exc:
        stopped = Interrupted(exc, "nothing was kept")
        print(f"\npairmi {args.command}: {stopped}", file=sys.stderr)
        return stopped.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
