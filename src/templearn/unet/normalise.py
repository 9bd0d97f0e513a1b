"""How a tomogram is prepared for the network, the same at training and at inference.

`zscore`: the whole tomogram to zero mean and unit s.d. (DeepFinder z-scores each training
patch but the whole tomogram at inference; we z-score the whole tomogram both times).

`whiten`: first divide every Fourier coefficient by the root-mean-square amplitude of its
frequency shell (the tomogram's own radially averaged spectrum), then multiply by a
Gaussian envelope `exp(−2π²σ²k²)` (a blur of σ voxels), then z-score. Every tomogram then
has the same power spectrum whatever made it: defocus or phase plate, amplitude contrast
or none, one simulator or another, or a microscope. What is left to tell particles from
noise is their signal-to-noise ratio per frequency, which whitening does not change. It is
the transfer benchmark's measured fix (docs/transfer.md): z-scored, the ribosomes of a
Parakeet defocus tomogram have a contrast of −0.19 s.d. against −0.08…−1.1 in the training
tomograms; whitened, −1.01 against −0.47…−1.13.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from templearn.errors import InputError
from templearn.unet.params import NORMALISATIONS, Normalisation


def zscore(tomogram: np.ndarray) -> np.ndarray:
    """The tomogram (float32) at zero mean and unit s.d."""
    data = tomogram.astype(np.float32)
    std = float(data.std())
    return (data - float(data.mean())) / (std if std > 0 else 1.0)


def _shell_frequencies(shape: tuple[int, ...]) -> np.ndarray:
    """|k| (cycles per voxel, float32) of each coefficient of an `rfftn` of `shape`."""
    axes = [np.fft.fftfreq(n).astype(np.float32) for n in shape[:-1]]
    axes.append(np.fft.rfftfreq(shape[-1]).astype(np.float32))
    grids = np.meshgrid(*axes, indexing="ij", sparse=True)
    return np.sqrt(sum(g**2 for g in grids))


def whiten(tomogram: np.ndarray, lowpass: float, highpass: float = 0.0) -> np.ndarray:
    """The tomogram with a flat radially averaged spectrum times a Gaussian envelope of
    σ = `lowpass` voxels and the complement of one of σ = `highpass` voxels (0: none),
    z-scored. Frequency shells are one `1/max(shape)` wide."""
    data = np.asarray(tomogram, dtype=np.float32)
    spectrum = scipy.fft.rfftn(data - data.mean(), workers=-1)
    k = _shell_frequencies(data.shape)
    shell = (k * max(data.shape)).astype(np.int32)
    power = np.bincount(shell.ravel(), (spectrum.real**2 + spectrum.imag**2).ravel())
    count = np.bincount(shell.ravel(), minlength=len(power))
    rms = np.sqrt(power / np.maximum(count, 1)).astype(np.float32)
    gain = np.divide(1.0, rms, out=np.zeros_like(rms), where=rms > 0)
    spectrum *= gain[shell]
    if lowpass > 0:
        spectrum *= np.exp(np.float32(-2 * np.pi**2 * lowpass**2) * k**2)
    if highpass > 0:
        spectrum *= 1 - np.exp(np.float32(-2 * np.pi**2 * highpass**2) * k**2)
    spectrum.flat[0] = 0.0
    return zscore(scipy.fft.irfftn(spectrum, s=data.shape, workers=-1))


def normalise(tomogram: np.ndarray, how: Normalisation | None = None) -> np.ndarray:
    """The tomogram as the network sees it (float32), by `how` (default: whitened)."""
    how = how or Normalisation()
    if how.method == "zscore":
        return zscore(tomogram)
    if how.method == "whiten":
        return whiten(tomogram, how.lowpass, how.highpass)
    raise InputError(f"unknown normalisation {how.method!r}; one of {', '.join(NORMALISATIONS)}")
