"""Picks tables in other programs' conventions: RELION 5, RELION 4, CSV and napari points.

Array → array; the `export` stage reads and writes the files.

Our picks (`templearn.star`): `rlnCoordinateX/Y/Z` are 0-based voxel indices of the
tomogram (voxel centres at integers), whose size n (x, y, z voxels) and voxel size v (Å)
the `general` block records.

RELION 5 (relion/src/jaz/tomography: `TomogramSet::loadTomogram` sets the tomogram centre to
`(w0/2.0, h0/2.0, d0/2.0)`, w0, h0, d0 being `rlnTomoSizeX/Y/Z` of tomograms.star, in
unbinned tilt-series pixels; `ParticleSet::getParticleCoordDecenteredPixel` turns
`rlnCenteredCoordinateX/Y/ZAngst` into 0-based tilt-series pixels as `c / s + centre`,
s = `rlnTomoTiltSeriesPixelSize` of the particle's optics group). Hence, with binning
b = v / s and N = `rlnTomoSize`:

    centred Å = (k · b − N / 2) · s = k · v − N · s / 2

The centre is N / 2 pixels, *not* the geometric centre (N − 1) / 2: on an odd axis it lies
half a pixel past the middle pixel, on an even one half a pixel past the middle of the
grid. N defaults to round(n · b); give RELION's own `rlnTomoSize` where the binned size was
rounded (an unbinned width of 4095 at bin 4 gives n = 1023 or 1024, not 4095 / 4).

RELION 4 (and RELION 5's fallback): `rlnCoordinateX/Y/Z` in 0-based pixels of size s, the
unbinned tilt-series pixel: k · b. Both keep `rlnAngleRot/Tilt/Psi` as they are (ZYZ,
object→tomogram, `templearn.geometry`); handedness and z flips are not changed here.

CSV and napari: z, y, x voxel indices (napari's axis order), so the points overlay a
tomogram opened at scale 1; at scale v (Å) both layers need the same scale.

copick (copick 1.31, `copick/models.py` `CopickPoint`; `copick/util/formats.py`
`em_to_copick_transform`: "corner-origin coordinates in pixels (0-indexed)" × voxel size =
Å): a point's `location` is in Å from the tomogram corner, voxel index k × voxel size v, so
the centre of voxel 0 is at 0 Å; the particle centre is `location + transformation[:3, 3]`.
The transformation's rotation maps object to tomogram, and copick's own RELION writer turns
it into angles as `Rotation.from_matrix(R).inv().as_euler("ZYZ")` (`_relion_eulers`), the
inverse of `templearn.geometry.relion_to_matrix`: the same convention as ours. copick's
default RELION 5 centre, tomogram shape / 2 × voxel size (`copick_tomogram_center`),
is the centre above at binning 1.

RELION 5 tomograms.star (`data_global`, one row per tomogram; `TomoBackprojectProgram` in
relion's `src/jaz/tomography/programs/reconstruct_tomogram.cpp` writes it):
`rlnTomoName`, `rlnTomoTiltSeriesPixelSize` s, `rlnTomoSizeX/Y/Z` N (unbinned pixels),
`rlnTomoTomogramBinning` b (absent: 1) and `rlnTomoReconstructedTomogram`, the MRC it wrote
at voxel size s · b with `int(N / b + 0.5)` voxels along x and y and `int(N / b)` along z.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from templearn import geometry, star
from templearn.errors import InputError
from templearn.sample import CLASS_NAME

CENTRED = ("rlnCenteredCoordinateXAngst", "rlnCenteredCoordinateYAngst",
           "rlnCenteredCoordinateZAngst")
OPTICS_GROUP, OPTICS_NAME = "rlnOpticsGroup", "rlnOpticsGroupName"
TS_PIXEL, IMAGE_PIXEL = "rlnTomoTiltSeriesPixelSize", "rlnImagePixelSize"
TOMO_SIZE = ("rlnTomoSizeX", "rlnTomoSizeY", "rlnTomoSizeZ")
STACKS_2D = "rlnTomoSubTomosAre2DStacks"
BINNING = "rlnTomoTomogramBinning"
RECONSTRUCTED = "rlnTomoReconstructedTomogram"
OPTICS_BLOCK, GLOBAL_BLOCK = "optics", "global"
#: Columns copied unchanged between our tables and RELION's.
CARRIED = (*star.ANGLES, CLASS_NAME, star.CLASS_ID, star.SCORE, star.CLUSTER_SIZE)
NAPARI_COLUMNS = ("index", "axis-0", "axis-1", "axis-2")


@dataclass(frozen=True)
class Grid:
    """Our tomogram's grid and, for RELION, the tilt series it was reconstructed from."""

    size: tuple[int, int, int]  # x, y, z voxels
    voxel: float  # Å
    pixel: float | None = None  # tilt-series (unbinned) pixel, Å; None: the voxel (bin 1)
    relion_size: tuple[int, int, int] | None = None  # rlnTomoSizeX/Y/Z; None: round(n · b)

    @property
    def ts_pixel(self) -> float:
        """RELION's pixel size s (Å)."""
        return self.pixel if self.pixel is not None else self.voxel

    def unbinned_size(self, pixel: np.ndarray | float | None = None) -> np.ndarray:
        """N = rlnTomoSizeX/Y/Z (tilt-series pixels), per row where `pixel` is an array."""
        if self.relion_size is not None:
            return np.asarray(self.relion_size, dtype=float)
        s = self.ts_pixel if pixel is None else np.asarray(pixel, dtype=float)[..., None]
        return np.rint(np.asarray(self.size, dtype=float) * self.voxel / s)


