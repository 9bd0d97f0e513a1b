"""Stage `deform`: flexible conformers from normal modes, and their RMSD table."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from templearn.stages.base import Record, Stage, StageParams, option

#: The RMSD and amplitude table in the output directory.
TABLE = "rmsd.csv"


@dataclass(frozen=True)
class Inputs(Record):
    structure: Path = option(help="Template model the modes were computed for.", argument=True)
    modes: Path = option(help="Modes file from `templearn nma` (its OUT/modes.npz).",
                         argument=True)


@dataclass(frozen=True)
class Params(StageParams):
    n: int = option(10, "Number of conformers.", flag="--n", short="-n", minimum=1)
    amplitude: float = option(100.0, "Mode amplitudes are drawn from U(-A, A); 100 ≈ 2 Å RMSD "
                                     "for a nucleosome.", short="-A", minimum=0)
    seed: int = option(0, "Random seed (same seed and modes, same conformers).", minimum=0)


def conformer_names(stem: str, n: int, suffix: str) -> list[str]:
    """File names of the conformers: <stem>_conf000<suffix>, ..."""
    return [f"{stem}_conf{i:03d}{suffix}" for i in range(n)]


def write(params: Params, inputs: Inputs, out: Path) -> str:
    """<stem>_confNNN.pdb|cif (centred template + random sum of its modes) and rmsd.csv."""
    import numpy as np
    import pandas as pd

    from templearn.deform import deform
    from templearn.errors import InputError, about
    from templearn.files import atomic_path
    from templearn.nma import NormalModes
    from templearn.progress import track
    from templearn.structure import (
        output_suffix,
        read_structure,
        structure_stem,
        with_coords,
        write_structure,
    )

    if inputs.modes.is_dir():
        raise InputError("is a directory; give the modes file in it (modes.npz)", inputs.modes)
    normal_modes = NormalModes.load(inputs.modes)  # before the (larger) structure
    model = read_structure(inputs.structure)
    with about(inputs.modes):
        conformers = deform(model, normal_modes, params.n, params.amplitude,
                            np.random.default_rng(params.seed))
    stem = structure_stem(inputs.structure)
    names = conformer_names(stem, params.n, output_suffix(model.structure))
    for name, coords in track(list(zip(names, conformers.coords, strict=True)),
                              "deform: writing conformers"):
        write_structure(out / name, with_coords(model, coords))
    table = pd.DataFrame({"file": names, "rmsd_angstrom": conformers.rmsd})
    for k in range(conformers.amplitudes.shape[1]):
        table[f"amplitude_mode{k + 1}"] = conformers.amplitudes[:, k]
    with atomic_path(out / TABLE) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    return (f"{params.n} conformers of {stem}, RMSD to input {conformers.rmsd.mean():.2f} ± "
            f"{conformers.rmsd.std():.2f} Å")


STAGE = Stage(
    "deform", "Conformers: centred template + a random sum of its normal modes; writes "
    "<stem>_confNNN.pdb|cif and rmsd.csv (RMSD and amplitudes).", Params, Inputs, write,
    packages=("numpy", "pandas", "gemmi"), default_output="conformers")


#: `run(params, inputs, out_dir)`: the stage from Python, as the CLI runs it.
run = STAGE.run
