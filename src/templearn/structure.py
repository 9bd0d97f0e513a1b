"""Atomic models: reading PDB/mmCIF (optionally gzipped) with gemmi, writing PDB or mmCIF.

A model is held as flat per-atom numpy arrays (for vectorised maths) together with the
gemmi structure it came from (so that written conformers keep chains, residues and
names exactly).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import gemmi
import numpy as np

from templearn.errors import InputError
from templearn.files import atomic_path, require_file

#: Largest model that fits the fixed-column PDB format; bigger ones are written as mmCIF.
PDB_MAX_ATOMS = 99_999
PDB_MAX_CHAINS = 62
STRUCTURE_SUFFIXES = (".pdb", ".ent", ".cif", ".mmcif", ".pdb.gz", ".ent.gz", ".cif.gz",
                      ".mmcif.gz")


@dataclass
class AtomicModel:
    """One model of a structure as per-atom arrays (atom order = file order)."""

    structure: gemmi.Structure
    coords: np.ndarray  # (n, 3) float64, Å, x y z
    atomic_numbers: np.ndarray  # (n,) int
    b_factors: np.ndarray  # (n,) float
    atom_names: np.ndarray  # (n,) str
    residue_names: np.ndarray  # (n,) str
    residue_numbers: np.ndarray  # (n,) int
    insertion_codes: np.ndarray  # (n,) str
    chain_ids: np.ndarray  # (n,) str
    elements: np.ndarray  # (n,) str, element symbols
    residue_index: np.ndarray  # (n,) int, 0-based index of the atom's residue in file order

    @property
    def n_atoms(self) -> int:
        return len(self.coords)

    @property
    def name(self) -> str:
        return self.structure.name

    def mass_da(self) -> float:
        """Total mass in Da (for volume estimates: 1.21 Å³/Da for proteins)."""
        return float(sum(gemmi.Element(int(z)).weight for z in self.atomic_numbers))


def structure_stem(path: str | os.PathLike[str]) -> str:
    """File name without structure suffixes: `4v5d.cif.gz` -> `4v5d`."""
    name = Path(path).name
    for suffix in sorted(STRUCTURE_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def read_structure(path: str | os.PathLike[str], keep_waters: bool = False) -> AtomicModel:
    """Read the first model of a PDB/mmCIF file; one altloc per atom; waters dropped by default.

    Raises InputError for missing, unparsable or atom-less files and unknown elements.
    """
    p = require_file(path)
    try:
        st = gemmi.read_structure(str(p), merge_chain_parts=True)
    except Exception as exc:  # gemmi raises RuntimeError/ValueError with a parser message
        raise InputError(f"not a readable PDB/mmCIF file ({exc})", p) from None
    if len(st) == 0:
        raise InputError("no atoms (no model found)", p)
    for i in range(len(st) - 1, 0, -1):
        del st[i]
    st.name = structure_stem(p)
    st.remove_alternative_conformations()
    if not keep_waters:
        st.remove_waters()
    st.remove_empty_chains()
    repaired = _repair_elements(st)
    if repaired:
        from templearn.progress import log

        log(f"{p}: {repaired} atoms had no valid element symbol; inferred from atom names")
    model = _model_arrays(st)
    if model.n_atoms == 0:
        raise InputError("no atoms", p)
    unknown = model.atomic_numbers == 0
    if unknown.any():
        i = int(np.flatnonzero(unknown)[0])
        raise InputError(
            f"{int(unknown.sum())} atoms with unknown element (first: {model.atom_names[i]} "
            f"{model.residue_names[i]} {model.chain_ids[i]}{model.residue_numbers[i]})", p)
    if not np.isfinite(model.coords).all():
        raise InputError("non-finite atom coordinates", p)
    return model


def _element_from_name(atom_name: str, residue_name: str) -> gemmi.Element:
    """Guess an element from an atom name: ions named like their residue (CL, MG, ZN) are
    two-letter elements, otherwise the first letter of the name counts."""
    letters = "".join(c for c in atom_name if c.isalpha())
    if letters and letters.upper() == residue_name.strip().upper():
        element = gemmi.Element(letters)
        if element.atomic_number:
            return element
    return gemmi.Element(letters[:1] or "X")


def _repair_elements(st: gemmi.Structure) -> int:
    """Fill in unknown element symbols (misaligned element columns) from atom names."""
    repaired = 0
    for chain in st[0]:
        for residue in chain:
            for atom in residue:
                if atom.element.atomic_number == 0:
                    guess = _element_from_name(atom.name, residue.name)
                    if guess.atomic_number:
                        atom.element = guess
                        repaired += 1
    return repaired


def _model_arrays(st: gemmi.Structure) -> AtomicModel:
    """Flatten the first model of `st` into per-atom arrays."""
    coords, z, b, names, resn, resi, icode, chains, elements, res_index = (
        [], [], [], [], [], [], [], [], [], [])
    k = 0
    for chain in st[0]:
        for residue in chain:
            for atom in residue:
                pos = atom.pos
                coords.append((pos.x, pos.y, pos.z))
                z.append(atom.element.atomic_number)
                b.append(atom.b_iso)
                names.append(atom.name)
                elements.append(atom.element.name)
                resn.append(residue.name)
                resi.append(residue.seqid.num)
                icode.append(residue.seqid.icode.strip())
                chains.append(chain.name)
                res_index.append(k)
            k += 1
    return AtomicModel(
        structure=st,
        coords=np.asarray(coords, dtype=np.float64).reshape(-1, 3),
        atomic_numbers=np.asarray(z, dtype=np.int64),
        b_factors=np.asarray(b, dtype=np.float64),
        atom_names=np.asarray(names, dtype=str),
        residue_names=np.asarray(resn, dtype=str),
        residue_numbers=np.asarray(resi, dtype=np.int64),
        insertion_codes=np.asarray(icode, dtype=str),
        chain_ids=np.asarray(chains, dtype=str),
        elements=np.asarray(elements, dtype=str),
        residue_index=np.asarray(res_index, dtype=np.int64),
    )


def needs_mmcif(structure: gemmi.Structure) -> bool:
    """True if the model cannot be written as PDB (too many atoms or chains, long chain ids)."""
    model = structure[0]
    return (model.count_atom_sites() > PDB_MAX_ATOMS or len(model) > PDB_MAX_CHAINS
            or any(len(chain.name) > 2 for chain in model))


def output_suffix(structure: gemmi.Structure) -> str:
    """`.cif` for models that do not fit the PDB format, else `.pdb`."""
    return ".cif" if needs_mmcif(structure) else ".pdb"


def with_coords(model: AtomicModel, coords: np.ndarray) -> gemmi.Structure:
    """A copy of `model.structure` with atom positions replaced (same atom order)."""
    if coords.shape != model.coords.shape:
        raise ValueError(f"expected coordinates of shape {model.coords.shape}, got {coords.shape}")
    st = model.structure.clone()
    flat = iter(coords.tolist())
    for chain in st[0]:
        for residue in chain:
            for atom in residue:
                x, y, z = next(flat)
                atom.pos = gemmi.Position(x, y, z)
    return st


def write_structure(path: str | os.PathLike[str], structure: gemmi.Structure) -> Path:
    """Write atomically as PDB or mmCIF (by suffix); mmCIF is forced when PDB cannot hold it.

    Assembly records are dropped so that readers which build assemblies (Parakeet) place
    exactly the atoms written.
    """
    final = Path(path)
    is_cif = ".cif" in final.suffixes or ".mmcif" in final.suffixes
    if not is_cif and needs_mmcif(structure):
        raise ValueError(f"{final}: model too large for PDB format; use a .cif name")
    st = structure.clone()
    st.assemblies.clear()
    st.setup_entities()
    with atomic_path(final) as tmp:
        if is_cif:
            st.make_mmcif_document().write_file(str(tmp))
        else:
            st.write_pdb(str(tmp))
    return final
