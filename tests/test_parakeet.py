"""The Parakeet backend: its configuration (always), and Parakeet + MULTEM themselves (when
installed by bin/install-parakeet): geometry shared with the fast backend and our
reconstruction, orientations, acquisition parameters reaching Parakeet, and resume."""

import json
import shutil
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import gemmi
import numpy as np
import pandas as pd
import pytest
from scipy.ndimage import gaussian_filter
from scipy.spatial.transform import Rotation

from templearn import star
from templearn.acquisition import Acquisition
from templearn.errors import InputError
from templearn.geometry import random_relion_angles, relion_to_matrix
from templearn.mrc import read_mrc
from templearn.reconstruct import ReconstructParams, reconstruct_tomogram
from templearn.sample import CLASS_NAME, Grid, write_molecules
from templearn.simulate.multislice import (
    ParakeetParams,
    parakeet_config,
    prepare_structures,
    simulation_pixel,
)
from templearn.simulate.potential import place_molecules
from templearn.structure import read_structure
from templearn.tiltseries import read_tilt_series
from tests.conftest import STRUCTURES, ncc, shared_file
from tests.test_cli import templearn

needs_parakeet = pytest.mark.skipif(
    find_spec("parakeet") is None or find_spec("multem") is None,
    reason="Parakeet/MULTEM not installed (bin/install-parakeet)")

VOXEL = 8.0
#: Three differently shaped proteins in an asymmetric L arrangement (voxels x y z).
NAMES = ("2r9r", "6lx3", "7blq")
POSITIONS = np.array([[8.0, 10, 8], [22, 9, 7], [12, 23, 9]])
GRID = Grid((16, 32, 32), VOXEL)


def molecules_table(structures: list[Path], maps_dir: Path | None,
                    angles: np.ndarray) -> pd.DataFrame:
    n = len(structures)
    positions = POSITIONS[:n]
    return pd.DataFrame({
        star.TOMO_NAME: "sample",
        **{c: positions[:, i] for i, c in enumerate(star.COORDINATES)},
        **{c: positions[:, i] * VOXEL for i, c in enumerate(star.POSITION_ANGST)},
        **{c: angles[:, i] for i, c in enumerate(star.ANGLES)},
        star.MOLECULE_NAME: [s.stem for s in structures],
        star.MOLECULE_CLASS: "template", CLASS_NAME: "protein", star.CLASS_ID: 1,
        star.MASS_DA: [read_structure(s).mass_da() for s in structures],
        star.MAP_FILE: [str((maps_dir or Path()) / f"{s.stem}.mrc") for s in structures],
        star.STRUCTURE_FILE: [str(s) for s in structures],
    })


def write_pdb(path: Path, atoms: list[tuple[str, tuple[float, float, float]]]) -> Path:
    st = gemmi.Structure()
    model = gemmi.Model("1")
    chain = gemmi.Chain("A")
    for i, (element, xyz) in enumerate(atoms):
        residue = gemmi.Residue()
        residue.name, residue.seqid = "UNK", gemmi.SeqId(i + 1, " ")
        atom = gemmi.Atom()
        atom.name, atom.element, atom.pos = element, gemmi.Element(element), gemmi.Position(*xyz)
        residue.add_atom(atom)
        chain.add_residue(residue)
    model.add_chain(chain)
    st.add_model(model)
    st.setup_entities()
    st.write_pdb(str(path))
    return path


# ---- the configuration (no Parakeet needed) ---------------------------------------------

def test_atom_mean_goes_where_the_rotated_structure_puts_it(tmp_path):
    # Heavy and light atoms: the atom mean and the centre of mass differ by several Å.
    pdb = write_pdb(tmp_path / "lopsided.pdb", [("U", (0, 0, 0)), ("C", (20, 0, 0)),
                                                ("C", (20, 15, 0)), ("C", (20, 15, 10))])
    angles = np.array([[30.0, 70.0, -110.0]])
    table = molecules_table([pdb], None, angles)
    structures = prepare_structures(table, tmp_path / "structures")
    config = parakeet_config(table, GRID, Acquisition(), ParakeetParams(), structures)

    model = read_structure(pdb)
    weights = model.atomic_numbers.astype(float)
    com = (model.coords * weights[:, None]).sum(0) / weights.sum()
    # The sample as templearn sees it: the map centre (centre of mass) at tlPosition.
    placed = (model.coords - com) @ relion_to_matrix(angles[0]).T + POSITIONS[0] * VOXEL
    box = np.array(config["sample"]["box"])
    expected = placed.mean(0) - GRID.centre_angst + box / 2
    instance = config["sample"]["molecules"]["local"][0]["instances"][0]
    np.testing.assert_allclose(instance["position"], expected, atol=1e-6)
    # Parakeet rotates the centred atoms by the rotation vector: same placement.
    rotated = Rotation.from_rotvec(instance["orientation"]).apply(
        model.coords - model.coords.mean(0)) + instance["position"]
    np.testing.assert_allclose(rotated, placed - GRID.centre_angst + box / 2, atol=1e-6)


