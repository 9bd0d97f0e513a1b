"""SIRT: `x ← x + C·Aᵀ·R·(b − A·x)`, R and C the inverse row and column sums of the projector.

A is `templearn.projector`'s matrix, shared with the simulator. No non-negativity
constraint (cryo-ET densities are contrast, not mass); relaxation 1; starts from zero.
"""

from __future__ import annotations

import numpy as np

from templearn.progress import track
from templearn.projector import TiltGeometry, backproject, project


def _inverse(sums: np.ndarray) -> np.ndarray:
    """1 / sums, with 0 where a ray or voxel meets nothing."""
    out = np.zeros_like(sums, dtype=np.float32)
    np.divide(1.0, sums, out=out, where=sums > 1e-6)
    return out


def sirt(images: np.ndarray, angles_deg: np.ndarray, thickness: int, iterations: int,
         residuals: list[float] | None = None) -> np.ndarray:
    """Tomogram `[z, y, x]` (float32) after `iterations` SIRT updates from a tilt series
    `[tilt, y, x]`. If `residuals` is given, ‖b − A·x‖₂ before each update is appended."""
    if iterations < 1:
        raise ValueError(f"SIRT needs at least one iteration, got {iterations}")
    n_tilts, ny, nu = images.shape
    geometry = TiltGeometry(tuple(float(a) for a in angles_deg), thickness, nu, nu)
    row_weights = _inverse(np.asarray(geometry.matrix.sum(axis=1)).ravel())
    col_weights = _inverse(np.asarray(geometry.transpose.sum(axis=1)).ravel())
    row_weights = row_weights.reshape(n_tilts, 1, nu)
    col_weights = col_weights.reshape(thickness, 1, nu)
    measured = images.astype(np.float32, copy=False)
    volume = np.zeros((thickness, ny, nu), dtype=np.float32)
    for _ in track(range(iterations), "SIRT iterations"):
        residual = measured - project(volume, geometry)
        if residuals is not None:
            residuals.append(float(np.linalg.norm(residual)))
        residual *= row_weights
        update = backproject(residual, geometry)
        update *= col_weights
        volume += update
    return volume
