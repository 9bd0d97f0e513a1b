"""copick projects read and written through the copick package's own API (the optional
extra `copick`), so that what we write is what copick's tools read.

Only the calls into copick live here; the conventions (Å from the tomogram corner,
object→tomogram transforms) are in `templearn.interop`. copick is imported when a
function runs, so the CLI and the other formats work without it.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from templearn.errors import InputError
from templearn.files import require_file

EXTRA = "pip install 'templearn[copick]'"
#: Voxel spacings closer than this (Å) are the same.
SPACING_TOLERANCE = 1e-3


@dataclass(frozen=True)
class PickSet:
    """One copick picks file's points: one run, one object, one user and session."""

    run: str
    object: str
    locations: np.ndarray  # (n, 3) Å from the tomogram corner
    transforms: np.ndarray  # (n, 4, 4) object→tomogram
    scores: np.ndarray | None  # (n,)
    oriented: bool  # copick's trust_orientation


def require_copick() -> Any:
    """The copick module; InputError naming the extra when it is not installed."""
    try:
        import copick
    except ImportError:
        raise InputError(f"copick projects need the copick package: {EXTRA}") from None
    return copick


def sanitized(name: str) -> str:
    """`name` as copick stores object, user and session names (no '_', spaces, ...)."""
    from copick.util.escape import sanitize_name

    try:
        return sanitize_name(name, suppress_warnings=True)
    except ValueError:
        return ""


def check_name(value: str, option: str) -> None:
    """InputError naming `option` unless copick keeps `value` as it is."""
    if sanitized(value) != value:
        raise InputError(f"{option} {value!r} is not a copick name (no '_', spaces or "
                         f"<>:\"/\\|?*; e.g. {sanitized(value) or 'templearn'!r})")


@contextlib.contextmanager
def about_project(config: str | os.PathLike[str]) -> Iterator[None]:
    """copick's own complaints (ValueError and kin) and storage errors (an unwritable
    project) as one-line InputErrors naming `config`."""
    try:
        yield
    except InputError:
        raise
    except (ValueError, KeyError, AssertionError, OSError) as exc:
        raise InputError(" ".join(str(exc).split()), config) from None


def open_project(config: Path) -> Any:
    """The copick root of a project config (JSON); InputError naming it if unreadable."""
    copick = require_copick()
    path = require_file(config)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return copick.from_file(str(path))
    except Exception as exc:  # json, pydantic and fsspec errors alike
        raise InputError(f"not a readable copick config ({' '.join(str(exc).split())})",
                         path) from None


def object_names(root: Any) -> list[str]:
    """Names of the project's pickable objects."""
    return [o.name for o in root.pickable_objects]


def object_radii(root: Any) -> dict[str, float]:
    """Radius (Å) of each pickable object that has one. (copick's object schema has no
    weight: the CZII challenge's class weights lived in its scoring script.)"""
    return {o.name: float(o.radius) for o in root.pickable_objects if o.radius}


def object_labels(root: Any) -> dict[str, int | None]:
    """Each pickable object's `label`, its value in multilabel segmentations."""
    return {o.name: o.label for o in root.pickable_objects}


def require_objects(root: Any, names: list[str], config: Path, hint: str) -> None:
    """InputError naming the config unless every name is a pickable object."""
    known = object_names(root)
    missing = [n for n in names if n not in known]
    if missing:
        raise InputError(f"no pickable object {missing[0]!r} (objects: "
                         f"{', '.join(known) or 'none'}); {hint}", config)


def get_run(root: Any, name: str, config: Path) -> Any:
    """A run of the project; InputError listing the runs if it has none of that name."""
    run = root.get_run(name)
    if run is None:
        names = sorted(r.name for r in root.runs)
        raise InputError(f"no run {name!r} (runs: {', '.join(names) or 'none'}); choose "
                         f"with --run", config)
    return run


