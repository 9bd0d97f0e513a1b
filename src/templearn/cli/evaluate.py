"""`templearn evaluate`: precision, recall and F1 of picks against ground-truth targets."""

from __future__ import annotations

from pathlib import Path

import typer


def command(
    picks: Path = typer.Argument(..., help="picks.star (templearn pick)."),
    targets: Path = typer.Argument(..., help="targets.star (templearn labels) or any particle "
                                             "STAR with rlnCoordinateX/Y/Z and tlClassName."),
    distance: float = typer.Option(10.0, help="Match distance (voxels of the tomogram)."),
    sweep: str = typer.Option("size", help="Threshold to sweep: size (cluster size) or score."),
    mask: Path | None = typer.Option(
        None, help="Mask (MRC, tomogram grid): evaluate only where it is > 0 (cytosol mask)."),
    max_thresholds: int = typer.Option(200, help="At most this many sweep thresholds."),
    output_dir: Path = typer.Option(Path("evaluation"), "--output-dir", "-o"),
) -> None:
    """Match picks to targets one-to-one per class; metrics.json and pr_curve.png."""
    import json

    from templearn import star
    from templearn.errors import InputError, about
    from templearn.evaluate import SWEEPS, evaluate_picks
    from templearn.files import atomic_write_text
    from templearn.mrc import read_mrc
    from templearn.progress import log
    from templearn.provenance import write_provenance
    from templearn.report.plots import plot_pr_curves

    if sweep not in SWEEPS:
        raise InputError(f"--sweep must be one of {', '.join(SWEEPS)}, got {sweep!r}")
    if not distance > 0:
        raise InputError(f"--distance must be positive, got {distance}")
    if max_thresholds < 2:
        raise InputError(f"--max-thresholds must be at least 2, got {max_thresholds}")
    picks_table = star.read_star(picks, required=star.COORDINATES)
    targets_table = star.read_star(targets, required=star.COORDINATES)
    if len(targets_table) == 0:
        raise InputError("no particles", targets)
    shapes = {path: _size_of(path) for path in (picks, targets)}
    known = {p: s for p, s in shapes.items() if s is not None}
    if len(known) == 2 and shapes[picks] != shapes[targets]:
        raise InputError(f"tomogram size {shapes[picks]} (x, y, z) differs from "
                         f"{shapes[targets]} in {targets}", picks)
    mask_map = None
    if mask is not None:
        mask_map = read_mrc(mask).data
        size = next(iter(known.values()), None)
        if size is not None and mask_map.shape != size[::-1]:
            raise InputError(f"shape {mask_map.shape[::-1]} (x, y, z) differs from the "
                             f"tomogram size {size}", mask)
    with about(targets):
        metrics = evaluate_picks(picks_table, targets_table, distance, sweep, mask_map,
                                 max_thresholds)
    metrics.update({"picks": str(picks), "targets": str(targets),
                    "mask": None if mask is None else str(mask)})
    plot_pr_curves(metrics, output_dir / "pr_curve.png")
    atomic_write_text(output_dir / "metrics.json", json.dumps(metrics, indent=1) + "\n")
    write_provenance(output_dir, "evaluate", {
        "picks": picks, "targets": targets, "distance": distance, "sweep": sweep,
        "mask": mask, "max_thresholds": max_thresholds},
        packages=("numpy", "scipy", "matplotlib", "starfile"))
    for name, entry in metrics["classes"].items():
        cross = entry["f1_at_p_eq_r"]
        log(f"evaluate: {name}: {entry['n_picks']} picks, {entry['n_true']} true, "
            f"F1 {entry['f1']:.3f}, best F1 {entry['best_f1']:.3f} "
            f"({sweep} >= {entry['best_threshold']}), F1 at P=R "
            f"{'n/a' if cross is None else f'{cross:.3f}'}")


def _size_of(path: Path) -> tuple[int, int, int] | None:
    """Tomogram size (x, y, z) from a STAR file's general block, None if it has none."""
    import starfile

    from templearn import star
    from templearn.errors import InputError

    blocks = starfile.read(path, always_dict=True)
    general = blocks.get(star.GENERAL_BLOCK)
    if general is None:
        return None
    if isinstance(general, dict):
        general = {k: [v] for k, v in general.items()}
    try:
        return tuple(int(general[c][0]) for c in star.SIZE)  # type: ignore[return-value]
    except (KeyError, ValueError, TypeError, IndexError):
        raise InputError(f"data_{star.GENERAL_BLOCK} lacks {', '.join(star.SIZE)}",
                         path) from None
