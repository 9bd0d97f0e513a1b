"""What a picker finds where there is nothing: particle-free noise tomograms (docs/transfer.md,
finding 10).

A picker meant for real data must leave empty ice alone. This makes tomograms of pure
noise — white, and white without the missing wedge of a ±45° and a ±60° tilt range (whitened
and high-passed as the picker sees them, these have the autocorrelation of the Parakeet
transfer tomograms) — segments and picks them as `templearn run` would, and prints the
share of voxels labelled as each class and the number of picks. Every pick is false. Each
tomogram is the mean of two independent noise halves, written beside it as its half
tomograms (`templearn.halves`), so models trained in noise units (`--normalise
whiten-noise` / `whiten-snr`) read them as `segment` does.

    python benchmarks/noise_picks.py MODEL_DIR [--shape X Y Z] [--radius 6] [-o OUT]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from templearn import star
from templearn.halves import half_paths
from templearn.mrc import Volume, read_mrc, write_mrc
from templearn.unet.augment import wedge_noise
from templearn.unet.store import read_info

#: Noise kinds: name -> largest tilt (degrees) whose missing wedge the noise lacks (None: white).
KINDS = {"white": None, "wedge45": 45.0, "wedge60": 60.0}


def noise_tomogram(shape_zyx: tuple[int, int, int], tilt_max: float | None,
                   rng: np.random.Generator) -> np.ndarray:
    """White noise, without the missing wedge about Y of ±`tilt_max` when given."""
    if tilt_max is None:
        return rng.standard_normal(shape_zyx).astype(np.float32)
    return wedge_noise(shape_zyx, tilt_max, rng)


def templearn(*args: str) -> None:
    """Run a templearn stage; stop with its message if it fails."""
    done = subprocess.run([sys.executable, "-m", "templearn", *args], capture_output=True,
                          text=True)
    if done.returncode:
        sys.exit(f"templearn {args[0]} failed:\n{done.stderr}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--shape", type=int, nargs=3, default=(64, 64, 32),
                        metavar=("X", "Y", "Z"), help="tomogram size, voxels")
    parser.add_argument("--radius", default="6", help="pick --radius (MeanShift), voxels")
    parser.add_argument("--tile", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--output", type=Path, help="keep the tomograms and picks here")
    args = parser.parse_args()
    info = read_info(args.model)
    out = args.output or Path(tempfile.mkdtemp(prefix="noise-picks-"))
    rng = np.random.default_rng(args.seed)
    rows = []
    for kind, tilt_max in KINDS.items():
        folder = out / kind
        folder.mkdir(parents=True, exist_ok=True)
        # Two independent halves and their mean (pure noise, as `reconstruct --halves` makes
        # them), for models that measure the noise between the halves.
        halves = [noise_tomogram(tuple(args.shape[::-1]), tilt_max, rng) for _ in range(2)]
        tomogram = folder / "tomogram.mrc"
        write_mrc(tomogram, Volume((halves[0] + halves[1]) / 2, info.voxel_size))
        for path, half in zip(half_paths(tomogram), halves, strict=True):
            write_mrc(path, Volume(half, info.voxel_size))
        templearn("segment", "-o", str(folder / "seg"), "--tile", str(args.tile), "--crop", "8",
                  str(tomogram), str(args.model))
        templearn("pick", "--scores", str(folder / "seg"), "--radius", args.radius,
                  "--validated-min-size", "--name", kind, "-o", str(folder / "picks"),
                  str(folder / "seg" / "labels.mrc"))
        labels = read_mrc(folder / "seg" / "labels.mrc").data
        picks = star.read_star(folder / "picks" / "picks.star")
        shares = {name: round(float((labels == k).mean()), 4)
                  for k, name in enumerate(info.class_names) if k > 0}
        rows.append({"noise": kind, "labelled": shares, "picks": len(picks)})
        print(f"{kind:8s} labelled {shares}  picks {len(picks)}", flush=True)
    (out / "noise_picks.json").write_text(json.dumps(rows, indent=1))
    print(f"-> {out / 'noise_picks.json'}")


if __name__ == "__main__":
    main()
