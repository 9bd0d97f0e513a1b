"""Even/odd half tomograms: which views, where they live, and reading them back."""

import numpy as np
import pytest

from templearn.errors import InputError
from templearn.halves import half_agreement, half_paths, read_halves, shell_fsc, split_views
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


CENTRES = np.array([(12, 12, 12), (12, 36, 30), (8, 12, 36), (16, 30, 8)])
#: At least 14 voxels from every centre.
EMPTY = np.array([(12, 40, 44), (4, 44, 20), (20, 4, 24), (20, 24, 44)])


def _blobs_and_noise(rng, shape=(24, 48, 48)):
    """Two half tomograms: the same Gaussian blobs (σ 2.5 voxels) plus independent noise."""
    from scipy.ndimage import gaussian_filter

    structure = np.zeros(shape, np.float32)
    structure[tuple(CENTRES.T)] = 1.0
    structure = gaussian_filter(structure, 2.5)
    structure *= 3.0 / structure.max()
    return [structure + rng.standard_normal(shape).astype(np.float32) for _ in range(2)]


def test_fsc_is_one_for_identical_halves_and_near_zero_for_independent_ones():
    rng = np.random.default_rng(0)
    volume = rng.standard_normal((16, 20, 24))
    same, _ = shell_fsc(volume, volume)
    assert np.allclose(same[1:], 1.0)
    independent, _ = shell_fsc(volume, rng.standard_normal(volume.shape))
    assert np.abs(independent[4:]).max() < 0.25 and np.abs(independent[4:]).mean() < 0.1


def test_picks_on_shared_structure_agree_and_picks_on_noise_score_as_chance():
    rng = np.random.default_rng(1)
    even, odd = _blobs_and_noise(rng)
    assert half_agreement(even, odd, CENTRES, 4.0).min() > 3.0
    assert np.abs(half_agreement(even, odd, EMPTY, 4.0)).max() < 2.5
    # Noise in both halves only: every score is chance, whatever the noise level.
    noise_only = half_agreement(*(5 * rng.standard_normal((24, 48, 48)) for _ in range(2)),
                                np.concatenate([CENTRES, EMPTY]), 4.0)
    assert np.abs(noise_only).max() < 2.5