def to_centred(xyz: np.ndarray, grid: Grid) -> np.ndarray:
    """Voxel indices (x, y, z) → RELION 5 centred coordinates (Å)."""
    s = grid.ts_pixel
    return np.asarray(xyz, dtype=float) * grid.voxel - grid.unbinned_size() * s / 2


def from_centred(centred: np.ndarray, grid: Grid,
                 pixel: np.ndarray | float | None = None) -> np.ndarray:
    """RELION 5 centred Å → voxel indices; `pixel`: s per row (default the grid's)."""
    s = grid.ts_pixel if pixel is None else np.asarray(pixel, dtype=float)[..., None]
    return (np.asarray(centred, dtype=float) + grid.unbinned_size(pixel) * s / 2) / grid.voxel


def rescale(xyz: np.ndarray, from_pixel: np.ndarray | float, to_pixel: float) -> np.ndarray:
    """0-based pixel coordinates of size `from_pixel` (per row or one) → size `to_pixel`."""
    factor = np.asarray(from_pixel, dtype=float) / to_pixel
    return np.asarray(xyz, dtype=float) * (factor[..., None] if np.ndim(factor) else factor)


def optics_table(names: list[str], grid: Grid) -> pd.DataFrame:
    """One optics group per tomogram, named after it (as RELION 5 makes them)."""
    return pd.DataFrame({OPTICS_GROUP: np.arange(1, len(names) + 1), OPTICS_NAME: names,
                         TS_PIXEL: grid.ts_pixel, IMAGE_PIXEL: grid.ts_pixel})


def _relion_particles(picks: pd.DataFrame, grid: Grid, names: list[str],
                      coordinates: tuple[str, ...], values: np.ndarray) -> pd.DataFrame:
    group = {n: i + 1 for i, n in enumerate(names)}
    table = pd.DataFrame({star.TOMO_NAME: picks[star.TOMO_NAME].astype(str).to_numpy()})
    for column, axis in zip(coordinates, values.T, strict=True):
        table[column] = axis
    for column in CARRIED:
        if column in picks:
            table[column] = picks[column].to_numpy()
    table[OPTICS_GROUP] = table[star.TOMO_NAME].map(group).to_numpy()
    return table


def to_relion(picks: pd.DataFrame, grid: Grid, version: int) -> dict[str, pd.DataFrame]:
    """The data blocks of a RELION 5 (centred Å) or RELION 4 (pixels of size s) particles
    file; the `general` block also records our grid (tl columns, which RELION keeps)."""
    xyz = picks[list(star.COORDINATES)].to_numpy(float)
    names = sorted(picks[star.TOMO_NAME].astype(str).unique())
    if version == 5:
        particles = _relion_particles(picks, grid, names, CENTRED, to_centred(xyz, grid))
    else:
        particles = _relion_particles(picks, grid, names, star.COORDINATES,
                                      rescale(xyz, grid.voxel, grid.ts_pixel))
    general = star.general_table(grid.size[::-1], grid.voxel)
    general.insert(0, STACKS_2D, 0)
    return {star.GENERAL_BLOCK: general, OPTICS_BLOCK: optics_table(names, grid),
            star.PARTICLES_BLOCK: particles}


