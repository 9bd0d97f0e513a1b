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

`whiten-noise`: filtered as `whiten`, but scaled to unit noise instead of unit s.d. The
noise is measured as half the difference of the even/odd half tomograms
(`templearn.halves`, `templearn reconstruct --halves`). Z-scoring divides by the whole
tomogram's s.d., particles included: a crowded training tomogram's noise ends up weak
(0.43–0.79 of the s.d. in the ribosome recipe's), a sparse low-dose tomogram's at full
strength, so the network meets noise stronger than any it was trained to ignore
(docs/transfer.md, finding 10).

`whiten-snr`: as `whiten-noise`, but the shells are flattened by the noise's spectrum
instead of the tomogram's: every frequency in units of its own noise (the noise comes out
white at unit s.d.), the particles at their signal-to-noise ratio per shell.

Measured on the ribosome recipe (docs/transfer.md, finding 11): both raise the fast
held-out F1 but not the Parakeet cases; neither is a recipe's default.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from templearn.errors import InputError
from templearn.shells import shell_frequencies
from templearn.unet.params import NORMALISATIONS, Normalisation


def zscore(tomogram: np.ndarray) -> np.ndarray:
    """The tomogram (float32) at zero mean and unit s.d."""
    data = tomogram.astype(np.float32)
    std = float(data.std())
    return (data - float(data.mean())) / (std if std > 0 else 1.0)


def _whitening(data: np.ndarray, lowpass: float, highpass: float) -> np.ndarray:
    """The Fourier gain (on `data`'s `rfftn` grid, float32) that flattens `data`'s radially
    averaged spectrum and applies a Gaussian envelope of σ = `lowpass` voxels and the
    complement of one of σ = `highpass` voxels (0: none); zero at the origin. Frequency
    shells are one `1/max(shape)` wide."""
    spectrum = scipy.fft.rfftn(data - data.mean(), workers=-1)
    k = shell_frequencies(data.shape)
    shell = (k * max(data.shape)).astype(np.int32)
    power = np.bincount(shell.ravel(), (spectrum.real**2 + spectrum.imag**2).ravel())
    count = np.bincount(shell.ravel(), minlength=len(power))
    rms = np.sqrt(power / np.maximum(count, 1)).astype(np.float32)
    gain = np.divide(1.0, rms, out=np.zeros_like(rms), where=rms > 0)[shell]
    if lowpass > 0:
        gain *= np.exp(np.float32(-2 * np.pi**2 * lowpass**2) * k**2)
    if highpass > 0:
        gain *= 1 - np.exp(np.float32(-2 * np.pi**2 * highpass**2) * k**2)
    gain.flat[0] = 0.0
    return gain


def _filtered(data: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """`data` (float32) filtered by the Fourier `gain` of `_whitening`."""
    return scipy.fft.irfftn(scipy.fft.rfftn(data, workers=-1) * gain, s=data.shape,
                            workers=-1).astype(np.float32)


def whiten(tomogram: np.ndarray, lowpass: float, highpass: float = 0.0) -> np.ndarray:
    """The tomogram with a flat radially averaged spectrum times a Gaussian envelope of
    σ = `lowpass` voxels and the complement of one of σ = `highpass` voxels (0: none),
    z-scored."""
    data = np.asarray(tomogram, dtype=np.float32)
    return zscore(_filtered(data, _whitening(data, lowpass, highpass)))


def whiten_noise(tomogram: np.ndarray, even: np.ndarray, odd: np.ndarray, lowpass: float,
                 highpass: float = 0.0, per_shell: bool = False) -> np.ndarray:
    """The tomogram filtered as `whiten` does, in units of its noise: scaled so that half
    the difference of its even and odd half tomograms (`templearn.halves`), filtered the
    same way, has unit s.d. A tomogram whose power is mostly its particles' (crowded, high
    dose) then keeps its noise weak, and one that is mostly noise (sparse, low dose) does
    not have that noise raised to the particles' strength, as z-scoring would. With
    `per_shell` (`whiten-snr`) the shells are flattened by the noise's own spectrum."""
    data = np.asarray(tomogram, dtype=np.float32)
    difference = (np.asarray(even, np.float32) - np.asarray(odd, np.float32)) / 2
    gain = (_whitening(difference, lowpass, highpass) if per_shell
            else _whitening(data, lowpass, highpass))
    noise = _filtered(difference, gain)
    sd = float(noise.std())
    if not sd > 0:
        raise InputError("the even and odd half tomograms are identical: no noise to "
                         "measure (were they made from the same tilts?)")
    return _filtered(data, gain) / np.float32(sd)


def normalise(tomogram: np.ndarray, how: Normalisation | None = None,
              halves: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """The tomogram as the network sees it (float32), by `how` (default: whitened);
    `whiten-noise` and `whiten-snr` need the (even, odd) `halves`."""
    how = how or Normalisation()
    if how.method == "zscore":
        return zscore(tomogram)
    if how.method == "whiten":
        return whiten(tomogram, how.lowpass, how.highpass)
    if how.needs_halves:
        if halves is None:
            raise InputError(f"--normalise {how.method} needs the even/odd half tomograms "
                             "(`templearn reconstruct --halves`)")
        return whiten_noise(tomogram, *halves, how.lowpass, how.highpass,
                            per_shell=how.method == "whiten-snr")
    raise InputError(f"unknown normalisation {how.method!r}; one of {', '.join(NORMALISATIONS)}")
