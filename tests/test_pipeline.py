"""`templearn run`: params files, command lines made from the stage dataclasses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from templearn.errors import InputError
from templearn.pipeline.experiment import apply_set, load_experiment, merge, read_yaml
from templearn.pipeline.graph import command_line
from templearn.pipeline.run import bundled_params
from templearn.stages import density, randomize
from templearn.stages.base import fingerprint


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


MINIMAL = """
name: tiny
targets:
  thing: {structure: model.pdb, flexible: false}
distractors: []
pick: {radius: ["3"]}
"""


def test_unknown_keys_and_bad_values_name_the_key(tmp_path):
    good = write(tmp_path / "a.yaml", MINIMAL)
    load_experiment([good])
    cases = {
        "tetris: {shap: [1, 2, 3]}": "tetris.shap: unknown key",
        "train: {epochs: many}": "train.epochs expects an integer",
        "samples: {train: 0}": "must be at least 1",
        "colour: blue": "colour: unknown key",
        "acquisitions: {train: {dose: [150, 75]}}": "low 150.0 > high 75.0",
        "targets: {thing: {structure: null}}": "targets.thing: give either structure or map",
        "acquisitions: {val: {n: 3}}": "acquisitions.val: unknown key",
    }
    for text, message in cases.items():
        layer = write(tmp_path / "b.yaml", text)
        with pytest.raises(InputError, match=message.replace("(", r"\(")):
            load_experiment([good, layer])


def test_noise_units_need_half_tomograms_for_every_tomogram(tmp_path):
    """train.normalise whiten-noise: the recipe must reconstruct halves, and each of the
    user's tomograms must have its halves beside it; checked before any task runs."""
    good = write(tmp_path / "a.yaml", MINIMAL)
    noise = ["train.normalise=whiten-noise"]
    with pytest.raises(InputError, match=r"reconstruct\.halves: true"):
        load_experiment([good], noise)
    halves = noise + ["reconstruct.halves=true"]
    load_experiment([good], halves)
    tomogram = tmp_path / "mine.mrc"
    tomogram.write_bytes(b"")
    own = write(tmp_path / "own.yaml", f"tomograms: [{{name: mine, tomogram: {tomogram}}}]\n")
    load_experiment([good, own])  # no halves made: none needed
    for sets in (halves, ["reconstruct.halves=true"]):  # the picks are checked against them
        with pytest.raises(InputError, match=r"mine_even.mrc: tomograms\[0\]"):
            load_experiment([good, own], sets)
    for half in ("even", "odd"):
        (tmp_path / f"mine_{half}.mrc").write_bytes(b"")
    load_experiment([good, own], halves)


def test_a_run_that_makes_half_tomograms_picks_with_them(tmp_path):
    """reconstruct.halves: every pick task checks its picks against its tomogram's halves
    (pick --halves); without it, none does."""
    from templearn.pipeline.graph import build_tasks

    good = write(tmp_path / "a.yaml", MINIMAL.replace("model.pdb", "bundled:1bxn")
                 + "samples: {train: 1, validation: 0, test: 1}\n")
    for sets, expected in (([], None), (["reconstruct.halves=true"], "tomogram.mrc")):
        experiment, _ = load_experiment([good], sets)
        run = tmp_path / "run"
        picks = [t for t in build_tasks(experiment, run) if t.stage == "pick"]
        assert picks
        for task in picks:
            halves = task.make_inputs().halves
            name = task.name.split("/")[1]
            assert (halves and halves.name) == expected
            if expected:
                assert halves == run / "tomograms" / name / "tomo" / "tomogram.mrc"


def test_layers_and_set_override_key_by_key(tmp_path):
    base = write(tmp_path / "a.yaml", MINIMAL + "train: {epochs: 3, steps: 7}\n")
    layer = write(tmp_path / "b.yaml", "train: {epochs: 5}\n")
    experiment, data = load_experiment([base, layer], ["train.steps=9", "seed=4"])
    assert experiment.train == {"epochs": 5, "steps": 9}
    assert experiment.seed == 4
    assert data["targets"]["thing"]["flexible"] is False
    assert merge({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}) == {"a": {"b": 1, "c": 3}}
    with pytest.raises(InputError, match="--set expects KEY=VALUE"):
        apply_set({}, "train.steps")


