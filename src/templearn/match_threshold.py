"""Automatic score thresholds for template matching's peaks, chosen without annotations.

Three rules (`templearn match --auto-threshold`):

- `mixture` (the default): the heights of the score map's peaks (the local maxima left by
  the picks' non-maximum suppression) are a mixture of two populations, the background's
  peaks and the particles' (Gaussian each). A two-component Gaussian mixture is fitted by EM
  and kept when it explains the heights better than one Gaussian (Bayesian information
  criterion); the threshold is where a peak becomes more likely a particle than background
  (posterior 1/2, the Bayes decision with equal costs). When one population explains the
  heights (no particles to find), the rule falls back to `false-alarm`. Made for crowded
  tomograms, where nearly every voxel is near a particle: the score map then has no noise
  region, and the other two rules measure the particles' clutter as if it were noise.
- `false-alarm`: the score that noise alone exceeds about `false_alarms` times in the whole
  search (Rickgauer et al., eLife 6:e25648, 2017, the rule of pytom-match-pick): with
  N = voxels × rotations scores, each Gaussian with mean μ and standard deviation σ,
  `threshold = μ + σ·√2·erfc⁻¹(2·false_alarms / N)`. μ and σ come from a control search
  with the template's Fourier phases randomised (same amplitude spectrum, so the same
  effective number of samples under the mask and response to the tomogram's spectrum, and
  no shape to match), at a few rotations spread over the search. The N scores are treated
  as independent, which overcounts the trials and errs towards fewer false alarms.
- `noise`: median + k·σ of the score map, σ = median − 15.87th percentile (a Gaussian
  fitted to the lower half of the voxels' scores, which sparse particles do not reach).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.special import erfcinv

from templearn.match import Search, rotation_scorer, search_mask

RULES = ("mixture", "false-alarm", "noise")
#: Rotations of the control search (spread over the search's list; σ varies little with
#: the rotation, and the cost is this many rotations of the search).
CONTROL_ROTATIONS = 16
#: EM stops when the log-likelihood gains less than this per peak (or after EM_STEPS).
EM_TOLERANCE, EM_STEPS = 1e-9, 2000


def noise_threshold(scores: np.ndarray, sigmas: float) -> float:
    """median + `sigmas`·σ of a Gaussian fitted to the noise: centred on the median, σ from
    the lower half (median − 15.87th percentile), which the particles' peaks do not reach."""
    low, middle = np.percentile(scores, [100.0 * 0.5 * math.erfc(1 / math.sqrt(2)), 50.0])
    return float(middle + sigmas * (middle - low))


def phase_randomised(volume: np.ndarray, seed: int = 0) -> np.ndarray:
    """`volume` with the phase of every non-zero frequency shifted by a random angle: the
    same amplitude spectrum and mean, no shape (the phases of a real white-noise volume's
    transform, so the result is real)."""
    noise = np.random.default_rng(seed).normal(size=volume.shape)
    turn = np.exp(1j * np.angle(np.fft.rfftn(noise)))
    turn.flat[0] = 1.0
    axes = tuple(range(volume.ndim))
    return np.fft.irfftn(np.fft.rfftn(volume) * turn, volume.shape, axes).astype(np.float32)


def score_moments(tomogram: np.ndarray, template: np.ndarray, search: Search,
                  n_rotations: int) -> tuple[float, float, int]:
    """(mean, standard deviation) of the per-rotation scores (each rotation's own map, not
    the best over rotations) over the non-flat voxels, at `n_rotations` rotations evenly
    spread through `search.rotations`; and the number of non-flat voxels."""
    import jax
    import jax.numpy as jnp

    score, valid = rotation_scorer(tomogram, template,
                                   search_mask(tomogram, template, search), search)
    n = len(search.rotations)
    chosen = np.unique(np.linspace(0, n - 1, min(n_rotations, n)).round().astype(int))
    zyx = jnp.asarray(search.rotations[chosen][:, ::-1, ::-1], jnp.float32)  # [z, y, x]
    weight = jnp.asarray(valid, jnp.float32)

    @jax.jit
    def moments(matrices: jax.Array) -> tuple[jax.Array, jax.Array]:
        scores = jax.vmap(score)(matrices)
        return (scores * weight).sum(), (scores**2 * weight).sum()

    total = square = 0.0
    for start in range(0, len(zyx), search.batch):
        s, s2 = moments(zyx[start:start + search.batch])
        total, square = total + float(s), square + float(s2)
    voxels = int(np.count_nonzero(np.asarray(valid)))
    count = max(1, voxels * len(zyx))
    mean = total / count
    return mean, math.sqrt(max(square / count - mean**2, 0.0)), voxels


def false_alarm_threshold(mean: float, sigma: float, n_trials: float,
                          false_alarms: float = 1.0) -> float:
    """The score that `n_trials` independent Gaussian(mean, sigma) scores exceed
    `false_alarms` times on average; the mean when they are fewer than 2·`false_alarms`."""
    tail = min(1.0, 2.0 * false_alarms / max(n_trials, 1.0))
    return float(mean + sigma * math.sqrt(2.0) * erfcinv(tail))


