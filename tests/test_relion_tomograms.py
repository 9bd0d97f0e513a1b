"""RELION 5 tomograms.star in and out, labels from imported annotations (fine-tuning) and
CZII radii from a copick config."""

import json

import numpy as np
import pandas as pd
import pytest
import starfile

from templearn import interop, star
from templearn.mrc import Volume, read_mrc, write_mrc
from templearn.sample import CLASS_NAME
from templearn.stages import evaluate as evaluate_stage
from templearn.stages import export, train
from templearn.stages import import_ as importer
from tests.test_cli import one_line_error, templearn
from tests.test_interop import picks_table, write_picks


def relion_project(tmp_path, mrc_size=None, mrc_voxel=20.0):
    """particles.star with two tomograms and a tomograms.star in a RELION-like project:
    TS_A binned 4 from 5 Å pixels, N = 20, 21, 20 (odd y); TS_B unbinned 10 Å, N = 4, 6, 8
    (no binning column: RELION's default 1). TS_A's MRC exists where `mrc_size` is given."""
    job = tmp_path / "proj" / "Tomograms" / "job005"
    (job / "tomograms").mkdir(parents=True)
    tomos = pd.DataFrame({star.TOMO_NAME: ["TS_A", "TS_B"], interop.TS_PIXEL: [5.0, 10.0],
                          interop.TOMO_SIZE[0]: [20, 4], interop.TOMO_SIZE[1]: [21, 6],
                          interop.TOMO_SIZE[2]: [20, 8], interop.BINNING: [4.0, np.nan],
                          interop.RECONSTRUCTED: ["Tomograms/job005/tomograms/rec_TS_A.mrc",
                                                  "Tomograms/job005/tomograms/rec_TS_B.mrc"]})
    starfile.write({"global": tomos}, job / "tomograms.star")
    if mrc_size is not None:
        write_mrc(job / "tomograms" / "rec_TS_A.mrc",
                  Volume(np.zeros(mrc_size[::-1], np.float32), mrc_voxel))
    optics = pd.DataFrame({interop.OPTICS_GROUP: [1, 2], interop.OPTICS_NAME: ["TS_A", "TS_B"],
                           interop.TS_PIXEL: [5.0, 10.0]})
    particles = pd.DataFrame({star.TOMO_NAME: ["TS_A", "TS_B"], interop.OPTICS_GROUP: [1, 2],
                              interop.CENTRED[0]: [-10.0, 0.0],
                              interop.CENTRED[1]: [-52.5, 0.0],
                              interop.CENTRED[2]: [40.0, 0.0]})
    starfile.write({"optics": optics, "particles": particles}, tmp_path / "particles.star")
    return tmp_path / "particles.star", job / "tomograms.star"


# --- by hand ------------------------------------------------------------------------------

def test_reconstructed_size_rounds_like_relion():
    assert interop.reconstructed_size((4092, 5760, 2000), 4) == (1023, 1440, 500)
    assert interop.reconstructed_size((4095, 4094, 2003), 4) == (1024, 1024, 500)  # z truncated
    assert interop.reconstructed_size((256, 192, 132), 13.2 / 3.3) == (64, 48, 33)


def test_tomogram_grid_from_a_row():
    row = pd.Series({star.TOMO_NAME: "TS_A", interop.TS_PIXEL: 5.0, interop.BINNING: 4.0,
                     **dict(zip(interop.TOMO_SIZE, (20, 21, 20), strict=True))})
    grid = interop.tomogram_grid(row)
    assert (grid.size, grid.voxel, grid.ts_pixel, grid.relion_size) == (
        (5, 5, 5), 20.0, 5.0, (20, 21, 20))
    # centre at N / 2 pixels: 50, 52.5, 50 Å; voxel 2 → 40 Å, y voxel 0 → 0 Å
    assert interop.to_centred([[2, 0, 4.5]], grid).tolist() == [[-10.0, -52.5, 40.0]]
    assert interop.tomogram_grid(row, (5, 6, 5)).size == (5, 6, 5)


@pytest.mark.parametrize(("run", "xyz", "size", "voxel"), [
    ("TS_A", [2.0, 0.0, 4.5], (5, 5, 5), 20.0),  # binned 4, odd rlnTomoSizeY
    ("TS_B", [2.0, 3.0, 4.0], (4, 6, 8), 10.0)])  # unbinned, even sizes
