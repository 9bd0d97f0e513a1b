"""Particle contrast as the network sees it: z-scored against whitened tomograms.

For every labelled tomogram given (training tomograms of a run, the Parakeet transfer
cases), the contrast of the labelled particles ((mean inside − mean outside) / s.d. over
the central half of the thickness, as in `backend_comparison.py`) after each
normalisation of `templearn.unet.normalise`. A normalisation that lets a picker transfer
puts the test tomograms' contrasts inside the range of the training tomograms'.

    python benchmarks/normalisation_contrast.py RUN_DIR [--cache DIR]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from backend_comparison import contrast

from templearn.mrc import read_mrc
from templearn.unet.normalise import normalise
from templearn.unet.params import Normalisation

HOW = {"z-score": Normalisation("zscore"), "whitened": Normalisation("whiten", 1.0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a `templearn run` directory")
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get(
        "TEMPLEARN_CACHE", Path.home() / ".cache" / "templearn")) / "transfer")
    args = parser.parse_args()
    found = sorted(args.run.glob("tomograms/*/tomo/tomogram.mrc"))
    found += sorted(args.cache.glob("*/tomo/tomogram.mrc"))
    print(f"| tomogram | {' | '.join(HOW)} |\n|---|" + "---|" * len(HOW))
    for path in found:
        labels = read_mrc(path.parent.parent / "labels" / "labels.mrc").data
        volume = read_mrc(path).data
        values = [contrast(normalise(volume, how), labels) for how in HOW.values()]
        source = "parakeet " if path.is_relative_to(args.cache) else ""
        print(f"| {source}{path.parent.parent.name} | "
              + " | ".join(f"{v:+.3f}" for v in values) + " |")


if __name__ == "__main__":
    main()
