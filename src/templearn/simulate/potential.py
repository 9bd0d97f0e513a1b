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

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from templearn import geometry, star
from templearn.errors import InputError
from templearn.mrc import Volume
from templearn.sample import PROTEIN_VOLUME_PER_DA, Grid, to_grid_voxels

#: Integrated potential per unit of heavy-atom Z of a biomolecule (V·Å³), see module doc.
POTENTIAL_PER_Z = 21.0
#: Mean inner potential of vitreous ice per unit density (V per g/cm³).
ICE_POTENTIAL_PER_DENSITY = 4.87
GOLD_POTENTIAL = 30.0
#: Mean inner potential of protein (V), used to tell where ice is displaced.
PROTEIN_POTENTIAL = 8.0
#: Molecules placed per compiled call (bounds memory).
PLACEMENT_CHUNK = 256


def ice_potential(density: float) -> float:
    """Mean inner potential (V) of vitreous ice of `density` g/cm³."""
    return ICE_POTENTIAL_PER_DENSITY * density


@dataclass(frozen=True)
class SpecimenParams:
    """Ice texture (relative s.d. and correlation length, Å) and gold fiducials."""

    ice_texture: float = 0.1
    ice_texture_length: float = 10.0
    fiducials: int = 0
    fiducial_radius: float = 50.0


def potential_grid(sample: Grid, voxel_size: float) -> Grid:
    """The grid covering the sample's extent at `voxel_size` (centres coincide)."""
    extent = np.array(sample.shape_zyx) * sample.voxel_size
    return Grid(tuple(max(1, round(e / voxel_size)) for e in extent), voxel_size)


