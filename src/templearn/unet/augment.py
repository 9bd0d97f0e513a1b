"""Intensity augmentation of training patches: each augmented patch is a new draw of how
strongly, and at which frequencies, a tomogram shows its particles.

Simulated tomograms show particles more clearly than other data do (Parakeet: 1.4–3.3×
weaker particle contrast against the noise, its defocus tomograms nearly void of low
frequencies; docs/transfer.md). Per-tomogram acquisition draws cover that only with many
tomograms, so each patch is also, with probability `augment`, modified in the ways other
data differ:
1. blurred (Gaussian, σ up to `augment_blur` voxels: a lower resolution);
2. high-passed half of the time (minus its Gaussian blur of σ 1.5–6 voxels: the weak low
   frequencies of a defocus tomogram without amplitude contrast);
3. given extra noise, white or correlated over up to a voxel, of s.d. σ (in tomogram
   s.d.s) up to `augment_noise`: the particles' contrast against the noise falls by
   1/√(1 + σ²), a factor drawn uniformly between 1/√(1 + augment_noise²) and 1;
then rescaled as the whole-tomogram z-score would rescale it (the patch's variance change
from 1–2 measured on the patch, the noise's added), so that patches look like tomograms
normalised as at inference. Labels are not touched.

A share of patches can also be replaced by particle-free noise (`noise_patch`), labelled
background: white noise with a tomogram's missing wedge, prepared as the tomograms are
(whitened, band-limited). Simulated training samples are crowded and rarely hold
empty ice, and a picker that never saw a patch without particles paints particles into
plain noise (the shipped ribosome picker labelled 8–11 % of pure-noise tomograms of any
spectrum as ribosome, 15–17 picks in 64×64×32 voxels; docs/transfer.md, finding 10).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.ndimage import gaussian_filter

from templearn.match import wedge_weight
from templearn.unet.normalise import normalise
from templearn.unet.params import Normalisation

#: Range of the high-pass filter's Gaussian σ, voxels, and the chance a patch gets it.
HIGH_PASS_SIGMA, HIGH_PASS_CHANCE = (1.5, 6.0), 0.5
#: Largest correlation length (Gaussian σ, voxels) of the added noise.
NOISE_CORRELATION = 1.0
#: Range of the largest tilt (degrees) whose missing wedge noise patches lack.
NOISE_PATCH_TILT_MAX = (35.0, 70.0)
#: Range of the s.d. of noise patches, in tomogram s.d.s (empty ice: 0.90–0.97 of the
#: whole tomogram's, whose s.d. includes the particles, in the Parakeet cases).
NOISE_PATCH_SD = (0.7, 1.1)


def augment_intensity(image: np.ndarray, rng: np.random.Generator, max_blur: float,
                      max_noise: float) -> np.ndarray:
    """A new float32 patch: `image` (from a z-scored tomogram) blurred, perhaps high-passed,
    with added noise, rescaled to the scale of a z-scored tomogram of such patches."""
    original = image.astype(np.float32)
    out = original
    if max_blur > 0:
        out = gaussian_filter(out, rng.uniform(0, max_blur), mode="reflect")
    if rng.random() < HIGH_PASS_CHANCE:
        out = out - gaussian_filter(out, rng.uniform(*HIGH_PASS_SIGMA), mode="reflect")
    # The tomogram's variance after filtering, estimated as the patch's variance ratio.
    before = float(original.var())
    ratio = float(out.var()) / before if before > 0 else 1.0
    noise_sd = 0.0
    if max_noise > 0:
        contrast_factor = rng.uniform(1 / np.sqrt(1 + max_noise**2), 1)
        noise_sd = float(np.sqrt(1 / contrast_factor**2 - 1))
        noise = rng.standard_normal(out.shape).astype(np.float32)
        correlation = rng.uniform(0, NOISE_CORRELATION)
        if correlation > 0:
            noise = gaussian_filter(noise, correlation, mode="wrap")
        out = out + noise * (noise_sd / max(float(noise.std()), 1e-12))
    scale = np.sqrt(ratio + noise_sd**2)
    return (out / (scale if scale > 0 else 1.0)).astype(np.float32)


def wedge_noise(shape_zyx: tuple[int, ...], tilt_max: float,
                rng: np.random.Generator) -> np.ndarray:
    """float32 white noise without the missing wedge of tilts to ±`tilt_max` degrees about
    Y: the noise of a tomogram reconstructed from such a tilt series, before its filters."""
    white = rng.standard_normal(shape_zyx)
    measured = wedge_weight(white.shape, (-tilt_max, tilt_max))
    return np.fft.irfftn(np.fft.rfftn(white) * measured, s=white.shape,
                         axes=(0, 1, 2)).astype(np.float32)


def noise_patch(side: int, rng: np.random.Generator,
                how: Normalisation | None = None) -> np.ndarray:
    """A float32 cube of particle-free noise as a prepared tomogram shows empty ice:
    `wedge_noise` of a largest tilt drawn in `NOISE_PATCH_TILT_MAX`, prepared by `how` as
    `templearn.unet.normalise` prepares tomograms, scaled to an s.d. drawn in
    `NOISE_PATCH_SD`."""
    noise = wedge_noise((side,) * 3, rng.uniform(*NOISE_PATCH_TILT_MAX), rng)
    if how is not None and how.needs_halves:  # all noise: its noise units are its s.d.
        how = replace(how, method="whiten")
    return (normalise(noise, how) * rng.uniform(*NOISE_PATCH_SD)).astype(np.float32)
