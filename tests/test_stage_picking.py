"""The picking stages as users run them: `train` → `segment` → `pick` → `evaluate`, bad
input as one line with exit status 2 (before any tomogram is loaded), and a killed
training that resumes from its kept work directory."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from templearn import star
from templearn.errors import InputError
from templearn.mrc import Volume, read_mrc, write_mrc
from templearn.sample import CLASS_NAME
from templearn.stages import evaluate, pick, segment, train
from templearn.stages.base import work_dir_of

VOXEL = 16.0
#: A tiny training: a few seconds of steps (compiling dominates).
TINY = ("--preset", "cpu-small", "--widths", "8,8,8", "--patch", "16", "--batch", "2",
        "--steps", "2", "--epochs", "2", "--loss", "cross-entropy", "--lr", "3e-3",
        "--shift", "4")


def main(*args: str, capsys) -> tuple[int, str]:
    """`templearn ARGS` in this process: (exit status, stderr)."""
    from templearn.cli import main as templearn_main

    argv = sys.argv
    sys.argv = ["templearn", *args]
    try:
        with pytest.raises(SystemExit) as exit_:
            templearn_main()
    finally:
        sys.argv = argv
    return int(exit_.value.code or 0), capsys.readouterr().err


def one_line_error(status: int, err: str, *needles: str) -> None:
    assert status == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("templearn: error: "), err
    for needle in needles:
        assert needle in lines[0], err


def write_labelled(folder: Path, seed: int) -> str:
    """tomogram.mrc and labels/ (labels.mrc, targets.star) of planted balls; the
    TOMOGRAM.mrc,LABELS_DIR text of `train -s`."""
    from tests.test_train import planted

    item = planted(seed)
    write_mrc(folder / "tomogram.mrc", Volume(item.tomogram, VOXEL))
    write_mrc(folder / "labels" / "labels.mrc", Volume(item.labels, VOXEL))
    n = len(item.classes)
    targets = pd.DataFrame({**{c: item.centres_xyz[:, a] for a, c in
                               enumerate(star.COORDINATES)},
                            star.CLASS_ID: item.classes, CLASS_NAME: ["ball"] * n})
    star.write_star(folder / "labels" / "targets.star", {
        star.GENERAL_BLOCK: star.general_table(item.labels.shape, VOXEL),
        star.PARTICLES_BLOCK: targets})
    return f"{folder / 'tomogram.mrc'},{folder / 'labels'}"


@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> list[str]:
    root = tmp_path_factory.mktemp("labelled")
    return [write_labelled(root / f"t{seed}", seed) for seed in (1, 2)]


def files_mention(directory: Path, text: str) -> list[Path]:
    """Files under `directory` whose bytes contain `text`."""
    return [p for p in directory.rglob("*") if p.is_file() and text.encode() in p.read_bytes()]


def test_choices_match_the_domain_code():
    from templearn.evaluate import SWEEPS
    from templearn.pick import METHODS
    from templearn.unet.losses import LOSSES
    from templearn.unet.model import CONV_CHOICES, PRESETS

    assert pick.METHODS == METHODS and tuple(SWEEPS) == evaluate.SWEEPS
    assert tuple(PRESETS) == train.Params.__dataclass_fields__["preset"].metadata["choices"]
    assert train.Params.__dataclass_fields__["loss"].metadata["choices"] == LOSSES
    assert train.Params.__dataclass_fields__["conv"].metadata["choices"] == CONV_CHOICES
    from templearn.unet.params import NORMALISATIONS, Normalisation

    assert train.Params.__dataclass_fields__["normalise"].metadata["choices"] == NORMALISATIONS
    for method in NORMALISATIONS:
        Normalisation(method).validate()  # every choice is one the domain code knows


def test_train_help_warns_about_cpu_time():
    from typer.testing import CliRunner

    from templearn.cli import app

    run = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert run.exit_code == 0
    assert "weeks on a CPU" in run.output and "--preset cpu-small" in run.output


def test_domain_settings_come_from_the_stage_params():
    from templearn.unet.params import SamplingParams, TileParams, TrainParams, from_fields

    params = train.Params(epochs=3, batch=4, patch=16, learning_rate=1e-3)
    settings = from_fields(TrainParams, params, sampling=from_fields(SamplingParams, params))
    assert (settings.epochs, settings.learning_rate) == (3, 1e-3)
    assert (settings.sampling.batch, settings.sampling.patch) == (4, 16)
    assert train.Params().epochs == TrainParams().epochs  # one source of the defaults
    assert segment.Params(tile=64).tiles() == TileParams(tile=64)


# --- bad input: one line, exit 2, nothing written ---------------------------------------

def test_train_bad_inputs(tmp_path, labelled, capsys):
    out = tmp_path / "training"
    tomogram, labels = labelled[0].split(",")
    bad_labels = tmp_path / "bad_labels"
    write_mrc(bad_labels / "labels.mrc", Volume(np.zeros((32, 48, 40), np.uint8), VOXEL))
    (bad_labels / "targets.star").write_text(Path(labels, "targets.star").read_text())
    cases = [
        (["-s", tomogram], "--sample expects TOMOGRAM.mrc,LABELS_DIR"),
        (["-s", f"{tmp_path / 'absent.mrc'},{labels}"], "absent.mrc", "no such file"),
        (["-s", f"{tomogram},{tmp_path / 'nowhere'}"], "nowhere"),
        (["-s", labelled[0], "-v", f"{tomogram},{bad_labels}"], "bad_labels", "differs"),
        (["-s", labelled[0], "--patch", "18"], "--patch", "multiple of 4"),
        (["-s", labelled[0], "--patch", "64"], "tomogram.mrc", "64³"),
        (["-s", labelled[0], "--widths", "8,8"], "--widths"),
        (["-s", labelled[0], "--loss", "l2"], "--loss"),
        (["-s", labelled[0], "--epochs", "0"], "--epochs"),
        (["-s", labelled[0], "--init", str(tmp_path)], "model.json"),
        (["-s", labelled[0], "--pick-method", "meanshift"], "--pick-radius"),
        (["-s", labelled[0], "--pick-method", "meanshift", "--pick-radius", "wrong=3"],
         "--pick-radius", "not a class"),
    ]
    for args, *needles in cases:
        one_line_error(*main("train", "--patch", "16", *args, "-o", str(out), capsys=capsys),
                       *needles)
        assert not out.exists() and not work_dir_of(out).exists(), args


def test_bad_training_input_fails_before_jax_is_imported(tmp_path, labelled):
    import subprocess

    tomogram, _ = labelled[0].split(",")
    code = ("import sys; from templearn.cli import main\n"
            "sys.argv = ['templearn', 'train', '-s', sys.argv[1], '-s', sys.argv[2], "
            "'-o', sys.argv[3]]\n"
            "try:\n    main()\nexcept SystemExit as exc:\n    assert exc.code == 2, exc.code\n"
            "assert 'jax' not in sys.modules, 'imported jax'\n")
    run = subprocess.run([sys.executable, "-c", code, labelled[0], f"{tomogram},{tmp_path}",
                          str(tmp_path / "out")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "labels.mrc" in run.stderr and "no such file" in run.stderr


def test_segment_pick_evaluate_bad_inputs(tmp_path, capsys):
    labels = np.zeros((16, 24, 32), np.uint8)
    labels[8, 12, 16] = 1
    write_mrc(tmp_path / "labels.mrc", Volume(labels, VOXEL))
    write_mrc(tmp_path / "mask.mrc", Volume(np.ones((8, 8, 8), np.float32), VOXEL))
    model = tmp_path / "training" / "model"
    model.mkdir(parents=True)
    (model / "model.json").write_text("{}")
    out = tmp_path / "out"
    cases = [
        (["segment", str(tmp_path / "labels.mrc"), str(model.parent)], "pass its model"),
        (["segment", str(tmp_path / "absent.mrc"), str(model)], "absent.mrc"),
        (["segment", str(tmp_path / "labels.mrc"), str(model), "--tile", "30"], "--tile"),
        (["segment", str(tmp_path / "labels.mrc"), str(model), "--crop", "60"], "--crop"),
        (["pick", str(tmp_path / "labels.mrc")], "--radius is required"),
        (["pick", str(tmp_path / "labels.mrc"), "--radius", "-3"], "--radius"),
        (["pick", str(tmp_path / "labels.mrc"), "--radius", "big"], "--radius", "'big'"),
        (["pick", str(tmp_path / "labels.mrc"), "--radius", "nope=4"], "nope"),
        (["pick", str(tmp_path / "labels.mrc"), "--radius", "4", "--method", "dbscan"],
         "--method"),
        (["pick", str(tmp_path / "labels.mrc"), "--radius", "4", "--mask",
          str(tmp_path / "mask.mrc")], "mask.mrc", "differs"),
        (["pick", str(tmp_path / "labels.mrc"), "--radius", "4", "--scores",
          str(tmp_path / "absent.mrc")], "absent.mrc"),
        (["evaluate", str(tmp_path / "picks.star"), str(tmp_path / "targets.star")],
         "picks.star", "no such file"),
        (["evaluate", "a.star", "b.star", "--distance", "0"], "--distance"),
    ]
    for args, *needles in cases:
        one_line_error(*main(*args, "-o", str(out), capsys=capsys), *needles)
        assert not out.exists() and not work_dir_of(out).exists(), args


# --- pick --method peaks on an all-background label map ---------------------------------

def test_pick_peaks_on_an_all_background_label_map(tmp_path, capsys):
    shape = (24, 40, 40)
    centres = np.array([[10.0, 12.0, 8.0], [28.0, 30.0, 14.0]])  # x, y, z
    zz, yy, xx = np.indices(shape)
    score = np.zeros(shape, np.float32)
    for x, y, z in centres:
        score += 0.4 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2 + (zz - z) ** 2) / 8.0)
    seg = tmp_path / "seg"
    write_mrc(seg / "labels.mrc", Volume(np.zeros(shape, np.uint8), VOXEL))
    write_mrc(seg / "scores_ribosome.mrc", Volume(score, VOXEL))
    (seg / "classes.json").write_text(json.dumps({"0": "background", "1": "ribosome"}))
    out = tmp_path / "picks"
    status, err = main("pick", str(seg / "labels.mrc"), "--method", "peaks", "--threshold",
                       "0.2", "--radius", "5", "-o", str(out), capsys=capsys)
    assert status == 0, err
    picks = star.read_star(out / "picks.star")
    found = picks[list(star.COORDINATES)].to_numpy()
    assert len(found) == 2
    assert np.abs(np.sort(found, axis=0) - np.sort(centres, axis=0)).max() < 1.0
    assert "2 picks (ribosome 2) by peaks" in err
    record = yaml.safe_load((out / "pick.params.yml").read_text())
    assert record["result"].startswith("2 picks") and record["inputs"]["scores"] == []


def test_validated_min_size_drops_clusters_smaller_than_the_validation_threshold(
        tmp_path, capsys):
    """A big and a small blob; picking.json (from the model's validation tomograms) says
    clusters under 50 voxels are noise: only the big one stays, and only when asked."""
    labels = np.zeros((20, 40, 40), np.uint8)
    labels[5:10, 5:10, 5:10] = 1  # 125 voxels
    labels[12:14, 30:32, 30:32] = 1  # 8 voxels
    seg = tmp_path / "seg"
    write_mrc(seg / "labels.mrc", Volume(labels, VOXEL))
    (seg / "classes.json").write_text(json.dumps({"0": "background", "1": "ribosome"}))
    common = ("pick", str(seg / "labels.mrc"), "--method", "components", "--radius", "3")
    status, err = main(*common, "-o", str(tmp_path / "all"), capsys=capsys)
    assert status == 0, err
    assert len(star.read_star(tmp_path / "all" / "picks.star")) == 2
    status, err = main(*common, "--validated-min-size", "-o", str(tmp_path / "v"),
                       capsys=capsys)
    one_line_error(status, err, "picking.json", "--validated-min-size")
    (seg / "picking.json").write_text(json.dumps({"min_size": {"ribosome": 50}}))
    status, err = main(*common, "--validated-min-size", "-o", str(tmp_path / "v"),
                       capsys=capsys)
    assert status == 0, err
    kept = star.read_star(tmp_path / "v" / "picks.star")
    assert len(kept) == 1 and int(kept[star.CLUSTER_SIZE].iloc[0]) == 125


def test_noise_units_need_the_half_tomograms(tmp_path, labelled, capsys):
    """train and segment with --normalise whiten-noise: exit 2 naming the missing half
    tomogram, before any training or network."""
    from templearn.unet.model import UNetConfig
    from templearn.unet.params import Normalisation
    from templearn.unet.store import MODEL_JSON, ModelInfo

    status, err = main("train", "-s", labelled[0], *TINY, "--normalise", "whiten-noise",
                       "-o", str(tmp_path / "training"), capsys=capsys)
    tomogram = labelled[0].split(",")[0]
    one_line_error(status, err, tomogram.removesuffix(".mrc") + "_even.mrc")
    model = tmp_path / "model"
    model.mkdir()
    info = ModelInfo(UNetConfig(classes=2, widths=(4, 4, 4)), ["background", "ball"],
                     VOXEL, 16, Normalisation("whiten-noise"))
    (model / MODEL_JSON).write_text(info.to_json())
    status, err = main("segment", tomogram, str(model), "-o", str(tmp_path / "seg"),
                       capsys=capsys)
    one_line_error(status, err, tomogram.removesuffix(".mrc") + "_even.mrc", "--halves")
    assert not (tmp_path / "seg").exists() and not (tmp_path / "training").exists()


# --- the whole chain, and a killed training -------------------------------------------

@pytest.mark.slow
def test_train_segment_pick_evaluate(tmp_path, labelled, capsys):
    training = tmp_path / "training"
    status, err = main("train", "-s", labelled[0], "-v", labelled[1], *TINY,
                       "--normalise", "whiten", "--whiten-lowpass", "0.5",
                       "-o", str(training), capsys=capsys)
    assert status == 0, err
    for name in ("model/model.json", "training_log.csv", "training_curves.png",
                 "checkpoints", "validation_picks.json", "train.params.yml", "versions.yml"):
        assert (training / name).exists(), name
    assert "s per step" in err and "estimated time left" in err
    assert not work_dir_of(training).exists()
    assert files_mention(training, ".partial") == []
    rows = pd.read_csv(training / "training_log.csv")
    assert list(rows["epoch"]) == [1, 2]

    tomogram, labels = labelled[1].split(",")
    seg = tmp_path / "seg"
    status, err = main("segment", tomogram, str(training / "model"), "--tile", "32",
                       "--crop", "4", "-o", str(seg), capsys=capsys)
    assert status == 0, err
    assert json.loads((seg / "classes.json").read_text()) == {"0": "background", "1": "ball"}
    for name in ("scores_ball.mrc", "labels.mrc", "segment.params.yml"):
        assert (seg / name).exists(), name
    # segment prepares the tomogram by the model's own rule (here: whitened)
    from templearn.unet.normalise import normalise
    from templearn.unet.params import Normalisation, TileParams
    from templearn.unet.segment import predictor
    from templearn.unet.segment import segment as segment_volume
    from templearn.unet.store import load_model

    network, info = load_model(training / "model")
    assert info.normalisation == Normalisation("whiten", 0.5)
    expected, _ = segment_volume(normalise(read_mrc(tomogram).data, info.normalisation),
                          predictor(network, 1), 2, TileParams(tile=32, crop=4))
    np.testing.assert_allclose(read_mrc(seg / "scores_ball.mrc").data, expected[1], atol=1e-4)
    averaged_dir = tmp_path / "seg-averaged"
    status, err = main("segment", tomogram, str(training / "model"), "--tile", "32",
                       "--crop", "4", "--average-rotations", "-o", str(averaged_dir),
                       capsys=capsys)
    assert status == 0, err
    from templearn.unet.segment import rotation_averaged

    averaged, _ = segment_volume(normalise(read_mrc(tomogram).data, info.normalisation),
                                 rotation_averaged(predictor(network, 1)), 2,
                                 TileParams(tile=32, crop=4))
    written = read_mrc(averaged_dir / "scores_ball.mrc").data
    np.testing.assert_allclose(written, averaged[1], atol=1e-4)
    assert not np.allclose(written, expected[1], atol=1e-4)

    picks = tmp_path / "picks"
    status, err = main("pick", str(seg / "labels.mrc"), "--method", "peaks", "--radius", "4",
                       "--threshold", "0.01", "-o", str(picks), capsys=capsys)
    assert status == 0, err
    assert len(star.read_star(picks / "picks.star")) > 0

    evaluation = tmp_path / "evaluation"
    status, err = main("evaluate", str(picks / "picks.star"), f"{labels}/targets.star",
                       "-o", str(evaluation), "--sweep", "score", capsys=capsys)
    assert status == 0, err
    metrics = json.loads((evaluation / "metrics.json").read_text())
    assert metrics["classes"]["ball"]["n_true"] == 10
    assert (evaluation / "pr_curve.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_a_killed_training_resumes_from_its_work_dir(tmp_path, labelled, monkeypatch):
    import jax
    from flax import nnx

    from templearn.unet import train as unet_train
    from templearn.unet.store import load_model

    params = train.Params(preset="cpu-small", widths=(8, 8, 8), patch=16, batch=2, steps=2,
                          epochs=2, loss="cross-entropy", learning_rate=3e-3, shift=4)
    inputs = train.Inputs(sample=(labelled[0],))
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    train.run(params, inputs, straight)

    real_write_log = unet_train._write_log

    def kill_in_epoch_2(path, rows):
        if len(rows) == 2:  # epoch 1 is checkpointed, epoch 2 is not
            raise KeyboardInterrupt
        real_write_log(path, rows)

    monkeypatch.setattr(unet_train, "_write_log", kill_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train.run(params, inputs, killed)
    work = work_dir_of(killed)
    assert not killed.exists() and (work / "checkpoints").is_dir()
    assert len(pd.read_csv(work / "training_log.csv")) == 1
    monkeypatch.setattr(unet_train, "_write_log", real_write_log)

    train.run(params, inputs, killed)  # the same run again: resumes after epoch 1
    assert not work.exists()
    assert list(pd.read_csv(killed / "training_log.csv")["epoch"]) == [1, 2]
    a = nnx.state(load_model(straight / "model")[0], nnx.Param)
    b = nnx.state(load_model(killed / "model")[0], nnx.Param)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    # The records are the same, and nothing in the output names the work directory.
    assert (killed / "train.params.yml").read_text() == \
        (straight / "train.params.yml").read_text()
    assert files_mention(killed, work.name) == [] and files_mention(killed, ".partial") == []
    with pytest.raises(InputError, match="--sample"):
        train.run(params, train.Inputs(sample=("nocomma",)), tmp_path / "again")


def test_pick_drops_picks_where_the_half_tomograms_disagree(tmp_path, capsys):
    from tests.test_halves import CENTRES, EMPTY, _blobs_and_noise

    even, odd = _blobs_and_noise(np.random.default_rng(2))
    tomogram = tmp_path / "tomo" / "tomogram.mrc"
    for path, data in ((tomogram, (even + odd) / 2), (tomogram.parent / "tomogram_even.mrc",
                       even), (tomogram.parent / "tomogram_odd.mrc", odd)):
        write_mrc(path, Volume(data.astype(np.float32), VOXEL))
    grid = np.stack(np.meshgrid(*(np.arange(n) for n in even.shape), indexing="ij"), -1)
    labels = np.zeros(even.shape, np.uint8)
    for centre in (CENTRES[0], CENTRES[1], EMPTY[0]):  # two particles, one noise blob
        labels[((grid - centre) ** 2).sum(-1) <= 9] = 1
    write_mrc(tmp_path / "seg" / "labels.mrc", Volume(labels, VOXEL))
    args = ("pick", str(tmp_path / "seg" / "labels.mrc"), "--radius", "4", "--method",
            "components")
    status, err = main(*args, "--halves", str(tomogram), "-o", str(tmp_path / "p"),
                       capsys=capsys)
    assert status == 0, err
    kept = star.read_star(tmp_path / "p" / pick.PICKS)
    zyx = kept[list(star.COORDINATES[::-1])].to_numpy()
    assert np.allclose(np.sort(zyx, 0), np.sort(CENTRES[:2], 0), atol=0.5)
    assert "1 dropped where the halves disagree" in err
    # Missing halves: one line naming the file, nothing written.
    (tomogram.parent / "tomogram_odd.mrc").unlink()
    status, err = main(*args, "--halves", str(tomogram), "-o", str(tmp_path / "q"),
                       capsys=capsys)
    one_line_error(status, err, "--halves", "tomogram_odd.mrc")
    assert not (tmp_path / "q").exists()


def test_halves_options_reject_bad_input_in_one_line(tmp_path, capsys):
    labels = tmp_path / "seg" / "labels.mrc"
    write_mrc(labels, Volume(np.zeros((8, 8, 8), np.uint8), VOXEL))
    not_mrc = tmp_path / "tomogram.mrc"
    not_mrc.write_text("data_particles\nloop_\n_rlnCoordinateX #1\n" * 40)
    for bad, needle in ((("--halves-z", "nan"), "--halves-z"),
                        (("--halves", str(not_mrc)), "not a readable MRC file")):
        status, err = main("pick", str(labels), "--radius", "3", *bad, "-o",
                           str(tmp_path / "out"), capsys=capsys)
        one_line_error(status, err, needle)
        assert not (tmp_path / "out").exists()