def test_detector_ice_scan_and_dose_follow_the_sample_and_acquisition(tmp_path):
    pdb = write_pdb(tmp_path / "one.pdb", [("C", (0, 0, 0)), ("N", (3, 1, 0))])
    table = molecules_table([pdb], None, np.zeros((1, 3)))
    acq = Acquisition(tilt_min=-60, tilt_max=60, tilt_step=3, dose_total=123.0,
                      phase_plate=True, defocus_um=-0.5, ice_density=1.1)
    params = ParakeetParams(sim_pixel=1.05)
    config = parakeet_config(table, GRID, acq, params,
                             prepare_structures(table, tmp_path / "s"))
    detector, box = config["microscope"]["detector"], np.array(config["sample"]["box"])
    assert detector["pixel_size"] == pytest.approx(1.0)  # 1.05 Å made to divide 8 Å
    assert (detector["nx"], detector["ny"]) == (256, 256)  # 32 voxels × 8 Å
    fov = np.array([detector["nx"], detector["ny"]]) * detector["pixel_size"]
    np.testing.assert_allclose(np.array(detector["origin"]) + fov / 2, box[:2] / 2)
    # The ice slab covers the field of view, with the simulation border, at 60°.
    border = (params.margin + params.padding) * detector["pixel_size"]
    theta, thickness = np.deg2rad(60), config["sample"]["shape"]["cuboid"]["length_z"]
    assert thickness == GRID.shape_zyx[0] * VOXEL
    assert box[0] / 2 * np.cos(theta) - thickness / 2 * np.sin(theta) >= fov[0] / 2 + border
    angles = np.array(config["scan"]["angles"])
    np.testing.assert_allclose(np.sort(angles), acq.nominal_angles())
    np.testing.assert_allclose(angles, acq.nominal_angles()[np.argsort(acq.acquisition_order())])
    assert config["microscope"]["beam"]["electrons_per_angstrom"] == pytest.approx(123.0 / 41)
    assert config["microscope"]["phase_plate"]["use"] is True
    assert config["microscope"]["lens"]["c_10"] == pytest.approx(-5000.0)
    assert config["simulation"]["ice_parameters"]["density"] == 1.1


def test_astigmatism_follows_multem_convention(tmp_path):
    # MULTEM (types.cuh, cgpu_fcns.cuh): χ = −πλg²·(c_10 + c_12·sin 2(φ − φ_12)), c_10 < 0
    # underfocus. Ours (optics.aberration_phase): underfocus Δz + (a/2)·cos 2(φ − φ_a).
    pdb = write_pdb(tmp_path / "one.pdb", [("C", (0, 0, 0)), ("N", (3, 1, 0))])
    table = molecules_table([pdb], None, np.zeros((1, 3)))
    acq = Acquisition(defocus_um=-2.0, astigmatism_um=0.4, astigmatism_angle_deg=30.0)
    lens = parakeet_config(table, GRID, acq, ParakeetParams(),
                           prepare_structures(table, tmp_path / "s"))["microscope"]["lens"]
    for azimuth in np.deg2rad([0.0, 30.0, 75.0, 120.0]):
        multem_defocus = lens["c_10"] + lens["c_12"] * np.sin(2 * (azimuth - lens["phi_12"]))
        ours = -(2.0e4 + 0.5 * 0.4e4 * np.cos(2 * (azimuth - np.deg2rad(30.0))))
        assert multem_defocus == pytest.approx(ours)


def test_bad_inputs_are_refused(tmp_path):
    with pytest.raises(InputError, match="simulation pixel"):
        simulation_pixel(8.0, 9.0)
    table = molecules_table([write_pdb(tmp_path / "a.pdb", [("C", (0, 0, 0))])], None,
                            np.zeros((1, 3))).drop(columns=star.STRUCTURE_FILE)
    with pytest.raises(InputError, match=star.STRUCTURE_FILE):
        prepare_structures(table, tmp_path / "s")
    write_molecules(tmp_path / "molecules.star", table, GRID)
    run = templearn("simulate", str(tmp_path / "molecules.star"), "--backend", "parakeet",
                    "--ideal", "-o", str(tmp_path / "out"))
    assert run.returncode == 2 and "only for --backend fast" in run.stderr
    assert not (tmp_path / "out").exists()


# ---- Parakeet + MULTEM --------------------------------------------------------------------

