"""Stage `match`: template matching, the baseline picker — a tomogram and a template map →
best score and rotation per voxel, the rotation list, the score peaks as picks.star and the
search's levels (levels.json: what noise scores, where particle peaks begin), which `pick
--confirm` checks picks against."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from templearn.stages.base import Record, Stage, StageParams, option

#: Files in the output directory: the score map, the rotation index map, the rotation list
#: (index and RELION angles) and the picks (the input contract of `evaluate`).
SCORES, ANGLES, ANGLES_TABLE, PICKS = "scores.mrc", "angles.mrc", "angles.tsv", "picks.star"
#: The search's levels: what noise scores and the boundary between background and particle
#: peaks (`templearn.match_threshold.SearchLevels`), for `pick --confirm`.
LEVELS = "levels.json"


@dataclass(frozen=True)
class Inputs(Record):
    tomogram: Path = option(help="Tomogram (MRC) to search.", argument=True)
    template: Path = option(help="Template map (MRC) at the tomogram's voxel size, the "
                                 "particle centred in its box.", argument=True)
    meta: Path | None = option(None, "A simulation's meta.json: the tilt range from its "
                                     "angles (instead of --tilt-range).")


@dataclass(frozen=True)
class Params(StageParams):
    tilt_range: tuple[float, float] | None = option(
        None, "Tilt range MIN,MAX (degrees) for the missing-wedge weight; default: from "
              "--meta, else no wedge.")
    angular_step: float = option(7.0, "Angular sampling step (degrees); 7 gives 43,784 "
                                      "rotations.", positive=True)
    symmetry: str = option("C1", "Cyclic symmetry Cn of the template about its z axis "
                                 "(fewer in-plane angles).")
    radius: float | None = option(None, "Particle radius (voxels): no two picks closer "
                                        "(default: the mask radius).", positive=True)
    n_picks: int | None = option(None, "Keep the best N peaks (with --threshold: at most N "
                                       "above it).", minimum=1)
    threshold: float | None = option(None, "Smallest peak score kept; default without "
                                           "--n-picks: automatic (--auto-threshold).")
    auto_threshold: str = option(
        "mixture", "Automatic threshold: 'mixture' (the boundary between the background's "
                   "and the particles' peaks, Gaussian mixture of the peak scores; "
                   "'false-alarm' when there is one population), 'false-alarm' "
                   "(--false-alarms expected noise peaks, from a phase-randomised control "
                   "search) or 'noise' (--noise-sigmas above the score map's median).",
        choices=("mixture", "false-alarm", "noise"))
    false_alarms: float = option(1.0, "Rule 'false-alarm': expected noise peaks above the "
                                      "threshold in the whole search.", positive=True)
    noise_sigmas: float = option(5.0, "Rule 'noise': median + this many σ of a Gaussian "
                                      "fitted to the lower half of the scores.",
                                 positive=True)
    mask_radius: float | None = option(None, "Spherical mask radius (voxels); default: the "
                                             "template's extent + 1.", positive=True)
    low_pass: float | None = option(None, "Low-pass both maps to this resolution (Å).",
                                    positive=True)
    invert: bool = option(True, "Negate the template map: maps are bright, particles in "
                                "cryo-ET tomograms (ours and most) dark; --no-invert for "
                                "bright particles.")
    batch: int = option(8, "Rotations per jitted correlation call.", minimum=1)
    name: str | None = option(None, "Particle class name in picks.star (default: the "
                                    "template's file stem).")

    def check(self) -> None:
        from templearn.errors import InputError

        if self.tilt_range is not None:
            low, high = self.tilt_range
            if not -90 <= low < high <= 90:
                raise InputError(f"--tilt-range must be MIN,MAX with -90 <= MIN < MAX <= 90, "
                                 f"got {low:g},{high:g}")
        if self.angular_step > 90:
            raise InputError(f"--angular-step must be at most 90 degrees, got "
                             f"{self.angular_step:g}")
        self.order()

    def order(self) -> int:
        """n of the Cn --symmetry."""
        from templearn.errors import InputError

        text = self.symmetry.strip().upper()
        if len(text) < 2 or text[0] != "C" or not text[1:].isdigit() or int(text[1:]) < 1:
            raise InputError(f"--symmetry must be Cn (cyclic, n >= 1), got {self.symmetry!r}")
        return int(text[1:])


def tilt_range_of(params: Params, inputs: Inputs) -> tuple[float, float] | None:
    """--tilt-range, else the extreme angles of --meta, else None."""
    import json

    from templearn.errors import InputError
    from templearn.files import require_file

    if params.tilt_range is not None or inputs.meta is None:
        return params.tilt_range
    path = require_file(inputs.meta)
    try:
        angles = [float(a) for a in json.loads(path.read_text())["angles_nominal"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"expected a simulation's meta.json with angles_nominal ({exc})",
                         path) from None
    if not angles or not -90 <= min(angles) < max(angles) <= 90:
        raise InputError(f"angles_nominal must span a range within [-90, 90], got {angles}",
                         path)
    return min(angles), max(angles)


def write_angles_table(path: Path, rotations: Any) -> None:
    """angles.tsv: the rotation index and its RELION angles (degrees), one rotation a line."""
    from templearn.files import atomic_write_text
    from templearn.geometry import matrix_to_relion

    lines = [f"{i}\t{rot:.4f}\t{tilt:.4f}\t{psi:.4f}"
             for i, (rot, tilt, psi) in enumerate(matrix_to_relion(rotations))]
    atomic_write_text(path, "index\trlnAngleRot\trlnAngleTilt\trlnAnglePsi\n"
                      + "\n".join(lines) + "\n")


def write(params: Params, inputs: Inputs, out: Path) -> str:
    """scores.mrc, angles.mrc, angles.tsv, levels.json and picks.star of the search."""
    import numpy as np

    from templearn import star
    from templearn.errors import InputError
    from templearn.jaxcache import enable_compilation_cache
    from templearn.match import (
        Search,
        extract_picks,
        odd_box,
        run_search,
        sample_rotations,
        template_radius,
    )
    from templearn.match_threshold import automatic_threshold, search_levels
    from templearn.mrc import Volume, read_mrc, write_mrc
    from templearn.progress import log, track
    from templearn.stages.mrcgrid import mrc_grid

    shape, voxel = mrc_grid(inputs.tomogram)
    box, template_voxel = mrc_grid(inputs.template)
    if not np.isclose(template_voxel, voxel, rtol=1e-3):
        raise InputError(f"voxel size {template_voxel:g} Å differs from the tomogram's "
                         f"{voxel:g} Å (resample the template)", inputs.template)
    if any(b > n for b, n in zip(odd_box(box), shape, strict=True)):
        raise InputError(f"template box {box[::-1]} (x, y, z) does not fit the tomogram "
                         f"{shape[::-1]}", inputs.template)
    tilt_range = tilt_range_of(params, inputs)
    enable_compilation_cache()
    volume, template = read_mrc(inputs.tomogram), read_mrc(inputs.template).data
    if params.invert:
        template = -template
    rotations = sample_rotations(params.angular_step, params.order())
    mask_radius = params.mask_radius or template_radius(template)
    log(f"match: {len(rotations)} rotations, mask radius {mask_radius:.1f} voxels, "
        f"wedge {'none' if tilt_range is None else f'{tilt_range[0]:g}..{tilt_range[1]:g}°'}")
    low_pass = None if params.low_pass is None else voxel / params.low_pass
    search = Search(rotations, tilt_range, mask_radius, low_pass, params.batch)
    scores, index = run_search(volume.data, template, search,
                               lambda starts: track(starts, "match: rotation batches"))
    write_mrc(out / SCORES, Volume(scores, volume.voxel_size, volume.origin))
    write_mrc(out / ANGLES, Volume(index.astype(np.float32), volume.voxel_size, volume.origin))
    write_angles_table(out / ANGLES_TABLE, rotations)
    radius, name = params.radius or mask_radius, params.name or inputs.template.stem
    peaks = extract_picks(scores, index, rotations, radius, threshold=None, n_picks=None,
                          name=name, tomo_name=inputs.tomogram.stem)
    levels = search_levels(volume.data, template, search, peaks[star.SCORE].to_numpy(float))
    levels.write(out / LEVELS)
    threshold, rule = params.threshold, "given"
    if threshold is None and params.n_picks is None:
        threshold, rule = automatic_threshold(
            params.auto_threshold, scores, levels, false_alarms=params.false_alarms,
            noise_sigmas=params.noise_sigmas)
        log(f"match: automatic threshold {threshold:.3f} (rule {rule})")
    picks = extract_picks(scores, index, rotations, radius, threshold=threshold,
                          n_picks=params.n_picks, name=name, tomo_name=inputs.tomogram.stem)
    star.write_star(out / PICKS, {
        star.GENERAL_BLOCK: star.general_table(volume.data.shape, volume.voxel_size),
        star.PARTICLES_BLOCK: picks})
    above = "" if threshold is None else f" above {threshold:.3f} ({rule})"
    return (f"{len(picks)} picks{above} in {PICKS}; best score {scores.max():.3f} over "
            f"{len(rotations)} rotations")


STAGE = Stage(
    "match", "Template matching (the baseline picker): best local normalised "
    "cross-correlation and its rotation per voxel (scores.mrc, angles.mrc, angles.tsv), "
    "the search's levels (levels.json) and "
    "the peaks as picks.star.", Params, Inputs, write,
    packages=("numpy", "scipy", "jax", "mrcfile", "starfile"), default_output="match")


#: `run(params, inputs, out_dir)`: the stage from Python, as the CLI runs it.
run = STAGE.run
