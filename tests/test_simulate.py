import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from templearn import star
from templearn.acquisition import Acquisition
from templearn.mrc import Volume
from templearn.sample import Grid
from templearn.simulate import exposure, optics
from templearn.simulate.fast import FastParams, _image_formation, _strip_weights, simulate_fast
from templearn.simulate.potential import SpecimenParams, molecule_potentials, place_molecules

LAM_300 = optics.wavelength(300.0)


def molecules_table(positions_xyz, angles=None, key="m", mass=1e5):
    positions_xyz = np.atleast_2d(np.asarray(positions_xyz, dtype=float))
    n = len(positions_xyz)
    angles = np.zeros((n, 3)) if angles is None else np.atleast_2d(angles)
    return pd.DataFrame({
        star.MAP_FILE: [key] * n, star.MASS_DA: [mass] * n, star.CLASS_ID: [1] * n,
        **{c: positions_xyz[:, a] for a, c in enumerate(star.POSITION_ANGST)},
        **{c: angles[:, a] for a, c in enumerate(star.ANGLES)}})


def test_wavelength_and_interaction_constant_at_300_kv():
    assert pytest.approx(0.019687, rel=1e-4) == LAM_300
    assert optics.interaction_constant(300.0) == pytest.approx(6.526e-4, rel=2e-3)


def test_ctf_zeros_at_the_analytic_frequencies():
    defocus, cs = -2.0, 2.7
    dz, cs_a = 2e4, cs * 1e7
    for n in (1, 2, 3):  # χ = -nπ: (π/2)·Cs·λ³·k⁴ − π·λ·Δz·k² + nπ = 0, smaller root
        k2 = (LAM_300 * dz - np.sqrt((LAM_300 * dz) ** 2 - 2 * n * cs_a * LAM_300**3)) \
            / (cs_a * LAM_300**3)
        k = np.sqrt(k2)
        assert abs(optics.ctf_1d(np.array([k]), 300, cs, defocus, 0.0)[0]) < 1e-9
        below, above = optics.ctf_1d(np.array([k * 0.99, k * 1.01]), 300, cs, defocus, 0.0)
        assert below * above < 0
    # Without Cs the first zero is at 1/sqrt(λΔz); a phase plate moves it to sqrt(1/2) of it.
    k0 = 1 / np.sqrt(LAM_300 * dz)
    k = np.linspace(0.2 * k0, 1.2 * k0, 20001)
    first = k[np.argmax(np.diff(np.sign(optics.ctf_1d(k, 300, 0.0, defocus, 0.0))) != 0)]
    assert first == pytest.approx(k0, rel=1e-3)
    first_vpp = k[np.argmax(np.diff(np.sign(optics.ctf_1d(k, 300, 0.0, defocus, 0.0, True))) != 0)]
    assert first_vpp == pytest.approx(k0 * np.sqrt(0.5), rel=1e-3)
    # Protein (positive potential) is dark at low frequency, underfocused or with a VPP.
    assert optics.ctf_1d(np.array([1e-3]), 300, cs, defocus, 0.07) < 0
    assert optics.ctf_1d(np.array([1e-3]), 300, cs, 0.0, 0.07, True) < -0.9


