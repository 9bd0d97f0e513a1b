"""`templearn deform`: flexible conformers from normal modes."""

from __future__ import annotations

from pathlib import Path

import typer


def command(
    structure: Path = typer.Argument(..., help="Template model the modes were computed for."),
    modes: Path = typer.Argument(..., help="Modes file from `templearn nma`."),
    output_dir: Path = typer.Option(Path("conformers"), "--output-dir", "-o",
                                    help="Directory for the conformers and the RMSD table."),
    n_conformers: int = typer.Option(10, "--n", "-n", help="Number of conformers."),
    amplitude: float = typer.Option(
        100.0, "--amplitude", "-A",
        help="Mode amplitudes are drawn from U(-A, A); 100 ≈ 2 Å RMSD for a nucleosome."),
    seed: int = typer.Option(0, help="Random seed (same seed, same conformers)."),
) -> None:
    """Conformers: centred template + a random sum of its normal modes; writes an RMSD CSV."""
    import numpy as np
    import pandas as pd

    from templearn.deform import deform
    from templearn.errors import about
    from templearn.files import atomic_path
    from templearn.nma import NormalModes
    from templearn.progress import log, track
    from templearn.provenance import write_provenance
    from templearn.structure import (
        output_suffix,
        read_structure,
        structure_stem,
        with_coords,
        write_structure,
    )

    model = read_structure(structure)
    normal_modes = NormalModes.load(modes)
    with about(modes):
        conformers = deform(model, normal_modes, n_conformers, amplitude,
                            np.random.default_rng(seed))
    stem = structure_stem(structure)
    suffix = output_suffix(model.structure)
    names = [f"{stem}_conf{i:03d}{suffix}" for i in range(n_conformers)]
    for name, coords in track(list(zip(names, conformers.coords, strict=True)),
                              "deform: writing conformers"):
        write_structure(output_dir / name, with_coords(model, coords))
    table = pd.DataFrame({"file": names, "rmsd_angstrom": conformers.rmsd})
    for k in range(conformers.amplitudes.shape[1]):
        table[f"amplitude_mode{k + 1}"] = conformers.amplitudes[:, k]
    with atomic_path(output_dir / f"{stem}_rmsd.csv") as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    write_provenance(output_dir, "deform", {
        "structure": structure, "modes": modes, "n": n_conformers, "amplitude": amplitude,
        "seed": seed}, packages=("numpy", "gemmi"), name=f"{stem}_deform")
    log(f"deform: {n_conformers} conformers of {stem}, RMSD to input "
        f"{conformers.rmsd.mean():.2f} ± {conformers.rmsd.std():.2f} Å -> {output_dir}")
