"""Stage `pick`: a segmentation's label map (and score maps) → particle picks (picks.star)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from templearn.stages.base import Record, Stage, StageParams, option

#: The picks table in the output directory (the input contract of `evaluate`).
PICKS = "picks.star"
#: Picking methods (`templearn.pick.METHODS`).
METHODS = ("meanshift", "components", "peaks")


@dataclass(frozen=True)
class Inputs(Record):
    labels: Path = option(help="Label map (labels.mrc: 0 background, k = class k).",
                          argument=True)
    scores: tuple[str, ...] = option(
        (), "Score maps: a directory (its scores_<class>.mrc), a scores_<class>.mrc file or "
            "NAME=FILE; repeatable. Default for --method peaks: beside LABELS.", repeat=True)
    classes: Path | None = option(None, "classes.json ({\"1\": \"ribosome\", ...}); default: "
                                        "beside LABELS.")
    mask: Path | None = option(None, "Mask (MRC): pick only where it is > 0.")
    halves: Path | None = option(
        None, "The segmented tomogram, its even/odd half tomograms beside it (`reconstruct "
              "--halves`): drop picks where the halves agree no more than chance (--halves-z).")
    confirm: Path | None = option(
        None, "A template search of the same tomogram (`templearn match` output folder: "
              "scores.mrc, levels.json): keep only picks where the template matches better "
              "than noise can (--confirm-false-alarms) or above where the search's particle "
              "peaks begin. Every class is checked against that one template.")


@dataclass(frozen=True)
class Params(StageParams):
    method: str = option("meanshift", "Picking method, one of: meanshift (DeepFinder), "
                                      "components, peaks (local maxima of the score maps "
                                      "alone).", choices=METHODS)
    radius: tuple[str, ...] = option((), "Particle radius in voxels: VOX for all classes, or "
                                         "NAME=VOX (repeatable). Required.", repeat=True)
    min_size: int = option(1, "Smallest cluster kept (voxels).", minimum=0)
    max_size: int | None = option(None, "Largest cluster kept (voxels).", minimum=1)
    threshold: float | None = option(None, "Smallest mean score kept (peaks: smallest peak "
                                           "score, default 0.5).")
    bin2: bool = option(False, "meanshift: cluster a 2x-binned label map (faster).")
    max_picks: int | None = option(None, "peaks: at most this many per class.", minimum=1)
    sigma: float = option(1.0, "peaks: Gaussian σ (voxels) smoothing the scores.", minimum=0)
    name: str | None = option(None, "Tomogram name in picks.star (default: the label map's "
                                    "folder).")
    halves_z: float = option(
        1.645, "With --halves: smallest agreement of the half tomograms within each pick's "
               "radius, in s.d.s above chance (1.645: a one-sided 5 % test; noise picks "
               "score ≈ N(0, 1), picks on any structure score high).")
    confirm_false_alarms: float = option(
        0.05, "With --confirm: expected noise picks kept per pick (the false-alarm level "
              "over the search's rotations and the voxels within --confirm-reach).",
        positive=True)
    confirm_reach: int = option(
        2, "With --confirm: the template's best score within this many voxels of a pick "
           "counts.", minimum=0)
    validated_min_size: bool = option(
        False, "Drop clusters smaller than the size that gave the best F1 on the training's "
               "validation tomograms (picking.json beside LABELS, written by segment from "
               "the model): a threshold never tuned on the tomogram picked.")

    def check(self) -> None:
        import math

        from templearn.errors import InputError

        if not self.radius:
            raise InputError("--radius is required (particle radius in voxels: VOX or "
                             "NAME=VOX)")
        parse_radii(self.radius)
        if self.max_size is not None and self.max_size < self.min_size:
            raise InputError(f"--max-size {self.max_size} is below --min-size "
                             f"{self.min_size}")
        if self.name is not None and not self.name.strip():
            raise InputError("--name must not be empty")
        if not math.isfinite(self.halves_z):
            raise InputError(f"--halves-z must be a finite number, got {self.halves_z}")
        if not math.isfinite(self.confirm_false_alarms):
            raise InputError("--confirm-false-alarms must be a finite number, got "
                             f"{self.confirm_false_alarms}")


def parse_radii(specs: tuple[str, ...], flag: str = "--radius"
                ) -> tuple[float | None, dict[str, float]]:
    """--radius values → (radius for every class or None, radius per class name)."""
    from templearn.errors import InputError

    default, per_class = None, {}
    for spec in specs:
        key, sep, value = spec.rpartition("=")
        try:
            number = float(value)
        except ValueError:
            raise InputError(f"{flag} expects VOX or NAME=VOX, got {spec!r}") from None
        if not number > 0 or number == float("inf"):
            raise InputError(f"{flag} must be a positive number, got {spec!r}")
        if not sep:
            default = number
        elif not key:
            raise InputError(f"{flag} expects VOX or NAME=VOX, got {spec!r}")
        else:
            per_class[key] = number
    return default, per_class


def radii_of(specs: tuple[str, ...], names: dict[int, str],
             flag: str = "--radius") -> dict[int, float]:
    """Radius per class id, every class covered; InputError naming `flag` otherwise."""
    from templearn.errors import InputError

    default, per_class = parse_radii(specs, flag)
    ids = {n: k for k, n in names.items()}
    unknown = [key for key in per_class if key not in ids]
    if unknown:
        raise InputError(f"{flag} names {unknown[0]!r}, not a class ({', '.join(ids)})")
    missing = [n for n in ids if n not in per_class and default is None]
    if missing:
        raise InputError(f"{flag} missing for {', '.join(missing)}")
    return {k: per_class.get(n, default) for k, n in names.items()}  # type: ignore[misc]


def integer_labels(data: Any, path: Path) -> Any:
    """The label map as uint8 (MRC stores it as int8/int16); InputError if not labels."""
    import numpy as np

    from templearn.errors import InputError

    if data.dtype.kind == "f" and not np.array_equal(data, np.round(data)):
        raise InputError("not a label map (non-integer values)", path)
    if data.size and (data.min() < 0 or data.max() > 255):
        raise InputError(f"label values must be 0..255, found {data.min()}..{data.max()}", path)
    return data.astype(np.uint8, copy=False)


def read_classes(path: Path) -> dict[int, str]:
    """Class id → name (background left out) from classes.json."""
    import json

    from templearn.errors import InputError
    from templearn.files import require_file

    require_file(path)
    try:
        raw = json.loads(path.read_text())
        names = {int(k): str(v) for k, v in raw.items()}
    except (ValueError, AttributeError) as exc:
        raise InputError(f"expected {{\"1\": \"name\", ...}} ({exc})", path) from None
    names = {k: v for k, v in names.items() if k > 0}
    if not names:
        raise InputError("no classes", path)
    if len(set(names.values())) != len(names):
        raise InputError("class names are not unique", path)
    return names


def score_files(specs: tuple[str, ...], names: dict[int, str]) -> list[tuple[str, Path]]:
    """(class name, file) of each score map named by --scores, the files checked to exist."""
    from templearn.errors import InputError
    from templearn.files import require_file

    known = set(names.values())
    found: dict[str, Path] = {}
    for spec in specs:
        key, sep, value = spec.partition("=")
        if sep and key in known:
            found[key] = require_file(value)
            continue
        path = Path(spec)
        if path.is_dir():
            files = {p.stem.removeprefix("scores_"): p for p in sorted(path.glob("scores_*.mrc"))}
            if not files:
                raise InputError("--scores: no scores_<class>.mrc files", path)
            found.update({k: p for k, p in files.items() if k in known})
            continue
        if sep and not path.exists():
            raise InputError(f"--scores names {key!r}, not a class ({', '.join(sorted(known))})")
        require_file(path)
        stem = path.stem.removeprefix("scores_")
        if stem in known:
            found[stem] = path
        elif len(known) == 1:
            found[next(iter(known))] = path
        else:
            raise InputError(f"cannot tell the class of this score map (classes: "
                             f"{', '.join(sorted(known))}); use NAME=FILE", path)
    return sorted(found.items())


#: Picking defaults learned on the validation tomograms (written by segment).
DEFAULTS = "picking.json"


def validated_min_sizes(path: Path) -> dict[str, int]:
    """Class name → smallest cluster size worth keeping, from a segmentation's picking.json."""
    import json

    from templearn.errors import InputError

    if not path.is_file():
        raise InputError("no picking.json beside the label map (the model has no validation "
                         "picking; train with validation tomograms, or drop "
                         "--validated-min-size)", path)
    try:
        sizes = json.loads(path.read_text())["min_size"]
        return {str(k): int(v) for k, v in sizes.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"expected {{\"min_size\": {{CLASS: SIZE}}}} ({exc})", path) from None


