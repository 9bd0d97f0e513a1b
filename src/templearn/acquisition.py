"""Acquisition settings shared by every simulation backend, and domain randomisation.

One `Acquisition` describes a tilt series as a microscope session would: optics, defocus
(negative = underfocus, as in the paper and Parakeet), phase plate, total dose, tilt
range and step, ice density. `randomize` produces tables of them: the paper's
48-combination grid, or random draws from ranges. Tables are tab-separated text with a
header of field names (`acquisitions.tsv`), easy to edit by hand and for Nextflow to fan
out over (`splitCsv(header: true, sep: '\\t')`).
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np

from templearn.errors import InputError
from templearn.files import atomic_write_text, require_file


@dataclass(frozen=True)
class Acquisition:
    """Microscope and tilt-series settings of one simulated acquisition."""

    name: str = "default"
    voltage_kv: float = 300.0
    cs_mm: float = 2.7
    cc_mm: float = 2.7
    amplitude_contrast: float = 0.07
    defocus_um: float = -3.0
    astigmatism_um: float = 0.0
    astigmatism_angle_deg: float = 0.0
    phase_plate: bool = False
    #: Phase-plate spot radius in reciprocal space (1/Å): the 90° shift grows as
    #: 1 − exp(−k²/2r²), so the lowest frequencies are not shifted (a real plate's cut-on;
    #: Parakeet's model and default). 0: an ideal plate that shifts every frequency.
    phase_plate_cut_on: float = 0.005
    dose_total: float = 100.0  # e⁻/Å² over the whole series
    tilt_min: float = -60.0
    tilt_max: float = 60.0
    tilt_step: float = 2.0
    tilt_jitter_deg: float = 0.0  # s.d. of the true angle around the nominal one
    dose_group: int = 2  # images per side in the dose-symmetric scheme (Hagen et al. 2017)
    ice_density: float = 0.93  # g/cm³
    energy_spread_ev: float = 0.8
    illumination_mrad: float = 0.02  # beam semi-angle (spatial coherence)
    dqe: float = 0.8  # detector quantum efficiency at low frequency
    detector_pixel: float = 1.0  # physical detector pixel at the specimen, Å (MTF)
    #: Fast backend only: the molecules' potential against the ice is multiplied by this, for
    #: particles weaker against the noise than their maps imply (domain randomisation).
    contrast_scale: float = 1.0
    #: Fast backend only: the ice random field's s.d. (`simulate --ice-texture`) is
    #: multiplied by this, for noise that the ice adds beyond the shot noise (Parakeet's
    #: random-field ice makes particles ≈ 3× weaker against it: docs/transfer.md).
    ice_texture_scale: float = 1.0

    def __post_init__(self) -> None:
        checks = {
            "voltage_kv": self.voltage_kv > 0, "cs_mm": self.cs_mm >= 0,
            "cc_mm": self.cc_mm >= 0, "amplitude_contrast": 0 <= self.amplitude_contrast < 1,
            "dose_total": self.dose_total > 0, "tilt_step": self.tilt_step > 0,
            "tilt_min/tilt_max": -90 <= self.tilt_min <= self.tilt_max <= 90,
            "tilt_jitter_deg": self.tilt_jitter_deg >= 0, "dose_group": self.dose_group >= 1,
            "ice_density": self.ice_density > 0, "energy_spread_ev": self.energy_spread_ev >= 0,
            "illumination_mrad": self.illumination_mrad >= 0, "dqe": 0 < self.dqe <= 1,
            "detector_pixel": self.detector_pixel > 0, "astigmatism_um": self.astigmatism_um >= 0,
            "contrast_scale": self.contrast_scale > 0,
            "ice_texture_scale": self.ice_texture_scale >= 0,
            "phase_plate_cut_on": self.phase_plate_cut_on >= 0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise InputError(f"acquisition {self.name!r}: impossible value of {', '.join(bad)}")

    def nominal_angles(self) -> np.ndarray:
        """Tilt angles (degrees, ascending) from tilt_min to tilt_max by tilt_step."""
        n = int(np.floor((self.tilt_max - self.tilt_min) / self.tilt_step + 1e-6)) + 1
        return np.round(self.tilt_min + self.tilt_step * np.arange(n), 6)

    def acquisition_order(self) -> np.ndarray:
        """Position in time of each nominal angle: dose-symmetric, starting nearest 0°,
        then `dose_group` images on the positive side, `dose_group` on the negative, ..."""
        angles = self.nominal_angles()
        start = int(np.argmin(np.abs(angles)))
        positive = list(range(start + 1, len(angles)))
        negative = list(range(start - 1, -1, -1))
        sequence = [start]
        while positive or negative:
            for side in (positive, negative):
                sequence += side[:self.dose_group]
                del side[:self.dose_group]
        order = np.empty(len(angles), dtype=np.int64)
        order[sequence] = np.arange(len(angles))
        return order

    def dose_per_image(self) -> float:
        """e⁻/Å² per image (the total dose shared equally)."""
        return self.dose_total / len(self.nominal_angles())

    def prior_dose(self) -> np.ndarray:
        """Dose (e⁻/Å²) each image's specimen had received before it was exposed."""
        return self.acquisition_order() * self.dose_per_image()


