"""The Nextflow pipeline checked against the Python stages, without the Nextflow engine.

Every module is parsed (tests/nextflow/modules.py). The pipeline's Groovy runs on the Groovy
inside Nextflow's language server (tests/nextflow/harness.groovy): for every task that
`templearn run` makes of an experiment (pipeline/graph.py), the options that
subworkflows/local/utils_templearn computes are rendered into the module's script block,
and that command line must parse, with the stage's own CLI, to the task's Params and
Inputs. Stubs are run and must create the declared outputs, which must be files the stage
writes. The schemas must be what the Params classes generate, and Nextflow's own checker
(../shared/tools/nf-lint) must report nothing.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import importlib
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import typer
import yaml

from templearn.cli import STAGE_NAMES, app
from templearn.cli.build import from_cli
from templearn.halves import half_paths
from templearn.pipeline import nfschema
from templearn.pipeline.containers import BACKEND_IMAGES, GPU_IMAGES, IMAGE_OF_STAGE, IMAGES
from templearn.pipeline.experiment import Experiment, merge, read_yaml
from templearn.pipeline.graph import Task, build_tasks
from templearn.provenance import write_provenance
from templearn.stages.base import Record
from templearn.stages.deform import conformer_names
from templearn.stages.pseudoatoms import MODEL
from templearn.structure import structure_stem
from tests.nextflow.groovy import NF_LINT, language_server_jar, run_harness
from tests.nextflow.modules import ROOT, WRITTEN, Output, expand_braces, read_module
from tests.test_containers import recipe as container_recipe

DATA = ROOT / "tests" / "data"
RESOURCE_LABELS = {"process_single", "process_low", "process_medium", "process_high",
                   "process_gpu"}
MODULES = {stage: read_module(stage) for stage in STAGE_NAMES}


# --- modules and configs -----------------------------------------------------------------

@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_module_follows_the_conventions(stage):
    module = MODULES[stage]
    assert module.name == f"TEMPLEARN_{stage.upper()}"
    assert module.directives["tag"] == ["${meta.id}"]
    defined = re.findall(r"withLabel: '(\w+)'", (ROOT / "conf" / "base.config").read_text())
    assert set(module.directives["label"]) <= RESOURCE_LABELS & set(defined)
    image = re.fullmatch(r"templearn-\$\{task\.ext\.image \?: '([\w-]+)'\}:"
                         r"\$\{workflow\.manifest\.version\}", module.directives["container"][0])
    assert image and image[1] == IMAGE_OF_STAGE[stage]
    assert module.inputs[0][0] == "meta"
    assert "def args = task.ext.args ?: ''" in module.script
    assert re.search(rf"^\s*templearn {stage} .*-o \$\{{prefix\}}", module.script, re.M)
    assert Output("${prefix}/versions.yml", "versions") in module.outputs
    assert module.stub.strip()


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_meta_yml_describes_the_module(stage):
    module = MODULES[stage]
    meta = yaml.safe_load((ROOT / "modules" / "local" / stage / "meta.yml").read_text())
    assert meta["name"] == module.name.lower()
    assert [[next(iter(e)) for e in channel] for channel in meta["input"]] == module.inputs
    assert list(meta["output"]) == [output.emit for output in module.outputs]


def test_images_are_the_container_images():
    """Each task runs in the image `templearn run --containers` picks (containers.py)."""
    modules_config = (ROOT / "conf" / "modules.config").read_text()
    for (stage, backend), image in BACKEND_IMAGES.items():
        assert (f"ext.image = {{ params.{stage}.backend == '{backend}' ? '{image}' : "
                f"'{IMAGE_OF_STAGE[stage]}' }}") in modules_config
    gpu = re.search(r"\n    gpu \{\n(.*?)\n    \}\n", (ROOT / "nextflow.config").read_text(), re.S)
    assert gpu
    for image, cuda in GPU_IMAGES.items():
        assert all("process_gpu" in MODULES[stage].directives["label"]
                   for stage, uses in IMAGE_OF_STAGE.items() if uses == image)
        assert re.search(rf"withLabel: 'process_gpu' \{{[^}}]*ext\.image\s*=\s*'{cuda}'", gpu[1])
    for image in IMAGES:  # each one has a recipe: a Dockerfile that installs its own lock
        dockerfile, lock = container_recipe(image)
        assert dockerfile.is_file() and lock == ROOT / "containers" / image / "requirements.lock"
        assert lock.is_file(), image


def test_manifest_version_is_the_package_version():
    version = re.search(r'^version = "(.+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    manifest = re.search(r"^\s*version\s*=\s*'(.+)'", (ROOT / "nextflow.config").read_text(),
                         re.M)
    assert version and manifest and manifest[1] == version[1]


# --- schemas -----------------------------------------------------------------------------

def test_schemas_are_generated_from_the_params_classes():
    for name, text in nfschema.rendered().items():
        assert (ROOT / name).read_text() == text, (
            f"{name} is out of date: python -m templearn.pipeline.nfschema")


def validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads((ROOT / name).read_text()))


def test_params_files_follow_the_schema():
    schema = validator(nfschema.SCHEMA_FILE)
    for path in sorted((ROOT / "params").glob("*.yaml")):
        assert not list(schema.iter_errors(yaml.safe_load(path.read_text()))), path.name
    bad = yaml.safe_load((ROOT / "params" / "test.yaml").read_text())
    bad["tetris"]["shapes"] = [1, 2, 3]
    bad["targets"]["proteasome"]["map"] = "proteasome.mrc"
    bad["pick"]["method"] = "guess"
    assert len(list(schema.iter_errors(bad))) == 3


def test_samplesheet_follows_its_schema():
    schema = validator(nfschema.SAMPLESHEET_SCHEMA_FILE)
    header, *rows = [line.split(",") for line in
                     (ROOT / "assets" / "samplesheet.csv").read_text().splitlines()]
    sheet = [{k: v for k, v in zip(header, row, strict=True) if v} for row in rows]
    assert sheet and not list(schema.iter_errors(sheet))
    assert list(schema.iter_errors([{"name": "t", "targets": "t.star"}]))
    assert list(schema.iter_errors([{"name": "t", "tomogram": "t.mrc", "labels": "l.mrc"}]))


def test_schema_command_writes_then_checks(tmp_path):
    assert nfschema.main([str(tmp_path), "--check"]) == 1
    assert nfschema.main([str(tmp_path)]) == 0
    assert nfschema.main([str(tmp_path), "--check"]) == 0


# --- the pipeline's Groovy against templearn run -----------------------------------------

@pytest.fixture(scope="module")
def groovy():
    jar = language_server_jar()
    if jar is None:
        pytest.skip(f"needs Java and Nextflow's language server (fetched by {NF_LINT})")
    return lambda request: run_harness(jar, request)


def params_block(config: str) -> str:
    """The top-level `params { ... }` block of a config file."""
    start = config.index("\nparams {") + 1
    depth = 0
    for end, char in enumerate(config[start:], start):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if char == "}" and depth == 0:
            return config[start:end + 1]
    raise ValueError("unclosed params block")


@pytest.fixture(scope="module")
def config_params(groovy):
    """The params of nextflow.config, and with -profile test."""
    base = params_block((ROOT / "nextflow.config").read_text())
    test = (ROOT / "conf" / "test.config").read_text()
    return groovy({"mode": "config", "binding": {"projectDir": str(ROOT)},
                   "sets": {"default": [base], "test": [base, test]}})


def test_config_defaults_are_the_schema_defaults(config_params):
    schema = json.loads((ROOT / nfschema.SCHEMA_FILE).read_text())
    properties = {name: prop for group in schema["$defs"].values()
                  for name, prop in group["properties"].items()}
    assert config_params["default"] == {name: prop.get("default")
                                        for name, prop in properties.items()}


#: An experiment with a bit of everything: a map target, a rigid and a flexible model, the
#: ablations' changes to training samples, a paper-grid test table, the user's tomograms,
#: and options of every form (text with blanks, negated booleans, lists, NAME=VALUE).
VARIETY = {
    "name": "variety", "seed": 3,
    "targets": {
        "frommap": {"map": str(DATA / "maps" / "3qm1.mrc"),
                    "pseudoatoms": {"lowpass": 20, "mass_kda": 30}},
        "rigid": {"structure": str(DATA / "3qm1.cif.gz"), "flexible": False},
        "flexible": {"structure": "bundled:1bxn", "nma": {"selection": "name CA",
                                                          "cutoff": 12.5},
                     "deform": {"n": 2, "seed": 4}},
    },
    "distractors": ["bundled:1g3i", "bundled:1s3x"],
    "samples": {"train": 2, "validation": 0, "test": 1},
    "acquisitions": {"train": {"n": 3, "defocus": [-3, -2], "amplitude_contrast": [0.05, 0.1]},
                     "test": {"grid": "def"}},
    "training_samples": {"distractors": False, "flexible": False, "crowding": [0.02, 0.3],
                         "tetris": {"sigma": 2}},
    "tomograms": [{"name": "own", "tomogram": str(DATA / "maps" / "3qm1.mrc"),
                   "targets": str(DATA / "sample" / "molecules.star"),
                   "mask": str(DATA / "maps" / "3qm1.mrc")},
                  {"name": "bare", "tomogram": str(DATA / "maps" / "3qm1.mrc")}],
    "density": {"resolution": 24, "box": 40},
    "tetris": {"shape": "64,64,32", "ratio": "1:3", "mask": "volume", "rotations": 2},
    "simulate": {"damage": False, "ice_texture": 0.2, "thickness": 500},
    "reconstruct": {"method": "sirt", "bin_factor": 2, "radial": [0.4, 0.05]},
    "labels": {"mode": "sphere", "radius": {"rigid": 40, "flexible": 30},
               "distractor_class": True},
    "train": {"preset": "cpu-small", "rotate": False, "learning_rate": 0.001,
              "widths": [8, 12, 16], "patch": 16},
    "segment": {"any_voxel_size": True, "tile": 32, "crop": 4},
    "pick": {"radius": ["rigid=3", "2"], "max_size": 400, "bin2": True},
    "evaluate": {"distance": 5, "sweep": "score"},
    "match": {"angular_step": 30, "symmetry": "C2", "invert": False},
}
EXPERIMENTS = ("-profile test", "params/test.yaml", "params/demo.yaml", "variety",
               "params/test.yaml+params/with-match.yaml", "params/test.yaml+tests/data/halves.yaml")


def experiment_params(name: str, config_params: dict[str, Any]) -> dict[str, Any]:
    """Params as Nextflow has them: a params file's keys replace the config's (FILE+LAYER:
    the files merged as `templearn run` layers them, as docs/nextflow.md does)."""
    if name == "-profile test":
        return config_params["test"]
    layer = VARIETY if name == "variety" else functools.reduce(
        merge, (read_yaml(ROOT / part) for part in name.split("+")), {})
    return {**config_params["default"], **layer}


def staged(pattern: str, paths: Any) -> list[str]:
    """The names Nextflow stages files under with `stageAs: pattern`."""
    return [pattern.replace("?", str(i)).replace("*", Path(p).name)
            for i, p in enumerate(paths, 1)]


def pairs(specs: tuple[str, ...], pattern: str) -> list[list[str]]:
    """TOMOGRAM,LABELS_DIR items as the two staged lists of the train module: the
    tomograms' folders (their half tomograms travel with them) and the labels folders."""
    tomograms, labels = zip(*(spec.split(",") for spec in specs), strict=True) if specs \
        else ((), ())
    assert all(Path(t).name == "tomogram.mrc" for t in tomograms)
    return [staged(pattern, [Path(t).parent for t in tomograms]), staged(pattern, labels)]


