"""Export and import of picks (RELION 5/4, CSV, napari) and the CZII F-beta metric."""

import json

import numpy as np
import pandas as pd
import pytest
import starfile

from templearn import interop, star
from templearn.evaluate import czii_score, evaluate_picks, fbeta
from templearn.mrc import Volume, write_mrc
from templearn.sample import CLASS_NAME
from templearn.stages import evaluate as evaluate_stage
from templearn.stages import export
from tests.test_cli import one_line_error, templearn


def picks_table(xyz, name="ribosome", tomo="TS_01") -> pd.DataFrame:
    xyz = np.asarray(xyz, float).reshape(-1, 3)
    n = len(xyz)
    return pd.DataFrame({star.TOMO_NAME: [tomo] * n,
                         **{c: xyz[:, a] for a, c in enumerate(star.COORDINATES)},
                         star.ANGLES[0]: np.linspace(-170, 170, n), star.ANGLES[1]: 40.0,
                         star.ANGLES[2]: -20.0, CLASS_NAME: name, star.CLASS_ID: 1,
                         star.CLUSTER_SIZE: np.arange(n) + 5})


def write_picks(path, table, size=(64, 48, 33), voxel=13.2) -> None:
    star.write_star(path, {star.GENERAL_BLOCK: star.general_table(size[::-1], voxel),
                           star.PARTICLES_BLOCK: table})


# --- RELION 5 centring, worked by hand ----------------------------------------------------

def test_centring_odd_and_even_sizes_unbinned():
    odd = interop.Grid((5, 5, 5), 10.0)  # centre at pixel 2.5, half a pixel past voxel 2
    assert interop.to_centred([[2, 0, 4]], odd).tolist() == [[-5.0, -25.0, 15.0]]
    even = interop.Grid((4, 6, 8), 10.0)  # centres at pixels 2, 3, 4
    assert interop.to_centred([[2, 3, 4]], even).tolist() == [[0.0, 0.0, 0.0]]
    assert interop.to_centred([[1.5, 0, 7]], even).tolist() == [[-5.0, -30.0, 30.0]]


def test_centring_on_a_binned_tomogram():
    # 5 voxels of 20 Å from a tilt series of 5 Å pixels: binning 4, rlnTomoSize 20, centre at
    # pixel 10 = 50 Å; voxel 2 is tilt-series pixel 8, i.e. -10 Å.
    grid = interop.Grid((5, 5, 5), 20.0, pixel=5.0)
    assert grid.unbinned_size().tolist() == [20, 20, 20]
    assert interop.to_centred([[2, 0, 4.5]], grid).tolist() == [[-10.0, -50.0, 40.0]]
    # RELION's own odd unbinned size 21: centre 10.5 pixels = 52.5 Å
    odd = interop.Grid((5, 5, 5), 20.0, pixel=5.0, relion_size=(21, 21, 21))
    assert interop.to_centred([[2, 2, 2]], odd).tolist() == [[-12.5] * 3]
    back = interop.from_centred([[-12.5, -52.5, 0.0]], odd)
    assert back.tolist() == [[2.0, 0.0, 2.625]]
    # RELION 4: tilt-series pixels = voxel × binning
    assert interop.rescale([[2, 0, 4.5]], 20.0, 5.0).tolist() == [[8.0, 0.0, 18.0]]


def test_pixel_size_per_optics_group():
    grid = interop.Grid((10, 10, 10), 20.0)
    particles = pd.DataFrame({star.TOMO_NAME: ["a", "b"], interop.OPTICS_GROUP: [1, 2],
                              **{c: [0.0, 0.0] for c in interop.CENTRED}})
    optics = pd.DataFrame({interop.OPTICS_GROUP: [1, 2], interop.TS_PIXEL: [5.0, 10.0]})
    table = interop.from_relion(particles, optics, grid, "ribosome", "x")
    # centres: 40 pixels × 5 Å and 20 pixels × 10 Å, both 200 Å = voxel 10 / 20 Å ... = 5
    assert table[list(star.COORDINATES)].to_numpy().tolist() == [[5.0] * 3, [5.0] * 3]
    assert list(table[CLASS_NAME]) == ["ribosome"] * 2 and list(table[star.CLASS_ID]) == [1, 1]


# --- round trips through starfile and the stage --------------------------------------------

def angstrom(table: pd.DataFrame, voxel: float) -> np.ndarray:
    return table[list(star.COORDINATES)].to_numpy(float) * voxel


