"""`templearn labels`: ground-truth label map and targets for a tomogram of a sample."""

from __future__ import annotations

from pathlib import Path

import typer


def command(
    molecules: Path = typer.Argument(
        ..., help="molecules.star of the sample (templearn tetris), or particle coordinates "
                  "in the --like tomogram's voxels (picks.star, annotations) for sphere labels."),
    like: Path | None = typer.Option(
        None, help="Tomogram (MRC) whose grid the labels must share (shape and voxel size)."),
    shape: str | None = typer.Option(None, help="Target size x,y,z (without --like)."),
    voxel_size: float | None = typer.Option(None, help="Target voxel size, Å (without --like)."),
    output_dir: Path = typer.Option(Path("labels"), "--output-dir", "-o"),
    name: str | None = typer.Option(None, help="Tomogram name in targets.star."),
    mode: str = typer.Option("shape", help="'shape' (binarised maps) or 'sphere'."),
    sigma: float = typer.Option(1.0, help="Gaussian σ (map voxels) before binarising, shape."),
    threshold: float | None = typer.Option(
        None, help="Binarisation threshold; default: enclose each molecule's volume."),
    radius: list[str] = typer.Option(
        [], help="Sphere radius per class as NAME=Å (default: radius of the molecular volume)."),
    distractor_class: bool = typer.Option(
        False, help="Label distractors as one extra class instead of background."),
) -> None:
    """Label map (uint8: 0 background, k = template class k) + targets.star in tomogram pixels."""
    from templearn import star
    from templearn.cli.options import int_tuple
    from templearn.errors import InputError
    from templearn.labels import LabelParams, paint_labels, targets_table
    from templearn.mrc import Volume, read_mrc, write_mrc
    from templearn.progress import log
    from templearn.provenance import write_provenance
    from templearn.sample import CLASS_NAME, Grid, coordinates_as_sample, read_molecules

    particles = star.read_star(molecules, star.PARTICLES_BLOCK)
    if star.POSITION_ANGST[0] not in particles and star.COORDINATES[0] in particles:
        if like is None or mode != "sphere" or not radius:
            raise InputError("coordinates (no sample positions) need --like, --mode sphere and "
                             "--radius", molecules)
        tomogram = read_mrc(like)
        sample = Grid(tomogram.data.shape, tomogram.voxel_size)
        table = coordinates_as_sample(molecules, sample)
    else:
        table, sample = read_molecules(molecules)
    if like is not None:
        tomogram = read_mrc(like)
        target = Grid(tomogram.data.shape, tomogram.voxel_size)
    elif shape is not None and voxel_size is not None:
        if voxel_size <= 0:
            raise InputError(f"--voxel-size must be positive, got {voxel_size}")
        nx, ny, nz = int_tuple(shape, 3, "--shape")
        target = Grid((nz, ny, nx), voxel_size)
    elif shape is not None or voxel_size is not None:
        raise InputError("--shape and --voxel-size go together")
    else:
        target = sample
    radii = {}
    for spec in radius:
        class_name, _, value = spec.partition("=")
        try:
            radii[class_name] = float(value)
        except ValueError:
            raise InputError(f"--radius expects NAME=Å, got {spec!r}") from None
    unsized = set(table[table[star.MASS_DA].isna()][CLASS_NAME].astype(str)) - set(radii)
    if unsized:
        raise InputError(f"give --radius for {', '.join(sorted(unsized))} (no masses known)")
    params = LabelParams(mode=mode, sigma=sigma, threshold=threshold, radii=radii or None,
                         distractor_class=distractor_class)
    maps = {}
    if mode == "shape":
        needed = table[table[star.CLASS_ID] > 0] if not distractor_class else table
        maps = {f: read_mrc(f) for f in needed[star.MAP_FILE].astype(str).unique()}
    labels = paint_labels(table, sample, target, maps, params)
    tomo_name = name or (like.stem if like is not None else str(table[star.TOMO_NAME].iloc[0]))
    targets = targets_table(table, sample, target, tomo_name)
    write_mrc(output_dir / "labels.mrc", Volume(labels, target.voxel_size))
    star.write_star(output_dir / "targets.star", {
        star.GENERAL_BLOCK: star.general_table(target.shape_zyx, target.voxel_size),
        star.PARTICLES_BLOCK: targets})
    write_provenance(output_dir, "labels", {
        "molecules": molecules, "like": like, "shape": list(target.shape_zyx[::-1]),
        "voxel_size": target.voxel_size, "mode": mode, "sigma": sigma, "threshold": threshold,
        "radius": radius, "distractor_class": distractor_class},
        packages=("numpy", "scipy", "mrcfile", "starfile"))
    log(f"labels: {len(targets)} targets, {int((labels > 0).sum())} labelled voxels -> "
        f"{output_dir}")
