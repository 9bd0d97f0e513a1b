"""Stage `export`: picks → RELION 5 / RELION 4 particles, CSV, napari points or a copick
project, and RELION particles → our picks.star (`templearn.interop` holds the conventions,
`templearn.stages.export_copick` the copick target, `templearn.copickio` the calls into
copick)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from templearn.stages.base import Record, Stage, StageParams, option
from templearn.stages.labels import parse_xyz

SOURCES = ("templearn", "relion5", "relion4")
TARGETS = ("relion5", "relion4", "csv", "napari", "templearn", "copick")
#: Files in the output directory, per target (copick: a record of what went where).
PARTICLES, TOMOGRAMS, CSV, NAPARI, PICKS, COPICK = (
    "particles.star", "tomograms.star", "picks.csv", "napari.json", "picks.star", "copick.json")


@dataclass(frozen=True)
class Inputs(Record):
    picks: Path = option(help="picks.star (templearn pick), or a RELION 5/4 particles STAR "
                              "with --from.", argument=True)
    tomogram: Path | None = option(None, "The picked tomogram (MRC): its size and voxel size "
                                         "(default: the picks' data_general).")
    copick_config: Path | None = option(None, "copick project config (JSON) to write the "
                                              "picks into, with --to copick.")
    tomograms: Path | None = option(None, "RELION 5 tomograms.star of the picks' tomogram "
                                          "(its rlnTomoName): the tilt-series pixel size and "
                                          "rlnTomoSize for --to relion5/relion4.")
    labels: Path | None = option(None, "Label map (labels.mrc of templearn labels or segment, "
                                       "on the tomogram's grid) to store as a copick "
                                       "multilabel segmentation, with --to copick. Class "
                                       "names: classes.json beside it, else the picks' "
                                       "tlClassId and tlClassName.")


@dataclass(frozen=True)
class Params(StageParams):
    to: str | None = option(None, "Target, one of: relion5 (centred Å), relion4 (pixels), "
                                  "csv (z,y,x voxels), napari (points CSV per class, "
                                  "napari.json), templearn (picks.star), copick (picks in "
                                  "the --copick-config project). Default: relion5, or "
                                  "templearn --from RELION.", choices=TARGETS)
    source: str = option("templearn", "What PICKS is, one of: templearn, relion5, relion4.",
                         flag="--from", choices=SOURCES)
    size: tuple[int, int, int] | None = option(
        None, "Tomogram size x,y,z in voxels (without --tomogram).", minimum=1,
        parse=lambda text: parse_xyz(text, "--size"))
    voxel_size: float | None = option(None, "Tomogram voxel size, Å (with --size).",
                                      positive=True)
    tilt_series_pixel: float | None = option(
        None, "RELION's (unbinned) tilt-series pixel size, Å (default: from the file's "
              "data_optics, else the voxel size: binning 1).", positive=True)
    tomo_size: tuple[int, int, int] | None = option(
        None, "RELION's rlnTomoSizeX,Y,Z (tilt-series pixels; default: size × binning).",
        minimum=1, parse=lambda text: parse_xyz(text, "--tomo-size"))
    tomograms_star: bool = option(False, "Also write tomograms.star rows (name, pixel size, "
                                         "size, binning; with --tomogram its path) for "
                                         "RELION.")
    class_name: str | None = option(None, "Class of RELION particles that carry no "
                                          "tlClassName (default: the file's stem).",
                                    flag="--class")
    run_name: str | None = option(None, "copick run (default: each tomogram's rlnTomoName; "
                                        "created where missing).", flag="--run")
    user_id: str = option("templearn", "copick user (or tool) of the picks.")
    session_id: str = option("0", "copick session of the picks ('0': made by a tool). Picks "
                                  "of the same run, object, user and session are replaced.")
    objects: dict[str, str] | None = option(
        None, "copick object of a class as CLASS=OBJECT (default: the class name as copick "
              "writes names, '_' → '-'); the objects must be in the config.", flag="--object",
        repeat=True)
    tomo_type: str | None = option(None, "Also write --tomogram into the copick run as this "
                                         "tomogram type (OME-Zarr at its voxel size).")
    segmentation_name: str = option("templearn", "copick name of the --labels segmentation "
                                                 "(its voxels: the objects' labels).")

    def __post_init__(self) -> None:
        # One value for "no mapping" from the CLI ({}) and from Python (None).
        object.__setattr__(self, "objects", dict(self.objects or {}))

    def check(self) -> None:
        from templearn.errors import InputError

        if self.target == "copick":
            from templearn import copickio

            copickio.require_copick()
            for value, option_name in ((self.user_id, "--user-id"),
                                       (self.session_id, "--session-id"),
                                       (self.segmentation_name, "--segmentation-name"),
                                       *((o, "--object") for o in self.objects.values())):
                copickio.check_name(value, option_name)
        else:
            given = [name for name, value in (("--run", self.run_name), ("--object",
                     self.objects), ("--tomo-type", self.tomo_type)) if value]
            if given:
                raise InputError(f"{given[0]} is for --to copick, not {self.target}")
        if (self.size is None) != (self.voxel_size is None):
            raise InputError("--size and --voxel-size go together")
        if self.target == "templearn" and self.source == "templearn":
            raise InputError("--to templearn needs --from relion5 or relion4")
        if self.tomograms_star and not self.target.startswith("relion"):
            raise InputError(f"--tomograms-star is for --to relion5/relion4, not {self.target}")

    @property
    def target(self) -> str:
        """--to, or its default."""
        return self.to or ("relion5" if self.source == "templearn" else "templearn")


def grid_of(params: Params, inputs: Inputs, blocks: dict[str, Any]) -> Any:
    """Our tomogram's grid: --tomogram, --size/--voxel-size or the picks' data_general."""
    from templearn import interop, star
    from templearn.errors import InputError
    from templearn.stages.mrcgrid import mrc_grid

    recorded = star.general_grid(blocks)
    if inputs.tomogram is not None:
        shape, voxel = mrc_grid(inputs.tomogram)
        size = shape[::-1]
        if recorded is not None and tuple(recorded[0]) != size:
            raise InputError(f"size {size} (x, y, z) differs from {recorded[0]} in the "
                             f"picks' data_general", inputs.tomogram)
    elif params.size is not None:
        size, voxel = params.size, params.voxel_size
    elif recorded is not None:
        size, voxel = recorded
    else:
        raise InputError("no tomogram size in the file: give --tomogram, or --size and "
                         "--voxel-size", inputs.picks)
    if inputs.tomograms is not None:
        return relion_project_grid(params, inputs, blocks, tuple(size), float(voxel))
    pixel = params.tilt_series_pixel
    optics = blocks.get(interop.OPTICS_BLOCK)
    if pixel is None and optics is not None and interop.TS_PIXEL in optics:
        pixel = float(optics[interop.TS_PIXEL].iloc[0])
    return interop.Grid(tuple(size), float(voxel), pixel, params.tomo_size)


def relion_project_grid(params: Params, inputs: Inputs, blocks: dict[str, Any],
                        size: tuple[int, int, int], voxel: float) -> Any:
    """Our grid with the RELION project's pixel size and rlnTomoSize of the picks' one
    tomogram (any binning of ours: centred Å = k · v − N · s / 2 holds for every v)."""
    from templearn import interop, star
    from templearn.errors import InputError, about
    from templearn.stages.relion_tomograms import tomogram_row

    clash = "--tilt-series-pixel" if params.tilt_series_pixel else (
        "--tomo-size" if params.tomo_size else "")
    if clash:
        raise InputError(f"{clash} and --tomograms both give RELION's grid; choose one")
    if not params.target.startswith("relion"):
        raise InputError(f"--tomograms is for --to relion5/relion4, not {params.target}")
    table = blocks.get(star.PARTICLES_BLOCK)
    names = (sorted(table[star.TOMO_NAME].astype(str).unique())
             if table is not None and star.TOMO_NAME in table else [inputs.picks.stem])
    if len(names) != 1:
        raise InputError(f"--tomograms places one tomogram's picks, these lie in "
                         f"{len(names)} ({', '.join(names)})", inputs.picks)
    with about(inputs.tomograms):
        relion = interop.tomogram_grid(tomogram_row(inputs.tomograms, names[0]))
    return interop.Grid(size, voxel, relion.pixel, relion.relion_size)


def read_picks(params: Params, inputs: Inputs, blocks: dict[str, Any], grid: Any) -> Any:
    """Our picks table from PICKS as --from says."""
    from templearn import interop, star
    from templearn.errors import InputError, about
    from templearn.sample import CLASS_NAME

    if star.PARTICLES_BLOCK not in blocks:
        raise InputError(f"no data_{star.PARTICLES_BLOCK} block", inputs.picks)
    table = blocks[star.PARTICLES_BLOCK]
    needed = {"templearn": star.COORDINATES, "relion4": star.COORDINATES,
              "relion5": interop.CENTRED}[params.source]
    missing = [c for c in needed if c not in table]
    if missing:
        raise InputError(f"not a {params.source} particles table (no {', '.join(missing)})",
                         inputs.picks)
    stem = inputs.picks.stem
    if params.source == "templearn":
        table = table.copy()
        if star.TOMO_NAME not in table:
            table[star.TOMO_NAME] = stem
        if CLASS_NAME not in table:
            table[CLASS_NAME] = (table[star.CLASS_ID].map(lambda k: f"class{k}")
                                 if star.CLASS_ID in table else params.class_name or stem)
        return table
    optics = blocks.get(interop.OPTICS_BLOCK)
    with about(inputs.picks):
        return interop.from_relion(table, optics, grid, params.class_name or stem, stem)


def write_target(target: str, picks: Any, grid: Any, out: Path, tomograms: bool,
                 tomogram: Path | None = None) -> str:
    """The target's files in `out` (RELION with `tomograms`: also tomograms.star, naming
    `tomogram` as the one tomogram's rlnTomoReconstructedTomogram); what was written."""
    import json

    from templearn import interop, star
    from templearn.files import atomic_write_text
    from templearn.sample import CLASS_NAME

    if target.startswith("relion"):
        star.write_star(out / PARTICLES, interop.to_relion(picks, grid, int(target[-1])))
        if tomograms:
            names = sorted(picks[star.TOMO_NAME].astype(str).unique())
            path = str(tomogram) if tomogram is not None and len(names) == 1 else None
            star.write_star(out / TOMOGRAMS, {
                interop.GLOBAL_BLOCK: interop.tomograms_table(names, grid, path)})
            return f"{PARTICLES}, {TOMOGRAMS}"
        return PARTICLES
    if target == "templearn":
        star.write_star(out / PICKS, {
            star.GENERAL_BLOCK: star.general_table(grid.size[::-1], grid.voxel),
            star.PARTICLES_BLOCK: picks})
        return PICKS
    if target == "csv":
        atomic_write_text(out / CSV, interop.csv_table(picks).to_csv(index=False))
        return CSV
    several = picks[star.TOMO_NAME].nunique() > 1
    layers = []
    for (tomo, cls), group in picks.groupby([star.TOMO_NAME, CLASS_NAME], sort=True):
        name = f"{tomo}_{cls}" if several else str(cls)
        atomic_write_text(out / f"{name}.csv",
                          interop.napari_points(group).to_csv(index=False))
        layers.append({"file": f"{name}.csv", "name": name, "tomogram": str(tomo),
                       "class": str(cls), "points": len(group)})
    description = {"axes": ["z", "y", "x"], "units": "voxel", "voxel_size_angstrom": grid.voxel,
                   "size_zyx": list(grid.size[::-1]), "scale_for_angstrom": [grid.voxel] * 3,
                   "layers": layers}
    atomic_write_text(out / NAPARI, json.dumps(description, indent=1) + "\n")
    return f"{len(layers)} points files and {NAPARI}"