@pytest.mark.parametrize("phase_plate, defocus", [(False, -2.5), (True, -0.5)])
def test_image_formation_transfers_a_weak_phase_by_the_ctf(phase_plate, defocus, rng):
    n, pixel = 128, 4.0
    acq = Acquisition(defocus_um=defocus, phase_plate=phase_plate, amplitude_contrast=0.1,
                      detector_pixel=1e-3, energy_spread_ev=0.0, illumination_mrad=0.0)
    form = _image_formation(acq, ((n, n),) * 3, (pixel, pixel), np.zeros(1), damage=False)
    phase = 1e-3 * rng.standard_normal((1, n, n)).astype(np.float32)
    intensity = np.asarray(form(jnp.asarray(phase), jnp.array([defocus], jnp.float32),
                                jnp.zeros(1), jnp.zeros(1)))[0]
    transfer = np.fft.fft2(intensity - 1.0) / np.fft.fft2(phase[0])
    ky, kx = np.meshgrid(np.fft.fftfreq(n, pixel), np.fft.fftfreq(n, pixel), indexing="ij")
    k = np.sqrt(kx**2 + ky**2)
    expected = 2 * optics.ctf_1d(k.ravel(), 300, 2.7, defocus, 0.1, phase_plate,
                                 acq.phase_plate_cut_on).reshape(n, n)
    expected[0, 0] = transfer[0, 0].real  # the mean is not a phase-contrast term
    # float32 rounding of 1 + 2e-3 leaves ~1% noise per frequency; second order is smaller
    assert np.corrcoef(transfer.real.ravel(), expected.ravel())[0, 1] > 0.9999
    assert np.percentile(np.abs(transfer - expected), 99) < 0.03
    assert transfer[0, 1].real < -0.1  # dark protein at the lowest frequency


def test_strip_weights_interpolate_linearly_and_sum_to_one():
    strips = np.array([-10.0, 0.0, 10.0])
    x = np.linspace(-15, 15, 31)
    w = _strip_weights(strips, x)
    np.testing.assert_allclose(w.sum(axis=0), 1.0)
    np.testing.assert_allclose(w[:, x == 5.0].ravel(), [0, 0.5, 0.5])
    np.testing.assert_allclose(w[:, x == -15.0].ravel(), [1, 0, 0])


def test_radiation_damage_attenuates_high_frequencies_by_the_critical_exposure():
    k = np.array([1 / 50, 1 / 20, 1 / 10])
    ne = exposure.critical_exposure(k)
    assert np.all(np.diff(ne) < 0)  # finer detail dies faster
    np.testing.assert_allclose(exposure.damage_filter(k, 2 * ne), np.exp(-1.0))
    assert exposure.damage_filter(k, 0.0).min() == 1.0


def test_flat_field_counts_are_poisson_at_the_dose_per_image():
    voxel = 16.0
    sample = Grid((8, 32, 32), voxel)
    maps = {"m": Volume(np.zeros((6, 6, 6), np.float32), voxel)}  # nothing to scatter
    acq = Acquisition(tilt_min=-60, tilt_max=60, tilt_step=20, dose_total=70.0, dqe=0.5)
    params = FastParams(specimen=SpecimenParams(ice_texture=0.0), seed=2)
    series = simulate_fast(molecules_table([[256, 256, 64]]), sample, maps, acq, params)
    assert series.images.shape == (7, 32, 32)
    thickness = 8 * voxel
    expected = 10.0 * voxel**2 * exposure.zero_loss_fraction(thickness, acq.nominal_angles(), 0.93)
    means = series.images.mean(axis=(1, 2))
    variances = series.images.var(axis=(1, 2))
    np.testing.assert_allclose(means, expected, rtol=0.01)
    np.testing.assert_allclose(variances.mean() / expected.mean(), 1 / acq.dqe, rtol=0.05)
    assert means[3] > means[0]  # longer path through the ice at 60°: fewer zero-loss electrons
    assert series.meta["dose_per_image"] == pytest.approx(10.0)


