"""Anisotropic network model (ANM) normal modes of an atomic model, extended to all atoms.

As in Template Learning: the model is centred on its mean coordinate, coarse-grained to
a ProDy selection (default `name CA P`), an ANM with cutoff 15 Å and γ = 1 gives the 20
lowest non-rigid modes, and each mode is extended to every atom (an atom follows the
nearest node of its residue, or the nearest node if its residue has none) and normalised
over all atoms. Each mode's sign is fixed (its largest component is positive), so the
modes do not depend on the eigensolver's random start. The Hessian is built vectorised
as a sparse matrix and the lowest modes come from shift-invert Lanczos, so a 70S
ribosome (≈10k nodes) takes under a minute where a dense ProDy ANM takes hours.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.spatial import cKDTree

from templearn.errors import InputError
from templearn.files import atomic_path, require_file
from templearn.structure import AtomicModel

#: Below this many degrees of freedom a dense eigensolver is faster than Lanczos.
DENSE_MAX_DOF = 1500
MODES_FORMAT = "templearn-anm-1"


@dataclass
class NormalModes:
    """Non-rigid ANM modes of one structure, extended to all of its atoms."""

    eigenvalues: np.ndarray  # (k,), ascending, rigid-body modes excluded
    modes: np.ndarray  # (k, n_atoms, 3), each of unit norm over all atoms
    centre: np.ndarray  # (3,), mean atom coordinate (Å) removed before the analysis
    reference_coords: np.ndarray  # (n_atoms, 3), the input coordinates (Å)
    node_indices: np.ndarray  # (m,), atoms used as network nodes
    n_zero_modes: int  # rigid-body (and disconnected-fragment) modes skipped
    params: dict[str, str | float | int] = field(default_factory=dict)

    @property
    def n_atoms(self) -> int:
        return self.modes.shape[1]

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write an `.npz` atomically."""
        final = Path(path)
        with atomic_path(final) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, format=MODES_FORMAT, eigenvalues=self.eigenvalues,
                     modes=self.modes.astype(np.float32), centre=self.centre,
                     reference_coords=self.reference_coords, node_indices=self.node_indices,
                     n_zero_modes=self.n_zero_modes,
                     param_names=np.array(list(self.params), dtype=str),
                     param_values=np.array([str(v) for v in self.params.values()], dtype=str))
        return final

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> NormalModes:
        """Read modes written by `save`; InputError if the file is not one."""
        p = require_file(path)
        if not zipfile.is_zipfile(p):
            raise InputError("not a templearn modes file (not an .npz archive)", p)
        try:
            with np.load(p, allow_pickle=False) as npz:
                if str(npz["format"]) != MODES_FORMAT:
                    raise KeyError("format")
                return cls(
                    eigenvalues=npz["eigenvalues"], modes=npz["modes"], centre=npz["centre"],
                    reference_coords=npz["reference_coords"], node_indices=npz["node_indices"],
                    n_zero_modes=int(npz["n_zero_modes"]),
                    params=dict(zip(npz["param_names"].tolist(), npz["param_values"].tolist(),
                                    strict=True)))
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"not a templearn modes file ({exc})", p) from None


def select_nodes(model: AtomicModel, selection: str) -> np.ndarray:
    """Indices of the atoms matching a ProDy selection string (e.g. `name CA P`)."""
    import prody

    prody.confProDy(verbosity="none")
    group = prody.AtomGroup(model.name)
    group.setCoords(model.coords)
    group.setNames(model.atom_names)
    group.setResnames(model.residue_names)
    group.setResnums(model.residue_numbers)
    group.setIcodes(model.insertion_codes)
    group.setChids(model.chain_ids)
    group.setElements(model.elements)
    group.setBetas(model.b_factors)
    try:
        selected = group.select(selection)
    except prody.SelectionError as exc:
        raise InputError(f"invalid atom selection {selection!r} ({exc})") from None
    if selected is None or selected.numAtoms() == 0:
        raise InputError(f"atom selection {selection!r} matches no atoms in {model.name}")
    return np.asarray(selected.getIndices(), dtype=np.int64)


