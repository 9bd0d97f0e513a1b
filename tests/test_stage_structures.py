"""The structure stages (nma, deform, pseudoatoms) and labels on the stage layer: fixed output
names in a directory committed as a unit, reproducible modes, exit status 2 on bad input."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from templearn import star
from templearn.labels import LabelParams, paint_labels, targets_table
from templearn.mrc import Volume, read_mrc, write_mrc
from templearn.nma import NormalModes
from templearn.sample import Grid, write_molecules
from templearn.stages import deform as deform_stage
from templearn.stages import nma as nma_stage
from templearn.structure import read_structure
from tests.conftest import NUCLEOSOME, shared_file
from tests.test_cli import one_line_error, templearn
from tests.test_tetris import VOXEL, molecules, packed_sample  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def modes_dir(tmp_path_factory):
    """`nma` run in-process on the nucleosome: its output directory."""
    out = tmp_path_factory.mktemp("nma") / "nma"
    nma_stage.run(nma_stage.Params(), nma_stage.Inputs(shared_file(NUCLEOSOME)), out)
    return out


def test_nma_writes_modes_npz_and_its_record(modes_dir):
    assert sorted(p.name for p in modes_dir.iterdir()) == ["modes.npz", "nma.params.yml",
                                                           "versions.yml"]
    modes = NormalModes.load(modes_dir / "modes.npz")
    assert modes.modes.shape[0] == 20
    record = yaml.safe_load((modes_dir / "nma.params.yml").read_text())
    assert record["params"] == {"selection": "name CA P", "n_modes": 20, "cutoff": 15.0,
                                "gamma": 1.0}
    assert record["inputs"] == {"structure": str(NUCLEOSOME)}
    assert "20 modes" in record["result"] and ".partial" not in str(record)


def test_two_nma_runs_give_the_same_modes_and_conformers(tmp_path, modes_dir, nucleosome):
    # A second run in the same process starts ARPACK from another random vector; without a
    # sign convention about half of the modes come out negated.
    again = tmp_path / "nma"
    nma_stage.run(nma_stage.Params(), nma_stage.Inputs(nucleosome), again)
    first, second = (NormalModes.load(d / "modes.npz") for d in (modes_dir, again))
    np.testing.assert_allclose(second.modes, first.modes, atol=1e-6)
    conformers = []
    for name, source in (("a", modes_dir), ("b", again)):
        deform_stage.run(deform_stage.Params(n=2, seed=4),
                         deform_stage.Inputs(nucleosome, source / "modes.npz"), tmp_path / name)
        conformers.append(read_structure(tmp_path / name / "2pyo_centered_conf001.pdb").coords)
    centred = read_structure(nucleosome).coords
    centred = centred - centred.mean(axis=0)
    assert np.abs(conformers[0] - centred).max() > 1.0  # really deformed
    np.testing.assert_allclose(conformers[1], conformers[0], atol=2e-3)  # PDB rounding


def test_deform_rerun_replaces_the_output_directory_whole(tmp_path, modes_dir, nucleosome):
    out = tmp_path / "conformers"
    args = ("deform", str(nucleosome), str(modes_dir / "modes.npz"), "--seed", "1", "-o",
            str(out))
    run = templearn(*args, "-n", "3")
    assert run.returncode == 0, run.stderr
    assert (out / "2pyo_centered_conf002.pdb").exists()
    (out / "stray.txt").write_text("left by hand")
    run = templearn(*args, "-n", "2", "-A", "50")
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "2pyo_centered_conf000.pdb", "2pyo_centered_conf001.pdb", "deform.params.yml",
        "rmsd.csv", "versions.yml"]
    table = pd.read_csv(out / "rmsd.csv")
    assert list(table["file"]) == ["2pyo_centered_conf000.pdb", "2pyo_centered_conf001.pdb"]
    assert (table.filter(like="amplitude_mode").abs().to_numpy() <= 50.0).all()
    record = yaml.safe_load((out / "deform.params.yml").read_text())
    assert record["params"] == {"n": 2, "amplitude": 50.0, "seed": 1}
    assert record["inputs"]["modes"] == str(modes_dir / "modes.npz")
    assert not (tmp_path / ".conformers.partial").exists()
    assert not (tmp_path / ".conformers.old").exists()


def test_pseudoatoms_writes_model_pdb_enclosing_the_mass(tmp_path, nucleosome):
    from templearn.density import density_map

    model = read_structure(nucleosome)
    map_file = write_mrc(tmp_path / "nuc.mrc", density_map(model.coords, model.atomic_numbers,
                                                           6.0, 15.0))
    out = tmp_path / "pseudo"
    run = templearn("pseudoatoms", str(map_file), "--mass-kda", "200", "--phosphorus-fraction",
                    "0.5", "-o", str(out))
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in out.iterdir()) == ["model.pdb", "pseudoatoms.params.yml",
                                                     "versions.yml"]
    atoms = read_structure(out / "model.pdb")
    n = round(200e3 * 1.21 / 6.0**3)
    assert atoms.n_atoms == n and list(atoms.elements).count("P") == round(0.5 * n)


def test_pseudoatoms_beyond_pdb_limits_writes_model_cif(tmp_path):
    map_file = write_mrc(tmp_path / "block.mrc", Volume(np.ones((48, 48, 48), np.float32), 4.0))
    out = tmp_path / "pseudo"
    run = templearn("pseudoatoms", str(map_file), "--threshold", "0.5", "-o", str(out))
    assert run.returncode == 0, run.stderr
    assert (out / "model.cif").exists() and not (out / "model.pdb").exists()
    assert read_structure(out / "model.cif").n_atoms == 48**3


@pytest.fixture(scope="module")
def sample_files(molecules, tmp_path_factory):  # noqa: F811
    """A packed sample as files: molecules.star naming its maps relative to itself."""
    table, grid, maps, _ = packed_sample(molecules)
    root = tmp_path_factory.mktemp("sample")
    (root / "maps").mkdir()
    for key, volume in maps.items():
        write_mrc(root / "maps" / f"{key}.mrc", volume)
    table[star.MAP_FILE] = [f"maps/{key}.mrc" for key in table[star.MAP_FILE]]
    write_molecules(root / "molecules.star", table, grid)
    maps = {f"maps/{key}.mrc": volume for key, volume in maps.items()}
    return root / "molecules.star", table, grid, maps


def test_labels_cli_equals_painting_on_the_requested_grid(tmp_path, sample_files):
    path, table, grid, maps = sample_files
    out = tmp_path / "labels"
    # Run elsewhere: the map paths resolve beside molecules.star.
    run = templearn("labels", str(path), "--shape", "80,80,48", "--voxel-size", str(VOXEL / 2),
                    "--name", "tomo7", "-o", str(out), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    target = Grid((48, 80, 80), VOXEL / 2)
    labels = read_mrc(out / "labels.mrc")
    assert labels.voxel_size == pytest.approx(VOXEL / 2)
    np.testing.assert_array_equal(labels.data, paint_labels(table, grid, target, maps))
    targets = star.read_star(out / "targets.star")
    expected = targets_table(table, grid, target, "tomo7")
    assert len(targets) == len(expected) > 0
    assert set(targets[star.TOMO_NAME]) == {"tomo7"}
    np.testing.assert_allclose(targets[list(star.COORDINATES)].to_numpy(),
                               expected[list(star.COORDINATES)].to_numpy())


def test_labels_sphere_radius_per_class(tmp_path, sample_files):
    path, table, grid, _ = sample_files
    out = tmp_path / "labels"
    run = templearn("labels", str(path), "--mode", "sphere", "--radius", "tclass=24",
                    "-o", str(out))
    assert run.returncode == 0, run.stderr
    expected = paint_labels(table, grid, grid, {},
                            LabelParams(mode="sphere", radii={"tclass": 24.0}))
    np.testing.assert_array_equal(read_mrc(out / "labels.mrc").data, expected)
    smaller = paint_labels(table, grid, grid, {}, LabelParams(mode="sphere",
                                                              radii={"tclass": 16.0}))
    assert (expected > 0).sum() > (smaller > 0).sum()
    record = yaml.safe_load((out / "labels.params.yml").read_text())
    assert record["params"]["radius"] == {"tclass": 24.0}


def test_labels_name_the_distractor_class_for_training(tmp_path, sample_files):
    from templearn.stages.train import class_names_of

    path, table, grid, maps = sample_files
    out = tmp_path / "labels"
    run = templearn("labels", str(path), "--distractor-class", "-o", str(out))
    assert run.returncode == 0, run.stderr
    top = int(table[star.CLASS_ID].max())
    names = json.loads((out / "classes.json").read_text())
    assert names[str(top + 1)] == "distractor"
    labels = read_mrc(out / "labels.mrc").data
    np.testing.assert_array_equal(
        labels, paint_labels(table, grid, grid, maps, LabelParams(distractor_class=True)))
    assert (labels == top + 1).any()
    found = class_names_of([out])
    assert found[top + 1] == "distractor" and found[0] == "background"
    assert set(found.values()) == {"background", "distractor",
                                   *table[table[star.CLASS_ID] > 0]["tlClassName"]}
    plain = tmp_path / "plain"
    assert templearn("labels", str(path), "-o", str(plain)).returncode == 0
    assert not (plain / "classes.json").exists()
    assert "distractor" not in class_names_of([plain]).values()


def _bad_runs(structure: Path, modes: Path, sample: Path) -> list[tuple[tuple[str, ...], str]]:
    s, m, mol = str(structure), str(modes), str(sample)
    return [
        (("nma", s, "--modes", "0"), "--modes"),
        (("deform", s, m, "-A", "-1"), "--amplitude"),
        (("deform", s, s), "not a templearn modes file"),
        (("deform", s, str(modes.parent)), "modes.npz"),
        (("pseudoatoms", s), "not a readable MRC"),
        (("pseudoatoms", s, "--phosphorus-fraction", "1.5"), "--phosphorus-fraction"),
        (("pseudoatoms", s, "--threshold", "1", "--mass-kda", "100"), "--mass-kda"),
        (("labels", mol, "--shape", "0,0,0", "--voxel-size", "10"), "--shape"),
        (("labels", mol, "--shape", "10,10,10"), "--voxel-size"),
        (("labels", mol, "--shape", "10,10,10", "--voxel-size", "0"), "--voxel-size"),
        (("labels", mol, "--shape", "10,10", "--voxel-size", "5"), "--shape"),
        (("labels", mol, "--mode", "sphere", "--radius", "nope=10"), "nope"),
        (("labels", mol, "--radius", "tclass=-3"), "--radius"),
    ]


def test_bad_inputs_exit_2_with_one_line_and_write_nothing(tmp_path, modes_dir, nucleosome,
                                                           sample_files):
    for args, needle in _bad_runs(nucleosome, modes_dir / "modes.npz", sample_files[0]):
        out = tmp_path / args[0]
        one_line_error(templearn(*args, "-o", str(out)), needle)
        assert not out.exists(), args
        assert not (tmp_path / f".{args[0]}.partial").exists(), args


def test_modes_of_another_structure_and_missing_maps_are_named(tmp_path, modes_dir,
                                                               sample_files):
    other = tmp_path / "other.pdb"
    lines = Path(shared_file(NUCLEOSOME)).read_text().splitlines()
    atoms = [line for line in lines if line.startswith(("ATOM", "HETATM"))]
    other.write_text("\n".join(atoms[: len(atoms) // 2]) + "\nEND\n")
    run = templearn("deform", str(other), str(modes_dir / "modes.npz"), "-o",
                    str(tmp_path / "conf"))
    one_line_error(run, "modes.npz: ", "atoms")
    assert not (tmp_path / "conf").exists() and not (tmp_path / ".conf.partial").exists()

    _, table, grid, _ = sample_files
    moved = tmp_path / "elsewhere" / "molecules.star"
    write_molecules(moved, table, grid)  # its maps/ folder is not beside it
    one_line_error(templearn("labels", str(moved), "-o", str(tmp_path / "labels")),
                   "molecules.star: ", "not found")
    assert not (tmp_path / "labels").exists()
