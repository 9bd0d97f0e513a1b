"""Training data: tomograms with label maps and particle centres, and patch sampling.

Normalisation is the same at training and inference: each whole tomogram is prepared once
(`templearn.unet.normalise`: z-scored, or whitened), and patches are cut from it.

Batches follow DeepFinder: patches centred on labelled particles with a uniform random
shift, classes drawn with equal probability (class-balanced bootstrap), a 180° rotation
about the tilt axis (Y) half of the time — it keeps the missing wedge where it is; no
mirroring, which would change the handedness — plus a share of patches at uniformly
random positions, so that the background is seen too. A share `augment` of the patches
gets a random blur, high-pass and extra noise (`templearn.unet.augment`), drawn from a
random stream of its own, so the patches chosen do not depend on it; so does the share
`noise_fraction` of patches replaced by particle-free noise labelled background
(`templearn.unet.augment.noise_patch`). Batch `k` depends
only on the seed and `k`, so a resumed training sees exactly the batches it would have
seen.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from templearn import star
from templearn.errors import InputError
from templearn.halves import read_halves
from templearn.mrc import read_mrc
from templearn.unet.augment import augment_intensity, noise_patch
from templearn.unet.normalise import normalise
from templearn.unet.params import Normalisation, SamplingParams


@dataclass
class LabelledTomogram:
    """A z-scored tomogram, its label map and its particles (voxel x y z, class id)."""

    name: str
    tomogram: np.ndarray  # [z, y, x] float32, normalised
    labels: np.ndarray  # [z, y, x] uint8
    centres_xyz: np.ndarray  # (n, 3) float
    classes: np.ndarray  # (n,) int ≥ 1
    voxel_size: float


def load_labelled(tomogram: str | os.PathLike[str], label_dir: str | os.PathLike[str],
                  how: Normalisation | None = None) -> LabelledTomogram:
    """A tomogram with `labels.mrc` and `targets.star` from `templearn labels`, normalised
    by `how` (default: whitened; noise units read the tomogram's half tomograms)."""
    label_dir = Path(label_dir)
    volume = read_mrc(tomogram)
    labels = read_mrc(label_dir / "labels.mrc")
    if labels.data.shape != volume.data.shape:
        raise InputError(f"label map {labels.data.shape} does not match the tomogram "
                         f"{volume.data.shape}", label_dir / "labels.mrc")
    if not np.isclose(labels.voxel_size, volume.voxel_size, rtol=1e-3):
        raise InputError(f"voxel size {labels.voxel_size:g} Å differs from the tomogram's "
                         f"{volume.voxel_size:g} Å", label_dir / "labels.mrc")
    if labels.data.min() < 0:
        raise InputError("label maps must not be negative", label_dir / "labels.mrc")
    targets = star.read_star(label_dir / "targets.star", star.PARTICLES_BLOCK,
                             required=(*star.COORDINATES, star.CLASS_ID))
    return LabelledTomogram(
        name=Path(tomogram).stem if Path(tomogram).stem != "tomogram"
        else Path(tomogram).parent.name,
        tomogram=prepared(volume.data, tomogram, how), labels=labels.data.astype(np.uint8),
        centres_xyz=targets[list(star.COORDINATES)].to_numpy(float),
        classes=targets[star.CLASS_ID].to_numpy(int), voxel_size=volume.voxel_size)


def prepared(data: np.ndarray, path: str | os.PathLike[str],
             how: Normalisation | None) -> np.ndarray:
    """The tomogram `data` read from `path` normalised by `how`, with its half tomograms
    read from beside `path` when `how` needs them."""
    halves = read_halves(path, data.shape) if how is not None and how.needs_halves else None
    return normalise(data, how, halves)


def _corner(centre_zyx: np.ndarray, patch: int, shape: tuple[int, ...]) -> np.ndarray:
    """Patch corner putting `centre` at the patch centre, kept inside the volume."""
    corner = np.round(centre_zyx).astype(int) - patch // 2
    return np.clip(corner, 0, np.array(shape) - patch)


def cut(volume: np.ndarray, corner: np.ndarray, patch: int) -> np.ndarray:
    """The cube of side `patch` at `corner` (z y x)."""
    z, y, x = corner
    return volume[z:z + patch, y:y + patch, x:x + patch]


def sample_batch(data: list[LabelledTomogram], n_classes: int, params: SamplingParams,
                 seed: int, step: int, how: Normalisation | None = None,
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Batch `step`: patches `[batch, p, p, p, 1]` (float32) and labels `[batch, p, p, p]`
    (int32), reproducible from (seed, step) alone; noise patches are prepared by `how`, as
    the tomograms were (default: whitened)."""
    rng = np.random.default_rng([seed, step])
    augment_rng = np.random.default_rng([seed, step, 1])
    noise_rng = np.random.default_rng([seed, step, 2])
    p = params.patch
    images = np.empty((params.batch, p, p, p, 1), np.float32)
    labels = np.empty((params.batch, p, p, p), np.int32)
    present = sorted({int(c) for item in data for c in item.classes if 1 <= c < n_classes})
    for b in range(params.batch):
        if not present or rng.random() < params.background_fraction:
            item = data[rng.integers(len(data))]
            centre = rng.uniform(0, 1, 3) * (np.array(item.tomogram.shape) - 1)
        else:
            chosen = present[rng.integers(len(present))]
            pool = [(i, j) for i, item in enumerate(data)
                    for j in np.flatnonzero(item.classes == chosen)]
            i, j = pool[rng.integers(len(pool))]
            item = data[i]
            centre = item.centres_xyz[j][::-1] + rng.integers(-params.shift, params.shift + 1, 3)
        corner = _corner(centre, p, item.tomogram.shape)
        image, label = cut(item.tomogram, corner, p), cut(item.labels, corner, p)
        if params.rotate and rng.random() < 0.5:  # 180° about Y: z -> -z, x -> -x
            image, label = image[::-1, :, ::-1], label[::-1, :, ::-1]
        if augment_rng.random() < params.augment:
            image = augment_intensity(image, augment_rng, params.augment_blur,
                                      params.augment_noise)
        if noise_rng.random() < params.noise_fraction:
            image, label = noise_patch(p, noise_rng, how), np.zeros_like(label)
        images[b, ..., 0] = image
        labels[b] = label
    return images, labels


def check_sizes(data: list[LabelledTomogram], patch: int) -> None:
    """InputError unless every tomogram holds a patch and the patch is a multiple of 4."""
    if patch % 4 or patch < 8:
        raise InputError(f"--patch must be a multiple of 4 and at least 8, got {patch}")
    for item in data:
        if min(item.tomogram.shape) < patch:
            raise InputError(f"tomogram {item.name} {item.tomogram.shape[::-1]} is smaller "
                             f"than a {patch}³ patch")