def test_the_acquisitions_ice_texture_scale_multiplies_the_ice_noise():
    """An acquisition's ice_texture_scale scales simulate's ice texture: no texture (0)
    leaves Poisson counts, a larger scale adds more variance to the empty-ice images."""
    voxel = 16.0
    sample = Grid((8, 32, 32), voxel)
    maps = {"m": Volume(np.zeros((6, 6, 6), np.float32), voxel)}
    params = FastParams(specimen=SpecimenParams(ice_texture=0.2, ice_texture_length=32.0),
                        seed=2)
    excess = []
    for scale in (0.0, 1.0, 4.0):
        acq = Acquisition(tilt_min=-60, tilt_max=60, tilt_step=20, dose_total=700.0, dqe=1.0,
                          ice_texture_scale=scale)
        series = simulate_fast(molecules_table([[256, 256, 64]]), sample, maps, acq, params)
        images = series.images
        excess.append(float((images.var(axis=(1, 2)) / images.mean(axis=(1, 2))).mean()))
        assert series.meta["specimen"]["ice_texture"] == pytest.approx(0.2 * scale)
    assert excess[0] == pytest.approx(1.0, rel=0.1)  # shot noise only
    assert excess[0] < excess[1] < excess[2]


def test_molecules_are_placed_rotated_with_their_net_potential():
    voxel = 10.0
    data = np.zeros((9, 9, 9), np.float32)
    data[4, 4, 4:8] = 10.0  # a rod along +x from the centre
    maps = {"m": Volume(data, voxel)}
    grid = Grid((20, 20, 20), voxel)
    angles = np.array([[90.0, 0.0, 0.0]])  # object x -> tomogram y (RELION ZYZ of R⁻¹)
    from templearn import geometry
    matrix = geometry.relion_to_matrix(angles)[0]
    table = molecules_table([[95.0, 95.0, 95.0]], angles, mass=0.0)
    volume = place_molecules(table, grid, molecule_potentials(table, maps, 0.93), grid)
    direction = matrix @ np.array([1.0, 0, 0])
    filled = np.argwhere(volume > 0.5 * volume.max())[:, ::-1]  # x y z
    spread = filled.mean(axis=0) - 9.5
    assert np.dot(spread, direction) > 1.0 and np.linalg.norm(np.cross(spread, direction)) < 0.5
    # Net potential: the integral is ΣZ · 21 V·Å³ less the ice displaced by the volume.
    heavy = molecules_table([[95.0, 95.0, 95.0]], angles, mass=100.0)
    net = molecule_potentials(heavy, maps, 0.93)["m"].data.sum() * voxel**3
    assert net == pytest.approx(40 * 21.0 - 4.87 * 0.93 * 100 * 1.21, rel=1e-5)


def test_defocus_gradient_blends_images_formed_at_the_strip_defoci(rng):
    n, pixel, defocus = 64, 4.0, -2.0
    acq = Acquisition(defocus_um=defocus, detector_pixel=1e-3)
    width = n * pixel
    strips = np.array([-width / 2, width / 2])
    phase = jnp.asarray(0.05 * rng.standard_normal((1, n, n)).astype(np.float32))
    tan60 = np.float32(np.tan(np.deg2rad(60.0)))

    def image(strip_centres, defocus_um, tan_theta):
        form = _image_formation(acq, ((n, n),) * 3, (pixel, pixel), strip_centres, False)
        return np.asarray(form(phase, jnp.array([defocus_um], jnp.float32),
                               jnp.array([tan_theta]), jnp.zeros(1)))[0]

    blended = image(strips, defocus, tan60)
    # the left edge (x = -width/2) is imaged at defocus + x·tanθ, i.e. further underfocus
    left = image(np.zeros(1), defocus - width / 2 * tan60 * 1e-4, 0.0)
    right = image(np.zeros(1), defocus + width / 2 * tan60 * 1e-4, 0.0)
    x = (np.arange(n) - (n - 1) / 2) * pixel
    weight_right = (x + width / 2) / width
    np.testing.assert_allclose(blended, (1 - weight_right) * left + weight_right * right,
                               atol=1e-5)
    assert np.abs(left - right).max() > 1e-3  # the strips do differ
    # untilted, the strips all have the nominal defocus: same as a single strip
    np.testing.assert_allclose(image(strips, defocus, 0.0), image(np.zeros(1), defocus, 0.0),
                               atol=1e-6)


