"""`templearn run`: params files → task graph → runner → results table → report."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from templearn.errors import InputError
from templearn.files import atomic_write_text
from templearn.pipeline.experiment import load_experiment
from templearn.pipeline.graph import build_tasks
from templearn.pipeline.runner import Launcher, run_graph
from templearn.pipeline.runner import dry_run as describe
from templearn.progress import log

RUN_FILE = "run.yaml"


def bundled_params(name: str) -> Path:
    """A params file shipped with templearn (`params/<name>.yaml`)."""
    path = Path(str(resources.files("templearn") / "params" / f"{name}.yaml"))
    if not path.is_file():
        raise InputError(f"no bundled params file {name}.yaml")
    return path


def run_experiment(files: list[Path], output_dir: Path | None, assignments: list[str],
                   jobs: int, dry_run: bool, report: bool,
                   launcher: Launcher | None = None) -> Path:
    """Check the experiment, then run (or describe) it, each task started by `launcher`
    (default: here); the run directory."""
    if jobs < 1:
        raise InputError(f"--jobs must be at least 1, got {jobs}")
    experiment, data = load_experiment(files, assignments)
    run_dir = (output_dir or Path(experiment.name)).resolve()
    if run_dir.exists() and not run_dir.is_dir():
        raise InputError("exists and is not a directory", run_dir)
    tasks = build_tasks(experiment, run_dir)
    if dry_run:
        print("\n".join(describe(tasks, run_dir)))
        return run_dir
    if launcher is not None:
        launcher.check(tasks)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / RUN_FILE, yaml.safe_dump(data, sort_keys=False,
                                                         allow_unicode=True))
    log(f"run: {len(tasks)} tasks of {experiment.name!r} in {run_dir} ({jobs} at a time)")
    try:
        run_graph(tasks, run_dir, jobs, launcher)
    finally:
        if report:
            _report(run_dir)
    for line in results_table(run_dir):
        log(line)
    return run_dir


def _report(run_dir: Path) -> None:
    from templearn.report.html import build_report

    try:
        path = build_report(run_dir)
    except InputError as exc:  # nothing to show yet
        log(f"run: no report ({exc})")
        return
    log(f"run: report -> {path}")


def results_table(run_dir: Path) -> list[str]:
    """Per evaluated tomogram and class, the trained picker's precision, recall and F1
    (with all picks and at P = R), and template matching's when it ran."""
    from templearn.report.compare import summary_lines

    try:
        return summary_lines(run_dir)
    except InputError:  # no stage output at all
        return []
