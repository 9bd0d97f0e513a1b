"""`templearn nma`: ANM normal modes of a template, extended to all atoms."""

from __future__ import annotations

from pathlib import Path

import typer


def command(
    structure: Path = typer.Argument(..., help="Template model (PDB/mmCIF, optionally .gz)."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Modes file (.npz). Default: <structure stem>.modes.npz"),
    selection: str = typer.Option("name CA P", help="ProDy selection of the network nodes."),
    n_modes: int = typer.Option(20, "--modes", help="Number of non-rigid modes to keep."),
    cutoff: float = typer.Option(15.0, help="Spring cutoff distance (Å)."),
    gamma: float = typer.Option(1.0, help="Spring constant γ."),
) -> None:
    """Normal modes of a template (ProDy ANM on coarse-grained nodes, sparse solver)."""
    import time

    from templearn.errors import about
    from templearn.nma import compute_normal_modes
    from templearn.progress import log
    from templearn.provenance import write_provenance
    from templearn.structure import read_structure, structure_stem

    out = output or Path(f"{structure_stem(structure)}.modes.npz")
    model = read_structure(structure)
    start = time.monotonic()
    with about(structure):
        modes = compute_normal_modes(model, selection, n_modes, cutoff, gamma)
    modes.save(out)
    write_provenance(out.parent, "nma", {
        "structure": structure, "output": out, "selection": selection, "modes": n_modes,
        "cutoff": cutoff, "gamma": gamma}, packages=("prody", "numpy", "scipy", "gemmi"),
        name=out.name.removesuffix(".npz"))
    log(f"nma: {model.name}: {model.n_atoms} atoms, {len(modes.node_indices)} nodes, "
        f"{len(modes.eigenvalues)} modes ({modes.n_zero_modes} zero-frequency modes skipped) in "
        f"{time.monotonic() - start:.1f} s -> {out}")
