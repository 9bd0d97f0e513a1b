"""Benchmark of the structure stages: sparse ANM vs ProDy's dense ANM, and density throughput.

Run from the repository root (needs ../shared/data and the `nma` extra):

    python benchmarks/structure_stages.py

Prints wall times, the speed-up of templearn's sparse shift-invert ANM over ProDy's dense
ANM on a nucleosome, and the 70S ribosome cost, where a dense ANM (≈32k × 32k Hessian,
8 GB) is out of reach of a workstation core (the Template Learning paper reports ≈1 h).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from templearn.density import density_map
from templearn.nma import compute_normal_modes, select_nodes
from templearn.structure import read_structure

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "structures"


def timed(fn, repeats: int = 1) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def prody_dense_anm(model) -> np.ndarray:
    import prody

    prody.confProDy(verbosity="none")
    nodes = model.coords[select_nodes(model, "name CA P")] - model.coords.mean(axis=0)
    anm = prody.ANM()
    anm.buildHessian(nodes, cutoff=15.0, gamma=1.0)
    anm.calcModes(20)
    return anm.getEigvals()


def main() -> None:
    nucleosome = read_structure(DATA / "nucleosome" / "2pyo_centered.pdb")
    t_ours, modes = timed(lambda: compute_normal_modes(nucleosome), repeats=3)
    t_prody, eigvals = timed(lambda: prody_dense_anm(nucleosome), repeats=3)
    assert np.allclose(modes.eigenvalues, eigvals, rtol=1e-6)
    print(f"nucleosome 2pyo ({nucleosome.n_atoms} atoms, {len(modes.node_indices)} nodes): "
          f"templearn ANM {t_ours:.2f} s (incl. extension to all atoms), ProDy dense ANM "
          f"{t_prody:.2f} s (nodes only): {t_prody / t_ours:.1f}x")

    ribosome = read_structure(DATA / "large" / "4v5d.cif")
    t_70s, modes_70s = timed(lambda: compute_normal_modes(ribosome))
    print(f"70S ribosome 4v5d ({ribosome.n_atoms} atoms, {len(modes_70s.node_indices)} nodes): "
          f"templearn ANM {t_70s:.1f} s")

    t_map, volume = timed(lambda: density_map(ribosome.coords, ribosome.atomic_numbers,
                                              16.0, 32.0), repeats=3)
    print(f"70S density at 16 Å ({volume.data.shape[0]}³ box): {t_map:.2f} s, "
          f"{ribosome.n_atoms / t_map / 1e6:.2f} M atoms/s")
    t_fine, fine = timed(lambda: density_map(ribosome.coords, ribosome.atomic_numbers,
                                             2.0, 4.0), repeats=3)
    print(f"70S density at 2 Å ({fine.data.shape[0]}³ box): {t_fine:.2f} s")


if __name__ == "__main__":
    main()
