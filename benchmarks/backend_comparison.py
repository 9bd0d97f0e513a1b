"""Fast backend against Parakeet on the same samples and acquisitions (the transfer cases
of `transfer_cases.py`): what differs between their tomograms, in numbers.

For each case the fast backend simulates the Parakeet case's own sample and acquisition
row with the same seed (seconds), both are reconstructed the same way, and the table
compares, inside the central half of the tomogram's thickness:
- particle contrast: (mean inside the ribosome labels − mean outside) / s.d. of the tomogram;
- the share of power (radially averaged over xy slices) in spatial-frequency bands;
- the 0° tilt image's s.d. relative to its mean (the dose-limited noise level).
Variants of the fast backend separate the causes of a difference: the same acquisition
without amplitude contrast (MULTEM's multislice has almost none), and with the molecules'
potential scaled down (`contrast_scale`).

    python benchmarks/backend_comparison.py [--cache DIR] [--cases defocus vpp]
"""

from __future__ import annotations

import argparse
import itertools
import os
from pathlib import Path

import numpy as np

from templearn.acquisition import read_acquisitions, select_acquisition, write_acquisitions
from templearn.mrc import read_mrc
from templearn.stages import reconstruct, simulate
from templearn.tiltseries import read_tilt_series

BANDS_PER_ANGSTROM = (0.0, 1 / 400, 1 / 200, 1 / 100, 1 / 50, 1.0)


def contrast(tomogram: np.ndarray, labels: np.ndarray) -> float:
    """(mean inside − mean outside) / s.d., over the central half of the thickness."""
    z0, z1 = tomogram.shape[0] // 4, 3 * tomogram.shape[0] // 4
    t, inside = tomogram[z0:z1], labels[z0:z1] > 0
    return float((t[inside].mean() - t[~inside].mean()) / t.std())


def band_powers(tomogram: np.ndarray, voxel: float) -> list[float]:
    """Share of xy-slice power per frequency band (BANDS_PER_ANGSTROM), DC excluded."""
    z0, z1 = tomogram.shape[0] // 4, 3 * tomogram.shape[0] // 4
    slices = tomogram[z0:z1] - tomogram[z0:z1].mean(axis=(1, 2), keepdims=True)
    power = (np.abs(np.fft.fft2(slices)) ** 2).mean(axis=0)
    fy = np.fft.fftfreq(slices.shape[1], d=voxel)[:, None]
    fx = np.fft.fftfreq(slices.shape[2], d=voxel)[None, :]
    radius = np.hypot(fy, fx)
    total = power[radius > 0].sum()
    return [float(power[(radius > lo) & (radius <= hi)].sum() / total)
            for lo, hi in itertools.pairwise(BANDS_PER_ANGSTROM)]


def zero_tilt_noise(tilt_series: Path) -> float:
    """s.d. / |mean| of the image nearest 0°."""
    series = read_tilt_series(tilt_series)
    image = series.images[int(np.argmin(np.abs(series.angles_deg)))]
    return float(image.std() / abs(image.mean()))


#: Fast-backend variants: name → changes to the case's acquisition row.
VARIANTS: dict[str, dict[str, float]] = {
    "fast": {},
    "fast, no amplitude contrast": {"amplitude_contrast": 0.0},
    "fast, potential × 0.5": {"contrast_scale": 0.5},
    "fast, no ampl. contrast, potential × 0.5": {"amplitude_contrast": 0.0,
                                                 "contrast_scale": 0.5},
}


def fast_twin(case_dir: Path, table: Path, row: str, seed: int, variant: str
              ) -> tuple[Path, Path]:
    """The fast backend's tomogram and tilt series of a Parakeet case's sample and
    acquisition, with a variant's changes to the acquisition."""
    from dataclasses import replace

    slug = "fast" + "".join(f"-{k}{v:g}" for k, v in sorted(VARIANTS[variant].items()))
    tilt, tomo = case_dir / f"{slug}-tilt", case_dir / f"{slug}-tomo"
    acquisition = replace(select_acquisition(read_acquisitions(table),
                                             row), **VARIANTS[variant])
    table = write_acquisitions(case_dir / f"{slug}-acquisition.tsv", [acquisition])
    simulate.run(simulate.Params(row=row, seed=seed),
                 simulate.Inputs(molecules=case_dir / "sample" / "molecules.star",
                                 acquisitions=table), tilt)
    reconstruct.run(reconstruct.Params(),
                    reconstruct.Inputs(tilt_series=tilt / "tiltseries.mrc"), tomo)
    return tomo / "tomogram.mrc", tilt / "tiltseries.mrc"


def main() -> None:
    from transfer_cases import CASES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get(
        "TEMPLEARN_CACHE", Path.home() / ".cache" / "templearn")) / "transfer")
    parser.add_argument("--cases", nargs="+", default=list(CASES))
    args = parser.parse_args()
    bands = " | ".join(f"≤1/{1 / hi:.0f} Å" if hi < 1 else "Nyquist"
                       for hi in BANDS_PER_ANGSTROM[1:])
    print(f"| case | backend | contrast | 0° image s.d./mean | power share: {bands} |")
    for case in args.cases:
        case_dir = args.cache / case
        labels = read_mrc(case_dir / "labels" / "labels.mrc").data
        tomograms = {"parakeet": (case_dir / "tomo" / "tomogram.mrc",
                                  case_dir / "tilt" / "tiltseries.mrc")}
        for variant in VARIANTS:
            tomograms[variant] = fast_twin(case_dir, args.cache / CASES[case].table, case,
                                           CASES[case].seed, variant)
        for backend, (path, tilt) in tomograms.items():
            volume = read_mrc(path)
            shares = " | ".join(f"{p:.3f}" for p in band_powers(volume.data, volume.voxel_size))
            print(f"| {case} | {backend} | {contrast(volume.data, labels):+.3f} | "
                  f"{zero_tilt_noise(tilt):.3f} | {shares} |")


if __name__ == "__main__":
    main()
