"""Pick evaluation: one-to-one matching, P/R/F1, the threshold sweep and the CLI."""

import json

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from templearn import star
from templearn.cli.build import make_command
from templearn.errors import InputError
from templearn.evaluate import crossing, evaluate_picks, match_picks
from templearn.mrc import Volume, write_mrc
from templearn.sample import CLASS_NAME
from templearn.stages import evaluate as evaluate_stage

SHAPE_ZYX = (40, 100, 120)


def table(xyz, name="ribosome", class_id=1, size=None, score=None, tomo="t") -> pd.DataFrame:
    xyz = np.asarray(xyz, float).reshape(-1, 3)
    n = len(xyz)
    columns = {star.TOMO_NAME: [tomo] * n,
               **{c: xyz[:, a] for a, c in enumerate(star.COORDINATES)},
               CLASS_NAME: [name] * n, star.CLASS_ID: [class_id] * n}
    if size is not None:
        columns[star.CLUSTER_SIZE] = size
    if score is not None:
        columns[star.SCORE] = score
    return pd.DataFrame(columns)


def truth_points(n: int = 12, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(np.arange(4), np.arange(3), [0], indexing="ij"), -1).reshape(-1, 3)
    return (grid[:n] * [25, 25, 0] + [15, 20, 20] + rng.uniform(-2, 2, (n, 3)))


def test_perfect_picks_give_f1_one():
    xyz = truth_points()
    metrics = evaluate_picks(table(xyz, size=np.full(len(xyz), 50)), table(xyz))
    entry = metrics["classes"]["ribosome"]
    assert entry["f1"] == entry["precision"] == entry["recall"] == 1.0
    assert entry["tp"] == len(xyz) and entry["fp"] == entry["fn"] == 0
    assert entry["best_f1"] == 1.0 and entry["f1_at_p_eq_r"] == 1.0


def test_picks_shifted_beyond_the_distance_never_match():
    xyz = truth_points()
    shifted = xyz + [11.0, 0.0, 0.0]
    entry = evaluate_picks(table(shifted, size=np.ones(len(xyz))), table(xyz), 10.0)["classes"]
    assert entry["ribosome"]["tp"] == 0 and entry["ribosome"]["f1"] == 0.0
    near = xyz + [9.0, 0.0, 0.0]
    entry = evaluate_picks(table(near, size=np.ones(len(xyz))), table(xyz), 10.0)["classes"]
    assert entry["ribosome"]["tp"] == len(xyz)


def test_matching_is_one_to_one_and_maximal():
    truth = np.array([[20.0, 50, 20]])
    picks = np.array([[22.0, 50, 20], [21.0, 50, 20]])
    pi, ti = match_picks(picks, truth, 10)
    assert list(pi) == [1] and list(ti) == [0]  # the closer pick
    entry = evaluate_picks(table(picks, size=[5, 5]), table(truth))["classes"]["ribosome"]
    assert (entry["tp"], entry["fp"], entry["fn"]) == (1, 1, 0)
    # A greedy closest-first matcher would pair p with A and leave q unmatched.
    truth = np.array([[20.0, 50, 20], [28.0, 50, 20]])  # A, B
    picks = np.array([[24.0, 50, 20], [15.0, 50, 20]])  # p (4 from both), q (5 from A only)
    pi, ti = match_picks(picks, truth, 10)
    assert sorted(zip(pi.tolist(), ti.tolist(), strict=True)) == [(0, 1), (1, 0)]
    # Many picks and particles: every index at most once.
    rng = np.random.default_rng(0)
    truth, picks = rng.uniform(0, 60, (80, 3)), rng.uniform(0, 60, (120, 3))
    pi, ti = match_picks(picks, truth, 10)
    assert len(set(pi)) == len(pi) and len(set(ti)) == len(ti)
    assert np.all(np.linalg.norm(picks[pi] - truth[ti], axis=1) <= 10)


def test_sweep_and_crossing_on_a_hand_built_case():
    truth = truth_points(4)
    far = [[110.0, 90, 30], [5.0, 90, 30], [60.0, 90, 5]]
    # Sizes: three true picks 40, 30, 20 and false ones 20, 20, 10.
    picks = table(np.vstack([truth[:3], far]), size=[40, 30, 20, 20, 20, 10])
    entry = evaluate_picks(picks, table(truth), sweep="size")["classes"]["ribosome"]
    sweep = entry["sweep"]
    assert sweep["thresholds"] == [10, 20, 30, 40]
    assert sweep["n_picks"] == [6, 5, 2, 1]
    np.testing.assert_allclose(sweep["precision"], [0.5, 0.6, 1.0, 1.0])
    np.testing.assert_allclose(sweep["recall"], [0.75, 0.75, 0.5, 0.25])
    np.testing.assert_allclose(sweep["f1"], [0.6, 2 / 3, 2 / 3, 0.4])
    assert entry["best_f1"] == pytest.approx(2 / 3) and entry["best_threshold"] == 20
    # P - R goes -0.15 → +0.5 between 20 and 30: w = 0.15 / 0.65.
    w = 0.15 / 0.65
    assert entry["f1_at_p_eq_r"] == pytest.approx(0.6 + 0.4 * w)
    assert entry["threshold_at_p_eq_r"] == pytest.approx(20 + 10 * w)
    assert (entry["precision"], entry["recall"]) == (0.5, 0.75)  # no threshold


