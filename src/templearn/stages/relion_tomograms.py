"""RELION 5 tomograms.star for the stages: one tomogram's row, its reconstructed MRC on disk
and the grid our picks go on (`templearn.interop.tomogram_grid` holds the conventions)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

#: Relative voxel-size difference tolerated between an MRC header and s · b.
VOXEL_TOLERANCE = 1e-3


def tomogram_row(path: Path, name: str) -> Any:
    """The `data_global` row of tomogram `name`; InputError naming the file otherwise."""
    from templearn import interop, star
    from templearn.errors import InputError

    blocks = star.read_blocks(path)
    table = blocks.get(interop.GLOBAL_BLOCK)
    if table is None or star.TOMO_NAME not in table:
        raise InputError(f"not a RELION 5 tomograms.star (no data_{interop.GLOBAL_BLOCK} with "
                         f"{star.TOMO_NAME})", path)
    rows = table[table[star.TOMO_NAME].astype(str) == name]
    if len(rows) != 1:
        names = ", ".join(sorted(table[star.TOMO_NAME].astype(str))) or "none"
        what = "several rows" if len(rows) else "no row"
        raise InputError(f"{what} for tomogram {name!r} (tomograms: {names})", path)
    return rows.iloc[0]


def locate(text: str, star_path: Path) -> Path | None:
    """A path as RELION writes it (relative to its project directory): as written, else
    below the STAR file's folder or one of its parents; None if none exists."""
    path = Path(text)
    if path.is_absolute() or path.is_file():
        return path if path.is_file() else None
    for folder in star_path.resolve().parents:
        if (folder / path).is_file():
            return folder / path
    return None


def relion_grid(path: Path, name: str, tomogram: Path | None) -> tuple[Any, Path | None]:
    """(grid, tomogram MRC or None) of tomogram `name` of tomograms.star `path`: the size from
    `tomogram` or the row's rlnTomoReconstructedTomogram where found (its voxel size checked
    against s · b), else RELION's rounding of rlnTomoSize / binning."""
    from templearn import interop
    from templearn.errors import InputError, about
    from templearn.stages.mrcgrid import mrc_grid

    row = tomogram_row(path, name)
    if tomogram is None and interop.RECONSTRUCTED in row and isinstance(
            row[interop.RECONSTRUCTED], str):
        tomogram = locate(row[interop.RECONSTRUCTED], path)
    with about(path):
        grid = interop.tomogram_grid(row)
    if tomogram is None:
        return grid, None
    shape, voxel = mrc_grid(tomogram)
    if not math.isclose(voxel, grid.voxel, rel_tol=VOXEL_TOLERANCE):
        raise InputError(f"voxel size {voxel:g} Å differs from {grid.voxel:g} Å "
                         f"({interop.TS_PIXEL} × {interop.BINNING} of {name!r} in {path})",
                         tomogram)
    return interop.Grid(shape[::-1], grid.voxel, grid.pixel, grid.relion_size), tomogram
