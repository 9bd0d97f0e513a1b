"""The molecules to pack: maps read from `templearn density` outputs, padded into one array,
with the per-molecule binarisation threshold and the box that holds any of them rotated."""

from __future__ import annotations

import glob
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import numpy as np

from templearn.errors import InputError
from templearn.sample import DISTRACTOR, PROTEIN_VOLUME_PER_DA
from templearn.tetris.params import TetrisParams

#: Voxel size (Å) at which a fixed mask threshold is given (the paper's 100).
THRESHOLD_VOXEL = 16.0


@dataclass
class MoleculeSet:
    """Maps of the molecules to pack, padded to one array for the device."""

    names: list[str]
    class_ids: np.ndarray  # (K,) int: 1.. for template classes, 0 for distractors
    maps: np.ndarray  # (K, N, N, N) float32, each map at [0:n] of the padded cube
    centres: np.ndarray  # (K, 3) float, map centre (n - 1) / 2 in padded-cube indices
    masses_da: np.ndarray  # (K,)
    voxel_size: float
    class_names: list[str] = field(default_factory=list)
    map_files: list[str] = field(default_factory=list)
    structure_files: list[str] = field(default_factory=list)

    @property
    def is_template(self) -> np.ndarray:
        return self.class_ids > 0


def molecule_set(maps: list[np.ndarray], names: list[str], class_ids: list[int],
                 masses_da: list[float], voxel_size: float, class_names: list[str] | None = None,
                 map_files: list[str] | None = None,
                 structure_files: list[str] | None = None) -> MoleculeSet:
    """Pad maps of any (cubic or not) shape into one array for the device."""
    if not maps:
        raise InputError("no molecules to pack")
    n = max(max(m.shape) for m in maps)
    padded = np.zeros((len(maps), n, n, n), dtype=np.float32)
    centres = np.zeros((len(maps), 3))
    for k, m in enumerate(maps):
        padded[k, : m.shape[0], : m.shape[1], : m.shape[2]] = m
        centres[k] = (np.array(m.shape) - 1) / 2.0
    blank = [""] * len(maps)
    default_classes = [DISTRACTOR if c == 0 else f"class{c}" for c in class_ids]
    return MoleculeSet(list(names), np.asarray(class_ids), padded, centres,
                       np.asarray(masses_da, dtype=np.float64), voxel_size,
                       class_names or default_classes, map_files or blank,
                       structure_files or blank)


def map_files(spec: str | PathLike[str], option: str) -> list[Path]:
    """MRC files named by a file, a directory (all *.mrc in it) or a glob pattern."""
    text = str(spec)
    path = Path(text)
    if path.is_dir():
        files = sorted(path.glob("*.mrc"))
    elif any(c in text for c in "*?["):
        files = sorted(Path(p) for p in glob.glob(text))
    else:
        files = [path]
    if not files:
        raise InputError(f"{option} {text!r} names no .mrc files")
    return files


def read_molecule_set(templates: Mapping[str, str | PathLike[str]],
                      distractors: Sequence[str | PathLike[str]] = ()) -> MoleculeSet:
    """Template classes (class name -> maps) and distractor maps, each map a file, a
    directory or a glob of `templearn density` maps with their `maps.star`. Class ids
    1, 2, ... follow the order of `templates`; distractors have id 0. All maps must share
    one voxel size."""
    from templearn.maps_index import read_map_entries
    from templearn.mrc import read_mrc

    groups = [(name, map_files(spec, "--template")) for name, spec in templates.items()]
    n_templates = sum(len(files) for _, files in groups)
    groups += [(DISTRACTOR, map_files(spec, "--distractors")) for spec in distractors]
    files = [f for _, fs in groups for f in fs]
    ids = [k + 1 for k, (_, fs) in enumerate(groups[:len(templates)]) for _ in fs]
    ids += [0] * (len(files) - n_templates)
    class_names = [c for c, fs in groups for _ in fs]
    entries = read_map_entries(files)
    volumes = [read_mrc(f) for f in files]
    if not volumes:
        raise InputError("no molecules to pack: give --template NAME=MAPS")
    voxel = volumes[0].voxel_size
    for f, v in zip(files, volumes, strict=True):
        if abs(v.voxel_size - voxel) > 1e-3 * voxel:
            raise InputError(f"voxel size {v.voxel_size:g} Å differs from {files[0].name}'s "
                             f"{voxel:g} Å", f)
    return molecule_set([v.data for v in volumes], [e.name for e in entries], ids,
                        [e.mass_da for e in entries], voxel, class_names,
                        [str(e.map_file) for e in entries],
                        [str(e.structure_file) for e in entries])


def mask_thresholds(molecules: MoleculeSet, params: TetrisParams) -> np.ndarray:
    """Binarisation threshold per molecule: fixed, or enclosing its molecular volume. A fixed
    threshold is a density on the e2pdb2mrc scale of 16 Å voxels, so maps at another voxel
    size (whose values scale with the voxel's volume) are cut at the same density."""
    if params.mask_mode == "threshold":
        scale = (molecules.voxel_size / THRESHOLD_VOXEL) ** 3
        return np.full(len(molecules.names), params.threshold * scale)
    from scipy.ndimage import gaussian_filter

    thresholds = np.zeros(len(molecules.names))
    voxel_volume = molecules.voxel_size**3
    for k in range(len(molecules.names)):
        blurred = gaussian_filter(molecules.maps[k].astype(np.float64), params.sigma,
                                  mode="constant").ravel()
        n = max(1, round(molecules.masses_da[k] * PROTEIN_VOLUME_PER_DA / voxel_volume))
        thresholds[k] = np.partition(blurred, blurred.size - n)[blurred.size - n]
    return thresholds


def molecule_box(molecules: MoleculeSet, params: TetrisParams, thresholds: np.ndarray) -> int:
    """Odd box edge holding every molecule's mask (and outer band) in any orientation."""
    from scipy.ndimage import gaussian_filter

    radius = 0.0
    for k in range(len(molecules.names)):
        blurred = gaussian_filter(molecules.maps[k].astype(np.float64), params.sigma,
                                  mode="constant")
        idx = np.argwhere(blurred >= thresholds[k])
        if len(idx) == 0:
            raise InputError(f"the mask of {molecules.names[k]} is empty at threshold "
                             f"{thresholds[k]:g}; lower --threshold")
        radius = max(radius, float(np.linalg.norm(idx - molecules.centres[k], axis=1).max()))
    return 2 * math.ceil(radius + max(params.band[1], 0) + 1.5) + 1
