"""The `templearn` command: one sub-command per pipeline stage, plus `run`, `demo`, `report`.

Stage commands are made from the stage layer's dataclasses (`templearn.cli.build`); the
stage modules import only the standard library at import time and their heavy
dependencies when they run, so `--help` is fast and the `nma` image never imports JAX.
"""

from __future__ import annotations

import errno
import importlib
import keyword
import sys

import typer

from templearn.errors import ExternalToolError, InputError

app = typer.Typer(
    name="templearn",
    help="Particle picking in cryo-ET tomograms learned from atomic templates.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

_debug = {"on": False}


def _show_version(value: bool) -> None:
    if value:
        from templearn.provenance import templearn_version

        print(f"templearn {templearn_version()}")
        raise typer.Exit()


@app.callback()
def _options(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """templearn: simulate training tomograms from templates, train a picker, pick."""
    _debug["on"] = debug


#: Stages in pipeline order (the order `templearn --help` lists them).
STAGE_NAMES = ("nma", "deform", "density", "pseudoatoms", "tetris", "labels", "randomize",
               "simulate", "reconstruct", "train", "segment", "pick", "match",
               "evaluate")
#: Stage-layer commands outside the pipeline graph (no Nextflow module, no params section).
TOOL_NAMES = ("export", "import")


def stage_module(name: str) -> str:
    """The module of a stage command (`import` is a keyword: templearn.stages.import_)."""
    return f"templearn.stages.{name}_" if keyword.iskeyword(name) else f"templearn.stages.{name}"


def _register() -> None:
    from templearn.cli.build import make_command

    for name in STAGE_NAMES:
        try:
            stage = importlib.import_module(f"templearn.stages.{name}").STAGE
        except ModuleNotFoundError:  # not yet on the stage layer
            app.command(name)(importlib.import_module(f"templearn.cli.{name}").command)
            continue
        app.command(name)(make_command(stage))
    for name in TOOL_NAMES:
        app.command(name)(make_command(importlib.import_module(stage_module(name)).STAGE))
    from templearn.cli import fetch, report, run

    app.command("fetch")(fetch.command)
    app.command("run")(run.run)
    app.command("demo")(run.demo)
    app.command("report")(report.command)


_register()


def main() -> None:
    """Entry point: bad input → one line and exit 2; an external tool's failure → exit 3."""
    try:
        app()
    except InputError as exc:
        _fail(exc, 2, f"templearn: error: {exc}")
    except ExternalToolError as exc:
        _fail(exc, 3, f"templearn: external tool failed: {exc}")
    except OSError as exc:  # unwritable output, full disk, ...
        where = f"{exc.filename}: " if exc.filename else ""
        reason = exc.strerror or str(exc)
        if exc.errno == errno.ENOSPC:
            reason = "no space left on the device"
        _fail(exc, 2, f"templearn: error: {where}{reason}")


def _fail(exc: BaseException, status: int, line: str) -> None:
    if _debug["on"]:
        raise exc
    print(line, file=sys.stderr)
    sys.exit(status)
