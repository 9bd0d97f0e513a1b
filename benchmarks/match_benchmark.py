"""Template-matching speed: rotations per second on a 200×200×100 tomogram (x, y, z) with a
32³ template, the missing wedge on, on whatever JAX runs on here.

    python benchmarks/match_benchmark.py [--rotations 64] [--batch 8]

The first batch (compilation) is timed apart; the rate is over the later batches. A full 7°
search is 43,784 rotations: the line "7° search" scales the measured rate to it.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from templearn.match import Search, run_search, sample_rotations

SHAPE = (100, 200, 200)  # z, y, x
TEMPLATE = 32
FULL_STEP = 7.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rotations", type=int, default=64, help="rotations timed")
    parser.add_argument("--batch", type=int, default=8, help="rotations per jitted call")
    args = parser.parse_args()
    import jax

    rng = np.random.default_rng(0)
    tomogram = rng.normal(size=SHAPE).astype(np.float32)
    axis = np.arange(TEMPLATE) - (TEMPLATE - 1) / 2
    zz, yy, xx = np.meshgrid(axis, axis, axis, indexing="ij")
    template = np.exp(-(zz**2 + (yy / 1.5) ** 2 + (xx / 2) ** 2) / 50).astype(np.float32)
    rotations = sample_rotations(FULL_STEP)
    warm = Search(rotations[:args.batch], (-60.0, 60.0), batch=args.batch)
    start = time.perf_counter()
    run_search(tomogram, template, warm)
    first = time.perf_counter() - start
    timed = Search(rotations[:args.rotations], (-60.0, 60.0), batch=args.batch)
    start = time.perf_counter()
    run_search(tomogram, template, timed)
    seconds = time.perf_counter() - start
    rate = args.rotations / seconds
    print(f"device: {jax.devices()[0].platform} ({jax.device_count()} device(s))")
    print(f"tomogram {SHAPE[::-1]} (x, y, z), template {TEMPLATE}³, batch {args.batch}")
    print(f"first batch (compile + run): {first:.1f} s")
    print(f"{args.rotations} rotations in {seconds:.1f} s: {rate:.2f} rotations/s")
    print(f"7° search ({len(rotations)} rotations) at this rate: "
          f"{len(rotations) / rate / 3600:.1f} h")


if __name__ == "__main__":
    main()
