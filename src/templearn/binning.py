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


def spectrum_map(n_from: int, n_to: int) -> tuple[np.ndarray, np.ndarray]:
    """For each bin of an `n_to`-point spectrum (unshifted FFT order) resampled from an
    `n_from`-point one: the source bin and a factor. Frequencies both share are copied with
    the phase ramp that keeps centre on centre (output pixel 0 samples input coordinate
    `(n_from - n_to) / (2 n_to)`) and the `n_to / n_from` that keeps values; the others,
    and an unpaired Nyquist bin (which would make real images complex), are 0."""
    freq = np.rint(np.fft.fftfreq(n_to) * n_to)  # signed integer frequencies of the target
    keep = np.abs(freq) < min(n_from, n_to) / 2.0
    if n_from == n_to:
        keep[:] = True
    source = np.mod(freq, n_from).astype(np.int64)
    shift = (n_from - n_to) / (2.0 * n_to)
    factor = np.where(keep, np.exp(2j * np.pi * freq / n_from * shift), 0.0) * (n_to / n_from)
    return source, factor


def fourier_resize(images: np.ndarray, shape_yx: tuple[int, int]) -> np.ndarray:
    """Resample the last two axes of `images` to `shape_yx` by cropping or zero-padding
    their spectrum (`spectrum_map`)."""
    if images.shape[-2:] == tuple(shape_yx):
        return images.astype(np.float32, copy=True)
    (sy, fy), (sx, fx) = (spectrum_map(a, b) for a, b in zip(images.shape[-2:], shape_yx,
                                                             strict=True))
    spectrum = np.fft.fft2(images.astype(np.float64))[..., sy[:, None], sx[None, :]]
    return np.fft.ifft2(spectrum * (fy[:, None] * fx[None, :])).real.astype(np.float32)


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
