"""The params file of an experiment: what to find, how to simulate, train and pick.

Top-level keys are fields of `Experiment`; stage sections (`tetris:`, `train:`, ...) are
checked against that stage's Params class, so an unknown key or a bad value is an error
naming it. Files may be layered (later ones override earlier ones key by key) and single
values set with `--set section.key=value`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from templearn.errors import InputError
from templearn.stages.base import Record, option

#: Stage sections that configure every task of that stage (the runner sets inputs, seeds,
#: names and voxel sizes itself).
STAGE_SECTIONS = ("density", "tetris", "simulate", "reconstruct", "labels", "train", "segment",
                  "pick", "evaluate", "match")


@dataclass(frozen=True)
class Target(Record):
    """A molecule to find: an atomic model (made flexible by NMA) or a density map."""

    structure: str | None = option(None, "Atomic model(s): a file, a glob, pdb:ID or "
                                         "pdb:ID,ID,... (downloaded by `templearn fetch`) or "
                                         "bundled:4v5d. Several models are one class (each "
                                         "gets its own normal modes and conformers).")
    map: Path | None = option(None, "Density map, for a particle known only as a map "
                                    "(pseudo-atoms are made from it).")
    flexible: bool = option(True, "Conformers from normal modes (else the model as it is).")
    nma: dict[str, Any] = option(factory=dict, help="Options of `templearn nma`.")
    deform: dict[str, Any] = option(factory=dict, help="Options of `templearn deform`.")
    pseudoatoms: dict[str, Any] = option(factory=dict,
                                         help="Options of `templearn pseudoatoms`.")


@dataclass(frozen=True)
class Counts(Record):
    """How many simulated tomograms of each kind."""

    train: int = option(3, "Training tomograms.", minimum=1)
    validation: int = option(1, "Validation tomograms (model selection, curves).", minimum=0)
    test: int = option(2, "Held-out test tomograms (never seen in training).", minimum=0)


@dataclass(frozen=True)
class TrainingSamples(Record):
    """Changes that apply to the training and validation samples only (the paper's
    ablations): the held-out tomograms stay as the main settings make them."""

    tetris: dict[str, Any] = option(factory=dict, help="Options of `templearn tetris`.")
    distractors: bool = option(True, "Pack distractors among the targets.")
    flexible: bool = option(True, "Use the flexible conformers (else the model as it is).")
    crowding: tuple[float, float] | None = option(
        None, "Sparse to dense: LOW,HIGH spread evenly over the training (and over the "
              "validation) samples as tetris' max_protein_fraction, so that the picker also "
              "sees particles in empty ice. Default: every sample as `tetris` packs it.")

    def check(self) -> None:
        if self.crowding is not None:
            low, high = self.crowding
            if not 0 < low <= high <= 1:
                raise InputError(f"training_samples.crowding must be 0 < LOW ≤ HIGH ≤ 1, got "
                                 f"{low}, {high}")

    def crowding_at(self, i: int, n: int) -> float | None:
        """Protein fraction of sample `i` of `n` (the middle of its share of the range)."""
        if self.crowding is None:
            return None
        low, high = self.crowding
        return round(low + (high - low) * (i + 0.5) / n, 3)


@dataclass(frozen=True)
class UserTomogram(Record):
    """An experimental (or any) tomogram to pick, with optional ground truth and mask."""

    name: str = option(help="Name (a folder under picking/).")
    tomogram: Path = option(help="Tomogram (MRC) at the experiment's voxel size.")
    targets: Path | None = option(None, "Ground-truth particles (STAR) for `evaluate`.")
    mask: Path | None = option(None, "Mask (MRC): pick and evaluate only where > 0.")


@dataclass(frozen=True)
class Experiment(Record):
    """The whole experiment. Stage sections hold options of that stage's command."""

    name: str = option("experiment", "Name of the experiment.")
    voxel_size: float = option(16.0, "Voxel size of maps, samples and tomograms (Å).")
    seed: int = option(0, "Base seed; every stochastic task derives its own from it.")
    targets: dict[str, Any] = option(factory=dict,
                                     help="Molecules to find: NAME → target settings.")
    distractors: tuple[str, ...] = option(("bundled:distractors",),
                                          "Distractor models: files, globs, pdb:ID, "
                                          "bundled:distractors.")
    samples: dict[str, Any] = option(
        factory=dict, help="Numbers of train / validation / test tomograms.")
    acquisitions: dict[str, Any] = option(
        factory=dict, help="Acquisition tables: train and test, each options of `templearn "
                           "randomize`.")
    training_samples: dict[str, Any] = option(
        factory=dict, help="Changes for the training and validation samples only: tetris "
                           "options, distractors: false, flexible: false (ablations).")
    tomograms: tuple[dict[str, Any], ...] = option((), "Your own tomograms to pick.")
    density: dict[str, Any] = option(factory=dict, help="Options of `templearn density`.")
    tetris: dict[str, Any] = option(factory=dict, help="Options of `templearn tetris`.")
    simulate: dict[str, Any] = option(factory=dict, help="Options of `templearn simulate`.")
    reconstruct: dict[str, Any] = option(factory=dict,
                                         help="Options of `templearn reconstruct`.")
    labels: dict[str, Any] = option(factory=dict, help="Options of `templearn labels`.")
    train: dict[str, Any] = option(factory=dict, help="Options of `templearn train`.")
    segment: dict[str, Any] = option(factory=dict, help="Options of `templearn segment`.")
    pick: dict[str, Any] = option(factory=dict, help="Options of `templearn pick`.")
    evaluate: dict[str, Any] = option(factory=dict, help="Options of `templearn evaluate`.")
    match: dict[str, Any] = option(
        factory=dict, help="Options of `templearn match`: template matching, the baseline, "
                           "of the first target on every picked tomogram, evaluated like the "
                           "trained picker's picks. Empty (the default): no matching; any "
                           "option turns it on (e.g. {angular_step: 15}; {angular_step: 7} "
                           "for every default).")
    confirm_picks: bool = option(
        False, "Keep only the trained picker's picks that the first target's template "
               "matches better than noise can (`pick --confirm`; runs the `match` section's "
               "search on every picked tomogram, 7° unless it sets angular_step; "
               "docs/transfer.md, finding 14).")

    def stage_params(self, stage: str, **fixed: Any) -> Any:
        """The Params of `stage` from its section, with `fixed` values set by the runner."""
        return stage_params(stage, {**getattr(self, stage), **fixed})

    def target_settings(self) -> dict[str, Target]:
        if not self.targets:
            raise InputError("targets: give at least one molecule to find")
        found = {name: Target.from_mapping(value, where=f"targets.{name}")
                 for name, value in self.targets.items()}
        for name, target in found.items():
            if (target.structure is None) == (target.map is None):
                raise InputError(f"targets.{name}: give either structure or map")
        return found

    def matching(self) -> bool:
        """Whether template matching runs: the `match` section sets at least one option, or
        the picks are confirmed by the template."""
        return bool(self.match) or self.confirm_picks

    def counts(self) -> Counts:
        return Counts.from_mapping(self.samples, where="samples")

    def training_changes(self) -> TrainingSamples:
        changes = TrainingSamples.from_mapping(self.training_samples,
                                               where="training_samples")
        self.stage_params("tetris", **changes.tetris)
        return changes

    def user_tomograms(self) -> list[UserTomogram]:
        return [UserTomogram.from_mapping(t, where=f"tomograms[{i}]")
                for i, t in enumerate(self.tomograms)]

    def check(self) -> None:
        """Check every section now, before any task runs."""
        if self.voxel_size <= 0:
            raise InputError(f"voxel_size must be positive, got {self.voxel_size}")
        self.target_settings()
        self.counts()
        self.training_changes()
        self.user_tomograms()
        unknown = set(self.acquisitions) - {"train", "test"}
        if unknown:
            raise InputError(f"acquisitions.{sorted(unknown)[0]}: unknown key (known: train, "
                             "test)")
        for kind in ("train", "test"):
            stage_params("randomize", self.acquisitions.get(kind, {}), f"acquisitions.{kind}")
        for stage in STAGE_SECTIONS:
            self.stage_params(stage)
        self.check_halves()
        if self.confirm_picks and len(self.targets) > 1:
            raise InputError("confirm_picks: true checks every pick against the first "
                             "target's template only; give one target, or set it false")

    def check_halves(self) -> None:
        """Half tomograms (`templearn.halves`): a normalisation that measures the noise
        between them (`train --normalise whiten-noise` or `whiten-snr`) needs
        `reconstruct.halves`, and a run that makes them picks with them (`pick --halves`),
        so then the user's tomograms need their halves beside them too."""
        from templearn.halves import require_halves

        train = self.stage_params("train")
        halves = self.stage_params("reconstruct").halves
        if train.normalisation().needs_halves and not halves:
            raise InputError(f"train.normalise {train.normalise} needs reconstruct.halves: "
                             "true (the noise is measured between the half tomograms)")
        if halves:
            for i, tomogram in enumerate(self.user_tomograms()):
                require_halves(tomogram.tomogram, f"tomograms[{i}] (reconstruct.halves: "
                                                  "true checks picks against them; set it "
                                                  "false if you have none) ")


