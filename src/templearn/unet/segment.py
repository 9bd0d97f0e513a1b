"""Tiled inference over a whole tomogram, with bounded memory.

The tomogram is normalised as a whole (`templearn.unet.normalise`, as in training, by the
model's own rule) and cut into
tiles of `tile` voxels per side; of each tile's prediction a margin of `crop` voxels is
dropped on every side that is not the tomogram's border (predictions near a tile's edge
see less context), and where kept regions overlap (the last tile of a row is shifted to
end at the border, and `overlap` adds more) the class probabilities are averaged. The
number of tiles covering a voxel is a product of three per-axis counts, so only the sums
are accumulated; large tomograms accumulate in a disk-backed array and are finished slab
by slab, so memory stays at a few tiles plus one slab.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable

import numpy as np

from templearn.progress import track
from templearn.unet.params import TileParams

#: Tomograms whose class sums exceed this many bytes accumulate on disk.
IN_MEMORY_BYTES = 2**30


def tile_starts(n: int, params: TileParams) -> np.ndarray:
    """Start of every tile along an axis of `n` voxels (the last ends at the border)."""
    if n <= params.tile:
        return np.zeros(1, dtype=int)
    stride = params.tile - 2 * params.crop - params.overlap
    starts = list(range(0, n - params.tile, stride)) + [n - params.tile]
    return np.unique(np.array(starts))


def kept_range(start: int, n: int, params: TileParams) -> tuple[int, int]:
    """The part of a tile (absolute voxels) whose predictions are kept."""
    size = min(params.tile, n)
    low = start if start == 0 else start + params.crop
    high = start + size if start + size >= n else start + size - params.crop
    return low, high


def _axis_counts(n: int, params: TileParams) -> np.ndarray:
    counts = np.zeros(n, dtype=np.float32)
    for start in tile_starts(n, params):
        low, high = kept_range(int(start), n, params)
        counts[low:high] += 1
    return counts


def predictor(model, batch: int) -> Callable[[np.ndarray], np.ndarray]:
    """Tiles `[batch, t, t, t, 1]` -> class probabilities, compiled once per tile shape."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    @nnx.jit
    def probabilities(model, tiles):
        return jax.nn.softmax(model(tiles), axis=-1)

    def predict(tiles: np.ndarray) -> np.ndarray:
        n = len(tiles)
        if n < batch:  # keep one compiled shape: pad the last call
            tiles = np.concatenate([tiles, np.zeros((batch - n, *tiles.shape[1:]), tiles.dtype)])
        return np.asarray(probabilities(model, jnp.asarray(tiles)))[:n]

    return predict


#: Tile axes ([batch, z, y, x, channel]) that each 180° rotation about z, y and x reverses.
#: A single-axis tilt series' missing wedge is unchanged by all three, so a rotated tile
#: looks like data the network was trained on.
HALF_TURNS = ((2, 3), (1, 3), (1, 2))


def rotation_averaged(predict: Callable[[np.ndarray], np.ndarray]
                      ) -> Callable[[np.ndarray], np.ndarray]:
    """`predict` averaged over each tile and its three 180° rotations (each prediction
    rotated back): test-time augmentation at 4× the network calls."""
    def averaged(tiles: np.ndarray) -> np.ndarray:
        total = np.array(predict(tiles), dtype=np.float32)
        for axes in HALF_TURNS:
            turned = np.ascontiguousarray(np.flip(tiles, axes))
            total += np.flip(predict(turned), axes)
        return total / (1 + len(HALF_TURNS))

    return averaged


def segment(tomogram: np.ndarray, predict: Callable[[np.ndarray], np.ndarray], classes: int,
            params: TileParams = TileParams()) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities `[classes, z, y, x]` (float32, possibly disk-backed) and the
    argmax label map (uint8) of a normalised tomogram. `predict` maps tiles
    `[batch, t, t, t, 1]` to probabilities `[batch, t, t, t, classes]`."""
    params.validate()
    shape = tomogram.shape
    tile = params.tile
    padded = tuple(max(n, tile) for n in shape)
    if padded != shape:  # small tomograms: pad with the mean (0 after z-scoring)
        volume = np.zeros(padded, np.float32)
        volume[:shape[0], :shape[1], :shape[2]] = tomogram
    else:
        volume = tomogram
    starts = [tile_starts(n, params) for n in padded]
    corners = list(itertools.product(*starts))
    nbytes = classes * int(np.prod(padded)) * 4
    if nbytes > IN_MEMORY_BYTES:
        scratch = tempfile.TemporaryFile()  # noqa: SIM115 (unlinked; lives with the map)
        sums = np.memmap(scratch, dtype=np.float32, mode="w+", shape=(classes, *padded))
    else:
        sums = np.zeros((classes, *padded), np.float32)
    batches = [corners[i:i + params.batch] for i in range(0, len(corners), params.batch)]
    for batch in track(batches, "segmenting tiles"):
        tiles = np.stack([volume[z:z + tile, y:y + tile, x:x + tile] for z, y, x in batch])
        probs = predict(tiles[..., None])
        for corner, prob in zip(batch, probs, strict=True):
            keep = [kept_range(int(s), n, params) for s, n in zip(corner, padded, strict=True)]
            local = tuple(slice(lo - s, hi - s) for (lo, hi), s in zip(keep, corner, strict=True))
            region = tuple(slice(lo, hi) for lo, hi in keep)
            sums[(slice(None), *region)] += np.moveaxis(prob[local], -1, 0)
    cz, cy, cx = (_axis_counts(n, params) for n in padded)
    labels = np.empty(shape, np.uint8)
    crop = (slice(0, shape[0]), slice(0, shape[1]), slice(0, shape[2]))
    scores = sums[(slice(None), *crop)]
    for z in range(shape[0]):  # finish slab by slab
        slab = scores[:, z] / (cz[z] * cy[:shape[1], None] * cx[None, :shape[2]])
        scores[:, z] = slab
        labels[z] = np.argmax(slab, axis=0)
    return scores, labels
