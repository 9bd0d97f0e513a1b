"""Where a molecule fits: device kernels and the host-side proxy of free pockets.

- `prepare_molecules` rotates a map, blurs and binarises it and makes its insertion band
  (core = mask eroded by −r_in, outer = mask dilated by r_out) in one jitted function on
  a small box (FFT morphology with ball kernels), several rotations at once if asked;
- `best_offset` correlates the band with a region of the packing state (optionally
  max-pooled, so a coarse fit is a real fit) and returns the best feasible placement:
  the core touches nothing and the outer layer touches at least one occupied voxel;
- `ArgmaxGrid` and `box_sums` keep the local search's proxy (free cubes with the most
  occupied voxels around them) cheap to update and to query.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.ndimage import map_coordinates

from templearn.tetris.params import FREE, OCCUPIED, PROXY_MAX_HALF


def _frequency_squared(box: int) -> np.ndarray:
    """|f|² (cycles/voxel) on the rfftn grid of a cube of edge `box`."""
    f = np.fft.fftfreq(box)
    fr = np.fft.rfftfreq(box)
    return f[:, None, None] ** 2 + f[None, :, None] ** 2 + fr[None, None, :] ** 2


def _ball_spectrum(box: int, radius: int) -> np.ndarray:
    """rfftn of a Euclidean ball of `radius` voxels centred on voxel 0 (wrapped)."""
    d = np.minimum(np.arange(box), box - np.arange(box))
    r2 = d[:, None, None] ** 2 + d[None, :, None] ** 2 + d[None, None, :] ** 2
    return np.fft.rfftn((r2 <= radius**2).astype(np.float32))


def _morph(mask: jnp.ndarray, radius: int, box: int) -> jnp.ndarray:
    """Dilate (radius > 0) or erode (radius < 0) a boolean mask with a ball."""
    if radius == 0:
        return mask
    ball = jnp.asarray(_ball_spectrum(box, abs(radius)))
    src = mask if radius > 0 else ~mask
    grown = jnp.fft.irfftn(jnp.fft.rfftn(src.astype(jnp.float32)) * ball, s=(box,) * 3) > 0.5
    return grown if radius > 0 else ~grown


@partial(jax.jit, static_argnames=("box", "sigma", "band", "window"))
def prepare_molecules(maps: jnp.ndarray, centres: jnp.ndarray, thresholds: jnp.ndarray,
                      k: jnp.ndarray, matrices_zyx: jnp.ndarray, box: int, sigma: float,
                      band: tuple[int, int], window: int) -> tuple[jnp.ndarray, ...]:
    """Rotate map `k` of `maps` by several rotations; return (density, mask, core, outer,
    half, core spectra, outer spectra): the rotated maps, their binarised masks and
    insertion bands, each (R, box³), the half-edge of the largest cube inside each core
    (R,), which guides the local search, and the band's spectra for searching a window³
    region. The map is chosen on the device, so a call costs one dispatch.

    Rotations are about the map centre (`centres[k]`), which lands on voxel (box - 1) / 2.
    """
    volume, centre, threshold = maps[k], centres[k], thresholds[k]
    grid = jnp.indices((box, box, box), dtype=jnp.float32).reshape(3, -1) - (box - 1) / 2.0
    gauss = jnp.exp(-2.0 * math.pi**2 * sigma**2 * jnp.asarray(_frequency_squared(box)))

    def one(matrix: jnp.ndarray) -> tuple[jnp.ndarray, ...]:
        source = matrix.T @ grid + centre[:, None]  # inverse rotation: output -> map index
        density = map_coordinates(volume, list(source), order=1, mode="constant", cval=0.0)
        density = density.reshape(box, box, box)
        blurred = jnp.fft.irfftn(jnp.fft.rfftn(density) * gauss, s=(box,) * 3)
        mask = blurred >= threshold
        core = _morph(mask, band[0], box)
        return density, mask, core, _morph(mask, band[1], box), _inscribed_cube(core)

    prepared = jax.vmap(one)(matrices_zyx)
    core, outer = prepared[2], prepared[3]
    window_shape = (window,) * 3
    return (*prepared, _kernel_spectra(core, window_shape, 1),
            _kernel_spectra(outer, window_shape, 1))


def _inscribed_cube(mask: jnp.ndarray) -> jnp.ndarray:
    """Largest h ≤ PROXY_MAX_HALF such that a cube of edge 2h + 1 fits inside `mask`."""
    h = jnp.int32(0)
    for half in range(1, PROXY_MAX_HALF + 1):
        k = 2 * half + 1
        eroded = mask.astype(jnp.int32)
        for window in ((k, 1, 1), (1, k, 1), (1, 1, k)):  # a cube is three 1-D windows
            eroded = jax.lax.reduce_window(eroded, 1, jax.lax.min, window, (1, 1, 1), "VALID")
        h = jnp.where(eroded.max() > 0, half, h)
    return h


def _pool(volume: jnp.ndarray, factor: int) -> jnp.ndarray:
    """Max-pool the last three axes by `factor` (their sizes must be multiples of it)."""
    if factor == 1:
        return volume
    *lead, z, y, x = volume.shape
    blocks = volume.reshape(*lead, z // factor, factor, y // factor, factor, x // factor, factor)
    n = len(lead)
    return blocks.max(axis=(n + 1, n + 3, n + 5))


def _kernel_spectra(kernels: jnp.ndarray, shape: tuple[int, int, int],
                    factor: int) -> jnp.ndarray:
    """Conjugate spectra of kernels (R, b³), max-pooled by `factor`, zero-padded to `shape`."""
    box = kernels.shape[1]
    padded_box = -(-box // factor) * factor
    pad = ((0, 0),) + ((0, padded_box - box),) * 3
    pooled = _pool(jnp.pad(kernels, pad), factor).astype(jnp.float32)
    b = pooled.shape[1]
    canvas = jnp.zeros((kernels.shape[0], *shape), jnp.float32).at[:, :b, :b, :b].set(pooled)
    return jnp.conj(jnp.fft.rfftn(canvas, axes=(1, 2, 3)))


@partial(jax.jit, static_argnames=("shape", "factor"))
def kernel_spectra(core: jnp.ndarray, outer: jnp.ndarray, shape: tuple[int, int, int],
                   factor: int = 1) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Spectra of the core and outer masks for searching a region of `shape` (pooled)."""
    return _kernel_spectra(core, shape, factor), _kernel_spectra(outer, shape, factor)


