"""Input checks that read only MRC headers, so that stages reject mismatched maps before
loading any of them (standard library at import time; mrcfile when called)."""

from __future__ import annotations

import os
from pathlib import Path


def mrc_grid(path: str | os.PathLike[str]) -> tuple[tuple[int, int, int], float]:
    """(shape z, y, x; voxel size Å) from an MRC header; InputError naming the file."""
    import warnings

    import mrcfile
    import numpy as np

    from templearn.errors import InputError
    from templearn.files import require_file

    p = require_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with mrcfile.open(p, header_only=True, permissive=True) as mrc:
                if mrc.header is None:
                    raise InputError("not a readable MRC file (no header)", p)
                header = mrc.header
                shape = (int(header.nz), int(header.ny), int(header.nx))
                voxel = float(mrc.voxel_size.x)
                itemsize = mrcfile.utils.dtype_from_mode(header.mode).itemsize
                data_bytes = 1024 + int(header.nsymbt) + itemsize * int(np.prod(shape))
    except InputError:
        raise
    except Exception as exc:  # mrcfile raises ValueError/OSError/EOFError variously
        raise InputError(f"not a readable MRC file ({exc})", p) from None
    if min(shape) < 1:
        raise InputError(f"not a readable MRC file (header size {shape[::-1]})", p)
    file_bytes = p.stat().st_size
    if file_bytes < data_bytes:  # e.g. a text file read as a header
        raise InputError(f"not a readable MRC file (the header's size {shape[::-1]} needs "
                         f"{data_bytes} bytes, the file has {file_bytes})", p)
    return shape, voxel


def same_grid(path: str | os.PathLike[str], shape: tuple[int, ...], what: str) -> None:
    """InputError naming `path` unless its map has `shape` (z, y, x), that of `what`."""
    from templearn.errors import InputError

    found, _ = mrc_grid(path)
    if found != tuple(shape):
        raise InputError(f"size {found[::-1]} (x, y, z) differs from {what}'s "
                         f"{tuple(shape)[::-1]}", Path(path))