@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    structures = [shared_file(STRUCTURES / "distractors" / f"{n}_centered.pdb")
                  for n in NAMES]
    work = tmp_path_factory.mktemp("parakeet")
    run = templearn("density", *map(str, structures), "--voxel-size", str(VOXEL),
                    "--resolution", "16", "-o", str(work / "maps"))
    assert run.returncode == 0, run.stderr
    table = molecules_table(structures, work / "maps",
                            random_relion_angles(len(structures), np.random.default_rng(4)))
    write_molecules(work / "molecules.star", table, GRID)
    return work, table


def simulate(work: Path, name: str, acquisition: dict, *options: str,
             molecules: str = "molecules.star") -> Path:
    """Run `templearn simulate` on a sample of `work` with a one-row acquisition table."""
    table = work / f"{name}.tsv"
    table.write_text("\t".join(["name", *acquisition]) + "\n"
                     + "\t".join([name, *map(str, acquisition.values())]) + "\n")
    run = templearn("simulate", str(work / molecules), "-a", str(table),
                    "-o", str(work / name), *options)
    assert run.returncode == 0, run.stderr
    return work / name


HIGH_DOSE = {"defocus_um": -2.0, "dose_total": 5000, "tilt_min": -45, "tilt_max": 45,
             "tilt_step": 22.5}


@pytest.fixture(scope="module")
def tomograms(sample):
    work, _ = sample
    physics = simulate(work, "parakeet", HIGH_DOSE, "--backend", "parakeet", "--sim-pixel",
                       "1.0", "--no-grf-ice", "--no-damage", "--keep-intermediates")
    fast = simulate(work, "fast", HIGH_DOSE, "--no-damage", "--ice-texture", "0")
    return {name: reconstruct_tomogram(read_tilt_series(path / "tiltseries.mrc"),
                                       ReconstructParams()).data
            for name, path in (("parakeet", physics), ("fast", fast))}


def dark(volume: np.ndarray) -> np.ndarray:
    """Protein density from an underfocus tomogram: dark, low-passed."""
    return -gaussian_filter(volume.astype(np.float64), 1.0)


@needs_parakeet
@pytest.mark.slow
def test_parakeet_and_fast_backends_agree_with_the_same_handedness(tomograms):
    physics, fast = dark(tomograms["parakeet"]), dark(tomograms["fast"])
    # Both are reconstructions of the same three proteins through the same geometry: the
    # physics differs (multislice on atoms vs projected maps), so agreement is judged at
    # 16 Å; 0.5 is far above what mirrored or shifted copies reach (checked below).
    direct = ncc(physics, fast)
    assert direct > 0.5, direct
    for mirrored in (physics[::-1], physics[:, :, ::-1], physics[:, ::-1]):
        assert direct > ncc(mirrored, fast) + 0.3


@needs_parakeet
@pytest.mark.slow
def test_particles_sit_at_their_positions_with_their_orientations(sample, tomograms):
    _, table = sample
    physics = dark(tomograms["parakeet"])
    maps = {key: read_mrc(key) for key in table[star.MAP_FILE]}
    zz, yy, xx = np.indices(GRID.shape_zyx)

    def window(i: int) -> np.ndarray:
        x, y, z = POSITIONS[i]
        return (xx - x) ** 2 + (yy - y) ** 2 + (zz - z) ** 2 <= 6**2

    for i in range(len(table)):
        alone = gaussian_filter(place_molecules(table.iloc[[i]], GRID, maps, GRID), 1.0)
        shifts = [(dz, dy, dx) for dz in range(-3, 4) for dy in range(-3, 4)
                  for dx in range(-3, 4)]
        scores = [ncc(np.roll(alone, s, (0, 1, 2))[window(i)], physics[window(i)])
                  for s in shifts]
        best = np.array(shifts[int(np.argmax(scores))])
        assert np.abs(best).max() <= 1, (table[star.MOLECULE_NAME][i], best)

        true_score = ncc(alone[window(i)], physics[window(i)])
        others = []
        for angles in random_relion_angles(12, np.random.default_rng(i)):
            turned = table.iloc[[i]].copy()
            turned[list(star.ANGLES)] = angles
            other = gaussian_filter(place_molecules(turned, GRID, maps, GRID), 1.0)
            others.append(ncc(other[window(i)], physics[window(i)]))
        assert true_score > max(others), (table[star.MOLECULE_NAME][i], true_score, others)


