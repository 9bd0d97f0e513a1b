"""The `tetris`, `simulate` and `reconstruct` stages as users meet them: bad input is one
line and exit status 2 before any work, an external tool's failure is exit status 3 naming
its log, a rerun replaces the output folder whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from templearn import star
from templearn.mrc import read_mrc
from templearn.sample import CLASS_NAME, Grid, write_molecules
from tests.test_cli import one_line_error, synthetic_maps  # noqa: F401  (fixture)

HEADER = "name\tdefocus_um\tdose_total\ttilt_min\ttilt_max\ttilt_step\n"
#: A cheap acquisition: five tilts.
FEW_TILTS = HEADER + "few\t-3\t100\t-30\t30\t15\n"


def templearn(*args: str, env: dict | None = None, cwd: Path | None = None
              ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from templearn.cli import main; main()", *args],
                          capture_output=True, text=True, cwd=cwd,
                          env=None if env is None else {**os.environ, **env})


def external_failure(run: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit status 3 and one last line naming the failed tool; the log path it names."""
    assert run.returncode == 3, run.stderr
    assert "Traceback" not in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("templearn: external tool failed: "), run.stderr
    for needle in needles:
        assert needle in last, last
    return last.rsplit("(log: ", 1)[1].rstrip(")")


def one_molecule_sample(path: Path, synthetic_maps: Path,  # noqa: F811
                        position: tuple[float, float, float] | None = None) -> Path:
    """molecules.star of one synthetic template in a 24×24×16 sample at 16 Å (centred
    unless `position`, Å, says otherwise)."""
    grid = Grid((16, 24, 24), 16.0)
    xyz = grid.centre_angst if position is None else np.asarray(position, float)
    table = pd.DataFrame({
        star.TOMO_NAME: ["s"], star.MOLECULE_NAME: ["templates_60"],
        star.MOLECULE_CLASS: ["template"], CLASS_NAME: ["L"], star.CLASS_ID: [1],
        star.MAP_FILE: [str(synthetic_maps / "templates" / "templates_60.mrc")],
        star.STRUCTURE_FILE: [str(synthetic_maps / "pdb" / "templates_60.cif")],
        **{c: [xyz[a]] for a, c in enumerate(star.POSITION_ANGST)},
        **{c: [10.0 * (a + 1)] for a, c in enumerate(star.ANGLES)},
        star.MASS_DA: [1e5], star.INSTANCE_ID: [1]})
    return write_molecules(path, table, grid)


def no_output(out: Path) -> None:
    """Neither the output nor its hidden work directory exists."""
    assert not out.exists()
    assert not (out.parent / f".{out.name}.partial").exists()


# tetris -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "needle"), [
    (["--ratio", "1:-2"], "--ratio"),
    (["--ratio", "0:0"], "--ratio"),
    (["--shape", "40,40"], "--shape"),
    (["--band", "1,-1"], "--band"),
    (["--max-protein-fraction", "2"], "--max-protein-fraction"),
    (["--mask", "sphere"], "--mask"),
])
def test_tetris_bad_options_are_one_line_before_any_work(tmp_path, synthetic_maps,  # noqa: F811
                                                         args, needle):
    out = tmp_path / "sample"
    run = templearn("tetris", "-t", f"L={synthetic_maps / 'templates'}", *args, "-o", str(out))
    one_line_error(run, needle)
    no_output(out)


def test_tetris_needs_name_equals_maps_and_existing_maps(tmp_path, synthetic_maps):  # noqa: F811
    out = tmp_path / "sample"
    one_line_error(templearn("tetris", "-t", str(synthetic_maps / "templates"), "-o", str(out)),
                   "--template", "NAME=VALUE")
    one_line_error(templearn("tetris", "-t", f"L={tmp_path / 'none*.mrc'}", "-o", str(out)),
                   "--template", "names no .mrc files")
    no_output(out)