@pytest.mark.parametrize("target", ["relion5", "relion4"])
@pytest.mark.parametrize("size", [(64, 48, 33), (65, 47, 32)])
def test_round_trip_through_relion_files(tmp_path, target, size):
    rng = np.random.default_rng(7)
    xyz = rng.uniform(0, 1, (25, 3)) * (np.array(size) - 1)
    write_picks(tmp_path / "picks.star", picks_table(xyz), size)
    out = tmp_path / target
    params = export.Params(to=target, tilt_series_pixel=3.3, tomograms_star=True)
    export.run(params, export.Inputs(tmp_path / "picks.star"), out)
    blocks = starfile.read(out / export.PARTICLES, always_dict=True)
    assert blocks["optics"][interop.TS_PIXEL].tolist() == [3.3]
    particles = blocks["particles"]
    if target == "relion5":  # centred Å, by the formula in templearn.interop
        tomos = starfile.read(out / export.TOMOGRAMS, always_dict=True)["global"]
        n = tomos[list(interop.TOMO_SIZE)].to_numpy(float)[0]
        assert n.tolist() == [round(s * 4) for s in size]
        centred = particles[list(interop.CENTRED)].to_numpy(float)
        np.testing.assert_allclose(centred, xyz * 13.2 - n * 3.3 / 2, atol=1e-3)
    else:
        pixels = particles[list(star.COORDINATES)].to_numpy(float)
        np.testing.assert_allclose(pixels * 3.3, xyz * 13.2, atol=1e-3)
    back = tmp_path / "back"
    export.run(export.Params(source=target), export.Inputs(out / export.PARTICLES), back)
    table = star.read_star(back / export.PICKS)
    np.testing.assert_allclose(angstrom(table, 13.2), xyz * 13.2, atol=1e-3)
    np.testing.assert_allclose(table[list(star.ANGLES)].to_numpy(float),
                               picks_table(xyz)[list(star.ANGLES)].to_numpy(float), atol=1e-4)
    assert set(table[CLASS_NAME]) == {"ribosome"}


def test_relion5_file_without_our_grid_reads_with_the_tomogram(tmp_path):
    particles = pd.DataFrame({star.TOMO_NAME: ["TS_1"], **{c: [-10.0] for c in interop.CENTRED}})
    optics = pd.DataFrame({interop.OPTICS_GROUP: [1], interop.TS_PIXEL: [5.0]})
    particles[interop.OPTICS_GROUP] = 1
    starfile.write({"optics": optics, "particles": particles}, tmp_path / "r5.star")
    write_mrc(tmp_path / "tomo.mrc", Volume(np.zeros((5, 5, 5), np.float32), 20.0))
    export.run(export.Params(source="relion5", class_name="fas"),
               export.Inputs(tmp_path / "r5.star", tmp_path / "tomo.mrc"), tmp_path / "out")
    table = star.read_star(tmp_path / "out" / export.PICKS)
    assert table[list(star.COORDINATES)].to_numpy().tolist() == [[2.0, 2.0, 2.0]]
    assert table[CLASS_NAME].tolist() == ["fas"]
    assert star.general_grid(star.read_blocks(tmp_path / "out" / export.PICKS)) == (
        (5, 5, 5), 20.0)


def test_csv_and_napari_points(tmp_path):
    table = pd.concat([picks_table([[1, 2, 3], [4, 5, 6]]),
                       picks_table([[7, 8, 9]], name="fas")], ignore_index=True)
    write_picks(tmp_path / "picks.star", table)
    export.run(export.Params(to="csv"), export.Inputs(tmp_path / "picks.star"), tmp_path / "c")
    rows = pd.read_csv(tmp_path / "c" / export.CSV)
    assert list(rows.columns[:5]) == ["tomogram", "class", "z", "y", "x"]
    assert rows[["z", "y", "x"]].to_numpy().tolist() == [[3, 2, 1], [6, 5, 4], [9, 8, 7]]
    export.run(export.Params(to="napari"), export.Inputs(tmp_path / "picks.star"),
               tmp_path / "n")
    points = pd.read_csv(tmp_path / "n" / "ribosome.csv")
    assert list(points.columns) == list(interop.NAPARI_COLUMNS)
    assert points.iloc[:, 1:].to_numpy().tolist() == [[3, 2, 1], [6, 5, 4]]
    described = json.loads((tmp_path / "n" / export.NAPARI).read_text())
    assert described["scale_for_angstrom"] == [13.2] * 3 and described["size_zyx"] == [33, 48, 64]
    assert [layer["file"] for layer in described["layers"]] == ["fas.csv", "ribosome.csv"]


# --- the CZII metric ------------------------------------------------------------------------

def test_fbeta_by_hand():
    # 2 picks, 3 particles, 1 match: P = 1/2, R = 1/3
    assert fbeta(1, 2, 3, 1.0) == pytest.approx(0.4)  # 2PR / (P + R)
    assert fbeta(1, 2, 3, 4.0) == pytest.approx(17 / 50)  # 17 TP / (17 TP + 16 FN + FP)
    assert fbeta(0, 0, 0, 4.0) == 0.0


