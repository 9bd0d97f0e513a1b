"""Picking speed and recovery: MeanShift (DeepFinder) vs connected components.

    python benchmarks/picking_benchmark.py [--skip-large] [--no-large-meanshift] [--sklearn]

(a) 192×192×64 label map with 300 planted balls (radius 6–8 voxels, non-overlapping, a
    jittered lattice): seconds per method and planted particles recovered within 5
    voxels (one-to-one). (b) 928×928×464 (uint8, ~0.4 GB) at the same particle density
    (~51,000 balls, 75 M foreground voxels): components, MeanShift at full resolution and
    MeanShift on the 2×-binned map, each on the whole map. Every row shows wall and CPU
    seconds (CPU counts all threads; MeanShift uses 2), the 1-minute load average when
    it ended (timings on a shared machine are slower by about load / cores) and the time
    measured before the grid mean shift (`BEFORE`, KD-tree mean shift, same machine, load
    ≈ 3 per core). Reference anchors (DeepFinder paper/code): MeanShift 192×192×64 with
    300 particles ≈ 6 s; 15 min clustering at 928×928×464.

    python benchmarks/picking_benchmark.py --scaling [--scaling-sizes 300,1200,4800]

prints instead how MeanShift's and connected components' times grow with the particle
count, the map growing in x and y at the density of (a) (300 balls in 192×192×64), each
timed after a warm-up run on the same map, with the fitted exponents (`scaling.py`).
"""

from __future__ import annotations

import argparse
import os
import time
from functools import partial

import numpy as np
from scaling import add_scaling_arguments, report_scaling, warm_timed, write_scaling_json

from templearn.evaluate import match_picks
from templearn.pick import ball_offsets, pick_particles
from templearn.star import COORDINATES

SMALL, LARGE = (64, 192, 192), (464, 928, 928)
N_SMALL = 300
RADII = (6.0, 8.0)
BANDWIDTH = 7.0
#: Seconds measured before the grid mean shift (docs/stages.md, KD-tree mean shift).
BEFORE = {("small", "meanshift"): "12.6 s", ("small", "meanshift bin2"): "1.4 s",
          ("small", "components"): "0.11 s", ("large", "components"): "21–25 s",
          ("large", "meanshift"): "≈ 2.4 h (extrapolated)", ("large", "meanshift bin2"): "508 s"}