def optional(path: Path | None) -> str | list[str]:
    return [] if path is None else path.name


def binding(stage: str, i: Any) -> dict[str, Any]:
    """The module's input variables for a task's Inputs, as Nextflow stages them."""
    if stage == "train":
        tomograms, labels = pairs(i.sample, "sample?/*")
        val_tomograms, val_labels = pairs(i.validation, "validation?/*")
        return {"tomograms": tomograms, "labels": labels, "val_tomograms": val_tomograms,
                "val_labels": val_labels}
    if stage == "pick":  # the module passes the segment folder as --scores
        assert i.scores == (str(i.labels.parent),) and i.classes is None
    if stage == "simulate":
        assert i.maps == ()
    return {
        "nma": lambda: {"structure": i.structure.name},
        "deform": lambda: {"structure": i.structure.name, "modes": i.modes.name},
        "density": lambda: {"structures": staged("structures/*", i.structures)},
        "pseudoatoms": lambda: {"density_map": i.density_map.name},
        "randomize": lambda: {},
        "tetris": lambda: {"classes": list(i.template),
                           "templates": staged("templates?/*", i.template.values()),
                           "distractors": staged("distractors?/*", i.distractors)},
        "simulate": lambda: {"molecules": i.molecules.name,
                             "acquisitions": i.acquisitions.name, "references": []},
        "reconstruct": lambda: {"tilt": i.tilt_series.parent.name},
        "labels": lambda: {"molecules": i.molecules.name, "tomogram": i.like.name,
                           "references": []},
        "segment": lambda: {"tomogram": i.tomogram.name, "halves": [],
                            "model": i.model.name},
        "pick": lambda: {"segmentation": i.labels.parent.name, "mask": optional(i.mask),
                         "tomogram": "tomogram.mrc" if i.halves is None else i.halves.name,
                         "halves": [] if i.halves is None else [
                             p.name for p in half_paths(i.halves)],
                         "confirm": optional(i.confirm)},
        "evaluate": lambda: {"picks": i.picks.name, "mask": optional(i.mask),
                             "targets": staged("truth/*", [i.targets])[0]},
        "match": lambda: {"tomogram": i.tomogram.name,
                          "template": staged("template/*", [i.template])[0],
                          "tilt_meta": optional(i.meta)},
    }[stage]()


