"""Fourier shells: the spatial frequency of every coefficient of an `rfftn`, the grid that
radially averaged spectra (whitening, `templearn.unet.normalise`) and Fourier shell
correlations (`templearn.halves`) bin by."""

from __future__ import annotations

import numpy as np


def shell_frequencies(shape: tuple[int, ...]) -> np.ndarray:
    """|k| (cycles per voxel, float32) of each coefficient of an `rfftn` of `shape`."""
    axes = [np.fft.fftfreq(n).astype(np.float32) for n in shape[:-1]]
    axes.append(np.fft.rfftfreq(shape[-1]).astype(np.float32))
    grids = np.meshgrid(*axes, indexing="ij", sparse=True)
    return np.sqrt(sum(g**2 for g in grids))
