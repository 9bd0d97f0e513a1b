"""`build_report`: one self-contained HTML page of a run directory (`templearn run`).

The page needs no JavaScript and loads nothing: figures are embedded as base64 PNG, the
style sheet is inline. Each section shows what exists and is left out when there is
nothing to show; a file that cannot be read becomes a note at the end of the page instead
of failing the report, so a partially failed run still gets one.
"""

from __future__ import annotations

import csv
import datetime
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from templearn.errors import InputError
from templearn.files import atomic_write_text
from templearn.report.compare import tomogram_of
from templearn.report.markup import Raw, esc, img, table
from templearn.report.picking import central_slice
from templearn.report.run import RunIndex, StageDir

#: At most this many tomograms are drawn with their ground-truth labels.
MAX_LABEL_FIGURES = 6
#: Errors that turn a section's figure into a note rather than failing the report.
READ_ERRORS = (InputError, OSError, ValueError, KeyError, TypeError, IndexError,
               AttributeError, yaml.YAMLError)

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px;
       padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
h3 { font-size: 1.05em; margin-top: 1.5em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f0f0f0; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; }
figcaption { font-size: 0.85em; color: #555; }
.done { color: #176317; } .skipped, .not-run { color: #555; }
.failed { color: #b00020; font-weight: bold; }
.note { color: #555; font-size: 0.9em; }
nav a { margin-right: 1em; }
"""


def build_report(run_dir: str | os.PathLike[str],
                 output: str | os.PathLike[str] | None = None) -> Path:
    """Write the report of `run_dir` (default `run_dir/report.html`); its path.

    InputError if `run_dir` is not a directory or holds no stage records."""
    index = RunIndex(run_dir)
    out = Path(output) if output is not None else index.root / "report.html"
    page = Page(index, out.resolve().parent)
    atomic_write_text(out, page.render())
    return out


class Page:
    """The report of one run: its sections, each built from the run index."""

    def __init__(self, index: RunIndex, out_dir: Path) -> None:
        self.index = index
        self.out_dir = out_dir
        self.notes: list[str] = list(index.warnings)

    # -- assembly ---------------------------------------------------------------------------

    def render(self) -> str:
        sections = [("run", "Run", self.section_run),
                    ("templates", "Templates and conformers", self.section_templates),
                    ("sample", "Sample", self.section_sample),
                    ("tilt", "Tilt series", self.section_tilt),
                    ("labels", "Tomograms and ground truth", self.section_labels),
                    ("training", "Training", self.section_training),
                    ("picking", "Segmentation and picks", self.section_picking),
                    ("evaluation", "Evaluation", self.section_evaluation)]
        parts = []
        for anchor, title, build in sections:
            body = self.guard(title, build)
            if body:
                parts.append((anchor, title, body))
        if self.notes:
            notes = "".join(f"<li>{esc(n)}</li>" for n in self.notes)
            parts.append(("notes", "Notes", f"<ul class=note>{notes}</ul>"))
        nav = " ".join(f'<a href="#{a}">{esc(t)}</a>' for a, t, _ in parts)
        body = "".join(f'<section id="{a}">\n<h2>{esc(t)}</h2>\n{b}</section>\n'
                       for a, t, b in parts)
        versions = sorted({str(d.record.get("templearn")) for d in self.index.dirs
                           if d.record.get("templearn")})
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        title = f"templearn run report: {self.index.root.name}"
        return (f"<!DOCTYPE html>\n<html lang=en>\n<head>\n<meta charset=utf-8>\n"
                f"<meta name=viewport content='width=device-width, initial-scale=1'>\n"
                f"<title>{esc(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
                f"<h1>{esc(title)}</h1>\n<p class=note>{esc(self.index.root)}<br>"
                f"generated {now} · templearn {esc(', '.join(versions) or 'unknown')}</p>\n"
                f"<nav>{nav}</nav>\n{body}</body>\n</html>\n")

    def guard(self, what: str, build: Callable[[], str]) -> str:
        """`build()`, or a note and '' if it fails on a file it cannot read."""
        try:
            return build()
        except READ_ERRORS as exc:
            self.notes.append(f"{what}: {exc}")
            return ""

    def link(self, path: Path, text: str) -> Raw:
        href = Path(os.path.relpath(path, self.out_dir)).as_posix()
        return Raw(f'<a href="{esc(href)}">{esc(text)}</a>')

    # -- what was run -----------------------------------------------------------------------

    def section_run(self) -> str:
        root, parts = self.index.root, []
        run_yaml = root / "run.yaml"
        tasks = self.guard("tasks.json", lambda: self.tasks_table(root / "tasks.json"))
        if tasks:
            parts.append(tasks)
        if run_yaml.is_file():
            parts.append(f"<details open><summary>run.yaml (the experiment as run)</summary>"
                         f"<pre>{esc(run_yaml.read_text(errors='replace'))}</pre></details>\n")
        parts.append(self.versions_table())
        rows = [[d.stage, d.name, d.result] for d in self.index.dirs]
        parts.append(f"<details><summary>{len(rows)} stage outputs</summary>"
                     f"{table(['stage', 'directory', 'result'], rows)}</details>\n")
        return "".join(parts)

    def tasks_table(self, path: Path) -> str:
        if not path.is_file():
            return ""
        tasks = json.loads(path.read_text())
        if not isinstance(tasks, list) or not tasks:
            return ""
        rows, failed, counts, total = [], [], {}, 0.0
        for task in tasks:
            status = str(task.get("status", "?"))
            counts[status] = counts.get(status, 0) + 1
            seconds = task.get("seconds")
            total += float(seconds or 0)
            log = self.index.resolve(task.get("log")) if task.get("log") else None
            rows.append([task.get("name", ""), task.get("stage", ""),
                         Raw(f'<span class="{esc(status.replace(" ", "-"))}">{esc(status)}'
                             f"</span>"),
                         None if seconds is None else float(seconds),
                         self.link(log, Path(log).name) if log else ""])
            if status == "failed":
                failed.append((task, log))
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        out = [f"<h3>Tasks</h3><p>{len(tasks)} tasks: {esc(summary)}; "
               f"{total:.0f} s of task time.</p>\n",
               table(["task", "stage", "status", "time (s)", "log"], rows, {3})]
        for task, log in failed:
            tail = ""
            if log is not None and log.is_file():
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
            command = " ".join(str(c) for c in task.get("command", []))
            out.append(f"<details open><summary class=failed>failed: {esc(task.get('name', ''))}"
                       f"</summary><pre>$ {esc(command)}\n{esc(tail)}</pre></details>\n")
        return "".join(out)

    def versions_table(self) -> str:
        found: dict[str, dict[str, set[str]]] = {}
        for d in self.index.dirs:
            path = d.file("versions.yml")
            if path is None:
                continue
            try:
                data = yaml.safe_load(path.read_text()) or {}
            except (OSError, yaml.YAMLError) as exc:
                self.notes.append(f"{self.index.relative(path)}: {exc}")
                continue
            for packages in data.values() if isinstance(data, dict) else []:
                for package, version in (packages or {}).items():
                    found.setdefault(package, {}).setdefault(str(version), set()).add(d.stage)
        if not found:
            return ""
        order = sorted(found, key=lambda p: (p not in ("templearn", "python"), p))
        rows = [[package, ", ".join(sorted(found[package])),
                 ", ".join(sorted(set().union(*found[package].values())))]
                for package in order]
        return "<h3>Versions</h3>" + table(["package", "version", "stages"], rows)

    # -- templates and conformers -----------------------------------------------------------

    def section_templates(self) -> str:
        from templearn.report.templates import templates_section

        return templates_section(self.index, self.guard)

    # -- one sample and one tilt series -----------------------------------------------------

    def focus(self, stage: str) -> tuple[StageDir | None, int]:
        """The output of `stage` behind the first segmented tomogram (else the first one),
        and how many there are."""
        found = self.index.of_stage(stage)
        for segment in self.index.of_stage("segment"):
            source = self.index.upstream(segment, stage)
            if source is not None:
                return source, len(found)
        return (found[0] if found else None), len(found)

    def section_sample(self) -> str:
        from templearn import star
        from templearn.sample import CLASS_NAME

        d, count = self.focus("tetris")
        if d is None:
            return ""
        out = [f"<p>{esc(d.name)} ({count} sample{'s' if count != 1 else ''} in this run): "
               f"{esc(d.result)}</p>"]
        slices = d.file("slices.png")
        if slices is not None:
            out.append(img(slices.read_bytes(), "sample slices",
                           "Central XY, XZ and YZ slices of the sample density, molecules "
                           "outlined."))
        molecules = d.file("molecules.star")
        if molecules is not None:
            frame = star.read_star(molecules)
            keys = [c for c in (star.MOLECULE_NAME, star.MOLECULE_CLASS, CLASS_NAME)
                    if c in frame]
            if keys:
                counts = frame.groupby(keys).size().reset_index(name="n")
                out.append(table([*keys, "molecules"], counts.values.tolist(),
                                 {len(keys)}))
        return "".join(out) if len(out) > 1 else ""

    def section_tilt(self) -> str:
        from templearn.mrc import read_mrc
        from templearn.report.plots import image_png
        from templearn.tiltseries import read_angles

        d, count = self.focus("simulate")
        stack = d.file("tiltseries.mrc") if d is not None else None
        if d is None or stack is None:
            return ""
        volume = read_mrc(stack)
        tlt = d.file("tiltseries.tlt")
        if tlt is not None:
            angles = read_angles(tlt)
            i = int(np.argmin(np.abs(angles)))
            angle, span = float(angles[i]), f"{angles.min():+.0f}° to {angles.max():+.0f}°"
        else:
            i, angle, span = volume.data.shape[0] // 2, None, "angles unknown"
        which = f"tilt {angle:+.1f}°" if angle is not None else f"image {i}"
        title = f"{d.name}: {which}"
        n, ny, nx = volume.data.shape
        caption = (f"{d.name}, {which}: one of {n} images of {nx}×{ny} pixels at "
                   f"{volume.voxel_size:g} Å, {span} "
                   f"({count} tilt series in this run).")
        out = [img(image_png(volume.data[i], title), "tilt image", caption)]
        if d.result:
            out.append(f"<p>{esc(d.result)}</p>")
        return "".join(out)

    # -- tomograms with their labels --------------------------------------------------------

    def section_labels(self) -> str:
        from templearn.mrc import read_mrc
        from templearn.report.plots import labels_overlay_png

        dirs = [d for d in self.index.of_stage("labels") if d.file("labels.mrc")]
        out = []
        for d in dirs[:MAX_LABEL_FIGURES]:
            def figure(d: StageDir = d) -> str:
                tomogram = tomogram_of(self.index, d, "like")
                if tomogram is None:
                    raise InputError("its tomogram (inputs.like) is not in the run", d.path)
                image, z, nz = central_slice(tomogram)
                labels = read_mrc(d.path / "labels.mrc").data
                if labels.shape[1:] != image.shape or labels.shape[0] != nz:
                    raise InputError(f"label map shape {labels.shape} differs from the "
                                     f"tomogram's", d.path / "labels.mrc")
                names, counts = self.target_classes(d.file("targets.star"))
                caption = (f"Central XY slice (z = {z} of {nz}) of "
                           f"{self.index.relative(tomogram)}; labels {d.name}"
                           + (f"; {counts}" if counts else "") + ".")
                return img(labels_overlay_png(image, labels[z], names, self.index.relative(
                    tomogram)), f"labels {d.name}", caption)
            out.append(self.guard(f"labels {d.name}", figure))
        if len(dirs) > MAX_LABEL_FIGURES:
            out.append(f"<p class=note>{len(dirs) - MAX_LABEL_FIGURES} more labelled "
                       f"tomograms not shown.</p>")
        return "".join(out) if any(out) else ""

    def target_classes(self, path: Path | None) -> tuple[dict[int, str], str]:
        """{class id: name} of a targets.star and a line counting its particles."""
        from templearn import star
        from templearn.sample import CLASS_NAME

        if path is None:
            return {}, ""
        frame = star.read_star(path)
        if star.CLASS_ID not in frame or len(frame) == 0:
            return {}, f"{len(frame)} particles"
        names = {}
        for k, group in frame.groupby(star.CLASS_ID):
            names[int(k)] = str(group[CLASS_NAME].iloc[0]) if CLASS_NAME in group \
                else f"class {k}"
        counts = ", ".join(f"{(frame[star.CLASS_ID] == k).sum()} {n}"
                           for k, n in names.items())
        return names, f"{counts} particles"

    # -- training ---------------------------------------------------------------------------

    def section_training(self) -> str:
        out = []
        for d in self.index.of_stage("train"):
            part = [f"<h3>{esc(d.name)}</h3>"]
            if d.result:
                part.append(f"<p>{esc(d.result)}</p>")
            curves = d.file("training_curves.png")
            if curves is not None:
                part.append(img(curves.read_bytes(), f"training curves {d.name}",
                                "Loss (left) and validation voxel F1 per class (right) by "
                                "epoch."))
            log = d.file("training_log.csv")
            if log is not None:
                with log.open(newline="") as handle:
                    rows = list(csv.DictReader(handle))
                if rows:
                    columns = list(rows[0])
                    shown = rows[-5:]
                    part.append(f"<p>{len(rows)} epochs; last {len(shown)}:</p>"
                                + table(columns, [[_number(r[c]) for c in columns]
                                                  for r in shown],
                                        set(range(len(columns)))))
            if len(part) > 1:
                out.append("".join(part))
        return "".join(out)

    # -- segmentation, picks and evaluation -------------------------------------------------

    def section_picking(self) -> str:
        from templearn.report.picking import picking_section

        return picking_section(self.index, self.guard)

    def section_evaluation(self) -> str:
        from templearn.report.evaluation import evaluation_section

        return evaluation_section(self.index, self.notes, self.guard)


def _number(text: str) -> Any:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return text
    return int(value) if value.is_integer() and "." not in text else value