def write(params: Params, inputs: Inputs, out: Path) -> str:
    """Read PICKS, place it on the tomogram's grid and write the target's files."""
    from templearn import star
    from templearn.errors import InputError

    blocks = star.read_blocks(inputs.picks)
    grid = grid_of(params, inputs, blocks)
    picks = read_picks(params, inputs, blocks, grid)
    if inputs.labels is not None and params.target != "copick":
        raise InputError(f"--labels is for --to copick, not {params.target}")
    if params.target == "copick":
        from templearn.stages.export_copick import write_copick

        written = write_copick(params, inputs, picks, grid, out)
    else:
        written = write_target(params.target, picks, grid, out, params.tomograms_star,
                               inputs.tomogram)
    return (f"{len(picks)} particles ({params.source} → {params.target}, voxel "
            f"{grid.voxel:g} Å, tilt-series pixel {grid.ts_pixel:g} Å) in {written}")


def packages(params: Params) -> tuple[str, ...]:
    """Packages versions.yml records: copick's too where it is written."""
    base = ("numpy", "pandas", "mrcfile", "starfile")
    return (*base, "copick") if params.target == "copick" else base


STAGE = Stage(
    "export", "Convert picks to RELION 5/4 particles, CSV, napari points or a copick "
    "project, and RELION particles to picks.star.", Params, Inputs, write,
    packages=packages, default_output="export")


#: `run(params, inputs, out_dir)`: the stage from Python, as the CLI runs it.
run = STAGE.run
