"""Weighted back-projection: radially filter every projection line, then back-project.

Back-projection reads the filtered lines including their padding (as IMOD's padded lines),
so voxels near the slab's corners, whose rays miss the detector at high tilt, are not
darkened.

The back-projector is the exact adjoint of `templearn.projector.project` (the simulator's
projector), so reconstruction and simulation share one geometry by construction.
"""

from __future__ import annotations

import numpy as np

from templearn.projector import TiltGeometry, backproject
from templearn.reconstruct.radial import RadialFilter, filter_projections, padded_length


def wbp_geometry(angles_deg: np.ndarray, thickness: int, width: int) -> TiltGeometry:
    """Back-projection geometry for images `width` pixels wide: a `[thickness, width]` slice
    and the padded detector of `filter_projections(..., extended=True)`, same centre."""
    return TiltGeometry(tuple(float(a) for a in angles_deg), thickness, width,
                        padded_length(width))


def weighted_backprojection(images: np.ndarray, angles_deg: np.ndarray, thickness: int,
                            radial: RadialFilter = RadialFilter(),
                            geometry: TiltGeometry | None = None) -> np.ndarray:
    """Tomogram `[z, y, x]` (float32, `thickness` × image height × image width) from a tilt
    series `[tilt, y, x]`; values are the projected density per voxel length. `geometry`
    (from `wbp_geometry`) may be passed to reuse its matrix across calls."""
    if geometry is None:
        geometry = wbp_geometry(angles_deg, thickness, images.shape[2])
    filtered = filter_projections(images, np.asarray(angles_deg), radial, extended=True)
    return backproject(filtered, geometry)