def task_meta(task: Task) -> dict[str, str]:
    """Which meta the workflow gives the task (plan entries are looked up by the harness)."""
    kind, name, *_ = [*task.name.split("/"), ""]
    if kind == "tomograms":
        return {"tomogram": name}
    if task.stage in ("nma", "deform", "pseudoatoms"):
        return {"target": name}
    if task.name.endswith("/match-evaluation"):
        return {"id": name, "template_matching": True}
    return {"id": name or kind}


def upstream_models(task: Task, inputs: Record) -> list[str]:
    """The files a task writes that a later task's inputs name: models (density's) and
    maps (match's template)."""
    if task.stage == "deform":
        return conformer_names(structure_stem(inputs.structure), task.params.n, ".pdb")
    if task.stage == "density":
        return [f"{structure_stem(s)}.mrc" for s in inputs.structures]
    return [f"{MODEL}.pdb"] if task.stage == "pseudoatoms" else []


def graph_tasks(params: dict[str, Any], run_dir: Path) -> list[tuple[Task, Record]]:
    """`templearn run`'s tasks with their inputs (upstream model files faked in `run_dir`)."""
    fields = {f.name for f in dataclasses.fields(Experiment)}
    experiment = Experiment.from_mapping({k: v for k, v in params.items() if k in fields})
    experiment.check()
    made = []
    for task in build_tasks(experiment, run_dir):
        inputs = task.make_inputs()
        made.append((task, inputs))
        for name in upstream_models(task, inputs):
            (run_dir / task.name).mkdir(parents=True, exist_ok=True)
            (run_dir / task.name / name).touch()
    return made


