"""IMOD-style radial weighting of projections for weighted back-projection (WBP).

Follows the semantics of IMOD `tilt` (see `notes/imod-tilt.md`): each projection line is
padded by ~10% with a linear ramp that joins its two ends (so the periodic line has no
step), Fourier transformed, multiplied by a ramp `|f|` (zero frequency: 0.2 × the first
bin), optionally rolled off beyond a cutoff by a Gaussian of true σ (`-FalloffIsTrueSigma
1`), and scaled by the view's share of the tilt range (density weighting). With weights in
cycles/pixel and view shares in radians, a WBP of full ±90° projections returns the
volume's own values. The fake-SIRT filter (Zeng 2012) replaces the ramp by one that
plateaus at high frequency, as `k` SIRT iterations would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft

#: Zero-frequency weight relative to the first Fourier bin (IMOD `tilt`).
ZERO_WEIGHT = 0.2
#: Fake-SIRT step `a`, in Fourier pixels of the padded line (a ≈ 0.65 / npad cycles/pixel).
FAKE_SIRT_STEP = 0.65


@dataclass(frozen=True)
class RadialFilter:
    """`-RADIAL cutoff,falloff`: values ≤ 1 are cycles/pixel, values > 1 Fourier pixels of
    the padded line; `0.5,0.5` is a full ramp. `fake_sirt_iterations` > 0 switches to the
    SIRT-like filter of `-FakeSIRTiterations`."""

    cutoff: float = 0.5
    falloff: float = 0.5
    fake_sirt_iterations: int = 0

    def __post_init__(self) -> None:
        if not self.cutoff > 0 or not self.falloff >= 0:
            raise ValueError(f"radial cutoff must be > 0 and falloff ≥ 0, got "
                             f"{self.cutoff},{self.falloff}")
        if self.fake_sirt_iterations < 0:
            raise ValueError("fake-SIRT iterations must be ≥ 0")


def padded_length(n: int) -> int:
    """Length of a projection line after IMOD-like padding: ~10% extra, 16–50 pixels, rounded
    up to a fast FFT size with an even number of extra pixels (so the padded line can be
    centred on the original one)."""
    npad = scipy.fft.next_fast_len(n + int(np.clip(round(0.1 * n), 16, 50)), real=True)
    while (npad - n) % 2:
        npad = scipy.fft.next_fast_len(npad + 1, real=True)
    return npad


def fourier_pixels(value: float, npad: int) -> float:
    """An IMOD `-RADIAL` value in Fourier pixels of a line of length `npad`."""
    return value * npad if value <= 1 else value


def radial_weights(npad: int, radial: RadialFilter = RadialFilter()) -> np.ndarray:
    """Weights for the `npad // 2 + 1` bins of a real FFT of length `npad`, in cycles/pixel
    (so that, with view shares in radians, WBP is an inverse Radon transform)."""
    index = np.arange(npad // 2 + 1, dtype=np.float64)
    cutoff = fourier_pixels(radial.cutoff, npad)
    sigma = fourier_pixels(radial.falloff, npad)

    def base(i: np.ndarray) -> np.ndarray:
        ramp = np.maximum(i, ZERO_WEIGHT) / npad  # bin 0 gets 0.2 × bin 1
        k = radial.fake_sirt_iterations
        if k == 0:
            return ramp
        ratio = np.minimum(FAKE_SIRT_STEP / npad / ramp, 1.0)
        return ramp * (1.0 - (1.0 - ratio) ** k)

    weights = base(np.minimum(index, cutoff))
    beyond = index > cutoff
    if sigma > 0:
        weights[beyond] *= np.exp(-((index[beyond] - cutoff) ** 2) / (2.0 * sigma**2))
    else:
        weights[beyond] = 0.0
    return weights


def view_weights(angles_deg: np.ndarray) -> np.ndarray:
    """Each view's share of the tilt range in radians (density weighting): half the span to
    its two neighbours, the full step to its one neighbour at either end; equal for evenly
    spaced tilts. A single view gets π."""
    angles = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))
    if len(angles) == 1:
        return np.array([np.pi])
    order = np.argsort(angles, kind="stable")
    ordered = angles[order]
    share = np.empty_like(ordered)
    share[1:-1] = (ordered[2:] - ordered[:-2]) / 2.0
    share[0] = ordered[1] - ordered[0]
    share[-1] = ordered[-1] - ordered[-2]
    weights = np.empty_like(share)
    weights[order] = share
    return weights


def pad_lines(lines: np.ndarray, npad: int) -> np.ndarray:
    """Pad the last axis to `npad` with a linear ramp from the mean of the last 3 pixels to
    the mean of the first 3, so the periodic line continues smoothly."""
    n = lines.shape[-1]
    extra = npad - n
    first = lines[..., :3].mean(axis=-1, keepdims=True)
    last = lines[..., -3:].mean(axis=-1, keepdims=True)
    step = np.arange(1, extra + 1, dtype=np.float32) / (extra + 1)
    padding = last + (first - last) * step
    return np.concatenate((lines, padding.astype(lines.dtype)), axis=-1)


def filter_projections(images: np.ndarray, angles_deg: np.ndarray,
                       radial: RadialFilter = RadialFilter(), extended: bool = False,
                       threads: int = 2) -> np.ndarray:
    """Radially weighted projections `[tilt, y, u]` (float32), density weighting included.

    With `extended`, the whole filtered padded line is returned, centred on the original
    (width `padded_length(nu)`, original pixels at offset `(npad - nu) / 2`): back-projecting
    that, voxels whose rays leave the detector at high tilt still receive the smooth
    continuation of the data instead of zero (no dark corners when the images carry a large
    offset, e.g. intensities).
    """
    n_tilts, ny, nu = images.shape
    npad = padded_length(nu)
    weights = radial_weights(npad, radial).astype(np.float32)
    views = view_weights(angles_deg).astype(np.float32)
    left = (npad - nu) // 2
    out = np.empty((n_tilts, ny, npad if extended else nu), dtype=np.float32)
    for t in range(n_tilts):  # one view at a time bounds the memory of the padded copies
        padded = pad_lines(images[t].astype(np.float32, copy=False), npad)
        spectrum = scipy.fft.rfft(padded, axis=-1, workers=threads)
        spectrum *= weights * views[t]
        line = scipy.fft.irfft(spectrum, n=npad, axis=-1, workers=threads)
        out[t] = np.roll(line, left, axis=-1) if extended else line[:, :nu]
    return out
