"""An experiment as a graph of tasks, each one `templearn <stage>` command line.

Task outputs live under the run directory at fixed places:
`structures/<target>/{pseudoatoms,nma,conformers,maps}`, `structures/distractors/maps`,
`acquisitions/{train,test}`, `tomograms/<name>/{sample,tilt,tomo,labels}` for train*,
val* and test* tomograms, `training`, and `picking/<name>/{segment,picks,evaluation}` for
the held-out and the user's tomograms, with `picking/<name>/{match,match-evaluation}`
(template matching, the baseline) when the experiment's `match` section is set. A task's
inputs are resolved when it starts (after its dependencies), because some of them
(conformer files, maps) exist only then.
"""

from __future__ import annotations

import dataclasses
import glob
import importlib
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from templearn.errors import InputError
from templearn.pipeline.experiment import Experiment, Target, stage_params
from templearn.stages.base import Record, Stage, StageParams, base_type, flag_name
from templearn.stages.pick import parse_radii
from templearn.structure import structure_stem

#: Seed offsets of the tomogram kinds, so that no two tomograms share a sample or noise.
SEED_OFFSETS = {"train": 0, "val": 100, "test": 200}


@dataclass
class Task:
    """One stage run: its output folder (relative to the run directory) is its name."""

    name: str
    stage: str
    params: StageParams
    make_inputs: Callable[[], Record]
    deps: tuple[str, ...] = ()

    def module(self) -> Any:
        return importlib.import_module(f"templearn.stages.{self.stage}")

    def argv(self, run_dir: Path) -> list[str]:
        """The command line (as a Nextflow process would run it)."""
        stage: Stage = self.module().STAGE
        return command_line(stage, self.params, self.make_inputs(), run_dir / self.name)


def command_line(stage: Stage, params: StageParams, inputs: Record, out: Path) -> list[str]:
    """`templearn <stage> ...`: every input, every parameter that differs from its default."""
    argv = ["templearn", stage.name]
    positional: list[str] = []
    for f in dataclasses.fields(inputs):  # type: ignore[arg-type]
        value = getattr(inputs, f.name)
        if f.metadata.get("argument"):
            positional += [str(v) for v in (value if isinstance(value, tuple) else (value,))]
        else:
            argv += _option_text(f, value, typing.get_type_hints(type(inputs))[f.name])
    hints = typing.get_type_hints(type(params))
    for f in dataclasses.fields(params):
        value = getattr(params, f.name)
        default = (f.default_factory() if f.default_factory is not dataclasses.MISSING
                   else f.default)
        if value != default:
            argv += _option_text(f, value, hints[f.name])
    return [*argv, "-o", str(out), *positional]


def _option_text(f: dataclasses.Field, value: Any, hint: Any) -> list[str]:
    """An option as command-line words (nothing for None)."""
    if value is None:
        return []
    name = flag_name(f)
    kind, _ = base_type(hint)
    if kind is bool:
        if f.metadata.get("flag"):
            return [name] if value else []
        return [name if value else f"--no-{name[2:]}"]
    if f.metadata.get("repeat"):
        items = ([f"{k}={v}" for k, v in value.items()] if isinstance(value, dict)
                 else [str(v) for v in value])
        return [word for item in items for word in (name, item)]
    if isinstance(value, tuple):
        return [name, ",".join(str(v) for v in value)]
    return [name, str(value)]


def resolve_models(spec: str, where: str) -> list[Path]:
    """Model files named by a path, a glob, pdb:ID[,ID...] or bundled:NAME."""
    if spec.startswith("bundled:"):
        from templearn import data

        name = spec.removeprefix("bundled:")
        if name == "distractors":
            return data.distractor_structures()
        root = data.structures_dir()
        for candidate in (root / f"{name}{data.STRUCTURE_SUFFIX}",
                          root / data.DISTRACTORS_DIR / f"{name}{data.STRUCTURE_SUFFIX}"):
            if candidate.is_file():
                return [candidate]
        raise InputError(f"{where}: no bundled structure {name!r} (see {root}/README.md)")
    if spec.startswith("pdb:"):
        from templearn.fetch import fetch_structure

        return [fetch_structure(code.strip()) for code in spec.removeprefix("pdb:").split(",")
                if code.strip()]
    files = sorted(Path(p).resolve() for p in glob.glob(spec))
    if not files:
        raise InputError(f"{where}: {spec!r} names no files")
    return files


