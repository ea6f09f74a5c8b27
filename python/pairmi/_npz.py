""".npz archives read defensively: no pickles, and no member that declares more data than the file
holds (numpy would allocate what the header says first)."""

from __future__ import annotations

import os
import zipfile

import numpy as np

READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every array of the .npz archive at `path`, by member name without ``.npy``.

    ValueError saying what is wrong if the file is not such an archive (random bytes, a single
    .npy), holds Python objects, or a member's header declares a shape its data cannot fill;
    OSError if it cannot be read. The file is closed whatever it holds.
    """
    arrays: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                name = info.filename.removesuffix(".npy")
                with archive.open(info) as fh:
                    version = np.lib.format.read_magic(fh)
                    if version not in READERS:
                        raise ValueError(f"member {name!r} is .npy format version {version}, not one pairmi writes")
                    try:
                        shape, _, dtype = READERS[version](fh)
                    except Exception as exc:  # numpy's parser raises several kinds (SyntaxError, TokenError)
                        raise ValueError(f"member {name!r} has a damaged header ({type(exc).__name__})") from None
                    if dtype.hasobject:
                        raise ValueError(f"member {name!r} holds Python objects, which pairmi never writes")
                    declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
                    if declared > info.file_size:
                        raise ValueError(
                            f"member {name!r} declares shape {shape} ({declared:,} bytes) but holds {info.file_size:,} bytes"
                        )
                with archive.open(info) as fh:
                    arrays[name] = np.lib.format.read_array(fh, allow_pickle=False)
    except zipfile.BadZipFile as exc:
        raise ValueError(f"it is not an .npz archive ({exc})") from None
    except (EOFError, KeyError) as exc:
        raise ValueError(f"it is a damaged .npz archive ({exc})") from None
    return arrays
