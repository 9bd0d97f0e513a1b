import numpy as np
import pytest

from templearn.density import density_map, gaussian_lowpass, gaussian_sigma
from templearn.errors import InputError
from templearn.mrc import read_mrc
from templearn.structure import read_structure
from tests.conftest import POLNET_MAPS, STRUCTURES, ncc, shared_file


def test_total_is_the_sum_of_atomic_numbers_and_centre_of_mass_is_at_box_centre(nucleosome):
    model = read_structure(nucleosome)
    volume = density_map(model.coords, model.atomic_numbers, voxel_size=16.0, resolution=32.0)
    n = volume.data.shape[0]
    assert n % 2 == 0 and volume.data.shape == (n, n, n)
    # Fourier-space Gaussian preserves the total exactly; only float32 rounding remains.
    assert volume.data.sum() == pytest.approx(model.atomic_numbers.sum(), rel=1e-4)
    grid = np.indices(volume.data.shape).reshape(3, -1)
    com = (grid * volume.data.ravel()).sum(axis=1) / volume.data.sum()
    np.testing.assert_allclose(com, (n - 1) / 2, atol=0.02)
    # The MRC origin places that centre on the model's centre of mass (overlay in ChimeraX).
    atoms_com = (model.coords * model.atomic_numbers[:, None]).sum(0) / model.atomic_numbers.sum()
    np.testing.assert_allclose(np.array(volume.origin) + (n - 1) / 2 * 16.0, atoms_com)


def test_single_atom_profile_has_the_resolution_gaussian_width():
    voxel, resolution = 2.0, 12.0
    volume = density_map(np.zeros((1, 3)), np.array([6]), voxel, resolution, box=40)
    line = volume.data[20, 20, :] + volume.data[19, 19, :]  # atom at 19.5 on every axis
    x = (np.arange(40) - 19.5) * voxel
    sigma = np.sqrt((line * x**2).sum() / line.sum())
    # Trilinear spreading adds a triangle kernel of variance voxel²/6 on top of the Gaussian.
    assert sigma == pytest.approx(np.sqrt(gaussian_sigma(resolution) ** 2 + voxel**2 / 6),
                                  rel=0.03)


def test_atoms_outside_a_requested_box_are_an_input_error(nucleosome):
    model = read_structure(nucleosome)
    with pytest.raises(InputError, match="does not fit"):
        density_map(model.coords, model.atomic_numbers, 16.0, 32.0, box=4)


@pytest.mark.parametrize(("map_name", "pdb"), [
    ("3j9i", "distractors/3j9i.pdb"),
    ("4v4r_30S", "distractors/4v4r_30S.pdb"),
])
def test_correlates_with_polnet_map_of_the_same_structure(map_name, pdb):
    reference = read_mrc(shared_file(POLNET_MAPS / f"{map_name}.mrc"))
    model = read_structure(shared_file(STRUCTURES / pdb))
    resolution = 2 * reference.voxel_size
    ours = density_map(model.coords, model.atomic_numbers, reference.voxel_size, resolution,
                       box=reference.data.shape[0]).data
    theirs = gaussian_lowpass(reference.data.astype(np.float64), reference.voxel_size, resolution)
    # The two programs put the box centre half a voxel to a voxel apart: search ±2 voxels.
    best = max(ncc(ours, np.roll(theirs, (dz, dy, dx), axis=(0, 1, 2)))
               for dz in range(-2, 3) for dy in range(-2, 3) for dx in range(-2, 3))
    assert best > 0.9
    # ...and the match is specific: a mirrored map correlates clearly worse.
    mirrored = max(ncc(ours, np.roll(theirs[::-1], (dz, 0, 0), axis=(0, 1, 2)))
                   for dz in range(-3, 4))
    assert mirrored < best - 0.05
