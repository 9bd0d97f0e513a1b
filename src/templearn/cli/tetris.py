"""`templearn tetris`: pack template and distractor maps into a crowded sample."""

from __future__ import annotations

from pathlib import Path

import typer


def command(
    template: list[str] = typer.Option(
        ..., "--template", "-t",
        help="Template class as NAME=MAPS (MAPS: a map, a directory of maps, or a glob); "
             "repeat for several classes. Maps come from `templearn density`."),
    distractors: list[str] = typer.Option(
        [], "--distractors", "-d", help="Distractor maps (map, directory or glob); repeatable."),
    output_dir: Path = typer.Option(Path("sample"), "--output-dir", "-o"),
    name: str = typer.Option("sample", help="Sample name (rlnTomoName in molecules.star)."),
    shape: str = typer.Option("192,192,64", help="Sample size x,y,z in voxels."),
    ratio: str = typer.Option("1:2", help="Templates : distractors."),
    band: str = typer.Option(
        "", help="Insertion band r_in,r_out in voxels. Default -2,0 (threshold masks) or "
                 "0,1 (volume masks, which then never overlap)."),
    sigma: float = typer.Option(1.65, help="Gaussian σ (voxels) before binarising a map."),
    threshold: float = typer.Option(100.0, help="Binarisation threshold (e2pdb2mrc scale)."),
    mask: str = typer.Option(
        "threshold", help="'threshold' (paper) or 'volume': each mask encloses the molecule's "
                          "volume at 1.21 Å³/Da, for protein-dense samples."),
    rotations: int = typer.Option(1, help="Rotations tried per molecule (tightest fit kept)."),
    search: str = typer.Option("local", help="'local' (fast, windowed) or 'full' (paper)."),
    patience: int = typer.Option(
        0, help="Molecules that may fail to fit in a row before stopping (0 = paper)."),
    max_molecules: int | None = typer.Option(None, help="Stop after this many molecules."),
    max_protein_fraction: float | None = typer.Option(
        None, help="Stop once the molecules fill this fraction of the sample volume "
                   "(at 1.21 Å³/Da; cytoplasm is about 0.2-0.3)."),
    seed: int = typer.Option(0, help="Random seed."),
) -> None:
    """Crowded sample by the Template Learning "Tetris" algorithm (JAX)."""
    import time

    import numpy as np

    from templearn.cli.options import int_tuple, map_files
    from templearn.errors import InputError
    from templearn.jaxcache import enable_compilation_cache
    from templearn.maps_index import read_map_entries
    from templearn.mrc import Volume, read_mrc, write_mrc
    from templearn.progress import Counter, log
    from templearn.provenance import write_provenance
    from templearn.report.plots import write_slices_png
    from templearn.sample import PROTEIN_VOLUME_PER_DA, Grid, write_molecules
    from templearn.tetris import TetrisParams, molecule_set, molecules_table, pack

    enable_compilation_cache()
    classes: list[tuple[str, list[Path]]] = []
    for spec in template:
        class_name, sep, maps = spec.partition("=")
        if not sep:
            class_name, maps = Path(spec.rstrip("/")).stem, spec
        classes.append((class_name, map_files(maps, "--template")))
    groups = [*classes, *(("distractor", map_files(d, "--distractors")) for d in distractors)]
    files = [f for _, fs in groups for f in fs]
    ids = [k + 1 for k, (_, fs) in enumerate(classes) for _ in fs]
    ids += [0] * (len(files) - len(ids))
    class_names = [c for c, fs in groups for _ in fs]
    entries = read_map_entries(files)
    volumes = [read_mrc(f) for f in files]
    voxel = volumes[0].voxel_size
    for f, v in zip(files, volumes, strict=True):
        if abs(v.voxel_size - voxel) > 1e-3 * voxel:
            raise InputError(f"voxel size {v.voxel_size:g} Å differs from {files[0].name}'s "
                             f"{voxel:g} Å", f)
    nx, ny, nz = int_tuple(shape, 3, "--shape")
    r_t, r_d = int_tuple(ratio, 2, "--ratio")
    default_band = "-2,0" if mask == "threshold" else "0,1"
    r_in, r_out = int_tuple(band or default_band, 2, "--band")
    params = TetrisParams(shape_zyx=(nz, ny, nx), ratio=(r_t, r_d), band=(r_in, r_out),
                          sigma=sigma, threshold=threshold, mask_mode=mask, rotations=rotations,
                          search=search, patience=patience, max_molecules=max_molecules,
                          max_protein_fraction=max_protein_fraction, seed=seed)
    molecules = molecule_set([v.data for v in volumes], [e.name for e in entries], ids,
                             [e.mass_da for e in entries], voxel, class_names,
                             [str(e.map_file) for e in entries],
                             [str(e.structure_file) for e in entries])
    start = time.monotonic()
    counter = Counter("tetris: molecules placed")
    try:
        packed = pack(molecules, params, on_placed=counter.update)
    finally:
        counter.close()
    seconds = time.monotonic() - start
    grid = Grid(params.shape_zyx, voxel)
    table = molecules_table(packed, molecules, name)
    write_mrc(output_dir / "instances.mrc", Volume(packed.instances, voxel))
    write_mrc(output_dir / "density.mrc", Volume(packed.density, voxel))
    write_slices_png(output_dir / "slices.png", packed.density, packed.instances)
    write_molecules(output_dir / "molecules.star", table, grid)
    n = len(table)
    packing = float((packed.instances > 0).mean())
    protein = float(molecules.masses_da[packed.molecule_index].sum() * PROTEIN_VOLUME_PER_DA
                    / (np.prod(params.shape_zyx) * voxel**3))
    write_provenance(output_dir, "tetris", {
        "template": template, "distractors": distractors, "name": name, "shape": shape,
        "ratio": ratio, "band": [r_in, r_out], "sigma": sigma, "threshold": threshold,
        "mask": mask, "rotations": rotations, "search": search, "patience": patience,
        "max_molecules": max_molecules, "max_protein_fraction": max_protein_fraction,
        "seed": seed,
        "result": {"molecules": n, "mask_packing": round(packing, 4),
                   "protein_fraction": round(protein, 4), "seconds": round(seconds, 1)}},
        packages=("jax", "numpy", "scipy", "mrcfile", "starfile"))
    log(f"tetris: {n} molecules ({int((table['tlMoleculeClass'] == 'template').sum())} "
        f"templates) in {seconds:.1f} s ({n / seconds * 60:.0f}/min); mask packing "
        f"{packing:.2f}, protein volume fraction {protein:.2f}, {packed.n_full_searches} "
        f"whole-sample searches -> {output_dir}")
