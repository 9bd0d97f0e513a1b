"""Regenerate the tiny committed test inputs in tests/data (see README.md there).

    python tests/data/make_test_data.py

Everything derives from one small real protein of the bundled distractor set, 3QM1
(27.6 kDa, 2028 atoms), and is deterministic: the same templearn gives the same files.
Paths inside the STAR files are relative to the file that holds them (the fixtures in
tests/conftest.py copy the data and make them absolute, as `templearn density` and
`templearn tetris` write them).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
STRUCTURE_ID = "3qm1"
VOXEL = 8.0  # Å, maps, sample and tilt series
RESOLUTION = 16.0  # Å, Gaussian low-pass of the maps
BOX = 16  # map edge (voxels)
SAMPLE_ZYX = (16, 32, 32)  # sample grid (voxels)
#: Molecules: voxel position (x, y, z) and RELION angles (rot, tilt, psi) in degrees.
MOLECULES = (((8, 8, 8), (0.0, 0.0, 0.0)),
             ((23, 10, 7), (30.0, 60.0, -45.0)),
             ((15, 23, 9), (-120.0, 100.0, 10.0)))
TILTS = (-40.0, -20.0, 0.0, 20.0, 40.0)
NOISE_SIGMA = 0.05  # relative to the largest projection value
SEED = 1234


def copy_structure() -> Path:
    """The bundled, stripped 3QM1 (gzipped mmCIF), byte for byte."""
    from templearn.data import structures_dir

    target = HERE / f"{STRUCTURE_ID}.cif.gz"
    shutil.copyfile(structures_dir() / "distractors" / f"{STRUCTURE_ID}.cif.gz", target)
    return target


def make_map(structure: Path) -> Path:
    """maps/3qm1.mrc (16³, 8 Å/voxel, 16 Å) and maps/maps.star, as `templearn density`
    writes them but with the structure path relative to maps/."""
    from templearn import star
    from templearn.density import density_map
    from templearn.maps_index import MapEntry, atom_mean_offset, update_maps_index
    from templearn.mrc import write_mrc
    from templearn.structure import read_structure

    out = HERE / "maps"
    (out / star.MAPS_INDEX).unlink(missing_ok=True)
    model = read_structure(structure)
    volume = density_map(model.coords, model.atomic_numbers, VOXEL, RESOLUTION, BOX,
                         name=STRUCTURE_ID)
    map_file = write_mrc(out / f"{STRUCTURE_ID}.mrc", volume)
    index = update_maps_index(out, [MapEntry(
        STRUCTURE_ID, map_file, structure, model.mass_da(),
        atom_mean_offset(model.coords, model.atomic_numbers))])
    table = star.read_star(index, star.MAPS_BLOCK)
    table[star.STRUCTURE_FILE] = f"../{structure.name}"
    star.write_star(index, {star.MAPS_BLOCK: table})
    return map_file


def make_sample(structure: Path, map_file: Path) -> tuple[Path, np.ndarray]:
    """sample/molecules.star (three 3QM1 molecules as templates of class `esterase`) and
    the sample's density (atoms placed and splatted as in `templearn density`)."""
    from templearn import star
    from templearn.density import gaussian_lowpass, splat
    from templearn.geometry import rotate_points
    from templearn.sample import CLASS_NAME, TEMPLATE, Grid, write_molecules
    from templearn.structure import read_structure

    model = read_structure(structure)
    weights = model.atomic_numbers.astype(np.float64)
    com = (model.coords * weights[:, None]).sum(axis=0) / weights.sum()
    centred = model.coords - com
    density = np.zeros(SAMPLE_ZYX)
    rows = []
    for k, (voxel_xyz, angles) in enumerate(MOLECULES):
        position = np.array(voxel_xyz, dtype=np.float64) * VOXEL
        placed = rotate_points(centred, np.array(angles), position) / VOXEL
        density += splat(placed[:, ::-1], weights, SAMPLE_ZYX)
        rows.append({
            star.TOMO_NAME: "tiny",
            **{c: float(voxel_xyz[a]) for a, c in enumerate(star.COORDINATES)},
            **{c: float(position[a]) for a, c in enumerate(star.POSITION_ANGST)},
            **{c: float(angles[a]) for a, c in enumerate(star.ANGLES)},
            star.MOLECULE_NAME: STRUCTURE_ID, star.MOLECULE_CLASS: TEMPLATE,
            CLASS_NAME: "esterase", star.CLASS_ID: 1, star.MASS_DA: model.mass_da(),
            star.MAP_FILE: f"../maps/{map_file.name}",
            star.STRUCTURE_FILE: f"../{structure.name}", star.INSTANCE_ID: k + 1,
        })
    path = write_molecules(HERE / "sample" / "molecules.star", pd.DataFrame(rows),
                           Grid(SAMPLE_ZYX, VOXEL))
    return path, gaussian_lowpass(density, VOXEL, RESOLUTION)


def make_tilt_series(density: np.ndarray) -> Path:
    """tilt/tiltseries.mrc (5 tilts of 32×32 px, 8 Å), .tlt and meta.json: projections of
    the sample density (templearn.projector) plus Gaussian noise."""
    from templearn.projector import TiltGeometry, project
    from templearn.sample import Grid
    from templearn.tiltseries import TiltSeries, write_tilt_series

    nz, _, nx = density.shape
    images = project(density.astype(np.float32), TiltGeometry(TILTS, nz, nx, nx)) * VOXEL
    rng = np.random.default_rng(SEED)
    images = images + rng.normal(0.0, NOISE_SIGMA * float(images.max()), images.shape)
    grid = Grid(SAMPLE_ZYX, VOXEL)
    meta = {
        "backend": "test data: line integrals of the sample density + Gaussian noise",
        "pixel_size": VOXEL, "angles_nominal": list(TILTS), "noise_sigma": NOISE_SIGMA,
        "seed": SEED, "molecules": "../sample/molecules.star",
        "sample": {"shape_xyz": list(SAMPLE_ZYX[::-1]), "voxel_size": VOXEL,
                   "centre_angst": grid.centre_angst.tolist(),
                   "thickness_angst": SAMPLE_ZYX[0] * VOXEL},
    }
    return write_tilt_series(HERE / "tilt", TiltSeries(images.astype(np.float32),
                                                       np.array(TILTS), VOXEL, meta))


def drop_timestamp(path: Path) -> None:
    """Remove starfile's "Created by ... at <time>" line, so reruns give the same bytes."""
    from templearn.files import atomic_write_text

    lines = path.read_text().splitlines(keepends=True)
    atomic_write_text(path, "".join(line for line in lines
                                    if not line.startswith("# Created by the starfile")))


def fix_mrc_label(path: Path) -> None:
    """Replace mrcfile's "Created by mrcfile.py <time>" label, so reruns give the same
    bytes."""
    import mrcfile

    with mrcfile.open(path, mode="r+") as mrc:
        mrc.header.label[0] = b"templearn tests/data/make_test_data.py".ljust(80)
        mrc.header.nlabl = 1


def main() -> int:
    structure = copy_structure()
    map_file = make_map(structure)
    molecules, density = make_sample(structure, map_file)
    stack = make_tilt_series(density)
    for star_file in (map_file.parent / "maps.star", molecules):
        drop_timestamp(star_file)
    for mrc_file in (map_file, stack):
        fix_mrc_label(mrc_file)
    for path in (structure, map_file, map_file.parent / "maps.star", molecules, stack):
        print(path.relative_to(HERE))
    return 0


if __name__ == "__main__":
    sys.exit(main())