@pytest.mark.slow
def test_tetris_rerun_with_other_parameters_replaces_the_folder(tmp_path,
                                                                synthetic_maps):  # noqa: F811
    out = tmp_path / "sample"
    common = ("-t", f"L={synthetic_maps / 'templates'}", "-d", str(synthetic_maps / "distractors"))
    run = templearn("tetris", *common, "--shape", "40,40,24", "--seed", "3", "-o", str(out))
    assert run.returncode == 0, run.stderr
    first = len(star.read_star(out / "molecules.star"))
    (out / "notes.txt").write_text("left by the earlier run\n")

    again = ("--shape", "32x32x24", "--seed", "5", "--max-molecules", "6", "--ratio", "1:1")
    run = templearn("tetris", *common, *again, "-o", str(out))
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "density.mrc", "instances.mrc", "molecules.star", "slices.png", "tetris.params.yml",
        "versions.yml"]
    table = star.read_star(out / "molecules.star")
    instances = read_mrc(out / "instances.mrc").data
    assert len(table) == 6 != first and instances.shape == (24, 32, 32)
    assert list(table[star.INSTANCE_ID]) == list(range(1, 7))
    assert sorted(set(np.unique(instances)) - {0}) == list(range(1, 7))
    record = yaml.safe_load((out / "tetris.params.yml").read_text())
    assert record["params"]["seed"] == 5 and record["params"]["shape"] == [32, 32, 24]
    assert record["result"].startswith("6 molecules")
    # Identical runs leave identical records: timing is logged, not recorded.
    twin = tmp_path / "twin"
    run = templearn("tetris", *common, *again, "-o", str(twin))
    assert run.returncode == 0, run.stderr
    assert " s (" in run.stderr  # the timing line
    assert (twin / "tetris.params.yml").read_bytes() == (out / "tetris.params.yml").read_bytes()
    for name in ("instances.mrc", "density.mrc"):  # (their headers hold a creation time)
        np.testing.assert_array_equal(read_mrc(twin / name).data, read_mrc(out / name).data)
    pd.testing.assert_frame_equal(star.read_star(twin / "molecules.star"), table)


# simulate ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("table", "needles"), [
    (HEADER + "a\t-3\t100\t-60\t60\t2\nb\t-3\t\t-60\t60\t2\n",
     ("acq.tsv", "row 1", "column dose_total", "missing")),
    (HEADER + "a\t-3\t100\t-60\t60\t2\nb\t-3\t100\n", ("acq.tsv", "row 1", "tilt_min")),
    (HEADER + "a\t-3\t100\t-60\t60\t0\n", ("acq.tsv", "row 0", "tilt_step")),
    (HEADER + "a\t-3\tmuch\t-60\t60\t2\n", ("acq.tsv", "row 0", "dose_total", "not a number")),
    (HEADER.replace("dose_total\t", "") + "a\t-3\t-60\t60\t2\n", ("acq.tsv", "dose_total")),
])
def test_simulate_rejects_incomplete_acquisition_rows(tmp_path, synthetic_maps,  # noqa: F811
                                                      table, needles):
    molecules = one_molecule_sample(tmp_path / "molecules.star", synthetic_maps)
    (tmp_path / "acq.tsv").write_text(table)
    out = tmp_path / "ts"
    run = templearn("simulate", str(molecules), "-a", str(tmp_path / "acq.tsv"), "-o", str(out))
    one_line_error(run, *needles)
    no_output(out)


def test_simulate_rejects_a_molecule_outside_the_sample(tmp_path, synthetic_maps):  # noqa: F811
    molecules = one_molecule_sample(tmp_path / "molecules.star", synthetic_maps,
                                    position=(100.0, 1e9, 50.0))
    out = tmp_path / "ts"
    one_line_error(templearn("simulate", str(molecules), "-o", str(out)),
                   "molecules.star", "outside", "1e+09")
    no_output(out)


def test_simulate_wants_the_table_file_and_valid_options(tmp_path, synthetic_maps):  # noqa: F811
    molecules = one_molecule_sample(tmp_path / "molecules.star", synthetic_maps)
    (tmp_path / "acq").mkdir()
    (tmp_path / "acq" / "acquisitions.tsv").write_text(FEW_TILTS)
    out = tmp_path / "ts"
    one_line_error(templearn("simulate", str(molecules), "-a", str(tmp_path / "acq"),
                             "-o", str(out)), "acquisitions.tsv in it")
    for args, needle in ((["--seed", "-1"], "--seed"), (["--backend", "slow"], "--backend"),
                         (["--backend", "parakeet", "--ideal"], "only for --backend fast"),
                         (["--fiducials", "-2"], "--fiducials")):
        one_line_error(templearn("simulate", str(molecules), *args, "-o", str(out)), needle)
    no_output(out)