def anm_hessian(nodes: np.ndarray, cutoff: float, gamma: float) -> sp.csc_matrix:
    """Sparse ANM Hessian (3m × 3m) of nodes (m, 3) with springs of constant γ within cutoff."""
    pairs = cKDTree(nodes).query_pairs(cutoff, output_type="ndarray")
    i, j = pairs[:, 0], pairs[:, 1]
    d = nodes[j] - nodes[i]
    blocks = -gamma * d[:, :, None] * d[:, None, :] / (d * d).sum(1)[:, None, None]
    a, b = np.meshgrid(np.arange(3), np.arange(3), indexing="ij")

    def entries(rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return ((3 * rows[:, None, None] + a).ravel(), (3 * cols[:, None, None] + b).ravel())

    index = [entries(i, j), entries(j, i), entries(i, i), entries(j, j)]
    rows = np.concatenate([r for r, _ in index])
    cols = np.concatenate([c for _, c in index])
    values = np.concatenate([blocks.ravel(), blocks.ravel(), -blocks.ravel(), -blocks.ravel()])
    n = 3 * len(nodes)
    return sp.coo_matrix((values, (rows, cols)), shape=(n, n)).tocsc()


def _shifted_inverse(hessian: sp.csc_matrix, sigma: float) -> spla.LinearOperator:
    """(H - σI)⁻¹ for shift-invert Lanczos. With σ < 0 the matrix is positive definite, so
    a symmetric fill-reducing ordering without pivoting applies (about 5× less fill and
    time than SuperLU's default for a 70S ribosome network)."""
    n = hessian.shape[0]
    shifted = (hessian - sigma * sp.identity(n, format="csc")).tocsc()
    lu = spla.splu(shifted, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                   options={"SymmetricMode": True})
    return spla.LinearOperator((n, n), matvec=lu.solve, dtype=np.float64)


def lowest_modes(hessian: sp.csc_matrix, n_modes: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The `n_modes` lowest non-zero eigenpairs (values, vectors (dof, k)) and the zero count."""
    dof = hessian.shape[0]
    scale = float(np.abs(hessian.diagonal()).max()) or 1.0
    zero_tol = 1e-8 * scale
    n_wanted = n_modes + 6
    while True:
        n_wanted = min(n_wanted, dof)
        if dof <= DENSE_MAX_DOF or n_wanted >= dof - 1:
            values, vectors = scipy.linalg.eigh(hessian.toarray(),
                                                subset_by_index=(0, n_wanted - 1))
        else:
            sigma = -1e-5 * scale
            start = np.random.default_rng(0).standard_normal(dof)  # reproducible to the bit
            values, vectors = spla.eigsh(hessian, k=n_wanted, sigma=sigma, which="LM",
                                         OPinv=_shifted_inverse(hessian, sigma), v0=start)
            order = np.argsort(values)
            values, vectors = values[order], vectors[:, order]
        nonzero = values > zero_tol
        n_zero = int((~nonzero).sum())
        if nonzero.sum() >= n_modes or n_wanted == dof:
            keep = np.flatnonzero(nonzero)[:n_modes]
            return values[keep], canonical_signs(vectors[:, keep]), n_zero
        n_wanted = n_modes + n_zero + 6


def canonical_signs(vectors: np.ndarray, tie: float = 1e-6) -> np.ndarray:
    """Eigenvectors (dof, k) with the sign convention that the largest-magnitude component
    of each is positive (the first one, in index order, among components within `tie`
    (relative) of the largest, so that numerical noise cannot swap them).

    An eigensolver returns ±v at random (ARPACK's start vector), which would make the
    conformers of `deform` with a fixed seed depend on the run of `nma`. Eigenvectors of
    exactly degenerate eigenvalues remain defined only up to a rotation of their subspace.
    """
    magnitude = np.abs(vectors)
    pivot = np.argmax(magnitude >= magnitude.max(axis=0) * (1.0 - tie), axis=0)
    signs = np.where(vectors[pivot, np.arange(vectors.shape[1])] < 0, -1.0, 1.0)
    return vectors * signs


def node_of_each_atom(coords: np.ndarray, residue_index: np.ndarray,
                      node_indices: np.ndarray) -> np.ndarray:
    """For every atom, the position in `node_indices` of the node whose motion it follows.

    An atom follows the nearest node of its own residue; atoms of residues without a node
    (ligands, ions) follow the nearest node anywhere.
    """
    node_res = residue_index[node_indices]
    n_res = int(residue_index.max()) + 1
    nodes_per_res = np.bincount(node_res, minlength=n_res)
    first_node = np.full(n_res, -1, dtype=np.int64)
    first_node[node_res[::-1]] = np.arange(len(node_indices))[::-1]
    owner = first_node[residue_index]

    orphan = owner < 0
    if orphan.any():
        _, nearest = cKDTree(coords[node_indices]).query(coords[orphan])
        owner[orphan] = nearest

    shared = nodes_per_res[residue_index] > 1
    if shared.any():
        # Residues with several nodes: candidate (atom, node) pairs of the same residue.
        atoms = np.flatnonzero(shared)
        order = np.argsort(node_res, kind="stable")
        starts = np.searchsorted(node_res[order], residue_index[atoms])
        counts = nodes_per_res[residue_index[atoms]]
        pair_atom = np.repeat(atoms, counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        pair_node = order[np.repeat(starts, counts) + offsets]
        dist = np.linalg.norm(coords[pair_atom] - coords[node_indices[pair_node]], axis=1)
        by_atom_then_dist = np.lexsort((dist, pair_atom))
        first = np.r_[True, np.diff(pair_atom[by_atom_then_dist]) != 0]
        owner[pair_atom[by_atom_then_dist][first]] = pair_node[by_atom_then_dist][first]
    return owner


def compute_normal_modes(model: AtomicModel, selection: str = "name CA P", n_modes: int = 20,
                         cutoff: float = 15.0, gamma: float = 1.0) -> NormalModes:
    """ANM modes of `model` on the selected nodes, extended to all atoms and normalised."""
    if n_modes < 1:
        raise InputError(f"number of modes must be at least 1, got {n_modes}")
    if cutoff < 4.0:
        raise InputError(f"cutoff must be at least 4 Å, got {cutoff}")
    if gamma <= 0:
        raise InputError(f"spring constant γ must be positive, got {gamma}")
    node_indices = select_nodes(model, selection)
    if len(node_indices) < 3:
        raise InputError(f"atom selection {selection!r} gives {len(node_indices)} nodes in "
                         f"{model.name}; an elastic network needs at least 3")
    centre = model.coords.mean(axis=0)
    coords = model.coords - centre
    hessian = anm_hessian(coords[node_indices], cutoff, gamma)
    max_modes = 3 * len(node_indices) - 6
    values, vectors, n_zero = lowest_modes(hessian, min(n_modes, max_modes))
    node_modes = vectors.T.reshape(len(values), len(node_indices), 3)
    owner = node_of_each_atom(coords, model.residue_index, node_indices)
    modes = node_modes[:, owner, :]
    modes /= np.linalg.norm(modes.reshape(len(values), -1), axis=1)[:, None, None]
    return NormalModes(
        eigenvalues=values, modes=modes, centre=centre, reference_coords=model.coords.copy(),
        node_indices=node_indices, n_zero_modes=n_zero,
        params={"selection": selection, "n_modes": n_modes, "cutoff": cutoff, "gamma": gamma,
                "structure": model.name})