def test_import_with_tomograms_star_by_hand(tmp_path, run, xyz, size, voxel):
    particles, tomograms = relion_project(tmp_path)
    out = tmp_path / "out"
    importer.run(importer.Params(run_name=run, class_name="ribosome"),
                 importer.Inputs(particles, tomograms=tomograms), out)
    table = star.read_star(out / importer.PICKS)
    assert table[list(star.COORDINATES)].to_numpy().tolist() == [xyz]
    assert table[star.TOMO_NAME].tolist() == [run] and table[CLASS_NAME].tolist() == ["ribosome"]
    assert star.general_grid(star.read_blocks(out / importer.PICKS)) == (size, voxel)


def test_the_reconstructed_tomogram_gives_the_size(tmp_path):
    particles, tomograms = relion_project(tmp_path, mrc_size=(5, 6, 5))
    importer.run(importer.Params(run_name="TS_A"),
                 importer.Inputs(particles, tomograms=tomograms), tmp_path / "out")
    blocks = star.read_blocks(tmp_path / "out" / importer.PICKS)
    assert star.general_grid(blocks) == ((5, 6, 5), 20.0)
    # the centre stays rlnTomoSize / 2: the same voxels as without the file
    assert blocks["particles"][list(star.COORDINATES)].to_numpy().tolist() == [[2.0, 0.0, 4.5]]


# --- round trip: export --tomograms-star → import --tomograms --------------------------------

@pytest.mark.parametrize("size", [(64, 48, 33), (65, 47, 32)])
@pytest.mark.parametrize("with_mrc", [True, False])
def test_round_trip_through_tomograms_star(tmp_path, size, with_mrc):
    rng = np.random.default_rng(5)
    xyz = rng.uniform(0, 1, (20, 3)) * (np.array(size) - 1)
    write_picks(tmp_path / "picks.star", picks_table(xyz), size)
    write_mrc(tmp_path / "tomo.mrc", Volume(np.zeros(size[::-1], np.float32), 13.2))
    out = tmp_path / "relion"
    export.run(export.Params(tilt_series_pixel=3.3, tomograms_star=True),
               export.Inputs(tmp_path / "picks.star", tmp_path / "tomo.mrc" if with_mrc else None),
               out)
    tomos = starfile.read(out / export.TOMOGRAMS, always_dict=True)["global"]
    assert tomos[list(interop.TOMO_SIZE)].to_numpy().tolist() == [[4 * n for n in size]]
    assert (interop.RECONSTRUCTED in tomos) == with_mrc
    back = tmp_path / "back"
    importer.run(importer.Params(), importer.Inputs(out / export.PARTICLES,
                                                    tomograms=out / export.TOMOGRAMS), back)
    table = star.read_star(back / importer.PICKS)
    np.testing.assert_allclose(table[list(star.COORDINATES)].to_numpy(float) * 13.2,
                               xyz * 13.2, atol=1e-3)
    np.testing.assert_allclose(table[list(star.ANGLES)].to_numpy(float),
                               picks_table(xyz)[list(star.ANGLES)].to_numpy(float), atol=1e-4)
    grid = star.general_grid(star.read_blocks(back / importer.PICKS))
    assert grid[0] == size and grid[1] == pytest.approx(13.2)


@pytest.mark.parametrize(("xyz", "size", "voxel"), [([2, 0, 4.5], (5, 5, 5), 20.0),
                                                   ([4, 0, 9], (10, 10, 10), 10.0)])
def test_export_into_a_relion_project(tmp_path, xyz, size, voxel):
    """Picks on RELION's bin-4 tomogram, or on our own bin-2 one: the project's tomograms.star
    gives s and N, the centre is N · s / 2 whatever our binning."""
    _, tomograms = relion_project(tmp_path)
    write_picks(tmp_path / "picks.star", picks_table([xyz], tomo="TS_A"), size, voxel)
    export.run(export.Params(), export.Inputs(tmp_path / "picks.star", tomograms=tomograms),
               tmp_path / "r5")
    blocks = starfile.read(tmp_path / "r5" / export.PARTICLES, always_dict=True)
    centred = blocks["particles"][list(interop.CENTRED)].to_numpy().tolist()
    assert centred == [[-10.0, -52.5, 40.0]] and blocks["optics"][interop.TS_PIXEL][0] == 5.0
    importer.run(importer.Params(), importer.Inputs(tmp_path / "r5" / export.PARTICLES,
                                                    tomograms=tomograms), tmp_path / "back")
    back = star.read_star(tmp_path / "back" / importer.PICKS)
    assert back[list(star.COORDINATES)].to_numpy().tolist() == [[2.0, 0.0, 4.5]]


