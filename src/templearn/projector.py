"""The tilt-series projection operator, shared by the simulators and the reconstructor.

Geometry (ARCHITECTURE.md, IMOD `tilt -PERPENDICULAR` + `trimvol -rx`): tilt axis along Y;
voxel `(z, x)` of every Y slice projects at detector coordinate
`u = cu + (x - cx)·cosθ + (z - cz)·sinθ`, centres `c = (n - 1) / 2`. The operator is a
sparse matrix (voxel-driven, linear interpolation onto the two nearest detector pixels)
built once per geometry and applied to all Y slices in one sparse × dense product; its
transpose is the back-projector, so simulation and reconstruction cannot disagree.
Projections are line integrals in voxel lengths (a uniform slab of thickness `t` voxels
projects to `t / cosθ`).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from itertools import pairwise

import numpy as np
import scipy.sparse as sp

#: Sparse products are split over Y into this many threads (scipy releases the GIL).
THREADS = 2


@dataclass(frozen=True)
class TiltGeometry:
    """Tilt angles (degrees), slice shape `(nz, nx)` and detector width `nu` (pixels)."""

    angles_deg: tuple[float, ...]
    nz: int
    nx: int
    nu: int

    @cached_property
    def matrix(self) -> sp.csr_matrix:
        """Projection matrix, `(n_tilts·nu) × (nz·nx)`, float32."""
        theta = np.deg2rad(np.asarray(self.angles_deg, dtype=np.float64))
        z = np.arange(self.nz, dtype=np.float64) - (self.nz - 1) / 2.0
        x = np.arange(self.nx, dtype=np.float64) - (self.nx - 1) / 2.0
        u = ((self.nu - 1) / 2.0 + np.cos(theta)[:, None, None] * x[None, None, :]
             + np.sin(theta)[:, None, None] * z[None, :, None])  # [tilt, z, x]
        lower = np.floor(u)
        frac = (u - lower).astype(np.float32)
        lower = lower.astype(np.int64)
        tilt_offset = (np.arange(len(theta)) * self.nu)[:, None, None]
        voxel = np.broadcast_to(np.arange(self.nz * self.nx).reshape(self.nz, self.nx), u.shape)
        rows, cols, vals = [], [], []
        for shift, weight in ((0, 1.0 - frac), (1, frac)):
            pixel = lower + shift
            keep = (pixel >= 0) & (pixel < self.nu) & (weight > 0)
            rows.append((pixel + tilt_offset)[keep])
            cols.append(voxel[keep])
            vals.append(weight[keep])
        shape = (len(theta) * self.nu, self.nz * self.nx)
        matrix = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows),
                                                        np.concatenate(cols))), shape=shape)
        matrix.sum_duplicates()
        return matrix

    @cached_property
    def transpose(self) -> sp.csr_matrix:
        """Back-projection matrix, `(nz·nx) × (n_tilts·nu)`, float32."""
        return self.matrix.T.tocsr()


def _apply(matrix: sp.csr_matrix, columns: np.ndarray) -> np.ndarray:
    """`matrix @ columns` with the columns (one per Y row) split over threads."""
    columns = np.ascontiguousarray(columns, dtype=np.float32)
    n = columns.shape[1]
    if n < 2 * THREADS:
        return np.asarray(matrix @ columns)
    bounds = np.linspace(0, n, THREADS + 1).astype(int)
    with ThreadPoolExecutor(THREADS) as pool:
        parts = pool.map(lambda b: np.asarray(matrix @ np.ascontiguousarray(columns[:, b[0]:b[1]])),
                         pairwise(bounds))
        return np.concatenate(list(parts), axis=1)


def project(volume_zyx: np.ndarray, geometry: TiltGeometry) -> np.ndarray:
    """Line integrals (voxel lengths) of a `[z, y, x]` volume -> tilt series `[tilt, y, u]`."""
    nz, ny, nx = volume_zyx.shape
    if (nz, nx) != (geometry.nz, geometry.nx):
        raise ValueError(f"volume slices {(nz, nx)} do not match the geometry "
                         f"{(geometry.nz, geometry.nx)}")
    columns = np.transpose(volume_zyx, (0, 2, 1)).reshape(nz * nx, ny)
    sinograms = _apply(geometry.matrix, columns).reshape(len(geometry.angles_deg), geometry.nu, ny)
    return np.ascontiguousarray(np.transpose(sinograms, (0, 2, 1)))


def backproject(tilt_series: np.ndarray, geometry: TiltGeometry) -> np.ndarray:
    """Adjoint of `project`: `[tilt, y, u]` -> `[z, y, x]` (unweighted sum over tilts)."""
    n_tilts, ny, nu = tilt_series.shape
    if (n_tilts, nu) != (len(geometry.angles_deg), geometry.nu):
        raise ValueError(f"tilt series {(n_tilts, nu)} does not match the geometry "
                         f"{(len(geometry.angles_deg), geometry.nu)}")
    columns = np.transpose(tilt_series, (0, 2, 1)).reshape(n_tilts * nu, ny)
    slices = _apply(geometry.transpose, columns).reshape(geometry.nz, geometry.nx, ny)
    return np.ascontiguousarray(np.transpose(slices, (0, 2, 1)))
