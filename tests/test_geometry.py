import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from templearn import geometry


def test_relion_angles_round_trip_through_matrix_and_rotvec(rng):
    angles = geometry.random_relion_angles(200, rng)
    np.testing.assert_allclose(
        geometry.relion_to_matrix(geometry.matrix_to_relion(geometry.relion_to_matrix(angles))),
        geometry.relion_to_matrix(angles), atol=1e-9)
    back = geometry.rotvec_to_relion(geometry.relion_to_rotvec(angles))
    np.testing.assert_allclose(geometry.relion_to_matrix(back),
                               geometry.relion_to_matrix(angles), atol=1e-9)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("angles", [(0.0, 0.0, 0.0), (30.0, 0.0, 20.0), (10.0, 180.0, 40.0)])
def test_degenerate_tilts_convert_silently_to_the_same_rotation(angles):
    """At tilt 0 or 180 only rot ± psi is defined: the angles differ, the rotation not."""
    back = geometry.matrix_to_relion(geometry.relion_to_matrix(np.array(angles)))
    np.testing.assert_allclose(geometry.relion_to_matrix(back),
                               geometry.relion_to_matrix(np.array(angles)), atol=1e-9)


@pytest.mark.parametrize(("angles", "x_goes_to"), [
    # R = from_euler('ZYZ', angles).inv(): rot = 90° is a -90° turn about z: x -> -y.
    ((90.0, 0.0, 0.0), (0.0, -1.0, 0.0)),
    # tilt = 90° is a -90° turn about y: x -> +z.
    ((0.0, 90.0, 0.0), (0.0, 0.0, 1.0)),
    # psi acts first in the inverse: psi = 90 also sends x -> -y when rot = tilt = 0.
    ((0.0, 0.0, 90.0), (0.0, -1.0, 0.0)),
])
def test_rotated_point_lands_where_relion_convention_says(angles, x_goes_to):
    placed = geometry.rotate_points(np.array([[1.0, 0.0, 0.0]]), np.array(angles),
                                    position=np.array([10.0, 20.0, 30.0]))
    np.testing.assert_allclose(placed[0], np.array(x_goes_to) + [10, 20, 30], atol=1e-12)


def test_parakeet_rotvec_places_atoms_like_relion_angles(rng):
    points = rng.normal(size=(50, 3)) * 40
    angles = np.array([30.0, 70.0, -120.0])
    # Parakeet: Rotation.from_rotvec(orientation).apply(x - mean(x)) + position
    parakeet = Rotation.from_rotvec(geometry.relion_to_rotvec(angles)).apply(points)
    np.testing.assert_allclose(parakeet, geometry.rotate_points(points, angles), atol=1e-9)


def test_relion_convention_matches_template_learning_export(rng):
    # Template Learning stores rotation.inv().as_euler('ZYZ') of the object->sample rotation.
    rotation = Rotation.random(random_state=1)
    stored = rotation.inv().as_euler("ZYZ", degrees=True)
    np.testing.assert_allclose(geometry.relion_to_matrix(stored), rotation.as_matrix(),
                               atol=1e-9)


def test_zyx_matrix_rotates_array_indices_consistently(rng):
    m = geometry.relion_to_matrix(np.array([12.0, 50.0, 77.0]))
    p = rng.normal(size=3)
    np.testing.assert_allclose(geometry.xyz_to_zyx(m) @ p[::-1], (m @ p)[::-1], atol=1e-12)