def tomograms_table(names: list[str], grid: Grid, tomogram: str | None = None) -> pd.DataFrame:
    """The tomograms.star `global` rows RELION 5 needs to place our particles (and the
    reconstructed tomogram's path where given)."""
    size = grid.unbinned_size().astype(int)
    table = pd.DataFrame({star.TOMO_NAME: names, TS_PIXEL: grid.ts_pixel})
    for column, n in zip(TOMO_SIZE, size, strict=True):
        table[column] = int(n)
    table[BINNING] = grid.voxel / grid.ts_pixel
    if tomogram is not None:
        table[RECONSTRUCTED] = tomogram
    return table


def reconstructed_size(tomo_size: tuple[int, int, int], binning: float) -> tuple[int, int, int]:
    """Voxels (x, y, z) of the tomogram RELION 5 reconstructs from rlnTomoSizeX/Y/Z at a
    binning: x and y rounded, z truncated (1e-6 absorbs binnings like 13.2 / 3.3)."""
    x, y, z = (n / binning for n in tomo_size)
    return int(x + 0.5), int(y + 0.5), int(z + 1e-6)


def tomogram_grid(row: pd.Series, size: tuple[int, int, int] | None = None) -> Grid:
    """The grid of a tomograms.star row: voxel s · b, rlnTomoSize kept for the centre, and
    `size` (the reconstructed MRC's, x, y, z) or else RELION's own rounding of N / b."""
    missing = [c for c in (TS_PIXEL, *TOMO_SIZE) if c not in row or pd.isna(row[c])]
    if missing:
        raise InputError(f"tomogram {row.get(star.TOMO_NAME)!r} has no {missing[0]}")
    pixel = float(row[TS_PIXEL])
    binning = float(row[BINNING]) if BINNING in row and not pd.isna(row[BINNING]) else 1.0
    tomo_size = (int(row[TOMO_SIZE[0]]), int(row[TOMO_SIZE[1]]), int(row[TOMO_SIZE[2]]))
    if not pixel > 0 or not binning > 0 or min(tomo_size) < 1:
        raise InputError(f"tomogram {row.get(star.TOMO_NAME)!r} has {TS_PIXEL} {pixel:g}, "
                         f"{BINNING} {binning:g} and size {tomo_size}: all must be positive")
    return Grid(size or reconstructed_size(tomo_size, binning), pixel * binning, pixel,
                tomo_size)


def _row_pixel(particles: pd.DataFrame, optics: pd.DataFrame | None) -> np.ndarray | None:
    """s of each particle from its optics group; None where the file gives none."""
    if optics is None or TS_PIXEL not in optics:
        return None
    if len(optics) == 1 or OPTICS_GROUP not in particles:
        return np.full(len(particles), float(optics[TS_PIXEL].iloc[0]))
    by_group = dict(zip(optics[OPTICS_GROUP].astype(int), optics[TS_PIXEL].astype(float),
                        strict=True))
    groups = particles[OPTICS_GROUP].astype(int)
    unknown = sorted(set(groups) - set(by_group))
    if unknown:
        raise InputError(f"{OPTICS_GROUP} {unknown[0]} is not in data_{OPTICS_BLOCK}")
    return groups.map(by_group).to_numpy(float)


def is_relion(particles: pd.DataFrame, optics: pd.DataFrame | None) -> bool:
    """Whether a particles table is RELION's: centred coordinates or a tilt-series pixel."""
    return all(c in particles for c in CENTRED) or (optics is not None and TS_PIXEL in optics)


