"""Even/odd half tomograms: which views, where they live, and reading them back."""

import numpy as np
import pytest

from templearn.errors import InputError
from templearn.halves import half_paths, read_halves, split_views
from templearn.mrc import Volume, write_mrc


def test_halves_alternate_in_tilt_angle_order():
    angles = np.array([0.0, -3.0, 3.0, -6.0, 6.0, -9.0, 9.0])  # dose-symmetric order
    even, odd = split_views(angles)
    assert list(angles[even]) == [-9.0, -3.0, 3.0, 9.0]
    assert list(angles[odd]) == [-6.0, 0.0, 6.0]
    with pytest.raises(InputError, match="at least 4 tilts"):
        split_views(np.array([-3.0, 0.0, 3.0]))


def test_halves_sit_beside_their_tomogram_and_must_match_it(tmp_path):
    tomogram = tmp_path / "tomo" / "tomogram.mrc"
    even, odd = half_paths(tomogram)
    assert (even.name, odd.name, even.parent) == ("tomogram_even.mrc", "tomogram_odd.mrc",
                                                  tomogram.parent)
    with pytest.raises(InputError, match="--halves") as missing:
        read_halves(tomogram, (4, 5, 6))
    assert str(even) in str(missing.value)
    even.parent.mkdir()
    write_mrc(even, Volume(np.ones((4, 5, 6), np.float32), 16.0))
    write_mrc(odd, Volume(np.zeros((4, 5, 7), np.float32), 16.0))
    with pytest.raises(InputError, match="does not match") as mismatched:
        read_halves(tomogram, (4, 5, 6))
    assert str(odd) in str(mismatched.value)
    write_mrc(odd, Volume(np.zeros((4, 5, 6), np.float32), 16.0))
    first, second = read_halves(tomogram, (4, 5, 6))
    assert first.dtype == np.float32 and first.mean() == 1 and second.mean() == 0
