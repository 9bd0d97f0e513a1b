import numpy as np
import pandas as pd
import pytest

from templearn import star
from templearn.labels import LabelParams, paint_labels, sphere_radius, targets_table
from templearn.sample import Grid
from tests.test_tetris import VOXEL, molecules, packed_sample  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def sample(molecules):  # noqa: F811
    table, grid, maps, _ = packed_sample(molecules)
    return table, grid, maps


def test_shape_labels_centre_on_targets_at_a_finer_voxel_size(sample):
    table, grid, maps = sample
    # A tomogram at half the voxel size covering the same field (and 4 voxels thicker).
    target = Grid((grid.shape_zyx[0] * 2 + 4, grid.shape_zyx[1] * 2, grid.shape_zyx[2] * 2),
                  VOXEL / 2)
    labels = paint_labels(table, grid, target, maps, LabelParams())
    targets = targets_table(table, grid, target, "tomo")
    assert set(np.unique(labels)) == {0, 1}
    assert len(targets) == (table[star.MOLECULE_CLASS] == "template").sum()
    xyz = targets[list(star.COORDINATES)].to_numpy()
    # Each template's label, painted alone, is centred on its target coordinates.
    templates = table[table[star.CLASS_ID] == 1]
    for i, point in enumerate(xyz):
        alone = paint_labels(templates.iloc[[i]], grid, target, maps, LabelParams())
        assert np.linalg.norm(np.argwhere(alone)[:, ::-1].mean(axis=0) - point) < 1.0
        assert np.all(labels[alone > 0] == 1)
    # Same physical point: voxel i of the sample maps to 2i + 0.5 (+2 in z for the margin).
    first = table.iloc[0]
    expected = np.array([first[c] for c in star.COORDINATES]) * 2 + 0.5 + [0, 0, 2]
    if first[star.MOLECULE_CLASS] == "template":
        np.testing.assert_allclose(xyz[0], expected)


def test_sphere_labels_have_the_ball_volume(sample):
    table, grid, maps = sample
    one = table[table[star.CLASS_ID] == 1].iloc[[0]]
    radius = 40.0
    fine = Grid(tuple(4 * n for n in grid.shape_zyx), VOXEL / 4)
    labels = paint_labels(one, grid, fine, maps,
                          LabelParams(mode="sphere", radii={one.iloc[0]["tlClassName"]: radius}))
    assert (labels > 0).sum() == pytest.approx(4 / 3 * np.pi * (radius / 4.0) ** 3, rel=0.05)


def test_distractors_can_be_their_own_class_and_templates_win(sample):
    table, grid, maps = sample
    labels = paint_labels(table, grid, grid, maps, LabelParams(distractor_class=True))
    assert set(np.unique(labels)) == {0, 1, 2}
    templates_only = paint_labels(table, grid, grid, maps, LabelParams())
    assert np.all(labels[templates_only == 1] == 1)


def test_sphere_radius_from_mass():
    # 1 MDa at 1.21 Å³/Da: V = 1.21e6 Å³, r = (3V / 4π)^(1/3) ≈ 66.1 Å
    assert sphere_radius(1e6) == pytest.approx(66.1, abs=0.1)


def test_coordinates_become_sphere_labels_at_those_voxels(tmp_path):
    from templearn.sample import coordinates_as_sample

    target = Grid((20, 30, 40), 10.0)
    points = np.array([[5.0, 6.0, 7.0], [30.0, 20.0, 10.0]])
    path = star.write_star(tmp_path / "annotations.star", {star.PARTICLES_BLOCK: pd.DataFrame(
        {c: points[:, a] for a, c in enumerate(star.COORDINATES)})})
    table = coordinates_as_sample(path, target)
    labels = paint_labels(table, target, target, {},
                          LabelParams(mode="sphere", radii={"particle": 30.0}))
    for point in points:
        x, y, z = point.astype(int)
        assert labels[z, y, x] == 1
        assert labels[z, y, min(x + 4, 39)] == 0  # 40 Å away: outside the 30 Å ball
    assert (labels > 0).sum() == pytest.approx(2 * 4 / 3 * np.pi * 3**3, rel=0.15)
    targets = targets_table(table, target, target, "t")
    np.testing.assert_allclose(targets[list(star.COORDINATES)].to_numpy(), points)
