"""Particles against their noise, as the picker sees them (docs/transfer.md, finding 6).

For each tomogram: whiten and high-pass it as `train --normalise whiten` does, then compare
the mean over a small cube at every true particle centre with the s.d. of that same
average over empty ice (voxels farther than `--gap` from any molecule of the sample). The
ratio is the particles' signal-to-noise ratio at their own scale: comparable across
simulators, crowding and normalisation, unlike a contrast in units of the tomogram's s.d.

    python benchmarks/particle_snr.py CASE [CASE ...] [--tomogram CASE=TOMO.mrc ...]

A CASE is a folder with `tomo/tomogram.mrc`, `sample/instances.mrc` and
`labels/targets.star` (a `templearn run` tomogram folder or a transfer case in
~/.cache/templearn/transfer). `--tomogram NAME=PATH` scores another tomogram of the same
sample (e.g. the fast backend's simulation of a Parakeet case) against that case's truth.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.ndimage import distance_transform_edt, uniform_filter

from templearn import star
from templearn.mrc import read_mrc
from templearn.unet.normalise import whiten


def cube_average(volume: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a cube of side 2·radius + 1 around every voxel (periodic edges): a ball's
    stand-in that keeps the comparison between particles and ice exact."""
    return uniform_filter(volume, size=2 * radius + 1, mode="wrap")


def particle_snr(tomogram: np.ndarray, occupied: np.ndarray, centres_zyx: np.ndarray,
                 radius: int, gap: float, lowpass: float, highpass: float
                 ) -> tuple[float, float, float]:
    """(mean particle value, s.d. of the same average in empty ice, their |ratio|)."""
    averaged = cube_average(whiten(tomogram, lowpass, highpass), radius)
    empty = distance_transform_edt(~occupied) > gap
    if not empty.any():
        raise SystemExit("no empty ice farther than --gap from every molecule")
    inside = np.clip(np.round(centres_zyx).astype(int), 0, np.array(tomogram.shape) - 1)
    signal = float(averaged[tuple(inside.T)].mean())
    noise = float(averaged[empty].std())
    return signal, noise, abs(signal) / noise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="+", type=Path)
    parser.add_argument("--tomogram", action="append", default=[],
                        help="NAME=PATH: another tomogram of the first case's sample")
    parser.add_argument("--radius", type=int, default=3, help="half-side of the average")
    parser.add_argument("--gap", type=float, default=3.0, help="empty ice: voxels from any "
                                                              "molecule")
    parser.add_argument("--lowpass", type=float, default=1.0)
    parser.add_argument("--highpass", type=float, default=4.0)
    args = parser.parse_args()
    jobs = [(case.name, case, case / "tomo" / "tomogram.mrc") for case in args.cases]
    for spec in args.tomogram:
        name, _, path = spec.partition("=")
        jobs.append((name, args.cases[0], Path(path)))
    print(f"{'tomogram':28s} {'particles':>9s} {'ice s.d.':>9s} {'SNR':>6s}")
    for name, case, path in jobs:
        occupied = read_mrc(case / "sample" / "instances.mrc").data > 0
        truth = star.read_star(case / "labels" / "targets.star")
        centres = truth[["rlnCoordinateZ", "rlnCoordinateY", "rlnCoordinateX"]].to_numpy(float)
        signal, noise, ratio = particle_snr(read_mrc(path).data.astype(np.float32),
                                            occupied, centres, args.radius, args.gap,
                                            args.lowpass, args.highpass)
        print(f"{name:28s} {signal:9.3f} {noise:9.3f} {ratio:6.2f}")


if __name__ == "__main__":
    main()
