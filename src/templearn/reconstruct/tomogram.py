"""From a tilt series to a tomogram: binning, thickness and placement, then a backend.

`reconstruct_tomogram` is the one entry point (CLI and Python): it bins the series to the
output pixel size, takes the thickness from the simulated sample (`meta.json`) unless
told, runs the builtin WBP / SIRT / fake-SIRT or IMOD, and places the tomogram so that its
centre voxel `(n - 1) / 2` sits on the sample centre recorded by the simulator.
"""

from __future__ import annotations

import numpy as np

from templearn.binning import binned_shape, fourier_resize, lanczos_resize
from templearn.errors import InputError
from templearn.mrc import Volume
from templearn.progress import log, track
from templearn.reconstruct.params import ReconstructParams
from templearn.tiltseries import TiltSeries

#: Refuse tomograms larger than this (bytes of float32), rather than run out of memory.
MAX_BYTES = 64 * 2**30


def binning_factor(series: TiltSeries, params: ReconstructParams) -> float:
    """Reduction factor from `--bin` or `--pixel-size` (≥ 1: this is binning)."""
    factor = 1.0
    if params.bin_factor is not None:
        factor = float(params.bin_factor)
    elif params.pixel_size is not None:
        factor = params.pixel_size / series.pixel_size
    if factor < 1 - 1e-6:
        raise InputError(f"binning factor {factor:g} < 1: --bin / --pixel-size cannot make "
                         f"pixels smaller than the series' {series.pixel_size:g} Å")
    return factor


def bin_series(images: np.ndarray, shape_yx: tuple[int, int], antialias: str) -> np.ndarray:
    """Images resampled to `shape_yx` one view at a time (bounded memory, progress)."""
    resize = fourier_resize if antialias == "fourier" else lanczos_resize
    out = np.empty((images.shape[0], *shape_yx), dtype=np.float32)
    for t in track(range(images.shape[0]), f"binning ({antialias})"):
        out[t] = resize(images[t], shape_yx)
    return out


def sample_geometry(meta: dict) -> tuple[np.ndarray | None, float | None]:
    """Sample centre (x, y, z Å) and thickness (Å) recorded by the simulator, if any."""
    sample = meta.get("sample") if isinstance(meta, dict) else None
    if not isinstance(sample, dict):
        return None, None
    centre = sample.get("centre_angst")
    thickness = sample.get("thickness_angst")
    try:
        centre_xyz = None if centre is None else np.asarray(centre, dtype=np.float64)
        thickness_a = None if thickness is None else float(thickness)
    except (TypeError, ValueError):
        raise InputError("meta.json: sample centre_angst / thickness_angst are not numbers"
                         ) from None
    if centre_xyz is not None and centre_xyz.shape != (3,):
        raise InputError("meta.json: sample centre_angst must be [x, y, z]")
    return centre_xyz, thickness_a


def reconstruct_tomogram(series: TiltSeries, params: ReconstructParams = ReconstructParams()
                         ) -> Volume:
    """Tomogram `Volume` (`[z, y, x]` float32, voxel size Å, origin Å) of a tilt series, in
    the orientation of IMOD `tilt -PERPENDICULAR` + `trimvol -rx`. Raises InputError for
    parameters that cannot work with this series (checked before any heavy work)."""
    params.validate()
    n_tilts, ny, nx = series.images.shape
    factor = binning_factor(series, params)
    my, mx = binned_shape((ny, nx), factor) if factor != 1 else (ny, nx)
    voxel = series.pixel_size * nx / mx  # the exact x sampling of the resampled grid
    centre, sample_thickness = sample_geometry(series.meta)
    if params.thickness is not None:
        nz = params.thickness
    elif sample_thickness is not None:
        nz = round(sample_thickness / voxel)
        if nz < 1:
            raise InputError(f"meta.json: sample thickness {sample_thickness:g} Å is less than "
                             f"one {voxel:g} Å voxel; give --thickness")
    else:
        raise InputError("--thickness is required (no sample thickness in meta.json)")
    if nz * my * mx * 4 > MAX_BYTES:
        raise InputError(f"a {mx}×{my}×{nz} tomogram would need {nz * my * mx * 4 / 2**30:.0f} "
                         f"GiB; reduce --thickness or bin more")
    angles = np.asarray(series.angles_deg, dtype=np.float64)
    radial = params.radial_filter()
    log(f"reconstruct: {n_tilts} views {nx}×{ny} at {series.pixel_size:g} Å -> "
        f"{mx}×{my}×{nz} at {voxel:g} Å ({params.backend} {params.method})")
    if params.backend == "imod":
        from templearn.reconstruct.imod import imod_reconstruct, require_imod

        require_imod()
        images, imod_factor = series.images, factor
        if factor != 1 and params.antialias == "fourier":
            images, imod_factor = bin_series(series.images, (my, mx), "fourier"), 1.0
        data = imod_reconstruct(images, angles, series.pixel_size * (factor / imod_factor),
                                nz, radial, imod_factor)
        if imod_factor != 1:  # newstack samples every `factor` input pixels exactly
            voxel = series.pixel_size * factor
    else:
        images = series.images if (my, mx) == (ny, nx) else bin_series(
            series.images, (my, mx), params.antialias)
        if params.method == "sirt":
            from templearn.reconstruct.sirt import sirt

            data = sirt(images, angles, nz, params.iterations)
        else:
            from templearn.reconstruct.wbp import weighted_backprojection

            data = weighted_backprojection(images, angles, nz, radial)
    origin = (0.0, 0.0, 0.0)
    if centre is not None:
        shape_xyz = np.array(data.shape[::-1], dtype=np.float64)
        origin = tuple(float(v) for v in centre - (shape_xyz - 1) / 2.0 * voxel)
    return Volume(np.ascontiguousarray(data, dtype=np.float32), voxel, origin)
