"""The reference Tetris loop, written from the Template Learning paper's description.

numpy/scipy only, one molecule per iteration: scipy rotation of the map, Gaussian
blur and threshold, binary erosion/dilation for the insertion shell
(outer − BIG·core), correlation with the binarised sample by a full-volume FFT, placement
at the maximum, and re-binarisation of the whole sample density (Gaussian + threshold)
after every placement. Stops at the first molecule whose best score is ≤ 0. Used only
as the baseline of `benchmarks/tetris_benchmark.py`.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
from scipy import ndimage
from scipy.spatial.transform import Rotation

BIG = 1.0e6


def ball(radius: int) -> np.ndarray:
    r = np.arange(-radius, radius + 1)
    return (r[:, None, None] ** 2 + r[None, :, None] ** 2 + r[None, None, :] ** 2) <= radius**2


def rotated_map(volume: np.ndarray, rotation: Rotation) -> np.ndarray:
    """Rotate a cubic map about its centre (trilinear), in a box holding any orientation."""
    n = volume.shape[0]
    box = int(np.ceil(n * np.sqrt(3))) | 1
    matrix = rotation.as_matrix()[::-1, ::-1]  # x y z -> array z y x
    centre_in, centre_out = (n - 1) / 2.0, (box - 1) / 2.0
    offset = centre_in - matrix.T @ np.full(3, centre_out)
    return ndimage.affine_transform(volume, matrix.T, offset=offset, output_shape=(box,) * 3,
                                    order=1)


def reference_pack(maps: list[np.ndarray], is_template: np.ndarray, shape: tuple[int, ...],
                   ratio: tuple[int, int], sigma: float, threshold: float,
                   band: tuple[int, int], seed: int) -> tuple[list[int], np.ndarray]:
    """Pack; return the molecule indices placed and the binarised sample."""
    rng = np.random.default_rng(seed)
    templates, distractors = np.flatnonzero(is_template), np.flatnonzero(~is_template)
    density = np.zeros(shape, dtype=np.float32)
    occupied = np.zeros(shape, dtype=np.float32)
    placed: list[int] = []
    fft_shape = tuple(scipy.fft.next_fast_len(s) for s in shape)
    sample_spectrum = None

    def next_molecule() -> int:
        while True:
            block = [True] * ratio[0] + [False] * ratio[1]
            rng.shuffle(block)
            for is_t in block:
                yield int(rng.choice(templates if is_t else distractors))

    sequence = next_molecule()
    while True:
        k = next(sequence)
        rotated = rotated_map(maps[k], Rotation.random(random_state=rng))
        mask = ndimage.gaussian_filter(rotated, sigma) >= threshold
        if band[0] < 0:
            core = ndimage.binary_erosion(mask, ball(-band[0]))
        else:
            core = ndimage.binary_dilation(mask, ball(band[0])) if band[0] else mask
        outer = ndimage.binary_dilation(mask, ball(band[1])) if band[1] > 0 else mask
        # Crop to the shell's bounding box, so molecules can reach the sample faces.
        crop = ndimage.find_objects((outer | core).astype(np.int8))[0]
        rotated, core, outer = rotated[crop], core[crop], outer[crop]
        box = rotated.shape
        if any(b > s for b, s in zip(box, shape, strict=True)):
            return placed, occupied > 0
        if not placed:
            corner = tuple((s - b) // 2 for s, b in zip(shape, box, strict=True))
        else:
            shell = outer.astype(np.float32) - BIG * core
            spectrum = scipy.fft.rfftn(shell, s=fft_shape, workers=-1)
            corr = scipy.fft.irfftn(np.conj(spectrum) * sample_spectrum, s=fft_shape,
                                    workers=-1)
            valid = corr[: shape[0] - box[0] + 1, : shape[1] - box[1] + 1,
                         : shape[2] - box[2] + 1]
            best = int(np.argmax(valid))
            if valid.flat[best] <= 0.5:
                return placed, occupied > 0
            corner = np.unravel_index(best, valid.shape)
        region = tuple(slice(c, c + b) for c, b in zip(corner, box, strict=True))
        density[region] += rotated
        placed.append(k)
        occupied = (ndimage.gaussian_filter(density, sigma) >= threshold).astype(np.float32)
        sample_spectrum = scipy.fft.rfftn(occupied, s=fft_shape, workers=-1)
