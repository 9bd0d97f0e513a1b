"""The vectorised mean shift gives sklearn's MeanShift(bin_seeding=True) clusters."""

import numpy as np
import pytest
from sklearn.cluster import MeanShift

from templearn.meanshift import mean_shift, suppress
from templearn.pick import ball_offsets


@pytest.mark.parametrize("bandwidth", [3.3, 4.0, 6.0])
def test_same_clusters_as_sklearn(bandwidth):
    # Voxels of three balls, two of them touching, plus a few stray voxels.
    rng = np.random.default_rng(7)
    centres = np.array([[10, 10, 10], [10, 10, 17], [20, 25, 12]])
    points = np.unique(np.vstack([c + ball_offsets(4.0) for c in centres]
                                 + [rng.integers(0, 30, (5, 3))]), axis=0).astype(float)
    reference = MeanShift(bandwidth=bandwidth, bin_seeding=True).fit(points)
    centres_found, labels = mean_shift(points, bandwidth)
    np.testing.assert_allclose(centres_found, reference.cluster_centers_, atol=1e-9)
    np.testing.assert_array_equal(labels, reference.labels_)


def test_suppress_keeps_earlier_centres():
    centres = np.array([[0.0, 0, 0], [3.0, 0, 0], [6.0, 0, 0], [20.0, 0, 0]])
    assert suppress(centres, 4.0).tolist() == [0, 2, 3]
    assert suppress(centres[::-1], 4.0).tolist() == [0, 1, 3]
    assert mean_shift(np.zeros((0, 3)), 2.0)[0].shape == (0, 3)
