"""Cost of the Parakeet backend per tilt image, by detector size and number of atoms.

Samples of N copies of one protein (shared distractor 2r9r, 11.5k atoms) on a grid at
8 Å, simulated at 1 Å per pixel (detector = sample width × 8) with GRF ice, 3 tilts
(−30°, 0°, 30°). Prints seconds per tilt of each Parakeet step (each step's time
includes ≈2 s of Python start-up, spread over the tilts) and the whole run, so users can
plan: cost grows with detector pixels (multislice FFTs) and with atoms (potential).

    python benchmarks/parakeet_benchmark.py [--sizes 16 32 64] [--copies 1 4 16]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from templearn import star
from templearn.acquisition import Acquisition
from templearn.geometry import random_relion_angles
from templearn.sample import CLASS_NAME, Grid
from templearn.simulate.multislice import ParakeetParams, simulate_parakeet
from templearn.structure import read_structure

PROTEIN = (Path(__file__).resolve().parents[2] / "shared" / "data" / "structures"
           / "distractors" / "2r9r_centered.pdb")
VOXEL = 8.0


def sample_of_copies(size: int, copies: int,
                     protein: Path = PROTEIN) -> tuple[pd.DataFrame, Grid]:
    """`copies` randomly turned copies of `protein` on a regular grid in a
    size × size × 16 voxel sample."""
    side = int(np.ceil(np.sqrt(copies)))
    spacing = size / side
    xy = (np.indices((side, side)).reshape(2, -1).T[:copies] + 0.5) * spacing
    positions = np.column_stack([xy, np.full(copies, 8.0)]) * VOXEL
    angles = random_relion_angles(copies, np.random.default_rng(0))
    table = pd.DataFrame({
        **{c: positions[:, i] for i, c in enumerate(star.POSITION_ANGST)},
        **{c: angles[:, i] for i, c in enumerate(star.ANGLES)},
        star.MOLECULE_NAME: "2r9r", star.MOLECULE_CLASS: "template", CLASS_NAME: "protein",
        star.CLASS_ID: 1, star.MAP_FILE: "unused.mrc", star.STRUCTURE_FILE: str(protein),
    })
    return table, Grid((16, size, size), VOXEL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64],
                        help="sample widths in 8 Å voxels (detector = 8 × width at 1 Å)")
    parser.add_argument("--copies", type=int, nargs="+", default=[1, 4, 16])
    args = parser.parse_args()
    if not PROTEIN.exists():
        raise SystemExit(f"needs the shared data: {PROTEIN}")
    atoms = read_structure(PROTEIN).n_atoms
    acq = Acquisition(tilt_min=-30, tilt_max=30, tilt_step=30, dose_total=120,
                      defocus_um=-3.0)
    n_tilts = len(acq.nominal_angles())
    print(f"{'detector':>9} {'atoms':>8} {'sample':>7} {'exit_wave':>9} {'optics':>7} "
          f"{'image':>6} {'total':>7}   (seconds per tilt, {n_tilts} tilts)")
    for size in args.sizes:
        for copies in args.copies:
            table, grid = sample_of_copies(size, copies)
            with tempfile.TemporaryDirectory() as work:
                start = time.perf_counter()
                series = simulate_parakeet(table, grid, acq,
                                           ParakeetParams(sim_pixel=1.0), Path(work))
                total = time.perf_counter() - start
            steps = series.meta["step_seconds"]
            px = int(size * VOXEL)
            print(f"{px:>4}×{px:<4} {copies * atoms:>8,} "
                  + " ".join(f"{steps[s] / n_tilts:>{w}.1f}" for s, w in
                             (("sample", 7), ("exit_wave", 9), ("optics", 7), ("image", 6)))
                  + f" {total / n_tilts:>7.1f}", flush=True)


if __name__ == "__main__":
    main()