@dataclass(frozen=True)
class SearchLevels:
    """The levels of a search that need no annotations: what noise scores (the mean and σ
    of the per-rotation scores of the phase-randomised template, the `false-alarm` rule's
    control, over the non-flat voxels, and the number of rotations searched) and the
    `mixture` rule's boundary between the background's and the particles' peaks (None when
    one population explains them). `templearn match` writes them as levels.json; `pick
    --confirm` checks picks against them (`templearn.confirm`)."""

    mean: float
    sigma: float
    voxels: int
    rotations: int
    boundary: float | None = None

    def level(self, trials: float, false_alarms: float) -> float:
        """The score that `trials` noise scores exceed `false_alarms` times on average."""
        return false_alarm_threshold(self.mean, self.sigma, trials, false_alarms)

    def write(self, path: Path) -> None:
        from templearn.files import atomic_write_text

        atomic_write_text(path, json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def read(cls, path: Path) -> SearchLevels:
        """The levels in `path`; InputError naming the file when it holds none."""
        from templearn.errors import InputError
        from templearn.files import require_file

        try:
            data = json.loads(require_file(path).read_text())
            boundary = data.get("boundary")
            levels = cls(float(data["mean"]), float(data["sigma"]), int(data["voxels"]),
                         int(data["rotations"]), None if boundary is None else float(boundary))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"expected a template search's levels.json with mean, sigma, "
                             f"voxels and rotations ({exc})", path) from None
        if not (math.isfinite(levels.mean) and math.isfinite(levels.sigma)
                and levels.sigma > 0 and levels.rotations > 0):
            raise InputError("levels.json needs a finite mean, a positive sigma and "
                             "rotations", path)
        return levels


def search_levels(tomogram: np.ndarray, template: np.ndarray, search: Search,
                  heights: np.ndarray, seed: int = 0) -> SearchLevels:
    """The search's levels: its control with the template's phases randomised, and the
    mixture boundary of its peaks' `heights`."""
    mean, sigma, voxels = score_moments(tomogram, phase_randomised(template, seed), search,
                                        CONTROL_ROTATIONS)
    return SearchLevels(mean, sigma, voxels, len(search.rotations),
                        mixture_threshold(heights))


@dataclass(frozen=True)
class Mixture:
    """A Gaussian mixture of peak heights: weights, means, standard deviations (ascending
    means) and the Bayesian information criterion of the fit (lower is better)."""

    weights: np.ndarray
    means: np.ndarray
    sigmas: np.ndarray
    bic: float


def fit_mixture(heights: np.ndarray, components: int) -> Mixture:
    """Maximum-likelihood Gaussian mixture of `components` by EM, started from means at the
    quantiles (k + ½)/components of the heights and equal widths."""
    x = np.asarray(heights, float)[:, None]
    spread = float(x.std()) or 1.0
    means = np.quantile(x, (np.arange(components) + 0.5) / components)
    sigmas = np.full(components, spread / components)
    weights = np.full(components, 1.0 / components)
    floor = 1e-6 * spread  # keeps a component from collapsing onto one height
    previous = -np.inf
    for _ in range(EM_STEPS):
        log_p = np.log(weights) - np.log(sigmas) - 0.5 * ((x - means) / sigmas) ** 2
        top = log_p.max(axis=1, keepdims=True)
        log_total = top + np.log(np.exp(log_p - top).sum(axis=1, keepdims=True))
        share = np.exp(log_p - log_total)
        mass = share.sum(axis=0) + 1e-300
        weights = mass / len(x)
        means = (share * x).sum(axis=0) / mass
        sigmas = np.sqrt((share * (x - means) ** 2).sum(axis=0) / mass) + floor
        likelihood = float(log_total.sum()) - len(x) * 0.5 * math.log(2 * math.pi)
        if likelihood - previous < EM_TOLERANCE * len(x):
            break
        previous = likelihood
    order = np.argsort(means)
    bic = -2.0 * likelihood + (3 * components - 1) * math.log(len(x))
    return Mixture(weights[order], means[order], sigmas[order], bic)


def mixture_boundary(mixture: Mixture) -> float | None:
    """The height above which the upper component's weighted density exceeds the lower's:
    the largest root of the quadratic where they are equal (below the upper mean when the
    upper component is the narrower, whose tail loses again far above); None if none."""
    (w0, w1), (m0, m1), (s0, s1) = mixture.weights, mixture.means, mixture.sigmas
    # log(w1·N(x; m1, s1)) − log(w0·N(x; m0, s0)) = a·x² + b·x + c
    a = 0.5 / s0**2 - 0.5 / s1**2
    b = m1 / s1**2 - m0 / s0**2
    c = 0.5 * m0**2 / s0**2 - 0.5 * m1**2 / s1**2 + math.log(w1 * s0 / (w0 * s1))
    roots = np.roots([a, b, c])  # degree drops when a = 0 (equal widths)
    real = roots[np.abs(roots.imag) <= 1e-12 * np.abs(roots.real) + 1e-300].real
    if s1 < s0:
        real = real[real <= m1]
    return float(real.max()) if len(real) else None


def mixture_threshold(heights: np.ndarray) -> float | None:
    """The `mixture` rule on peak heights: the two-population boundary when two Gaussians
    explain the heights better than one (BIC), else None."""
    if len(heights) < 6:  # a two-component fit has 5 parameters
        return None
    one, two = fit_mixture(heights, 1), fit_mixture(heights, 2)
    return mixture_boundary(two) if two.bic < one.bic else None


def automatic_threshold(rule: str, scores: np.ndarray, levels: SearchLevels, *,
                        false_alarms: float = 1.0, noise_sigmas: float = 5.0
                        ) -> tuple[float, str]:
    """(threshold, the rule that gave it) for `rule` in RULES, from the best-score map
    `scores` and the search's `levels` (`false-alarm`: over the search's non-flat voxels ×
    rotations)."""
    if rule not in RULES:
        raise ValueError(f"unknown threshold rule {rule!r}; expected one of {RULES}")
    if rule == "noise":
        return noise_threshold(scores, noise_sigmas), rule
    if rule == "mixture" and levels.boundary is not None:
        return levels.boundary, rule
    return levels.level(levels.voxels * levels.rotations, false_alarms), "false-alarm"
