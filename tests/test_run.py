"""`templearn run` end to end on the tiny params file: outputs, resume after kills, report."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from templearn.pipeline.run import bundled_params

pytestmark = pytest.mark.slow

#: Files that legitimately differ between runs: logs, timings, the report, checkpoints.
SKIPPED = ("logs", "tasks.json", "report.html", "checkpoints", "model")


def run_tiny(out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "templearn", "run",
                             str(bundled_params("test")), "-o", str(out), "--no-report",
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference") / "run"
    process = run_tiny(out)
    output, _ = process.communicate(timeout=900)
    assert process.returncode == 0, output
    return out


def outputs(run_dir: Path) -> dict[str, Path]:
    """Every output file of the run's tasks, by path relative to the run directory."""
    found = {}
    for path in sorted(run_dir.rglob("*")):
        relative = path.relative_to(run_dir)
        if path.is_file() and not any(part.startswith(".") or part in SKIPPED
                                      for part in relative.parts):
            found[str(relative)] = path
    return found


def comparable(path: Path, run_dir: Path):
    """A file's content with what must differ between two run directories removed."""
    if path.suffix == ".mrc":
        from templearn.mrc import read_mrc

        volume = read_mrc(path)
        return volume.data.tobytes(), round(volume.voxel_size, 6)
    if path.suffix == ".npz":
        with np.load(path) as data:
            return {k: data[k].tobytes() for k in data.files}
    if path.suffix == ".png":
        return "png"  # drawn from the compared data; matplotlib embeds no timestamps here
    text = path.read_text().replace(str(run_dir), "RUN")
    if path.name == "training_log.csv":  # wall-clock seconds per epoch
        rows = [line.split(",") for line in text.splitlines()]
        column = rows[0].index("seconds")
        return [row[:column] + row[column + 1:] for row in rows]
    if path.suffix == ".star":  # starfile stamps the writing time in a comment
        return [line for line in text.splitlines() if not line.startswith("#")]
    # fingerprints hash input paths, which name the run directory
    return [line for line in text.splitlines() if not line.startswith("fingerprint:")]


def test_tiny_run_makes_every_output(reference_run):
    tasks = json.loads((reference_run / "tasks.json").read_text())
    assert {t["status"] for t in tasks} == {"done"}
    assert len(tasks) == 24
    stages = {t["stage"] for t in tasks}
    assert stages == {"nma", "deform", "density", "randomize", "tetris", "simulate",
                      "reconstruct", "labels", "train", "segment", "pick", "evaluate", "match"}
    order = [t["name"] for t in tasks]  # the picks are confirmed by the search before them
    assert order.index("picking/test0/match") < order.index("picking/test0/picks")
    picked = (reference_run / "picking/test0/picks/pick.params.yml").read_text()
    assert "confirm_false_alarms" in picked
    assert (reference_run / "picking/test0/match/levels.json").is_file()
    for task in tasks:
        record = reference_run / task["out"] / f"{task['stage']}.params.yml"
        assert record.is_file(), task["name"]
        assert task["command"][:2] == ["templearn", task["stage"]]
    metrics = json.loads((reference_run / "picking/test0/evaluation/metrics.json").read_text())
    assert metrics["classes"]["proteasome"]["n_true"] > 0


def test_killed_run_resumes_to_identical_outputs(reference_run, tmp_path):
    """Kill the whole run (runner and its tasks) at random moments, rerun until done: the
    outputs equal those of the uninterrupted run."""
    out = tmp_path / "run"
    rng = random.Random(12)
    for _ in range(3):
        process = run_tiny(out)
        time.sleep(rng.uniform(3, 40))
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    process = run_tiny(out)
    output, _ = process.communicate(timeout=900)
    assert process.returncode == 0, output
    assert "skipped" in output  # the rerun kept finished tasks
    mine, reference = outputs(out), outputs(reference_run)
    assert sorted(mine) == sorted(reference)
    for name, path in reference.items():
        assert comparable(mine[name], out) == comparable(path, reference_run), name
    hidden = list(out.rglob(".*"))  # no work directory, lock or replaced folder is left
    assert not hidden, hidden


def test_a_change_reruns_only_what_depends_on_it(reference_run):
    def rerun(*extra: str) -> set[str]:
        process = run_tiny(reference_run, *extra)
        output, _ = process.communicate(timeout=600)
        assert process.returncode == 0, output
        tasks = json.loads((reference_run / "tasks.json").read_text())
        return {t["name"] for t in tasks if t["status"] == "done"}

    assert rerun() == set()
    picking = {"picking/test0/picks", "picking/test0/evaluation"}
    matching = {"picking/test0/match", "picking/test0/match-evaluation"}
    # the search takes the pick radius, so it runs again too, and the picks after it
    assert rerun("--set", 'pick.radius=["4"]') == picking | matching
    assert rerun() == picking | matching  # back again
    assert rerun("--set", "confirm_picks=false") == picking  # the same search, unconfirmed
    metrics = json.loads((reference_run / "picking/test0/match-evaluation/metrics.json")
                         .read_text())
    assert metrics["sweep"] == "score" and metrics["classes"]["proteasome"]["n_picks"] > 0
