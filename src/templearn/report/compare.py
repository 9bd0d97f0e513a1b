"""The trained picker (TL) next to template matching (TM), the baseline.

The evaluations of a run are told apart by the stage that made the picks they score
(`pick` or `match`) and paired by the tomogram picked, so that the report and the summary
of `templearn run` show both pickers' precision, recall and F1 side by side.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from templearn.report.run import RunIndex, StageDir, short_labels

#: How the two pickers are named wherever they are shown.
TL, TM = "trained picker (TL)", "template matching (TM)"
#: Per-class metrics shown for both (metrics.json keys).
SHOWN = ("f1", "precision", "recall")


@dataclass
class Evaluation:
    """One `evaluate` output: whose picks it scored, of which tomogram, its metrics."""

    directory: StageDir
    picks: StageDir | None  # the pick or match output it scored
    tomogram: Path | None
    metrics: dict[str, Any]

    @property
    def matching(self) -> bool:
        return self.picks is not None and self.picks.stage == "match"

    @property
    def picker(self) -> str:
        return TM if self.matching else TL

    def classes(self) -> dict[str, dict[str, Any]]:
        """Metrics per class; template matching's only for the class it searched (its
        `--name`, else the template's stem) when the targets have it."""
        classes = self.metrics.get("classes", {})
        if not self.matching or self.picks is None:
            return classes
        params = self.picks.record.get("params") or {}
        template = (self.picks.record.get("inputs") or {}).get("template") or ""
        searched = params.get("name") or Path(str(template)).stem
        return {searched: classes[searched]} if searched in classes else classes


@dataclass
class Row:
    """One tomogram and class: each picker's metrics (None where it was not evaluated)."""

    tomogram: str
    name: str
    learned: dict[str, Any] | None
    matched: dict[str, Any] | None


def tomogram_of(index: RunIndex, d: StageDir, key: str) -> Path | None:
    """The tomogram file `d`'s input `key` names, else that of the reconstruct stage it
    comes from."""
    path = index.input_path(d, key, "tomogram.mrc")
    if path is not None and path.is_file():
        return path
    source = index.upstream(d, "reconstruct")
    return source.file("tomogram.mrc") if source is not None else None


def read_evaluations(index: RunIndex, notes: list[str]) -> list[Evaluation]:
    """Every evaluation with a readable metrics.json (unreadable ones become notes)."""
    found = []
    for d in index.of_stage("evaluate"):
        path = d.file("metrics.json")
        if path is None:
            continue
        try:
            metrics = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            notes.append(f"{index.relative(path)}: {exc}")
            continue
        picks_file = index.input_path(d, "picks", "picks.star")
        picks = index.owner(picks_file) if picks_file is not None else None
        picked_from = (picks if picks is not None and picks.stage == "match"
                       else index.upstream(picks, "segment") if picks is not None else None)
        tomogram = tomogram_of(index, picked_from, "tomogram") if picked_from else None
        found.append(Evaluation(d, picks, tomogram, metrics))
    return found


def tomogram_labels(index: RunIndex, evaluations: list[Evaluation]) -> list[str]:
    """A short name per evaluation for the tomogram it scored (the same for TL and TM):
    its folder's, unless two tomograms share a folder."""
    tomograms = list(dict.fromkeys(e.tomogram for e in evaluations if e.tomogram))
    by_folder = len({t.parent for t in tomograms}) == len(tomograms)
    keys = [index.relative(e.tomogram.parent if by_folder else e.tomogram) if e.tomogram
            else e.directory.name for e in evaluations]
    distinct = list(dict.fromkeys(keys))
    short = dict(zip(distinct, short_labels(distinct), strict=True))
    return [short[k] for k in keys]


def side_by_side(index: RunIndex, evaluations: list[Evaluation]) -> list[Row]:
    """Each tomogram and class that template matching was evaluated on, with the trained
    picker's metrics of the same tomogram and class."""
    labels = tomogram_labels(index, evaluations)
    learned = {(label, name): entry for label, e in zip(labels, evaluations, strict=True)
               if not e.matching for name, entry in e.classes().items()}
    return [Row(label, name, learned.get((label, name)), entry)
            for label, e in zip(labels, evaluations, strict=True) if e.matching
            for name, entry in e.classes().items()]


def means(rows: list[Row]) -> list[Row]:
    """Per class, unweighted means over the tomograms (where there are several; F1 at
    P = R over those where the curves cross)."""
    by_class: dict[str, list[Row]] = {}
    for row in rows:
        by_class.setdefault(row.name, []).append(row)
    return [Row("mean", name, _mean([r.learned for r in group]),
                _mean([r.matched for r in group]))
            for name, group in by_class.items() if len(group) > 1]


def _mean(entries: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    present = [e for e in entries if e is not None]
    if not present:
        return None
    mean = {}
    for key in (*SHOWN, "f1_at_p_eq_r"):
        values = [e[key] for e in present if e.get(key) is not None]
        mean[key] = statistics.fmean(values) if values else None
    return {**mean, "n_picks": sum(e["n_picks"] for e in present),
            "n_true": sum(e["n_true"] for e in present)}


def summary_lines(run_dir: Path) -> list[str]:
    """Per evaluated tomogram (the folder under picking/) and class, one line per picker:
    counts, precision, recall, F1 with all picks and at P = R."""
    index = RunIndex(run_dir)
    lines = []
    for e in read_evaluations(index, []):
        tomogram = e.directory.path.parent.name
        for name, entry in e.classes().items():
            cross = entry.get("f1_at_p_eq_r")
            lines.append(f"{tomogram} {name}: {e.picker}: {entry['n_picks']} picks, "
                         f"{entry['n_true']} true, precision {entry['precision']:.3f}, "
                         f"recall {entry['recall']:.3f}, F1 {entry['f1']:.3f} (all picks); "
                         f"F1 at P=R {'n/a' if cross is None else f'{cross:.3f}'}")
    return lines
