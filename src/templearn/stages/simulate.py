"""Stage `simulate`: a sample (`molecules.star`) under one acquisition → `tiltseries.mrc`
(tilt × y × x), `tiltseries.tlt` and `meta.json`.

The backends' option classes (`templearn.simulate.params`) hold the defaults; this module
maps them to the CLI. The stage is resumable: a killed Parakeet run leaves its finished
steps in the work directory (`<work dir>/parakeet` unless --work-dir says otherwise) and
the next identical run resumes after them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from templearn.simulate.params import FastParams, ParakeetParams, SpecimenParams
from templearn.stages.base import Record, Stage, StageParams, option

if TYPE_CHECKING:
    import pandas as pd

    from templearn.mrc import Volume

#: The defaults the options below show and use.
_FAST, _PARAKEET, _SPECIMEN = FastParams(), ParakeetParams(), SpecimenParams()
BACKENDS = ("fast", "parakeet")
DEVICES = ("auto", "cpu", "gpu")
#: The Parakeet backend's working directory inside the stage's work directory.
PARAKEET_DIR = "parakeet"


@dataclass(frozen=True)
class Inputs(Record):
    molecules: Path = option(help="molecules.star of the sample (templearn tetris).",
                             argument=True)
    acquisitions: Path | None = option(
        None, "Acquisition table, the acquisitions.tsv file written by `templearn "
              "randomize`; default: the built-in default acquisition.", short="-a")
    maps: tuple[Path, ...] = option(
        (), "Directory of maps to use instead of each molecule's tlMapFile (same file "
            "names, e.g. made by `templearn density --voxel-size 8`); repeatable.",
        repeat=True)


@dataclass(frozen=True)
class Params(StageParams):
    row: str = option("0", "Row of the acquisition table: its name or 0-based index.")
    backend: str = option("fast", "Simulator: 'fast' (JAX projection simulator) or 'parakeet' "
                          "(Parakeet + MULTEM multislice from the atomic structures; "
                          "bin/install-parakeet).", choices=BACKENDS)
    pixel_size: float | None = option(_FAST.pixel_size, "Output pixel, Å (default: the "
                                      "sample's voxel size).", positive=True)
    sim_pixel: float | None = option(
        None, "Image-formation pixel, Å (default: fast, half the output pixel; parakeet, "
              f"{_PARAKEET.sim_pixel:g} Å adjusted to divide the output pixel).", positive=True)
    thickness: float | None = option(_FAST.thickness, "Ice thickness, Å (default: the "
                                     "sample's thickness).", positive=True)
    ideal: bool = option(_FAST.ideal, "Noise-free projections of the potential over "
                                      "-90°..90°, no CTF.")
    damage: bool = option(_FAST.damage, "Cumulative-dose radiation damage.")
    ice_texture: float = option(_SPECIMEN.ice_texture, "Ice random-field s.d., as a fraction "
                                "of the ice potential (0: flat ice).", minimum=0)
    ice_texture_length: float = option(_SPECIMEN.ice_texture_length,
                                       "Ice texture correlation length, Å.", minimum=0)
    fiducials: int = option(_SPECIMEN.fiducials, "Gold beads on the ice surfaces.", minimum=0)
    fiducial_radius: float = option(_SPECIMEN.fiducial_radius, "Gold bead radius, Å.",
                                    minimum=0)
    seed: int = option(_FAST.seed, "Random seed (noise, tilt jitter, ice, beads).", minimum=0)
    slice_thickness: float = option(_PARAKEET.slice_thickness, "parakeet: multislice slice "
                                    "thickness, Å.", positive=True)
    grf_ice: bool = option(_PARAKEET.ice, "parakeet: Gaussian-random-field ice model.")
    sensitivity: float = option(_PARAKEET.sensitivity, "parakeet: radiation-damage "
                                "sensitivity (B = 8π²·s·dose; paper 0.08).", minimum=0)
    device: str = option(_PARAKEET.device, "parakeet: MULTEM device.", choices=DEVICES)
    work_dir: Path | None = option(
        None, "parakeet: working directory of its steps (default: a 'parakeet' folder in "
              "the stage's work directory, kept when a run is killed); a rerun resumes "
              "after the last finished step.")
    keep_intermediates: bool = option(_PARAKEET.keep_intermediates, "parakeet: keep the "
                                      "sample, exit-wave, optics and image files.")

    def check(self) -> None:
        from templearn.errors import InputError

        if self.backend == "parakeet":
            unsupported = [name for name, used in (("--ideal", self.ideal),
                                                   ("--fiducials", self.fiducials > 0)) if used]
            if unsupported:
                raise InputError(f"{', '.join(unsupported)}: only for --backend fast")

    def fast(self) -> FastParams:
        """The fast backend's options."""
        return FastParams(
            pixel_size=self.pixel_size, sim_pixel=self.sim_pixel, thickness=self.thickness,
            ideal=self.ideal, damage=self.damage, seed=self.seed,
            specimen=SpecimenParams(ice_texture=self.ice_texture,
                                    ice_texture_length=self.ice_texture_length,
                                    fiducials=self.fiducials,
                                    fiducial_radius=self.fiducial_radius))

    def parakeet(self) -> ParakeetParams:
        """The Parakeet backend's options."""
        return ParakeetParams(
            pixel_size=self.pixel_size, sim_pixel=self.sim_pixel or _PARAKEET.sim_pixel,
            slice_thickness=self.slice_thickness, thickness=self.thickness, ice=self.grf_ice,
            damage=self.damage, sensitivity=self.sensitivity, device=self.device,
            keep_intermediates=self.keep_intermediates, seed=self.seed)