def _stacked_maps(maps: list[Volume]) -> tuple[np.ndarray, np.ndarray, float]:
    """Maps zero-padded into one `(M + 1, B, B, B)` stack (the last map empty), the
    centre (zyx voxel) of each in the stack, and the largest support radius (voxels)."""
    box = max(max(m.data.shape) for m in maps) + 2
    stack = np.zeros((len(maps) + 1, box, box, box), dtype=np.float32)
    centres = np.zeros((len(maps) + 1, 3))
    radius = 1.0
    for i, m in enumerate(maps):
        before = [(box - n) // 2 for n in m.data.shape]
        region = tuple(slice(b, b + n) for b, n in zip(before, m.data.shape, strict=True))
        stack[(i, *region)] = m.data
        centre = (np.array(m.data.shape) - 1) / 2.0
        centres[i] = centre + before
        support = np.argwhere(np.abs(m.data) > 1e-3 * np.abs(m.data).max())
        if len(support):
            radius = max(radius, float(np.linalg.norm(support - centre, axis=1).max()) + 1.0)
    return stack, centres, radius


@partial(jax.jit, static_argnames=("box",), donate_argnums=(0,))
def _place_chunk(volume, maps, map_centres, map_index, centres_zyx, rotations_zyx, box: int):
    """Add the rotated maps of one chunk of molecules to the flattened `volume`."""
    shape = volume.shape
    local = jnp.stack(jnp.meshgrid(*(jnp.arange(box),) * 3, indexing="ij"), -1).reshape(-1, 3)
    starts = jnp.floor(centres_zyx - (box - 1) / 2.0).astype(jnp.int32)  # (K, 3)
    voxels = starts[:, None, :] + local[None, :, :]  # (K, P, 3)
    offsets = voxels - centres_zyx[:, None, :]
    source = jnp.einsum("kpi,kij->kpj", offsets, rotations_zyx) + map_centres[map_index][:, None]
    b = maps.shape[1]
    source = jnp.clip(source, 0.0, b - 1.001)
    lower = jnp.floor(source).astype(jnp.int32)
    frac = source - lower
    flat_maps = maps.reshape(-1)
    base = map_index[:, None] * b**3
    values = jnp.zeros(voxels.shape[:2], dtype=maps.dtype)
    for corner in range(8):
        bits = jnp.array([(corner >> 2) & 1, (corner >> 1) & 1, corner & 1])
        idx = lower + bits
        weight = jnp.prod(jnp.where(bits == 1, frac, 1.0 - frac), axis=-1)
        values += weight * flat_maps[base + (idx[..., 0] * b + idx[..., 1]) * b + idx[..., 2]]
    inside = jnp.all((voxels >= 0) & (voxels < jnp.array(shape)), axis=-1)
    flat = (voxels[..., 0] * shape[1] + voxels[..., 1]) * shape[2] + voxels[..., 2]
    flat = jnp.where(inside, flat, volume.size)
    return volume.reshape(-1).at[flat.reshape(-1)].add(values.reshape(-1), mode="drop") \
        .reshape(shape)


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
        factor = max(0.0, 1.0 - displaced / integral) if integral > 0 else 0.0
        scaled[key] = Volume((potential * factor).astype(np.float32), volume.voxel_size)
    return scaled


def place_molecules(table: pd.DataFrame, sample: Grid, maps: dict[str, Volume],
                    grid: Grid) -> np.ndarray:
    """Sum of every molecule's map, rotated and placed, on `grid` (`[z, y, x]`)."""
    keys = sorted(maps)
    voxel_sizes = {maps[k].voxel_size for k in keys}
    if len(voxel_sizes) != 1 or not np.isclose(voxel_sizes.pop(), grid.voxel_size):
        raise InputError("all structure maps must share the simulation grid's voxel size")
    stack, map_centres, radius = _stacked_maps([maps[k] for k in keys])
    index_of = {k: i for i, k in enumerate(keys)}
    map_index = np.array([index_of[str(k)] for k in table[star.MAP_FILE]], dtype=np.int32)
    centres = to_grid_voxels(table[list(star.POSITION_ANGST)].to_numpy(float), sample,
                             grid)[:, ::-1]
    rotations = geometry.xyz_to_zyx(geometry.relion_to_matrix(
        table[list(star.ANGLES)].to_numpy(float)))
    box = int(np.ceil(2 * radius)) + 2
    n = len(table)
    padded = -(-max(n, 1) // PLACEMENT_CHUNK) * PLACEMENT_CHUNK
    empty = len(keys)  # the stack's last map is all zeros
    map_index = np.concatenate([map_index, np.full(padded - n, empty, np.int32)])
    centres = np.concatenate([centres, np.zeros((padded - n, 3))]).astype(np.float32)
    rotations = np.concatenate([rotations, np.tile(np.eye(3), (padded - n, 1, 1))])
    volume = jnp.zeros(grid.shape_zyx, dtype=jnp.float32)
    maps_j, centres_j = jnp.asarray(stack), jnp.asarray(map_centres, dtype=jnp.float32)
    for start in range(0, padded, PLACEMENT_CHUNK):
        part = slice(start, start + PLACEMENT_CHUNK)
        volume = _place_chunk(volume, maps_j, centres_j, jnp.asarray(map_index[part]),
                              jnp.asarray(centres[part]),
                              jnp.asarray(rotations[part], dtype=jnp.float32), box=box)
    return np.array(volume)


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
                              s=shape_zyx).astype(np.float32)
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
                       rng: np.random.Generator) -> tuple[np.ndarray, Grid, np.ndarray]:
    """Net potential (V, `[z, y, x]`) of the sample over uniform ice, its grid, and the
    gold fiducial centres (x y z, Å from the sample corner)."""
    voxel = next(iter(maps.values())).voxel_size
    grid = potential_grid(sample, voxel)
    volume = place_molecules(table, sample, molecule_potentials(table, maps, ice_density),
                             grid)
    if params.ice_texture > 0:
        mip_ice = ice_potential(ice_density)
        texture = ice_texture(grid.shape_zyx, voxel, params.ice_texture * mip_ice,
                              params.ice_texture_length, rng)
        occupied = np.clip(volume / (PROTEIN_POTENTIAL - mip_ice), 0.0, 1.0)
        volume += texture * (1.0 - occupied)
    beads = fiducial_positions(grid, params.fiducials, params.fiducial_radius, rng)
    add_balls(volume, grid, beads, params.fiducial_radius,
              GOLD_POTENTIAL - ice_potential(ice_density))
    shift = sample.centre_angst - grid.centre_angst  # grid corner -> sample corner frame
    return volume, grid, beads + shift