@partial(jax.jit, static_argnames=("box", "factor"))
def best_offset(core_spectra: jnp.ndarray, outer_spectra: jnp.ndarray, state: jnp.ndarray,
                jitter: jnp.ndarray, box: int, factor: int = 1
                ) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Best placement of each rotation's box within `state` (an int8 region).

    Returns per rotation the flat index of the best box corner among the positions where
    the box fits in the region, and its score (−1 if none is feasible). Feasible: the core
    touches no occupied or wall voxel and the outer mask touches at least one occupied
    voxel; score: occupied voxels under the outer mask, plus a tie-breaking jitter < 0.5.
    With `factor` > 1 everything is max-pooled first: a feasible pooled position is
    feasible at full resolution too (at corner = factor × pooled corner).
    """
    blocked = _pool(state != FREE, factor).astype(jnp.float32)
    occupied = _pool(state == OCCUPIED, factor).astype(jnp.float32)
    shape, b = blocked.shape, -(-box // factor)
    valid = tuple(n - b + 1 for n in shape)

    def correlate(spectra: jnp.ndarray, image: jnp.ndarray) -> jnp.ndarray:
        # c[r, t] = Σ_x kernel[r, x] · image[x + t]; no wrap-around for valid offsets t.
        corr = jnp.fft.irfftn(spectra * jnp.fft.rfftn(image)[None], s=shape, axes=(1, 2, 3))
        return corr[:, : valid[0], : valid[1], : valid[2]]

    feasible = correlate(core_spectra, blocked) < 0.5
    contact = jnp.round(correlate(outer_spectra, occupied))
    feasible &= contact > 0.5
    score = jnp.where(feasible, contact + jitter[None], -1.0).reshape(core_spectra.shape[0], -1)
    flat = jnp.argmax(score, axis=1)
    return flat, jnp.take_along_axis(score, flat[:, None], axis=1)[:, 0]


def grow_by_cube(blocked: np.ndarray) -> np.ndarray:
    """Dilate a boolean volume by a 3³ cube, keeping only the valid part (2 voxels
    smaller per axis). Repeated f times it is `box_sums(blocked, f) > 0`, at the cost of
    nine slice operations per step instead of cumulative sums."""
    grown = blocked[:-2] | blocked[1:-1] | blocked[2:]
    grown = grown[:, :-2] | grown[:, 1:-1] | grown[:, 2:]
    return grown[:, :, :-2] | grown[:, :, 1:-1] | grown[:, :, 2:]


def box_sums(values: np.ndarray, half: int) -> np.ndarray:
    """Sums over cubes of edge 2·half + 1 at every position where the cube fits (valid)."""
    c = np.zeros(tuple(s + 1 for s in values.shape), dtype=np.int32)
    np.cumsum(values, axis=0, dtype=np.int32, out=c[1:, 1:, 1:])
    np.cumsum(c[1:, 1:, 1:], axis=1, out=c[1:, 1:, 1:])
    np.cumsum(c[1:, 1:, 1:], axis=2, out=c[1:, 1:, 1:])
    k = 2 * half + 1
    n0, n1, n2 = (s - k + 1 for s in values.shape)
    total = np.zeros((n0, n1, n2), dtype=np.int32)
    for dz in (0, 1):
        for dy in (0, 1):
            for dx in (0, 1):
                sign = (-1) ** (3 - dz - dy - dx)
                total += sign * c[dz * k: dz * k + n0, dy * k: dy * k + n1, dx * k: dx * k + n2]
    return total


class ArgmaxGrid:
    """A 3D score map whose maximum stays cheap to find under local updates.

    Per-block maxima are refreshed where values change, so the argmax scans the blocks
    and then one block instead of the whole sample.
    """

    BLOCK = 8

    def __init__(self, shape: tuple[int, int, int], fill: float) -> None:
        b = self.BLOCK
        self.shape = shape
        n_blocks = tuple(-(-n // b) for n in shape)
        self.values = np.full(tuple(n * b for n in n_blocks), fill, dtype=np.float32)
        self.blocks = np.full(n_blocks, fill, dtype=np.float32)

    def write(self, lo: np.ndarray, hi: np.ndarray, values: np.ndarray | float) -> None:
        """Set values[lo:hi] (z y x, within `shape`) and refresh the blocks they touch."""
        self.values[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = values
        b = self.BLOCK
        b0, b1 = np.asarray(lo) // b, -(-np.asarray(hi) // b)
        sub = self.values[b0[0] * b:b1[0] * b, b0[1] * b:b1[1] * b, b0[2] * b:b1[2] * b]
        n = b1 - b0
        # One axis at a time, the reduced axis outermost: ~20× faster than one reshape-max.
        sub = sub.reshape(n[0], b, n[1] * b, n[2] * b).max(axis=1)
        sub = sub.reshape(n[0], n[1], b, n[2] * b).max(axis=2)
        self.blocks[b0[0]:b1[0], b0[1]:b1[1], b0[2]:b1[2]] = sub.reshape(
            n[0], n[1], n[2], b).max(axis=3)

    def argmax(self) -> tuple[np.ndarray, float]:
        """Index (z y x) and value of the maximum."""
        block = np.array(np.unravel_index(int(np.argmax(self.blocks)), self.blocks.shape))
        b = self.BLOCK
        lo = block * b
        sub = self.values[lo[0]:lo[0] + b, lo[1]:lo[1] + b, lo[2]:lo[2] + b]
        local = np.array(np.unravel_index(int(np.argmax(sub)), sub.shape))
        return lo + local, float(sub[tuple(local)])