def write(params: Params, inputs: Inputs, out: Path) -> str:
    """The tilt series of the sample under the chosen acquisition."""
    from templearn.acquisition import Acquisition, read_acquisitions, select_acquisition
    from templearn.errors import InputError, about
    from templearn.sample import read_molecules
    from templearn.tiltseries import write_tilt_series

    acquisition = Acquisition()
    if inputs.acquisitions is not None:
        with about(inputs.acquisitions):
            acquisition = select_acquisition(read_acquisitions(inputs.acquisitions),
                                             params.row)
    table, sample = read_molecules(inputs.molecules)
    if len(table) == 0:
        raise InputError("the sample has no molecules", inputs.molecules)
    if params.backend == "parakeet":
        from templearn.simulate.multislice import simulate_parakeet

        if inputs.maps:
            raise InputError("--maps: only for --backend fast")
        series = simulate_parakeet(table, sample, acquisition, params.parakeet(),
                                   params.work_dir or out / PARAKEET_DIR)
    else:
        from templearn.jaxcache import enable_compilation_cache
        from templearn.simulate.fast import simulate_fast

        volumes = _read_maps(table, inputs.maps)
        enable_compilation_cache()
        series = simulate_fast(table, sample, volumes, acquisition, params.fast())
    series.meta["molecules"] = str(inputs.molecules)
    write_tilt_series(out, series)
    n, ny, nx = series.images.shape
    return (f"{n} tilts of {nx}×{ny} px at {series.pixel_size:g} Å ({acquisition.name}, "
            f"{params.backend})")


def _read_maps(table: pd.DataFrame, maps: tuple[Path, ...]) -> dict[str, Volume]:
    """The molecules' maps by their tlMapFile key (or same-named maps from `maps`)."""
    from templearn import star
    from templearn.errors import InputError
    from templearn.mrc import read_mrc

    for directory in maps:
        if not directory.is_dir():
            raise InputError("--maps expects a directory of maps", directory)
    volumes = {}
    for key in table[star.MAP_FILE].astype(str).unique():
        source = Path(key)
        for directory in maps:
            if (directory / source.name).exists():
                source = directory / source.name
                break
        else:
            if maps:
                raise InputError(f"no map named {source.name} in --maps "
                                 f"{', '.join(map(str, maps))}")
        volumes[key] = read_mrc(source)
    return volumes


STAGE = Stage(
    "simulate", "Tilt series (tiltseries.mrc, tilt × y × x) + tiltseries.tlt + meta.json of "
    "a sample under one acquisition.", Params, Inputs, write,
    packages=lambda params: ("numpy", "scipy", "jax", "mrcfile", "starfile", *(
        ("python-parakeet", "python-multem") if params.backend == "parakeet" else ())),
    resumable=True, default_output="tiltseries")


#: `run(params, inputs, out_dir)`: the stage from Python, as the CLI runs it.
run = STAGE.run
