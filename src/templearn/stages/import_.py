"""Stage `import`: picks and a tomogram from a copick project, or RELION 5/4 particles, into
our own files: picks.star (what `evaluate` reads as ground truth and `labels` paints) and
tomogram.mrc. The inverse of `export`; RELION goes through export's own readers and
`templearn.interop`, copick through `templearn.copickio`. (The module is `import_` because
`import` is a Python keyword; the command is `templearn import`.)"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from templearn.stages.base import Record, Stage, StageParams, option
from templearn.stages.labels import parse_xyz

SOURCES = ("copick", "relion5", "relion4")
PICKS, TOMOGRAM, LABELS = "picks.star", "tomogram.mrc", "labels"
#: Options that only a copick project has.
COPICK_ONLY = (("objects", "--object"), ("user_id", "--user-id"),
               ("session_id", "--session-id"), ("tomo_type", "--tomo-type"))
#: Options that tomograms.star answers for RELION particles.
GRID_OPTIONS = (("size", "--size"), ("voxel_size", "--voxel-size"),
                ("tilt_series_pixel", "--tilt-series-pixel"), ("tomo_size", "--tomo-size"))


@dataclass(frozen=True)
class Inputs(Record):
    source: Path = option(help="copick project config (JSON), or a RELION 5/4 particles STAR.",
                          argument=True)
    tomogram: Path | None = option(None, "Tomogram (MRC) whose grid the picks go on (RELION; "
                                         "copick without --tomo-type).")
    tomograms: Path | None = option(None, "RELION 5 tomograms.star: the --run tomogram's pixel "
                                          "size, rlnTomoSize, binning and reconstructed MRC "
                                          "give the grid.")


@dataclass(frozen=True)
class Params(StageParams):
    kind: str | None = option(None, "What SOURCE is, one of: copick, relion5, relion4 "
                                    "(default: copick for .json; else relion5 where the file "
                                    "has centred coordinates, relion4 otherwise).",
                              flag="--from", choices=SOURCES)
    run_name: str | None = option(None, "copick run (default: the project's only run), or "
                                        "RELION tomogram (rlnTomoName; default: the file's "
                                        "only one); it is rlnTomoName in picks.star.",
                                  flag="--run")
    objects: tuple[str, ...] = option((), "copick object whose picks to read; repeat for "
                                          "several classes (class name = object name).",
                                      flag="--object", repeat=True)
    user_id: str | None = option(None, "copick user of the picks (default: the only one).")
    session_id: str | None = option(None, "copick session of the picks (default: the only "
                                          "one).")
    tomo_type: str | None = option(None, "copick tomogram to write as tomogram.mrc; the picks "
                                         "go on its grid (default grid: the voxel spacing's "
                                         "only tomogram).")
    voxel_size: float | None = option(None, "copick voxel spacing, Å (default: the run's only "
                                            "one); RELION: the grid's, with --size.",
                                      positive=True)
    size: tuple[int, int, int] | None = option(
        None, "Tomogram size x,y,z in voxels (default: --tomogram's, or the copick "
              "tomogram's).", minimum=1, parse=lambda text: parse_xyz(text, "--size"))
    tilt_series_pixel: float | None = option(
        None, "RELION's (unbinned) tilt-series pixel size, Å (default: from the file's "
              "data_optics, else the voxel size).", positive=True)
    tomo_size: tuple[int, int, int] | None = option(
        None, "RELION's rlnTomoSizeX,Y,Z (tilt-series pixels; default: size × binning).",
        minimum=1, parse=lambda text: parse_xyz(text, "--tomo-size"))
    class_name: str | None = option(None, "Class of particles without tlClassName (RELION; "
                                          "default: the file's stem), or of the one --object.",
                                    flag="--class")
    labels_radius: dict[str, float] | None = option(
        None, "Also paint sphere labels on the tomogram into labels/ (labels.mrc + "
              "targets.star, for train --sample TOMO.mrc,OUT/labels): radius per class as "
              "NAME=Å.", repeat=True)

    def __post_init__(self) -> None:
        # One value for "no radii" from the CLI ({}) and from Python or YAML (None).
        object.__setattr__(self, "labels_radius", dict(self.labels_radius or {}))

    def check(self) -> None:
        from templearn.errors import InputError

        for name, value in (self.labels_radius or {}).items():
            if not name or not 0 < value < float("inf"):
                raise InputError(f"--labels-radius expects NAME=Å with a positive radius, got "
                                 f"{name}={value}")


def kind_of(params: Params, inputs: Inputs) -> str:
    """--from, or what SOURCE looks like."""
    from templearn import interop, star

    if params.kind is not None:
        return params.kind
    if inputs.source.suffix.lower() == ".json":
        return "copick"
    particles = star.read_blocks(inputs.source).get(star.PARTICLES_BLOCK)
    centred = particles is not None and all(c in particles for c in interop.CENTRED)
    return "relion5" if centred else "relion4"


def copick_grid(params: Params, inputs: Inputs, run: Any) -> tuple[Any, Any]:
    """(interop.Grid of the picks, the copick tomogram to import or None): the --tomo-type
    tomogram's grid, else --tomogram's, else --size, else the voxel spacing's one tomogram."""
    from templearn import copickio, interop
    from templearn.errors import InputError
    from templearn.stages.mrcgrid import mrc_grid

    config = inputs.source
    given = "--tomogram" if inputs.tomogram is not None else "--size" if params.size else ""
    if params.tomo_type is not None and given:
        raise InputError(f"{given} and --tomo-type both give the grid; choose one")
    if inputs.tomogram is not None:
        shape, voxel = mrc_grid(inputs.tomogram)
        return interop.Grid(shape[::-1], voxel), None
    if params.size is not None:
        voxel = params.voxel_size or copickio.voxel_spacing(run, None, config).voxel_size
        return interop.Grid(params.size, float(voxel)), None
    spacing = copickio.voxel_spacing(run, params.voxel_size, config)
    tomo = copickio.tomogram(spacing, params.tomo_type, config)
    grid = interop.Grid(copickio.tomogram_shape(tomo)[::-1], float(spacing.voxel_size))
    return grid, tomo if params.tomo_type is not None else None


