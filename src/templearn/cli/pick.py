"""`templearn pick`: particle picks (picks.star) from a segmentation's label and score maps."""

from __future__ import annotations

from pathlib import Path

import typer


def command(
    labels: Path = typer.Argument(..., help="Label map (labels.mrc: 0 background, k = class k)."),
    scores: list[str] = typer.Option(
        [], help="Score maps: a directory (its scores_<class>.mrc), a scores_<class>.mrc file "
                 "or NAME=FILE; repeatable. Default for --method peaks: beside LABELS."),
    method: str = typer.Option("meanshift", help="meanshift (DeepFinder), components or peaks."),
    radius: list[str] = typer.Option(
        [], help="Particle radius in voxels: VOX for all classes, or NAME=VOX (repeatable)."),
    min_size: int = typer.Option(1, help="Smallest cluster kept (voxels)."),
    max_size: int | None = typer.Option(None, help="Largest cluster kept (voxels)."),
    threshold: float | None = typer.Option(
        None, help="Smallest mean score kept (peaks: smallest peak score, default 0.5)."),
    mask: Path | None = typer.Option(None, help="Mask (MRC): pick only where it is > 0."),
    bin2: bool = typer.Option(False, help="meanshift: cluster a 2x-binned label map (faster)."),
    max_picks: int | None = typer.Option(None, help="peaks: at most this many per class."),
    sigma: float = typer.Option(1.0, help="peaks: Gaussian σ (voxels) smoothing the scores."),
    classes: Path | None = typer.Option(
        None, help="classes.json ({\"1\": \"ribosome\", ...}); default: beside LABELS."),
    name: str | None = typer.Option(None, help="Tomogram name in picks.star."),
    output_dir: Path = typer.Option(Path("picks"), "--output-dir", "-o"),
) -> None:
    """Pick particles per class from a label map (meanshift, components) or scores (peaks)."""
    import numpy as np

    from templearn import star
    from templearn.errors import InputError
    from templearn.mrc import read_mrc
    from templearn.pick import METHODS, pick_particles
    from templearn.progress import log
    from templearn.provenance import write_provenance

    if method not in METHODS:
        raise InputError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    if not radius:
        raise InputError("--radius is required (particle radius in voxels)")
    volume = read_mrc(labels)
    label_map = _integer_labels(volume.data, labels)
    names = _class_names(classes, labels, label_map)
    ids = {n: k for k, n in names.items()}
    radii = _radii(radius, names, ids)
    score_maps = {}
    specs = scores or ([str(labels.parent)] if method == "peaks" else [])
    for class_name, path in _score_files(specs, names):
        data = read_mrc(path).data
        if data.shape != label_map.shape:
            raise InputError(f"shape {data.shape} differs from the label map's "
                             f"{label_map.shape}", path)
        score_maps[ids[class_name]] = data
    mask_map = None
    if mask is not None:
        mask_map = read_mrc(mask).data
        if mask_map.shape != label_map.shape:
            raise InputError(f"shape {mask_map.shape} differs from the label map's "
                             f"{label_map.shape}", mask)
    tomo_name = name or (labels.parent.name if labels.stem == "labels" and labels.parent.name
                         else labels.stem)
    picks = pick_particles(
        label_map, score_maps or None, method, radii, min_size=min_size, max_size=max_size,
        threshold=threshold, mask=mask_map, bin2=bin2, max_picks=max_picks, sigma=sigma,
        class_names=names, tomo_name=tomo_name)
    star.write_star(output_dir / "picks.star", {
        star.GENERAL_BLOCK: star.general_table(label_map.shape, volume.voxel_size),
        star.PARTICLES_BLOCK: picks})
    write_provenance(output_dir, "pick", {
        "labels": labels, "scores": specs, "method": method, "radius": radius,
        "min_size": min_size, "max_size": max_size, "threshold": threshold, "mask": mask,
        "bin2": bin2, "max_picks": max_picks, "sigma": sigma, "classes": names,
        "name": tomo_name}, packages=("numpy", "scipy", "scikit-learn", "mrcfile", "starfile"))
    log(f"pick: {len(picks)} picks of {int(np.unique(picks[star.CLASS_ID]).size)} classes -> "
        f"{output_dir / 'picks.star'}")


def _integer_labels(data, path: Path):
    """The label map as uint8 (MRC stores it as int8/int16); InputError if not labels."""
    import numpy as np

    from templearn.errors import InputError

    if data.dtype.kind == "f" and not np.array_equal(data, np.round(data)):
        raise InputError("not a label map (non-integer values)", path)
    if data.size and (data.min() < 0 or data.max() > 255):
        raise InputError(f"label values must be 0..255, found {data.min()}..{data.max()}", path)
    return data.astype(np.uint8, copy=False)


def _class_names(classes: Path | None, labels: Path, label_map) -> dict[int, str]:
    """Class id → name from classes.json (given or beside the label map), else class<k>."""
    import json

    from templearn.errors import InputError
    from templearn.files import require_file
    from templearn.pick import present_labels

    path = classes if classes is not None else labels.parent / "classes.json"
    if classes is None and not path.exists():
        names = {k: f"class{k}" for k in present_labels(label_map) if k > 0}
        if not names:
            raise InputError("no labelled voxels (all 0)", labels)
        return names
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


def _radii(specs: list[str], names: dict[int, str], ids: dict[str, int]) -> dict[int, float]:
    """--radius values ('VOX' for all, 'NAME=VOX' per class) → radius per class id."""
    from templearn.errors import InputError

    default, per_class = None, {}
    for spec in specs:
        key, sep, value = spec.rpartition("=")
        try:
            number = float(value)
        except ValueError:
            raise InputError(f"--radius expects VOX or NAME=VOX, got {spec!r}") from None
        if not number > 0:
            raise InputError(f"--radius must be positive, got {spec!r}")
        if not sep:
            default = number
        elif key in ids:
            per_class[ids[key]] = number
        else:
            raise InputError(f"--radius names {key!r}, not a class ({', '.join(ids)})")
    missing = [names[k] for k in names if k not in per_class and default is None]
    if missing:
        raise InputError(f"--radius missing for {', '.join(missing)}")
    return {k: per_class.get(k, default) for k in names}  # type: ignore[misc]


def _score_files(specs: list[str], names: dict[int, str]) -> list[tuple[str, Path]]:
    """(class name, file) of each score map named by --scores."""
    from templearn.errors import InputError

    known = set(names.values())
    found: dict[str, Path] = {}
    for spec in specs:
        key, sep, value = spec.partition("=")
        if sep and key in known:
            found[key] = Path(value)
            continue
        path = Path(spec)
        if path.is_dir():
            files = {p.stem.removeprefix("scores_"): p for p in sorted(path.glob("scores_*.mrc"))}
            if not files:
                raise InputError("no scores_<class>.mrc files", path)
            found.update({k: p for k, p in files.items() if k in known})
            continue
        stem = path.stem.removeprefix("scores_")
        if stem in known:
            found[stem] = path
        elif len(known) == 1:
            found[next(iter(known))] = path
        else:
            raise InputError(f"cannot tell the class of this score map (classes: "
                             f"{', '.join(sorted(known))}); use NAME=FILE", path)
    return sorted(found.items())
