"""`templearn report`: one self-contained HTML page of a run directory."""

from __future__ import annotations

from pathlib import Path

import typer


def command(
    run_dir: Path = typer.Argument(..., help="Run directory (templearn run)."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="HTML file to write. Default: RUN_DIR/report.html."),
) -> None:
    """What was run, templates, a sample, tomograms with their labels, training, picks and
    F1: one HTML file with its figures embedded (opens offline, no JavaScript)."""
    from templearn.progress import log
    from templearn.report.html import build_report

    log(f"report: {build_report(run_dir, output)}")
