"""Atoms → density maps on an e2pdb2mrc-like scale, fully vectorised.

Each atom's atomic number is spread over its eight neighbouring voxels (trilinear
weights, which keep both the total and the centre of mass exact), then the map is
low-passed with a Gaussian whose Fourier transform falls to 1/e at 1/resolution
(σ = resolution / (π√2) ≈ 0.225 × resolution, the EMAN2/ChimeraX convention). Before
the low-pass every voxel holds the sum of the atomic numbers inside it, as in
e2pdb2mrc, so thresholds from the Template Learning paper (e.g. 100) carry over.

The molecule's centre of mass sits at the box centre, voxel index (n - 1) / 2; the MRC
origin is set so that the map overlays the input model in ChimeraX.
"""

from __future__ import annotations

import math

import numpy as np

from templearn.errors import InputError
from templearn.mrc import Volume

#: Gaussian σ (Å) per Å of resolution: the Fourier transform falls to 1/e at 1/resolution.
SIGMA_PER_RESOLUTION = 1.0 / (math.pi * math.sqrt(2.0))


def gaussian_sigma(resolution: float) -> float:
    """Real-space σ (Å) of the Gaussian low-pass at `resolution` (Å)."""
    return SIGMA_PER_RESOLUTION * resolution


def gaussian_lowpass(data: np.ndarray, voxel_size: float, resolution: float) -> np.ndarray:
    """Low-pass a map with the Gaussian of `resolution` (Å), in Fourier space (sum preserved)."""
    if resolution <= 0:
        return data.astype(np.float32)
    sigma = gaussian_sigma(resolution)
    spectrum = np.fft.rfftn(data)
    freqs = [np.fft.fftfreq(n, d=voxel_size) for n in data.shape[:-1]]
    freqs.append(np.fft.rfftfreq(data.shape[-1], d=voxel_size))
    for axis, f in enumerate(freqs):
        shape = [1] * data.ndim
        shape[axis] = len(f)
        spectrum *= np.exp(-2.0 * math.pi**2 * sigma**2 * f**2).reshape(shape)
    return np.fft.irfftn(spectrum, s=data.shape, axes=tuple(range(data.ndim))).astype(np.float32)


def auto_box(coords: np.ndarray, centre: np.ndarray, voxel_size: float,
             resolution: float) -> int:
    """Smallest even cubic box (voxels) holding every atom plus 3σ of blur and one voxel."""
    radius = float(np.linalg.norm(coords - centre, axis=1).max())
    half = (radius + 3.0 * gaussian_sigma(resolution)) / voxel_size + 1.0
    return 2 * math.ceil(half)


def splat(points_zyx: np.ndarray, weights: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Spread weights at fractional voxel positions (n, 3; z y x) trilinearly onto a grid."""
    base = np.floor(points_zyx).astype(np.int64)
    frac = points_zyx - base
    grid = np.zeros(int(np.prod(shape)), dtype=np.float64)
    for corner in np.ndindex(2, 2, 2):
        offset = np.array(corner)
        idx = base + offset
        w = weights * np.prod(np.where(offset == 1, frac, 1.0 - frac), axis=1)
        inside = np.all((idx >= 0) & (idx < np.array(shape)), axis=1)
        flat = np.ravel_multi_index(tuple(idx[inside].T), shape)
        grid += np.bincount(flat, weights=w[inside], minlength=grid.size)
    return grid.reshape(shape)


def density_map(coords: np.ndarray, atomic_numbers: np.ndarray, voxel_size: float = 16.0,
                resolution: float = 32.0, box: int | None = None, name: str = "") -> Volume:
    """Density map of atoms (x y z Å) weighted by atomic number, centred on their centre of mass.

    `box` is the cubic box edge in voxels (automatic and even when None). Raises
    InputError if the molecule does not fit the requested box.
    """
    if voxel_size <= 0:
        raise InputError(f"voxel size must be positive, got {voxel_size}")
    if resolution < 0:
        raise InputError(f"resolution must be non-negative, got {resolution}")
    weights = np.asarray(atomic_numbers, dtype=np.float64)
    centre = (coords * weights[:, None]).sum(axis=0) / weights.sum()
    needed = auto_box(coords, centre, voxel_size, resolution)
    if box is None:
        box = needed
    elif box < 2:
        raise InputError(f"box must be at least 2 voxels, got {box}")
    grid_centre = (box - 1) / 2.0
    points_xyz = (coords - centre) / voxel_size + grid_centre
    if points_xyz.min() < 0 or points_xyz.max() > box - 1:
        raise InputError(f"{name or 'molecule'} does not fit a {box}-voxel box at "
                         f"{voxel_size} Å/voxel (needs about {needed})")
    shape = (box, box, box)
    raw = splat(points_xyz[:, ::-1], weights, shape)
    data = gaussian_lowpass(raw, voxel_size, resolution)
    origin = tuple(float(c) for c in centre - grid_centre * voxel_size)
    return Volume(data=data, voxel_size=float(voxel_size), origin=origin)  # type: ignore[arg-type]
