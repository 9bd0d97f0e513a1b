"""Template confirmation: keep a trained picker's pick only where the target's template
matches better than noise can.

The trained picker proposes; a template search of the same tomogram (`templearn match`)
confirms. A pick is kept when the best template score within `reach` voxels of it (the
picker's centre and the template's peak need not fall on the same voxel) reaches either of
two levels of the search (`templearn.match_threshold.SearchLevels`), both made without
annotations:
- the score that noise reaches in that many trials: the rotations searched times the
  (2·reach + 1)³ voxels looked at, each score Gaussian with the mean and σ of the search's
  phase-randomised control, at `false_alarms` expected noise exceedances per pick;
- the boundary between the background's and the particles' peaks of the score map (the
  `mixture` rule of `templearn match`), when there is one. In a crowded tomogram the
  control measures the particles' clutter as noise and its level is too strict (the
  shipped ribosome recipe's fast held-out `test0`: F1 0.90–0.93 with it alone, 0.98–0.99
  with either); in a sparse one the boundary lies above it.

Why (docs/transfer.md, finding 14): the even/odd halves of a tomogram add nothing to the
full tomogram but an estimate of its noise (their difference is independent of their sum
for Gaussian counting noise), so the halves check is a test of local signal energy, and in
a sparse low-dose tomogram noise blobs that the network takes for ribosomes pass it. The
template is the strongest prior the user has given: integrated over the whole known
structure, it tells a weak particle from a noise blob where neither the network nor the
halves can. It is also blind to what makes a template miss (flexibility far from the
template, unknown structures), so it only ever removes picks: a pick has to look like the
target to the network and match the template above noise.
"""

from __future__ import annotations

import numpy as np

from templearn.match_threshold import SearchLevels


def neighbourhood(reach: int) -> np.ndarray:
    """The (2·reach + 1)³ integer offsets (z, y, x) of a cube of half-width `reach`."""
    span = np.arange(-reach, reach + 1)
    return np.stack(np.meshgrid(span, span, span, indexing="ij"), axis=-1).reshape(-1, 3)


def best_nearby(scores: np.ndarray, centres_zyx: np.ndarray, reach: int) -> np.ndarray:
    """The largest score within the cube of half-width `reach` voxels around each centre
    (rounded to the nearest voxel; the cube clipped to the volume)."""
    centres = np.rint(np.atleast_2d(np.asarray(centres_zyx, float))).astype(np.intp)
    if len(centres) == 0:
        return np.zeros(0, scores.dtype)
    points = centres[:, None, :] + neighbourhood(reach)[None]
    points = np.clip(points, 0, np.array(scores.shape) - 1)
    return scores[points[..., 0], points[..., 1], points[..., 2]].max(axis=1)


def confirmation_level(levels: SearchLevels, reach: int, false_alarms: float) -> float:
    """The template score a pick needs: what noise exceeds `false_alarms` times on average
    in the rotations × (2·reach + 1)³ trials looked at per pick, or the search's boundary
    between background and particle peaks where that is lower."""
    noise = levels.level(levels.rotations * (2 * reach + 1) ** 3, false_alarms)
    return noise if levels.boundary is None else min(noise, levels.boundary)


def confirmed(scores: np.ndarray, levels: SearchLevels, centres_zyx: np.ndarray,
              reach: int, false_alarms: float) -> np.ndarray:
    """Which centres the template confirms (bool per centre)."""
    return best_nearby(scores, centres_zyx, reach) >= confirmation_level(levels, reach,
                                                                         false_alarms)
