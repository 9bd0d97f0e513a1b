"""Template confirmation of picks: the best score near a pick is found within its reach and
no further; noise passes the confirmation level about as often as `false_alarms` promises;
`pick --confirm` keeps the pick on a planted particle and drops the one on noise; a bad
search folder is a one-line error; a run with `confirm_picks` searches every picked
tomogram before picking it."""

import numpy as np
import pytest

from templearn import star
from templearn.confirm import best_nearby, confirmation_level, confirmed, neighbourhood
from templearn.errors import InputError
from templearn.match_threshold import SearchLevels
from templearn.mrc import Volume, write_mrc
from templearn.stages import match as match_stage
from templearn.stages import pick
from tests.test_match import CENTRE, TRUE, chiral_template, plant, run_cli
from tests.test_stage_picking import main, one_line_error


def test_best_nearby_looks_within_reach_and_no_further():
    scores = np.zeros((20, 20, 20), np.float32)
    scores[10, 10, 10] = 5.0
    centres = np.array([[10, 10, 10], [12, 8, 11], [13, 10, 10], [0, 0, 0], [19.4, 3, 3]])
    assert best_nearby(scores, centres, 2).tolist() == [5.0, 5.0, 0.0, 0.0, 0.0]
    assert best_nearby(scores, centres, 3)[2] == 5.0
    assert best_nearby(scores, np.array([[10.4, 9.6, 10.2]]), 0).tolist() == [5.0]
    assert best_nearby(scores, np.zeros((0, 3)), 2).shape == (0,)
    assert len(neighbourhood(2)) == 125 and np.abs(neighbourhood(2)).max() == 2


def test_noise_is_confirmed_about_as_often_as_the_false_alarms_promise():
    # One rotation: a pick's trials are the (2·reach + 1)³ independent voxels it looks at.
    noise = SearchLevels(mean=0.1, sigma=0.02, voxels=48**3, rotations=1)
    scores = np.random.default_rng(4).normal(0.1, 0.02, (48, 48, 48))
    centres = np.stack(np.meshgrid(*[np.arange(1, 48, 3)] * 3, indexing="ij"), -1)
    centres = centres.reshape(-1, 3)  # 4096 disjoint 3³ neighbourhoods
    for false_alarms in (0.05, 0.3):  # expected exceedances: P(any) = 1 − exp(−that)
        rate = confirmed(scores, noise, centres, 1, false_alarms).mean()
        chance = 1 - np.exp(-false_alarms)
        assert rate == pytest.approx(chance, abs=4 * np.sqrt(chance / 4096))
    more_trials = SearchLevels(0.1, 0.02, 48**3, rotations=100)
    assert confirmation_level(more_trials, 1, 0.05) > confirmation_level(noise, 1, 0.05)
    assert confirmation_level(noise, 2, 0.05) > confirmation_level(noise, 1, 0.05)


def test_the_particles_boundary_confirms_where_it_lies_below_the_noise_level():
    noise_only = SearchLevels(0.0, 0.05, 10**6, 552)
    strict = confirmation_level(noise_only, 2, 0.05)
    scores = np.zeros((10, 10, 10), np.float32)
    scores[5, 5, 5] = 0.9 * strict
    centre = np.array([[5, 5, 5]])
    assert not confirmed(scores, noise_only, centre, 2, 0.05)[0]
    crowded = SearchLevels(0.0, 0.05, 10**6, 552, boundary=0.8 * strict)
    assert confirmation_level(crowded, 2, 0.05) == 0.8 * strict
    assert confirmed(scores, crowded, centre, 2, 0.05)[0]
    sparse = SearchLevels(0.0, 0.05, 10**6, 552, boundary=2 * strict)
    assert confirmation_level(sparse, 2, 0.05) == strict