def _model_files(directory: Path) -> tuple[Path, ...]:
    """The structure files a stage wrote into `directory` (conformers, pseudo-atoms)."""
    return tuple(sorted(p for p in directory.iterdir()
                        if p.name.endswith((".pdb", ".cif", ".pdb.gz", ".cif.gz"))))


class GraphBuilder:
    """Builds the task list of an experiment in dependency order."""

    def __init__(self, experiment: Experiment, run_dir: Path) -> None:
        self.x, self.run_dir, self.tasks = experiment, run_dir, []  # type: list[Task]
        self.changes = experiment.training_changes()  # ablations: training samples only

    def path(self, name: str) -> Path:
        return self.run_dir / name

    def add(self, name: str, stage: str, params: StageParams, make_inputs: Callable[[], Record],
            *deps: str) -> str:
        self.tasks.append(Task(name, stage, params, make_inputs, tuple(deps)))
        return name

    def inputs(self, stage: str, **values: Any) -> Callable[[], Record]:
        """Deferred Inputs of `stage` (values may be callables evaluated at run time)."""
        cls = importlib.import_module(f"templearn.stages.{stage}").STAGE.inputs

        def make() -> Record:
            return cls(**{k: v() if callable(v) else v for k, v in values.items()})
        return make

    def structures(self) -> tuple[dict[str, str], dict[str, str], str | None]:
        """Tasks from templates to maps: (target name → maps task, the same for the
        training samples, distractor maps task)."""
        voxel = {"voxel_size": self.x.voxel_size}
        maps: dict[str, str] = {}
        training_maps: dict[str, str] = {}
        rigid_training = not self.changes.flexible
        for name, target in self.x.target_settings().items():
            base = f"structures/{name}"
            if target.map is not None:
                made = self.add(f"{base}/pseudoatoms", "pseudoatoms",
                                stage_params("pseudoatoms", target.pseudoatoms, f"targets.{name}"),
                                self.inputs("pseudoatoms", density_map=target.map.resolve()))
                model_dir = self.path(made)
                models: Any = lambda d=model_dir: _model_files(d)  # noqa: E731
                deps: tuple[str, ...] = (made,)
            else:
                found = resolve_models(target.structure or "", f"targets.{name}.structure")
                models, deps = tuple(found), ()
            if target.flexible and target.map is None:
                deps = tuple(self.conformers(name, target, structure, len(found) > 1)
                             for structure in found)
                conf_dirs = tuple(self.path(task) for task in deps)
                models = lambda dirs=conf_dirs: tuple(  # noqa: E731
                    p for d in dirs for p in _model_files(d))
            maps[name] = self.add(f"{base}/maps", "density",
                                  self.x.stage_params("density", **voxel),
                                  self.inputs("density", structures=models), *deps)
            training_maps[name] = maps[name]
            if rigid_training and target.flexible and target.map is None:
                training_maps[name] = self.add(
                    f"{base}/maps-rigid", "density", self.x.stage_params("density", **voxel),
                    self.inputs("density", structures=tuple(found)))
        distractors = [p for spec in self.x.distractors
                       for p in resolve_models(spec, "distractors")]
        distractor_maps = None
        if distractors:
            distractor_maps = self.add("structures/distractors/maps", "density",
                                       self.x.stage_params("density", **voxel),
                                       self.inputs("density", structures=tuple(distractors)))
        return maps, training_maps, distractor_maps

    def conformers(self, name: str, target: Target, structure: Path, several: bool) -> str:
        """NMA → deform tasks of one model of a flexible target; the deform task. A target
        of several models (e.g. the paper's six nucleosomes) gets a folder per model."""
        base = f"structures/{name}/{structure_stem(structure)}" if several else f"structures/{name}"
        nma = self.add(f"{base}/nma", "nma", stage_params("nma", target.nma, f"targets.{name}"),
                       self.inputs("nma", structure=structure))
        return self.add(f"{base}/conformers", "deform",
                        stage_params("deform", {"seed": self.x.seed, **target.deform},
                                     f"targets.{name}"),
                        self.inputs("deform", structure=structure,
                                    modes=self.path(nma) / "modes.npz"), nma)

    def tomogram(self, name: str, kind: str, index: int, maps: dict[str, str],
                 distractor_maps: str | None, acquisitions: str, share: tuple[int, int]
                 ) -> str:
        """sample → tilt series → tomogram → labels; the labels task. `share`: this is
        sample i of the n of its kind."""
        seed = self.x.seed * 1000 + SEED_OFFSETS[kind] + index
        base = f"tomograms/{name}"
        changes = self.changes if kind != "test" else None
        if changes is not None and not changes.distractors:
            distractor_maps = None
        packing = {**self.x.tetris, **(changes.tetris if changes else {})}
        crowding = changes.crowding_at(*share) if changes else None
        if crowding is not None:
            packing["max_protein_fraction"] = crowding
        sample = self.add(
            f"{base}/sample", "tetris",
            stage_params("tetris", {**packing, "seed": seed, "name": name},
                         "training_samples" if changes and changes.tetris else ""),
            self.inputs("tetris", template={t: self.path(m) for t, m in maps.items()},
                        distractors=(self.path(distractor_maps),) if distractor_maps else ()),
            *maps.values(), *([distractor_maps] if distractor_maps else []))
        molecules = self.path(sample) / "molecules.star"
        rows = _table_rows(self.x, kind)
        tilt = self.add(f"{base}/tilt", "simulate",
                        self.x.stage_params("simulate", seed=seed, row=str(index % rows)),
                        self.inputs("simulate", molecules=molecules,
                                    acquisitions=self.path(acquisitions) / "acquisitions.tsv"),
                        sample, acquisitions)
        tomo = self.add(f"{base}/tomo", "reconstruct", self.x.stage_params("reconstruct"),
                        self.inputs("reconstruct",
                                    tilt_series=self.path(tilt) / "tiltseries.mrc"), tilt)
        return self.add(f"{base}/labels", "labels", self.x.stage_params("labels", name=name),
                        self.inputs("labels", molecules=molecules,
                                    like=self.path(tomo) / "tomogram.mrc"), sample, tomo)

    def picking(self, name: str, tomogram: Path, targets: Path | None, mask: Path | None,
                training: str, *deps: str, confirm: str | None = None) -> None:
        """segment → pick → evaluate (when there is ground truth) of one tomogram. A run
        that reconstructs half tomograms drops the picks where they disagree (`pick
        --halves`); with `confirm` (the tomogram's match task), those the template does
        not confirm (`pick --confirm`)."""
        base = f"picking/{name}"
        segment = self.add(f"{base}/segment", "segment", self.x.stage_params("segment"),
                           self.inputs("segment", tomogram=tomogram,
                                       model=self.path(training) / "model"), training, *deps)
        halves = tomogram if self.x.stage_params("reconstruct").halves else None
        picks = self.add(f"{base}/picks", "pick", self.x.stage_params("pick", name=name),
                         self.inputs("pick", labels=self.path(segment) / "labels.mrc",
                                     scores=(str(self.path(segment)),), mask=mask,
                                     halves=halves,
                                     confirm=self.path(confirm) if confirm else None),
                         segment, *((confirm,) if confirm else ()))
        if targets is not None:
            self.add(f"{base}/evaluation", "evaluate", self.evaluate_params(),
                     self.inputs("evaluate", picks=self.path(picks) / "picks.star",
                                 targets=targets, mask=mask), picks, *deps)

    def template(self, training_maps: dict[str, str]) -> Template:
        """Template matching's template: a map of the first target, from the maps its
        training samples are packed with. That is the model as it is (a rigid target, or
        `structures/<target>/maps-rigid` when the training samples are rigid), else the
        first conformer's map (`<stem>_conf000.mrc`), or the map of a target's pseudo-atoms.
        Only the first target is matched (one search per tomogram)."""
        target, maps = next(iter(training_maps.items()))
        return Template(target, maps, self.path(maps))

    def matching(self, name: str, tomogram: Path, targets: Path | None, mask: Path | None,
                 template: Template, tilt_meta: Path | None, *deps: str) -> str:
        """match → evaluate (when there is ground truth) of one tomogram: the baseline, and
        what confirms the trained picks (`confirm_picks`). Returns the match task.

        Fixed by the runner: the class name (the target's, so that evaluate compares it with
        the same class), the tilt range from the simulation's meta.json when known (an
        explicit `match.tilt_range` wins), the radius of the target in the `pick` section
        unless `match.radius` is set, and `evaluate --sweep score` (matches have scores,
        not cluster sizes)."""
        base = f"picking/{name}"
        radius = self._pick_radius(template.target)
        params = stage_params("match", {**({"radius": radius} if radius else {}),
                                        **self.x.match, "name": template.target})
        match = self.add(f"{base}/match", "match", params,
                         self.inputs("match", tomogram=tomogram, template=template.file,
                                     meta=tilt_meta), template.task, *deps)
        if targets is not None:
            self.add(f"{base}/match-evaluation", "evaluate",
                     self.evaluate_params(sweep="score"),
                     self.inputs("evaluate", picks=self.path(match) / "picks.star",
                                 targets=targets, mask=mask), match, *deps)
        return match

    def evaluate_params(self, **fixed: Any) -> Any:
        """`evaluate`'s options. Unless the params file sets `evaluate.distance`, a pick
        matches a particle within the targets' `pick` radius (the smallest, with several),
        not evaluate's fixed 10 voxels: that is ≈ ¾ of a particle's radius in the shipped
        recipes, and 10 voxels would count random picks among crowded small particles."""
        radii = [r for r in map(self._pick_radius, self.x.target_settings()) if r]
        if "distance" not in self.x.evaluate and radii:
            fixed = {"distance": min(radii), **fixed}
        return self.x.stage_params("evaluate", **fixed)

    def _pick_radius(self, target: str) -> float | None:
        """The `pick` section's radius of `target` (voxels)."""
        default, per_class = parse_radii(self.x.stage_params("pick").radius)
        return per_class.get(target, default)


