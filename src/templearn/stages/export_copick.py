"""`export --to copick`: picks, the tomogram (--tomo-type) and a label map (--labels, as a
multilabel segmentation) into a copick project, everything checked before anything is
written (the calls into copick are in `templearn.copickio`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from templearn.stages.export import COPICK, Inputs, Params


def object_of(params: Params, name: str) -> str:
    """The copick object of a class: --object, else the class name as copick writes it."""
    from templearn import copickio

    return params.objects.get(name) or copickio.sanitized(name)


def copick_sets(params: Params, picks: Any, voxel: float, root: Any, config: Path,
                labelled: tuple[str, ...] = ()) -> list:
    """Our picks as copick pick sets, one per (run, object); every object (of the picks'
    classes and the `labelled` ones) checked first."""
    from templearn import copickio, interop, star
    from templearn.errors import InputError
    from templearn.sample import CLASS_NAME

    tomos = picks[star.TOMO_NAME].astype(str)
    if params.run_name is not None and tomos.nunique() > 1:
        raise InputError(f"--run names one run, but the picks hold {tomos.nunique()} "
                         f"tomograms ({', '.join(sorted(tomos.unique()))})")
    classes = sorted(set(picks[CLASS_NAME].astype(str)) | set(labelled))
    unknown = sorted(set(params.objects) - set(classes))
    if unknown:
        raise InputError(f"--object {unknown[0]}=...: no such class in the picks (classes: "
                         f"{', '.join(classes) or 'none'})", config)
    mapping = {c: object_of(params, c) for c in classes}
    copickio.require_objects(root, sorted(set(mapping.values())), config,
                             "map classes with --object CLASS=OBJECT or add the object to "
                             "the config's pickable_objects")
    table = picks.assign(run_=params.run_name or tomos,
                         object_=picks[CLASS_NAME].astype(str).map(mapping))
    oriented = all(c in picks for c in star.ANGLES)
    sets = []
    for (run, name), group in table.groupby(["run_", "object_"], sort=True):
        locations, transforms = interop.to_copick(group, voxel)
        scores = group[star.SCORE].to_numpy(float) if star.SCORE in group else None
        sets.append(copickio.PickSet(str(run), str(name), locations, transforms, scores,
                                     oriented))
    return sets


def label_classes(path: Path, picks: Any) -> dict[int, str]:
    """Class id → name for a label map: classes.json beside it (segment), else the picks'
    tlClassId and tlClassName."""
    from templearn import star
    from templearn.errors import InputError
    from templearn.sample import CLASS_NAME
    from templearn.stages.pick import read_classes
    from templearn.stages.segment import CLASSES

    if (path.parent / CLASSES).exists():
        return read_classes(path.parent / CLASSES)
    if star.CLASS_ID not in picks:
        raise InputError(f"no class names: no {CLASSES} beside it and no {star.CLASS_ID} in "
                         f"the picks", path)
    pairs = picks[[star.CLASS_ID, CLASS_NAME]].dropna().drop_duplicates()
    names = {int(k): str(n) for k, n in pairs.itertuples(index=False)}
    if len(names) != len(pairs):
        raise InputError(f"a {star.CLASS_ID} of the picks has several class names", path)
    return names


def read_labels(path: Path, picks: Any, grid: Any) -> tuple[Any, dict[int, str]]:
    """The label map (uint8, checked to lie on the tomogram's grid) and the names of the
    classes in it."""
    import numpy as np

    from templearn.copickio import SPACING_TOLERANCE
    from templearn.errors import InputError
    from templearn.mrc import read_mrc
    from templearn.stages.mrcgrid import mrc_grid
    from templearn.stages.pick import integer_labels

    shape, voxel = mrc_grid(path)
    if shape[::-1] != tuple(grid.size) or abs(voxel - grid.voxel) > SPACING_TOLERANCE:
        raise InputError(f"grid {shape[::-1]} (x, y, z) at {voxel:g} Å differs from the "
                         f"tomogram's {tuple(grid.size)} at {grid.voxel:g} Å", path)
    data = integer_labels(read_mrc(path).data, path)
    names = label_classes(path, picks)
    present = [int(k) for k in np.unique(data) if k]
    unnamed = [k for k in present if k not in names]
    if unnamed:
        raise InputError(f"label {unnamed[0]} has no class name (classes: "
                         f"{', '.join(f'{k} {n}' for k, n in sorted(names.items()))})", path)
    return data, {k: names[k] for k in present}


def object_label_map(params: Params, root: Any, data: Any, names: dict[int, str],
                     config: Path) -> tuple[Any, dict[str, int]]:
    """The label map in the copick objects' labels (mapped by name), and those labels."""
    import numpy as np

    from templearn import copickio
    from templearn.errors import InputError

    known = copickio.object_labels(root)
    objects = {k: object_of(params, n) for k, n in names.items()}
    unlabelled = sorted(o for o in objects.values() if known[o] is None)
    if unlabelled:
        raise InputError(f"pickable object {unlabelled[0]!r} has no label for a multilabel "
                         f"segmentation", config)
    table = np.zeros(256, np.int64)
    for k, name in objects.items():
        table[k] = known[name]
    return table[data], {o: int(known[o]) for o in sorted(set(objects.values()))}


def write_copick(params: Params, inputs: Inputs, picks: Any, grid: Any, out: Path) -> str:
    """Picks (--tomo-type: the tomogram; --labels: the segmentation) into the copick project,
    everything checked first; copick.json records what went where."""
    import json

    from templearn import copickio
    from templearn.errors import InputError
    from templearn.files import atomic_write_text
    from templearn.mrc import read_mrc

    config = inputs.copick_config
    if config is None:
        raise InputError("--to copick needs --copick-config (the project's JSON)")
    if params.tomo_type is not None and inputs.tomogram is None:
        raise InputError("--tomo-type needs --tomogram (the MRC to store)")
    root = copickio.open_project(config)
    labels, names = (read_labels(inputs.labels, picks, grid) if inputs.labels is not None
                     else (None, {}))
    sets = copick_sets(params, picks, grid.voxel, root, config, tuple(names.values()))
    runs = sorted({s.run for s in sets} | ({params.run_name} if params.run_name else set()))
    for option_name, given in (("--tomo-type", params.tomo_type), ("--labels", labels)):
        if given is not None and len(runs) != 1:
            raise InputError(f"{option_name} stores one run's volume, but the picks go to "
                             f"{len(runs)} runs; give --run")
    volume = read_mrc(inputs.tomogram) if params.tomo_type is not None else None
    segmentation, object_labels = (object_label_map(params, root, labels, names, config)
                                   if labels is not None else (None, {}))
    copickio.write_picks(root, sets, params.user_id, params.session_id, grid.voxel, config)
    if volume is not None:
        copickio.write_tomogram(root, runs[0], grid.voxel, params.tomo_type, volume.data, config)
    if segmentation is not None:
        copickio.write_segmentation(root, runs[0], grid.voxel, params.segmentation_name,
                                    params.user_id, params.session_id, segmentation, config)
    record = {"config": str(config.resolve()), "user_id": params.user_id,
              "session_id": params.session_id, "voxel_size_angstrom": grid.voxel,
              "oriented": bool(sets and sets[0].oriented),
              "picks": [{"run": s.run, "object": s.object, "points": len(s.locations)}
                        for s in sets],
              "tomogram": None if volume is None else {"run": runs[0],
                                                       "tomo_type": params.tomo_type},
              "segmentation": None if segmentation is None else {
                  "run": runs[0], "name": params.segmentation_name, "multilabel": True,
                  "labels": object_labels}}
    atomic_write_text(out / COPICK, json.dumps(record, indent=1) + "\n")
    extras = [what for what, value in (("a tomogram", volume), ("a segmentation", segmentation))
              if value is not None]
    return (f"{len(sets)} copick picks files (user {params.user_id}, session "
            f"{params.session_id}){''.join(f' and {e}' for e in extras)}; {COPICK}")
