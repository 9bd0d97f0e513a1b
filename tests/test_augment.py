"""Intensity augmentation of training patches (templearn.unet.augment)."""

from dataclasses import replace

import numpy as np

from templearn.unet.augment import (
    NOISE_PATCH_SD,
    NOISE_PATCH_TILT_MAX,
    augment_intensity,
    noise_patch,
)
from templearn.unet.data import SamplingParams, sample_batch
from tests.test_train import planted


def contrast(image: np.ndarray, inside: np.ndarray) -> float:
    """(mean inside − mean outside) / s.d. of the patch."""
    return float((image[inside].mean() - image[~inside].mean()) / image.std())


def test_augmented_patches_keep_the_scale_of_a_z_scored_tomogram():
    rng = np.random.default_rng(0)
    variances = []
    for seed in range(40):
        field = rng.standard_normal((24, 24, 24)).astype(np.float32)  # a z-scored tomogram
        out = augment_intensity(field, np.random.default_rng(seed), 1.0, 3.0)
        assert out.dtype == np.float32 and out.shape == field.shape
        variances.append(float(out.var()))
    assert 0.8 < np.median(variances) < 1.2
    assert max(variances) < 1.6 and min(variances) > 0.5


def test_augmentation_weakens_particles_against_the_noise_and_is_reproducible():
    item = planted(4, n=1, shape=(24, 24, 24), radius=5.0)
    inside = item.labels.astype(bool)
    before = contrast(item.tomogram, inside)
    draws = [augment_intensity(item.tomogram, np.random.default_rng(s), 1.0, 3.0)
             for s in range(30)]
    after = [contrast(d, inside) for d in draws]
    assert np.median(after) < 0.7 * before
    assert min(after) < 0.3 * before  # the strongest draws nearly bury the particle
    again = augment_intensity(item.tomogram, np.random.default_rng(7), 1.0, 3.0)
    assert np.array_equal(again, draws[7]) and not np.array_equal(draws[7], draws[8])


def test_sample_batch_augments_the_requested_share_and_never_the_labels():
    data = [planted(1), planted(2)]
    plain = SamplingParams(patch=16, batch=8, shift=0, background_fraction=0.0, rotate=False)
    images, labels = sample_batch(data, 2, plain, seed=3, step=1)
    aug_images, aug_labels = sample_batch(data, 2, replace(plain, augment=1.0), seed=3, step=1)
    assert np.array_equal(labels, aug_labels)
    assert all(not np.array_equal(a, b) for a, b in zip(images, aug_images, strict=True))
    none_images, _ = sample_batch(data, 2, replace(plain, augment=0.0, augment_noise=9.0),
                                  seed=3, step=1)
    assert np.array_equal(images, none_images)


def test_noise_patches_lack_a_missing_wedge_and_have_the_drawn_scale():
    patches = [noise_patch(32, np.random.default_rng(seed)) for seed in range(20)]
    powers = [np.abs(np.fft.fftn(patch)) ** 2 for patch in patches]
    kz, _, kx = np.meshgrid(*(np.fft.fftfreq(32),) * 3, indexing="ij")
    beyond_any_tilt = np.abs(kz) > np.abs(kx) * np.tan(np.radians(NOISE_PATCH_TILT_MAX[1]))
    for patch, power in zip(patches, powers, strict=True):
        assert patch.dtype == np.float32 and patch.shape == (32, 32, 32)
        assert abs(float(patch.mean())) < 1e-3
        assert NOISE_PATCH_SD[0] - 1e-3 <= patch.std() <= NOISE_PATCH_SD[1] + 1e-3
        assert power[beyond_any_tilt].mean() < 1e-6 * power[~beyond_any_tilt].mean()
    # wedges of different tilt ranges: the power next to the widest wedge differs
    near_edge = ~beyond_any_tilt & (np.abs(kz) > np.abs(kx) * np.tan(np.radians(40)))
    shares = [power[near_edge].sum() / power.sum() for power in powers]
    assert min(shares) < 0.02 and max(shares) > 0.1
    assert np.array_equal(noise_patch(32, np.random.default_rng(4)), patches[4])


def test_sample_batch_replaces_the_requested_share_by_background_noise():
    data = [planted(1), planted(2)]
    plain = SamplingParams(patch=16, batch=16, shift=0, background_fraction=0.0, rotate=False)
    images, labels = sample_batch(data, 2, plain, seed=3, step=1)
    assert labels.any(axis=(1, 2, 3)).all()  # every patch holds a particle
    noisy_images, noisy_labels = sample_batch(data, 2, replace(plain, noise_fraction=0.5),
                                              seed=3, step=1)
    replaced = ~noisy_labels.any(axis=(1, 2, 3))
    assert 0 < replaced.sum() < len(replaced)
    # the other patches are those the batch had without noise patches
    assert np.array_equal(noisy_images[~replaced], images[~replaced])
    assert np.array_equal(noisy_labels[~replaced], labels[~replaced])
    assert all(not np.array_equal(a, b) for a, b in
               zip(noisy_images[replaced], images[replaced], strict=True))
    _, all_noise = sample_batch(data, 2, replace(plain, noise_fraction=1.0), seed=3, step=1)
    assert not all_noise.any()
