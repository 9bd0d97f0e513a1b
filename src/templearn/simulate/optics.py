"""Electron optics: wavelength, interaction constant and the contrast transfer function.

Sign conventions: `defocus_um` < 0 is underfocus (as in Parakeet and the paper). The
wave transfer function is `exp(-i·χ(k))·E(k)` with
`χ(k) = -π·λ·Δz·k² + (π/2)·Cs·λ³·k⁴ + χ_pp`, where Δz > 0 is the underfocus and the
phase plate adds `χ_pp = -π/2` to every non-zero frequency. In the weak-phase limit the
image is then `1 + 2σ·φ ⊗ F⁻¹[sin χ − A'·cos χ]`, the usual
`-(√(1-A²)·sin γ + A·cos γ)` CTF with `γ = -χ`: protein dark at underfocus and with a
phase plate.
"""

from __future__ import annotations

import numpy as np

ELECTRON_REST_ENERGY_EV = 510_998.95
#: h / sqrt(2·m0·e) in Å·V^½.
WAVELENGTH_CONSTANT = 12.264_259


def wavelength(voltage_kv: float) -> float:
    """Relativistic electron wavelength (Å)."""
    volts = voltage_kv * 1e3
    return WAVELENGTH_CONSTANT / np.sqrt(volts * (1.0 + volts / (2.0 * ELECTRON_REST_ENERGY_EV)))


def interaction_constant(voltage_kv: float) -> float:
    """σ (rad per V·Å of projected potential), relativistic (Kirkland, eq. 5.6)."""
    volts = voltage_kv * 1e3
    rest = ELECTRON_REST_ENERGY_EV
    return float(2.0 * np.pi / (wavelength(voltage_kv) * volts)
                 * (rest + volts) / (2.0 * rest + volts))


def aberration_phase(kx: np.ndarray, ky: np.ndarray, voltage_kv: float, cs_mm: float,
                     defocus_um: np.ndarray | float, astigmatism_um: float = 0.0,
                     astigmatism_angle_deg: float = 0.0, phase_plate: bool = False,
                     phase_plate_cut_on: float = 0.0, xp=np) -> np.ndarray:
    """χ(k) (rad) at spatial frequencies kx, ky (1/Å); `defocus_um` may broadcast (strips).

    Astigmatism: underfocus `Δz + (a/2)·cos 2(φ − φ_a)` along azimuth φ. A phase plate
    shifts by 90°·(1 − exp(−k²/2r²)) with spot radius r = `phase_plate_cut_on` (1/Å; 0:
    every frequency but k = 0 shifted fully).
    """
    lam = wavelength(voltage_kv)
    k2 = kx**2 + ky**2
    azimuth = xp.arctan2(ky, kx)
    underfocus = (-xp.asarray(defocus_um) * 1e4
                  + 0.5e4 * astigmatism_um * xp.cos(2.0 * (azimuth - np.deg2rad(
                      astigmatism_angle_deg))))
    chi = -np.pi * lam * underfocus * k2 + 0.5 * np.pi * cs_mm * 1e7 * lam**3 * k2**2
    if phase_plate:
        if phase_plate_cut_on > 0:
            chi = chi - 0.5 * np.pi * (1.0 - xp.exp(-k2 / (2.0 * phase_plate_cut_on**2)))
        else:
            chi = chi - 0.5 * np.pi * (k2 > 0)
    return chi


def coherence_envelope(k: np.ndarray, voltage_kv: float, cs_mm: float, cc_mm: float,
                       defocus_um: float, energy_spread_ev: float, illumination_mrad: float,
                       xp=np) -> np.ndarray:
    """Partial coherence: spatial (beam divergence) × temporal (focus spread) envelopes."""
    lam = wavelength(voltage_kv)
    underfocus = -defocus_um * 1e4
    alpha = illumination_mrad * 1e-3
    gradient = cs_mm * 1e7 * lam**3 * k**3 - underfocus * lam * k  # (1/2π)·dχ/dk
    spatial = xp.exp(-((np.pi * alpha / lam) ** 2) * gradient**2)
    focus_spread = cc_mm * 1e7 * energy_spread_ev / (voltage_kv * 1e3)
    temporal = xp.exp(-0.5 * (np.pi * lam * focus_spread) ** 2 * k**4)
    return spatial * temporal


def ctf_1d(k: np.ndarray, voltage_kv: float, cs_mm: float, defocus_um: float,
           amplitude_contrast: float, phase_plate: bool = False,
           phase_plate_cut_on: float = 0.0) -> np.ndarray:
    """Weak-phase CTF `sin χ − A'·cos χ` along a radial line (for plots and tests)."""
    chi = aberration_phase(k, np.zeros_like(k), voltage_kv, cs_mm, defocus_um,
                           phase_plate=phase_plate, phase_plate_cut_on=phase_plate_cut_on)
    ratio = amplitude_contrast / np.sqrt(1.0 - amplitude_contrast**2)
    return np.sin(chi) - ratio * np.cos(chi)
