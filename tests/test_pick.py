"""Picking particles from label and score maps: planted spheres and Gaussian peaks."""

import json

import numpy as np
import pandas as pd
import pytest
import typer
from scipy.spatial import cKDTree
from typer.testing import CliRunner

from templearn import star
from templearn.cli.build import make_command
from templearn.errors import InputError
from templearn.mrc import Volume, read_mrc, write_mrc
from templearn.pick import ball_offsets, pick_particles
from templearn.sample import CLASS_NAME
from templearn.stages import pick as pick_stage

SHAPE = (32, 64, 64)  # z, y, x
RADIUS = 4.0
# Non-touching centres (x, y, z) with a fractional part, and their classes.
CENTRES = np.array([[12.0, 12.0, 10.0], [30.0, 14.0, 16.0], [50.0, 12.0, 20.0],
                    [14.0, 34.0, 22.0], [34.0, 36.0, 10.0], [52.0, 34.0, 15.0],
                    [12.0, 52.0, 14.0], [32.0, 52.0, 22.0], [50.0, 52.0, 9.0]])
CLASSES = np.array([1, 2, 1, 2, 1, 2, 1, 2, 1])


def plant(shape, centres, radius, classes) -> np.ndarray:
    """uint8 label map with a ball of `radius` around each centre (x, y, z)."""
    labels = np.zeros(shape, np.uint8)
    offsets = ball_offsets(radius)
    for centre, k in zip(centres, classes, strict=True):
        voxels = np.rint(centre[::-1]).astype(int) + offsets
        labels[voxels[:, 0], voxels[:, 1], voxels[:, 2]] = k
    return labels


def assert_recovered(picks: pd.DataFrame, centres: np.ndarray, classes: np.ndarray,
                     tolerance: float = 1.0) -> None:
    for k in np.unique(classes):
        found = picks[picks[star.CLASS_ID] == k][list(star.COORDINATES)].to_numpy()
        truth = centres[classes == k]
        assert len(found) == len(truth)
        distance, _ = cKDTree(found).query(truth)
        assert distance.max() < tolerance


@pytest.fixture(scope="module")
def labels() -> np.ndarray:
    return plant(SHAPE, CENTRES, RADIUS, CLASSES)


@pytest.mark.parametrize("method", ["meanshift", "components"])
def test_clustering_recovers_planted_spheres(labels, method):
    picks = pick_particles(labels, None, method, RADIUS, class_names={1: "a", 2: "b"},
                           tomo_name="t1")
    assert_recovered(picks, CENTRES, CLASSES)
    assert list(picks.columns[:4]) == [star.TOMO_NAME, *star.COORDINATES]
    assert set(picks[CLASS_NAME]) == {"a", "b"} and (picks[star.TOMO_NAME] == "t1").all()
    ball = len(ball_offsets(RADIUS))
    assert (picks[star.CLUSTER_SIZE] == ball).all()
    assert picks[star.SCORE].isna().all()


def test_meanshift_on_binned_labels_is_close(labels):
    picks = pick_particles(labels, None, "meanshift", RADIUS, bin2=True)
    assert_recovered(picks, CENTRES, CLASSES, tolerance=1.5)
    ball = len(ball_offsets(RADIUS))
    assert np.allclose(picks[star.CLUSTER_SIZE], ball, rtol=0.5)


def test_meanshift_separates_touching_particles_that_components_merge():
    centres = np.array([[20.0, 32.0, 16.0], [27.0, 32.0, 16.0]])  # 7 voxels apart, touching
    touching = plant(SHAPE, centres, RADIUS, [1, 1])
    assert len(pick_particles(touching, None, "components", RADIUS)) == 1
    picks = pick_particles(touching, None, "meanshift", RADIUS)
    assert len(picks) == 2


def test_size_and_score_thresholds(labels):
    mixed = labels.copy()  # the first three particles shrink to radius 2
    mixed[plant(SHAPE, CENTRES[:3], RADIUS, CLASSES[:3]) > 0] = 0
    mixed = np.maximum(mixed, plant(SHAPE, CENTRES[:3], 2.0, CLASSES[:3]))
    ball = len(ball_offsets(RADIUS))
    picks = pick_particles(mixed, None, "components", RADIUS, min_size=ball)
    assert len(picks) == len(CENTRES) - 3
    picks = pick_particles(mixed, None, "components", RADIUS, max_size=ball - 1)
    assert len(picks) == 3
    scores = {1: (mixed == 1) * 0.9, 2: (mixed == 2) * 0.4}
    picks = pick_particles(mixed, scores, "components", RADIUS, threshold=0.5)
    assert set(picks[star.CLASS_ID]) == {1}
    assert np.allclose(picks[star.SCORE], 0.9)


def test_mask_excludes_regions(labels):
    mask = np.ones(SHAPE, np.float32)
    mask[:, :, :40] = 0  # keep x >= 40 only
    for method in ("meanshift", "components"):
        picks = pick_particles(labels, None, method, RADIUS, mask=mask)
        keep = CENTRES[:, 0] >= 44
        assert_recovered(picks, CENTRES[keep], CLASSES[keep])