# --- fine-tuning: import → labels/ that train accepts ----------------------------------------

def test_import_writes_labels_that_train_accepts(tmp_path):
    particles, tomograms = relion_project(tmp_path, mrc_size=(5, 5, 5))
    table = starfile.read(particles, always_dict=True)
    table["particles"][CLASS_NAME] = "ribosome"
    starfile.write(table, particles, overwrite=True)
    out = tmp_path / "out"
    importer.run(importer.Params(run_name="TS_A", labels_radius={"ribosome": 25.0}),
                 importer.Inputs(particles, tomograms=tomograms), out)
    labels = read_mrc(out / importer.LABELS / "labels.mrc")
    assert labels.data.shape == (5, 5, 5) and labels.voxel_size == pytest.approx(20.0)
    assert labels.data[4, 0, 2] == 1 and labels.data[0, 4, 0] == 0  # z, y, x
    targets = star.read_star(out / importer.LABELS / "targets.star")
    assert targets[list(star.COORDINATES)].to_numpy().tolist() == [[2.0, 0.0, 4.5]]
    mrc = tomograms.parent / "tomograms" / "rec_TS_A.mrc"
    items = train.pairs((f"{mrc},{out / importer.LABELS}",), "--sample")
    train.check_grids(items, patch=4)
    assert train.class_names_of([out / importer.LABELS]) == {0: "background", 1: "ribosome"}


def test_copick_import_writes_labels_on_its_tomogram(tmp_path):
    copick = pytest.importorskip("copick")
    from copick.models import PickableObject

    config = tmp_path / "project.json"
    copick.new_config(str(config), str(tmp_path / "project"), pickable_objects=[
        PickableObject(name="ribosome", is_particle=True, label=1, radius=120.0)])
    run = copick.from_file(str(config)).new_run("TS_01")
    run.new_voxel_spacing(10.0).new_tomogram("wbp").from_numpy(
        np.zeros((24, 32, 40), np.float32))
    run.new_picks("ribosome", session_id="1", user_id="curator").from_numpy(
        np.array([[100.0, 150.0, 120.0]]))
    out = tmp_path / "annotated"
    importer.run(importer.Params(objects=("ribosome",), tomo_type="wbp",
                                 labels_radius={"ribosome": 30.0}), importer.Inputs(config), out)
    labels = read_mrc(out / importer.LABELS / "labels.mrc").data
    assert labels[12, 15, 10] == 1 and labels[12, 15, 14] == 0  # z, y, x: 3 voxels radius
    items = train.pairs((f"{out / importer.TOMOGRAM},{out / importer.LABELS}",), "--sample")
    train.check_grids(items, patch=16)


# --- CZII radii from a copick config, and the aggregate figures -------------------------------

