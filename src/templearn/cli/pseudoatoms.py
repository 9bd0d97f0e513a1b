"""`templearn pseudoatoms`: density map → pseudo-atomic model."""

from __future__ import annotations

from pathlib import Path

import typer


def command(
    density_map: Path = typer.Argument(..., help="Input map (MRC), e.g. an EMDB map."),
    output: Path | None = typer.Option(
        None, "--output", "-o",
        help="Model file (.pdb, or .cif; forced to .cif beyond 99,999 atoms). "
             "Default: <map stem>_pseudo.pdb"),
    lowpass: float = typer.Option(0.0, help="Gaussian low-pass before binarising (Å); 0 = none."),
    threshold: float | None = typer.Option(
        None, help="Binarisation threshold on the low-passed map. Default: Otsu's threshold."),
    mass_kda: float | None = typer.Option(
        None, "--mass-kda", help="Instead of a threshold, enclose this mass (1.21 Å³/Da)."),
    phosphorus_fraction: float = typer.Option(
        1.0 / 3.0, help="Fraction of pseudo-atoms made phosphorus, to tune contrast."),
    seed: int = typer.Option(0, help="Random seed for choosing the phosphorus atoms."),
) -> None:
    """One pseudo-atom per foreground voxel, for simulating a particle known only as a map."""
    import numpy as np

    from templearn.errors import about
    from templearn.mrc import read_mrc
    from templearn.progress import log
    from templearn.provenance import write_provenance
    from templearn.pseudoatoms import pseudo_atoms
    from templearn.structure import output_suffix, write_structure

    volume = read_mrc(density_map)
    with about(density_map):
        model = pseudo_atoms(volume, np.random.default_rng(seed), lowpass, threshold, mass_kda,
                             phosphorus_fraction, name=density_map.stem)
    out = output or Path(f"{density_map.stem}_pseudo.pdb")
    if output_suffix(model) == ".cif" and out.suffix != ".cif":
        out = out.with_suffix(".cif")
    write_structure(out, model)
    write_provenance(out.parent, "pseudoatoms", {
        "map": density_map, "output": out, "lowpass": lowpass, "threshold": threshold,
        "mass_kda": mass_kda, "phosphorus_fraction": phosphorus_fraction, "seed": seed},
        packages=("numpy", "gemmi", "mrcfile"), name=f"{out.stem}_pseudoatoms")
    log(f"pseudoatoms: {model[0].count_atom_sites()} pseudo-atoms -> {out}")
