"""Automatic thresholds of template matching: the false-alarm level is exceeded about as often
as it promises; the phase-randomised control keeps the spectrum and loses the shape; the
mixture rule finds the boundary between two populations of peak heights, none in one, keeps
the planted peaks of a crowded map (where the noise rule misses most), and in pure noise
falls back to the false-alarm rule."""

import math

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial import cKDTree

from templearn import star
from templearn.match import Search, extract_picks, run_search, sample_rotations
from templearn.match_threshold import (
    automatic_threshold,
    false_alarm_threshold,
    fit_mixture,
    mixture_threshold,
    noise_threshold,
    phase_randomised,
    search_levels,
)
from tests.test_match import chiral_template


@pytest.mark.parametrize("false_alarms", [3.0, 30.0])
def test_false_alarm_level_is_exceeded_about_that_often(false_alarms):
    n = 2_000_000
    samples = np.random.default_rng(1).normal(0.2, 0.05, n)
    level = false_alarm_threshold(0.2, 0.05, n, false_alarms)
    assert level > 0.2 + 4 * 0.05
    count = int((samples > level).sum())
    assert abs(count - false_alarms) <= 3 * math.sqrt(false_alarms) + 1  # Poisson spread


def test_phase_randomised_keeps_the_spectrum_and_loses_the_shape():
    template = chiral_template(16)
    control = phase_randomised(template, seed=3)
    assert control.dtype == np.float32 and control.shape == template.shape
    assert np.allclose(np.abs(np.fft.rfftn(control)), np.abs(np.fft.rfftn(template)),
                       rtol=1e-3, atol=1e-3 * np.abs(np.fft.rfftn(template)).max())
    assert control.mean() == pytest.approx(template.mean(), rel=1e-4)
    assert abs(np.corrcoef(control.ravel(), template.ravel())[0, 1]) < 0.3
    assert not np.allclose(phase_randomised(template, seed=4), control)


def test_mixture_threshold_is_the_bayes_boundary_of_two_populations():
    rng = np.random.default_rng(0)
    background, particles = rng.normal(0.1, 0.04, 3000), rng.normal(0.25, 0.04, 800)
    fit = fit_mixture(np.concatenate([background, particles]), 2)
    assert fit.means == pytest.approx([0.1, 0.25], abs=0.01)
    assert fit.weights == pytest.approx([3000 / 3800, 800 / 3800], abs=0.02)
    # equal widths σ: the densities w·N cross at (m0 + m1)/2 + σ²·ln(w0/w1)/(m1 − m0)
    expected = 0.175 + 0.04**2 * math.log(3000 / 800) / 0.15
    assert mixture_threshold(np.concatenate([background, particles])) == pytest.approx(
        expected, abs=0.01)


def test_one_population_has_no_mixture_threshold():
    heights = np.random.default_rng(2).normal(0.1, 0.03, 2000)
    assert mixture_threshold(heights) is None
    assert mixture_threshold(heights[:5]) is None


def crowded_scores(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A 40³ score map: smooth Gaussian noise (s.d. 0.05) plus 216 particle peaks of height
    ≈ 0.3 on a jittered lattice 7 voxels apart (every voxel near a particle); and the
    peaks' centres (z y x)."""
    rng = np.random.default_rng(seed)
    shape = (40, 40, 40)
    noise = ndimage.gaussian_filter(rng.normal(size=shape), 1.0)
    noise *= 0.05 / noise.std()
    lattice = np.stack(np.meshgrid(*[np.arange(3, 40, 7)] * 3, indexing="ij"), -1)
    centres = lattice.reshape(-1, 3) + rng.integers(-1, 2, (lattice.size // 3, 3))
    spikes = np.zeros(shape)
    spikes[tuple(centres.T)] = rng.normal(0.3, 0.03, len(centres))
    bumps = ndimage.gaussian_filter(spikes, 1.5) * (2 * math.pi * 1.5**2) ** 1.5
    return (noise + bumps).astype(np.float32), centres


def test_crowded_map_keeps_the_planted_peaks_where_the_noise_rule_misses_most():
    scores, centres = crowded_scores(0)
    peaks = extract_picks(scores, np.zeros(scores.shape, int), np.eye(3)[None], 3.0,
                          threshold=None, n_picks=None, name="p", tomo_name="t")
    heights = peaks[star.SCORE].to_numpy()
    distance, _ = cKDTree(centres[:, ::-1]).query(peaks[list(star.COORDINATES)].to_numpy())
    planted = distance <= 1.5
    assert planted.sum() >= 0.95 * len(centres) and (~planted).sum() > 50
    kept = heights >= mixture_threshold(heights)
    assert (kept & planted).sum() >= 0.95 * len(centres)
    assert (kept & ~planted).sum() <= 0.15 * kept.sum()
    assert (heights[planted] >= noise_threshold(scores, 5.0)).sum() < 0.5 * len(centres)


def test_pure_noise_search_falls_back_to_about_the_expected_false_alarms():
    rotations = sample_rotations(30.0)
    search = Search(rotations, (-60.0, 60.0))
    template = chiral_template()
    tomogram = np.random.default_rng(0).normal(size=(32, 32, 32)).astype(np.float32)
    scores, index = run_search(tomogram, template, search)
    heights = extract_picks(scores, index, rotations, 4.0, threshold=None, n_picks=None,
                            name="p", tomo_name="t")[star.SCORE].to_numpy()
    levels = search_levels(tomogram, template, search, heights)
    assert levels.rotations == len(rotations) and levels.voxels == tomogram.size
    assert levels.boundary is None  # one population: noise
    level, rule = automatic_threshold("mixture", scores, levels, false_alarms=20.0)
    assert rule == "false-alarm"
    assert 20.0 / 3 <= (heights >= level).sum() <= 20.0 * 3
    strict, _ = automatic_threshold("false-alarm", scores, levels, false_alarms=1.0)
    assert strict > level and (heights >= strict).sum() <= 8
    with pytest.raises(ValueError, match="unknown threshold rule"):
        automatic_threshold("otsu", scores, levels)
