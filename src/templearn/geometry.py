"""Rotations: the one place where orientation conventions are converted.

templearn stores orientations as RELION ZYZ Euler angles in degrees (`rlnAngleRot`,
`rlnAngleTilt`, `rlnAnglePsi`). They describe the object→tomogram rotation

    R = Rotation.from_euler("ZYZ", [rot, tilt, psi], degrees=True).inv()

which maps a point `p` of the template (relative to its centre, x y z in Å) to
`R @ p` in the tomogram. Parakeet takes the same rotation as a rotation vector in
radians (`Rotation.from_rotvec`), applied to centred atom coordinates. Arrays are
indexed `[z, y, x]`, so a matrix acting on array indices is the x-y-z matrix with
both axes reversed (`xyz_to_zyx`).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.spatial.transform import Rotation

RELION_SEQUENCE = "ZYZ"


def relion_to_rotation(angles: np.ndarray) -> Rotation:
    """RELION (rot, tilt, psi) degrees, shape (3,) or (n, 3) -> object→tomogram Rotation."""
    return Rotation.from_euler(RELION_SEQUENCE, np.asarray(angles, dtype=float),
                               degrees=True).inv()


def rotation_to_relion(rotation: Rotation) -> np.ndarray:
    """Object→tomogram Rotation -> RELION (rot, tilt, psi) in degrees. At tilt 0° or 180°
    only rot ± psi is defined: psi is then 0 (scipy's choice; its warning is silenced, as
    such rotations, e.g. the identity of a search grid, are valid)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Gimbal lock detected", category=UserWarning)
        return rotation.inv().as_euler(RELION_SEQUENCE, degrees=True)


def relion_to_matrix(angles: np.ndarray) -> np.ndarray:
    """RELION angles -> object→tomogram matrix (acts on x y z column vectors)."""
    return relion_to_rotation(angles).as_matrix()


def matrix_to_relion(matrix: np.ndarray) -> np.ndarray:
    """Object→tomogram matrix (x y z) -> RELION angles in degrees."""
    return rotation_to_relion(Rotation.from_matrix(matrix))


def relion_to_rotvec(angles: np.ndarray) -> np.ndarray:
    """RELION angles -> Parakeet `orientation` (rotation vector, radians)."""
    return relion_to_rotation(angles).as_rotvec()


def rotvec_to_relion(rotvec: np.ndarray) -> np.ndarray:
    """Parakeet `orientation` (rotation vector, radians) -> RELION angles in degrees."""
    return rotation_to_relion(Rotation.from_rotvec(np.asarray(rotvec, dtype=float)))


def xyz_to_zyx(matrix: np.ndarray) -> np.ndarray:
    """Re-express an x-y-z rotation matrix for `[z, y, x]` array indices."""
    return np.asarray(matrix)[..., ::-1, ::-1]


def random_relion_angles(n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` orientations uniformly distributed on SO(3), as RELION angles (n, 3)."""
    return rotation_to_relion(Rotation.random(n, random_state=rng))


def rotate_points(points: np.ndarray, angles: np.ndarray,
                  position: np.ndarray | None = None) -> np.ndarray:
    """Place centred template points (n, 3; x y z Å) at `position` with RELION `angles`."""
    placed = relion_to_rotation(angles).apply(np.asarray(points, dtype=float))
    return placed if position is None else placed + np.asarray(position, dtype=float)
