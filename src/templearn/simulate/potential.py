"""The specimen's electrostatic potential (V) on a voxel grid: molecules in vitreous ice.

Units. A structure map from `templearn density` holds atomic numbers per voxel (its sum
is the molecule's ΣZ over heavy atoms). The volume integral of an atom's potential is
`h²/(2π·m0·e)·f_e(0) = 47.88 V·Å² · f_e(0)`; with Peng's (1996) f_e(0) for C, N, O, S and
the implicit hydrogens of an average residue this is ≈ 21 V·Å³ per unit of heavy-atom Z
(18 for nucleotides), i.e. a protein mean inner potential of ≈ 8 V; water gives ice
4.87 V per g/cm³ (4.5 V at 0.93 g/cm³). The uniform part of a laterally infinite ice slab
only adds a constant phase, so it is left out of the volume; each molecule displaces its
own volume (1.21 Å³/Da) of ice, so its map is scaled to its net potential
`∫V − MIP_ice·volume`. What remains of the ice is an optional Gaussian random-field
texture (suppressed inside molecules) and the thickness, which enters through inelastic
loss (`exposure.py`). Gold fiducials are balls of gold's mean inner potential.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from templearn import geometry, star
from templearn.errors import InputError
from templearn.mrc import Volume
from templearn.sample import PROTEIN_VOLUME_PER_DA, Grid, to_grid_voxels
from templearn.simulate.params import SpecimenParams

#: Integrated potential per unit of heavy-atom Z of a biomolecule (V·Å³), see module doc.
POTENTIAL_PER_Z = 21.0
#: Mean inner potential of vitreous ice per unit density (V per g/cm³).
ICE_POTENTIAL_PER_DENSITY = 4.87
GOLD_POTENTIAL = 30.0
#: Mean inner potential of protein (V), used to tell where ice is displaced.
PROTEIN_POTENTIAL = 8.0
#: Map voxels below this fraction of the maximum are not placed (≈1% of the integral).
SIGNIFICANT = 1e-2
#: Map voxels rotated per batch (bounds memory).
PLACEMENT_POINTS = 2_000_000


def ice_potential(density: float) -> float:
    """Mean inner potential (V) of vitreous ice of `density` g/cm³."""
    return ICE_POTENTIAL_PER_DENSITY * density


def potential_grid(sample: Grid, voxel_size: float) -> Grid:
    """The grid covering the sample's extent at `voxel_size` (centres coincide)."""
    extent = np.array(sample.shape_zyx) * sample.voxel_size
    return Grid(tuple(max(1, round(e / voxel_size)) for e in extent), voxel_size)


def molecule_potentials(table: pd.DataFrame, maps: dict[str, Volume],
                        ice_density: float) -> dict[str, Volume]:
    """Each map scaled to its molecule's net potential (V) over displaced ice."""
    mip_ice = ice_potential(ice_density)
    masses = table.groupby(star.MAP_FILE)[star.MASS_DA].first()
    scaled = {}
    for key, volume in maps.items():
        potential = volume.data.astype(np.float64) * POTENTIAL_PER_Z / volume.voxel_size**3
        integral = potential.sum() * volume.voxel_size**3
        displaced = mip_ice * float(masses.get(key, 0.0)) * PROTEIN_VOLUME_PER_DA
        factor = 1.0 - displaced / integral if integral > 0 else 0.0  # < 0: lighter than ice
        scaled[key] = Volume((potential * factor).astype(np.float32), volume.voxel_size)
    return scaled


def _splat(total: np.ndarray, padded_shape: tuple[int, int, int], positions: np.ndarray,
           values: np.ndarray) -> None:
    """Add `values` at fractional `positions` (`(n, 3)` zyx voxels of the unpadded grid)
    to `total` (the flattened grid with a one-voxel border), spread trilinearly over the 8
    neighbours. Anything outside the grid lands in the border, which is discarded."""
    base = np.zeros(len(values), dtype=np.int64)
    axis_weights = []
    for axis in range(3):
        shifted = np.ascontiguousarray(positions[:, axis], dtype=np.float32) + np.float32(1.0)
        lower = np.clip(np.floor(shifted), 0, padded_shape[axis] - 2)
        frac = np.clip(shifted - lower, 0.0, 1.0)
        base = base * padded_shape[axis] + lower.astype(np.int64)
        axis_weights.append((1.0 - frac, frac))
    for dz, dy, dx in itertools.product((0, 1), repeat=3):
        weight = values * axis_weights[0][dz] * axis_weights[1][dy] * axis_weights[2][dx]
        offset = (dz * padded_shape[1] + dy) * padded_shape[2] + dx
        total += np.bincount(base + offset, weight, minlength=total.size)


