"""Dose-dependent effects: radiation damage, inelastic loss, detector MTF, DQE and noise.

- Radiation damage: the amplitude of spatial frequency k decays as `exp(-N / 2N_e(k))`
  after N e⁻/Å², with the critical exposure `N_e(k) = 0.245·k^-1.665 + 2.81` measured at
  300 kV (Grant & Grigorieff 2015); applied to the projected potential of each image at
  the dose received up to the middle of its exposure.
- Inelastic loss behind a zero-loss energy filter: `exp(-t / (λ_in·cosθ))` with
  λ_in ≈ 3500 Å at 300 kV in ice of 0.93 g/cm³, scaled inversely with density.
- Detector: pixel-aperture MTF `sinc(k·p_det)` per axis; counting noise as Poisson at
  DQE × dose, rescaled by 1/DQE (mean = dose × intensity, variance = mean / DQE).
"""

from __future__ import annotations

import numpy as np

INELASTIC_MEAN_FREE_PATH = 3500.0  # Å, 300 kV, ice at 0.93 g/cm³
REFERENCE_ICE_DENSITY = 0.93


def critical_exposure(k: np.ndarray, xp=np) -> np.ndarray:
    """Grant & Grigorieff (2015) critical exposure (e⁻/Å²) at spatial frequency k (1/Å)."""
    return 0.245 * xp.maximum(k, 1e-6) ** -1.665 + 2.81


def damage_filter(k: np.ndarray, exposure: np.ndarray | float, xp=np) -> np.ndarray:
    """Amplitude attenuation after `exposure` e⁻/Å² (broadcasts over images)."""
    return xp.exp(-xp.asarray(exposure) / (2.0 * critical_exposure(k, xp)))


def zero_loss_fraction(thickness: float, angles_deg: np.ndarray, ice_density: float) -> np.ndarray:
    """Fraction of electrons left after inelastic scattering in a tilted slab."""
    mean_free_path = INELASTIC_MEAN_FREE_PATH * REFERENCE_ICE_DENSITY / ice_density
    path = thickness / np.maximum(np.cos(np.deg2rad(angles_deg)), 1e-3)
    return np.exp(-path / mean_free_path)


def detector_mtf(kx: np.ndarray, ky: np.ndarray, detector_pixel: float, xp=np) -> np.ndarray:
    """Pixel-aperture MTF of a counting detector with pixels of `detector_pixel` Å."""
    return xp.sinc(kx * detector_pixel) * xp.sinc(ky * detector_pixel)


def counting_noise(expected: np.ndarray, dqe: float, rng: np.random.Generator) -> np.ndarray:
    """Counts with Poisson statistics at DQE × the expected dose, rescaled to the dose."""
    lam = np.clip(expected, 0.0, None) * dqe
    return (rng.poisson(lam) / dqe).astype(np.float32)