def copick_table(params: Params, inputs: Inputs, root: Any, run_name: str, voxel: float) -> Any:
    """Our picks table from the copick picks of each --object."""
    import numpy as np
    import pandas as pd

    from templearn import copickio, interop, star
    from templearn.sample import CLASS_NAME

    tables = []
    for k, name in enumerate(params.objects):
        picks = copickio.read_picks(root, inputs.source, run_name, name, params.user_id,
                                    params.session_id)
        xyz, angles = interop.from_copick(picks.locations, picks.transforms, voxel)
        label = root.get_object(name).label
        table = pd.DataFrame({star.TOMO_NAME: [run_name] * len(xyz)})
        for column, axis in zip(star.COORDINATES, xyz.T, strict=True):
            table[column] = axis
        if picks.oriented:
            for column, axis in zip(star.ANGLES, angles.T, strict=True):
                table[column] = axis
        table[CLASS_NAME] = params.class_name or name
        table[star.CLASS_ID] = np.int64(label if label is not None else k + 1)
        if picks.scores is not None:
            table[star.SCORE] = picks.scores
        tables.append(table)
    return pd.concat(tables, ignore_index=True) if tables else None


def import_copick(params: Params, inputs: Inputs, out: Path) -> tuple[str, Path | None]:
    """picks.star from the --object picks, tomogram.mrc from --tomo-type; (what was
    written, the tomogram the picks lie on where there is one)."""
    from templearn import copickio, star
    from templearn.errors import InputError
    from templearn.mrc import Volume, write_mrc

    if not params.objects and params.tomo_type is None:
        raise InputError("nothing to import: give --object (picks) and/or --tomo-type "
                         "(tomogram)")
    if params.class_name is not None and len(params.objects) != 1:
        raise InputError("--class renames the one --object; give one --object with it")
    root = copickio.open_project(inputs.source)
    if params.run_name is None:
        runs = sorted(r.name for r in root.runs)
        if len(runs) != 1:
            raise InputError(f"the project has {len(runs)} runs ({', '.join(runs) or 'none'}):"
                             f" choose one with --run", inputs.source)
        run_name = runs[0]
    else:
        run_name = params.run_name
    run = copickio.get_run(root, run_name, inputs.source)
    copickio.require_objects(root, list(params.objects), inputs.source, "choose with --object")
    grid, tomo = copick_grid(params, inputs, run)
    table = copick_table(params, inputs, root, run_name, grid.voxel)
    written = []
    if tomo is not None:
        with copickio.about_project(inputs.source):
            data = tomo.numpy()
        write_mrc(out / TOMOGRAM, Volume(data, grid.voxel))
        written.append(f"{TOMOGRAM} ({params.tomo_type})")
    if table is not None:
        star.write_star(out / PICKS, {
            star.GENERAL_BLOCK: star.general_table(grid.size[::-1], grid.voxel),
            star.PARTICLES_BLOCK: table})
        written.append(f"{PICKS} ({len(table)} picks of {', '.join(params.objects)})")
    summary = f"copick run {run_name}, voxel {grid.voxel:g} Å → {' and '.join(written)}"
    return summary, out / TOMOGRAM if tomo is not None else inputs.tomogram


def one_tomogram(params: Params, inputs: Inputs, blocks: dict[str, Any]) -> str | None:
    """The tomogram (rlnTomoName) to import: --run, else the particles' only one where
    tomograms.star is given; InputError if the particles have none of that name."""
    from templearn import star
    from templearn.errors import InputError

    particles = blocks.get(star.PARTICLES_BLOCK)
    if particles is None or star.TOMO_NAME not in particles:
        return params.run_name
    names = sorted(particles[star.TOMO_NAME].astype(str).unique())
    if params.run_name is None and inputs.tomograms is not None and len(names) != 1:
        raise InputError(f"the particles lie in {len(names)} tomograms ({', '.join(names)}): "
                         f"choose one with --run", inputs.source)
    name = params.run_name or (names[0] if inputs.tomograms is not None else None)
    if name is not None and name not in names:
        raise InputError(f"no particles of tomogram {name!r} (tomograms: "
                         f"{', '.join(names) or 'none'})", inputs.source)
    return name


