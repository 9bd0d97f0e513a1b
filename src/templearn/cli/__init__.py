"""The `templearn` command: one sub-command per pipeline stage.

Stage CLI modules import only Typer and the standard library at import time; each
command imports its stage's heavy dependencies when it runs, so `--help` is fast and
the `nma` image never imports JAX.
"""

from __future__ import annotations

import sys

import typer

from templearn.cli import (
    deform,
    density,
    evaluate,
    labels,
    nma,
    pick,
    pseudoatoms,
    randomize,
    reconstruct,
    segment,
    simulate,
    tetris,
    train,
)
from templearn.errors import InputError

app = typer.Typer(
    name="templearn",
    help="Particle picking in cryo-ET tomograms learned from atomic templates.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

_debug = {"on": False}


@app.callback()
def _options(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    """templearn: simulate training tomograms from templates, train a picker, pick."""
    _debug["on"] = debug


#: Stages in pipeline order (the order `templearn --help` lists them).
STAGES = (nma, deform, density, pseudoatoms, tetris, labels, randomize, simulate, reconstruct,
          train, segment, pick, evaluate)
for stage in STAGES:
    app.command(stage.__name__.rsplit(".", 1)[-1])(stage.command)


def main() -> None:
    """Entry point: bad input becomes one line on stderr and exit status 2."""
    try:
        app()
    except InputError as exc:
        if _debug["on"]:
            raise
        print(f"templearn: error: {exc}", file=sys.stderr)
        sys.exit(2)