def test_search_levels_round_trip_and_rejects_what_is_not_one(tmp_path):
    for levels in (SearchLevels(0.001, 0.02, 1000, 552), SearchLevels(0.0, 0.1, 9, 4, 0.3)):
        levels.write(tmp_path / "levels.json")
        assert SearchLevels.read(tmp_path / "levels.json") == levels
    for text in ('{"mean": 0}', "[1, 2]", '{"mean": 0, "sigma": 0, "voxels": 1, '
                                            '"rotations": 1}'):
        (tmp_path / "bad.json").write_text(text)
        with pytest.raises(InputError, match=r"bad\.json"):
            SearchLevels.read(tmp_path / "bad.json")


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A dark particle planted in noise, its template search (30°) and a label map with a
    blob on the particle and one on noise."""
    folder = tmp_path_factory.mktemp("confirm")
    template = chiral_template()
    write_mrc(folder / "tomo.mrc", Volume(-plant(template, TRUE, 0.5, seed=3)
                                          .astype(np.float32), 10.0))
    write_mrc(folder / "template.mrc", Volume(template.astype(np.float32), 10.0))
    result = run_cli(str(folder / "tomo.mrc"), str(folder / "template.mrc"), "--angular-step",
                     "30", "-o", str(folder / "match"))
    assert result.exit_code == 0, result.output
    assert SearchLevels.read(folder / "match" / match_stage.LEVELS).rotations == 552
    grid = np.stack(np.meshgrid(*(np.arange(32),) * 3, indexing="ij"), -1)
    labels = np.zeros((32, 32, 32), np.uint8)
    noise_blob = np.array([26, 5, 24])
    for centre in (CENTRE + [1, 0, -1], noise_blob):
        labels[((grid - centre) ** 2).sum(-1) <= 6] = 1
    write_mrc(folder / "seg" / "labels.mrc", Volume(labels, 10.0))
    return folder


def test_pick_keeps_the_picks_the_template_confirms(searched, tmp_path, capsys):
    args = ("pick", str(searched / "seg" / "labels.mrc"), "--radius", "3", "--method",
            "components")
    status, err = main(*args, "-o", str(tmp_path / "all"), capsys=capsys)
    assert status == 0 and len(star.read_star(tmp_path / "all" / pick.PICKS)) == 2
    status, err = main(*args, "--confirm", str(searched / "match"), "-o",
                       str(tmp_path / "p"), capsys=capsys)
    assert status == 0, err
    kept = star.read_star(tmp_path / "p" / pick.PICKS)
    zyx = kept[list(star.COORDINATES[::-1])].to_numpy()
    assert len(kept) == 1 and np.abs(zyx[0] - (CENTRE + [1, 0, -1])).max() <= 0.5
    assert "1 not confirmed by the template" in err


def test_a_bad_search_folder_is_a_one_line_error(searched, tmp_path, capsys):
    labels = str(searched / "seg" / "labels.mrc")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "levels.json").write_text("{}")
    write_mrc(bad / "scores.mrc", Volume(np.zeros((32, 32, 32), np.float32), 10.0))
    small = tmp_path / "small"
    small.mkdir()
    (small / "levels.json").write_text((searched / "match" / "levels.json").read_text())
    write_mrc(small / "scores.mrc", Volume(np.zeros((16, 32, 32), np.float32), 10.0))
    for folder, needle in ((bad, "levels.json"), (small, "scores.mrc"),
                           (tmp_path / "none", "scores.mrc")):
        status, err = main("pick", labels, "--radius", "3", "--confirm", str(folder), "-o",
                           str(tmp_path / "out"), capsys=capsys)
        one_line_error(status, err, needle)
        assert not (tmp_path / "out").exists()
    for bad_option in (("--confirm-false-alarms", "0"), ("--confirm-false-alarms", "inf"),
                       ("--confirm-reach", "-1")):
        status, err = main("pick", labels, "--radius", "3", *bad_option, "-o",
                           str(tmp_path / "out"), capsys=capsys)
        one_line_error(status, err, bad_option[0])


def test_a_run_that_confirms_picks_searches_each_tomogram_first(tmp_path):
    from templearn.pipeline.experiment import load_experiment
    from templearn.pipeline.graph import build_tasks
    from tests.test_pipeline import MINIMAL, write

    good = write(tmp_path / "a.yaml", MINIMAL.replace("model.pdb", "bundled:1bxn")
                 + "samples: {train: 1, validation: 0, test: 2}\n")
    for sets, confirming in (([], False), (["confirm_picks=true"], True)):
        experiment, _ = load_experiment([good], sets)
        tasks = build_tasks(experiment, tmp_path / "run")
        order = {task.name: i for i, task in enumerate(tasks)}
        picks = [t for t in tasks if t.stage == "pick"]
        assert len(picks) == 2
        for task in picks:
            search = task.name.replace("/picks", "/match")
            assert (search in order) == confirming
            confirm = task.make_inputs().confirm
            if confirming:
                assert confirm == tmp_path / "run" / search and search in task.deps
                assert order[search] < order[task.name]
            else:
                assert confirm is None
    two = write(tmp_path / "b.yaml", MINIMAL.replace(
        "  thing: {structure: model.pdb, flexible: false}\n",
        "  thing: {structure: bundled:1bxn, flexible: false}\n"
        "  other: {structure: bundled:3qm1, flexible: false}\n"))
    load_experiment([two])
    with pytest.raises(InputError, match="first target's template"):
        load_experiment([two], ["confirm_picks=true"])
