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

import numpy as np
import scipy.sparse as sp

#: Sparse products are split over Y into this many threads (scipy releases the GIL).
THREADS = 2
#: Y rows per sparse product (cache blocking).
BLOCK = 64


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
        return self.transpose.T.tocsr()

    @cached_property
    def transpose(self) -> sp.csr_matrix:
        """Back-projection matrix, `(nz·nx) × (n_tilts·nu)`, float32.

        Built directly in CSR form, one row per voxel: each voxel has at most two entries per
        tilt (its two nearest detector pixels), already in column order and never duplicated,
        so no sorting or duplicate summing is needed (several times faster than via COO).
        """
        theta = np.deg2rad(np.asarray(self.angles_deg, dtype=np.float64))
        z = np.arange(self.nz, dtype=np.float64) - (self.nz - 1) / 2.0
        x = np.arange(self.nx, dtype=np.float64) - (self.nx - 1) / 2.0
        u = ((self.nu - 1) / 2.0 + z[:, None, None] * np.sin(theta)[None, None, :]
             + x[None, :, None] * np.cos(theta)[None, None, :])  # [z, x, tilt]
        lower = np.floor(u)
        frac = (u - lower).astype(np.float32)
        lower = lower.astype(np.int32)
        pixel = np.stack((lower, lower + 1), axis=-1)  # [z, x, tilt, 2]
        weight = np.stack((1.0 - frac, frac), axis=-1)
        keep = (pixel >= 0) & (pixel < self.nu) & (weight > 0)
        columns = pixel + (np.arange(len(theta), dtype=np.int32) * self.nu)[:, None]
        n_voxels = self.nz * self.nx
        indptr = np.zeros(n_voxels + 1, dtype=np.int64)
        np.cumsum(keep.reshape(n_voxels, -1).sum(axis=1), out=indptr[1:])
        shape = (n_voxels, len(theta) * self.nu)
        index_dtype = np.int32 if indptr[-1] < np.iinfo(np.int32).max else np.int64
        matrix = sp.csr_matrix((weight[keep], columns[keep].astype(index_dtype),
                                indptr.astype(index_dtype)), shape=shape)
        matrix.has_sorted_indices = True
        return matrix


def _apply(matrix: sp.csr_matrix, columns: np.ndarray) -> np.ndarray:
    """`matrix @ columns` with the columns (one per Y row) split into blocks over threads.

    Blocks of `BLOCK` columns keep the rows of `columns` that one matrix row touches in
    cache: at 512×512×200 this is ~1.7× faster than one block per thread.
    """
    columns = np.ascontiguousarray(columns, dtype=np.float32)
    n = columns.shape[1]
    if n <= BLOCK:
        return np.asarray(matrix @ columns)

    def block(start: int) -> np.ndarray:
        return np.asarray(matrix @ np.ascontiguousarray(columns[:, start:start + BLOCK]))

    with ThreadPoolExecutor(THREADS) as pool:
        return np.concatenate(list(pool.map(block, range(0, n, BLOCK))), axis=1)


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
