"""Resampling images to another pixel size without aliasing.

`fourier_resize` crops (down-sampling: an ideal antialias filter) or zero-pads
(up-sampling: band-limited interpolation) the spectrum of the last two axes; values are
preserved (a flat image stays flat at the same level), not sums. Images stay centred as
everywhere in templearn: the centre `(n - 1) / 2` of the input falls on the centre
`(m - 1) / 2` of the output (as in block binning), not pixel 0 on pixel 0.
"""

from __future__ import annotations

import numpy as np


def _centred_slices(n_from: int, n_to: int) -> tuple[slice, slice]:
    """Matching slices of two fft-shifted axes of lengths `n_from` and `n_to`."""
    n = min(n_from, n_to)
    start_from, start_to = n_from // 2 - n // 2, n_to // 2 - n // 2
    return slice(start_from, start_from + n), slice(start_to, start_to + n)


def fourier_resize(images: np.ndarray, shape_yx: tuple[int, int]) -> np.ndarray:
    """Resample the last two axes of `images` to `shape_yx` by cropping or padding the
    centred spectrum. The Nyquist bin of an even axis is split symmetrically by keeping it
    only when both sizes are odd or equal, so real images stay real."""
    ny, nx = images.shape[-2:]
    my, mx = shape_yx
    if (ny, nx) == (my, mx):
        return images.astype(np.float32, copy=True)
    spectrum = np.fft.fft2(images.astype(np.float64))
    for axis, (n_from, n_to) in ((-2, (ny, my)), (-1, (nx, mx))):
        # output pixel 0 samples input coordinate (n_from - n_to) / (2 n_to), not 0
        shift = (n_from - n_to) / (2.0 * n_to)
        ramp = np.exp(2j * np.pi * np.fft.fftfreq(n_from) * shift)
        spectrum *= ramp.reshape((-1, 1) if axis == -2 else (1, -1))
    spectrum = np.fft.fftshift(spectrum, axes=(-2, -1))
    out = np.zeros(images.shape[:-2] + (my, mx), dtype=np.complex128)
    (fy, ty), (fx, tx) = _centred_slices(ny, my), _centred_slices(nx, mx)
    out[..., ty, tx] = spectrum[..., fy, fx]
    for axis, (n_from, n_to) in ((-2, (ny, my)), (-1, (nx, mx))):
        n = min(n_from, n_to)
        if n % 2 == 0 and n_from != n_to:  # unpaired Nyquist bin: drop it to stay real
            index = [slice(None)] * out.ndim
            index[axis] = n_to // 2 - n // 2
            out[tuple(index)] = 0
    scale = (my * mx) / (ny * nx)
    result = np.fft.ifft2(np.fft.ifftshift(out, axes=(-2, -1))).real * scale
    return result.astype(np.float32)


def binned_shape(shape_yx: tuple[int, int], factor: float) -> tuple[int, int]:
    """Image shape after binning by `factor` (rounded to whole pixels)."""
    return tuple(max(1, round(n / factor)) for n in shape_yx)  # type: ignore[return-value]
