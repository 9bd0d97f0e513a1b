"""The report's templates section: the density maps (boxes, masses, projections), the
normal-mode analyses and the conformers' RMSD to their template."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from templearn.report.evaluation import Guard
from templearn.report.markup import esc, img, table
from templearn.report.run import RunIndex, short_labels

#: At most this many template maps are drawn.
MAX_MAP_PROJECTIONS = 12


def templates_section(index: RunIndex, guard: Guard) -> str:
    """The section's HTML ('' when the run made no maps, modes or conformers)."""
    return "".join([guard("maps", lambda: _maps(index)),
                    guard("nma", lambda: _normal_modes(index)),
                    guard("conformers", lambda: _conformers(index))])


def _maps(index: RunIndex) -> str:
    from templearn import star
    from templearn.mrc import read_mrc
    from templearn.report.plots import projections_png
    from templearn.stages.mrcgrid import mrc_grid

    rows, images = [], {}
    for d in index.of_stage("density"):
        index = d.file(star.MAPS_INDEX)
        if index is None:
            continue
        maps = star.read_star(index, star.MAPS_BLOCK)
        for _, entry in maps.iterrows():
            name = str(entry.get(star.MOLECULE_NAME, entry.get(star.MAP_FILE, "")))
            mass = entry.get(star.MASS_DA)
            map_path = d.path / str(entry.get(star.MAP_FILE, ""))
            shape = ""
            if map_path.is_file():  # the header gives every map's box
                grid, voxel = mrc_grid(map_path)
                shape = "×".join(str(n) for n in grid[::-1]) + f" @ {voxel:g} Å"
                if len(images) < MAX_MAP_PROJECTIONS:
                    images[name] = read_mrc(map_path).data.sum(axis=0)
            rows.append([d.name, name, None if mass is None else float(mass) / 1000,
                         shape, Path(str(entry.get(star.STRUCTURE_FILE, ""))).name])
    if not rows:
        return ""
    out = ["<h3>Density maps</h3>",
           table(["directory", "molecule", "mass (kDa)", "box (x×y×z)", "structure"],
                 rows, {2})]
    if images:
        out.append(img(projections_png(images), "template maps",
                       "Projections of the maps along z."))
    return "".join(out)

def _normal_modes(index: RunIndex) -> str:
    rows = [[d.name, "; ".join(f"{k}: {_names(v)}" for k, v in index.inputs(d).items()),
             d.result] for d in index.of_stage("nma")]
    return ("<h3>Normal modes</h3>" + table(["directory", "inputs", "result"], rows)
            if rows else "")

def _conformers(index: RunIndex) -> str:
    import pandas as pd

    from templearn.report.plots import histogram_png

    tables = []
    for d in index.of_stage("deform"):
        for path in sorted(d.path.glob("*rmsd.csv")):
            frame = pd.read_csv(path)
            if "rmsd_angstrom" in frame:
                stem = path.stem.removesuffix("rmsd").rstrip("_")
                tables.append((f"{d.name}/{stem}" if stem else d.name, frame))
    if not tables:
        return ""
    labels = short_labels([name for name, _ in tables])
    rows, values, details = [], {}, []
    for label, (_, frame) in zip(labels, tables, strict=True):
        rmsd = frame["rmsd_angstrom"].to_numpy(float)
        values[label] = rmsd
        rows.append([label, len(rmsd), float(rmsd.mean()), float(rmsd.std()),
                     float(rmsd.min()), float(rmsd.max())])
        modes = [c for c in frame.columns if c.startswith("amplitude_mode")][:6]
        per = [[r["file"] if "file" in frame else i, float(r["rmsd_angstrom"]),
                *(float(r[c]) for c in modes)] for i, r in frame.iterrows()]
        details.append(f"<details><summary>{esc(label)}: {len(per)} conformers</summary>"
                       + table(["file", "RMSD (Å)", *modes], per,
                               set(range(1, 2 + len(modes)))) + "</details>\n")
    return ("<h3>Conformers</h3>"
            + table(["template", "conformers", "mean RMSD (Å)", "sd (Å)", "min (Å)",
                     "max (Å)"], rows, {1, 2, 3, 4, 5})
            + img(histogram_png(values, "RMSD to the template (Å)"), "conformer RMSD",
                  "RMSD of the conformers to their template.")
            + "".join(details))


def _names(value: Any) -> str:
    """A recorded input as file names (a list joined by commas)."""
    if isinstance(value, list | tuple):
        return ", ".join(_names(v) for v in value)
    return Path(str(value)).name if value is not None else ""