def write_picks(root: Any, sets: list[PickSet], user: str, session: str, voxel: float,
                config: Path) -> None:
    """Store each set as the picks of (run, object, user, session), replacing earlier ones
    of the same four; runs are created where missing."""
    with about_project(config):
        for s in sets:
            run = root.get_run(s.run) or root.new_run(s.run)
            picks = run.new_picks(s.object, session_id=session, user_id=user, exist_ok=True)
            picks.meta.trust_orientation = s.oriented
            picks.meta.voxel_spacing = voxel
            picks.from_numpy(s.locations, s.transforms, scores=s.scores)


def read_picks(root: Any, config: Path, run_name: str, object_name: str,
               user: str | None, session: str | None) -> PickSet:
    """The one picks file of a run for an object (and user/session where given)."""
    run = get_run(root, run_name, config)
    require_objects(root, [object_name], config, "choose with --object")
    with about_project(config):
        found = run.get_picks(object_name=object_name, user_id=user, session_id=session)
        if len(found) != 1:
            listed = ", ".join(sorted(f"{p.pickable_object_name}:{p.user_id}/{p.session_id}"
                                      for p in (found or run.picks))) or "none"
            what = "several" if found else "no"
            raise InputError(f"{what} picks of {object_name!r} in run {run_name!r} "
                             f"(object:user/session: {listed}); choose with --user-id and "
                             f"--session-id", config)
        picks = found[0]
        locations, transforms = picks.numpy()
        return PickSet(run_name, object_name, locations, transforms, picks.scores(),
                       bool(picks.trust_orientation))


def voxel_spacing(run: Any, voxel: float | None, config: Path) -> Any:
    """The run's voxel spacing of `voxel` Å, or its only one when `voxel` is None."""
    spacings = run.voxel_spacings
    sizes = ", ".join(f"{s.voxel_size:g}" for s in spacings) or "none"
    if voxel is None:
        if len(spacings) != 1:
            raise InputError(f"run {run.name!r} has voxel spacings {sizes}: choose one with "
                             f"--voxel-size", config)
        return spacings[0]
    for spacing in spacings:
        if abs(spacing.voxel_size - voxel) < SPACING_TOLERANCE:
            return spacing
    raise InputError(f"run {run.name!r} has no voxel spacing {voxel:g} Å (voxel spacings: "
                     f"{sizes})", config)


def tomogram(spacing: Any, tomo_type: str | None, config: Path) -> Any:
    """The voxel spacing's tomogram of `tomo_type`, or its only one when None."""
    tomograms = spacing.tomograms
    types = ", ".join(sorted(t.tomo_type for t in tomograms)) or "none"
    chosen = [t for t in tomograms if tomo_type is None or t.tomo_type == tomo_type]
    if len(chosen) != 1:
        what = f"no tomogram of type {tomo_type!r}" if tomo_type else "not one tomogram"
        raise InputError(f"voxel spacing {spacing.voxel_size:g} Å of run {spacing.run.name!r} "
                         f"has {what} (types: {types}); choose with --tomo-type", config)
    return chosen[0]


def tomogram_shape(tomo: Any) -> tuple[int, int, int]:
    """(z, y, x) of a copick tomogram's full-resolution level, without reading it."""
    import zarr

    return tuple(int(n) for n in zarr.open(tomo.zarr(), mode="r")["0"].shape)


def write_tomogram(root: Any, run_name: str, voxel: float, tomo_type: str, data: np.ndarray,
                   config: Path) -> None:
    """Store a [z, y, x] volume as the run's tomogram `tomo_type` at `voxel` Å (OME-Zarr)."""
    with about_project(config):
        run = root.get_run(run_name) or root.new_run(run_name)
        spacing = run.new_voxel_spacing(voxel, exist_ok=True)
        spacing.new_tomogram(tomo_type, exist_ok=True).from_numpy(np.asarray(data, np.float32))


def write_segmentation(root: Any, run_name: str, voxel: float, name: str, user: str,
                       session: str, data: np.ndarray, config: Path) -> None:
    """Store a [z, y, x] map of object labels as the run's multilabel segmentation `name` at
    `voxel` Å (OME-Zarr), replacing one of the same name, user and session."""
    with about_project(config):
        run = root.get_run(run_name) or root.new_run(run_name)
        run.new_segmentation(voxel, name, session, is_multilabel=True, user_id=user,
                             exist_ok=True).from_numpy(data)