def test_bad_yaml_is_one_line_naming_the_file(tmp_path):
    bad = write(tmp_path / "bad.yaml", "train: [unclosed\n")
    run = subprocess.run([sys.executable, "-m", "templearn", "run", str(bad)],
                         capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "bad.yaml: not valid YAML" in run.stderr


@pytest.mark.parametrize("stage_module, params, inputs", [
    (randomize, randomize.Params(n=5, dose=(60.0, 90.0), grid=None, seed=3),
     randomize.NoInputs()),
    (density, density.Params(voxel_size=8.0, box=32),
     density.Inputs(structures=(Path("a.pdb"), Path("b.cif")))),
])
def test_command_line_parses_back_to_the_same_fingerprint(stage_module, params, inputs,
                                                          tmp_path):
    """The runner's command line, parsed by the stage's CLI, gives the same Params and
    Inputs, hence the same fingerprint: what makes resume work."""
    from typer.testing import CliRunner

    from templearn.cli import app

    argv = command_line(stage_module.STAGE, params, inputs, tmp_path / "out")
    assert argv[:2] == ["templearn", stage_module.STAGE.name]
    parsed: dict = {}

    def capture(stage, got_params, got_inputs, out_dir):
        parsed.update(params=got_params, inputs=got_inputs, out=out_dir)
        return "captured"

    import templearn.cli.build as build

    original = build.run_stage
    build.run_stage = capture
    try:
        result = CliRunner().invoke(app, argv[1:])
    finally:
        build.run_stage = original
    assert result.exit_code == 0, result.output
    assert parsed["params"] == params and parsed["inputs"] == inputs
    assert Path(parsed["out"]) == tmp_path / "out"
    assert (fingerprint("x", parsed["params"].record(), parsed["inputs"].record())
            == fingerprint("x", params.record(), inputs.record()))


def test_name_value_items_must_have_a_name():
    from templearn.cli.build import _key_value

    assert _key_value("ribosome=6", "--radius") == ("ribosome", "6")
    for bad in ("6", "=6"):
        with pytest.raises(InputError, match="--radius expects NAME=VALUE"):
            _key_value(bad, "--radius")


def test_crowding_spreads_training_samples_from_sparse_to_dense():
    from templearn.pipeline.experiment import TrainingSamples

    changes = TrainingSamples.from_mapping({"crowding": [0.05, 0.25]}, where="training_samples")
    fractions = [changes.crowding_at(i, 4) for i in range(4)]
    assert fractions == [0.075, 0.125, 0.175, 0.225]  # the middle of each quarter
    assert TrainingSamples().crowding_at(0, 4) is None
    for bad in ([0.3, 0.1], [0, 0.2], [0.1, 1.5]):
        with pytest.raises(InputError, match=r"training_samples\.crowding"):
            TrainingSamples.from_mapping({"crowding": bad}, where="x")


def test_match_section_adds_template_matching_of_the_first_target(tmp_path):
    """`match:` set: every picked tomogram is also searched with the first target's map and
    the matches evaluated (score sweep); unset: no such task."""
    from templearn.pipeline.graph import build_tasks

    data = Path(__file__).parent / "data"
    picked = tmp_path / "picked.mrc"
    base = write(tmp_path / "a.yaml", f"""
targets:
  first: {{structure: bundled:1bxn, flexible: true, deform: {{n: 2}}}}
  second: {{structure: {data / '3qm1.cif.gz'}, flexible: false}}
distractors: []
samples: {{train: 1, validation: 0, test: 1}}
training_samples: {{flexible: false}}
tomograms:
  - {{name: own, tomogram: {picked}, targets: {data / 'sample' / 'molecules.star'}}}
  - {{name: bare, tomogram: {picked}}}
pick: {{radius: ["first=5", "3"]}}
""")
    plain, _ = load_experiment([base])
    assert not plain.matching()
    assert not [t for t in build_tasks(plain, tmp_path / "run") if "match" in t.name]

    layer = write(tmp_path / "b.yaml", "match: {angular_step: 30}\n")
    experiment, _ = load_experiment([base, layer])
    run = tmp_path / "run"
    tasks = {t.name: t for t in build_tasks(experiment, run)}
    made = sorted(name for name in tasks if "match" in name)
    assert made == ["picking/bare/match", "picking/own/match", "picking/own/match-evaluation",
                    "picking/test0/match", "picking/test0/match-evaluation"]
    rigid = run / "structures/first/maps-rigid"  # the model as it is, not a conformer
    rigid.mkdir(parents=True)
    (rigid / "1bxn.mrc").touch()
    match = tasks["picking/test0/match"]
    assert match.params.name == "first" and match.params.radius == 5.0
    assert match.params.angular_step == 30.0
    assert "structures/first/maps-rigid" in match.deps
    inputs = match.make_inputs()
    assert inputs.template == rigid / "1bxn.mrc"
    assert inputs.meta == run / "tomograms/test0/tilt/meta.json"
    assert inputs.tomogram == run / "tomograms/test0/tomo/tomogram.mrc"
    assert tasks["picking/own/match"].make_inputs().meta is None
    evaluation = tasks["picking/test0/match-evaluation"]
    assert evaluation.params.sweep == "score" and tasks["picking/test0/evaluation"].params.sweep \
        == "size"
    assert evaluation.make_inputs().picks == run / "picking/test0/match/picks.star"
    # a pick counts within the smallest target radius, not evaluate's 10 voxels ...
    assert evaluation.params.distance == 3.0
    assert tasks["picking/test0/evaluation"].params.distance == 3.0
    # ... unless the params file says otherwise
    explicit = write(tmp_path / "d.yaml", "evaluate: {distance: 7}\n")
    experiment, _ = load_experiment([base, explicit])
    assert {t.name: t for t in build_tasks(experiment, run)}[
        "picking/own/evaluation"].params.distance == 7.0

    flexible = write(tmp_path / "c.yaml", "match: {radius: 2}\ntraining_samples: "
                                          "{flexible: true}\n")
    experiment, _ = load_experiment([base, flexible])
    match = {t.name: t for t in build_tasks(experiment, run)}["picking/own/match"]
    assert match.params.radius == 2.0
    conformers = run / "structures/first/maps"  # no rigid map: the first conformer's
    conformers.mkdir(parents=True)
    for name in ("1bxn_conf001.mrc", "1bxn_conf000.mrc"):
        (conformers / name).touch()
    assert match.make_inputs().template == conformers / "1bxn_conf000.mrc"


def test_a_target_of_several_models_is_one_class_with_conformers_of_each(tmp_path):
    """A glob naming two models (the paper's six nucleosomes are one class): NMA and
    conformers per model in structures/<target>/<stem>/, one maps task made from all of
    their conformers; the rigid ablation maps every model as it is."""
    import shutil

    from templearn.pipeline.graph import build_tasks

    data = Path(__file__).parent / "data"
    models = tmp_path / "models"
    models.mkdir()
    from templearn.data import distractor_structures

    shutil.copy(data / "3qm1.cif.gz", models)
    shutil.copy(next(p for p in distractor_structures() if p.name == "1bxn.cif.gz"), models)
    base = write(tmp_path / "a.yaml", f"""
targets:
  pair: {{structure: "{models}/*.cif.gz", deform: {{n: 2}}}}
distractors: []
samples: {{train: 1, validation: 0, test: 1}}
pick: {{radius: ["3"]}}
""")
    experiment, _ = load_experiment([base])
    run = tmp_path / "run"
    tasks = {t.name: t for t in build_tasks(experiment, run)}
    assert {n for n in tasks if n.startswith("structures/pair")} == {
        "structures/pair/1bxn/nma", "structures/pair/1bxn/conformers",
        "structures/pair/3qm1/nma", "structures/pair/3qm1/conformers", "structures/pair/maps"}
    maps = tasks["structures/pair/maps"]
    assert maps.deps == ("structures/pair/1bxn/conformers", "structures/pair/3qm1/conformers")
    assert tasks["structures/pair/3qm1/conformers"].make_inputs().structure == \
        models / "3qm1.cif.gz"
    for stem in ("1bxn", "3qm1"):
        made = run / f"structures/pair/{stem}/conformers"
        made.mkdir(parents=True)
        (made / f"{stem}_conf000.pdb").touch()
        (made / "rmsd.csv").touch()
    assert [p.name for p in maps.make_inputs().structures] == ["1bxn_conf000.pdb",
                                                              "3qm1_conf000.pdb"]
    rigid = write(tmp_path / "b.yaml", "training_samples: {flexible: false}\n")
    experiment, _ = load_experiment([base, rigid])
    tasks = {t.name: t for t in build_tasks(experiment, run)}
    assert len(tasks["structures/pair/maps-rigid"].make_inputs().structures) == 2


def flattened(data: dict, prefix: str = "") -> dict:
    """`section.key` → value for every leaf of a params mapping."""
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(flattened(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


#: What the demo may change in the ribosome recipe: how much, not how.
#: What the demo may change: sizes, and the learning-rate schedule, which goes with the
#: length of training (the recipe's cosine decay matches 400 constant-rate steps in 300;
#: over the demo's 120 steps it left the picker under-trained: docs/benchmarks.md).
DEMO_SIZES = {"name", "seed", "samples.train", "samples.validation", "samples.test",
              "acquisitions.train.n", "targets.ribosome.deform.n", "train.epochs",
              "train.steps", "train.lr_schedule"}


def test_demo_is_the_ribosome_recipe_at_a_smaller_size():
    demo = flattened(read_yaml(bundled_params("demo")))
    recipe = flattened(read_yaml(bundled_params("ribosome")))
    differing = {key for key in demo.keys() | recipe.keys() if demo.get(key) != recipe.get(key)}
    assert differing <= DEMO_SIZES, differing - DEMO_SIZES
