"""Ground-truth label maps and target tables for a tomogram of a packed sample.

Two label shapes: `shape` (each template's map, rotated, resampled onto the tomogram
grid and binarised so that it encloses the molecule's volume, or at a given threshold)
and `sphere` (a ball per particle, radius per class). Background is 0, template class
k is k; distractors are 0, or one extra class if asked. Templates are painted after
distractors, so a template voxel is never hidden by a distractor's label.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter, map_coordinates

from templearn import geometry, star
from templearn.errors import InputError
from templearn.mrc import Volume
from templearn.sample import CLASS_NAME, PROTEIN_VOLUME_PER_DA, TEMPLATE, Grid, to_grid_voxels


@dataclass(frozen=True)
class LabelParams:
    mode: str = "shape"  # or "sphere"
    sigma: float = 1.0  # Gaussian σ (map voxels) before binarising a map, shape mode
    threshold: float | None = None  # None: enclose the molecular volume
    radii: dict[str, float] | None = None  # sphere radius (Å) per class; default from mass
    distractor_class: bool = False


@dataclass
class _Shape:
    """A binarisable map: blurred values, its threshold and extent."""

    values: np.ndarray
    threshold: float
    centre_zyx: np.ndarray
    voxel_size: float
    radius_angst: float


def _shape_of(volume: Volume, mass_da: float, params: LabelParams) -> _Shape:
    blurred = gaussian_filter(volume.data.astype(np.float64), params.sigma, mode="constant")
    if params.threshold is None:
        n = max(1, round(mass_da * PROTEIN_VOLUME_PER_DA / volume.voxel_size**3))
        threshold = float(np.partition(blurred.ravel(), blurred.size - n)[blurred.size - n])
    else:
        threshold = params.threshold
    centre = (np.array(blurred.shape) - 1) / 2.0
    inside = np.argwhere(blurred >= threshold)
    if len(inside) == 0:
        raise InputError(f"the label mask is empty at threshold {threshold:g}")
    radius = (np.linalg.norm(inside - centre, axis=1).max() + 1.0) * volume.voxel_size
    return _Shape(blurred, threshold, centre, volume.voxel_size, radius)


def sphere_radius(mass_da: float) -> float:
    """Radius (Å) of a ball with the molecular volume of `mass_da`."""
    return float((3.0 * mass_da * PROTEIN_VOLUME_PER_DA / (4.0 * np.pi)) ** (1.0 / 3.0))


#: The class name of the distractors when they are labelled as a class of their own.
DISTRACTOR_CLASS = "distractor"


def distractor_id(table: pd.DataFrame) -> int:
    """Label id of the distractor class: one above the table's highest template class."""
    ids = table[star.CLASS_ID].to_numpy(dtype=np.int64)
    return int(ids.max()) + 1 if len(ids) else 1


def class_ids(table: pd.DataFrame, params: LabelParams) -> np.ndarray:
    """Label id per molecule: template class ids, distractors 0 or one extra class."""
    ids = table[star.CLASS_ID].to_numpy(dtype=np.int64).copy()
    if params.distractor_class:
        ids[ids == 0] = distractor_id(table)
    return ids


def class_names(table: pd.DataFrame, params: LabelParams) -> dict[int, str]:
    """Label id → class name of every class a label map of `table` can hold (not 0)."""
    templates = table[table[star.CLASS_ID] > 0]
    names = {int(k): str(name) for k, name in zip(templates[star.CLASS_ID],
                                                  templates[CLASS_NAME], strict=True)}
    if params.distractor_class:
        names[distractor_id(table)] = DISTRACTOR_CLASS
    return dict(sorted(names.items()))


def paint_labels(table: pd.DataFrame, sample: Grid, target: Grid, maps: dict[str, Volume],
                 params: LabelParams = LabelParams()) -> np.ndarray:
    """Label map (uint8, target grid) of the molecules in `table` (a molecules.star table).

    `maps` holds the structure map of each `tlMapFile` (shape mode only).
    """
    if params.mode not in ("shape", "sphere"):
        raise InputError(f"label mode must be 'shape' or 'sphere', got {params.mode!r}")
    labels = np.zeros(target.shape_zyx, dtype=np.uint8)
    ids = class_ids(table, params)
    if ids.max(initial=0) > 255:
        raise InputError("more than 255 label classes")
    centres = to_grid_voxels(table[list(star.POSITION_ANGST)].to_numpy(float), sample, target)
    matrices = geometry.relion_to_matrix(table[list(star.ANGLES)].to_numpy(float))
    masses = table[star.MASS_DA].to_numpy(float)
    names = table[CLASS_NAME].astype(str).to_numpy()
    shapes: dict[str, _Shape] = {}
    order = np.argsort(table[star.CLASS_ID].to_numpy() > 0, kind="stable")  # templates last
    for i in order:
        if ids[i] == 0:
            continue
        if params.mode == "sphere":
            radius = (params.radii or {}).get(names[i], sphere_radius(masses[i]))
        else:
            key = str(table[star.MAP_FILE].iloc[i])
            if key not in shapes:
                shapes[key] = _shape_of(maps[key], masses[i], params)
            radius = shapes[key].radius_angst
        reach = radius / target.voxel_size
        lo = np.maximum(np.floor(centres[i] - reach).astype(int), 0)
        hi = np.minimum(np.ceil(centres[i] + reach).astype(int) + 1, target.shape_zyx[::-1])
        if np.any(hi <= lo):
            continue
        axes = [np.arange(a, b) for a, b in zip(lo, hi, strict=True)]  # x, y, z
        zz, yy, xx = np.meshgrid(axes[2], axes[1], axes[0], indexing="ij")
        offset = (np.stack([xx, yy, zz], axis=-1) - centres[i]) * target.voxel_size
        if params.mode == "sphere":
            inside = (offset**2).sum(axis=-1) <= radius**2
        else:
            shape = shapes[key]
            local = offset @ matrices[i]  # R⁻¹ · offset, row vectors: offset · R
            source = local[..., ::-1] / shape.voxel_size + shape.centre_zyx
            values = map_coordinates(shape.values, np.moveaxis(source, -1, 0), order=1,
                                     mode="constant", cval=0.0)
            inside = values >= shape.threshold
        region = labels[lo[2]:hi[2], lo[1]:hi[1], lo[0]:hi[0]]
        region[inside] = ids[i]
    return labels


def targets_table(table: pd.DataFrame, sample: Grid, target: Grid,
                  tomogram_name: str) -> pd.DataFrame:
    """Template particles in the target tomogram's voxel coordinates (inside it only)."""
    templates = table[table[star.MOLECULE_CLASS] == TEMPLATE]
    xyz = to_grid_voxels(templates[list(star.POSITION_ANGST)].to_numpy(float), sample, target)
    inside = np.all((xyz >= -0.5) & (xyz <= np.array(target.shape_zyx[::-1]) - 0.5), axis=1)
    templates, xyz = templates[inside], xyz[inside]
    return pd.DataFrame({
        star.TOMO_NAME: [tomogram_name] * len(templates),
        **{c: xyz[:, a] for a, c in enumerate(star.COORDINATES)},
        **{c: templates[c].to_numpy() for c in star.ANGLES},
        CLASS_NAME: templates[CLASS_NAME].to_numpy(),
        star.CLASS_ID: templates[star.CLASS_ID].to_numpy(),
        star.MOLECULE_NAME: templates[star.MOLECULE_NAME].to_numpy(),
        star.INSTANCE_ID: templates[star.INSTANCE_ID].to_numpy(),
    })
