"""The fast backend: projection approximation with a full exit wave, vectorised in JAX.

Per tilt: the specimen potential (`potential.py`) is projected along the tilted beam
(`templearn.projector`, the same operator the reconstruction uses), radiation damage
attenuates it by the dose received so far, and the exit wave
`ψ = exp((i − A')·σ·φ)` (A' = A/√(1−A²) gives the amplitude contrast) is propagated
through the objective's wave transfer function (`optics.py`) at the simulation pixel.
The defocus gradient across the tilted specimen is modelled with strips along x: the
image is formed at a few defoci and blended linearly, with strips close enough that
the phase error at the output Nyquist frequency stays under π/8 (one strip suffices at
16 Å; 8 Å pixels need three at 60°). Then inelastic loss,
detector MTF, antialiased binning to the output pixel, dose and Poisson noise
(`exposure.py`). The ideal mode returns noise-free projections of the potential over
-90°..90° for regression targets.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from templearn import __version__
from templearn.acquisition import Acquisition
from templearn.binning import fourier_resize, spectrum_map
from templearn.errors import InputError
from templearn.mrc import Volume
from templearn.progress import track
from templearn.projector import TiltGeometry, project
from templearn.sample import Grid
from templearn.simulate import exposure, optics
from templearn.simulate.params import FastParams
from templearn.simulate.potential import specimen_potential
from templearn.tiltseries import TiltSeries

#: Complex pixels processed per compiled call (tilts × strips × image), bounds memory.
BATCH_PIXELS = 2**23
MAX_STRIPS = 32


def _strips(width: float, max_tan: float, lam: float, k_max: float) -> np.ndarray:
    """Strip centres (Å from the detector centre along x) for the defocus gradient, close
    enough for the highest frequency kept in the output, `k_max` (1/Å)."""
    spacing = 1.0 / (4.0 * lam * k_max**2)  # half a spacing of defocus error = π/8 at k_max
    span = width * max_tan  # defocus range across the detector at the largest tilt
    n = 1 if span < spacing else min(MAX_STRIPS, int(np.ceil(span / spacing)) + 1)
    return np.linspace(-width / 2, width / 2, n) if n > 1 else np.zeros(1)


def _strip_weights(strips: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Linear-interpolation weights `(n_strips, nx)` of each strip at positions x (Å)."""
    if len(strips) == 1:
        return np.ones((1, len(x)))
    return np.stack([np.interp(x, strips, np.eye(len(strips))[s]) for s in range(len(strips))])


