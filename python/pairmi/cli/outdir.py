"""The output folder of a run: what pairmi writes there, refused or replaced as the flags say."""

from __future__ import annotations

from pathlib import Path


def check_out(out: Path) -> None:
    """--out must be a folder (or not exist yet): checked before any model loads."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")


# What pairmi writes into --out besides mi.npz, summary.csv and the figures. Each file is listed in
# the folder's manifest (pairmi._written) before it is written; --overwrite removes those alone.
STATE_FILE = ".corpus-state.npz"
CHECKPOINT_DIR = ".partial"  # finished layers of an interrupted analysis (pairmi.analysis)
# The exact names of a run written before manifests existed (figures: every format, per layer).
RUN_FILES = ("mi.npz", "summary.csv", "topk.csv", "topk.npz", STATE_FILE, CHECKPOINT_DIR)


def prepare_out(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuse an --out holding an earlier run unless resuming it or told to overwrite it; with
    --overwrite remove that run's files first, and nothing else. Checked before any model loads."""
    from .._written import earlier_outputs, forget
    from ..analysis import checkpoint_layers, remove_checkpoint

    check_out(out)
    earlier = [p for p in earlier_outputs(out, RUN_FILES, "layer_{}") if p.name != CHECKPOINT_DIR or checkpoint_layers(p)]
    if not earlier or resume:
        return
    if not overwrite:
        names = ", ".join(p.name for p in earlier[:4]) + (", ..." if len(earlier) > 4 else "")
        raise ValueError(
            f"--out {out} holds the results of an earlier pairmi run ({names}): pass --overwrite to replace "
            "them (only the files pairmi wrote there), --resume to continue an interrupted run of the same "
            "settings, or another --out"
        )
    for p in earlier:
        if p.name == CHECKPOINT_DIR:
            remove_checkpoint(p)
        elif p.is_symlink() or not p.is_dir():
            p.unlink()
    forget(out, [p.name for p in earlier])


def record_outputs(out: Path, *names: str) -> None:
    """List files this run is about to write in --out (created if needed) in its manifest."""
    from .._written import record

    out.mkdir(parents=True, exist_ok=True)
    record(out, names)
