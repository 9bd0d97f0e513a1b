"""MRC volumes: `[z, y, x]` arrays with an isotropic voxel size (Å) and an origin (Å, x y z).

Every map templearn writes carries its voxel size in the header, so later stages
never have to be told it again.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np

from templearn.errors import InputError
from templearn.files import atomic_path, require_file


@dataclass(frozen=True)
class Volume:
    """A 3D map: `data[z, y, x]`, cubic voxels of `voxel_size` Å, `origin` (x, y, z) in Å.

    `origin` is the physical position of voxel (0, 0, 0), as in the MRC header, so a map
    and the atomic model it came from overlay in ChimeraX.
    """

    data: np.ndarray
    voxel_size: float
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        if self.data.ndim != 3:
            raise ValueError(f"a volume must be 3D, got shape {self.data.shape}")
        if not self.voxel_size > 0:
            raise ValueError(f"voxel size must be positive, got {self.voxel_size}")


def read_mrc(path: str | os.PathLike[str]) -> Volume:
    """Read a 3D MRC map; raise InputError for unreadable files or unusable headers."""
    p = require_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with mrcfile.open(p, permissive=True) as mrc:
                if mrc.data is None:
                    raise InputError("not a readable MRC file (no data block)", p)
                data = np.asarray(mrc.data).copy()
                vs = mrc.voxel_size
                voxel = (float(vs.x), float(vs.y), float(vs.z))
                origin = (float(mrc.header.origin.x), float(mrc.header.origin.y),
                          float(mrc.header.origin.z))
                nstart = (int(mrc.header.nxstart), int(mrc.header.nystart),
                          int(mrc.header.nzstart))
    except InputError:
        raise
    except Exception as exc:  # mrcfile raises ValueError/OSError/EOFError variously
        raise InputError(f"not a readable MRC file ({exc})", p) from None
    if data.ndim != 3:
        raise InputError(f"expected a 3D map, got an array of shape {data.shape}", p)
    if min(voxel) <= 0:
        raise InputError(f"voxel size must be positive, header says {voxel} Å", p)
    if not np.allclose(voxel, voxel[0], rtol=1e-4):
        raise InputError(f"voxels are not cubic ({voxel} Å); resample the map first", p)
    if origin == (0.0, 0.0, 0.0) and any(nstart):
        # Older files (e.g. EMAN/PolNet) locate the map with n*start instead of origin.
        origin = tuple(float(s * voxel[0]) for s in nstart)
    if not np.isfinite(data).all():
        raise InputError("map contains NaN or infinite values", p)
    return Volume(data, voxel[0], origin)


def _as_mrc_dtype(data: np.ndarray) -> np.ndarray:
    """Cast to an MRC mode: floats to float32 (mode 2), integers to int8/int16 (modes 0/1)."""
    if data.dtype.kind == "f":
        return data.astype(np.float32, copy=False)
    if data.dtype.kind in "biu":
        lo, hi = (int(data.min()), int(data.max())) if data.size else (0, 0)
        for dtype in (np.int8, np.int16):
            info = np.iinfo(dtype)
            if info.min <= lo and hi <= info.max:
                return data.astype(dtype, copy=False)
        raise ValueError(f"integer values {lo}..{hi} do not fit an MRC integer mode")
    raise ValueError(f"cannot store {data.dtype} data in an MRC file")


def write_mrc(path: str | os.PathLike[str], volume: Volume) -> Path:
    """Write `volume` atomically, with its voxel size and origin in the header."""
    data = _as_mrc_dtype(volume.data)
    final = Path(path)
    with atomic_path(final) as tmp, mrcfile.new(tmp, overwrite=True) as mrc:
        mrc.set_data(np.ascontiguousarray(data))
        mrc.voxel_size = volume.voxel_size
        mrc.header.origin = volume.origin
        mrc.update_header_stats()
    return final


def write_mrc_slabs(path: str | os.PathLike[str], data: np.ndarray, voxel_size: float,
                    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> Path:
    """Write a large (possibly disk-backed) float32 `[z, y, x]` array atomically, one z slab
    at a time, so memory stays at one slab."""
    final = Path(path)
    with atomic_path(final) as tmp, \
            mrcfile.new_mmap(tmp, shape=data.shape, mrc_mode=2, overwrite=True) as mrc:
        for z in range(data.shape[0]):
            mrc.data[z] = data[z]
        mrc.voxel_size = voxel_size
        mrc.header.origin = origin
        mrc.update_header_stats()
    return final
