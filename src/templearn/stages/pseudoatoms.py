"""Stage `pseudoatoms`: density map → pseudo-atomic model (`model.pdb`, or `model.cif`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from templearn.errors import InputError
from templearn.stages.base import Record, Stage, StageParams, option

#: The model's name in the output directory, without its suffix (.pdb, or .cif beyond
#: the PDB format's limits).
MODEL = "model"


@dataclass(frozen=True)
class Inputs(Record):
    density_map: Path = option(help="Input map (MRC), e.g. an EMDB map.", argument=True)


@dataclass(frozen=True)
class Params(StageParams):
    lowpass: float = option(0.0, "Gaussian low-pass before binarising (Å); 0 = none.", minimum=0)
    threshold: float | None = option(None, "Binarisation threshold on the low-passed map. "
                                           "Default: Otsu's threshold.")
    mass_kda: float | None = option(None, "Instead of a threshold, enclose this mass "
                                          "(1.21 Å³/Da).", positive=True)
    phosphorus_fraction: float = option(1.0 / 3.0, "Fraction of pseudo-atoms made phosphorus, "
                                                    "to tune contrast (0 to 1).", minimum=0)
    seed: int = option(0, "Random seed for choosing the phosphorus atoms.", minimum=0)

    def check(self) -> None:
        if self.phosphorus_fraction > 1:
            raise InputError(f"--phosphorus-fraction must be at most 1, got "
                             f"{self.phosphorus_fraction}")
        if self.threshold is not None and self.mass_kda is not None:
            raise InputError("give --threshold or --mass-kda, not both")


def write(params: Params, inputs: Inputs, out: Path) -> str:
    """One pseudo-atom per foreground voxel in model.pdb (model.cif beyond PDB limits)."""
    import numpy as np

    from templearn.errors import about
    from templearn.mrc import read_mrc
    from templearn.pseudoatoms import pseudo_atoms
    from templearn.structure import output_suffix, write_structure

    volume = read_mrc(inputs.density_map)
    with about(inputs.density_map):
        model = pseudo_atoms(volume, np.random.default_rng(params.seed), params.lowpass,
                             params.threshold, params.mass_kda, params.phosphorus_fraction,
                             name=inputs.density_map.stem)
    path = write_structure(out / f"{MODEL}{output_suffix(model)}", model)
    return f"{model[0].count_atom_sites()} pseudo-atoms in {path.name}"


STAGE = Stage(
    "pseudoatoms", "One pseudo-atom per foreground voxel of a map (a fraction phosphorus), "
    "for simulating a particle known only as a map; model.pdb, or model.cif when too large.",
    Params, Inputs, write, packages=("numpy", "gemmi", "mrcfile"),
    default_output="pseudoatoms")


#: `run(params, inputs, out_dir)`: the stage from Python, as the CLI runs it.
run = STAGE.run