def import_relion(params: Params, inputs: Inputs, kind: str,
                  out: Path) -> tuple[str, Path | None]:
    """picks.star from RELION particles (one tomogram's with --run or --tomograms) through
    export's readers; (what was written, the tomogram the picks lie on or None)."""
    from templearn import star
    from templearn.errors import InputError
    from templearn.stages import export
    from templearn.stages.relion_tomograms import relion_grid

    given = [flag for name, flag in COPICK_ONLY if getattr(params, name)]
    if given:
        raise InputError(f"{given[0]} is for copick projects, not {kind}")
    blocks = star.read_blocks(inputs.source)
    name = one_tomogram(params, inputs, blocks)
    particles = blocks.get(star.PARTICLES_BLOCK)
    if name is not None and particles is not None:
        keep = (particles[star.TOMO_NAME].astype(str) == name if star.TOMO_NAME in particles
                else slice(None))
        blocks = {**blocks, star.PARTICLES_BLOCK: particles[keep].assign(
            **{star.TOMO_NAME: name})}
    grid = dict(size=params.size, voxel_size=params.voxel_size,
                tilt_series_pixel=params.tilt_series_pixel, tomo_size=params.tomo_size)
    tomogram = inputs.tomogram
    if inputs.tomograms is not None:
        clash = [flag for field, flag in GRID_OPTIONS if getattr(params, field) is not None]
        if clash:
            raise InputError(f"{clash[0]} and --tomograms both give the grid; choose one")
        if name is None:
            raise InputError("the particles name no tomogram (rlnTomoName): give --run NAME, "
                             "the tomogram's rlnTomoName in --tomograms")
        found, tomogram = relion_grid(inputs.tomograms, name, inputs.tomogram)
        grid = dict(size=found.size, voxel_size=found.voxel, tilt_series_pixel=found.pixel,
                    tomo_size=found.relion_size)
    relion = export.Params(to="templearn", source=kind, class_name=params.class_name,
                           **grid).validate()
    # With --tomograms the grid is explicit; the MRC only paints labels.
    reading = export.Inputs(inputs.source, None if inputs.tomograms else inputs.tomogram)
    placed = export.grid_of(relion, reading, blocks)
    picks = export.read_picks(relion, reading, blocks, placed)
    export.write_target("templearn", picks, placed, out, False)
    where = f" of tomogram {name}" if name is not None else ""
    return (f"{len(picks)} {kind} particles{where} → {PICKS} (voxel {placed.voxel:g} Å, "
            f"tilt-series pixel {placed.ts_pixel:g} Å)"), tomogram


def write_labels(params: Params, tomogram: Path | None, out: Path) -> str:
    """labels/ (labels.mrc + targets.star) painted by the labels stage's own code: spheres of
    --labels-radius at picks.star's particles on the tomogram's grid."""
    from templearn import star
    from templearn.errors import InputError
    from templearn.sample import CLASS_NAME
    from templearn.stages import labels

    if tomogram is None:
        raise InputError("--labels-radius paints labels on the tomogram: give --tomogram (or "
                         "--tomo-type, or a tomograms.star whose reconstructed tomogram exists)")
    picks = star.read_star(out / PICKS)
    classes = sorted(picks[CLASS_NAME].astype(str).unique())
    unknown = sorted(set(params.labels_radius) ^ set(classes))
    if unknown:
        raise InputError(f"--labels-radius needs one NAME=Å per class of the picks, exactly "
                         f"(classes: {', '.join(classes)}; not matched: {', '.join(unknown)})")
    names = picks[star.TOMO_NAME].astype(str).unique() if star.TOMO_NAME in picks else []
    label_params = labels.Params(mode="sphere", radius=params.labels_radius,
                                 name=names[0] if len(names) == 1 else None).validate()
    (out / LABELS).mkdir()
    return labels.write(label_params, labels.Inputs(out / PICKS, like=tomogram), out / LABELS)


def write(params: Params, inputs: Inputs, out: Path) -> str:
    """Import SOURCE as --from says (or as it looks); --labels-radius: also labels/."""
    from templearn.errors import InputError

    kind = kind_of(params, inputs)
    if inputs.tomograms is not None and kind == "copick":
        raise InputError("--tomograms is for RELION particles, not copick projects")
    if kind == "copick":
        summary, tomogram = import_copick(params, inputs, out)
    else:
        summary, tomogram = import_relion(params, inputs, kind, out)
    if not params.labels_radius:
        return summary
    if not (out / PICKS).is_file():
        raise InputError("--labels-radius needs picks: give --object")
    return f"{summary}; {LABELS}/: {write_labels(params, tomogram, out)}"


STAGE = Stage(
    "import", "Read picks and a tomogram from a copick project, or RELION 5/4 particles, "
    "into picks.star (and tomogram.mrc).", Params, Inputs, write,
    packages=("numpy", "pandas", "mrcfile", "starfile", "copick"),
    default_output="import")


#: `run(params, inputs, out_dir)`: the stage from Python, as the CLI runs it.
run = STAGE.run