def test_crossing_helpers_and_score_sweep():
    assert crossing(np.array([1.0, 2.0]), np.array([0.5, 0.9]), np.array([0.8, 0.6])) == \
        pytest.approx((0.7, 1.5))
    assert crossing(np.array([1.0, 2.0]), np.array([0.9, 1.0]), np.array([0.5, 0.4])) == \
        (None, None)
    truth = truth_points(4)
    picks = table(np.vstack([truth, [[110.0, 90, 30]]]), score=[0.9, 0.8, 0.7, 0.6, 0.95])
    entry = evaluate_picks(picks, table(truth), sweep="score")["classes"]["ribosome"]
    # The false pick scores highest, so it is always kept: best F1 = 8/9 with every pick.
    assert entry["best_f1"] == pytest.approx(8 / 9)
    assert entry["best_threshold"] == pytest.approx(0.6)
    assert entry["f1_at_p_eq_r"] == pytest.approx(0.75)  # 4 picks, 3 true, at 0.7
    with pytest.raises(InputError, match="tlScore"):
        evaluate_picks(table(truth, size=[1, 2, 3, 4]), table(truth), sweep="score")


def test_mask_excludes_truth_and_picks_and_classes_are_separate():
    truth = truth_points()
    mask = np.zeros(SHAPE_ZYX, np.uint8)
    mask[:, :, :60] = 1  # x < 60
    picks = pd.concat([table(truth, size=np.ones(len(truth))),
                       table(truth[:2], name="fas", class_id=2, size=[1, 1])])
    targets = table(truth[:8])  # the picks of the last four are false positives ...
    entry = evaluate_picks(picks, targets, mask=mask)["classes"]["ribosome"]
    inside = truth[:, 0] < 59.5
    assert entry["n_true"] == inside[:8].sum() and entry["n_picks"] == inside.sum()
    metrics = evaluate_picks(picks, targets)
    assert metrics["classes"]["ribosome"]["fp"] == 4
    assert metrics["unmatched_pick_classes"] == ["fas"]
    with pytest.raises(InputError, match="no ground-truth"):
        evaluate_picks(picks, targets, mask=np.zeros(SHAPE_ZYX))


def write_tables(path, particles: pd.DataFrame, shape_zyx=SHAPE_ZYX) -> None:
    star.write_star(path, {star.GENERAL_BLOCK: star.general_table(shape_zyx, 13.0),
                           star.PARTICLES_BLOCK: particles})


def run_evaluate(*args: str):
    app = typer.Typer()
    app.command()(make_command(evaluate_stage.STAGE))
    return CliRunner().invoke(app, list(args))


def test_evaluate_cli_writes_metrics_and_plot(tmp_path):
    truth = truth_points()
    write_tables(tmp_path / "targets.star", table(truth))
    write_tables(tmp_path / "picks.star",
                 table(np.vstack([truth[:10], [[110.0, 90, 30]]]), size=[30] * 10 + [5],
                       score=[0.9] * 10 + [0.3]))
    mask = np.ones(SHAPE_ZYX, np.float32)
    write_mrc(tmp_path / "mask.mrc", Volume(mask, 13.0))
    out = tmp_path / "eval"
    run = run_evaluate(str(tmp_path / "picks.star"), str(tmp_path / "targets.star"),
                       "--sweep", "score", "--mask", str(tmp_path / "mask.mrc"), "-o", str(out))
    assert run.exit_code == 0, run.output
    metrics = json.loads((out / "metrics.json").read_text())
    entry = metrics["classes"]["ribosome"]
    assert (entry["n_true"], entry["n_picks"], entry["tp"]) == (12, 11, 10)
    assert entry["best_f1"] == pytest.approx(20 / 22)
    assert len(entry["sweep"]["f1"]) == 2 and metrics["distance"] == 10.0
    assert (out / "pr_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "versions.yml").exists() and (out / "evaluate.params.yml").exists()


def test_evaluate_cli_bad_inputs_write_nothing(tmp_path):
    truth = truth_points()
    write_tables(tmp_path / "targets.star", table(truth))
    write_tables(tmp_path / "picks.star", table(truth, size=np.ones(len(truth))))
    write_tables(tmp_path / "other.star", table(truth, size=np.ones(len(truth))), (40, 100, 64))
    write_tables(tmp_path / "empty.star", table(np.zeros((0, 3))))
    write_mrc(tmp_path / "mask.mrc", Volume(np.ones((4, 4, 4), np.float32), 13.0))
    picks, targets = str(tmp_path / "picks.star"), str(tmp_path / "targets.star")
    out = tmp_path / "eval"
    cases = [
        ([str(tmp_path / "missing.star"), targets], "missing.star"),
        ([str(tmp_path / "other.star"), targets], "other.star"),
        ([picks, str(tmp_path / "empty.star")], "empty.star"),
        ([picks, targets, "--mask", str(tmp_path / "mask.mrc")], "mask.mrc"),
        ([picks, targets, "--sweep", "volume"], "--sweep"),
    ]
    for args, needle in cases:
        run = run_evaluate(*args, "-o", str(out))
        assert isinstance(run.exception, InputError), (args, run.output)
        assert needle in str(run.exception)
        assert not out.exists()
