"""STAR tables of molecules and particles, with RELION 4 column names plus project columns.

RELION columns: `rlnTomoName`, `rlnCoordinateX/Y/Z` (pixels of that tomogram, from the
corner), `rlnAngleRot/Tilt/Psi` (ZYZ degrees, see `templearn.geometry`). Project columns
use the `tl` prefix so RELION ignores them. A `general` block records the tomogram
geometry (size and voxel size), because tools disagree on centres by half a pixel.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import starfile

from templearn.errors import InputError
from templearn.files import atomic_path, require_file

TOMO_NAME = "rlnTomoName"
COORDINATES = ("rlnCoordinateX", "rlnCoordinateY", "rlnCoordinateZ")
ANGLES = ("rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi")
POSITION_ANGST = ("tlPositionXAngst", "tlPositionYAngst", "tlPositionZAngst")
MOLECULE_NAME = "tlMoleculeName"
MOLECULE_CLASS = "tlMoleculeClass"  # "template" or "distractor"
CLASS_ID = "tlClassId"
STRUCTURE_FILE = "tlStructureFile"
MAP_FILE = "tlMapFile"
INSTANCE_ID = "tlInstanceId"
SCORE = "tlScore"
CLUSTER_SIZE = "tlClusterSize"

MASS_DA = "tlMassDa"
ATOM_MEAN_OFFSET = ("tlAtomMeanOffsetXAngst", "tlAtomMeanOffsetYAngst", "tlAtomMeanOffsetZAngst")

GENERAL_BLOCK = "general"
MAPS_BLOCK = "maps"
#: Index of the maps in a directory made by `templearn density`.
MAPS_INDEX = "maps.star"
PARTICLES_BLOCK = "particles"
VOXEL_SIZE = "tlVoxelSizeAngst"
SIZE = ("tlSizeX", "tlSizeY", "tlSizeZ")


def write_star(path: str | os.PathLike[str], tables: dict[str, pd.DataFrame]) -> Path:
    """Write named data blocks to a STAR file atomically."""
    final = Path(path)
    with atomic_path(final) as tmp:
        starfile.write(tables, tmp, overwrite=True)
    return final


def read_blocks(path: str | os.PathLike[str]) -> dict[str, pd.DataFrame]:
    """Every data block of a STAR file as a table; InputError if unreadable."""
    p = require_file(path)
    try:
        data = starfile.read(p, always_dict=True)
    except Exception as exc:
        raise InputError(f"not a readable STAR file ({exc})", p) from None
    return {name: table if isinstance(table, pd.DataFrame)
            else pd.DataFrame([table]) if isinstance(table, dict) else pd.DataFrame()
            for name, table in data.items()}


def read_star(path: str | os.PathLike[str], block: str = PARTICLES_BLOCK,
              required: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read one block of a STAR file; InputError if unreadable or missing required columns."""
    data = read_blocks(path)
    if block not in data:
        raise InputError(f"no data_{block} block (found: {', '.join(data) or 'none'})", path)
    table = data[block]
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise InputError(f"missing columns {', '.join(missing)} in data_{block}", path)
    return table


def general_table(shape_zyx: tuple[int, int, int], voxel_size: float) -> pd.DataFrame:
    """One-row table recording a tomogram's size (x, y, z voxels) and voxel size (Å)."""
    nz, ny, nx = shape_zyx
    return pd.DataFrame({SIZE[0]: [nx], SIZE[1]: [ny], SIZE[2]: [nz], VOXEL_SIZE: [voxel_size]})


def general_grid(blocks: dict[str, pd.DataFrame]) -> tuple[tuple[int, int, int], float] | None:
    """(size x, y, z; voxel size Å) from a `general` block, None if it records none."""
    general = blocks.get(GENERAL_BLOCK)
    if general is None or len(general) == 0 or not all(c in general for c in (*SIZE, VOXEL_SIZE)):
        return None
    row = general.iloc[0]
    return (int(row[SIZE[0]]), int(row[SIZE[1]]), int(row[SIZE[2]])), float(row[VOXEL_SIZE])
