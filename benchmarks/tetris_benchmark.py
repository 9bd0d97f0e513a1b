"""templearn tetris vs the reference loop, on nucleosomes + the shared distractors at 16 Å.

    python benchmarks/tetris_benchmark.py [--sizes 128,192] [--skip-reference]

For each sample size (x = y, z = 64) prints, for both implementations: molecules placed,
seconds, molecules per minute, mask packing fraction (voxels inside the binarised sample
density — Gaussian σ, threshold — / sample voxels; for templearn also the union of the
placed masks, which leaves out the gaps that blurring the summed density fills) and
protein volume fraction (Σ mass × 1.21 Å³/Da / sample volume), and the speed-up; then
templearn with volume-matched masks.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).parent))
from tetris_reference import reference_pack

from templearn.density import density_map
from templearn.structure import read_structure
from templearn.tetris.molecules import molecule_set
from templearn.tetris.packer import pack
from templearn.tetris.params import TetrisParams

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "structures"
VOXEL, RESOLUTION, SIGMA, THRESHOLD = 16.0, 32.0, 1.65, 100.0


def load_maps() -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    maps, is_template, masses = [], [], []
    for folder, template in (("nucleosome", True), ("distractors", False)):
        for path in sorted((DATA / folder).glob("*.pdb")):
            model = read_structure(path)
            maps.append(density_map(model.coords, model.atomic_numbers, VOXEL, RESOLUTION).data)
            is_template.append(template)
            masses.append(model.mass_da())
    return maps, np.array(is_template), np.array(masses)


def report(label: str, n: int, seconds: float, packing: float, masses: np.ndarray,
           shape: tuple[int, ...], union: float | None = None) -> float:
    protein = masses.sum() * 1.21 / (np.prod(shape) * VOXEL**3)
    rate = n / seconds * 60
    extra = f"  (union of masks {union:.3f})" if union is not None else ""
    print(f"  {label:<26} {n:6d} molecules {seconds:7.1f} s {rate:7.0f}/min  "
          f"mask packing {packing:.3f}  protein fraction {protein:.3f}{extra}", flush=True)
    return rate


def binarised_sample(density: np.ndarray) -> float:
    """Fraction of the sample inside the binarised sample density (the reference's measure)."""
    return float((ndimage.gaussian_filter(density, SIGMA) >= THRESHOLD).mean())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="128,192")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    maps, is_template, masses = load_maps()
    molecules = molecule_set(maps, [str(i) for i in range(len(maps))],
                             [int(t) for t in is_template], list(masses), VOXEL)
    for size in (int(s) for s in args.sizes.split(",")):
        shape = (64, size, size)
        print(f"sample {size}×{size}×64 voxels at {VOXEL:g} Å, nucleosomes:distractors 1:2")
        rate_ref = None
        if not args.skip_reference:
            start = time.perf_counter()
            placed, occupied = reference_pack(maps, is_template, shape, (1, 2), SIGMA,
                                              THRESHOLD, (-2, 0), args.seed)
            rate_ref = report("reference (numpy/scipy)", len(placed),
                              time.perf_counter() - start, float(occupied.mean()),
                              masses[placed], shape)
        for label, params in (
            ("templearn tetris", TetrisParams(shape_zyx=shape, seed=args.seed)),
            ("templearn --mask volume", TetrisParams(shape_zyx=shape, seed=args.seed,
                                                     mask_mode="volume", band=(0, 1))),
        ):
            start = time.perf_counter()
            result = pack(molecules, params)
            rate = report(label, len(result.molecule_index), time.perf_counter() - start,
                          binarised_sample(result.density), masses[result.molecule_index], shape,
                          union=float((result.instances > 0).mean()))
            if rate_ref and params.mask_mode == "threshold":
                print(f"  speed-up (molecules/min): {rate / rate_ref:.1f}x", flush=True)


if __name__ == "__main__":
    main()
