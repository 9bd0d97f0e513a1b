"""Crowded samples: the Template Learning "Tetris" packer, in JAX.

The paper's loop: start with a randomly rotated molecule at the sample centre; for each
next molecule, rotate its map, binarise it (Gaussian σ, threshold), build an insertion
shell = outer(mask) − BIG·core(mask) from the insertion band [r_in, r_out] (core = mask
eroded by −r_in, outer = mask dilated by r_out), correlate the shell with the occupied
sample and place the molecule at the maximum; stop when no position has a positive
score. A positive score means the core touches nothing and the outer layer touches at
least one occupied voxel.

What makes it fast:
- a molecule is rotated, blurred, binarised and eroded/dilated in one jitted function on
  a small box (FFT morphology with ball kernels), several rotations at once if asked;
- in `local` search, a global proxy of where a molecule fits (a free cube with the most
  occupied voxels around it, one map per cube size) is kept up to date incrementally,
  and the exact correlation is done in a small window around its best candidates;
  windows found full are struck off the proxy. Only when no candidate window has room
  is the whole sample searched: first on a 2× coarser grid (max-pooled, so a coarse
  fit is a real fit), then exactly, so the stopping rule is the paper's (the molecule
  fits nowhere). `full` search skips the proxy and searches the whole sample for every
  molecule, like the paper's loop (a GPU does that quickly);
- the occupied sample is the union of the placed masks, updated in place, instead of
  re-blurring and re-thresholding the whole sample density at every step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jax.scipy.ndimage import map_coordinates
from scipy.spatial.transform import Rotation

from templearn import geometry, star
from templearn.errors import InputError
from templearn.sample import CLASS_NAME, DISTRACTOR, PROTEIN_VOLUME_PER_DA, TEMPLATE

FREE, OCCUPIED, WALL = 0, 1, 2
#: The local-search proxy tracks free cubes of half-edge 1..PROXY_MAX_HALF voxels.
PROXY_MAX_HALF = 3


def fft_size(n: int) -> int:
    """Smallest size ≥ n whose prime factors are 2, 3 and 5 (fast FFTs)."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


@dataclass(frozen=True)
class TetrisParams:
    """Packing parameters (voxels unless stated)."""

    shape_zyx: tuple[int, int, int] = (64, 192, 192)
    ratio: tuple[int, int] = (1, 2)  # templates : distractors
    band: tuple[int, int] = (-2, 0)  # insertion band [r_in, r_out]
    sigma: float = 1.65  # Gaussian σ before binarisation
    threshold: float = 100.0  # on the e2pdb2mrc scale of `templearn density`
    mask_mode: str = "threshold"  # or "volume": each mask encloses the molecular volume
    rotations: int = 1  # rotations tried per molecule; the tightest fit is kept
    search: str = "local"  # or "full"
    candidates: int = 3  # proxy candidates tried before the full search (local search)
    patience: int = 0  # consecutive molecules that fit nowhere before stopping
    max_molecules: int | None = None
    max_protein_fraction: float | None = None  # stop once Σ molecular volume / sample ≥ this
    seed: int = 0


@dataclass
class MoleculeSet:
    """Maps of the molecules to pack, padded to one array for the device."""

    names: list[str]
    class_ids: np.ndarray  # (K,) int: 1.. for template classes, 0 for distractors
    maps: np.ndarray  # (K, N, N, N) float32, each map at [0:n] of the padded cube
    centres: np.ndarray  # (K, 3) float, map centre (n - 1) / 2 in padded-cube indices
    masses_da: np.ndarray  # (K,)
    voxel_size: float
    class_names: list[str] = field(default_factory=list)
    map_files: list[str] = field(default_factory=list)
    structure_files: list[str] = field(default_factory=list)

    @property
    def is_template(self) -> np.ndarray:
        return self.class_ids > 0


@dataclass
class PackedSample:
    """The result: one row per placed molecule plus the instance and density maps."""

    molecule_index: np.ndarray  # (M,) index into MoleculeSet
    centres_zyx: np.ndarray  # (M, 3) int, voxel index of each molecule centre
    angles: np.ndarray  # (M, 3) RELION angles (degrees)
    instances: np.ndarray  # (Z, Y, X) int32, 0 = empty, i + 1 = molecule i
    density: np.ndarray  # (Z, Y, X) float32, sum of the rotated maps
    n_full_searches: int = 0  # whole-sample searches (diagnostic of the local search)


