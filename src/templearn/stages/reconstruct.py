"""Stage `reconstruct`: a tilt series → `tomogram.mrc` (builtin WBP/SIRT or IMOD).

`templearn.reconstruct.params.ReconstructParams` names, defaults and validates the
options; this module maps them to the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from templearn.errors import InputError
from templearn.reconstruct.params import ANTIALIAS, BACKENDS, METHODS, ReconstructParams
from templearn.stages.base import Record, Stage, StageParams, option

#: The defaults the options below show and use.
_DEFAULT = ReconstructParams()
TOMOGRAM = "tomogram.mrc"


def _radial(text: str) -> tuple[float, float]:
    """'0.35,0.05' -> (0.35, 0.05)."""
    try:
        cutoff, falloff = (float(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise InputError(f"--radial expects cutoff,falloff, got {text!r}") from None
    return cutoff, falloff


@dataclass(frozen=True)
class Inputs(Record):
    tilt_series: Path = option(help="Tilt series stack (MRC, one image per tilt).",
                               argument=True)
    angles: Path | None = option(None, "Tilt angles, one per line (default: the stack's "
                                       ".tlt).")


@dataclass(frozen=True)
class Params(StageParams):
    method: str = option(_DEFAULT.method, "'wbp', 'sirt' or 'fake-sirt'.", choices=METHODS)
    iterations: int = option(_DEFAULT.iterations, "Iterations of sirt / fake-sirt.")
    radial: tuple[float, float] = option(_DEFAULT.radial, "IMOD -RADIAL cutoff,falloff "
                                         "(≤1: cycles/pixel, >1: Fourier pixels).",
                                         parse=_radial)
    bin_factor: int | None = option(None, "Bin the series by N first.", flag="--bin")
    pixel_size: float | None = option(None, "Bin to this output pixel size, Å (instead of "
                                            "--bin).")
    antialias: str = option(_DEFAULT.antialias, "Binning filter: 'fourier' (spectrum crop) "
                            "or 'lanczos' (IMOD newstack -antialias 6).", choices=ANTIALIAS)
    thickness: int | None = option(None, "Tomogram thickness in output voxels (default: the "
                                         "sample thickness from meta.json).")
    backend: str = option(_DEFAULT.backend, "'builtin' or 'imod' (IMOD on PATH).",
                          choices=BACKENDS)
    halves: bool = option(False, "Also write tomogram_even.mrc and tomogram_odd.mrc, each "
                                 "from every other tilt: the noise measure of the "
                                 "whiten-noise / whiten-snr normalisations (train "
                                 "--normalise).")

    def reconstruction(self) -> ReconstructParams:
        """The reconstruction's parameters (validated; InputError naming the option)."""
        params = ReconstructParams(
            method=self.method, iterations=self.iterations, radial=self.radial,
            bin_factor=self.bin_factor, pixel_size=self.pixel_size, antialias=self.antialias,
            thickness=self.thickness, backend=self.backend)
        params.validate()
        return params

    def check(self) -> None:
        self.reconstruction()


def write(params: Params, inputs: Inputs, out: Path) -> str:
    """tomogram.mrc (float32, voxel size and origin in the header), and with --halves its
    even/odd half tomograms (`templearn.halves`)."""
    from dataclasses import replace

    from templearn.halves import half_paths, split_views
    from templearn.mrc import write_mrc
    from templearn.reconstruct.tomogram import reconstruct_tomogram
    from templearn.tiltseries import read_tilt_series

    series = read_tilt_series(inputs.tilt_series, inputs.angles)
    views = split_views(series.angles_deg) if params.halves else None
    how = params.reconstruction()
    tomogram = reconstruct_tomogram(series, how)
    if views is not None:
        for path, view in zip(half_paths(out / TOMOGRAM), views, strict=True):
            half = replace(series, images=series.images[view],
                           angles_deg=series.angles_deg[view])
            write_mrc(path, reconstruct_tomogram(half, how))
    write_mrc(out / TOMOGRAM, tomogram)
    shape = "×".join(map(str, tomogram.data.shape[::-1]))
    origin = ",".join(f"{v:g}" for v in tomogram.origin)
    halves = " and its even/odd halves" if params.halves else ""
    return (f"{shape} voxels at {tomogram.voxel_size:g} Å, origin {origin} Å "
            f"({params.backend} {params.method}){halves}")


STAGE = Stage(
    "reconstruct", "Tomogram (MRC float32, voxel size and origin in the header) oriented as "
    "IMOD `tilt -PERPENDICULAR` + `trimvol -rx`, centred on the simulated sample when "
    "meta.json records it.", Params, Inputs, write, packages=("numpy", "scipy", "mrcfile"),
    default_output="reconstruct")


#: `run(params, inputs, out_dir)`: the stage from Python, as the CLI runs it.
run = STAGE.run