def from_relion(particles: pd.DataFrame, optics: pd.DataFrame | None, grid: Grid,
                class_name: str, tomo_name: str) -> pd.DataFrame:
    """A RELION 5 or 4 particles table → our picks table on `grid` (centred coordinates
    preferred where both are present, as RELION 5 does). Particles without a class get
    `class_name`; without a tomogram, `tomo_name`."""
    pixel = _row_pixel(particles, optics)
    if all(c in particles for c in CENTRED):
        if pixel is None and grid.pixel is None:
            raise InputError(f"centred coordinates need the tilt-series pixel size: no "
                             f"{TS_PIXEL} in data_{OPTICS_BLOCK} (export: give "
                             f"--tilt-series-pixel)")
        xyz = from_centred(particles[list(CENTRED)].to_numpy(float), grid, pixel)
    elif all(c in particles for c in star.COORDINATES):
        xyz = rescale(particles[list(star.COORDINATES)].to_numpy(float),
                      grid.ts_pixel if pixel is None else pixel, grid.voxel)
    else:
        raise InputError(f"no coordinates ({', '.join(CENTRED)} or "
                         f"{', '.join(star.COORDINATES)})")
    names = (particles[star.TOMO_NAME].astype(str).to_numpy() if star.TOMO_NAME in particles
             else np.full(len(particles), tomo_name))
    table = pd.DataFrame({star.TOMO_NAME: names})
    for column, axis in zip(star.COORDINATES, xyz.T, strict=True):
        table[column] = axis
    for column in CARRIED:
        if column in particles:
            table[column] = particles[column].to_numpy()
    if CLASS_NAME not in table:
        table[CLASS_NAME] = class_name
    if star.CLASS_ID not in table:
        ids = {n: i + 1 for i, n in enumerate(sorted(table[CLASS_NAME].astype(str).unique()))}
        table[star.CLASS_ID] = table[CLASS_NAME].astype(str).map(ids).astype(np.int64)
    return table


def csv_table(picks: pd.DataFrame) -> pd.DataFrame:
    """Picks as z, y, x voxel indices with tomogram, class and the carried values."""
    table = pd.DataFrame({"tomogram": picks[star.TOMO_NAME].astype(str).to_numpy(),
                          "class": picks[CLASS_NAME].astype(str).to_numpy()})
    for axis, column in zip("zyx", star.COORDINATES[::-1], strict=True):
        table[axis] = picks[column].to_numpy(float)
    for column, name in ((star.ANGLES[0], "rot"), (star.ANGLES[1], "tilt"),
                         (star.ANGLES[2], "psi"), (star.SCORE, "score"),
                         (star.CLUSTER_SIZE, "cluster_size")):
        if column in picks:
            table[name] = picks[column].to_numpy()
    return table


def napari_points(picks: pd.DataFrame) -> pd.DataFrame:
    """napari's points CSV (its builtin reader): index, axis-0..2 = z, y, x voxels."""
    zyx = picks[list(star.COORDINATES[::-1])].to_numpy(float)
    return pd.DataFrame({"index": np.arange(len(zyx)), **{
        name: zyx[:, i] for i, name in enumerate(NAPARI_COLUMNS[1:])}})


def to_copick(picks: pd.DataFrame, voxel: float) -> tuple[np.ndarray, np.ndarray]:
    """Picks → copick locations (n, 3; Å from the corner) and 4×4 object→tomogram transforms
    (rotation from the RELION angles, identity without them; no translation)."""
    locations = picks[list(star.COORDINATES)].to_numpy(float) * voxel
    transforms = np.tile(np.eye(4), (len(picks), 1, 1))
    if all(c in picks for c in star.ANGLES) and len(picks):
        transforms[:, :3, :3] = geometry.relion_to_matrix(picks[list(star.ANGLES)].to_numpy(float))
    return locations, transforms


def from_copick(locations: np.ndarray, transforms: np.ndarray,
                voxel: float) -> tuple[np.ndarray, np.ndarray]:
    """copick points → voxel indices (x, y, z) of the particle centres (location plus the
    transform's shift) and RELION angles (n, 3) of the transforms' rotations."""
    locations = np.asarray(locations, dtype=float).reshape(-1, 3)
    transforms = np.asarray(transforms, dtype=float).reshape(-1, 4, 4)
    xyz = (locations + transforms[:, :3, 3]) / voxel
    with warnings.catch_warnings():  # scipy warns of gimbal lock at tilt 0 (e.g. identity)
        warnings.simplefilter("ignore", UserWarning)
        angles = (geometry.matrix_to_relion(transforms[:, :3, :3]) if len(transforms)
                  else np.zeros((0, 3)))
    return xyz, angles