def test_gold_fiducials_are_dark_beads_on_the_ice_surfaces():
    voxel = 16.0
    sample = Grid((16, 48, 48), voxel)
    maps = {"m": Volume(np.zeros((6, 6, 6), np.float32), voxel)}
    params = FastParams(specimen=SpecimenParams(ice_texture=0.0, fiducials=3), damage=False,
                        seed=5)
    acq = Acquisition(tilt_min=0, tilt_max=0, dose_total=1e5, defocus_um=-1.0)
    series = simulate_fast(molecules_table([[384, 384, 128]]), sample, maps, acq, params)
    beads = np.asarray(series.meta["fiducials_angst"])
    assert beads.shape == (3, 3)
    radius = 50.0
    assert np.all(np.isclose(beads[:, 2], radius) | np.isclose(beads[:, 2], 15 * voxel - radius))
    image = series.images[0]
    for x, y, _ in beads:
        column, row = round(x / voxel), round(y / voxel)
        assert image[row, column] < image.mean() - 3 * image.std() / 2


def test_stage_params_build_the_backends_params_from_one_set_of_defaults():
    from templearn.simulate.params import ParakeetParams
    from templearn.stages.simulate import Params

    assert Params().fast() == FastParams() and Params().parakeet() == ParakeetParams()
    params = Params.from_mapping({"ice_texture": 0, "fiducials": 2, "sim_pixel": 2.0,
                                  "grf_ice": False})
    assert params.fast().specimen == SpecimenParams(ice_texture=0.0, fiducials=2)
    assert params.fast().sim_pixel == params.parakeet().sim_pixel == 2.0
    assert not params.parakeet().ice


def test_contrast_scale_scales_the_molecules_but_not_the_ice(rng):
    """Domain randomisation of particle contrast: the molecules' net potential is scaled,
    the ice texture around them is not."""
    from templearn.simulate.potential import specimen_potential

    voxel = 16.0
    sample = Grid((8, 16, 16), voxel)
    data = np.zeros((5, 5, 5), np.float32)
    data[1:4, 1:4, 1:4] = 400.0
    maps = {"m": Volume(data, voxel)}
    table = molecules_table([[128.0, 128.0, 64.0]], mass=1e4)
    flat = SpecimenParams(ice_texture=0.0)
    full, _, _ = specimen_potential(table, sample, maps, 0.93, flat, rng)
    weak, _, _ = specimen_potential(table, sample, maps, 0.93, flat, rng, contrast_scale=0.25)
    np.testing.assert_allclose(weak, 0.25 * full, rtol=1e-6)
    textured = SpecimenParams(ice_texture=0.1)
    ice_only = [specimen_potential(table, sample, maps, 0.93, textured,
                                   np.random.default_rng(3), contrast_scale=c)[0]
                - c * full for c in (1.0, 0.25)]
    np.testing.assert_allclose(ice_only[0], ice_only[1], atol=1e-4)


def test_a_phase_plate_shifts_only_above_its_cut_on():
    """Parakeet's (and a real plate's) model: no shift at k ≪ r, the full 90° at k ≫ r, so
    the lowest frequencies keep the weak contrast of plain defocus."""
    k = np.array([1e-4, 0.005, 0.05])
    plain = optics.aberration_phase(k, 0 * k, 300, 2.7, -0.5)
    plate = optics.aberration_phase(k, 0 * k, 300, 2.7, -0.5, phase_plate=True,
                                    phase_plate_cut_on=0.005)
    shift = plain - plate
    np.testing.assert_allclose(shift, 0.5 * np.pi * (1 - np.exp(-(k / 0.005) ** 2 / 2)))
    assert shift[0] < 1e-3 and shift[2] == pytest.approx(0.5 * np.pi)
    ideal = optics.aberration_phase(k, 0 * k, 300, 2.7, -0.5, phase_plate=True)
    np.testing.assert_allclose(plain - ideal, 0.5 * np.pi)