def test_peaks_find_gaussian_maxima_with_exclusion(rng):
    centres = np.array([[10.0, 10.0, 8.0], [40.0, 12.0, 20.0], [20.0, 45.0, 16.0],
                        [50.0, 50.0, 10.0], [15.0, 15.0, 8.0]])  # the last is 5 from the first
    amplitude = np.array([1.0, 0.9, 0.8, 0.85, 0.7])
    zz, yy, xx = np.indices(SHAPE)
    score = 0.05 * rng.standard_normal(SHAPE)
    for (x, y, z), a in zip(centres, amplitude, strict=True):
        score += a * np.exp(-((xx - x) ** 2 + (yy - y) ** 2 + (zz - z) ** 2) / (2 * 2.0**2))
    picks = pick_particles(None, {1: score}, "peaks", 8.0, threshold=0.4)
    assert_recovered(picks, centres[:4], np.ones(4, int))
    assert picks[star.SCORE].is_monotonic_decreasing
    assert picks[star.SCORE].iloc[0] == pytest.approx(0.8**1.5, abs=0.05)  # σ 2 blurred by 1
    # With a small exclusion radius the fifth maximum comes back; N picks caps the count.
    assert len(pick_particles(None, {1: score}, "peaks", 3.0, threshold=0.4)) == 5
    assert len(pick_particles(None, {1: score}, "peaks", 3.0, threshold=0.4, max_picks=2)) == 2


def test_score_array_and_bad_inputs(labels):
    scores = np.stack([labels == 0, labels == 1, labels == 2]).astype(np.float32)
    picks = pick_particles(labels, scores, "components", RADIUS)
    assert np.allclose(picks[star.SCORE], 1.0)
    with pytest.raises(InputError, match="shape"):
        pick_particles(labels, None, "components", RADIUS, mask=np.ones((4, 4, 4)))
    with pytest.raises(InputError, match="no labelled voxels"):
        pick_particles(np.zeros(SHAPE, np.uint8), None, "components", RADIUS)
    with pytest.raises(InputError, match="method"):
        pick_particles(labels, None, "dbscan", RADIUS)
    with pytest.raises(InputError, match="radius"):
        pick_particles(labels, None, "components", {1: 4.0})
    with pytest.raises(InputError, match="score maps"):
        pick_particles(labels, None, "peaks", RADIUS)


def test_peaks_ignore_an_all_background_label_map(rng):
    """With a lowered threshold, peaks the argmax labelled background are still picked:
    the label map gives only the grid and the classes."""
    centres = np.array([[12.0, 14.0, 10.0], [44.0, 40.0, 20.0]])
    zz, yy, xx = np.indices(SHAPE)
    score = 0.02 * rng.random(SHAPE)
    for x, y, z in centres:  # peaks of 0.35: below 0.5, so background in the argmax
        score += 0.35 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2 + (zz - z) ** 2) / (2 * 2.0**2))
    background = np.zeros(SHAPE, np.uint8)
    picks = pick_particles(background, {1: score}, "peaks", 6.0, threshold=0.2,
                           class_names={1: "ribosome"})
    assert_recovered(picks, centres, np.ones(2, int))
    assert (picks[star.CLUSTER_SIZE] >= 1).all() and (picks[CLASS_NAME] == "ribosome").all()
    # The default threshold (0.5) keeps none of them; min_size counts score voxels.
    assert len(pick_particles(background, {1: score}, "peaks", 6.0,
                              class_names={1: "ribosome"})) == 0
    big = pick_particles(background, {1: score}, "peaks", 6.0, threshold=0.2, min_size=2,
                         class_names={1: "ribosome"})
    assert len(big) == 2


def run_pick(*args: str):
    app = typer.Typer()
    app.command()(make_command(pick_stage.STAGE))
    return CliRunner().invoke(app, list(args))


def test_pick_cli_writes_picks_star(tmp_path, labels):
    seg = tmp_path / "seg"
    write_mrc(seg / "labels.mrc", Volume(labels, 13.0))
    for k, name in ((1, "ribosome"), (2, "fas")):
        write_mrc(seg / f"scores_{name}.mrc", Volume((labels == k).astype(np.float32), 13.0))
    (seg / "classes.json").write_text(json.dumps({"1": "ribosome", "2": "fas"}))
    out = tmp_path / "picks"
    run = run_pick(str(seg / "labels.mrc"), "--scores", str(seg), "--method", "meanshift",
                   "--radius", "ribosome=4", "--radius", "fas=4.5", "--name", "tomo7",
                   "-o", str(out))
    assert run.exit_code == 0, run.output
    picks = star.read_star(out / "picks.star")
    general = star.read_star(out / "picks.star", star.GENERAL_BLOCK)
    assert [int(general[c].iloc[0]) for c in star.SIZE] == [64, 64, 32]
    assert float(general[star.VOXEL_SIZE].iloc[0]) == pytest.approx(13.0)
    assert_recovered(picks, CENTRES, CLASSES)
    assert set(picks[CLASS_NAME]) == {"ribosome", "fas"}
    assert (picks[star.TOMO_NAME] == "tomo7").all()
    assert np.allclose(picks[star.SCORE], 1.0)
    assert (out / "versions.yml").exists() and (out / "pick.params.yml").exists()


def test_pick_cli_bad_inputs_write_nothing(tmp_path, labels):
    write_mrc(tmp_path / "labels.mrc", Volume(labels, 13.0))
    write_mrc(tmp_path / "mask.mrc", Volume(np.ones((8, 8, 8), np.float32), 13.0))
    (tmp_path / "junk.mrc").write_text("not a map")
    out = tmp_path / "out"
    cases = [
        (["missing.mrc", "--radius", "4"], "no such file"),
        ([str(tmp_path / "junk.mrc"), "--radius", "4"], "junk.mrc"),
        ([str(tmp_path / "labels.mrc"), "--radius", "4", "--mask", str(tmp_path / "mask.mrc")],
         "mask.mrc"),
        ([str(tmp_path / "labels.mrc")], "--radius"),
        ([str(tmp_path / "labels.mrc"), "--radius", "nope=4"], "nope"),
    ]
    for args, needle in cases:
        run = run_pick(*args, "-o", str(out))
        assert isinstance(run.exception, InputError), (args, run.output)
        assert needle in str(run.exception)
        assert not out.exists()
    assert read_mrc(tmp_path / "labels.mrc").data.shape == SHAPE