def molecule_set(maps: list[np.ndarray], names: list[str], class_ids: list[int],
                 masses_da: list[float], voxel_size: float, class_names: list[str] | None = None,
                 map_files: list[str] | None = None,
                 structure_files: list[str] | None = None) -> MoleculeSet:
    """Pad maps of any (cubic or not) shape into one array for the device."""
    if not maps:
        raise InputError("no molecules to pack")
    n = max(max(m.shape) for m in maps)
    padded = np.zeros((len(maps), n, n, n), dtype=np.float32)
    centres = np.zeros((len(maps), 3))
    for k, m in enumerate(maps):
        padded[k, : m.shape[0], : m.shape[1], : m.shape[2]] = m
        centres[k] = (np.array(m.shape) - 1) / 2.0
    blank = [""] * len(maps)
    default_classes = [DISTRACTOR if c == 0 else f"class{c}" for c in class_ids]
    return MoleculeSet(list(names), np.asarray(class_ids), padded, centres,
                       np.asarray(masses_da, dtype=np.float64), voxel_size,
                       class_names or default_classes, map_files or blank,
                       structure_files or blank)


# --------------------------------------------------------------------------- device kernels


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
def prepare_molecules(volume: jnp.ndarray, centre: jnp.ndarray, matrices_zyx: jnp.ndarray,
                      threshold: jnp.ndarray, box: int, sigma: float,
                      band: tuple[int, int], window: int) -> tuple[jnp.ndarray, ...]:
    """Rotate one map by several rotations; return (density, mask, core, outer, half,
    core spectra, outer spectra): the rotated maps, their binarised masks and insertion
    bands, each (R, box³), the half-edge of the largest cube inside each core (R,), which
    guides the local search, and the band's spectra for searching a window³ region.

    Rotations are about the map centre, which lands on voxel (box - 1) / 2.
    """
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


# --------------------------------------------------------------------------- the packer


class _ArgmaxGrid:
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
        self.blocks[b0[0]:b1[0], b0[1]:b1[1], b0[2]:b1[2]] = sub.reshape(
            n[0], b, n[1], b, n[2], b).max(axis=(1, 3, 5))

    def argmax(self) -> tuple[np.ndarray, float]:
        """Index (z y x) and value of the maximum."""
        block = np.array(np.unravel_index(int(np.argmax(self.blocks)), self.blocks.shape))
        b = self.BLOCK
        lo = block * b
        sub = self.values[lo[0]:lo[0] + b, lo[1]:lo[1] + b, lo[2]:lo[2] + b]
        local = np.array(np.unravel_index(int(np.argmax(sub)), sub.shape))
        return lo + local, float(sub[tuple(local)])