def test_czii_radii_from_a_copick_config(tmp_path):
    copick = pytest.importorskip("copick")
    from copick.models import PickableObject

    config = tmp_path / "project.json"
    copick.new_config(str(config), str(tmp_path / "project"), pickable_objects=[
        PickableObject(name="ribosome", is_particle=True, label=1, radius=120.0),
        PickableObject(name="apo-ferritin", is_particle=True, label=2, radius=60.0)])
    truth = pd.concat([picks_table([[10, 10, 10], [30, 10, 10]]),
                       picks_table([[10, 30, 10]], name="apo_ferritin")], ignore_index=True)
    picks = pd.concat([picks_table([[15, 10, 10], [30, 10, 17]]),  # 5 and 7 voxels off
                       picks_table([[10, 30, 12.5]], name="apo_ferritin")],  # 2.5 off
                      ignore_index=True)
    write_picks(tmp_path / "picks.star", picks, voxel=10.0)
    write_picks(tmp_path / "truth.star", truth, voxel=10.0)
    inputs = evaluate_stage.Inputs(tmp_path / "picks.star", tmp_path / "truth.star",
                                   copick_config=config)
    evaluate_stage.run(evaluate_stage.Params(metric="czii", beta=1.0), inputs, tmp_path / "e")
    metrics = json.loads((tmp_path / "e" / evaluate_stage.METRICS).read_text())
    czii = metrics["czii"]["classes"]
    # 120 Å / 10 Å = 12 voxels → within 6; apo_ferritin is copick's apo-ferritin: 6 → 3
    assert (czii["ribosome"]["distance"], czii["apo_ferritin"]["distance"]) == (6.0, 3.0)
    assert (czii["ribosome"]["tp"], czii["apo_ferritin"]["tp"]) == (1, 1)
    assert metrics["czii"]["score"] == pytest.approx((0.5 + 1.0) / 2)
    # --radius overrides the config for its class
    evaluate_stage.run(evaluate_stage.Params(metric="czii", radius=("ribosome=20",)), inputs,
                       tmp_path / "e2")
    again = json.loads((tmp_path / "e2" / evaluate_stage.METRICS).read_text())["czii"]
    assert again["classes"]["ribosome"]["distance"] == 10.0
    assert again["classes"]["apo_ferritin"]["distance"] == 3.0
    # per class and over all classes (distance 10 voxels: all three match)
    assert metrics["overall"] == {"n_true": 3, "n_picks": 3, "tp": 3, "fp": 0, "fn": 0,
                                  "precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert metrics["mean_f1"] == 1.0


# --- bad input: one line, exit 2, nothing written ---------------------------------------------

def test_bad_input_is_one_line(tmp_path):
    particles, tomograms = relion_project(tmp_path, mrc_size=(5, 5, 5), mrc_voxel=13.0)
    write_picks(tmp_path / "picks.star", picks_table([[1, 2, 3]]))
    write_mrc(tmp_path / "tomo.mrc", Volume(np.zeros((33, 48, 64), np.float32), 13.2))
    (tmp_path / "p.json").write_text("{}")
    broken = tmp_path / "broken.star"
    starfile.write({"global": pd.DataFrame({star.TOMO_NAME: ["TS_A"], interop.TS_PIXEL: [5.0],
                                            interop.TOMO_SIZE[0]: [20],
                                            interop.TOMO_SIZE[1]: [20]})}, broken)
    p, t, out = str(particles), str(tomograms), str(tmp_path / "o")
    picks = str(tmp_path / "picks.star")
    cases = [
        (("import", p, "--tomograms", t, "-o", out), "--run", "TS_A, TS_B"),
        (("import", p, "--tomograms", t, "--run", "TS_X", "-o", out), "'TS_X'"),
        (("import", p, "--tomograms", t, "--run", "TS_A", "--size", "5,5,5", "-o", out),
         "--size and --tomograms"),
        (("import", p, "--tomograms", t, "--run", "TS_A", "-o", out), "rec_TS_A.mrc",
         "voxel size 13"),
        (("import", p, "--tomograms", str(broken), "--run", "TS_A", "-o", out),
         "rlnTomoSizeZ", "broken.star"),
        (("import", p, "--tomograms", p, "--run", "TS_A", "-o", out), "data_global"),
        (("import", picks, "--labels-radius", "ribosome=40", "-o", out), "--labels-radius",
         "--tomogram"),
        (("import", picks, "--labels-radius", "fas=40", "--tomogram",
          str(tmp_path / "tomo.mrc"), "-o", out), "--labels-radius", "not matched: fas, ribosome"),
        (("import", picks, "--labels-radius", "ribosome=-4", "-o", out), "--labels-radius"),
        (("import", str(tmp_path / "p.json"), "--tomograms", t, "-o", out), "--tomograms"),
        (("evaluate", picks, picks, "--copick-config", t, "-o", out), "--copick-config"),
        (("export", picks, "--tomograms", t, "-o", out), "'TS_01'", "TS_A, TS_B"),
        (("export", picks, "--tomograms", t, "--tomo-size", "4,4,4", "-o", out),
         "--tomo-size and --tomograms"),
        (("export", picks, "--tomograms", t, "--to", "csv", "-o", out), "--to relion5"),
    ]
    for args, *needles in cases:
        one_line_error(templearn(*args), *needles)
    assert not (tmp_path / "o").exists()
