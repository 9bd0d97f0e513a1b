"""Round trip: a packed sample, simulated by the fast backend and reconstructed, must give
a tomogram that looks like the sample, in the same place and with the same handedness."""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from templearn import star
from templearn.acquisition import Acquisition
from templearn.labels import LabelParams, paint_labels, sphere_radius, targets_table
from templearn.reconstruct import ReconstructParams, reconstruct_tomogram
from templearn.simulate.fast import FastParams, simulate_fast
from templearn.simulate.potential import SpecimenParams
from tests.conftest import ncc
from tests.test_tetris import VOXEL, molecules, packed_sample  # noqa: F401  (fixture)

FLAT_ICE = SpecimenParams(ice_texture=0.0)


@pytest.fixture(scope="module")
def packed(molecules):  # noqa: F811
    table, grid, maps, density = packed_sample(molecules)
    # The test molecules are carbon only, 12 Da per atom (their masses in the set are
    # inflated for packing); the potential's contrast over ice depends on the true mass.
    table[star.MASS_DA] /= 2.5
    return table, grid, maps, density


def lowpass(volume: np.ndarray) -> np.ndarray:
    return gaussian_filter(volume.astype(np.float64), 1.0)


@pytest.mark.parametrize("phase_plate, defocus, minimum", [(True, -0.5, 0.8), (False, -3.0, 0.5)])
def test_high_dose_tomogram_correlates_with_the_sample_density(packed, phase_plate, defocus,
                                                               minimum):
    table, grid, maps, density = packed
    # Radiation damage would erase everything at this dose: it is off, to see the optics;
    # the phase plate is ideal (no cut-on), so it transfers the lowest frequencies too.
    acq = Acquisition(defocus_um=defocus, phase_plate=phase_plate, dose_total=1e6, tilt_step=3.0,
                      phase_plate_cut_on=0.0)
    params = FastParams(specimen=FLAT_ICE, damage=False, seed=1)
    tomogram = reconstruct_tomogram(simulate_fast(table, grid, maps, acq, params),
                                    ReconstructParams())
    assert tomogram.data.shape == grid.shape_zyx and tomogram.voxel_size == VOXEL
    np.testing.assert_allclose(tomogram.origin, 0.0, atol=1e-6)  # overlays the sample
    dark = -lowpass(tomogram.data)  # protein is dark (underfocus or phase plate)
    reference = lowpass(density)
    direct, mirrored = ncc(dark, reference), ncc(dark, reference[::-1])
    assert direct > minimum, direct
    assert direct > mirrored + 0.15, (direct, mirrored)


def test_label_centroids_coincide_with_reconstructed_particles(packed):
    table, grid, maps, _ = packed
    templates = table[table[star.CLASS_ID] > 0].reset_index(drop=True)
    assert len(templates) >= 5
    series = simulate_fast(templates, grid, maps, Acquisition(tilt_step=2.0),
                           FastParams(ideal=True, specimen=FLAT_ICE))
    tomogram = np.clip(reconstruct_tomogram(series, ReconstructParams()).data, 0, None)
    labels = paint_labels(templates, grid, grid, maps, LabelParams())
    targets = targets_table(templates, grid, grid, "s")
    zz, yy, xx = np.indices(tomogram.shape)
    voxels = np.stack([xx, yy, zz], axis=-1).astype(float)
    errors = []
    for i, target in enumerate(targets[list(star.COORDINATES)].to_numpy()):
        alone = paint_labels(templates.iloc[[i]], grid, grid, maps, LabelParams())
        assert np.all(labels[alone > 0] == 1)
        radius = sphere_radius(templates[star.MASS_DA].iloc[i]) / VOXEL
        centre = target.copy()
        for _ in range(20):  # mean shift: the centroid of the density near the centre
            near = ((voxels - centre) ** 2).sum(axis=-1) <= radius**2
            weights = tomogram * near
            centre = (voxels * weights[..., None]).sum(axis=(0, 1, 2)) / weights.sum()
        inside = np.all((target > radius) & (target < np.array(grid.shape_zyx[::-1]) - radius))
        if inside:  # particles cut by the sample's faces lose part of their density
            errors.append(np.linalg.norm(centre - target))
    assert len(errors) >= 3
    assert max(errors) < 1.0, errors
