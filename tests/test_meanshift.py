"""The grid mean shift gives sklearn's MeanShift(bin_seeding=True) clusters."""

import numpy as np
import pytest
from scipy.spatial import cKDTree
from sklearn.cluster import MeanShift, get_bin_seeds

from templearn.meanshift import WindowSums, bin_seeds, mean_shift, nearest, suppress
from templearn.pick import ball_offsets


def balls(shape, centres, radii, n_stray=0, seed=7) -> np.ndarray:
    """Mask of voxel balls (z, y, x centres) plus a few stray voxels."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(shape, bool)
    for centre, radius in zip(centres, radii, strict=True):
        voxels = np.asarray(centre) + ball_offsets(radius)
        voxels = voxels[np.all((voxels >= 0) & (voxels < shape), axis=1)]
        mask[tuple(voxels.T)] = True
    mask[tuple(rng.integers(0, shape, (n_stray, 3)).T)] = True
    return mask


# Three balls, two of them touching, and stray voxels; then a crowd of touching balls of
# several radii (many seeds, windows reaching the volume's edges).
SPARSE = balls((30, 30, 30), [[10, 10, 10], [10, 10, 17], [20, 25, 12]], [4.0] * 3, n_stray=5)
CROWD = balls((20, 26, 26), [[5, 5, 6], [5, 12, 6], [12, 8, 13], [10, 20, 20], [15, 19, 7],
                             [4, 21, 14], [16, 3, 21]], [3.0, 3.6, 4.2, 4.5, 3.3, 2.8, 4.0])


def assert_same_as_sklearn(mask: np.ndarray, bandwidth: float, workers: int = 2) -> None:
    points = np.argwhere(mask).astype(float)
    reference = MeanShift(bandwidth=bandwidth, bin_seeding=True).fit(points)
    centres, labels = mean_shift(mask, bandwidth, workers=workers)
    np.testing.assert_array_equal(centres, reference.cluster_centers_)  # bit for bit
    # Voxels equidistant from two centres are the only freedom (KD-trees break ties by
    # their own traversal order): ours must then be one of the nearest.
    distance = ((points[:, None] - centres[None]) ** 2).sum(axis=2)
    own = distance[np.arange(len(points)), labels]
    theirs = distance[np.arange(len(points)), reference.labels_]
    np.testing.assert_array_equal(own, distance.min(axis=1))
    tie = np.sort(distance, axis=1)[:, 1] == distance.min(axis=1)
    np.testing.assert_array_equal(labels[~tie], reference.labels_[~tie])
    np.testing.assert_array_equal(own, theirs)


@pytest.mark.parametrize("bandwidth", [2.0, 3.3, 4.0, 6.0, 7.0])
def test_same_clusters_as_sklearn(bandwidth):
    assert_same_as_sklearn(SPARSE, bandwidth)


@pytest.mark.parametrize("bandwidth", [3.0, 4.5])
def test_same_clusters_as_sklearn_on_touching_balls(bandwidth):
    assert_same_as_sklearn(CROWD, bandwidth, workers=1)


@pytest.mark.parametrize("bandwidth", [2.5, 3.3, 4.0, 7.0])
def test_window_sums_are_sklearns_windows(bandwidth):
    # Points that put voxels on the sphere (integers, halves, float32 bin centres, tenths
    # and fifths, whose rounding decides: 3.6² + 0.2² + 6² is 49 and > 49 in float64).
    rng = np.random.default_rng(3)
    mask = rng.random((14, 16, 18)) < 0.4
    voxels = np.argwhere(mask).astype(float)
    points = rng.uniform(-bandwidth / 2, np.array(mask.shape) - 1 + bandwidth / 2, (1000, 3))
    points[:200] = np.round(points[:200])
    points[200:300] = np.round(points[200:300] * 2) / 2
    points[300:400] = (np.round(points[300:400] / bandwidth).astype(np.float32)
                       * np.float32(bandwidth))
    points[400:700] = np.round(points[400:700] * 10) / 10
    points[700:] = np.round(points[700:] * 5) / 5
    counts, sums = WindowSums(mask, bandwidth, margin=bandwidth / 2 + 1)(points)
    d = voxels[None] - points[:, None]
    inside = (d[..., 0] ** 2 + d[..., 1] ** 2) + d[..., 2] ** 2 <= bandwidth * bandwidth  # sklearn
    np.testing.assert_array_equal(counts, inside.sum(axis=1))
    np.testing.assert_array_equal(sums, inside.astype(float) @ voxels)


# Every voxel alone in its bin of 1.2: sklearn then seeds with the voxels themselves.
LONE = np.zeros((12, 12, 12), bool)
LONE[tuple(np.array([[1, 1, 1], [1, 1, 4], [4, 6, 2], [9, 9, 9], [9, 11, 9]]).T)] = True


@pytest.mark.parametrize(("mask", "bandwidth"), [(CROWD, 1.5), (CROWD, 3.3), (CROWD, 7.0),
                                                 (LONE, 1.2)])
@pytest.mark.filterwarnings("ignore:Binning data failed")
def test_bin_seeds_are_sklearns(mask, bandwidth):
    expected = get_bin_seeds(np.argwhere(mask).astype(float), bandwidth)
    found = bin_seeds(mask, bandwidth)
    np.testing.assert_array_equal(np.unique(found, axis=0), np.unique(expected, axis=0))
    assert len(found) == len(expected)


def test_nearest_centre_with_tiles_is_the_kd_tree_answer():
    rng = np.random.default_rng(5)
    mask = rng.random((30, 34, 38)) < 0.5
    centres = rng.uniform(0, 30, (25, 3))
    expected = cKDTree(centres).query(np.argwhere(mask).astype(float))[1]
    np.testing.assert_array_equal(nearest(mask, centres, workers=2), expected)
    np.testing.assert_array_equal(nearest(mask, centres[:1]), np.zeros(mask.sum(), int))


def test_suppress_keeps_earlier_centres():
    centres = np.array([[0.0, 0, 0], [3.0, 0, 0], [6.0, 0, 0], [20.0, 0, 0]])
    assert suppress(centres, 4.0).tolist() == [0, 2, 3]
    assert suppress(centres[::-1], 4.0).tolist() == [0, 1, 3]
    assert suppress(centres, 3.0).tolist() == [0, 2, 3]  # within: distance <= radius
    assert mean_shift(np.zeros((4, 4, 4), bool), 2.0)[0].shape == (0, 3)
