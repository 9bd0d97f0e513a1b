"""The pipeline's modules (modules/local/<stage>/main.nf) as data, and what stages write."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from templearn import star
from templearn.stages import (
    deform,
    evaluate,
    labels,
    match,
    nma,
    pick,
    pseudoatoms,
    randomize,
    reconstruct,
    segment,
    train,
)
from templearn.tiltseries import ANGLES_NAME, META_NAME, STACK_NAME

ROOT = Path(__file__).resolve().parents[2]

#: Files (and folders) each stage writes into its output directory, besides versions.yml
#: and <stage>.params.yml; `model` stands for a structure's stem, `ribosome` for a class.
WRITTEN = {
    "nma": [nma.MODES],
    "deform": [*deform.conformer_names("model", 2, ".pdb"), deform.TABLE],
    "density": ["model.mrc", star.MAPS_INDEX],
    "pseudoatoms": [f"{pseudoatoms.MODEL}.pdb"],
    "randomize": [randomize.TABLE],
    "tetris": ["molecules.star", "instances.mrc", "density.mrc", "slices.png"],
    "simulate": [STACK_NAME, ANGLES_NAME, META_NAME],
    "reconstruct": [reconstruct.TOMOGRAM],
    "labels": [labels.LABELS, labels.TARGETS],
    "train": [train.MODEL, train.LOG, train.CURVES, train.VALIDATION_PICKS],
    "segment": [segment.LABELS, segment.CLASSES, segment.SCORES.format("ribosome")],
    "pick": [pick.PICKS],
    "match": [match.SCORES, match.ANGLES, match.ANGLES_TABLE, match.PICKS],
    "evaluate": [evaluate.METRICS, evaluate.CURVE],
}


@dataclasses.dataclass(frozen=True)
class Output:
    pattern: str  # e.g. ${prefix}/modes.npz
    emit: str


@dataclasses.dataclass(frozen=True)
class Module:
    stage: str
    name: str
    directives: dict[str, list[str]]
    inputs: list[list[str]]  # each input channel's element names
    outputs: list[Output]
    script: str
    stub: str


SECTION = re.compile(r"^    (input|output|script|stub):\s*$", re.M)


def read_module(stage: str) -> Module:
    """Parse modules/local/<stage>/main.nf: one process in the nf-core layout."""
    text = (ROOT / "modules" / "local" / stage / "main.nf").read_text()
    match = re.fullmatch(r"process (\w+) \{\n(.*)\n\}\n", text, re.S)
    if match is None:
        raise ValueError(f"{stage}: expected one process block")
    name, body = match.groups()
    head, *parts = SECTION.split(body)
    sections = dict(zip(parts[::2], parts[1::2], strict=True))
    directives: dict[str, list[str]] = {}
    for line in head.strip().splitlines():
        key, _, value = line.strip().partition(" ")
        directives.setdefault(key, []).append(value.strip("'\""))

    def declarations(section: str) -> list[str]:
        return [line.strip() for line in sections[section].splitlines()
                if line.strip() and not line.strip().startswith("//")]

    inputs = [re.findall(r"(?:val|path)[ (](\w+)", line) for line in declarations("input")]
    outputs = [Output(re.search(r'path[ (]"([^"]+)"', line)[1],  # type: ignore[index]
                      re.search(r"emit: (\w+)", line)[1])  # type: ignore[index]
               for line in declarations("output")]
    return Module(stage, name, directives, inputs, outputs, sections["script"],
                  sections["stub"])


def expand_braces(pattern: str) -> list[str]:
    """A Nextflow glob's {a,b} alternatives as separate globs."""
    match = re.search(r"\{([^{}]*)\}", pattern)
    if match is None:
        return [pattern]
    return [expanded for choice in match[1].split(",")
            for expanded in expand_braces(pattern[:match.start()] + choice
                                          + pattern[match.end():])]
