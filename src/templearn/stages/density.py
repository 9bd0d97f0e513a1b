"""Stage `density`: atomic models → density maps (MRC) and their index `maps.star`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from templearn.stages.base import Record, Stage, StageParams, option


@dataclass(frozen=True)
class Inputs(Record):
    structures: tuple[Path, ...] = option(help="Models (PDB/mmCIF, optionally .gz); one map "
                                               "each.", argument=True)


@dataclass(frozen=True)
class Params(StageParams):
    voxel_size: float = option(16.0, "Voxel size (Å).", positive=True)
    resolution: float = option(32.0, "Gaussian low-pass resolution (Å); 0 = none.", minimum=0)
    box: int | None = option(None, "Cubic box edge (voxels). Default: smallest even box that "
                                   "fits.", minimum=1)


def write(params: Params, inputs: Inputs, out: Path) -> str:
    """<structure stem>.mrc per model on an e2pdb2mrc-like scale, and maps.star."""
    from templearn.density import density_map
    from templearn.errors import InputError, about
    from templearn.maps_index import MapEntry, atom_mean_offset, update_maps_index
    from templearn.mrc import write_mrc
    from templearn.progress import track
    from templearn.structure import read_structure, structure_stem

    if not inputs.structures:
        raise InputError("no structures given")
    stems = [structure_stem(s) for s in inputs.structures]
    if len(set(stems)) != len(stems):
        raise InputError("two input structures share a file name; maps would overwrite")
    models = [read_structure(s) for s in inputs.structures]  # validate every input first
    entries = []
    for stem, path, model in track(list(zip(stems, inputs.structures, models, strict=True)),
                                   "density: computing maps"):
        with about(path):
            volume = density_map(model.coords, model.atomic_numbers, params.voxel_size,
                                 params.resolution, params.box, name=model.name)
        map_file = write_mrc(out / f"{stem}.mrc", volume)
        entries.append(MapEntry(stem, map_file, path, model.mass_da(),
                                atom_mean_offset(model.coords, model.atomic_numbers)))
    update_maps_index(out, entries)
    return f"{len(entries)} maps at {params.voxel_size:g} Å/voxel, {params.resolution:g} Å"


STAGE = Stage(
    "density", "Density maps on an e2pdb2mrc-like scale (sum of atomic numbers per voxel), "
    "and maps.star (molecule name, source structure, mass, atom-mean offset) for tetris.",
    Params, Inputs, write, packages=("numpy", "gemmi", "mrcfile"), default_output="maps")


#: `run(params, inputs, out_dir)`: the stage from Python, as the CLI runs it.
run = STAGE.run