def plant(shape: tuple[int, int, int], n: int, rng: np.random.Generator
          ) -> tuple[np.ndarray, np.ndarray]:
    """uint8 label map with n non-overlapping balls on a jittered lattice; centres (x, y, z).

    Lattice sites are spaced s per axis; a ball of radius r moves at most (s - 1)/2 - r
    per axis from its site, so two balls stay ≥ 1 voxel apart.
    """
    density = (n / np.prod(shape)) ** (1 / 3)
    counts = np.maximum(np.rint(np.array(shape) * density).astype(int), 1)
    while np.prod(counts) < n:
        counts[np.argmax(np.array(shape) / counts)] += 1
    spacing = np.array(shape) / counts
    sites = np.stack(np.meshgrid(*[np.arange(c) for c in counts], indexing="ij"), -1)
    sites = sites.reshape(-1, 3)[rng.choice(np.prod(counts), n, replace=False)]
    radius = rng.uniform(*RADII, n)
    room = np.maximum((spacing.min() - 1) / 2 - radius, 0)
    centres_zyx = np.rint((sites + 0.5) * spacing - 0.5
                          + rng.uniform(-1, 1, (n, 3)) * room[:, None]).astype(np.int64)
    # Whole balls inside the map: a flat index past an edge would wrap or overflow.
    margin = int(np.ceil(RADII[1]))
    centres_zyx = np.clip(centres_zyx, margin, np.array(shape) - 1 - margin)
    labels = np.zeros(shape, np.uint8)
    flat = labels.reshape(-1)
    strides = np.array([shape[1] * shape[2], shape[2], 1])
    for r in np.unique(np.round(radius, 1)):
        offsets = ball_offsets(r) @ strides
        which = np.flatnonzero(np.round(radius, 1) == r)
        for chunk in np.array_split(which, max(1, len(which) // 2000)):
            flat[(centres_zyx[chunk] @ strides)[:, None] + offsets[None]] = 1
    return labels, centres_zyx[:, ::-1].astype(float)


def timed(labels: np.ndarray, method: str, **kwargs) -> tuple[float, float, np.ndarray]:
    """Wall and CPU seconds of one picking run, and the picks (x, y, z)."""
    start, cpu = time.perf_counter(), time.process_time()
    picks = pick_particles(labels, None, method, BANDWIDTH, **kwargs)
    return (time.perf_counter() - start, time.process_time() - cpu,
            picks[list(COORDINATES)].to_numpy())


def recovered(found: np.ndarray, truth: np.ndarray, distance: float = 5.0) -> int:
    return len(match_picks(found, truth, distance)[0])


def row(case: str, method: str, seconds: float, cpu: float, before: str, n_picks: int,
        hits: int, n_true: int) -> None:
    rec = f"{hits:6d}/{n_true} ({hits / n_true:.1%})"
    print(f"{case:<12} {method:<15} {seconds:8.2f} {cpu:8.2f} {os.getloadavg()[0]:5.1f} "
          f"{before:>24} {n_picks:7d} {rec:>22}", flush=True)


def scaling(counts: list[int], rng: np.random.Generator) -> list[dict]:
    """MeanShift and components seconds against particle count, at the density of (a)."""
    times: dict[str, list[tuple[float, float]]] = {"meanshift": [], "components": []}
    picks: dict[str, list[int]] = {method: [] for method in times}
    shapes = []
    for n in counts:
        edge = round(SMALL[1] * np.sqrt(n / N_SMALL))
        labels, _ = plant((SMALL[0], edge, edge), n, rng)
        shapes.append(f"{edge}×{edge}×{SMALL[0]}")
        for method, points in times.items():
            seconds, found = warm_timed(partial(pick_particles, labels, None, method, BANDWIDTH))
            points.append((n, seconds))
            picks[method].append(len(found))
    return [report_scaling(f"picking time ({method})", "particles", points,
                           extra={"map": shapes, "picks": picks[method]})
            for method, points in times.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--no-large-meanshift", action="store_true",
                        help="large map: components only")
    parser.add_argument("--sklearn", action="store_true",
                        help="also time sklearn's MeanShift on the small map (minutes)")
    parser.add_argument("--seed", type=int, default=0)
    add_scaling_arguments(parser, "300,1200,4800", "the picking")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    if args.scaling:
        write_scaling_json(args.scaling_json, scaling(args.scaling_sizes, rng))
        return
    methods = (("meanshift", {}), ("meanshift bin2", {"bin2": True}), ("components", {}))

    print(f"# {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"{'case':<12} {'method':<15} {'wall s':>8} {'cpu s':>8} {'load':>5} "
          f"{'before (wall)':>24} {'picks':>7} {'recovered ≤5 vox':>22}")
    labels, truth = plant(SMALL, N_SMALL, rng)
    case = "x".join(map(str, SMALL[::-1]))
    print(f"# {case}: {len(truth)} balls, {int((labels > 0).sum())} foreground voxels "
          f"({(labels > 0).mean():.1%})")
    for label, kwargs in methods:
        seconds, cpu, found = timed(labels, label.split()[0], **kwargs)
        row(case, label, seconds, cpu, BEFORE["small", label], len(found),
            recovered(found, truth), len(truth))
    if args.sklearn:
        from sklearn.cluster import MeanShift

        start = time.perf_counter()
        MeanShift(bandwidth=BANDWIDTH, bin_seeding=True).fit(np.argwhere(labels).astype(float))
        print(f"{case:<12} sklearn MeanShift {time.perf_counter() - start:.2f} s (clustering "
              "only; before: 169 s)")
    if args.skip_large:
        return

    n_large = round(N_SMALL * np.prod(LARGE) / np.prod(SMALL))
    start = time.perf_counter()
    labels, truth = plant(LARGE, n_large, rng)
    case = "x".join(map(str, LARGE[::-1]))
    print(f"# {case}: {len(truth)} balls, {labels.nbytes / 1e9:.2f} GB uint8, "
          f"{int((labels > 0).sum())} foreground voxels ({(labels > 0).mean():.1%}; planted "
          f"in {time.perf_counter() - start:.0f} s)")
    for label, kwargs in methods[::-1][:1 if args.no_large_meanshift else 3]:
        seconds, cpu, found = timed(labels, label.split()[0], **kwargs)
        row(case, label, seconds, cpu, BEFORE["large", label], len(found),
            recovered(found, truth), len(truth))


if __name__ == "__main__":
    main()
