"""The `templearn` command as users meet it: outputs, exit status 2 on bad input, no leftovers."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from templearn.mrc import read_mrc
from templearn.structure import read_structure


def templearn(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from templearn.cli import main; main()", *args],
                          capture_output=True, text=True, cwd=cwd)


@pytest.mark.slow
def test_structure_stages_end_to_end(tmp_path, nucleosome):
    run = templearn("nma", str(nucleosome), "-o", str(tmp_path / "nma"))
    assert run.returncode == 0, run.stderr
    modes = tmp_path / "nma" / "modes.npz"
    assert modes.exists() and (tmp_path / "nma" / "versions.yml").exists()

    conf = tmp_path / "conf"
    run = templearn("deform", str(nucleosome), str(modes), "-n", "3", "-A", "100", "--seed", "5",
                    "-o", str(conf))
    assert run.returncode == 0, run.stderr
    table = pd.read_csv(conf / "rmsd.csv")
    assert list(table["file"]) == [f"2pyo_centered_conf00{i}.pdb" for i in range(3)]
    assert table["rmsd_angstrom"].between(1.0, 4.0).all()
    first = read_structure(conf / "2pyo_centered_conf000.pdb")
    reference = read_structure(nucleosome)
    rmsd = np.sqrt(((first.coords - (reference.coords - reference.coords.mean(0))) ** 2)
                   .sum(1).mean())
    assert rmsd == pytest.approx(table["rmsd_angstrom"][0], abs=2e-3)

    maps = tmp_path / "maps"
    run = templearn("density", *map(str, sorted(conf.glob("*.pdb"))), "-o", str(maps),
                    "--voxel-size", "8", "--resolution", "16", "--box", "32")
    assert run.returncode == 0, run.stderr
    volume = read_mrc(maps / "2pyo_centered_conf001.mrc")
    assert volume.data.shape == (32, 32, 32) and volume.voxel_size == pytest.approx(8.0)

    pseudo = tmp_path / "pseudo"
    run = templearn("pseudoatoms", str(maps / "2pyo_centered_conf001.mrc"), "-o", str(pseudo),
                    "--lowpass", "16")
    assert run.returncode == 0, run.stderr
    assert read_structure(pseudo / "model.pdb").n_atoms > 100


def one_line_error(run: subprocess.CompletedProcess, *needles: str) -> None:
    assert run.returncode == 2, run.stderr
    errors = [line for line in run.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("templearn: error: "), run.stderr
    assert "Traceback" not in run.stderr
    for needle in needles:
        assert needle in errors[0]


def test_missing_file(tmp_path):
    one_line_error(templearn("nma", str(tmp_path / "absent.pdb"), cwd=tmp_path), "absent.pdb",
                   "no such file")


def test_a_number_option_given_text_is_a_one_line_error(tmp_path, nucleosome):
    one_line_error(templearn("density", str(nucleosome), "--voxel-size", "eight", "-o",
                             str(tmp_path / "maps")), "--voxel-size", "expects a number")
    one_line_error(templearn("density", str(nucleosome), "--box", "3.5", "-o",
                             str(tmp_path / "maps")), "--box", "expects an integer")
    assert not (tmp_path / "maps").exists()


def test_malformed_pdb_leaves_no_output(tmp_path):
    bad = tmp_path / "bad.pdb"
    bad.write_text("this is not a PDB file\n")
    one_line_error(templearn("density", str(bad), "-o", str(tmp_path / "maps")), "bad.pdb")
    assert not (tmp_path / "maps").exists()


def test_empty_selection(tmp_path, nucleosome):
    run = templearn("nma", str(nucleosome), "--selection", "name ZZ", "-o", str(tmp_path / "nma"))
    one_line_error(run, "2pyo_centered.pdb: ", "matches no atoms")
    assert {p.name for p in tmp_path.iterdir()} <= {".nma.lock"}  # no output, no work folder


def test_unreadable_mrc(tmp_path):
    bad = tmp_path / "bad.mrc"
    bad.write_bytes(b"\0" * 100)
    one_line_error(templearn("pseudoatoms", str(bad), "-o", str(tmp_path / "p")), "bad.mrc")
    assert not (tmp_path / "p").exists()


def test_non_positive_voxel_size(tmp_path, nucleosome):
    one_line_error(templearn("density", str(nucleosome), "--voxel-size", "0",
                             "-o", str(tmp_path / "maps")), "voxel-size")


def test_debug_shows_the_traceback(tmp_path):
    run = templearn("--debug", "nma", str(tmp_path / "absent.pdb"), cwd=tmp_path)
    assert run.returncode != 0 and "Traceback" in run.stderr


def test_nma_stage_does_not_import_jax(tmp_path, nucleosome):
    code = ("import sys; from templearn.cli import app\n"
            "try:\n    app(['nma', sys.argv[1], '-o', sys.argv[2]])\nexcept SystemExit:\n    pass\n"
            "assert 'jax' not in sys.modules, 'nma imported jax'\n"
            "assert 'templearn.nma' in sys.modules\n")
    run = subprocess.run([sys.executable, "-c", code, str(nucleosome), str(tmp_path / "nma")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_help_imports_no_stage_dependencies():
    code = ("import sys; from templearn.cli import app\n"
            "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = {'jax', 'prody', 'scipy', 'gemmi', 'mrcfile'} & set(sys.modules)\n"
            "assert not heavy, heavy\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


@pytest.fixture(scope="module")
def synthetic_maps(tmp_path_factory):
    """`templearn density` maps (with maps.star) of small synthetic L-shaped molecules."""
    from templearn.pseudoatoms import pseudo_atomic_model
    from templearn.structure import write_structure
    from tests.test_tetris import l_shaped_molecule

    root = tmp_path_factory.mktemp("synthetic")
    rng = np.random.default_rng(0)
    for folder, arms in (("templates", (60.0,)), ("distractors", (80.0, 50.0))):
        paths = []
        for arm in arms:
            coords, _ = l_shaped_molecule(rng, arm)
            path = root / "pdb" / f"{folder}_{int(arm)}.cif"
            write_structure(path, pseudo_atomic_model(coords, np.zeros(len(coords), bool)))
            paths.append(str(path))
        run = templearn("density", *paths, "-o", str(root / folder))
        assert run.returncode == 0, run.stderr
    return root


@pytest.mark.slow
def test_tetris_and_labels_end_to_end(tmp_path, synthetic_maps):
    out = tmp_path / "sample"
    run = templearn("tetris", "-t", f"L={synthetic_maps / 'templates'}",
                    "-d", str(synthetic_maps / "distractors"), "--shape", "40,40,24",
                    "--seed", "3", "-o", str(out))
    assert run.returncode == 0, run.stderr
    for name in ("molecules.star", "instances.mrc", "density.mrc", "slices.png", "versions.yml"):
        assert (out / name).exists()
    from templearn.sample import read_molecules

    table, grid = read_molecules(out / "molecules.star")
    assert grid.shape_zyx == (24, 40, 40) and len(table) > 10
    assert set(table["tlClassName"]) == {"L", "distractor"}
    assert table["tlStructureFile"].str.endswith(".cif").all()
    instances = read_mrc(out / "instances.mrc")
    assert instances.data.max() == len(table)

    acquisitions = tmp_path / "acq.tsv"
    run = templearn("randomize", "-n", "2", "--seed", "1", "-o", str(acquisitions))
    assert run.returncode == 0, run.stderr
    # maps at 8 Å (same names) for the potential; output at 16 Å, the sample's voxel size
    fine = tmp_path / "maps8"  # one run: a rerun of density into a folder replaces it
    cifs = [str(p) for p in sorted((synthetic_maps / "pdb").glob("*.cif"))]
    assert templearn("density", *cifs, "--voxel-size", "8", "-o", str(fine)).returncode == 0
    run = templearn("simulate", str(out / "molecules.star"), "-a",
                    str(acquisitions / "acquisitions.tsv"), "--row", "random001",
                    "--maps", str(fine), "-o", str(tmp_path / "ts"))
    assert run.returncode == 0, run.stderr
    stack = read_mrc(tmp_path / "ts" / "tiltseries.mrc")
    angles = np.loadtxt(tmp_path / "ts" / "tiltseries.tlt")
    assert stack.data.shape == (len(angles), 40, 40) and stack.voxel_size == pytest.approx(16)
    assert np.all(np.diff(angles) > 0)
    meta = json.loads((tmp_path / "ts" / "meta.json").read_text())
    assert meta["acquisition"]["name"] == "random001" and meta["potential_voxel"] == 8.0

    run = templearn("reconstruct", str(tmp_path / "ts" / "tiltseries.mrc"),
                    "-o", str(tmp_path / "tomo"))
    assert run.returncode == 0, run.stderr
    tomogram = read_mrc(tmp_path / "tomo" / "tomogram.mrc")
    assert tomogram.data.shape == (24, 40, 40) and tomogram.voxel_size == pytest.approx(16)

    run = templearn("labels", str(out / "molecules.star"), "--like",
                    str(tmp_path / "tomo" / "tomogram.mrc"), "-o", str(tmp_path / "labels"))
    assert run.returncode == 0, run.stderr
    labels = read_mrc(tmp_path / "labels" / "labels.mrc")
    assert labels.data.shape == (24, 40, 40) and set(np.unique(labels.data)) == {0, 1}


def test_tetris_rejects_mismatched_voxel_sizes(tmp_path, synthetic_maps):
    fine = tmp_path / "fine"
    cif = str(next((synthetic_maps / "pdb").glob("distractors_*.cif")))
    assert templearn("density", cif, "--voxel-size", "10", "-o", str(fine)).returncode == 0
    run = templearn("tetris", "-t", f"L={synthetic_maps / 'templates'}", "-d", str(fine),
                    "-o", str(tmp_path / "s"))
    one_line_error(run, "voxel size")
    assert not (tmp_path / "s").exists()


def test_tetris_needs_maps_made_by_density(tmp_path, synthetic_maps):
    lone = tmp_path / "lone.mrc"
    lone.write_bytes(next((synthetic_maps / "templates").glob("*.mrc")).read_bytes())
    one_line_error(templearn("tetris", "-t", f"L={lone}", "-o", str(tmp_path / "s")), "maps.star")


def test_randomize_rejects_an_impossible_range(tmp_path):
    one_line_error(templearn("randomize", "--tilt-max", "60,95", "-o", str(tmp_path / "a.tsv")),
                   "tilt")
    one_line_error(templearn("randomize", "--dose", "150,75", "-o", str(tmp_path / "a.tsv")),
                   "--dose")
    assert not (tmp_path / "a.tsv").exists()


def test_simulate_rejects_bad_rows_and_missing_maps(tmp_path, synthetic_maps):
    out = tmp_path / "sample"
    run = templearn("tetris", "-t", f"L={synthetic_maps / 'templates'}", "--shape", "24,24,16",
                    "--max-molecules", "3", "-o", str(out))
    assert run.returncode == 0, run.stderr
    acquisitions = tmp_path / "acq.tsv"
    assert templearn("randomize", "--grid", "vpp", "-o", str(acquisitions)).returncode == 0
    one_line_error(templearn("simulate", str(out / "molecules.star"), "-a",
                             str(acquisitions / "acquisitions.tsv"), "--row", "nope",
                             "-o", str(tmp_path / "ts")), "no acquisition")
    one_line_error(templearn("simulate", str(out / "molecules.star"), "--maps", str(tmp_path),
                             "-o", str(tmp_path / "ts")), "no map named")
    one_line_error(templearn("simulate", str(out / "molecules.star"), "--sim-pixel", "32",
                             "-o", str(tmp_path / "ts")), "simulation pixel")
    assert not (tmp_path / "ts").exists()


def test_train_rejects_an_impossible_share_before_reading_anything(tmp_path):
    one_line_error(templearn("train", "--sample", "absent.mrc,absent", "--noise-fraction",
                             "1.5", "-o", str(tmp_path / "t")), "--noise-fraction")
    assert not (tmp_path / "t").exists()
