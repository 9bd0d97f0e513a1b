"""Template matching (the baseline the trained picker is compared with): for every voxel of a
tomogram, the best normalised cross-correlation with a template over an angular search,
and the index of the rotation that gave it.

The score is Roseman's fast local correlation (FLCF, Ultramicroscopy 94:225, 2003): the
rotated template, weighted in Fourier space by the tomogram's missing wedge (and an optional
low-pass), is normalised to zero mean and unit variance under a spherical mask; the
tomogram's local mean and variance under the same mask come from FFT convolutions, so

    score(x) = Σ_y I(x + y)·T'(y) / (N·σ_I(x)),    N = voxels in the mask,

which lies in [-1, 1]. The mask is a sphere, so the tomogram's local statistics are computed
once for all rotations.

Geometry (ARCHITECTURE.md, `templearn.projector`): the tilt axis is Y and the image at tilt
θ records `u = x·cosθ + z·sinθ`, so by the central-slice theorem it samples the Fourier
directions (kx, kz) ∝ (cosθ, sinθ). The wedge weight keeps the frequencies whose angle
atan2(kz, kx) (folded to (-90°, 90°]) lies within the tilt range, and the zero frequency.

Rotations: `R` maps template coordinates (x y z, about the template's centre) to tomogram
coordinates; as RELION angles `templearn.geometry.matrix_to_relion(R)`. A template of `n`
voxels is centred on `(n - 1) / 2` (as `templearn.density` makes maps); it is resampled
onto an odd box whose middle voxel is that centre, so a score peak is the particle centre.
The correlation is circular (the tomogram is not padded).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.spatial.transform import Rotation

#: Voxels whose local standard deviation is below this fraction of the tomogram's get
#: score 0 (flat regions, e.g. a zero-filled border).
FLAT = 1e-3
#: Template voxels above this fraction of the template's maximum count as its extent.
EXTENT_LEVEL = 0.1


def fibonacci_directions(n: int) -> np.ndarray:
    """`n` unit vectors (x y z) spread evenly over the sphere (Fibonacci lattice)."""
    i = np.arange(n) + 0.5
    z = 1.0 - 2.0 * i / n
    r = np.sqrt(np.clip(1.0 - z * z, 0.0, None))
    phi = i * math.pi * (3.0 - math.sqrt(5.0))
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def sample_rotations(step_deg: float, symmetry: int = 1) -> np.ndarray:
    """Rotation matrices (n, 3, 3; x y z) covering SO(3) at about `step_deg` spacing.

    Each rotation is `M(d)·Rz(α)`: a spin α about the template's z axis, then the turn
    `Rz(φ)·Ry(θ)` that takes z to the direction d. Directions are a Fibonacci lattice with one
    point per step² of the sphere; α steps evenly over 360°/`symmetry` (a Cn template with its
    axis along z looks the same after 360°/n). Uniform directions × uniform spins are uniform
    on SO(3) (the Hopf fibration S¹ → SO(3) → S²).
    """
    step = math.radians(step_deg)
    directions = fibonacci_directions(max(1, math.ceil(4.0 * math.pi / step**2)))
    n_spin = max(1, math.ceil(2.0 * math.pi / symmetry / step))
    spins = np.arange(n_spin) * 2.0 * math.pi / (symmetry * n_spin)
    tilt = np.arccos(np.clip(directions[:, 2], -1.0, 1.0))
    azimuth = np.arctan2(directions[:, 1], directions[:, 0])
    euler = np.stack(np.broadcast_arrays(azimuth[:, None], tilt[:, None], spins[None, :]),
                     axis=-1).reshape(-1, 3)
    return Rotation.from_euler("ZYZ", euler).as_matrix()


def wedge_weight(shape: tuple[int, ...], tilt_range: tuple[float, float] | None,
                 low_pass: float | None = None) -> np.ndarray:
    """Binary weight on the `rfftn` grid of `shape` (z, y, x): the frequencies sampled by tilts
    in `tilt_range` (degrees; None: all), within `low_pass` (cycles/voxel; None: all)."""
    kz, ky, kx = np.meshgrid(np.fft.fftfreq(shape[0]), np.fft.fftfreq(shape[1]),
                             np.fft.rfftfreq(shape[2]), indexing="ij")
    keep = np.ones(kz.shape, bool)
    if tilt_range is not None:
        angle = np.degrees(np.arctan2(kz, kx))  # kx >= 0: (-90, 90]
        keep = ((angle >= tilt_range[0]) & (angle <= tilt_range[1])) | ((kx == 0) & (kz == 0))
    if low_pass is not None:
        keep &= kz**2 + ky**2 + kx**2 <= low_pass**2
    return keep.astype(np.float32)


def template_radius(template: np.ndarray) -> float:
    """Radius (voxels) of the sphere about the template's centre holding its extent: the
    voxels above `EXTENT_LEVEL` of its extreme (from its border's median), plus one voxel.
    The extreme is the larger of maximum and −minimum, so a negated (dark) map has the
    extent of the map."""
    border = np.concatenate([template[[0, -1]].ravel(), template[:, [0, -1]].ravel(),
                             template[..., [0, -1]].ravel()])
    signal = template - np.median(border)
    if -signal.min() > signal.max():
        signal = -signal
    inside = np.argwhere(signal > EXTENT_LEVEL * signal.max())
    if not len(inside):
        return (min(template.shape) - 1) / 2.0
    centre = (np.array(template.shape) - 1) / 2.0
    return float(np.linalg.norm(inside - centre, axis=1).max()) + 1.0


def sphere(shape: tuple[int, ...], radius: float) -> np.ndarray:
    """float32 ball of `radius` voxels about the middle voxel of an odd `shape`."""
    axes = [np.arange(n) - n // 2 for n in shape]
    zz, yy, xx = np.meshgrid(*axes, indexing="ij")
    return (zz**2 + yy**2 + xx**2 <= radius**2).astype(np.float32)


def odd_box(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The odd box a template of `shape` is resampled onto (one voxel more where even)."""
    return tuple(n | 1 for n in shape)


@dataclass(frozen=True)
class Search:
    """A template search: its rotations and settings (`run_search` does the work)."""

    rotations: np.ndarray  # (n, 3, 3) x y z, template → tomogram
    tilt_range: tuple[float, float] | None = None  # degrees; None: no missing wedge
    mask_radius: float | None = None  # voxels; None: `template_radius`
    low_pass: float | None = None  # cycles/voxel; None: none
    batch: int = 8  # rotations per jitted call


def run_search(tomogram: np.ndarray, template: np.ndarray, search: Search,
               progress: Callable[[range], range] | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """(best score, index of its rotation) per voxel, float32 and int32 `[z, y, x]` maps.

    `progress` wraps the iteration over rotation batches (e.g. `templearn.progress.track`)."""
    import jax.numpy as jnp

    correlate = _correlator(tomogram, template, search_mask(tomogram, template, search),
                            search)
    n = len(search.rotations)
    batch = max(1, min(search.batch, n))
    padded = np.concatenate([search.rotations, np.repeat(search.rotations[-1:],
                                                         -n % batch, axis=0)])
    zyx = jnp.asarray(padded[:, ::-1, ::-1], jnp.float32)  # matrices on [z, y, x] indices
    best = jnp.full(tomogram.shape, -jnp.inf, jnp.float32)
    index = jnp.zeros(tomogram.shape, jnp.int32)
    starts = range(0, n, batch)
    for start in progress(starts) if progress else starts:
        best, index = correlate(best, index, zyx[start:start + batch], jnp.int32(start))
    return np.asarray(best), np.minimum(np.asarray(index), n - 1)  # batch padding


def search_mask(tomogram: np.ndarray, template: np.ndarray, search: Search) -> object:
    """The spherical mask (JAX array on the template's odd box) of a search; ValueError when
    the box does not fit the tomogram or the mask holds fewer than 2 voxels."""
    import jax.numpy as jnp

    box = odd_box(template.shape)
    if any(b > n for b, n in zip(box, tomogram.shape, strict=True)):
        raise ValueError(f"template box {box} does not fit the tomogram {tomogram.shape}")
    radius = search.mask_radius or template_radius(template)
    mask = jnp.asarray(sphere(box, radius))
    if float(mask.sum()) < 2:
        raise ValueError(f"mask radius {radius:g} voxels holds fewer than 2 voxels")
    return mask


def _correlator(tomogram: np.ndarray, template: np.ndarray, mask: object, search: Search
                ) -> Callable[..., tuple[object, object]]:
    """The jitted step (best, index, matrices, first index) → updated (best, index)."""
    import jax
    import jax.numpy as jnp

    score, _ = rotation_scorer(tomogram, template, mask, search)

    @jax.jit
    def step(best: jax.Array, index: jax.Array, matrices: jax.Array, first: jax.Array
             ) -> tuple[jax.Array, jax.Array]:
        scores = jax.vmap(score)(matrices)
        top = scores.argmax(axis=0)
        value = jnp.take_along_axis(scores, top[None], axis=0)[0]
        better = value > best
        return jnp.where(better, value, best), jnp.where(better, first + top, index)

    return step


def rotation_scorer(tomogram: np.ndarray, template: np.ndarray, mask: object, search: Search
            ) -> tuple[Callable[[object], object], object]:
    """(score map of one rotation matrix on [z, y, x] indices, the voxels that are not flat)."""
    import jax
    import jax.numpy as jnp
    from jax.scipy.ndimage import map_coordinates

    shape, box = tomogram.shape, odd_box(template.shape)
    weight_box = jnp.asarray(wedge_weight(box, search.tilt_range, search.low_pass))
    image = np.asarray(tomogram, np.float32)
    image = (image - image.mean()) / (image.std() or 1.0)
    f_image = jnp.fft.rfftn(image)
    if search.low_pass is not None:
        f_image = f_image * wedge_weight(shape, None, search.low_pass)
        image = jnp.fft.irfftn(f_image, shape)
    count = mask.sum()  # type: ignore[attr-defined]
    f_mask = jnp.conj(jnp.fft.rfftn(_pad(mask, shape)))
    mean = jnp.fft.irfftn(f_image * f_mask, shape) / count
    square = jnp.fft.irfftn(jnp.fft.rfftn(image**2) * f_mask, shape) / count
    sigma = jnp.sqrt(jnp.clip(square - mean**2, 0.0, None))
    valid = sigma > FLAT * jnp.std(image)
    scale = jnp.where(valid, 1.0 / (count * sigma), 0.0)
    source_centre = jnp.asarray((np.array(template.shape) - 1) / 2.0, jnp.float32)
    grid = jnp.stack(jnp.meshgrid(*[jnp.arange(b) - b // 2 for b in box], indexing="ij"))
    grid = grid.reshape(3, -1).astype(jnp.float32)
    values = jnp.asarray(template, jnp.float32)

    def score(matrix: jax.Array) -> jax.Array:
        source = matrix.T @ grid + source_centre[:, None]  # R⁻¹ = Rᵀ
        rotated = map_coordinates(values, list(source), order=1, cval=0.0).reshape(box)
        weighted = jnp.fft.irfftn(jnp.fft.rfftn(rotated) * weight_box, box)
        centred = (weighted - (weighted * mask).sum() / count) * mask
        normalised = centred / jnp.sqrt((centred**2).sum() / count)
        product = f_image * jnp.conj(jnp.fft.rfftn(_pad(normalised, shape)))
        return jnp.fft.irfftn(product, shape) * scale

    return score, valid


def _pad(box: object, shape: tuple[int, ...]) -> object:
    """An odd box placed in a zero array of `shape` with its middle voxel at index 0."""
    import jax.numpy as jnp

    data = jnp.asarray(box)
    full = jnp.zeros(shape, data.dtype).at[tuple(slice(0, b) for b in data.shape)].set(data)
    return jnp.roll(full, [-(b // 2) for b in data.shape], axis=(0, 1, 2))


def extract_picks(scores: np.ndarray, index: np.ndarray, rotations: np.ndarray, radius: float,
                  *, threshold: float | None, n_picks: int | None, name: str,
                  tomo_name: str) -> pd.DataFrame:
    """Score peaks (local maxima, greedy suppression within `radius` voxels, best first) as a
    picks table (`templearn.pick` columns) with each peak's rotation as RELION angles."""
    from templearn import star
    from templearn.geometry import matrix_to_relion
    from templearn.pick import pick_particles

    level = -np.inf if threshold is None else threshold
    picks = pick_particles(None, {1: scores}, "peaks", radius, threshold=level,
                           max_picks=n_picks, sigma=0.0, class_names={1: name},
                           tomo_name=tomo_name)
    zyx = picks[list(star.COORDINATES[::-1])].to_numpy().round().astype(np.int64)
    chosen = rotations[index[zyx[:, 0], zyx[:, 1], zyx[:, 2]]]
    angles = matrix_to_relion(chosen) if len(chosen) else np.zeros((0, 3))
    for axis, column in enumerate(star.ANGLES):
        picks[column] = angles[:, axis]
    return picks
