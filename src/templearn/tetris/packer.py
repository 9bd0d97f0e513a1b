"""The packer: the paper's loop over molecules, with the local search and its proxy.

Start with a randomly rotated molecule at the sample centre; for each next molecule,
rotate and binarise it, search where its insertion band scores best against the
occupied sample and place it there; stop when no position has a positive score (or
after `patience` molecules in a row found none, or at a molecule or protein limit).
In `local` search the exact correlation is done in windows around the proxy's best
candidates; only when none has room is the whole sample searched, first on a 2× coarser
grid, then exactly, so the stopping rule stays the paper's. The occupied sample is the
union of the placed masks, updated in place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from scipy.spatial.transform import Rotation

from templearn import geometry, star
from templearn.errors import InputError
from templearn.sample import CLASS_NAME, DISTRACTOR, PROTEIN_VOLUME_PER_DA, TEMPLATE
from templearn.tetris.molecules import MoleculeSet, mask_thresholds, molecule_box
from templearn.tetris.params import FREE, OCCUPIED, PROXY_MAX_HALF, WALL, TetrisParams, fft_size
from templearn.tetris.search import (
    ArgmaxGrid,
    best_offset,
    box_sums,
    grow_by_cube,
    kernel_spectra,
    prepare_molecules,
)


@dataclass
class PackedSample:
    """The result: one row per placed molecule plus the instance and density maps."""

    molecule_index: np.ndarray  # (M,) index into MoleculeSet
    centres_zyx: np.ndarray  # (M, 3) int, voxel index of each molecule centre
    angles: np.ndarray  # (M, 3) RELION angles (degrees)
    instances: np.ndarray  # (Z, Y, X) int32, 0 = empty, i + 1 = molecule i
    density: np.ndarray  # (Z, Y, X) float32, sum of the rotated maps
    n_full_searches: int = 0  # whole-sample searches (diagnostic of the local search)


class _Packer:
    """Mutable packing state; one instance per `pack` call."""

    #: Proxy candidates are ranked by the occupied voxels in a cube of edge 2·h + 1.
    CONTACT_HALF = 5
    #: The exact local search covers at least ±SEARCH_RANGE voxels around a candidate.
    SEARCH_RANGE = 4
    #: The full search first runs on a grid coarser by this factor.
    COARSE = 2
    #: Rotations are drawn for this many molecules at a time (one SciPy call, not one each).
    ROTATION_BATCH = 256

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
        self.proxy = {h: ArgmaxGrid(params.shape_zyx, -1.0)
                      for h in range(1, PROXY_MAX_HALF + 1)}
        self.proxy_jitter = rng.random(params.shape_zyx, dtype=np.float32) * 0.5
        self.device_maps = jnp.asarray(molecules.maps)
        self.device_centres = jnp.asarray(molecules.centres, jnp.float32)
        self.device_thresholds = jnp.asarray(thresholds, jnp.float32)
        self.rotation_queue: list[tuple[np.ndarray, np.ndarray]] = []
        self.placed: list[tuple[int, np.ndarray, np.ndarray]] = []
        self.n_full_searches = 0

    def prepare(self, k: int) -> tuple:
        """Rotated density, mask, core, outer (R, box³ each), core cube half, window
        spectra of core and outer, RELION angles."""
        matrices, angles = self.next_rotations()
        prepared = prepare_molecules(
            self.device_maps, self.device_centres, self.device_thresholds, np.int32(k),
            matrices, box=self.box, sigma=self.params.sigma, band=self.params.band,
            window=self.window)
        return (*prepared, angles)

    def next_rotations(self) -> tuple[np.ndarray, np.ndarray]:
        """The next molecule's random rotations: zyx matrices (R, 3, 3) and RELION angles."""
        if not self.rotation_queue:
            n = self.params.rotations
            rotations = Rotation.random(self.ROTATION_BATCH * n, random_state=self.rng)
            matrices = geometry.xyz_to_zyx(rotations.as_matrix()).astype(np.float32)
            angles = geometry.rotation_to_relion(rotations)
            self.rotation_queue = list(zip(matrices.reshape(-1, n, 3, 3),
                                           angles.reshape(-1, n, 3), strict=True))[::-1]
        return self.rotation_queue.pop()

    def search_region(self, corner: np.ndarray, size: tuple[int, ...], spectra: tuple,
                      factor: int = 1) -> tuple[int, np.ndarray] | None:
        """Best feasible placement (rotation, box corner) with the box inside the region,
        on a grid coarser by `factor` if asked (then only corners on that grid)."""
        region = self.state[corner[0]: corner[0] + size[0], corner[1]: corner[1] + size[1],
                            corner[2]: corner[2] + size[2]]
        pooled_box = -(-self.box // factor)
        valid = tuple(s // factor - pooled_box + 1 for s in size)
        jitter = self.rng.random(valid, dtype=np.float32) * 0.5
        flat, score = jax.device_get(best_offset(*spectra, region, jitter, box=self.box,
                                                 factor=factor))
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
        # The mask's bounding box along z, y, x.
        extent = [np.flatnonzero(mask.any(axis=axes)) for axes in ((1, 2), (0, 2), (0, 1))]
        first = np.array([e[0] for e in extent])
        end = np.array([e[-1] + 1 for e in extent])
        self.update_proxy(np.maximum(lo + first, 0), np.minimum(lo + end, self.params.shape_zyx))

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
        near_blocked = region != FREE
        for f, proxy in self.proxy.items():
            # Cubes of half-edge f are free where the blocked voxels grown f times are not
            # (the proxies come in order f = 1, 2, …: one more growth each).
            near_blocked = grow_by_cube(near_blocked)
            c = h - f
            free = ~near_blocked[c: near_blocked.shape[0] - c, c: near_blocked.shape[1] - c,
                                 c: near_blocked.shape[2] - c]
            proxy.write(lo, hi, np.where(free & touching, ranked, -1.0))


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
    """Pack molecules into a sample of `params.shape_zyx` voxels (see module docstring).

    `params` was validated when it was made; `on_placed(n)` is told each placement."""
    rng = np.random.default_rng(params.seed)
    thresholds = mask_thresholds(molecules, params)
    box = molecule_box(molecules, params, thresholds)
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
    packer.place(k, corner, np.asarray(density)[0], np.asarray(mask)[0], angles[0])
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
            packer.place(k, corner, np.asarray(density)[r], np.asarray(mask)[r], angles[r])
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