@pytest.mark.slow
def test_simulate_then_reconstruct_a_small_sample(tmp_path, synthetic_maps):  # noqa: F811
    molecules = one_molecule_sample(tmp_path / "molecules.star", synthetic_maps)
    (tmp_path / "acq.tsv").write_text(FEW_TILTS)
    out = tmp_path / "ts"
    run = templearn("simulate", str(molecules), "-a", str(tmp_path / "acq.tsv"), "-o", str(out))
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "meta.json", "simulate.params.yml", "tiltseries.mrc", "tiltseries.tlt", "versions.yml"]
    assert not (tmp_path / ".ts.partial").exists()
    versions = (out / "versions.yml").read_text()
    assert "jax" in versions and "parakeet" not in versions  # the fast backend's packages
    meta_text = (out / "meta.json").read_text()
    assert ".partial" not in meta_text and json.loads(meta_text)["acquisition"]["name"] == "few"
    assert read_mrc(out / "tiltseries.mrc").data.shape == (5, 24, 24)

    tomo = tmp_path / "tomo"
    run = templearn("reconstruct", str(out / "tiltseries.mrc"), "-o", str(tomo))
    assert run.returncode == 0, run.stderr
    tomogram = read_mrc(tomo / "tomogram.mrc").data
    assert tomogram.shape == (16, 24, 24)
    assert sorted(p.name for p in tomo.glob("*.mrc")) == ["tomogram.mrc"]

    # --halves: two more tomograms from alternate tilts, sharing the particle, not the noise
    halves = tmp_path / "halves"
    run = templearn("reconstruct", "--halves", str(out / "tiltseries.mrc"), "-o", str(halves))
    assert run.returncode == 0, run.stderr
    np.testing.assert_array_equal(read_mrc(halves / "tomogram.mrc").data, tomogram)
    even, odd = (read_mrc(halves / f"tomogram_{h}.mrc").data for h in ("even", "odd"))
    assert even.shape == odd.shape == tomogram.shape
    corr = [np.corrcoef(v.ravel(), tomogram.ravel())[0, 1] for v in (even, odd, even + odd)]
    assert corr[2] > 0.999 and max(corr[:2]) < 0.95  # WBP is linear in the views


FAKE_PARAKEET = {
    "__init__.py": "",
    "io.py": "",
    "simulate.py": "",
    "sample.py": ("from pathlib import Path\n\n"
                  "def new(config, path):\n"
                  "    Path('fftwf_2d.wisdom').write_text('MULTEM wisdom')\n"
                  "    raise RuntimeError('MULTEM crashed')\n"),
}


def test_a_parakeet_failure_is_exit_3_naming_its_log(tmp_path, synthetic_maps,  # noqa: F811
                                                     monkeypatch, capsys):
    """A Parakeet step that fails (a fake Parakeet that writes MULTEM's FFTW wisdom into its
    current directory, then crashes): exit status 3 naming parakeet.log, the work directory
    kept for the next run, the wisdom file inside it and not in the current directory."""
    from templearn.cli import main
    from templearn.simulate import multislice

    fake = tmp_path / "fake"
    (fake / "parakeet").mkdir(parents=True)
    for name, text in FAKE_PARAKEET.items():
        (fake / "parakeet" / name).write_text(text)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(fake), *sys.path]))
    monkeypatch.setattr(multislice, "check_parakeet", lambda: None)
    molecules = one_molecule_sample(tmp_path / "molecules.star", synthetic_maps)
    (tmp_path / "acq.tsv").write_text(FEW_TILTS)
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    out = tmp_path / "ts"
    argv = ["templearn", "simulate", str(molecules), "-a", str(tmp_path / "acq.tsv"),
            "--backend", "parakeet", "-o", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    for attempt in (1, 2):
        with pytest.raises(SystemExit) as exit_status:
            main()
        assert exit_status.value.code == 3
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert last.startswith("templearn: external tool failed: Parakeet failed in its "
                               "sample step"), last
        log = Path(last.rsplit("(log: ", 1)[1].rstrip(")"))
        work = tmp_path / ".ts.partial" / "parakeet"
        assert log == work / "parakeet.log"
        assert "MULTEM crashed" in log.read_text()
        # The second, identical run reused the kept work directory (one log, two runs).
        assert log.read_text().count("### ") == attempt
    assert (work / "fftwf_2d.wisdom").exists()
    assert list(here.iterdir()) == [] and not out.exists()


# reconstruct ------------------------------------------------------------------------------

def test_an_imod_failure_is_exit_3_naming_its_log(tmp_path):
    from templearn.tiltseries import write_tilt_series
    from tests.test_reconstruct import fake_imod, small_series

    stack = write_tilt_series(tmp_path / "sim", small_series())
    fake_imod(tmp_path / "bin", tmp_path / "ran_in.txt")
    here = tmp_path / "here"
    here.mkdir()
    out = tmp_path / "rec"
    run = templearn("reconstruct", str(stack), "--backend", "imod", "-o", str(out),
                    env={"PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"},
                    cwd=here)
    log = Path(external_failure(run, "IMOD tilt failed (exit status 1)", "cannot allocate"))
    try:
        assert "-InputProjections" in log.read_text()
    finally:
        log.unlink()
    ran_in = Path((tmp_path / "ran_in.txt").read_text().strip())
    assert ran_in != here and not ran_in.exists()  # a temporary directory, since removed
    assert list(here.iterdir()) == []
    no_output(out)