FIELDS = tuple(f.name for f in fields(Acquisition))
#: Columns added after tables were in use: written only when a row differs from the
#: default, so that tables (and the simulations fingerprinted on them) stay as they were.
LATE_FIELDS = ("ice_texture_scale",)

#: The paper's grid: defocus × dose × tilt range × step × ice density, with the defoci of
#: phase-plate (VPP) or conventional (DEF) data, to match the data to be picked.
PAPER_DEFOCI = {"vpp": (0.0, -0.5, -1.0), "def": (-2.5, -3.25, -4.0)}
PAPER_GRID = {
    "dose_total": (75.0, 150.0),
    "tilt_max": (40.0, 60.0),
    "tilt_step": (2.0, 4.0),
    "ice_density": (0.9, 1.1),
}


def paper_grid(mode: str, base: Acquisition = Acquisition()) -> list[Acquisition]:
    """The 48 acquisition settings of Template Learning (3 defoci × 2 × 2 × 2 × 2) for
    phase-plate (`mode` "vpp") or defocus-contrast ("def") data."""
    if mode not in PAPER_DEFOCI:
        raise InputError(f"grid mode must be 'vpp' or 'def', got {mode!r}")
    vpp = mode == "vpp"
    rows = []
    for defocus, dose, tilt, step, ice in itertools.product(PAPER_DEFOCI[mode],
                                                            *PAPER_GRID.values()):
        name = (f"{'vpp' if vpp else 'def'}{abs(defocus):g}_dose{dose:g}_tilt{tilt:g}"
                f"_step{step:g}_ice{ice:g}")
        rows.append(replace(base, name=name, phase_plate=vpp, defocus_um=defocus,
                            dose_total=dose, tilt_min=-tilt, tilt_max=tilt, tilt_step=step,
                            ice_density=ice))
    return rows


@dataclass(frozen=True)
class Ranges:
    """Ranges (low, high) for random acquisitions; uniform draws unless stated."""

    vpp_fraction: float = 0.5
    defocus_vpp_um: tuple[float, float] = (-1.0, 0.0)
    defocus_um: tuple[float, float] = (-4.0, -2.5)
    dose_total: tuple[float, float] = (75.0, 150.0)
    tilt_max: tuple[float, float] = (40.0, 60.0)
    tilt_step: tuple[float, float] = (2.0, 4.0)  # rounded to 0.5°
    ice_density: tuple[float, float] = (0.9, 1.1)
    astigmatism_um: tuple[float, float] = (0.0, 0.1)
    tilt_jitter_deg: tuple[float, float] = (0.0, 0.3)
    contrast_scale: tuple[float, float] = (1.0, 1.0)  # log-uniform; (1, 1): off
    ice_texture_scale: tuple[float, float] = (1.0, 1.0)  # log-uniform; (1, 1): off
    amplitude_contrast: tuple[float, float] | None = None  # None: the base acquisition's

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple) and value[0] > value[1]:
                raise InputError(f"range {f.name}: low {value[0]} > high {value[1]}")
        for name in ("contrast_scale", "ice_texture_scale"):
            if getattr(self, name)[0] <= 0:
                raise InputError(f"{name.replace('_', ' ')} must be positive, got "
                                 f"{getattr(self, name)[0]}")
        if not 0 <= self.vpp_fraction <= 1:
            raise InputError(f"vpp fraction must be in [0, 1], got {self.vpp_fraction}")


