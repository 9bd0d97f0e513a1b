"""Stage `nma`: ANM normal modes of a template, extended to all atoms → `modes.npz`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from templearn.stages.base import Record, Stage, StageParams, option

#: The modes file in the output directory (the input contract of `deform`).
MODES = "modes.npz"


@dataclass(frozen=True)
class Inputs(Record):
    structure: Path = option(help="Template model (PDB/mmCIF, optionally .gz).", argument=True)


@dataclass(frozen=True)
class Params(StageParams):
    selection: str = option("name CA P", "ProDy selection of the network nodes.")
    n_modes: int = option(20, "Number of non-rigid modes to keep.", flag="--modes", minimum=1)
    cutoff: float = option(15.0, "Spring cutoff distance (Å).", minimum=4.0)
    gamma: float = option(1.0, "Spring constant γ.", positive=True)

    def check(self) -> None:
        from templearn.errors import InputError

        if not self.selection.strip():
            raise InputError("--selection must not be empty")


def write(params: Params, inputs: Inputs, out: Path) -> str:
    """modes.npz: the lowest non-rigid ANM modes, sign-fixed, extended to every atom."""
    from templearn.errors import about
    from templearn.nma import compute_normal_modes
    from templearn.structure import read_structure

    model = read_structure(inputs.structure)
    with about(inputs.structure):
        modes = compute_normal_modes(model, params.selection, params.n_modes, params.cutoff,
                                     params.gamma)
    modes.save(out / MODES)
    return (f"{model.name}: {model.n_atoms} atoms, {len(modes.node_indices)} nodes, "
            f"{len(modes.eigenvalues)} modes ({modes.n_zero_modes} zero-frequency modes "
            f"skipped) in {MODES}")


STAGE = Stage(
    "nma", "Normal modes of a template (ProDy ANM on coarse-grained nodes, sparse solver), "
    "extended to all atoms, in modes.npz.", Params, Inputs, write,
    packages=("prody", "numpy", "scipy", "gemmi"), default_output="nma")


#: `run(params, inputs, out_dir)`: the stage from Python, as the CLI runs it.
run = STAGE.run
