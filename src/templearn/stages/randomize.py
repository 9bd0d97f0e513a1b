"""Stage `randomize`: a table of acquisition settings (domain randomisation)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from templearn.stages.base import NoInputs, Stage, StageParams, option

#: The table's file name in the output directory.
TABLE = "acquisitions.tsv"


@dataclass(frozen=True)
class Params(StageParams):
    grid: str | None = option(None, "The paper's 48-combination grid with phase-plate ('vpp') "
                                    "or conventional ('def') defoci, instead of random draws.",
                              choices=("vpp", "def"))
    n: int = option(48, "Number of random acquisitions (without --grid).", flag="-n",
                    minimum=1)
    seed: int = option(0, "Random seed.", minimum=0)
    vpp_fraction: float = option(0.5, "Share of phase-plate acquisitions.", minimum=0)
    defocus_vpp: tuple[float, float] = option((-1.0, 0.0), "Defocus range with phase plate, "
                                                            "µm.")
    defocus: tuple[float, float] = option((-4.0, -2.5), "Defocus range without phase plate, "
                                                        "µm (negative = underfocus).")
    dose: tuple[float, float] = option((75.0, 150.0), "Total dose range, e⁻/Å².",
                                       positive=True)
    tilt_max: tuple[float, float] = option((40.0, 60.0), "Range of the largest tilt (±), "
                                                         "degrees.", positive=True)
    tilt_step: tuple[float, float] = option((2.0, 4.0), "Tilt step range, degrees (0.5° "
                                                        "steps).", positive=True)
    ice_density: tuple[float, float] = option((0.9, 1.1), "Ice density range, g/cm³.",
                                              positive=True)
    astigmatism: tuple[float, float] = option((0.0, 0.1), "Astigmatism range, µm.", minimum=0)
    tilt_jitter: tuple[float, float] = option((0.0, 0.3), "Range of tilt-angle error s.d., "
                                                          "degrees.", minimum=0)
    contrast_scale: tuple[float, float] = option(
        (1.0, 1.0), "Range of the molecules' contrast scale, drawn log-uniformly (fast "
                    "backend: the molecules' potential against the ice is multiplied by it, "
                    "for particles weaker against the noise than their maps imply; 1,1: off).",
        positive=True)
    ice_texture_scale: tuple[float, float] = option(
        (1.0, 1.0), "Range of the ice texture's scale, drawn log-uniformly (fast backend: "
                    "simulate's --ice-texture s.d. is multiplied by it, for particles weaker "
                    "against the ice's noise; 1,1: off).", positive=True)
    amplitude_contrast: tuple[float, float] | None = option(
        None, "Range of the amplitude contrast (default: 0.07 in every row; MULTEM's "
              "multislice has almost none).", minimum=0)
    voltage: float = option(300.0, "Acceleration voltage, kV (all rows).", positive=True)
    cs: float = option(2.7, "Spherical aberration, mm (all rows).", minimum=0)

    def check(self) -> None:
        from templearn.errors import InputError

        if self.vpp_fraction > 1:
            raise InputError(f"--vpp-fraction must be at most 1, got {self.vpp_fraction}")
        for name in ("defocus_vpp", "defocus", "dose", "tilt_max", "tilt_step", "ice_density",
                     "astigmatism", "tilt_jitter", "contrast_scale", "ice_texture_scale"):
            if getattr(self, name) is None:
                continue
            low, high = getattr(self, name)
            if low > high:
                raise InputError(f"--{name.replace('_', '-')}: low {low} > high {high}")
        if self.amplitude_contrast is not None:
            low, high = self.amplitude_contrast
            if not 0 <= low <= high < 1:
                raise InputError(f"--amplitude-contrast must be 0 ≤ low ≤ high < 1, got "
                                 f"{low},{high}")
        if self.tilt_max[1] > 90:
            raise InputError(f"--tilt-max must be at most 90°, got {self.tilt_max[1]}")


def write(params: Params, inputs: NoInputs, out: Path) -> str:
    """acquisitions.tsv: the paper's grid or random draws, one acquisition per row."""
    from templearn.acquisition import (
        Acquisition,
        Ranges,
        paper_grid,
        random_acquisitions,
        write_acquisitions,
    )

    base = Acquisition(voltage_kv=params.voltage, cs_mm=params.cs)
    if params.grid is not None:
        rows = paper_grid(params.grid, base)
    else:
        ranges = Ranges(
            vpp_fraction=params.vpp_fraction, defocus_vpp_um=params.defocus_vpp,
            defocus_um=params.defocus, dose_total=params.dose, tilt_max=params.tilt_max,
            tilt_step=params.tilt_step, ice_density=params.ice_density,
            astigmatism_um=params.astigmatism, tilt_jitter_deg=params.tilt_jitter,
            contrast_scale=params.contrast_scale, ice_texture_scale=params.ice_texture_scale,
            amplitude_contrast=params.amplitude_contrast)
        rows = random_acquisitions(params.n, params.seed, ranges, base)
    write_acquisitions(out / TABLE, rows)
    return f"{len(rows)} acquisitions in {TABLE}"


STAGE = Stage("randomize", "Acquisition settings: the paper's grid or random draws from "
              "ranges, one per row of acquisitions.tsv.", Params, NoInputs, write,
              packages=("numpy",), default_output="acquisitions")


#: `run(params, inputs, out_dir)`: the stage from Python, as the CLI runs it.
run = STAGE.run