def random_acquisitions(n: int, seed: int, ranges: Ranges = Ranges(),
                        base: Acquisition = Acquisition()) -> list[Acquisition]:
    """`n` acquisitions drawn from `ranges` (reproducible for a seed)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        vpp = bool(rng.random() < ranges.vpp_fraction)
        defocus = rng.uniform(*(ranges.defocus_vpp_um if vpp else ranges.defocus_um))
        tilt = rng.uniform(*ranges.tilt_max)
        step = max(0.5, round(rng.uniform(*ranges.tilt_step) * 2) / 2)
        rows.append(replace(
            base, name=f"random{i:03d}", phase_plate=vpp, defocus_um=round(defocus, 3),
            dose_total=round(rng.uniform(*ranges.dose_total), 1),
            tilt_min=-round(tilt, 1), tilt_max=round(tilt, 1), tilt_step=step,
            ice_density=round(rng.uniform(*ranges.ice_density), 3),
            astigmatism_um=round(rng.uniform(*ranges.astigmatism_um), 4),
            astigmatism_angle_deg=round(rng.uniform(0.0, 180.0), 1),
            tilt_jitter_deg=round(rng.uniform(*ranges.tilt_jitter_deg), 3),
            contrast_scale=_log_uniform(rng, ranges.contrast_scale),
            ice_texture_scale=_log_uniform(rng, ranges.ice_texture_scale),
            amplitude_contrast=(base.amplitude_contrast if ranges.amplitude_contrast is None
                                else round(rng.uniform(*ranges.amplitude_contrast), 4))))
    return rows


def _log_uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    """A draw uniform in log between the bounds (no draw at all when they are equal, so
    tables without this randomisation stay as they were)."""
    low, high = bounds
    if low == high:
        return low
    return round(float(np.exp(rng.uniform(np.log(low), np.log(high)))), 4)


def write_acquisitions(path: str | os.PathLike[str], rows: list[Acquisition]) -> Path:
    """Write a table of acquisitions (tab-separated, header = field names) atomically."""
    default = Acquisition()
    unused = {name for name in LATE_FIELDS
              if all(getattr(row, name) == getattr(default, name) for row in rows)}
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[f for f in FIELDS if f not in unused],
                            delimiter="\t", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        record = {k: v for k, v in asdict(row).items() if k not in unused}
        record["phase_plate"] = int(row.phase_plate)
        writer.writerow(record)
    atomic_write_text(path, buffer.getvalue())
    return Path(path)


#: Columns an acquisition table must have: no default would be a sensible guess for them.
REQUIRED = ("name", "defocus_um", "dose_total", "tilt_min", "tilt_max", "tilt_step")
_TRUE, _FALSE = ("1", "true", "yes"), ("0", "false", "no")


def read_acquisitions(path: str | os.PathLike[str]) -> list[Acquisition]:
    """Read a table written by `write_acquisitions`. The REQUIRED columns must be present;
    other missing columns take the defaults of `Acquisition`. A missing, empty or
    non-numeric value is an InputError naming the file, row and column."""
    p = Path(path)
    if p.is_dir():
        hint = " (give the acquisitions.tsv in it)" if (p / "acquisitions.tsv").is_file() else ""
        raise InputError(f"is a directory, not an acquisition table{hint}", p)
    p = require_file(p)
    reader = csv.DictReader(io.StringIO(p.read_text()), delimiter="\t")
    columns = list(reader.fieldnames or ())
    unknown = sorted(set(columns) - set(FIELDS))
    if unknown:
        raise InputError(f"not an acquisition table: unknown columns {', '.join(unknown)}", p)
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise InputError(f"acquisition table lacks the column(s) {', '.join(missing)}", p)
    types = {f.name: f.type for f in fields(Acquisition)}
    rows = []
    for index, record in enumerate(reader):
        where = f"row {index} (line {reader.line_num})"
        if None in record:
            raise InputError(f"{where}: more values than columns", p)
        values: dict[str, object] = {}
        for key, text in record.items():
            if text is None or not text.strip():
                raise InputError(f"{where}, column {key}: value missing", p)
            values[key] = _value(text.strip(), types[key], f"{where}, column {key}", p)
        try:
            rows.append(Acquisition(**values))  # type: ignore[arg-type]
        except InputError as exc:
            raise InputError(f"{where}: {exc.message}", p) from None
    if not rows:
        raise InputError("the acquisition table has no rows", p)
    return rows


def _value(text: str, kind: str, where: str, path: Path) -> object:
    """A table cell as its field's type; InputError naming `where` otherwise."""
    if kind == "str":
        return text
    if kind == "bool":
        if text.lower() not in _TRUE + _FALSE:
            raise InputError(f"{where}: {text!r} is not 1/0, true/false or yes/no", path)
        return text.lower() in _TRUE
    try:
        value = int(text) if kind == "int" else float(text)
    except ValueError:
        raise InputError(f"{where}: {text!r} is not a number", path) from None
    if not math.isfinite(value):
        raise InputError(f"{where}: {text!r} is not a finite number", path)
    return value


def select_acquisition(rows: list[Acquisition], row: str) -> Acquisition:
    """A row by name, or by 0-based index if `row` is an integer."""
    for acquisition in rows:
        if acquisition.name == row:
            return acquisition
    if row.lstrip("-").isdigit() and -len(rows) <= int(row) < len(rows):
        return rows[int(row)]
    raise InputError(f"no acquisition named or numbered {row!r} (rows: "
                     f"{', '.join(a.name for a in rows[:5])}{', ...' if len(rows) > 5 else ''})")