def drop_disagreeing(picks: Any, even: Any, odd: Any, radii: dict[int, float],
                     level: float) -> Any:
    """The picks where the half tomograms agree above chance by at least `level` s.d.s
    (within each pick's class radius)."""
    from templearn import star
    from templearn.halves import half_agreement

    if picks.empty:
        return picks
    zyx = picks[list(star.COORDINATES[::-1])].to_numpy(float)
    radius = picks[star.CLASS_ID].map(radii).to_numpy(float)
    return picks[half_agreement(even, odd, zyx, radius) >= level].reset_index(drop=True)


def drop_unconfirmed(picks: Any, folder: Path, levels: Any, params: Params) -> Any:
    """The picks the template search in `folder` (its scores.mrc and `levels`) confirms
    (`templearn.confirm`)."""
    from templearn import star
    from templearn.confirm import confirmed
    from templearn.mrc import read_mrc
    from templearn.stages.match import SCORES

    if picks.empty:
        return picks
    scores = read_mrc(folder / SCORES).data
    zyx = picks[list(star.COORDINATES[::-1])].to_numpy(float)
    keep = confirmed(scores, levels, zyx, params.confirm_reach, params.confirm_false_alarms)
    return picks[keep].reset_index(drop=True)


def drop_small_clusters(picks: Any, min_sizes: dict[str, int]) -> Any:
    """The picks whose cluster is at least its class's size (classes not listed are kept)."""
    from templearn import star
    from templearn.sample import CLASS_NAME

    floor = picks[CLASS_NAME].astype(str).map(min_sizes).fillna(0)
    return picks[picks[star.CLUSTER_SIZE] >= floor].reset_index(drop=True)