@needs_parakeet
@pytest.mark.slow
def test_parakeet_metadata_carries_our_dose_and_angles_and_a_rerun_resumes(sample, tomograms):
    work, _ = sample
    out = work / "parakeet"
    meta = json.loads((out / "meta.json").read_text())
    acq = Acquisition(**{k: v for k, v in HIGH_DOSE.items()})
    images = meta["parakeet_images"]
    assert [r["dose"] for r in images] == pytest.approx([acq.dose_per_image()] * 5)
    assert [r["tilt_alpha"] for r in images] == pytest.approx(list(acq.nominal_angles()))
    assert meta["atoms_placed"] == meta["atoms_expected"] > 30_000
    first = read_mrc(out / "tiltseries.mrc").data
    # A killed run leaves its work directory beside the output: make one from the finished
    # output less the exported images; an identical rerun resumes there, only exporting.
    partial = out.parent / f".{out.name}.partial"
    shutil.copytree(out, partial)
    for name in ("parakeet/images.npy", "parakeet/header.json", "tiltseries.mrc"):
        (partial / name).unlink(missing_ok=True)
    table = work / "parakeet.tsv"
    run = templearn("simulate", str(work / "molecules.star"), "-a", str(table), "-o", str(out),
                    "--backend", "parakeet", "--sim-pixel", "1.0", "--no-grf-ice",
                    "--no-damage", "--keep-intermediates")
    assert run.returncode == 0, run.stderr
    assert "resuming after image" in run.stderr
    assert "parakeet exit_wave" not in run.stderr
    np.testing.assert_array_equal(read_mrc(out / "tiltseries.mrc").data, first)
    assert not partial.exists()
    assert str(partial) not in (out / "meta.json").read_text()


@needs_parakeet
@pytest.mark.slow
def test_phase_plate_gives_the_low_frequency_contrast_the_ctf_predicts(sample):
    work, _ = sample
    # Near focus, without a phase plate, sin χ ≈ 0 at low frequencies: almost no contrast;
    # the phase plate turns it into cos χ ≈ 1. At 40 Å and -0.3 µm the CTF predicts a ratio
    # of |cos χ| / |sin χ + 0.07 cos χ| ≈ 11 (MULTEM has only physical amplitude contrast).
    near_focus = {"defocus_um": -0.3, "dose_total": 20000, "tilt_min": 0, "tilt_max": 0,
                  "tilt_step": 1}
    contrast = {}
    for vpp in (False, True):
        name = f"vpp_{vpp}"
        out = simulate(work, name, {**near_focus, "phase_plate": vpp}, "--backend", "parakeet",
                       "--sim-pixel", "1.0", "--no-damage")
        image = read_mrc(out / "tiltseries.mrc").data[0].astype(np.float64)
        low = gaussian_filter(image, 2.5)
        contrast[vpp] = low[4:-4, 4:-4].std() / image.mean()
    assert contrast[True] > 4 * contrast[False], contrast


@needs_parakeet
@pytest.mark.slow
def test_pseudo_atomic_models_gain_contrast_with_phosphorus(sample):
    work, table = sample
    run = templearn("density", table[star.STRUCTURE_FILE][0], "--voxel-size", "2",
                    "--resolution", "6", "-o", str(work / "fine"))
    assert run.returncode == 0, run.stderr
    fine_map = next((work / "fine").glob("*.mrc"))
    single = {"defocus_um": -2.0, "dose_total": 20000, "tilt_min": 0, "tilt_max": 0,
              "tilt_step": 1}
    contrast = {}
    for fraction in (0.0, 0.5):
        run = templearn("pseudoatoms", str(fine_map), "--phosphorus-fraction", str(fraction),
                        "-o", str(work / f"pseudo_{fraction}"))
        assert run.returncode == 0, run.stderr
        model = work / f"pseudo_{fraction}" / "model.pdb"
        molecules = f"pseudo_{fraction}.star"
        write_molecules(work / molecules, molecules_table([model], None, np.zeros((1, 3))),
                        GRID)
        out = simulate(work, f"pseudo_{fraction}", single, "--backend", "parakeet",
                       "--sim-pixel", "1.0", "--no-grf-ice", "--no-damage",
                       molecules=molecules)
        meta = json.loads((out / "meta.json").read_text())
        assert meta["atoms_placed"] == meta["atoms_expected"]
        image = read_mrc(out / "tiltseries.mrc").data[0].astype(np.float64)
        contrast[fraction] = gaussian_filter(image, 1.5).std() / image.mean()
    # Phosphorus (Z = 15) scatters about twice as strongly as carbon (Z = 6) at low angles.
    assert contrast[0.5] > 1.3 * contrast[0.0] > 0, contrast


INSTALLER = Path(__file__).resolve().parents[1] / "bin" / "install-parakeet"


def test_installer_refuses_a_missing_interpreter_with_a_clear_message():
    run = subprocess.run([str(INSTALLER), "--python", "/nonexistent/python"],
                         capture_output=True, text=True)
    assert run.returncode == 2
    assert "no Python interpreter '/nonexistent/python'" in run.stderr


@needs_parakeet
def test_installer_is_idempotent():
    run = subprocess.run([str(INSTALLER), "--python", sys.executable], capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stderr
    assert "already installed" in run.stdout
