"""The report's segmentation section: for each segmented tomogram, its central slice with
the score map, the picks and the true particles near that slice."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from templearn.errors import InputError
from templearn.report.compare import tomogram_of
from templearn.report.evaluation import Guard
from templearn.report.markup import esc, img
from templearn.report.run import RunIndex, StageDir


def picking_section(index: RunIndex, guard: Guard) -> str:
    """The section's HTML ('' when nothing was segmented)."""
    return "".join(guard(f"segmentation {d.name}", lambda d=d: _figure(index, d))
                   for d in index.of_stage("segment"))


def central_slice(path: Path) -> tuple[np.ndarray, int, int]:
    """The central XY slice of a map, its z index and the number of z slices."""
    from templearn.mrc import read_mrc

    data = read_mrc(path).data
    z = data.shape[0] // 2
    return np.asarray(data[z], dtype=np.float32), z, data.shape[0]


def read_classes(path: Path | None) -> dict[int, str]:
    """classes.json ({"0": "background", "1": "ribosome"}) as {id: name} for ids ≥ 1."""
    if path is None or not path.exists():
        return {}
    raw = json.loads(path.read_text())
    return {int(k): str(v) for k, v in raw.items() if int(k) > 0}


def _picks_of(index: RunIndex, segment: StageDir) -> StageDir | None:
    found = index.downstream(segment, "pick")
    return next((p for p in found if p.file("picks.star")), None)


def _targets_of(index: RunIndex, segment: StageDir, picks: StageDir | None,
               tomogram: Path | None) -> Path | None:
    """The targets.star behind the picks' evaluation, else that of a label map made
    for the same tomogram."""
    if picks is not None:
        for evaluation in index.downstream(picks, "evaluate"):
            path = index.input_path(evaluation, "targets", "targets.star")
            if path is not None and path.is_file():
                return path
    for labels in index.of_stage("labels"):
        if tomogram is not None and tomogram_of(index, labels, "like") == tomogram:
            return labels.file("targets.star")
    return None


def _figure(index: RunIndex, d: StageDir) -> str:
    from templearn import star
    from templearn.mrc import read_mrc
    from templearn.report.plots import picks_png
    from templearn.sample import CLASS_NAME

    tomogram = tomogram_of(index, d, "tomogram")
    if tomogram is None:
        raise InputError("its tomogram (inputs.tomogram) is not in the run", d.path)
    image, z, nz = central_slice(tomogram)
    names = read_classes(d.file("classes.json"))
    ids = {n: k for k, n in names.items()}
    score = None
    for path in sorted(d.path.glob("scores_*.mrc")):
        data = read_mrc(path).data
        if data.shape[1:] == image.shape:
            score = data[z] if score is None else np.maximum(score, data[z])
    slab = max(3, nz // 20)

    def near(path: Path | None) -> list[tuple[float, float, int]] | None:
        if path is None:
            return None
        frame = star.read_star(path, required=star.COORDINATES)
        keep = []
        for _, row in frame.iterrows():
            name = str(row[CLASS_NAME]) if CLASS_NAME in frame else None
            k = int(row[star.CLASS_ID]) if star.CLASS_ID in frame else 1
            if name is not None:
                if name not in ids:
                    ids[name] = max([*ids.values(), 0]) + 1
                    names[ids[name]] = name
                k = ids[name]
            if abs(float(row[star.COORDINATES[2]]) - z) <= slab:
                keep.append((float(row[star.COORDINATES[0]]),
                             float(row[star.COORDINATES[1]]), k))
        counts.append(f"{len(frame)} {path.name.removesuffix('.star')}")
        return keep

    counts: list[str] = []
    pick_dir = _picks_of(index, d)
    picks = near(pick_dir.file("picks.star") if pick_dir else None) or []
    targets = _targets_of(index, d, pick_dir, tomogram)
    truth = near(targets)
    caption = (f"Central XY slice (z = {z} of {nz}) of {index.relative(tomogram)}, "
               f"segmented in {d.name}; circles: picks"
               + ("" if pick_dir is None else f" ({pick_dir.name})")
               + (", crosses: true particles" if truth is not None else "")
               + f", within ±{slab} slices. " + "; ".join(counts))
    return (f"<h3>{esc(index.relative(tomogram))}</h3>"
            + img(picks_png(image, score, picks, truth, names,
                            index.relative(tomogram)),
                  f"segmentation {d.name}", caption))
