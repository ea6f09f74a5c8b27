"""What pairmi wrote into an output folder, listed in a manifest there, so that replacing a run
removes exactly its files and never a user's file that happens to match a pattern."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

from ._files import atomic_write_bytes
from ._npz import read_npz

MANIFEST = ".pairmi-written.json"
FORMAT = "pairmi.written"
FIGURE_FORMATS = ("png", "svg", "pdf")


def record(folder: str | os.PathLike, names: Iterable[str]) -> None:
    """Add file names (in `folder`) to its manifest; called before each file is written, so a run
    killed while writing still lists it."""
    folder = Path(folder)
    listed = listed_names(folder) or []
    names = sorted(set(listed) | {Path(n).name for n in names})
    if names != listed:
        atomic_write_bytes(folder / MANIFEST, json.dumps({"format": FORMAT, "files": names}, indent=1).encode())


def forget(folder: str | os.PathLike, names: Iterable[str]) -> None:
    """Take names off the manifest (their files were removed); the manifest goes with the last."""
    folder = Path(folder)
    gone = {Path(n).name for n in names}
    left = [n for n in listed_names(folder) or [] if n not in gone]
    if left:
        atomic_write_bytes(folder / MANIFEST, json.dumps({"format": FORMAT, "files": left}, indent=1).encode())
    else:
        (folder / MANIFEST).unlink(missing_ok=True)


def listed_names(folder: Path) -> list[str] | None:
    """The names the manifest lists, or None if there is none (or it is not one pairmi wrote)."""
    try:
        header = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(header, dict) or header.get("format") != FORMAT or not isinstance(header.get("files"), list):
        return None
    # Plain names only: a hand-edited entry can never reach outside the folder.
    return sorted({n for n in header["files"] if isinstance(n, str) and n == Path(n).name and n not in ("", ".", "..")})


def earlier_outputs(folder: Path, fixed: Iterable[str], per_layer: str) -> list[Path]:
    """The files (or folders) of earlier pairmi runs in `folder`: those its manifest lists, or for
    a folder written before manifests existed, the exact output names of such a run when its
    ``mi.npz`` (or another of the `fixed` names) is there: `fixed`, and the figures in every format
    (``layers``, ``pair``, and `per_layer` formatted with each layer name the mi.npz records)."""
    if not folder.is_dir():
        return []
    names = listed_names(folder)
    if names is None:
        fixed = list(fixed)
        if not any((folder / n).exists() for n in fixed):
            return []
        names = fixed + [
            f"{stem}.{fmt}" for stem in ("layers", "pair", *_layer_stems(folder, per_layer)) for fmt in FIGURE_FORMATS
        ]
    return sorted(folder / n for n in names if (folder / n).exists() or (folder / n).is_symlink())


def _layer_stems(folder: Path, per_layer: str) -> list[str]:
    try:
        layer_names = [str(n) for n in read_npz(folder / "mi.npz")["layer_names"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [per_layer.format(safe_name(n)) for n in layer_names]


def safe_name(name: str) -> str:
    """`name` as one file-name component: anything but letters, digits, '-', '_' and '.' becomes
    '_', and no leading dot (names come from files that anyone may have written)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", str(name)).lstrip(".")
    return cleaned or "_"