@pytest.fixture(scope="module")
def plans(groovy, config_params, tmp_path_factory):
    """Per experiment: graph.py's tasks and the harness's plan and rendered scripts."""
    made = {name: graph_tasks(experiment_params(name, config_params),
                              tmp_path_factory.mktemp("run"))
            for name in EXPERIMENTS}
    answer = groovy({
        "mode": "plan", "utils": str(ROOT / "subworkflows/local/utils_templearn/main.nf"),
        "schema": str(ROOT / nfschema.SCHEMA_FILE),
        "experiments": [{"params": experiment_params(name, config_params),
                         "tasks": [{"stage": t.stage, "meta": task_meta(t),
                                    "script": MODULES[t.stage].script,
                                    "binding": binding(t.stage, i)} for t, i in tasks]}
                        for name, tasks in made.items()],
        "renders": [{"script": MODULES[stage].stub, "binding": {"meta": {"id": "ribosome"}}}
                    for stage in STAGE_NAMES]})
    return {"experiments": dict(zip(EXPERIMENTS, zip(made.values(), answer["experiments"],
                                                     strict=True), strict=True)),
            "stubs": dict(zip(STAGE_NAMES, answer["renders"], strict=True))}


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_plan_is_templearn_runs(plans, name):
    tasks, answer = plans["experiments"][name]
    by_name = {task.name: (task, inputs) for task, inputs in tasks}
    tetris = [task.name.split("/")[1] for task, _ in tasks if task.stage == "tetris"]
    assert [meta["id"] for meta in answer["tomograms"]] == tetris
    for meta in answer["tomograms"]:
        sample, inputs = by_name[f"tomograms/{meta['id']}/sample"]
        assert meta["seed"] == sample.params.seed
        assert meta["distractors"] == bool(inputs.distractors)
        assert meta["row"] == by_name[f"tomograms/{meta['id']}/tilt"][0].params.row
    for meta in answer["targets"]:
        made = {task.name.split("/")[2] for task, _ in tasks
                if task.name.startswith(f"structures/{meta['id']}/")}
        assert made == ({"pseudoatoms"} if meta["from_map"] else set()) | (
            {"nma", "conformers"} if meta["flexible"] else set()) | (
            {"maps-rigid"} if meta["rigid_training"] else set()) | {"maps"}