def write(params: Params, inputs: Inputs, out: Path) -> str:
    """picks.star: a general block (tomogram size, voxel size) and the picks per class."""
    from templearn.errors import InputError
    from templearn.stages.mrcgrid import mrc_grid, same_grid

    labels_path = inputs.labels
    shape, _ = mrc_grid(labels_path)
    min_sizes = (validated_min_sizes(labels_path.parent / DEFAULTS)
                 if params.validated_min_size else None)
    if inputs.mask is not None:
        same_grid(inputs.mask, shape, "the label map")
    if inputs.halves is not None:
        from templearn.halves import require_halves

        same_grid(inputs.halves, shape, "the label map")
        for half in require_halves(inputs.halves, "--halves "):
            same_grid(half, shape, "the label map")
    levels = None
    if inputs.confirm is not None:
        from templearn.match_threshold import SearchLevels
        from templearn.stages.match import LEVELS, SCORES

        same_grid(inputs.confirm / SCORES, shape, "the label map")
        levels = SearchLevels.read(inputs.confirm / LEVELS)
    classes_path = inputs.classes or labels_path.parent / "classes.json"
    names = read_classes(classes_path) if inputs.classes or classes_path.exists() else None
    if names is not None:
        radii = radii_of(params.radius, names)
    specs = inputs.scores or ((str(labels_path.parent),) if params.method == "peaks" else ())

    from templearn import star
    from templearn.mrc import read_mrc
    from templearn.pick import pick_particles, present_labels

    volume = read_mrc(labels_path)
    label_map = integer_labels(volume.data, labels_path)
    if names is None:
        names = {k: f"class{k}" for k in present_labels(label_map) if k > 0}
        if not names:
            raise InputError("no labelled voxels (all 0) and no classes.json beside it; "
                             "give --classes", labels_path)
        radii = radii_of(params.radius, names)
    files = score_files(specs, names)
    for _, path in files:
        same_grid(path, shape, "the label map")
    if params.method == "peaks":
        missing = sorted(set(names.values()) - {n for n, _ in files})
        if missing:
            raise InputError(f"--method peaks needs a score map of every class; none for "
                             f"{', '.join(missing)} (--scores)")
    ids = {n: k for k, n in names.items()}
    score_maps = {ids[n]: read_mrc(path).data for n, path in files}
    mask_map = None if inputs.mask is None else read_mrc(inputs.mask).data
    tomo_name = params.name or (labels_path.parent.name if labels_path.stem == "labels"
                                and labels_path.parent.name else labels_path.stem)
    picks = pick_particles(
        label_map, score_maps or None, params.method, radii, min_size=params.min_size,
        max_size=params.max_size, threshold=params.threshold, mask=mask_map, bin2=params.bin2,
        max_picks=params.max_picks, sigma=params.sigma, class_names=names,
        tomo_name=tomo_name)
    if min_sizes is not None:
        picks = drop_small_clusters(picks, min_sizes)
    dropped = ""
    if inputs.halves is not None:
        from templearn.halves import read_halves

        before = len(picks)
        picks = drop_disagreeing(picks, *read_halves(inputs.halves, label_map.shape), radii,
                                 params.halves_z)
        dropped = f"; {before - len(picks)} dropped where the halves disagree"
    if inputs.confirm is not None:
        before = len(picks)
        picks = drop_unconfirmed(picks, inputs.confirm, levels, params)
        dropped += f"; {before - len(picks)} not confirmed by the template"
    star.write_star(out / PICKS, {
        star.GENERAL_BLOCK: star.general_table(label_map.shape, volume.voxel_size),
        star.PARTICLES_BLOCK: picks})
    counts = picks[star.CLASS_ID].value_counts()
    per_class = ", ".join(f"{n} {int(counts.get(k, 0))}" for k, n in sorted(names.items()))
    return f"{len(picks)} picks ({per_class}) by {params.method}{dropped} in {PICKS}"


STAGE = Stage(
    "pick", "Pick particles per class from a label map (meanshift, components) or from the "
    "score maps alone (peaks) into picks.star.", Params, Inputs, write,
    packages=("numpy", "scipy", "scikit-learn", "mrcfile", "starfile"), default_output="picks")


#: `run(params, inputs, out_dir)`: the stage from Python, as the CLI runs it.
run = STAGE.run