@dataclass(frozen=True)
class Template:
    """Template matching's template: the target (class name), its maps task and folder."""

    target: str
    task: str
    directory: Path

    def file(self) -> Path:
        """The first map in the folder (known once the maps task ran)."""
        maps = sorted(self.directory.glob("*.mrc"))
        if not maps:
            raise FileNotFoundError(f"{self.directory}: no maps (yet)")
        return maps[0]


def _table_rows(experiment: Experiment, kind: str) -> int:
    """Rows of the acquisition table a tomogram kind draws from."""
    section = experiment.acquisitions.get("test" if kind == "test" else "train", {})
    params = stage_params("randomize", section, "acquisitions")
    if params.grid is None:
        return params.n
    from templearn.acquisition import paper_grid

    return len(paper_grid(params.grid))


def build_tasks(experiment: Experiment, run_dir: Path) -> list[Task]:
    """Every task of the experiment, each after the tasks it depends on."""
    graph = GraphBuilder(experiment, run_dir)
    maps, training_maps, distractor_maps = graph.structures()
    tables = {}
    for kind, offset in (("train", 0), ("test", 1)):
        section = {"seed": experiment.seed * 10 + offset,
                   **experiment.acquisitions.get(kind, {})}
        tables[kind] = graph.add(f"acquisitions/{kind}", "randomize",
                                 stage_params("randomize", section, "acquisitions"),
                                 graph.inputs("randomize"))
    counts = experiment.counts()
    made: dict[str, list[tuple[str, str]]] = {"train": [], "val": [], "test": []}
    for kind, n in (("train", counts.train), ("val", counts.validation),
                    ("test", counts.test)):
        table = tables["test" if kind == "test" else "train"]
        for i in range(n):
            name = f"{kind}{i}"
            index = i + (counts.train if kind == "val" else 0)
            made[kind].append((name, graph.tomogram(
                name, kind, index, maps if kind == "test" else training_maps,
                distractor_maps, table, (i, n))))

    def pairs(kind: str) -> tuple[str, ...]:
        return tuple(f"{graph.path(f'tomograms/{n}/tomo')}/tomogram.mrc,{graph.path(labels)}"
                     for n, labels in made[kind])

    training = graph.add("training", "train", experiment.stage_params("train"),
                         graph.inputs("train", sample=pairs("train"),
                                      validation=pairs("val")),
                         *(labels for kind in ("train", "val") for _, labels in made[kind]))
    template = graph.template(training_maps) if experiment.matching() else None
    confirm = experiment.confirm_picks
    for name, labels in made["test"]:
        tomogram, targets = (graph.path(f"tomograms/{name}/tomo") / "tomogram.mrc",
                             graph.path(labels) / "targets.star")
        match = None if template is None else graph.matching(
            name, tomogram, targets, None, template,
            graph.path(f"tomograms/{name}/tilt") / "meta.json", labels)
        graph.picking(name, tomogram, targets, None, training, labels,
                      confirm=match if confirm else None)
    for tomo in experiment.user_tomograms():
        where = (tomo.tomogram.resolve(), tomo.targets.resolve() if tomo.targets else None,
                 tomo.mask.resolve() if tomo.mask else None)
        match = None if template is None else graph.matching(tomo.name, *where, template,
                                                             None)
        graph.picking(tomo.name, *where, training, confirm=match if confirm else None)
    names = [t.name for t in graph.tasks]
    if len(set(names)) != len(names):
        raise InputError("two tasks share an output folder (tomogram names must be unique)")
    return graph.tasks
