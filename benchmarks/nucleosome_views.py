"""Template-matching score of a nucleosome against its view (Extended Data Fig. 8 of the
Template Learning paper): the angle between the disc axis and the beam.

    python benchmarks/nucleosome_views.py [--structure PDB] [--grid 8] [--seeds 4]
                                          [--figure nucleosome_views.png]

A nucleosome map at 8 Å (`templearn.density`, 16 Å Gaussian resolution) is the template;
its disc axis is the smallest principal axis of the atoms (weighted by atomic number,
about their centre of mass, which is the map's centre). For each seed, a grid × grid
layer of nucleosomes, one `SPACING` apart (isolated: more than two mask radii, so no
neighbour enters another's mask), each turned so that its axis makes a chosen angle with
the beam (view angles stratified over 0–90°, random azimuth and spin), is simulated with
the fast backend
(`templearn.simulate.fast`: CTF at -3 µm, ±60° in 2° steps, 100 e⁻/Å², Poisson noise)
and reconstructed by WBP (`templearn.reconstruct`). At each nucleosome's centre voxel
the score `templearn match` computes (FLCF with the ±60° wedge-weighted, inverted map
under its spherical mask) is read for the nucleosome's TRUE rotation, so the angular
search plays no part. Prints the mean score per 15° bin of view angle and writes the
scatter plot with the binned means.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "structures"
VOXEL, RESOLUTION = 8.0, 16.0  # Å
SPACING = 24  # voxels between neighbouring nucleosomes (more than two mask radii)
THICKNESS = 32  # voxels of the sample along the beam
TILT = 60.0  # degrees: the ±60° tilt series
BIN = 15.0  # degrees per bin of view angle


class TemplateMap:
    """The nucleosome's density map at VOXEL, its disc axis and mass."""

    def __init__(self, path: Path) -> None:
        from templearn.density import density_map
        from templearn.structure import read_structure

        model = read_structure(path)
        self.volume = density_map(model.coords, model.atomic_numbers, VOXEL, RESOLUTION,
                                  name=model.name)
        self.axis = disc_axis(model.coords, model.atomic_numbers.astype(float))
        self.mass_da = model.mass_da()


