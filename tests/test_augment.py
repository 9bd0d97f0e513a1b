"""Intensity augmentation of training patches (templearn.unet.augment)."""

from dataclasses import replace

import numpy as np

from templearn.unet.augment import augment_intensity
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