def place_molecules(table: pd.DataFrame, sample: Grid, maps: dict[str, Volume],
                    grid: Grid) -> np.ndarray:
    """Sum of every molecule's map, rotated and placed, on `grid` (`[z, y, x]`, float32).

    Each significant map voxel is rotated to its place and spread trilinearly over the 8
    nearest grid voxels, so every molecule keeps its integral and centre of mass.
    """
    voxel_sizes = {m.voxel_size for m in maps.values()}
    if len(voxel_sizes) != 1 or not np.isclose(voxel_sizes.pop(), grid.voxel_size):
        raise InputError("all structure maps must share the simulation grid's voxel size")
    centres = to_grid_voxels(table[list(star.POSITION_ANGST)].to_numpy(float), sample,
                             grid)[:, ::-1]
    rotations = geometry.xyz_to_zyx(geometry.relion_to_matrix(
        table[list(star.ANGLES)].to_numpy(float))).astype(np.float32)
    keys = table[star.MAP_FILE].astype(str).to_numpy()
    padded_shape = tuple(n + 2 for n in grid.shape_zyx)
    total = np.zeros(int(np.prod(padded_shape)))
    positions, values, size = [], [], 0
    for key in np.unique(keys):
        data = maps[key].data
        occupied = data > SIGNIFICANT * data.max() if data.max() > 0 else data != 0
        offsets = (np.argwhere(occupied) - (np.array(data.shape) - 1) / 2.0).astype(np.float32)
        kept = data[occupied].astype(np.float64)
        if kept.sum() > 0:  # the faint tail left out is given back proportionally
            kept *= data.sum(dtype=np.float64) / kept.sum()
        rows = np.flatnonzero(keys == key)
        placed = centres[rows, None, :] + offsets @ np.swapaxes(rotations[rows], 1, 2)
        positions.append(placed.reshape(-1, 3))
        values.append(np.tile(kept.astype(np.float32), len(rows)))
        size += len(values[-1])
        if size > PLACEMENT_POINTS:
            _splat(total, padded_shape, np.concatenate(positions), np.concatenate(values))
            positions, values, size = [], [], 0
    if positions:
        _splat(total, padded_shape, np.concatenate(positions), np.concatenate(values))
    inner = total.reshape(padded_shape)[1:-1, 1:-1, 1:-1]
    return inner.astype(np.float32)


def ice_texture(shape_zyx: tuple[int, int, int], voxel_size: float, std: float,
                length: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian random field with s.d. `std` (V) and correlation length `length` (Å)."""
    noise = rng.standard_normal(shape_zyx).astype(np.float32)
    sigma = length / voxel_size
    if sigma >= 0.5:
        freqs = np.meshgrid(*(np.fft.fftfreq(n) for n in shape_zyx[:2]),
                            np.fft.rfftfreq(shape_zyx[2]), indexing="ij")
        k2 = sum(f**2 for f in freqs)
        noise = np.fft.irfftn(np.fft.rfftn(noise) * np.exp(-2 * np.pi**2 * sigma**2 * k2),
                              s=shape_zyx, axes=(0, 1, 2)).astype(np.float32)
    return noise * (std / max(float(noise.std()), 1e-12))


def fiducial_positions(grid: Grid, n: int, radius: float,
                       rng: np.random.Generator) -> np.ndarray:
    """Gold bead centres (x y z, Å from the grid corner) on the slab's two surfaces."""
    extent = (np.array(grid.shape_zyx[::-1]) - 1) * grid.voxel_size
    xy = rng.uniform(0.0, 1.0, (n, 2)) * extent[:2]
    top = rng.random(n) < 0.5
    z = np.where(top, extent[2] - radius, radius)
    return np.column_stack([xy, z])


def add_balls(volume: np.ndarray, grid: Grid, centres_xyz: np.ndarray, radius: float,
              value: float) -> None:
    """Add anti-aliased balls (edge ramp one voxel wide) of potential `value` in place."""
    reach = radius / grid.voxel_size + 1.5
    for centre in centres_xyz / grid.voxel_size:
        lo = np.maximum(np.floor(centre - reach).astype(int), 0)
        hi = np.minimum(np.ceil(centre + reach).astype(int) + 1, grid.shape_zyx[::-1])
        if np.any(hi <= lo):
            continue
        zz, yy, xx = np.meshgrid(*(np.arange(lo[a], hi[a]) for a in (2, 1, 0)), indexing="ij")
        distance = np.sqrt((xx - centre[0])**2 + (yy - centre[1])**2 + (zz - centre[2])**2)
        weight = np.clip(radius / grid.voxel_size + 0.5 - distance, 0.0, 1.0)
        volume[lo[2]:hi[2], lo[1]:hi[1], lo[0]:hi[0]] += value * weight


def specimen_potential(table: pd.DataFrame, sample: Grid, maps: dict[str, Volume],
                       ice_density: float, params: SpecimenParams,
                       rng: np.random.Generator, contrast_scale: float = 1.0,
                       ) -> tuple[np.ndarray, Grid, np.ndarray]:
    """Net potential (V, `[z, y, x]`) of the sample over uniform ice, its grid, and the
    gold fiducial centres (x y z, Å from the sample corner). The molecules' net potential
    is multiplied by `contrast_scale` (domain randomisation of particle contrast)."""
    voxel = next(iter(maps.values())).voxel_size
    grid = potential_grid(sample, voxel)
    volume = place_molecules(table, sample, molecule_potentials(table, maps, ice_density),
                             grid)
    mip_ice = ice_potential(ice_density)
    occupied = np.clip(volume / (PROTEIN_POTENTIAL - mip_ice), 0.0, 1.0)
    if contrast_scale != 1.0:
        volume *= contrast_scale
    if params.ice_texture > 0:
        texture = ice_texture(grid.shape_zyx, voxel, params.ice_texture * mip_ice,
                              params.ice_texture_length, rng)
        volume += texture * (1.0 - occupied)
    beads = fiducial_positions(grid, params.fiducials, params.fiducial_radius, rng)
    add_balls(volume, grid, beads, params.fiducial_radius,
              GOLD_POTENTIAL - ice_potential(ice_density))
    shift = sample.centre_angst - grid.centre_angst  # grid corner -> sample corner frame
    return volume, grid, beads + shift