def disc_axis(coords: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Unit vector (x y z) of the smallest principal axis of weighted points."""
    centred = coords - np.average(coords, axis=0, weights=weights)
    moments = (centred * weights[:, None]).T @ centred  # second moments: the spread
    return np.linalg.eigh(moments)[1][:, 0]  # eigenvalues ascending: the thinnest direction


def rotations_for_views(axis: np.ndarray, views_deg: np.ndarray, rng: np.random.Generator
                        ) -> np.ndarray:
    """Rotations (n, 3, 3) taking `axis` to the views' angles from z (the beam), with random
    spin about the axis and random azimuth about z."""
    from scipy.spatial.transform import Rotation

    align = Rotation.align_vectors([[0.0, 0.0, 1.0]], [axis])[0]  # axis → z
    n = len(views_deg)
    turn = Rotation.from_euler("ZYZ", np.stack([rng.uniform(0, 360, n), views_deg,
                                                rng.uniform(0, 360, n)], axis=1), degrees=True)
    return (turn * align).as_matrix()


def simulate_layer(template_map: TemplateMap, rotations: np.ndarray, grid: int, seed: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Reconstructed tomogram (`[z, y, x]`) of a grid × grid layer of nucleosomes with these
    rotations, and their centre voxels (n, 3; z y x)."""
    from templearn import star
    from templearn.acquisition import Acquisition
    from templearn.geometry import matrix_to_relion
    from templearn.reconstruct import ReconstructParams, reconstruct_tomogram
    from templearn.sample import Grid
    from templearn.simulate.fast import simulate_fast
    from templearn.simulate.params import FastParams

    side = grid * SPACING
    sample = Grid((THICKNESS, side, side), VOXEL)
    iy, ix = np.divmod(np.arange(grid * grid), grid)
    zyx = np.stack([np.full(grid * grid, THICKNESS // 2), SPACING // 2 + iy * SPACING,
                    SPACING // 2 + ix * SPACING], axis=1)
    angles = matrix_to_relion(rotations)
    table = pd.DataFrame({
        star.MOLECULE_NAME: "nucleosome", star.MOLECULE_CLASS: "template",
        "tlClassName": "nucleosome", star.CLASS_ID: 1, star.MAP_FILE: "nucleosome",
        star.MASS_DA: template_map.mass_da,
        **{c: zyx[:, 2 - k] * VOXEL for k, c in enumerate(star.POSITION_ANGST)},
        **{c: angles[:, k] for k, c in enumerate(star.ANGLES)}})
    acquisition = Acquisition(tilt_min=-TILT, tilt_max=TILT)
    series = simulate_fast(table, sample, {"nucleosome": template_map.volume}, acquisition,
                           FastParams(seed=seed))
    tomogram = reconstruct_tomogram(series, ReconstructParams(thickness=THICKNESS))
    return tomogram.data, zyx


def true_scores(tomogram: np.ndarray, template: np.ndarray, rotations: np.ndarray,
                zyx: np.ndarray) -> np.ndarray:
    """`templearn match`'s score of each rotation at its own centre voxel."""
    import jax
    import jax.numpy as jnp

    from templearn.match import Search, rotation_scorer, search_mask

    search = Search(rotations, (-TILT, TILT))
    score, _ = rotation_scorer(tomogram, template, search_mask(tomogram, template, search),
                               search)
    at = jax.jit(lambda m, z, y, x: score(m)[z, y, x])
    zyx_matrices = jnp.asarray(rotations[:, ::-1, ::-1], jnp.float32)  # [z, y, x] indices
    return np.array([float(at(m, *map(int, p))) for m, p in zip(zyx_matrices, zyx,
                                                                  strict=True)])


def binned(views: np.ndarray, scores: np.ndarray
           ) -> list[tuple[float, float, float, float, int]]:
    """(low, high, mean score, its standard error, count) per BIN-degree bin of view angle
    over 0–90° (bins with at least two nucleosomes)."""
    edges = np.arange(0.0, 90.0 + BIN, BIN)
    which = np.clip(np.digitize(views, edges) - 1, 0, len(edges) - 2)
    rows = []
    for b in range(len(edges) - 1):
        inside = scores[which == b]
        if len(inside) > 1:
            rows.append((edges[b], edges[b + 1], float(inside.mean()),
                         float(inside.std(ddof=1) / np.sqrt(len(inside))), len(inside)))
    return rows


def plot(views: np.ndarray, scores: np.ndarray, table: list, path: Path) -> None:
    """Scatter of score against view angle with the binned means."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    axes.scatter(views, scores, s=10, alpha=0.5, label="nucleosomes")
    axes.errorbar([(lo + hi) / 2 for lo, hi, *_ in table], [row[2] for row in table],
                  [row[3] for row in table], fmt="o-", color="black", capsize=3,
                  label=f"mean per {BIN:g}° (± s.e.)")
    axes.set_xlabel("view angle, disc axis to beam (°): 0 top view, 90 side view")
    axes.set_ylabel("TM score at the true orientation")
    axes.set_xlim(0, 90)
    axes.legend(frameon=False)
    figure.tight_layout()
    figure.savefig(path, dpi=150)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--structure", type=Path,
                        default=DATA / "nucleosome" / "2pyo_centered.pdb")
    parser.add_argument("--grid", type=int, default=8, help="nucleosomes per row and column")
    parser.add_argument("--seeds", type=int, default=4, help="simulated tomograms")
    parser.add_argument("--figure", type=Path, default=Path("nucleosome_views.png"))
    args = parser.parse_args()
    from templearn.match import template_radius

    start = time.perf_counter()
    nucleosome = TemplateMap(args.structure)
    template = -nucleosome.volume.data  # particles are dark in the tomogram
    radius = template_radius(template)
    if 2 * radius >= SPACING:  # a neighbour's density would enter the mask
        raise SystemExit(f"nucleosomes {SPACING} voxels apart overlap a {radius:.1f}-voxel mask")
    n = args.grid * args.grid
    views, scores = [], []
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        wanted = (np.arange(n) + rng.uniform(size=n)) * 90.0 / n  # stratified over 0–90°
        rotations = rotations_for_views(nucleosome.axis, rng.permutation(wanted), rng)
        tomogram, zyx = simulate_layer(nucleosome, rotations, args.grid, seed)
        turned = rotations @ nucleosome.axis
        views.append(np.degrees(np.arccos(np.abs(turned[:, 2]))))
        scores.append(true_scores(tomogram, template, rotations, zyx))
    view, score = np.concatenate(views), np.concatenate(scores)
    table = binned(view, score)
    print(f"{args.structure.name}: map {template.shape[0]}³ at {VOXEL:g} Å, disc axis "
          f"{np.round(nucleosome.axis, 3).tolist()} (x y z); {len(view)} nucleosomes, "
          f"±{TILT:g}° wedge; {time.perf_counter() - start:.0f} s")
    print("| view angle (°) | mean TM score | s.e. | n |")
    print("|---|---|---|---|")
    for low, high, mean, error, count in table:
        print(f"| {low:.0f}–{high:.0f} | {mean:.3f} | {error:.3f} | {count} |")
    plot(view, score, table, args.figure)
    print(f"figure: {args.figure}")


if __name__ == "__main__":
    main()
