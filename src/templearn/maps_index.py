"""`maps.star`: the index `templearn density` keeps beside its maps.

For each map it records the molecule name, the source structure file (which the
physics simulator needs), the molecular mass, and where the unweighted atom mean lies
relative to the map centre (the centre of mass): Parakeet positions molecules by their
atom mean, templearn by the map centre.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from templearn import star
from templearn.errors import InputError


@dataclass(frozen=True)
class MapEntry:
    """One map of the index, with absolute paths."""

    name: str
    map_file: Path
    structure_file: Path
    mass_da: float
    atom_mean_offset: tuple[float, float, float]  # Å, x y z: atom mean − map centre


def update_maps_index(directory: str | os.PathLike[str], entries: list[MapEntry]) -> Path:
    """Add or replace `entries` (by map file name) in `directory/maps.star`."""
    path = Path(directory) / star.MAPS_INDEX
    rows = pd.DataFrame({
        star.MOLECULE_NAME: [e.name for e in entries],
        star.MAP_FILE: [e.map_file.name for e in entries],
        star.STRUCTURE_FILE: [str(e.structure_file.resolve()) for e in entries],
        star.MASS_DA: [e.mass_da for e in entries],
        **{column: [e.atom_mean_offset[axis] for e in entries]
           for axis, column in enumerate(star.ATOM_MEAN_OFFSET)},
    })
    if path.exists():
        old = star.read_star(path, star.MAPS_BLOCK)
        rows = pd.concat([old[~old[star.MAP_FILE].isin(rows[star.MAP_FILE])], rows],
                         ignore_index=True)
    return star.write_star(path, {star.MAPS_BLOCK: rows})


def read_map_entries(map_files: list[Path]) -> list[MapEntry]:
    """Index entries of the given maps, read from the `maps.star` beside each of them."""
    indexes: dict[Path, pd.DataFrame] = {}
    entries = []
    for map_file in map_files:
        directory = map_file.resolve().parent
        if directory not in indexes:
            index_path = directory / star.MAPS_INDEX
            if not index_path.exists():
                raise InputError(f"no {star.MAPS_INDEX} beside this map; make maps with "
                                 "`templearn density`", map_file)
            indexes[directory] = star.read_star(
                index_path, star.MAPS_BLOCK,
                required=(star.MAP_FILE, star.STRUCTURE_FILE, star.MASS_DA))
        index = indexes[directory]
        row = index[index[star.MAP_FILE] == map_file.name]
        if row.empty:
            raise InputError(f"not listed in {directory / star.MAPS_INDEX}", map_file)
        r = row.iloc[-1]
        entries.append(MapEntry(
            name=str(r[star.MOLECULE_NAME]), map_file=directory / map_file.name,
            structure_file=Path(str(r[star.STRUCTURE_FILE])), mass_da=float(r[star.MASS_DA]),
            atom_mean_offset=tuple(float(r.get(c, 0.0)) for c in star.ATOM_MEAN_OFFSET)))
    return entries


def atom_mean_offset(coords: np.ndarray, atomic_numbers: np.ndarray) -> tuple[float, ...]:
    """Unweighted atom mean minus the atomic-number-weighted centre (the map centre), Å."""
    weights = atomic_numbers.astype(np.float64)
    com = (coords * weights[:, None]).sum(axis=0) / weights.sum()
    return tuple(float(v) for v in coords.mean(axis=0) - com)
