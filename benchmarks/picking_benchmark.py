"""Picking speed and recovery: MeanShift (DeepFinder) vs connected components.

    python benchmarks/picking_benchmark.py [--skip-large] [--meanshift-cap 600]

(a) 192×192×64 label map with 300 planted balls (radius 6–8 voxels, non-overlapping, a
    jittered lattice): seconds per method and planted particles recovered within 5
    voxels (one-to-one). (b) 928×928×464 (uint8, ~0.4 GB) at the same particle density:
    components on the whole map; MeanShift too when its estimate fits --meanshift-cap,
    otherwise timed on two sub-volumes (z = 64 and 128 slabs of 192² and 384²... see
    SUBVOLUMES) and extrapolated with a power law in the number of voxels — printed as
    EXTRAPOLATED. Reference anchors (DeepFinder paper/code): MeanShift 192×192×64 with
    300 particles ≈ 6 s; 15 min clustering at 928×928×464.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from templearn.evaluate import match_picks
from templearn.pick import ball_offsets, pick_particles
from templearn.star import COORDINATES

SMALL, LARGE = (64, 192, 192), (464, 928, 928)
N_SMALL = 300
RADII = (6.0, 8.0)
BANDWIDTH = 7.0
SUBVOLUMES = ((64, 192, 192), (128, 384, 384))


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
    labels = np.zeros(shape, np.uint8)
    flat = labels.reshape(-1)
    strides = np.array([shape[1] * shape[2], shape[2], 1])
    for r in np.unique(np.round(radius, 1)):
        offsets = ball_offsets(r) @ strides
        which = np.flatnonzero(np.round(radius, 1) == r)
        for chunk in np.array_split(which, max(1, len(which) // 2000)):
            flat[(centres_zyx[chunk] @ strides)[:, None] + offsets[None]] = 1
    return labels, centres_zyx[:, ::-1].astype(float)


def timed(labels: np.ndarray, method: str, **kwargs) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    picks = pick_particles(labels, None, method, BANDWIDTH, **kwargs)
    return time.perf_counter() - start, picks[list(COORDINATES)].to_numpy()


def recovered(found: np.ndarray, truth: np.ndarray, distance: float = 5.0) -> int:
    return len(match_picks(found, truth, distance)[0])


def row(case: str, method: str, seconds: float, note: str, n_picks: int | None = None,
        hits: int | None = None, n_true: int | None = None) -> None:
    picks = "" if n_picks is None else f"{n_picks:7d}"
    rec = "" if hits is None else f"{hits:6d}/{n_true} ({hits / n_true:.1%})"
    print(f"{case:<16} {method:<18} {seconds:10.2f} {picks:>7} {rec:>22}  {note}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--no-large-meanshift", action="store_true",
                        help="large map: components only")
    parser.add_argument("--meanshift-cap", type=float, default=600.0,
                        help="run MeanShift on the large map only if estimated below this (s)")
    parser.add_argument("--sklearn", action="store_true",
                        help="also time sklearn's MeanShift on the small map (minutes)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)

    print(f"{'case':<16} {'method':<18} {'seconds':>10} {'picks':>7} "
          f"{'recovered ≤5 vox':>22}  note")
    labels, truth = plant(SMALL, N_SMALL, rng)
    case = "x".join(map(str, SMALL[::-1]))
    print(f"# {case}: {len(truth)} balls, {int((labels > 0).sum())} foreground voxels "
          f"({(labels > 0).mean():.1%})")
    for method, kwargs, note in (("meanshift", {}, "DeepFinder ≈ 6 s"),
                                 ("meanshift", {"bin2": True}, "2x binned"),
                                 ("components", {}, "scipy ≈ 0.2 s")):
        seconds, found = timed(labels, method, **kwargs)
        label = method + (" bin2" if kwargs else "")
        row(case, label, seconds, note, len(found), recovered(found, truth), len(truth))
    if args.sklearn:
        from sklearn.cluster import MeanShift

        start = time.perf_counter()
        MeanShift(bandwidth=BANDWIDTH, bin_seeding=True).fit(np.argwhere(labels).astype(float))
        row(case, "sklearn MeanShift", time.perf_counter() - start, "clustering only")
    if args.skip_large:
        return

    n_large = round(N_SMALL * np.prod(LARGE) / np.prod(SMALL))
    start = time.perf_counter()
    labels, truth = plant(LARGE, n_large, rng)
    case = "x".join(map(str, LARGE[::-1]))
    print(f"# {case}: {len(truth)} balls, {labels.nbytes / 1e9:.2f} GB uint8, "
          f"{(labels > 0).mean():.1%} foreground (planted in {time.perf_counter() - start:.0f} s)")
    seconds, found = timed(labels, "components")
    row(case, "components", seconds, "goal < 30 s", len(found), recovered(found, truth),
        len(truth))
    for bin2 in () if args.no_large_meanshift else (False, True):
        label = "meanshift" + (" bin2" if bin2 else "")
        sizes, times = [], []
        for sub in SUBVOLUMES:
            part = labels[:sub[0], :sub[1], :sub[2]]
            seconds, found = timed(part, "meanshift", bin2=bin2)
            sizes.append(part.size)
            times.append(seconds)
            row("x".join(map(str, sub[::-1])), label, seconds, "sub-volume", len(found))
        exponent = np.log(times[1] / times[0]) / np.log(sizes[1] / sizes[0])
        estimate = times[1] * (labels.size / sizes[1]) ** exponent
        if estimate <= args.meanshift_cap:
            seconds, found = timed(labels, "meanshift", bin2=bin2)
            row(case, label, seconds, "full run", len(found), recovered(found, truth),
                len(truth))
        else:
            row(case, label, estimate, f"EXTRAPOLATED (t ∝ voxels^{exponent:.2f}, not run); "
                "DeepFinder ≈ 900 s")


if __name__ == "__main__":
    main()
