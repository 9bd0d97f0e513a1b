"""`templearn run` and `templearn demo`: a whole experiment from a params file."""

from __future__ import annotations

import os
from pathlib import Path

import typer


def _jobs_default() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run(
    params: list[Path] = typer.Argument(
        ..., help="Params file(s) (YAML); later files override earlier ones key by key."),
    output_dir: Path | None = typer.Option(
        None, "--output-dir", "-o", help="Run directory. Default: ./<experiment name>."),
    set_values: list[str] = typer.Option(
        [], "--set", help="Override one value: SECTION.KEY=VALUE (YAML), e.g. "
                          "train.epochs=4; repeatable."),
    jobs: int = typer.Option(_jobs_default(), "--jobs", "-j",
                             help="Tasks run at the same time. Default: the cores."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the task graph and stop."),
    report: bool = typer.Option(True, help="Write RUN/report.html at the end."),
    containers: str | None = typer.Option(
        None, "--containers", help="Run each task in its stage's image with this engine: "
                                   "podman or docker (images: bin/build-images)."),
    registry: str = typer.Option("", "--registry",
                                 help="With --containers: the images' tag prefix, e.g. "
                                      "ghcr.io/lab. Default: the locally built images."),
    gpu: bool = typer.Option(False, "--gpu", help="With --containers: train and segment in "
                                                  "the unet-cuda image; GPUs for GPU images."),
) -> None:
    """Run a Template Learning experiment end to end: templates → maps → simulated
    tomograms → training → picks → evaluation → report. A rerun skips finished tasks whose
    parameters and inputs are unchanged."""
    from templearn.pipeline.containers import launcher_for
    from templearn.pipeline.run import run_experiment

    run_experiment(params, output_dir, set_values, jobs, dry_run, report,
                   launcher_for(containers, registry, gpu))


def demo(
    output_dir: Path = typer.Option(Path("templearn-demo"), "--output-dir", "-o",
                                    help="Run directory."),
    set_values: list[str] = typer.Option([], "--set", help="Override a value (as in run)."),
    jobs: int = typer.Option(_jobs_default(), "--jobs", "-j", help="Tasks at the same time."),
) -> None:
    """The demo: a 70S-ribosome picker learned from the bundled atomic models (PDB 4v5d and
    real distractor proteins), tested on held-out simulated tomograms; ends with picks,
    their F1 and the report (about 10-15 minutes on 2 CPU cores)."""
    from templearn.pipeline.run import bundled_params, run_experiment

    run_experiment([bundled_params("demo")], output_dir, set_values, jobs, False, True)
