"""Which views of the nucleosome each picker finds: Template Learning against template
matching, by the true orientation of the particles they pick (the paper's Fig. 7: template
matching favours side views because of the missing wedge; Template Learning does not).

For every held-out tomogram of a finished `templearn run params/nucleosome.yaml
params/with-match.yaml` run, the picker's picks (`picking/<name>/picks`) and the template
matches (`picking/<name>/match`) are matched one-to-one to the true particles as `templearn
evaluate` does (same distance). Each true particle's view angle is the angle between its
disc axis and the beam (0°: top view, the disc seen face on; 90°: side view), where the disc
axis is the smallest principal axis of its model's atoms (`nucleosome_views.disc_axis`)
turned by its RELION angles. The table gives, per 15° bin, the true particles and the
recall of each method; a uniform distribution of orientations puts 1 − cos θ of the
particles below θ.

    python benchmarks/nucleosome_orientations.py RUN_DIR [--at-pr] [--structures DIR] [--png FILE]
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import yaml
from nucleosome_views import disc_axis  # benchmarks/ is on the path of its scripts

from templearn import star
from templearn.evaluate import match_picks
from templearn.geometry import relion_to_matrix
from templearn.structure import read_structure, structure_stem

STRUCTURES = Path(__file__).resolve().parents[2] / "shared" / "data" / "structures" / "nucleosome"
BINS = np.arange(0, 91, 15)


def view_angles(angles: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """Angle (degrees, 0–90) between each particle's disc axis (model frame, (n, 3)) turned
    by its RELION angles (n, 3) and the beam (z)."""
    turned = np.einsum("nij,nj->ni", relion_to_matrix(angles).reshape(-1, 3, 3), axes)
    return np.degrees(np.arccos(np.clip(np.abs(turned[:, 2]), 0.0, 1.0)))


def model_axes(structures: Path) -> dict[str, np.ndarray]:
    """Disc axis of every model file in `structures`, by its stem."""
    models = {structure_stem(p): read_structure(p) for p in sorted(structures.iterdir())
              if structure_stem(p) != p.name}
    return {stem: disc_axis(model.coords, model.atomic_numbers.astype(float))
            for stem, model in models.items()}


#: Method → (picks folder, evaluation folder) under picking/<tomogram>/.
METHODS = {"TL": ("picks", "evaluation"), "TM": ("match", "match-evaluation")}
#: `evaluate --sweep` → the picks' column it ranks by.
SWEEP_COLUMNS = {"size": star.CLUSTER_SIZE, "score": star.SCORE}


def tomogram_views(folder: Path, axes: dict[str, np.ndarray],
                   at_pr: bool = False) -> dict[str, np.ndarray] | None:
    """View angle of every true particle and which of them each evaluated method found
    (matched with the distance its `templearn evaluate` used); `at_pr`: only each method's
    best picks (by what its evaluation swept), as many as there are true particles."""
    found: dict[str, np.ndarray] = {}
    for method, (picks_dir, evaluation_dir) in METHODS.items():
        record = folder / evaluation_dir / "evaluate.params.yml"
        if not record.is_file():
            continue
        evaluated = yaml.safe_load(record.read_text())
        if "truth" not in found:
            truth = star.read_star(evaluated["inputs"]["targets"])
            stems = [re.sub(r"_conf\d+$", "", name) for name in truth[star.MOLECULE_NAME]]
            found["truth"] = view_angles(truth[list(star.ANGLES)].to_numpy(float),
                                         np.stack([axes[s] for s in stems]))
            true_xyz = truth[list(star.COORDINATES)].to_numpy(float)
        picks = star.read_star(folder / picks_dir / "picks.star")
        if at_pr:  # the method's best picks, as many as true particles: precision = recall
            ranked = SWEEP_COLUMNS[evaluated["params"]["sweep"]]
            picks = picks.nlargest(len(found["truth"]), ranked)
        _, matched = match_picks(picks[list(star.COORDINATES)].to_numpy(float), true_xyz,
                                 float(evaluated["params"]["distance"]))
        hit = np.zeros(len(found["truth"]), bool)
        hit[matched] = True
        found[method] = hit
    return found or None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--structures", type=Path, default=STRUCTURES)
    parser.add_argument("--png", type=Path, default=None)
    parser.add_argument("--at-pr", action="store_true",
                        help="keep each method's best picks, as many as true particles")
    args = parser.parse_args()
    axes = model_axes(args.structures)
    tomograms = {f.name: v for f in sorted((args.run / "picking").iterdir())
                 if (v := tomogram_views(f, axes, args.at_pr)) is not None}
    if not tomograms:
        raise SystemExit(f"{args.run}: no tomogram with picks, matches and ground truth")
    views = np.concatenate([v["truth"] for v in tomograms.values()])
    methods = [m for m in METHODS if all(m in v for v in tomograms.values())]
    hits = {m: np.concatenate([v[m] for v in tomograms.values()]) for m in methods}
    print(f"{len(views)} true nucleosomes in {', '.join(tomograms)}")
    print("view angle | true | uniform share | " + " | ".join(f"{m} recall" for m in hits))
    index = np.clip(np.digitize(views, BINS) - 1, 0, len(BINS) - 2)
    for b in range(len(BINS) - 1):
        inside = index == b
        uniform = np.cos(np.radians(BINS[b])) - np.cos(np.radians(BINS[b + 1]))
        recalls = [f"{hits[m][inside].mean():.2f}" if inside.any() else "–" for m in hits]
        print(f"{BINS[b]:>3}–{BINS[b + 1]:<3}° | {inside.sum():>4} | {uniform:.2f} | "
              + " | ".join(recalls))
    for m, hit in hits.items():
        print(f"{m}: recall {hit.mean():.3f}, mean view angle of found {views[hit].mean():.1f}° "
              f"(all true: {views.mean():.1f}°; uniform: 57.3°)")
    if args.png:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.5))
        names = {"TL": "Template Learning", "TM": "template matching"}
        ax.hist([views, *(views[hit] for hit in hits.values())], bins=BINS,
                label=["true", *(names[m] for m in hits)])
        ax.set_xlabel("view angle: disc axis to beam (°)")
        ax.set_ylabel("particles")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.png, dpi=120)


if __name__ == "__main__":
    main()
