"""The physics backend: Parakeet + MULTEM multislice simulation of a templearn sample.

A sample (`molecules.star`) and an acquisition become a Parakeet configuration: an ice
slab (Gaussian-random-field ice) wide enough to cover the field of view at the largest
tilt, every molecule's atomic structure at its position and orientation, the microscope
(voltage, Cs, Cc, energy spread, defocus, astigmatism, phase plate), the dose per image,
and the tilts in dose-symmetric order as a manual scan (so that cumulative radiation
damage follows our acquisition order). Parakeet's steps run one per child process
(`parakeet_worker`) in a working directory and are skipped when already finished (a
changed configuration starts over). The images, simulated at ≈1 Å/pixel because MULTEM
loses most of the molecular potential on coarser grids, are Fourier-cropped to the output
pixel and returned in our tilt-series format, so `templearn reconstruct` treats them
like the fast backend's.

Geometry (verified facts, `notes/parakeet-cpu.md`): Parakeet places a structure's
unweighted atom mean at `position` and rotates about it by the rotation vector
`orientation`; the detector's pixel (0, 0) sits at `detector.origin` (whole Å; it is
set so that the detector covers the box centre ± n·pixel/2); a tilt rotates the sample
about y through its centre with the same sign as `templearn.projector`. Our sample's
centre (voxel (n−1)/2) goes to the box centre, and a molecule's map centre (its centre
of mass) is where molecules.star puts it, so the atom mean goes to
`position + R·(atom mean − centre of mass)`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from templearn import __version__, star
from templearn.acquisition import Acquisition
from templearn.binning import fourier_resize
from templearn.errors import ExternalToolError, InputError
from templearn.files import atomic_write_text
from templearn.geometry import relion_to_matrix, relion_to_rotvec
from templearn.progress import log
from templearn.sample import Grid
from templearn.simulate import parakeet_worker as worker
from templearn.simulate.params import ParakeetParams
from templearn.structure import read_structure, structure_stem, write_structure
from templearn.tiltseries import TiltSeries

#: Ice beyond the tilted field of view on every side (Å), so its edges never show.
ICE_MARGIN = 200.0
#: Vacuum kept above and below the outermost atoms (Å).
Z_CLEARANCE = 10.0
#: Parakeet's own log, in the working directory.
LOG = "parakeet.log"
INTERMEDIATES = (worker.SAMPLE, worker.EXIT_WAVE, worker.OPTICS, worker.IMAGE,
                 worker.IMAGES, worker.HEADER, worker.TIMINGS)


@dataclass(frozen=True)
class Structure:
    """A molecule's atoms as written for Parakeet, and where their mean sits relative to
    the centre of mass (= the centre of templearn's map)."""

    path: Path
    n_atoms: int
    atom_mean_offset: np.ndarray  # (3,) Å
    radius: float  # largest atom distance from the atom mean, Å


def prepare_structures(table: pd.DataFrame, directory: Path) -> dict[str, Structure]:
    """First model, one altloc, no waters, no assembly records (Parakeet would build the
    assembly), written as mmCIF into `directory` for each structure file of `table`."""
    if star.STRUCTURE_FILE not in table:
        raise InputError(f"molecules.star has no {star.STRUCTURE_FILE} column: the physics "
                         "backend needs each molecule's atomic structure")
    structures = {}
    for i, source in enumerate(table[star.STRUCTURE_FILE].astype(str).unique()):
        model = read_structure(source)
        path = directory / f"{i:04d}_{structure_stem(source)}.cif"
        if not path.exists():
            write_structure(path, model.structure)
        weights = model.atomic_numbers.astype(np.float64)
        centre_of_mass = (model.coords * weights[:, None]).sum(axis=0) / weights.sum()
        mean = model.coords.mean(axis=0)
        structures[source] = Structure(
            path=path.resolve(), n_atoms=model.n_atoms, atom_mean_offset=mean - centre_of_mass,
            radius=float(np.linalg.norm(model.coords - mean, axis=1).max()))
    return structures


def simulation_pixel(pixel: float, requested: float) -> float:
    """The simulation pixel closest to `requested` that divides the output pixel, so the
    detector covers exactly the sample's field of view."""
    if requested <= 0 or requested > pixel:
        raise InputError(f"need 0 < simulation pixel ({requested} Å) ≤ output pixel ({pixel} Å)")
    return pixel / max(1, round(pixel / requested))


def tilt_angles(acq: Acquisition, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Nominal angles (ascending) and the true angles of those images (with tilt jitter)."""
    nominal = acq.nominal_angles()
    if acq.tilt_jitter_deg == 0:
        return nominal, nominal
    rng = np.random.default_rng(seed)
    return nominal, nominal + rng.normal(0.0, acq.tilt_jitter_deg, len(nominal))


def parakeet_config(table: pd.DataFrame, sample: Grid, acq: Acquisition,
                    params: ParakeetParams, structures: dict[str, Structure]) -> dict:
    """The Parakeet configuration (as a dict for config.yaml) of this sample and acquisition."""
    pixel = params.pixel_size or sample.voxel_size
    sim_pixel = simulation_pixel(pixel, params.sim_pixel)
    nz, ny, nx = sample.shape_zyx
    fov = np.array([nx, ny]) * sample.voxel_size
    detector = np.rint(fov / sim_pixel).astype(int)
    thickness = params.thickness or nz * sample.voxel_size
    _, true_angles = tilt_angles(acq, params.seed)
    order = np.argsort(acq.acquisition_order())  # image index at each time step
    max_tilt = np.deg2rad(min(float(np.abs(true_angles).max()), 80.0))
    border = (params.margin + params.padding) * sim_pixel
    ice_x = ((fov[0] + 2 * border + thickness * np.sin(max_tilt)) / np.cos(max_tilt)
             + 2 * ICE_MARGIN)
    ice_y = fov[1] + 2 * border + 2 * ICE_MARGIN
    # Parakeet's detector origin (its pixel (0, 0) in the sample frame) is in whole Å:
    # widths are rounded up so that the field of view sits exactly on the box centre.
    origin = np.ceil((np.array([ice_x, ice_y]) - fov) / 2)
    ice_x, ice_y = fov + 2 * origin

    rotations = relion_to_matrix(table[list(star.ANGLES)].to_numpy(float))
    sources = table[star.STRUCTURE_FILE].astype(str).to_numpy()
    offsets = np.stack([structures[s].atom_mean_offset for s in sources])
    radii = np.array([structures[s].radius for s in sources])
    relative = (table[list(star.POSITION_ANGST)].to_numpy(float)
                + np.einsum("nij,nj->ni", rotations, offsets) - sample.centre_angst)
    reach = float(np.max(np.abs(relative[:, 2]) + radii)) + Z_CLEARANCE
    box = np.array([ice_x, ice_y, 2 * max(thickness / 2, reach)])
    positions = relative + box / 2
    rotvecs = relion_to_rotvec(table[list(star.ANGLES)].to_numpy(float)).reshape(-1, 3)

    local = []
    for source, structure in structures.items():
        rows = np.flatnonzero(sources == source)
        local.append({"filename": str(structure.path), "instances": [
            {"position": [float(v) for v in positions[i]],
             "orientation": [float(v) for v in rotvecs[i]]} for i in rows]})
    return {
        "sample": {
            "box": [float(v) for v in box], "centre": [float(v) for v in box / 2],
            "shape": {"type": "cuboid", "margin": [0.0, 0.0, 0.0],
                      "cuboid": {"length_x": float(box[0]), "length_y": float(box[1]),
                                 "length_z": float(thickness)}},
            "molecules": {"local": local},
        },
        "microscope": {
            "beam": {"energy": acq.voltage_kv,
                     "energy_spread": acq.energy_spread_ev / (acq.voltage_kv * 1e3),
                     "electrons_per_angstrom": acq.dose_per_image(),
                     "illumination_semiangle": acq.illumination_mrad},
            "lens": {"c_10": acq.defocus_um * 1e4,
                     # MULTEM: defocus c_10 + c_12·sin 2(φ − φ_12); ours: underfocus
                     # + (a/2)·cos 2(φ − φ_a), i.e. c_12 = −a/2 at φ_12 = φ_a − 45°.
                     "c_12": -0.5e4 * acq.astigmatism_um,
                     "phi_12": float(np.deg2rad(acq.astigmatism_angle_deg) - np.pi / 4),
                     "c_30": acq.cs_mm, "c_c": acq.cc_mm},
            "phase_plate": {"use": acq.phase_plate, "phase_shift": 90.0,
                            "radius": max(acq.phase_plate_cut_on, 1e-6)},
            "detector": {"nx": int(detector[0]), "ny": int(detector[1]),
                         "pixel_size": sim_pixel, "dqe": True,
                         "origin": [int(origin[0]), int(origin[1])]},
        },
        "scan": {"mode": "manual", "axis": [0.0, 1.0, 0.0],
                 "angles": [float(a) for a in true_angles[order]], "exposure_time": 1.0},
        "simulation": {
            "slice_thickness": params.slice_thickness, "margin": params.margin,
            "padding": params.padding, "ice": params.ice,
            "ice_parameters": {"density": acq.ice_density},
            "radiation_damage_model": params.damage,
            "sensitivity_coefficient": params.sensitivity, "inelastic_model": None,
        },
        "multiprocessing": {"device": "cpu" if params.device == "auto" else params.device,
                            "nproc": 1, "gpu_id": [0]},
    }


def _prepare_workdir(workdir: Path, config_text: str) -> None:
    """Keep finished steps only if they were made with this very configuration."""
    path = workdir / worker.CONFIG
    if path.exists() and path.read_text() != config_text:
        stale = [name for name in INTERMEDIATES if (workdir / name).exists()]
        if stale:
            log(f"simulate (parakeet): configuration changed, discarding {', '.join(stale)}")
        for name in stale:
            (workdir / name).unlink()
    atomic_write_text(path, config_text)


def run_steps(workdir: Path, n_images: int, params: ParakeetParams) -> None:
    """Run Parakeet's steps after the last one that finished, in one child process whose
    current directory is `workdir` (MULTEM writes its FFTW wisdom there); ExternalToolError
    naming `workdir/parakeet.log` if it fails."""
    workdir = workdir.resolve()
    steps = list(worker.STEPS.items())
    done = [i for i, (_, output) in enumerate(steps) if (workdir / output).exists()]
    first = done[-1] + 1 if done else 0
    if first:
        log(f"simulate (parakeet): resuming after {steps[first - 1][0]}")
    if first == len(steps):
        return
    command = [sys.executable, "-m", "templearn.simulate.parakeet_worker", str(workdir),
               *(step for step, _ in steps[first:]), "--seed", str(params.seed),
               "--images", str(n_images), "--device", params.device]
    log_path = workdir / LOG
    with open(log_path, "a") as log_file:
        log_file.write(f"\n### {' '.join(command)}\n")
        log_file.flush()
        result = subprocess.run(command, stdout=log_file, cwd=workdir, check=False,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if result.returncode != 0:
        failed = next((step for step, output in steps[first:]
                       if not (workdir / output).exists()), steps[-1][0])
        raise ExternalToolError(f"Parakeet failed in its {failed} step (exit status "
                                f"{result.returncode})", log_path)


def check_parakeet() -> None:
    """InputError with install instructions when Parakeet or MULTEM is missing."""
    from importlib.metadata import version
    from importlib.util import find_spec

    if find_spec("parakeet") is None or find_spec("multem") is None:
        raise InputError("--backend parakeet needs python-parakeet and MULTEM: run "
                         "bin/install-parakeet (see README, 'Physics backend')")
    if int(version("pandas").split(".")[0]) >= 3:
        raise InputError(f"Parakeet 0.6.8 fails with pandas {version('pandas')} (its samples "
                         "stay empty): pip install 'pandas<3'")


def simulate_parakeet(table: pd.DataFrame, sample: Grid, acq: Acquisition,
                      params: ParakeetParams, workdir: Path) -> TiltSeries:
    """Tilt series of the molecules of `table` simulated by Parakeet + MULTEM in `workdir`."""
    check_parakeet()
    if len(table) == 0:
        raise InputError("the sample has no molecules")
    workdir.mkdir(parents=True, exist_ok=True)
    structures = prepare_structures(table, workdir / "structures")
    config = parakeet_config(table, sample, acq, params, structures)
    _prepare_workdir(workdir, yaml.safe_dump(config, sort_keys=False))
    pixel = params.pixel_size or sample.voxel_size
    sim_pixel = config["microscope"]["detector"]["pixel_size"]
    n_images = len(config["scan"]["angles"])
    log(f"simulate (parakeet): {len(table)} molecules, "
        f"{sum(s.n_atoms for s in structures.values()):,} atoms in {len(structures)} "
        f"structures, {n_images} tilts of {config['microscope']['detector']['nx']}×"
        f"{config['microscope']['detector']['ny']} px at {sim_pixel:.3g} Å")
    run_steps(workdir, n_images, params)

    expected_atoms = sum(structures[s].n_atoms
                         for s in table[star.STRUCTURE_FILE].astype(str))
    placed_atoms = int((workdir / "atoms.txt").read_text())
    if placed_atoms < expected_atoms:
        log(f"simulate (parakeet): warning: Parakeet placed {placed_atoms:,} of "
            f"{expected_atoms:,} atoms (it drops atoms with unknown elements)")
    raw = np.load(workdir / worker.IMAGES, mmap_mode="r")
    records = json.loads((workdir / worker.HEADER).read_text())
    nominal, true_angles = tilt_angles(acq, params.seed)
    order = np.argsort(acq.acquisition_order())
    by_angle = np.argsort(order)  # scan index of each nominal angle
    _, ny, nx = sample.shape_zyx
    out_shape = tuple(max(1, round(n * sample.voxel_size / pixel)) for n in (ny, nx))
    if raw.shape[1:] != (config["microscope"]["detector"]["ny"],
                         config["microscope"]["detector"]["nx"]):
        raise ExternalToolError(f"Parakeet returned images of shape {raw.shape[1:]}, not "
                                "the configured detector's", workdir / LOG)
    # Fourier cropping keeps the mean per pixel; scale so each output pixel holds the
    # electrons of the simulation pixels it covers.
    scale = (pixel / sim_pixel) ** 2
    images = np.stack([fourier_resize(np.asarray(raw[i], np.float64), out_shape) * scale
                       for i in by_angle]).astype(np.float32)
    meta = {
        "backend": "parakeet", "templearn": __version__, "acquisition": asdict(acq),
        "seed": params.seed, "pixel_size": pixel, "sim_pixel": sim_pixel,
        "parakeet_params": asdict(params), "angles_nominal": nominal,
        "angles_true": true_angles,
        "sample": {"shape_xyz": list(sample.shape_zyx[::-1]), "voxel_size": sample.voxel_size,
                   "centre_angst": sample.centre_angst,
                   "thickness_angst": config["sample"]["shape"]["cuboid"]["length_z"]},
        "units": "electrons per pixel (Parakeet: DQE, Poisson)",
        "acquisition_order": acq.acquisition_order(), "dose_per_image": acq.dose_per_image(),
        "prior_dose": acq.prior_dose(), "atoms_expected": expected_atoms,
        "atoms_placed": placed_atoms, "parakeet_box": config["sample"]["box"],
        "parakeet_images": [records[i] for i in by_angle],
        "step_seconds": json.loads((workdir / worker.TIMINGS).read_text()),
    }
    del raw
    if not params.keep_intermediates:
        for name in INTERMEDIATES:
            (workdir / name).unlink(missing_ok=True)
        shutil.rmtree(workdir / "structures", ignore_errors=True)
    return TiltSeries(images, nominal, pixel, meta)
