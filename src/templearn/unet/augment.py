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
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

#: Range of the high-pass filter's Gaussian σ, voxels, and the chance a patch gets it.
HIGH_PASS_SIGMA, HIGH_PASS_CHANCE = (1.5, 6.0), 0.5
#: Largest correlation length (Gaussian σ, voxels) of the added noise.
NOISE_CORRELATION = 1.0


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
