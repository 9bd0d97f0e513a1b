"""Sample tables: reading and writing `molecules.star`, and Å ↔ voxel conversions.

Positions are in Å from the sample corner, voxel i having its centre at i × voxel size.
A tomogram of the same specimen shares the sample's centre: voxel index
`(p − c_sample) / v_tomo + (n_tomo − 1) / 2`, whatever its voxel size and thickness.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from templearn import star
from templearn.errors import InputError

#: Protein partial specific volume, Å³ per Da.
PROTEIN_VOLUME_PER_DA = 1.21
CLASS_NAME = "tlClassName"
TEMPLATE, DISTRACTOR = "template", "distractor"
MOLECULE_COLUMNS = (star.MOLECULE_NAME, star.MOLECULE_CLASS, CLASS_NAME, star.CLASS_ID,
                    star.MAP_FILE, *star.POSITION_ANGST, *star.ANGLES)


@dataclass(frozen=True)
class Grid:
    """A voxel grid: shape `[z, y, x]` and voxel size (Å)."""

    shape_zyx: tuple[int, int, int]
    voxel_size: float

    @property
    def centre_angst(self) -> np.ndarray:
        """Physical position (x y z, Å) of the grid centre, voxel (n - 1) / 2."""
        return (np.array(self.shape_zyx[::-1]) - 1) / 2.0 * self.voxel_size


def to_grid_voxels(positions_angst: np.ndarray, sample: Grid, target: Grid) -> np.ndarray:
    """Sample positions (n, 3; x y z Å) -> fractional voxel indices (x y z) of `target`."""
    target_centre = (np.array(target.shape_zyx[::-1]) - 1) / 2.0
    return (positions_angst - sample.centre_angst) / target.voxel_size + target_centre


def read_molecules(path: str | os.PathLike[str]) -> tuple[pd.DataFrame, Grid]:
    """The molecules table of a sample and the sample grid; InputError if a position or
    angle is not a finite number or a molecule's centre lies outside the sample."""
    table = star.read_star(path, star.PARTICLES_BLOCK, required=MOLECULE_COLUMNS)
    general = star.read_star(path, star.GENERAL_BLOCK, required=(*star.SIZE, star.VOXEL_SIZE))
    try:
        nx, ny, nz = (int(general[c].iloc[0]) for c in star.SIZE)
        voxel = float(general[star.VOXEL_SIZE].iloc[0])
    except (TypeError, ValueError):
        raise InputError("sample geometry in data_general is not numeric", path) from None
    if not voxel > 0 or min(nx, ny, nz) <= 0:
        raise InputError("sample geometry in data_general is not positive", path)
    grid = Grid((nz, ny, nx), voxel)
    _check_positions(table, grid, path)
    return table, grid


def _check_positions(table: pd.DataFrame, grid: Grid, path: str | os.PathLike[str]) -> None:
    """Finite angles, and every centre within the sample (half a voxel of tolerance)."""
    columns = [*star.POSITION_ANGST, *star.ANGLES]
    values = table[columns].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise InputError(f"molecule {row + 1}: {columns[col]} = {table[columns[col]].iloc[row]!r}"
                         " is not a finite number", path)
    size = np.array(grid.shape_zyx[::-1]) * grid.voxel_size
    xyz = values[:, :3]
    outside = np.any((xyz < -grid.voxel_size / 2) | (xyz > size - grid.voxel_size / 2), axis=1)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise InputError(f"molecule {i + 1} ({table[star.MOLECULE_NAME].iloc[i]}) at "
                         f"{', '.join(f'{v:g}' for v in xyz[i])} Å (x, y, z) lies outside the "
                         f"{'×'.join(f'{v:g}' for v in size)} Å sample", path)


def write_molecules(path: str | os.PathLike[str], table: pd.DataFrame, grid: Grid) -> Path:
    """Write a molecules table with its sample geometry."""
    return star.write_star(path, {star.GENERAL_BLOCK: star.general_table(grid.shape_zyx,
                                                                         grid.voxel_size),
                                  star.PARTICLES_BLOCK: table})


def coordinates_as_sample(path: str | os.PathLike[str], target: Grid) -> pd.DataFrame:
    """Particle coordinates in a tomogram's voxels (a picks or annotation STAR file with
    rlnCoordinateX/Y/Z) as a molecules table of that tomogram (all templates), so that
    sphere labels can be painted for them (fine-tuning on a few real annotations)."""
    table = star.read_star(path, star.PARTICLES_BLOCK, required=star.COORDINATES)
    if len(table) == 0:
        raise InputError("no particles", path)
    xyz = table[list(star.COORDINATES)].to_numpy(float) * target.voxel_size
    names = (table[CLASS_NAME].astype(str) if CLASS_NAME in table
             else pd.Series(["particle"] * len(table)))
    ids = (table[star.CLASS_ID].astype(int) if star.CLASS_ID in table
           else pd.Series(np.ones(len(table), int)))
    return pd.DataFrame({
        star.TOMO_NAME: table.get(star.TOMO_NAME, "tomo"),
        **{c: xyz[:, a] for a, c in enumerate(star.POSITION_ANGST)},
        **{c: table.get(c, 0.0) for c in star.ANGLES},
        star.MOLECULE_NAME: names.to_numpy(), star.MOLECULE_CLASS: TEMPLATE,
        CLASS_NAME: names.to_numpy(), star.CLASS_ID: ids.to_numpy(),
        star.MASS_DA: np.nan, star.INSTANCE_ID: np.arange(1, len(table) + 1)})
