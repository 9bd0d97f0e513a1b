"""Resampling images to another pixel size without aliasing.

`fourier_resize` crops (down-sampling: an ideal antialias filter) or zero-pads
(up-sampling: band-limited interpolation) the spectrum of the last two axes; values are
preserved (a flat image stays flat at the same level), not sums. Images stay centred as
everywhere in templearn: the centre `(n - 1) / 2` of the input falls on the centre
`(m - 1) / 2` of the output (as in block binning), not pixel 0 on pixel 0.

`lanczos_resize` is the real-space alternative that IMOD uses (`newstack -bin N
-antialias 6`): each output pixel is a Lanczos 3-lobe weighted mean of the input pixels
around its position, the kernel stretched by the reduction factor. It samples the same
grid as `fourier_resize` (spacing `n / m`, centre on centre).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

#: Lobes of the Lanczos antialias kernel (IMOD antialias filter 6 = Lanczos 3 lobes).
LANCZOS_LOBES = 3


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


def lanczos_weights(n_from: int, n_to: int, lobes: int = LANCZOS_LOBES) -> sp.csr_matrix:
    """Banded `(n_to × n_from)` matrix resampling one axis with a Lanczos kernel.

    Output pixel `j` sits at input coordinate `(n_from - 1) / 2 + (j - (n_to - 1) / 2)·s`,
    `s = n_from / n_to`; the kernel `sinc(d)·sinc(d / lobes)` is evaluated at
    `d = (i - position) / max(s, 1)` (stretched when reducing, so it also antialiases),
    edge pixels are repeated beyond the border, and each row sums to 1 (means preserved).
    """
    step = n_from / n_to
    scale = max(step, 1.0)
    position = (n_from - 1) / 2.0 + (np.arange(n_to) - (n_to - 1) / 2.0) * step
    reach = int(np.ceil(lobes * scale)) + 1
    taps = np.floor(position)[:, None].astype(np.int64) + np.arange(-reach + 1, reach + 1)
    distance = (taps - position[:, None]) / scale
    weights = np.where(np.abs(distance) < lobes,
                       np.sinc(distance) * np.sinc(distance / lobes), 0.0)
    weights /= weights.sum(axis=1, keepdims=True)
    rows = np.broadcast_to(np.arange(n_to)[:, None], taps.shape)
    matrix = sp.coo_matrix((weights.ravel(), (rows.ravel(), np.clip(taps, 0, n_from - 1).ravel())),
                           shape=(n_to, n_from)).tocsr()  # tocsr sums the repeated edge taps
    matrix.eliminate_zeros()
    return matrix.astype(np.float32)


def lanczos_resize(images: np.ndarray, shape_yx: tuple[int, int],
                   lobes: int = LANCZOS_LOBES) -> np.ndarray:
    """Resample the last two axes of `images` to `shape_yx` with a Lanczos antialias kernel
    (IMOD `newstack -antialias 6` for 3 lobes); separable, as two sparse matrix products
    that compute only the output samples."""
    ny, nx = images.shape[-2:]
    my, mx = shape_yx
    lead = images.shape[:-2]
    data = np.ascontiguousarray(images, dtype=np.float32).reshape(-1, ny, nx)
    along_x = lanczos_weights(nx, mx, lobes)
    along_y = lanczos_weights(ny, my, lobes)
    out = np.empty((data.shape[0], my, mx), dtype=np.float32)
    for k, image in enumerate(data):
        reduced_x = np.asarray(along_x @ image.T)  # [mx, ny]
        out[k] = np.asarray(along_y @ reduced_x.T)
    return out.reshape(lead + (my, mx))