class _Packer:
    """Mutable packing state; one instance per `pack` call."""

    #: Proxy candidates are ranked by the occupied voxels in a cube of edge 2·h + 1.
    CONTACT_HALF = 5
    #: The exact local search covers at least ±SEARCH_RANGE voxels around a candidate.
    SEARCH_RANGE = 4
    #: The full search first runs on a grid coarser by this factor.
    COARSE = 2

    def __init__(self, molecules: MoleculeSet, params: TetrisParams, box: int,
                 thresholds: np.ndarray, rng: np.random.Generator) -> None:
        self.molecules, self.params, self.box, self.rng = molecules, params, box, rng
        self.thresholds = thresholds
        self.window = fft_size(box + 2 * self.SEARCH_RANGE)
        shape = np.array(params.shape_zyx)
        # The full search covers every box corner from -(box - 1) to n - 1 per axis, in a
        # region rounded up to a fast FFT size; walls pad the sample far enough for both.
        needed = shape + 2 * (box - 1)
        c = self.COARSE
        self.full_size = tuple(fft_size(int(n)) for n in needed)
        self.coarse_size = tuple(c * fft_size(-(-int(n) // c)) for n in needed)
        extra = int(max(max(f, g) - n for f, g, n in
                        zip(self.full_size, self.coarse_size, needed, strict=True)))
        self.pad = max(self.window, box - 1 + extra, self.CONTACT_HALF + PROXY_MAX_HALF)
        p = self.pad
        self.state = np.full(tuple(shape + 2 * p), WALL, dtype=np.int8)
        self.state[p:-p, p:-p, p:-p] = FREE
        self.instances = np.zeros(params.shape_zyx, dtype=np.int32)
        self.density = np.zeros(params.shape_zyx, dtype=np.float32)
        self.proxy = {h: _ArgmaxGrid(params.shape_zyx, -1.0)
                      for h in range(1, PROXY_MAX_HALF + 1)}
        self.proxy_jitter = rng.random(params.shape_zyx, dtype=np.float32) * 0.5
        self.device_maps = jnp.asarray(molecules.maps)
        self.placed: list[tuple[int, np.ndarray, np.ndarray]] = []
        self.n_full_searches = 0

    def prepare(self, k: int) -> tuple:
        """Rotated density, mask, core, outer (R, box³ each), core cube half, window
        spectra of core and outer, RELION angles."""
        rotations = Rotation.random(self.params.rotations, random_state=self.rng)
        matrices = geometry.xyz_to_zyx(rotations.as_matrix()).astype(np.float32)
        prepared = prepare_molecules(
            self.device_maps[k], jnp.asarray(self.molecules.centres[k], jnp.float32),
            jnp.asarray(matrices), jnp.float32(self.thresholds[k]), box=self.box,
            sigma=self.params.sigma, band=self.params.band, window=self.window)
        return (*prepared, geometry.rotation_to_relion(rotations))

    def search_region(self, corner: np.ndarray, size: tuple[int, ...], spectra: tuple,
                      factor: int = 1) -> tuple[int, np.ndarray] | None:
        """Best feasible placement (rotation, box corner) with the box inside the region,
        on a grid coarser by `factor` if asked (then only corners on that grid)."""
        region = self.state[corner[0]: corner[0] + size[0], corner[1]: corner[1] + size[1],
                            corner[2]: corner[2] + size[2]]
        pooled_box = -(-self.box // factor)
        valid = tuple(s // factor - pooled_box + 1 for s in size)
        jitter = self.rng.random(valid, dtype=np.float32) * 0.5
        flat, score = best_offset(*spectra, jnp.asarray(region), jnp.asarray(jitter),
                                  box=self.box, factor=factor)
        flat, score = np.asarray(flat), np.asarray(score)
        r = int(np.argmax(score))
        if score[r] <= 0:
            return None
        return r, corner + factor * np.array(np.unravel_index(int(flat[r]), valid))

    def local_search(self, spectra: tuple, half: int) -> tuple[int, np.ndarray] | None:
        """Exact search in windows around the proxy's best candidates for this core size.

        A window where the molecule fits nowhere is taken off the proxies of this and
        larger core sizes (until a placement nearby recomputes them), so later molecules
        move on to other pockets instead of retrying the same one.
        """
        half = int(np.clip(half, 1, PROXY_MAX_HALF))
        proxy = self.proxy[half]
        offset = self.pad - (self.box - 1) // 2 - (self.window - self.box) // 2
        limit = np.array(self.state.shape) - self.window
        reach = (self.window - self.box) // 2
        for _ in range(self.params.candidates):
            centre, value = proxy.argmax()
            if value < 0:
                return None
            corner = np.clip(centre + offset, 0, limit)
            result = self.search_region(corner, (self.window,) * 3, spectra)
            if result is not None:
                return result
            lo = np.maximum(centre - reach, 0)
            hi = np.minimum(centre + reach + 1, self.params.shape_zyx)
            for h in range(half, PROXY_MAX_HALF + 1):
                self.proxy[h].write(lo, hi, -1.0)
        return None

    def full_search(self, core: jnp.ndarray, outer: jnp.ndarray,
                    window_spectra: tuple) -> tuple | None:
        """Search every position where the box overlaps the sample.

        A coarse pass finds a place that certainly has room, refined in a window around
        it; only if the coarse pass finds none does the exact full-resolution pass decide.
        """
        self.n_full_searches += 1
        corner = np.full(3, self.pad - (self.box - 1))
        coarse_shape = tuple(n // self.COARSE for n in self.coarse_size)
        coarse = self.search_region(corner, self.coarse_size,
                                    kernel_spectra(core, outer, coarse_shape, self.COARSE),
                                    self.COARSE)
        if coarse is not None:
            r, found = coarse
            half = (self.window - self.box) // 2
            window_corner = np.clip(found - half, 0, np.array(self.state.shape) - self.window)
            refined = self.search_region(window_corner, (self.window,) * 3,
                                         tuple(s[r:r + 1] for s in window_spectra))
            if refined is not None:
                return r, refined[1]
            return coarse
        return self.search_region(corner, self.full_size,
                                  kernel_spectra(core, outer, self.full_size))

    def place(self, k: int, corner_padded: np.ndarray, density: np.ndarray, mask: np.ndarray,
              angles: np.ndarray) -> None:
        """Add a molecule: occupied voxels, instance id, density, proxy."""
        b = self.box
        c = corner_padded
        state = self.state[c[0]: c[0] + b, c[1]: c[1] + b, c[2]: c[2] + b]
        state[(state == FREE) & mask] = OCCUPIED
        instance_id = len(self.placed) + 1
        lo = c - self.pad
        s_lo = np.maximum(lo, 0)
        s_hi = np.minimum(lo + b, self.params.shape_zyx)
        src = tuple(slice(a - o, e - o) for a, e, o in zip(s_lo, s_hi, lo, strict=True))
        dst = tuple(slice(a, e) for a, e in zip(s_lo, s_hi, strict=True))
        inst = self.instances[dst]
        inst[(inst == 0) & mask[src]] = instance_id
        self.density[dst] += density[src]
        self.placed.append((k, lo + (b - 1) // 2, angles))
        occupied_box = np.argwhere(mask)
        self.update_proxy(np.maximum(lo + occupied_box.min(axis=0), 0),
                          np.minimum(lo + occupied_box.max(axis=0) + 1, self.params.shape_zyx))

    def update_proxy(self, lo: np.ndarray, hi: np.ndarray) -> None:
        """Recompute the candidate proxies where a placement in [lo, hi) changed them."""
        h = self.CONTACT_HALF
        lo = np.maximum(lo - h, 0)
        hi = np.minimum(hi + h, self.params.shape_zyx)
        p = self.pad
        region = self.state[lo[0] + p - h: hi[0] + p + h, lo[1] + p - h: hi[1] + p + h,
                            lo[2] + p - h: hi[2] + p + h]
        contact = box_sums(region == OCCUPIED, h)
        touching = contact > 0
        ranked = contact.astype(np.float32) + self.proxy_jitter[lo[0]:hi[0], lo[1]:hi[1],
                                                                lo[2]:hi[2]]
        blocked = region != FREE
        for f, proxy in self.proxy.items():
            inner = blocked[h - f: blocked.shape[0] - h + f, h - f: blocked.shape[1] - h + f,
                            h - f: blocked.shape[2] - h + f]
            free = box_sums(inner, f) == 0
            proxy.write(lo, hi, np.where(free & touching, ranked, -1.0))


def molecule_box(molecules: MoleculeSet, params: TetrisParams, thresholds: np.ndarray) -> int:
    """Odd box edge holding every molecule's mask (and outer band) in any orientation."""
    from scipy.ndimage import gaussian_filter

    radius = 0.0
    for k in range(len(molecules.names)):
        blurred = gaussian_filter(molecules.maps[k].astype(np.float64), params.sigma,
                                  mode="constant")
        idx = np.argwhere(blurred >= thresholds[k])
        if len(idx) == 0:
            raise InputError(f"the mask of {molecules.names[k]} is empty at threshold "
                             f"{thresholds[k]:g}; lower --threshold")
        radius = max(radius, float(np.linalg.norm(idx - molecules.centres[k], axis=1).max()))
    return 2 * math.ceil(radius + max(params.band[1], 0) + 1.5) + 1


def mask_thresholds(molecules: MoleculeSet, params: TetrisParams) -> np.ndarray:
    """Binarisation threshold per molecule: fixed, or enclosing its molecular volume."""
    if params.mask_mode == "threshold":
        return np.full(len(molecules.names), params.threshold)
    from scipy.ndimage import gaussian_filter

    thresholds = np.zeros(len(molecules.names))
    voxel_volume = molecules.voxel_size**3
    for k in range(len(molecules.names)):
        blurred = gaussian_filter(molecules.maps[k].astype(np.float64), params.sigma,
                                  mode="constant").ravel()
        n = max(1, round(molecules.masses_da[k] * PROTEIN_VOLUME_PER_DA / voxel_volume))
        thresholds[k] = np.partition(blurred, blurred.size - n)[blurred.size - n]
    return thresholds


def molecule_sequence(molecules: MoleculeSet, ratio: tuple[int, int],
                      rng: np.random.Generator) -> Iterator[int]:
    """Endless molecule choices: blocks of `ratio` templates and distractors, shuffled."""
    templates = np.flatnonzero(molecules.is_template)
    distractors = np.flatnonzero(~molecules.is_template)
    n_t = ratio[0] if len(templates) else 0
    n_d = ratio[1] if len(distractors) else 0
    if n_t + n_d == 0:
        raise InputError("the template:distractor ratio selects no molecules")
    while True:
        block = np.array([True] * n_t + [False] * n_d)
        rng.shuffle(block)
        for is_template in block:
            yield int(rng.choice(templates if is_template else distractors))


def pack(molecules: MoleculeSet, params: TetrisParams,
         on_placed: Callable[[int], None] | None = None) -> PackedSample:
    """Pack molecules into a sample of `params.shape_zyx` voxels (see module docstring)."""
    if params.mask_mode not in ("threshold", "volume"):
        raise InputError(f"mask mode must be 'threshold' or 'volume', got {params.mask_mode!r}")
    if params.search not in ("local", "full"):
        raise InputError(f"search must be 'local' or 'full', got {params.search!r}")
    if params.band[0] > params.band[1]:
        raise InputError(f"insertion band [{params.band[0]}, {params.band[1]}] is empty")
    if params.rotations < 1:
        raise InputError(f"rotations per molecule must be at least 1, got {params.rotations}")
    rng = np.random.default_rng(params.seed)
    thresholds = mask_thresholds(molecules, params)
    box = molecule_box(molecules, params, thresholds)
    if min(params.shape_zyx) < 1:
        raise InputError(f"sample shape must be positive, got {params.shape_zyx}")
    packer = _Packer(molecules, params, box, thresholds, rng)
    sequence = molecule_sequence(molecules, params.ratio, rng)
    limit = params.max_molecules if params.max_molecules is not None else np.inf
    volume_per_da = PROTEIN_VOLUME_PER_DA / (np.prod(params.shape_zyx) * molecules.voxel_size**3)
    fraction_limit = params.max_protein_fraction or np.inf
    protein_fraction = 0.0

    # First molecule: randomly rotated at the sample centre.
    k = next(sequence)
    density, mask, core, *_, angles = packer.prepare(k)
    centre = np.array(params.shape_zyx) // 2
    corner = centre + packer.pad - (box - 1) // 2
    b = box
    region = packer.state[corner[0]: corner[0] + b, corner[1]: corner[1] + b,
                          corner[2]: corner[2] + b]
    if np.any(np.asarray(core[0]) & (region != FREE)):
        raise InputError(f"{molecules.names[k]} does not fit a {params.shape_zyx[::-1]} "
                         "(x y z) sample; make the sample larger")
    packer.place(k, corner, np.asarray(density[0]), np.asarray(mask[0]), angles[0])
    protein_fraction += molecules.masses_da[k] * volume_per_da

    failures = 0
    k = next(sequence)
    prepared = packer.prepare(k)
    while (len(packer.placed) < limit and protein_fraction < fraction_limit
           and failures <= params.patience):
        density, mask, core, outer, half, core_spectra, outer_spectra, angles = prepared
        spectra = (core_spectra, outer_spectra)
        found = None
        if params.search == "local":
            found = packer.local_search(spectra, int(np.asarray(half).min()))
        if found is None:
            found = packer.full_search(core, outer, spectra)
        # Dispatch the next molecule's rotation now: the device computes it while the
        # host updates the sample below.
        k_next = next(sequence)
        prepared = packer.prepare(k_next)
        if found is None:
            failures += 1
        else:
            failures = 0
            r, corner = found
            packer.place(k, corner, np.asarray(density[r]), np.asarray(mask[r]), angles[r])
            protein_fraction += molecules.masses_da[k] * volume_per_da
            if on_placed is not None:
                on_placed(len(packer.placed))
        k = k_next

    placed = packer.placed
    return PackedSample(
        molecule_index=np.array([p[0] for p in placed], dtype=np.int64),
        centres_zyx=np.array([p[1] for p in placed], dtype=np.int64).reshape(-1, 3),
        angles=np.array([p[2] for p in placed]).reshape(-1, 3),
        instances=packer.instances, density=packer.density,
        n_full_searches=packer.n_full_searches)


def molecules_table(packed: PackedSample, molecules: MoleculeSet,
                    sample_name: str) -> pd.DataFrame:
    """One `molecules.star` row per placed molecule (RELION + templearn columns)."""
    k = packed.molecule_index
    xyz = packed.centres_zyx[:, ::-1].astype(np.float64)

    def pick(values: list[str]) -> np.ndarray:
        return np.asarray(values, dtype=object)[k]

    return pd.DataFrame({
        star.TOMO_NAME: [sample_name] * len(k),
        **{c: xyz[:, a] for a, c in enumerate(star.COORDINATES)},
        **{c: xyz[:, a] * molecules.voxel_size for a, c in enumerate(star.POSITION_ANGST)},
        **{c: packed.angles[:, a] for a, c in enumerate(star.ANGLES)},
        star.MOLECULE_NAME: pick(molecules.names),
        star.MOLECULE_CLASS: np.where(molecules.is_template[k], TEMPLATE, DISTRACTOR),
        CLASS_NAME: pick(molecules.class_names),
        star.CLASS_ID: molecules.class_ids[k],
        star.MASS_DA: molecules.masses_da[k],
        star.MAP_FILE: pick(molecules.map_files),
        star.STRUCTURE_FILE: pick(molecules.structure_files),
        star.INSTANCE_ID: np.arange(1, len(k) + 1),
    })
