"""copick projects through the real copick package: `export --to copick` and `import`."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.transform import Rotation

from templearn import geometry, interop, star
from templearn.mrc import Volume, read_mrc, write_mrc
from templearn.sample import CLASS_NAME
from templearn.stages import export
from templearn.stages import import_ as importer
from tests.test_cli import one_line_error, templearn
from tests.test_interop import picks_table, write_picks

copick = pytest.importorskip("copick", reason="the copick extra is not installed "
                                              "(pip install 'templearn[copick]')")
from copick.models import PickableObject  # noqa: E402

SIZE, VOXEL = (40, 32, 24), 13.2  # x, y, z voxels; Å


def project(tmp_path, name="project"):
    """A tiny filesystem copick project with two particle objects, made by copick itself."""
    config = tmp_path / f"{name}.json"
    copick.new_config(str(config), str(tmp_path / name), pickable_objects=[
        PickableObject(name="ribosome", is_particle=True, label=3, radius=120.0),
        PickableObject(name="apo-ferritin", is_particle=True, label=4, radius=60.0)])
    return config


def oriented_picks(n=12, seed=3):
    rng = np.random.default_rng(seed)
    xyz = rng.uniform(0, 1, (n, 3)) * (np.array(SIZE) - 1)
    table = picks_table(xyz)
    table[list(star.ANGLES)] = geometry.random_relion_angles(n, rng)
    table[star.SCORE] = rng.uniform(0, 1, n)
    return table


def matrices(table):
    return geometry.relion_to_matrix(table[list(star.ANGLES)].to_numpy(float))


# --- the conventions, by hand ---------------------------------------------------------------

def test_copick_location_and_rotation_direction_by_hand():
    table = picks_table([[2, 0, 4.5]])
    table[list(star.ANGLES)] = [[90.0, 0.0, 0.0]]
    locations, transforms = interop.to_copick(table, 10.0)
    assert locations.tolist() == [[20.0, 0.0, 45.0]]  # voxel index × voxel size, corner 0
    # rot 90 (ZYZ, object→tomogram = inverse): the object's x axis points along tomogram −y
    np.testing.assert_allclose(transforms[0, :3, :3] @ [1, 0, 0], [0, -1, 0], atol=1e-12)
    assert transforms[0, 3].tolist() == [0, 0, 0, 1] and transforms[0, :3, 3].tolist() == [0] * 3
    shifted = transforms.copy()
    shifted[0, :3, 3] = [5.0, -10.0, 0.0]  # copick: centre = location + translation
    xyz, angles = interop.from_copick(locations, shifted, 10.0)
    assert xyz.tolist() == [[2.5, -1.0, 4.5]]
    np.testing.assert_allclose(geometry.relion_to_matrix(angles), transforms[:, :3, :3],
                               atol=1e-12)


# --- export → copick reads ------------------------------------------------------------------

def test_export_to_copick_reads_back_in_angstrom(tmp_path):
    config = project(tmp_path)
    table = pd.concat([oriented_picks(), oriented_picks(3, seed=4).assign(
        **{CLASS_NAME: "apo_ferritin"})], ignore_index=True)
    write_picks(tmp_path / "picks.star", table, SIZE, VOXEL)
    write_mrc(tmp_path / "tomo.mrc",
              Volume(np.arange(np.prod(SIZE), dtype=np.float32).reshape(SIZE[::-1]), VOXEL))
    out = tmp_path / "out"
    params = export.Params(to="copick", tomo_type="wbp")
    export.run(params, export.Inputs(tmp_path / "picks.star", tmp_path / "tomo.mrc",
                                     copick_config=config), out)
    record = json.loads((out / export.COPICK).read_text())
    assert {(p["object"], p["points"]) for p in record["picks"]} == {("ribosome", 12),
                                                                      ("apo-ferritin", 3)}
    run = copick.from_file(str(config)).get_run("TS_01")
    for name, rows in (("ribosome", table.iloc[:12]), ("apo-ferritin", table.iloc[12:])):
        (picks,) = run.get_picks(object_name=name, user_id="templearn", session_id="0")
        locations, transforms = picks.numpy()
        np.testing.assert_allclose(locations, rows[list(star.COORDINATES)].to_numpy() * VOXEL,
                                   atol=1e-3)
        assert not transforms[:, :3, 3].any()  # no shifts: the location is the centre
        np.testing.assert_allclose(transforms[:, :3, :3], matrices(rows), atol=1e-6)
        np.testing.assert_allclose(picks.scores(), rows[star.SCORE], atol=1e-6)
        assert picks.trust_orientation
    (tomo,) = run.get_voxel_spacing(VOXEL).tomograms
    np.testing.assert_array_equal(tomo.numpy(), read_mrc(tmp_path / "tomo.mrc").data)

    # copick's own RELION 5 writer agrees with ours on the centre and the angles
    export.run(export.Params(to="relion5"), export.Inputs(tmp_path / "picks.star"),
               tmp_path / "r5")
    ours = star.read_star(tmp_path / "r5" / export.PARTICLES).iloc[:12]
    (picks,) = run.get_picks(object_name="ribosome")
    theirs = picks.df("relion", tomogram_center=tuple(np.array(SIZE) * VOXEL / 2))
    np.testing.assert_allclose(theirs[list(interop.CENTRED)], ours[list(interop.CENTRED)],
                               atol=1e-3)
    np.testing.assert_allclose(geometry.relion_to_matrix(theirs[list(star.ANGLES)]),
                               matrices(ours), atol=1e-6)


def test_export_twice_replaces_and_unoriented_picks(tmp_path):
    config = project(tmp_path)
    table = oriented_picks(5).drop(columns=list(star.ANGLES))  # as `templearn pick` writes
    write_picks(tmp_path / "picks.star", table, SIZE, VOXEL)
    for _ in range(2):
        export.run(export.Params(to="copick", run_name="TS-9", user_id="me", session_id="7"),
                   export.Inputs(tmp_path / "picks.star", copick_config=config), tmp_path / "o")
    run = copick.from_file(str(config)).get_run("TS-9")
    (picks,) = run.picks
    assert len(picks.points) == 5 and not picks.trust_orientation
    back = tmp_path / "back"
    importer.run(importer.Params(objects=("ribosome",), size=SIZE, voxel_size=VOXEL),
                 importer.Inputs(config), back)
    imported = star.read_star(back / importer.PICKS)
    assert not any(c in imported for c in star.ANGLES)
    assert imported[star.TOMO_NAME].tolist() == ["TS-9"] * 5


def labelled(path, classes=None, grid=SIZE[::-1], voxel=VOXEL):
    """A label map (class ids on the tomogram's grid) at `path`; classes.json beside it."""
    data = np.zeros(grid, np.uint8)
    data[2:5, 3:9, 4:12], data[10:14, 20:25, 30:36] = 1, 2
    path.parent.mkdir(exist_ok=True)
    write_mrc(path, Volume(data, voxel))
    if classes is not None:
        (path.parent / "classes.json").write_text(json.dumps(classes))
    return data


def test_export_labels_as_multilabel_segmentation(tmp_path):
    config = project(tmp_path)
    table = pd.concat([oriented_picks(4), oriented_picks(2, seed=4).assign(
        **{CLASS_NAME: "apo_ferritin", star.CLASS_ID: 2})], ignore_index=True)
    write_picks(tmp_path / "picks.star", table, SIZE, VOXEL)
    data = labelled(tmp_path / "labels" / "labels.mrc")  # names: the picks' tlClassId
    out = tmp_path / "out"
    export.run(export.Params(to="copick"), export.Inputs(
        tmp_path / "picks.star", copick_config=config, labels=tmp_path / "labels" / "labels.mrc"),
        out)
    record = json.loads((out / export.COPICK).read_text())["segmentation"]
    assert record == {"run": "TS_01", "name": "templearn", "multilabel": True,
                      "labels": {"apo-ferritin": 4, "ribosome": 3}}
    root = copick.from_file(str(config))
    (seg,) = root.get_run("TS_01").get_segmentations(
        name="templearn", user_id="templearn", session_id="0", voxel_size=VOXEL)
    assert seg.is_multilabel and seg.voxel_size == pytest.approx(VOXEL)
    stored = seg.numpy()
    labels = {o.name: o.label for o in root.pickable_objects}  # copick's own mapping back
    np.testing.assert_array_equal(stored == labels["ribosome"], data == 1)
    np.testing.assert_array_equal(stored == labels["apo-ferritin"], data == 2)
    np.testing.assert_array_equal(stored == 0, data == 0)

    # a segment output (classes.json beside it), named, replaces its earlier store
    segment = tmp_path / "segment" / "labels.mrc"
    for classes in ({"0": "background", "1": "apo_ferritin", "2": "ribosome"},
                    {"0": "background", "1": "ribosome", "2": "apo_ferritin"}):
        data = labelled(segment, classes)
        export.run(export.Params(to="copick", segmentation_name="seg-1", session_id="5"),
                   export.Inputs(tmp_path / "picks.star", copick_config=config, labels=segment),
                   tmp_path / "again")
    (seg,) = copick.from_file(str(config)).get_run("TS_01").get_segmentations(name="seg-1")
    np.testing.assert_array_equal(seg.numpy(), np.choose(data, [0, 3, 4]))


# --- copick writes → import -----------------------------------------------------------------

def test_import_what_copick_wrote(tmp_path):
    config = project(tmp_path)
    root = copick.from_file(str(config))
    run = root.new_run("TS_01")
    rng = np.random.default_rng(11)
    rotations = Rotation.random(6, random_state=rng).as_matrix()
    centres = rng.uniform(0, 1, (6, 3)) * (np.array(SIZE) - 1) * VOXEL
    shifts = rng.normal(0, 5, (6, 3))
    transforms = np.tile(np.eye(4), (6, 1, 1))
    transforms[:, :3, :3], transforms[:, :3, 3] = rotations, shifts
    picks = run.new_picks("ribosome", session_id="1", user_id="curator")
    picks.from_numpy(centres - shifts, transforms, scores=np.linspace(0.1, 0.6, 6))
    run.new_picks("ribosome", session_id="2", user_id="curator").from_numpy(centres[:1])
    data = rng.normal(size=SIZE[::-1]).astype(np.float32)
    run.new_voxel_spacing(VOXEL).new_tomogram("denoised").from_numpy(data)

    out = tmp_path / "imported"
    params = importer.Params(objects=("ribosome",), session_id="1", tomo_type="denoised",
                             class_name="ribosome_80s")
    importer.run(params, importer.Inputs(config), out)
    table = star.read_star(out / importer.PICKS)
    np.testing.assert_allclose(table[list(star.COORDINATES)].to_numpy() * VOXEL, centres,
                               atol=1e-3)
    np.testing.assert_allclose(matrices(table), rotations, atol=1e-6)
    assert set(table[CLASS_NAME]) == {"ribosome_80s"} and set(table[star.CLASS_ID]) == {3}
    assert star.general_grid(star.read_blocks(out / importer.PICKS)) == (SIZE, VOXEL)
    volume = read_mrc(out / importer.TOMOGRAM)
    assert volume.voxel_size == pytest.approx(VOXEL)
    np.testing.assert_array_equal(volume.data, data)


def test_round_trip_ours_to_copick_and_back(tmp_path):
    config = project(tmp_path)
    table = oriented_picks()
    write_picks(tmp_path / "picks.star", table, SIZE, VOXEL)
    export.run(export.Params(to="copick"),
               export.Inputs(tmp_path / "picks.star", copick_config=config), tmp_path / "e")
    importer.run(importer.Params(objects=("ribosome",), size=SIZE, voxel_size=VOXEL),
                 importer.Inputs(config), tmp_path / "i")
    back = star.read_star(tmp_path / "i" / importer.PICKS)
    np.testing.assert_allclose(back[list(star.COORDINATES)], table[list(star.COORDINATES)],
                               atol=1e-6)
    np.testing.assert_allclose(matrices(back), matrices(table), atol=1e-6)
    np.testing.assert_allclose(back[star.SCORE], table[star.SCORE], atol=1e-6)
    assert back[star.TOMO_NAME].tolist() == table[star.TOMO_NAME].tolist()


def test_import_relion_reuses_the_export_readers(tmp_path):
    table = oriented_picks()
    write_picks(tmp_path / "picks.star", table, SIZE, VOXEL)
    export.run(export.Params(to="relion5", tilt_series_pixel=3.3),
               export.Inputs(tmp_path / "picks.star"), tmp_path / "r5")
    write_mrc(tmp_path / "tomo.mrc", Volume(np.zeros(SIZE[::-1], np.float32), VOXEL))
    importer.run(importer.Params(), importer.Inputs(tmp_path / "r5" / export.PARTICLES,
                                                    tmp_path / "tomo.mrc"), tmp_path / "i")
    back = star.read_star(tmp_path / "i" / importer.PICKS)
    np.testing.assert_allclose(back[list(star.COORDINATES)], table[list(star.COORDINATES)],
                               atol=1e-4)


# --- bad input: one line, exit 2, nothing written -------------------------------------------

def test_bad_input_is_one_line(tmp_path):
    config = project(tmp_path)
    run = copick.from_file(str(config)).new_run("TS_01")
    run.new_picks("ribosome", session_id="1", user_id="a").from_numpy(np.zeros((1, 3)))
    run.new_picks("ribosome", session_id="2", user_id="b").from_numpy(np.zeros((1, 3)))
    write_picks(tmp_path / "picks.star", picks_table([[1, 2, 3]], name="fas"), SIZE, VOXEL)
    (tmp_path / "bad.json").write_text("{not json")
    picks, cfg, out = str(tmp_path / "picks.star"), str(config), str(tmp_path / "o")
    cases = [
        (("export", picks, "--to", "copick", "-o", out), "--copick-config"),
        (("export", picks, "--to", "copick", "--copick-config", cfg, "-o", out), "'fas'",
         "project.json"),
        (("export", picks, "--to", "copick", "--copick-config", cfg, "--object", "x=ribosome",
          "-o", out), "--object x"),
        (("export", picks, "--to", "copick", "--copick-config", cfg, "--user-id", "my_name",
          "-o", out), "--user-id"),
        (("export", picks, "--to", "csv", "--run", "TS_01", "-o", out), "--run"),
        (("import", str(tmp_path / "bad.json"), "--object", "ribosome", "-o", out),
         "bad.json", "not a readable copick config"),
        (("import", cfg, "-o", out), "nothing to import"),
        (("import", cfg, "--object", "nope", "-o", out), "'nope'"),
        (("import", cfg, "--run", "absent", "--object", "ribosome", "-o", out), "'absent'"),
        (("import", cfg, "--object", "ribosome", "--size", "4,4,4", "--voxel-size", "10",
          "-o", out), "several picks", "ribosome:a/1"),
        (("import", cfg, "--object", "ribosome", "--user-id", "a", "-o", out),
         "voxel spacing"),
        (("import", picks, "--user-id", "a", "-o", out), "--user-id is for copick"),
    ]
    for args, *needles in cases:
        one_line_error(templearn(*args), *needles)
    assert not (tmp_path / "o").exists()


def test_bad_labels_are_one_line_and_write_nothing(tmp_path):
    config = project(tmp_path)
    write_picks(tmp_path / "picks.star", picks_table([[1, 2, 3]]), SIZE, VOXEL)
    labelled(tmp_path / "ids" / "labels.mrc")  # id 2: no name in the picks
    labelled(tmp_path / "seg" / "labels.mrc", {"1": "ribosome", "2": "fas"})
    labelled(tmp_path / "small" / "labels.mrc", grid=(4, 4, 4))
    labelled(tmp_path / "coarse" / "labels.mrc", voxel=2 * VOXEL)
    (tmp_path / "file").write_text("")
    unwritable = tmp_path / "unwritable.json"
    copick.new_config(str(unwritable), str(tmp_path / "file" / "project"), pickable_objects=[
        PickableObject(name="ribosome", is_particle=True, label=3)])
    picks, cfg, out = str(tmp_path / "picks.star"), str(config), str(tmp_path / "o")
    copick_args = ("export", picks, "--to", "copick", "--copick-config", cfg, "-o", out)
    cases = [
        ((*copick_args, "--labels", str(tmp_path / "ids" / "labels.mrc")),
         "label 2 has no class name", "1 ribosome"),
        ((*copick_args, "--labels", str(tmp_path / "seg" / "labels.mrc")), "'fas'",
         "project.json"),
        ((*copick_args, "--labels", str(tmp_path / "small" / "labels.mrc")), "small",
         "differs from the tomogram's"),
        ((*copick_args, "--labels", str(tmp_path / "coarse" / "labels.mrc")), "26.4 Å"),
        ((*copick_args, "--labels", str(tmp_path / "seg" / "labels.mrc"),
          "--segmentation-name", "my_seg"), "--segmentation-name"),
        (("export", picks, "--to", "csv", "--labels", str(tmp_path / "ids" / "labels.mrc"),
          "-o", out), "--labels is for --to copick"),
        (("export", picks, "--to", "copick", "--copick-config", str(unwritable), "--labels",
          str(tmp_path / "small" / "labels.mrc"), "--size", "4,4,4", "--voxel-size",
          str(VOXEL), "-o", out), "unwritable.json", "Not a directory"),
    ]
    for args, *needles in cases:
        one_line_error(templearn(*args), *needles)
    assert not (tmp_path / "o").exists()
    assert not copick.from_file(cfg).runs  # no picks written before a bad label map


def test_without_the_copick_package(tmp_path):
    """copick hidden: --help and other formats work; --to copick names the extra, exit 2."""
    write_picks(tmp_path / "picks.star", picks_table([[1, 2, 3]]), SIZE, VOXEL)

    def hidden(*args):
        code = "import sys; sys.modules['copick'] = None; from templearn.cli import main; main()"
        return subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                              text=True)

    assert hidden("import", "--help").returncode == 0
    csv = hidden("export", str(tmp_path / "picks.star"), "--to", "csv", "-o",
                 str(tmp_path / "c"))
    assert csv.returncode == 0, csv.stderr
    one_line_error(hidden("export", str(tmp_path / "picks.star"), "--to", "copick",
                          "--copick-config", "x.json", "-o", str(tmp_path / "o")),
                   "templearn[copick]")
    one_line_error(hidden("import", "x.json", "--object", "a", "-o", str(tmp_path / "o")),
                   "templearn[copick]")
    assert not (tmp_path / "o").exists()
