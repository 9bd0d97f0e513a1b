"""templearn tetris vs the reference loop, on nucleosomes + the shared distractors at 16 Å.

    python benchmarks/tetris_benchmark.py [--sizes 128,192] [--skip-reference]

For each sample size (x = y, z = 64) prints, for both implementations: molecules placed,
seconds, molecules per minute, mask packing fraction (voxels inside the binarised sample
density — Gaussian σ, threshold — / sample voxels; for templearn also the union of the
placed masks, which leaves out the gaps that blurring the summed density fills) and
protein volume fraction (Σ mass × 1.21 Å³/Da / sample volume), and the speed-up: first
as a user's first packing of that shape (JAX compilation included), then the same packing
again (compiled: every further sample of a pipeline, or any run once the persistent
compilation cache holds it); then templearn with volume-matched masks.

    python benchmarks/tetris_benchmark.py --scaling [--scaling-sizes 64,96,128]

prints instead how templearn tetris's time grows with the sample volume (x = y = size,
z = size / 2; each size timed after a warm-up packing of the same shape), with the
molecules placed and the fitted exponent (`scaling.py`).
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).parent))
from scaling import add_scaling_arguments, report_scaling, warm_timed, write_scaling_json
from tetris_reference import reference_pack

from templearn.density import density_map
from templearn.structure import read_structure
from templearn.tetris.molecules import MoleculeSet, molecule_set
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


def scaling(molecules: MoleculeSet, sizes: list[int], seed: int) -> list[dict]:
    """templearn tetris seconds against sample volume (x = y = size, z = size / 2)."""
    points, shapes, placed = [], [], []
    for size in sizes:
        shape = (size // 2, size, size)
        seconds, result = warm_timed(partial(pack, molecules,
                                             TetrisParams(shape_zyx=shape, seed=seed)))
        points.append((int(np.prod(shape)), seconds))
        shapes.append("×".join(map(str, shape[::-1])))
        placed.append(len(result.molecule_index))
    return [report_scaling("templearn tetris time", "volume", points, "voxels",
                           {"sample": shapes, "molecules placed": placed})]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="128,192")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    add_scaling_arguments(parser, "64,96,128", "the packing")
    args = parser.parse_args()
    maps, is_template, masses = load_maps()
    molecules = molecule_set(maps, [str(i) for i in range(len(maps))],
                             [int(t) for t in is_template], list(masses), VOXEL)
    if args.scaling:
        write_scaling_json(args.scaling_json, scaling(molecules, args.scaling_sizes, args.seed))
        return
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
        default = TetrisParams(shape_zyx=shape, seed=args.seed)
        for label, params in (
            ("templearn tetris", default),
            ("  again (compiled)", default),
            ("templearn --mask volume", TetrisParams(shape_zyx=shape, seed=args.seed,
                                                     mask_mode="volume", band=(0, 1))),
        ):
            start = time.perf_counter()
            result = pack(molecules, params)
            rate = report(label, len(result.molecule_index), time.perf_counter() - start,
                          binarised_sample(result.density), masses[result.molecule_index], shape,
                          union=float((result.instances > 0).mean()))
            if rate_ref and params is default:
                print(f"  speed-up (molecules/min): {rate / rate_ref:.1f}x", flush=True)


if __name__ == "__main__":
    main()