def parse_command(text: str, stage: str) -> tuple[Record, Record]:
    """A `templearn <stage>` command line as the stage's Inputs and Params (parse only)."""
    words = shlex.split(text)
    assert words[:2] == ["templearn", stage], text
    command = typer.main.get_command(app).commands[stage]  # type: ignore[attr-defined]
    values = command.make_context(stage, words[2:]).params
    spec = importlib.import_module(f"templearn.stages.{stage}").STAGE
    return tuple(from_cli(cls, {f.name: values[f.name] for f in dataclasses.fields(cls)})
                 for cls in (spec.inputs, spec.params))  # type: ignore[return-value]


def file_names(value: Any) -> Any:
    """A record with each path reduced to its file name (staged names keep only those)."""
    if isinstance(value, dict):
        return {k: file_names(v) for k, v in value.items()}
    if isinstance(value, list):
        return [file_names(v) for v in value]
    return re.sub(r"[^,=]*/", "", value) if isinstance(value, str) else value


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_command_lines_are_templearn_runs(plans, name):
    tasks, answer = plans["experiments"][name]
    for (task, inputs), rendered in zip(tasks, answer["tasks"], strict=True):
        text = rendered["text"]
        assert len(text.splitlines()) == 1, text
        got_inputs, got_params = parse_command(text, task.stage)
        assert got_params == task.params, (task.name, text)
        assert file_names(got_inputs.record()) == file_names(inputs.record()), (task.name, text)


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_stub_creates_the_declared_outputs(plans, stage, tmp_path):
    stub = plans["stubs"][stage]
    subprocess.run(["bash", "-euc", stub["text"]], cwd=tmp_path, check=True)
    written = [*WRITTEN[stage], "versions.yml"]
    for output in MODULES[stage].outputs:
        pattern = output.pattern.replace("${prefix}", stub["prefix"])
        assert any(any(tmp_path.glob(p)) for p in expand_braces(pattern)), pattern
        inside = output.pattern.removeprefix("${prefix}").lstrip("/")
        if inside:
            assert any(fnmatch.fnmatch(f, p) for p in expand_braces(inside) for f in written), (
                f"{inside}: not a file `templearn {stage}` writes")
    write_provenance(tmp_path, stage, {}, {}, "")
    real = yaml.safe_load((tmp_path / "versions.yml").read_text())
    stubbed = yaml.safe_load((tmp_path / stub["prefix"] / "versions.yml").read_text())
    assert list(stubbed) == list(real) == [MODULES[stage].name]


# --- Nextflow's own checker --------------------------------------------------------------

def test_nf_lint_reports_nothing():
    if not NF_LINT.is_file() or shutil.which("java") is None:
        pytest.skip(f"needs Java and {NF_LINT}")
    run = subprocess.run([sys.executable, str(NF_LINT), str(ROOT)], capture_output=True,
                         text=True, timeout=600)
    if run.returncode == 2:
        pytest.skip(f"nf-lint could not start the language server: {run.stderr.strip()}")
    reported = [line for line in run.stdout.splitlines() if line.startswith(("ERROR", "WARN"))]
    assert run.returncode == 0 and not reported, run.stdout
