"""`templearn density`: atomic models → density maps (MRC)."""

from __future__ import annotations

from pathlib import Path

import typer


def command(
    structures: list[Path] = typer.Argument(..., help="Models (PDB/mmCIF); one map each."),
    output_dir: Path = typer.Option(Path("maps"), "--output-dir", "-o",
                                    help="Directory for <structure stem>.mrc maps."),
    voxel_size: float = typer.Option(16.0, help="Voxel size (Å)."),
    resolution: float = typer.Option(32.0, help="Gaussian low-pass resolution (Å); 0 = none."),
    box: int | None = typer.Option(
        None, help="Cubic box edge (voxels). Default: smallest even box that fits."),
) -> None:
    """Density maps on an e2pdb2mrc-like scale (sum of atomic numbers per voxel).

    Also keeps `maps.star` in the output directory: molecule name, source structure,
    mass and atom-mean offset of every map (read by `templearn tetris`).
    """
    from templearn.density import density_map
    from templearn.errors import InputError, about
    from templearn.maps_index import MapEntry, atom_mean_offset, update_maps_index
    from templearn.mrc import write_mrc
    from templearn.progress import log, track
    from templearn.provenance import write_provenance
    from templearn.structure import read_structure, structure_stem

    if voxel_size <= 0:
        raise InputError(f"--voxel-size must be positive, got {voxel_size}")
    stems = [structure_stem(s) for s in structures]
    if len(set(stems)) != len(stems):
        raise InputError("two input structures share a file name; maps would overwrite")
    models = [read_structure(s) for s in structures]  # validate every input before writing
    maps = []
    for path, model in track(list(zip(structures, models, strict=True)),
                             "density: computing maps"):
        with about(path):
            maps.append(density_map(model.coords, model.atomic_numbers, voxel_size, resolution,
                                    box, name=model.name))
    entries = []
    for stem, path, model, volume in zip(stems, structures, models, maps, strict=True):
        map_file = write_mrc(output_dir / f"{stem}.mrc", volume)
        entries.append(MapEntry(stem, map_file, path, model.mass_da(),
                                atom_mean_offset(model.coords, model.atomic_numbers)))
    update_maps_index(output_dir, entries)
    write_provenance(output_dir, "density", {
        "structures": structures, "voxel_size": voxel_size, "resolution": resolution,
        "box": box}, packages=("numpy", "gemmi", "mrcfile"))
    log(f"density: {len(maps)} maps at {voxel_size} Å/voxel, {resolution} Å -> {output_dir}")