def _spectrum_resampling(shape_from: tuple[int, int], shape_to: tuple[int, int]
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row and column source indices and factors resampling a `shape_from` spectrum to
    `shape_to` (see `spectrum_map`)."""
    (sy, fy), (sx, fx) = (spectrum_map(a, b) for a, b in zip(shape_from, shape_to, strict=True))
    return sy[:, None], sx[None, :], (fy[:, None] * fx[None, :]).astype(np.complex64)


def _frequencies(shape: tuple[int, int], pixel: float) -> tuple[np.ndarray, np.ndarray]:
    ky, kx = np.meshgrid(np.fft.fftfreq(shape[0], pixel), np.fft.fftfreq(shape[1], pixel),
                         indexing="ij")
    return kx, ky


@partial(jax.jit, static_argnames=("ratio", "damage"))
def _form_batch(phase, defocus_um, tan_theta, dose, constants, ratio: float, damage: bool):
    """Intensities of a batch of tilts (see `_image_formation` for `constants`)."""
    c = constants
    spectrum = jnp.fft.fft2(phase)
    if damage:
        spectrum = spectrum * exposure.damage_filter(c["k_in"], dose[:, None, None], jnp)
    upsampled = spectrum[..., c["up_rows"], c["up_cols"]] * c["up_factor"]
    wave = jnp.fft.fft2(jnp.exp((1j - ratio) * jnp.fft.ifft2(upsampled).real))
    # underfocus grows towards the source: at detector x it is Δz0 − x·tanθ
    defocus = defocus_um[:, None] + c["strips"][None, :] * tan_theta[:, None] * 1e-4
    chi = defocus[..., None, None] * c["chi_slope"] + c["chi_rest"]
    images = jnp.abs(jnp.fft.ifft2(wave[:, None] * c["envelope"] * jnp.exp(-1j * chi))) ** 2
    intensity = jnp.fft.fft2(jnp.einsum("ckyx,kx->cyx", images, c["strip_weights"]))
    binned = (intensity * c["mtf"])[..., c["down_rows"], c["down_cols"]] * c["down_factor"]
    return jnp.fft.ifft2(binned).real


def _image_formation(acq: Acquisition, shapes: tuple[tuple[int, int], ...],
                     pixels: tuple[float, float], strips: np.ndarray, damage: bool):
    """A function (phase, defocus_um, tanθ, dose) -> intensity for a batch of tilts.

    `shapes`: the input phase images, the image-formation grid and the output; `pixels`:
    those of the input (projection pixel) and of image formation (simulation pixel).
    Resampling is done on the spectra. Everything that does not change from tilt to tilt
    is computed here once and passed to the compiled function as arrays.
    """
    in_shape, sim_shape, out_shape = shapes
    in_pixel, sim_pixel = pixels
    kx_in, ky_in = _frequencies(in_shape, in_pixel)
    kx, ky = _frequencies(sim_shape, sim_pixel)
    k = np.sqrt(kx**2 + ky**2)
    x = (np.arange(sim_shape[1]) - (sim_shape[1] - 1) / 2.0) * sim_pixel
    # χ is linear in defocus: χ = defocus_um · slope + rest
    rest = optics.aberration_phase(kx, ky, acq.voltage_kv, acq.cs_mm, 0.0, acq.astigmatism_um,
                                   acq.astigmatism_angle_deg, acq.phase_plate,
                                   acq.phase_plate_cut_on)
    slope = optics.aberration_phase(kx, ky, acq.voltage_kv, 0.0, 1.0) \
        - optics.aberration_phase(kx, ky, acq.voltage_kv, 0.0, 0.0)
    up_rows, up_cols, up_factor = _spectrum_resampling(in_shape, sim_shape)
    down_rows, down_cols, down_factor = _spectrum_resampling(sim_shape, out_shape)
    constants = {
        "k_in": np.sqrt(kx_in**2 + ky_in**2).astype(np.float32),
        "up_rows": up_rows, "up_cols": up_cols, "up_factor": up_factor,
        "down_rows": down_rows, "down_cols": down_cols, "down_factor": down_factor,
        "strips": strips.astype(np.float32),
        "strip_weights": _strip_weights(strips, x).astype(np.float32),
        "chi_slope": slope.astype(np.float32), "chi_rest": rest.astype(np.float32),
        # partial coherence at the nominal defocus (the strips change it negligibly)
        "envelope": optics.coherence_envelope(k, acq.voltage_kv, acq.cs_mm, acq.cc_mm,
                                              acq.defocus_um, acq.energy_spread_ev,
                                              acq.illumination_mrad).astype(np.float32),
        "mtf": exposure.detector_mtf(kx, ky, acq.detector_pixel).astype(np.float32),
    }
    constants = jax.tree.map(jnp.asarray, constants)
    ratio = float(acq.amplitude_contrast / np.sqrt(1.0 - acq.amplitude_contrast**2))
    return partial(_form_batch, constants=constants, ratio=ratio, damage=damage)


def _detector_shape(grid: Grid, pixel: float) -> tuple[int, int]:
    """Detector `(ny, nx)` covering the grid's lateral extent at `pixel` Å."""
    _, ny, nx = grid.shape_zyx
    return tuple(max(1, round(n * grid.voxel_size / pixel)) for n in (ny, nx))  # type: ignore


def _form_images(phase: np.ndarray, acq: Acquisition, pixels: tuple[float, float],
                 out_shape: tuple[int, int], angles: np.ndarray, dose: np.ndarray,
                 damage: bool) -> np.ndarray:
    """Intensities (relative to the incident beam) of every tilt at the output pixel, from
    phase images (σ × projected potential) at the projection pixel."""
    in_pixel, sim_pixel = pixels
    n_tilts, ny, nx = phase.shape
    sim_shape = tuple(max(1, round(n * in_pixel / sim_pixel)) for n in (ny, nx))
    lam = optics.wavelength(acq.voltage_kv)
    out_pixel = sim_pixel * sim_shape[1] / out_shape[1]
    strips = _strips(sim_shape[1] * sim_pixel, float(np.abs(np.tan(np.deg2rad(angles))).max()),
                     lam, 0.5 / max(out_pixel, sim_pixel))
    form = _image_formation(acq, ((ny, nx), sim_shape, out_shape), pixels, strips, damage)
    largest = int(max(1, BATCH_PIXELS // (len(strips) * np.prod(sim_shape))))
    batch = -(-n_tilts // -(-n_tilts // largest))  # equal batches, least padding
    out = np.empty((n_tilts, *out_shape), dtype=np.float32)
    tan_theta = np.tan(np.deg2rad(angles)).astype(np.float32)
    defocus = np.full(n_tilts, acq.defocus_um, dtype=np.float32)
    for start in track(range(0, n_tilts, batch), "simulating tilts",
                       total=-(-n_tilts // batch)):
        part = np.arange(start, start + batch).clip(max=n_tilts - 1)  # fixed batch shape
        result = np.asarray(form(jnp.asarray(phase[part]), jnp.asarray(defocus[part]),
                                 jnp.asarray(tan_theta[part]),
                                 jnp.asarray(dose[part], jnp.float32)))
        out[start:start + batch] = result[:min(batch, n_tilts - start)]
    return out


def simulate_fast(table: pd.DataFrame, sample: Grid, maps: dict[str, Volume],
                  acq: Acquisition, params: FastParams = FastParams()) -> TiltSeries:
    """Tilt series of the molecules of `table` in `sample` under acquisition `acq`."""
    if not maps:
        raise InputError("no structure maps to simulate")
    pixel = params.pixel_size or sample.voxel_size
    sim_pixel = params.sim_pixel or pixel / 2.0
    if pixel <= 0 or sim_pixel <= 0 or sim_pixel > pixel:
        raise InputError(f"need 0 < simulation pixel ({sim_pixel} Å) ≤ output pixel "
                         f"({pixel} Å)")
    thickness = params.thickness or sample.shape_zyx[0] * sample.voxel_size
    rng = np.random.default_rng(params.seed)
    specimen = replace(params.specimen,
                       ice_texture=params.specimen.ice_texture * acq.ice_texture_scale)
    volume, grid, beads = specimen_potential(table, sample, maps, acq.ice_density,
                                             specimen, rng, acq.contrast_scale)
    if params.ideal:
        nominal = np.arange(-90.0, 90.0, acq.tilt_step)
        angles = nominal
    else:
        nominal = acq.nominal_angles()
        angles = nominal + rng.normal(0.0, acq.tilt_jitter_deg, len(nominal)) \
            if acq.tilt_jitter_deg > 0 else nominal
    nz, _, nx = grid.shape_zyx
    projections = project(volume, TiltGeometry(tuple(angles), nz, nx, nx)) * grid.voxel_size
    out_shape = _detector_shape(grid, pixel)
    meta = {
        "backend": "fast", "templearn": __version__, "acquisition": asdict(acq),
        "ideal": params.ideal, "seed": params.seed, "pixel_size": pixel,
        "sim_pixel": sim_pixel, "potential_voxel": grid.voxel_size,
        "angles_nominal": nominal, "angles_true": angles,
        "sample": {"shape_xyz": list(sample.shape_zyx[::-1]), "voxel_size": sample.voxel_size,
                   "centre_angst": sample.centre_angst, "thickness_angst": thickness},
        "specimen": asdict(specimen), "fiducials_angst": beads,
    }
    if params.ideal:
        images = fourier_resize(projections, out_shape)
        meta["units"] = "projected potential, V·Å (net of uniform ice)"
        return TiltSeries(images, nominal, pixel, meta)
    sigma = optics.interaction_constant(acq.voltage_kv)
    dose_image = acq.dose_per_image()
    mid_dose = acq.prior_dose() + 0.5 * dose_image
    intensity = _form_images(projections * sigma, acq, (grid.voxel_size, sim_pixel),
                             out_shape, angles, mid_dose, params.damage)
    intensity *= exposure.zero_loss_fraction(thickness, angles, acq.ice_density)[:, None, None]
    expected = intensity * dose_image * pixel**2
    images = exposure.counting_noise(expected, acq.dqe, rng)
    meta.update({
        "units": "electrons per pixel (zero-loss, counting)",
        "acquisition_order": acq.acquisition_order(), "dose_per_image": dose_image,
        "prior_dose": acq.prior_dose(), "interaction_constant": sigma,
    })
    return TiltSeries(images, nominal, pixel, meta)