def stage_params(stage: str, section: Mapping[str, Any], where: str = "") -> Any:
    """The Params of `stage` from a params-file section; errors name `where.stage.key`."""
    params = importlib.import_module(f"templearn.stages.{stage}").STAGE.params
    return params.from_mapping(section, where=f"{where}.{stage}" if where else stage)


def merge(base: Mapping[str, Any], layer: Mapping[str, Any]) -> dict[str, Any]:
    """`layer` over `base`, mappings merged key by key, other values replaced."""
    out = dict(base)
    for key, value in layer.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def read_yaml(path: Path) -> dict[str, Any]:
    """A params file as a mapping; InputError naming the file otherwise."""
    if not path.is_file():
        raise InputError("no such params file", path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InputError(f"not valid YAML ({str(exc).splitlines()[0]})", path) from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise InputError("expected a mapping of keys at the top level", path)
    return dict(data)


def apply_set(data: dict[str, Any], assignment: str) -> dict[str, Any]:
    """`section.key=value` (value parsed as YAML) over `data`."""
    key, sep, text = assignment.partition("=")
    if not sep or not key:
        raise InputError(f"--set expects KEY=VALUE, got {assignment!r}")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = text
    layer: dict[str, Any] = {}
    node = layer
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return merge(data, layer)


def load_experiment(files: list[Path], assignments: list[str] = ()) -> tuple[Experiment,
                                                                             dict[str, Any]]:
    """The experiment from layered params files and --set values, checked; and its data."""
    if not files:
        raise InputError("give a params file")
    data: dict[str, Any] = {}
    for path in files:
        data = merge(data, read_yaml(path))
    for assignment in assignments:
        data = apply_set(data, assignment)
    experiment = Experiment.from_mapping(data)
    experiment.check()
    return experiment, data
