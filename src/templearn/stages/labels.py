"""Stage `labels`: ground-truth label map and targets for a tomogram of a sample."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from templearn.errors import InputError
from templearn.stages.base import Record, Stage, StageParams, option

#: The stage's files in the output directory (CLASSES only with --distractor-class).
LABELS, TARGETS, CLASSES = "labels.mrc", "targets.star", "classes.json"


def parse_xyz(text: str, option: str) -> tuple[int, int, int]:
    """'40,40,24' (or 40x40x24) → (40, 40, 24); InputError naming the option otherwise."""
    parts = [p.strip() for p in text.replace("x", ",").replace(":", ",").split(",")]
    try:
        x, y, z = (int(p) for p in parts)
    except ValueError:
        raise InputError(f"{option} expects three integers x,y,z, got {text!r}") from None
    return x, y, z


@dataclass(frozen=True)
class Inputs(Record):
    molecules: Path = option(help="molecules.star of the sample (templearn tetris), or particle "
                                  "coordinates in the --like tomogram's voxels (picks.star, "
                                  "annotations) for sphere labels.", argument=True)
    like: Path | None = option(None, "Tomogram (MRC) whose grid the labels must share (shape "
                                     "and voxel size).")


@dataclass(frozen=True)
class Params(StageParams):
    shape: tuple[int, int, int] | None = option(None, "Target size x,y,z (without --like).",
                                                parse=lambda text: parse_xyz(text, "--shape"),
                                                minimum=1)
    voxel_size: float | None = option(None, "Target voxel size, Å (without --like).",
                                      positive=True)
    name: str | None = option(None, "Tomogram name in targets.star.")
    mode: str = option("shape", "Label shape: binarised template maps, or balls.",
                       choices=("shape", "sphere"))
    sigma: float = option(1.0, "Gaussian σ (map voxels) before binarising, shape.", minimum=0)
    threshold: float | None = option(None, "Binarisation threshold; default: enclose each "
                                           "molecule's volume.")
    radius: dict[str, float] | None = option(None, "Sphere radius per class as NAME=Å "
                                                   "(default: radius of the molecular volume).",
                                             repeat=True)
    distractor_class: bool = option(False, "Label distractors as one extra class instead of "
                                           "background.")

    def __post_init__(self) -> None:
        # One value for "no radii" whether it comes from the CLI ({}) or a YAML default (None),
        # so that both give the same fingerprint.
        object.__setattr__(self, "radius", dict(self.radius or {}))

    def check(self) -> None:
        if (self.shape is None) != (self.voxel_size is None):
            raise InputError("--shape and --voxel-size go together")
        for class_name, value in (self.radius or {}).items():
            if not class_name or not value > 0:
                raise InputError(f"--radius expects NAME=Å with a positive radius, got "
                                 f"{class_name}={value}")
        if self.name is not None and (not self.name or any(c.isspace() for c in self.name)):
            raise InputError(f"--name must be a word without spaces, got {self.name!r}")


def write(params: Params, inputs: Inputs, out: Path) -> str:
    """labels.mrc (uint8: 0 background, k = class k) and targets.star in tomogram voxels;
    with --distractor-class also classes.json, naming the extra class (targets.star holds
    templates only)."""
    import json

    import numpy as np

    from templearn import star
    from templearn.files import atomic_write_text
    from templearn.labels import LabelParams, class_names, paint_labels, targets_table
    from templearn.mrc import Volume, read_mrc, write_mrc
    from templearn.sample import Grid, coordinates_as_sample, read_molecules
    from templearn.stages.mrcgrid import mrc_grid

    molecules, like = inputs.molecules, inputs.like
    if like is not None and params.shape is not None:
        raise InputError("give --like or --shape/--voxel-size, not both")
    like_grid = None
    if like is not None:  # its header only
        shape_zyx, voxel_size = mrc_grid(like)
        if not voxel_size > 0:
            raise InputError(f"voxel size must be positive, header says {voxel_size} Å", like)
        like_grid = Grid(shape_zyx, voxel_size)
    particles = star.read_star(molecules, star.PARTICLES_BLOCK)
    if star.POSITION_ANGST[0] not in particles and star.COORDINATES[0] in particles:
        if like_grid is None or params.mode != "sphere" or not params.radius:
            raise InputError("coordinates (no sample positions) need --like, --mode sphere and "
                             "--radius", molecules)
        sample = like_grid
        table = coordinates_as_sample(molecules, sample)
    else:
        table, sample = read_molecules(molecules)
    if like_grid is not None:
        target = like_grid
    elif params.shape is not None and params.voxel_size is not None:
        nx, ny, nz = params.shape
        target = Grid((nz, ny, nx), params.voxel_size)
    else:
        target = sample
    if star.MASS_DA not in table:
        table = table.assign(**{star.MASS_DA: np.nan})
    _check_classes(table, params, molecules)

    label_params = LabelParams(mode=params.mode, sigma=params.sigma, threshold=params.threshold,
                               radii=dict(params.radius) or None,
                               distractor_class=params.distractor_class)
    maps = {}
    if params.mode == "shape":
        needed = table if params.distractor_class else table[table[star.CLASS_ID] > 0]
        maps = {key: read_mrc(_map_path(key, molecules))
                for key in needed[star.MAP_FILE].astype(str).unique()}
    labels = paint_labels(table, sample, target, maps, label_params)
    targets = targets_table(table, sample, target, _tomogram_name(params, inputs, table))
    write_mrc(out / LABELS, Volume(labels, target.voxel_size))
    star.write_star(out / TARGETS, {
        star.GENERAL_BLOCK: star.general_table(target.shape_zyx, target.voxel_size),
        star.PARTICLES_BLOCK: targets})
    if params.distractor_class:
        names = class_names(table, label_params)
        atomic_write_text(out / CLASSES, json.dumps({str(k): v for k, v in names.items()}))
    nz, ny, nx = target.shape_zyx
    return (f"{len(targets)} targets, {int((labels > 0).sum())} labelled voxels on a "
            f"{nx}×{ny}×{nz} grid at {target.voxel_size:g} Å")


def _check_classes(table: Any, params: Params, molecules: Path) -> None:
    """InputError unless every labelled molecule can be sized (mass, --radius or
    --threshold) and every --radius names a class of the table."""
    from templearn import star
    from templearn.sample import CLASS_NAME

    classes = set(table[CLASS_NAME].astype(str))
    unknown = sorted(set(params.radius or {}) - classes)
    if unknown:
        raise InputError(f"--radius names no class of the molecules: {', '.join(unknown)} "
                         f"(classes: {', '.join(sorted(classes))})", molecules)
    labelled = table if params.distractor_class else table[table[star.CLASS_ID] > 0]
    unsized = set(labelled[labelled[star.MASS_DA].isna()][CLASS_NAME].astype(str))
    if params.mode == "sphere" and unsized - set(params.radius or {}):
        missing = ", ".join(sorted(unsized - set(params.radius or {})))
        raise InputError(f"give --radius for {missing} (no masses known)", molecules)
    if params.mode == "shape" and params.threshold is None and unsized:
        raise InputError(f"no masses known for {', '.join(sorted(unsized))}; give --threshold "
                         "or --mode sphere with --radius", molecules)


def _map_path(key: str, molecules: Path) -> Path:
    """A tlMapFile entry as a path: as written, else relative to the molecules file."""
    path = Path(key)
    if path.is_file():
        return path
    beside = molecules.parent / path
    if not path.is_absolute() and beside.is_file():
        return beside
    raise InputError(f"map {key} (tlMapFile) not found", molecules)


def _tomogram_name(params: Params, inputs: Inputs, table: Any) -> str:
    """--name, else the --like tomogram's stem, else the table's tomogram name."""
    from templearn import star

    if params.name is not None:
        return params.name
    if inputs.like is not None:
        return inputs.like.stem
    names = table[star.TOMO_NAME].astype(str) if star.TOMO_NAME in table else ()
    return str(names.iloc[0]) if len(names) else inputs.molecules.stem


STAGE = Stage(
    "labels", "Label map (uint8: 0 background, k = template class k) + targets.star in "
    "tomogram pixels.", Params, Inputs, write,
    packages=("numpy", "scipy", "pandas", "mrcfile", "starfile"), default_output="labels")


#: `run(params, inputs, out_dir)`: the stage from Python, as the CLI runs it.
run = STAGE.run
