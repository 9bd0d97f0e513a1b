import pandas as pd
import pytest

from templearn import star
from templearn.errors import InputError


def test_round_trip_with_relion_and_project_columns(tmp_path):
    table = pd.DataFrame({
        star.TOMO_NAME: ["tomo1", "tomo1"],
        **{c: [1.5, 2.5] for c in star.COORDINATES},
        **{c: [10.0, -20.0] for c in star.ANGLES},
        star.MOLECULE_NAME: ["2pyo", "1bxn"],
        star.MOLECULE_CLASS: ["template", "distractor"],
    })
    path = star.write_star(tmp_path / "m.star", {
        star.GENERAL_BLOCK: star.general_table((64, 192, 128), 16.0),
        star.PARTICLES_BLOCK: table})
    back = star.read_star(path, required=star.COORDINATES)
    pd.testing.assert_frame_equal(back, table, check_dtype=False)
    general = star.read_star(path, star.GENERAL_BLOCK)
    assert (general[star.SIZE[0]][0], general[star.SIZE[2]][0]) == (128, 64)
    assert general[star.VOXEL_SIZE][0] == pytest.approx(16.0)


def test_missing_columns_are_named(tmp_path):
    path = star.write_star(tmp_path / "m.star", {
        star.PARTICLES_BLOCK: pd.DataFrame({star.COORDINATES[0]: [1.0]})})
    with pytest.raises(InputError, match="rlnCoordinateY"):
        star.read_star(path, required=star.COORDINATES)
