"""Density map → pseudo-atomic model (Template Learning's volume templates).

The map is low-passed and binarised; every foreground voxel becomes one carbon
pseudo-atom at the voxel centre (residue `DEN`), and a chosen fraction of them become
phosphorus, which scatters more strongly, to tune the contrast of the simulated particle.
Atoms are placed in the map's physical frame (MRC origin), so the model overlays the map.
"""

from __future__ import annotations

import itertools
import string

import gemmi
import numpy as np

from templearn.density import gaussian_lowpass
from templearn.errors import InputError
from templearn.mrc import Volume
from templearn.sample import PROTEIN_VOLUME_PER_DA

#: Residues per chain that fixed-column PDB residue numbers allow.
RESIDUES_PER_CHAIN = 9999
PSEUDO_RESIDUE = "DEN"


def otsu_threshold(values: np.ndarray, bins: int = 512) -> float:
    """Threshold maximising the between-class variance of `values` (Otsu's method)."""
    hist, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2.0
    w0 = np.cumsum(hist).astype(np.float64)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres) / np.maximum(w0, 1)
    m1 = ((hist * centres).sum() - np.cumsum(hist * centres)) / np.maximum(w1, 1)
    between = w0 * w1 * (m0 - m1) ** 2
    return float(edges[1:][np.argmax(between)])


def foreground_mask(volume: Volume, lowpass: float, threshold: float | None = None,
                    mass_kda: float | None = None) -> np.ndarray:
    """Binary mask of the molecule: low-pass, then an absolute threshold, a threshold that
    encloses `mass_kda` at 1.21 Å³/Da, or Otsu's threshold (in that order of preference)."""
    if threshold is None and mass_kda is not None:  # checked before the low-pass
        n_voxels = round(mass_kda * 1000.0 * PROTEIN_VOLUME_PER_DA / volume.voxel_size**3)
        if not 0 < n_voxels <= volume.data.size:
            raise InputError(f"a mass of {mass_kda} kDa gives {n_voxels} voxels; the map has "
                             f"{volume.data.size}")
    smooth = gaussian_lowpass(volume.data.astype(np.float64), volume.voxel_size, lowpass)
    if threshold is None and mass_kda is not None:
        threshold = float(np.partition(smooth.ravel(), smooth.size - n_voxels)[-n_voxels])
    elif threshold is None:
        threshold = otsu_threshold(smooth.ravel())
    mask = smooth >= threshold
    if not mask.any():
        raise InputError(f"no voxel reaches the threshold {threshold:g}")
    return mask


def chain_names() -> itertools.chain[str]:
    """Chain names: 62 single characters, then two-character names."""
    single = string.ascii_uppercase + string.ascii_lowercase + string.digits
    return itertools.chain(single, ("".join(p) for p in itertools.product(single, repeat=2)))


def pseudo_atomic_model(positions: np.ndarray, phosphorus: np.ndarray,
                        name: str = "pseudoatoms") -> gemmi.Structure:
    """A gemmi structure with one pseudo-atom (C, or P where flagged) per position (x y z Å)."""
    st = gemmi.Structure()
    st.name = name
    model = gemmi.Model(1)
    names = chain_names()
    carbon, phos = gemmi.Element("C"), gemmi.Element("P")
    for start in range(0, len(positions), RESIDUES_PER_CHAIN):
        chain = gemmi.Chain(next(names))
        for k in range(start, min(start + RESIDUES_PER_CHAIN, len(positions))):
            residue = gemmi.Residue()
            residue.name = PSEUDO_RESIDUE
            residue.seqid = gemmi.SeqId(k - start + 1, " ")
            residue.het_flag = "H"
            # One subchain per chain: gemmi would otherwise make a subchain (mmCIF asym) per
            # residue, which makes setup_entities and mmCIF writing quadratic in the atoms.
            residue.subchain = chain.name
            residue.entity_type = gemmi.EntityType.NonPolymer
            atom = gemmi.Atom()
            element = phos if phosphorus[k] else carbon
            atom.name = element.name
            atom.element = element
            atom.pos = gemmi.Position(*positions[k])
            atom.occ = 1.0
            residue.add_atom(atom)
            chain.add_residue(residue)
        model.add_chain(chain)
    st.add_model(model)
    st.setup_entities()
    return st


def pseudo_atoms(volume: Volume, rng: np.random.Generator, lowpass: float = 0.0,
                 threshold: float | None = None, mass_kda: float | None = None,
                 phosphorus_fraction: float = 1.0 / 3.0,
                 name: str = "pseudoatoms") -> gemmi.Structure:
    """Pseudo-atomic model of `volume`: one atom per foreground voxel, a fraction phosphorus."""
    if not 0.0 <= phosphorus_fraction <= 1.0:
        raise InputError(f"phosphorus fraction must be in [0, 1], got {phosphorus_fraction}")
    mask = foreground_mask(volume, lowpass, threshold, mass_kda)
    index_zyx = np.argwhere(mask)
    positions = index_zyx[:, ::-1] * volume.voxel_size + np.asarray(volume.origin)
    n_phos = round(phosphorus_fraction * len(positions))
    phosphorus = np.zeros(len(positions), dtype=bool)
    phosphorus[rng.choice(len(positions), size=n_phos, replace=False)] = True
    return pseudo_atomic_model(positions, phosphorus, name)