def czii_case():
    truth = pd.concat([picks_table([[10, 10, 10], [30, 10, 10], [50, 10, 10]]),
                       picks_table([[10, 40, 10]], name="fas")], ignore_index=True)
    picks = pd.concat([picks_table([[11, 10, 10], [50, 10, 14]]),  # 1 Å off; 4 voxels off
                       picks_table([[10, 40, 11]], name="fas")], ignore_index=True)
    return picks, truth


def test_czii_score_by_hand():
    picks, truth = czii_case()
    radii = {"ribosome": 6.0, "fas": 4.0}  # match within 3 and 2 voxels
    result = czii_score(picks, truth, radii, {"ribosome": 2.0, "fas": 0.0})
    ribosome = result["classes"]["ribosome"]
    assert (ribosome["tp"], ribosome["fp"], ribosome["fn"]) == (1, 1, 2)
    assert ribosome["fbeta"] == pytest.approx(17 / 50)
    assert result["classes"]["fas"]["fbeta"] == 1.0
    assert result["score"] == pytest.approx(17 / 50)  # fas weighs 0
    equal = czii_score(picks, truth, radii, {}, beta=4.0)["score"]
    assert equal == pytest.approx((17 / 50 + 1) / 2)
    # β = 1 at our distance is our F1
    ours = evaluate_picks(picks, truth, distance=3.0)["classes"]["ribosome"]["f1"]
    f1 = czii_score(picks, truth, radii, {}, beta=1.0)["classes"]["ribosome"]["fbeta"]
    assert f1 == pytest.approx(ours) == pytest.approx(0.4)


def test_evaluate_czii_against_relion5_targets(tmp_path):
    picks, truth = czii_case()
    write_picks(tmp_path / "picks.star", picks[picks[CLASS_NAME] == "ribosome"])
    write_picks(tmp_path / "truth.star", truth[truth[CLASS_NAME] == "ribosome"])
    export.run(export.Params(tilt_series_pixel=4.4), export.Inputs(tmp_path / "truth.star"),
               tmp_path / "r5")
    relion = starfile.read(tmp_path / "r5" / export.PARTICLES, always_dict=True)
    relion["particles"] = relion["particles"].drop(columns=[CLASS_NAME, star.CLASS_ID])
    starfile.write(relion, tmp_path / "r5" / export.PARTICLES, overwrite=True)
    params = evaluate_stage.Params(distance=3.0, metric="czii", radius=("6",), beta=1.0)
    evaluate_stage.run(params, evaluate_stage.Inputs(tmp_path / "picks.star",
                                                     tmp_path / "r5" / export.PARTICLES),
                       tmp_path / "eval")
    metrics = json.loads((tmp_path / "eval" / evaluate_stage.METRICS).read_text())
    assert metrics["classes"]["ribosome"]["tp"] == 1
    assert metrics["czii"]["score"] == pytest.approx(0.4)


# --- bad input on the command line ---------------------------------------------------------

def test_cli_bad_input_is_one_line(tmp_path):
    write_picks(tmp_path / "picks.star", picks_table([[1, 2, 3]]))
    particles = pd.DataFrame({star.TOMO_NAME: ["a"], **{c: [0.0] for c in interop.CENTRED}})
    starfile.write({"particles": particles}, tmp_path / "r5.star")
    picks, r5, out = str(tmp_path / "picks.star"), str(tmp_path / "r5.star"), str(tmp_path / "o")
    cases = [
        (("export", r5, "--from", "relion5", "-o", out), "--tomogram"),
        (("export", r5, "--from", "relion5", "--size", "5,5,5", "--voxel-size", "20", "-o", out),
         "--tilt-series-pixel"),
        (("export", picks, "--size", "5,5", "--voxel-size", "3", "-o", out), "--size"),
        (("export", picks, "--size", "5,5,5", "-o", out), "--voxel-size"),
        (("export", picks, "--to", "templearn", "-o", out), "--to templearn"),
        (("export", picks, "--to", "csv", "--tomograms-star", "-o", out), "--tomograms-star"),
        (("export", picks, "--from", "relion5", "-o", out), "rlnCenteredCoordinateXAngst"),
        (("evaluate", picks, picks, "--metric", "czii", "-o", out), "--radius"),
        (("evaluate", picks, picks, "--metric", "czii", "--radius", "5", "--weight", "fas",
          "-o", out), "--weight"),
        (("evaluate", picks, r5, "-o", out), "r5.star"),
    ]
    for args, needle in cases:
        one_line_error(templearn(*args), needle)
    assert not (tmp_path / "o").exists()
