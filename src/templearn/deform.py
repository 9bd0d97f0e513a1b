"""Flexible conformers: random sums of normal-mode displacements (Template Learning).

Every non-rigid mode gets an amplitude drawn from U(-A, A); the modes have unit norm
over all atoms, so the expected RMSD to the input is A·sqrt(k / (3·N_atoms)) for k modes
and N atoms (≈2 Å for a nucleosome at A = 100, ≈1 Å for a 70S ribosome at A = 150).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from templearn.errors import InputError
from templearn.nma import NormalModes
from templearn.structure import AtomicModel


@dataclass
class Conformers:
    """Deformed coordinates (centred on the input's mean), their amplitudes and RMSDs."""

    coords: np.ndarray  # (n_conformers, n_atoms, 3)
    amplitudes: np.ndarray  # (n_conformers, n_modes)
    rmsd: np.ndarray  # (n_conformers,), Å, to the centred input without superposition


def check_modes_match(model: AtomicModel, modes: NormalModes, tolerance: float = 1e-2) -> None:
    """InputError unless `modes` were computed for exactly this structure."""
    if modes.n_atoms != model.n_atoms:
        raise InputError(f"modes are for {modes.n_atoms} atoms but {model.name} has "
                         f"{model.n_atoms}; run `templearn nma` on this structure")
    if np.abs(modes.reference_coords - model.coords).max() > tolerance:
        raise InputError(f"modes were computed for other coordinates than {model.name}'s")


def deform(model: AtomicModel, modes: NormalModes, n_conformers: int, amplitude: float,
           rng: np.random.Generator) -> Conformers:
    """`n_conformers` conformers with mode amplitudes drawn from U(-amplitude, amplitude)."""
    if n_conformers < 1:
        raise InputError(f"number of conformers must be at least 1, got {n_conformers}")
    if amplitude < 0:
        raise InputError(f"amplitude must be non-negative, got {amplitude}")
    check_modes_match(model, modes)
    amplitudes = rng.uniform(-amplitude, amplitude, size=(n_conformers, len(modes.eigenvalues)))
    flat_modes = modes.modes.reshape(len(modes.eigenvalues), -1).astype(np.float64)
    displacements = (amplitudes @ flat_modes).reshape(n_conformers, model.n_atoms, 3)
    centred = model.coords - modes.centre
    rmsd = np.sqrt((displacements**2).sum(axis=2).mean(axis=1))
    return Conformers(coords=centred[None] + displacements, amplitudes=amplitudes, rmsd=rmsd)
