"""Stage `evaluate`: picks and ground-truth targets → precision, recall and F1 per class
(metrics.json) and their precision-recall curves (pr_curve.png)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from templearn.stages.base import Record, Stage, StageParams, option

#: Files in the output directory.
METRICS, CURVE = "metrics.json", "pr_curve.png"
#: Thresholds that can be swept (`templearn.evaluate.SWEEPS`).
SWEEPS = ("size", "score")
#: Metric sets: ours alone, or ours and the CZII challenge's.
METRIC_SETS = ("f1", "czii")


@dataclass(frozen=True)
class Inputs(Record):
    picks: Path = option(help="picks.star (templearn pick).", argument=True)
    targets: Path = option(help="targets.star (templearn labels) or any particle STAR with "
                                "rlnCoordinateX/Y/Z and tlClassName.", argument=True)
    mask: Path | None = option(None, "Mask (MRC, tomogram grid): evaluate only where it is "
                                     "> 0 (cytosol mask).")
    copick_config: Path | None = option(None, "czii: copick project config (JSON) whose "
                                              "pickable objects' radius (Å) sizes the classes "
                                              "(--radius overrides).")


@dataclass(frozen=True)
class Params(StageParams):
    distance: float = option(10.0, "Match distance (voxels of the tomogram).", positive=True)
    sweep: str = option("size", "Threshold to sweep, one of: size (cluster size), score.",
                        choices=SWEEPS)
    max_thresholds: int = option(200, "At most this many sweep thresholds.", minimum=2)
    metric: str = option("f1", "Metrics: f1 (ours), or czii (also the CZII challenge's "
                               "F-beta, needs --radius).", choices=METRIC_SETS)
    radius: tuple[str, ...] = option((), "czii: particle radius in voxels, VOX or NAME=VOX "
                                         "(repeatable; or from --copick-config).", repeat=True)
    fraction: float = option(0.5, "czii: match within this fraction of the class's radius.",
                             positive=True)
    beta: float = option(4.0, "czii: β of the F-beta (1 gives F1).", positive=True)
    weight: tuple[str, ...] = option((), "czii: class weight NAME=W in the mean (default 1; "
                                         "repeatable).", repeat=True)

    def check(self) -> None:
        from templearn.stages.pick import parse_radii

        parse_radii(self.radius)
        parse_weights(self.weight)


def parse_weights(specs: tuple[str, ...]) -> dict[str, float]:
    """--weight NAME=W values → {name: weight ≥ 0}; InputError naming --weight otherwise."""
    from templearn.errors import InputError

    weights = {}
    for spec in specs:
        name, _, value = spec.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not name or not 0 <= number < float("inf"):
            raise InputError(f"--weight expects NAME=W (W >= 0), got {spec!r}")
        weights[name] = number
    return weights


def czii_radii(params: Params, inputs: Inputs, classes: list[str]) -> dict[str, float]:
    """Radius (voxels) per class: --radius NAME=VOX, else the copick object of that name (or
    of the name as copick writes it) in Å over the picks' voxel size, else --radius VOX."""
    from templearn import copickio, star
    from templearn.errors import InputError
    from templearn.stages.pick import parse_radii

    default, radii = parse_radii(params.radius)
    config = inputs.copick_config
    if config is not None:
        angstrom = copickio.object_radii(copickio.open_project(config))
        grid = star.general_grid(star.read_blocks(inputs.picks))
        for name in sorted(set(classes) - set(radii)):
            found = angstrom.get(name, angstrom.get(copickio.sanitized(name)))
            if found is None:
                continue
            if grid is None:
                raise InputError("radii in Å from --copick-config need the tomogram's voxel "
                                 "size (data_general, as templearn pick writes it)", inputs.picks)
            radii[name] = found / grid[1]
    if default is not None:
        radii = {n: radii.get(n, default) for n in classes}
    return radii


def read_targets(path: Path, picks_path: Path, picks: Any) -> Any:
    """The ground truth as a picks table: ours, or RELION 5/4 particles placed on the
    picks' tomogram grid (their data_general) with the file's tilt-series pixel size."""
    from templearn import interop, star
    from templearn.errors import InputError, about
    from templearn.sample import CLASS_NAME

    blocks = star.read_blocks(path)
    particles, optics = blocks.get(star.PARTICLES_BLOCK), blocks.get(interop.OPTICS_BLOCK)
    if particles is None or not interop.is_relion(particles, optics):
        return star.read_star(path, required=star.COORDINATES)
    recorded = star.general_grid(star.read_blocks(picks_path))
    if recorded is None:
        raise InputError("RELION targets need the picks' tomogram size and voxel size "
                         "(data_general), which this file lacks; convert the targets with "
                         "templearn export --from relion5 --tomogram TOMO.mrc", picks_path)
    classes = picks[CLASS_NAME].astype(str).unique() if CLASS_NAME in picks else []
    if CLASS_NAME not in particles and len(classes) != 1:
        raise InputError(f"no {CLASS_NAME} and the picks have {len(classes)} classes; convert "
                         f"with templearn export --from relion5 --class NAME", path)
    grid = interop.Grid(*recorded)
    with about(path):
        return interop.from_relion(particles, optics, grid, str(classes[0]) if len(classes)
                                   else path.stem, path.stem)


def size_of(path: Path) -> tuple[int, int, int] | None:
    """Tomogram size (x, y, z) from a STAR file's general block, None if it has none."""
    import starfile

    from templearn import star
    from templearn.errors import InputError

    try:
        blocks = starfile.read(path, always_dict=True)
    except Exception as exc:  # starfile raises many kinds on malformed files
        raise InputError(f"not a readable STAR file ({exc})", path) from None
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


def write(params: Params, inputs: Inputs, out: Path) -> str:
    """metrics.json (per class: counts, P/R/F1, the sweep) and pr_curve.png."""
    import json

    from templearn import star
    from templearn.errors import InputError, about
    from templearn.evaluate import evaluate_picks
    from templearn.files import atomic_write_text
    from templearn.mrc import read_mrc
    from templearn.progress import log
    from templearn.report.plots import plot_pr_curves
    from templearn.stages.mrcgrid import mrc_grid

    if params.metric == "czii" and not params.radius and inputs.copick_config is None:
        raise InputError("--metric czii needs --radius (VOX or NAME=VOX) or --copick-config")
    if params.metric != "czii" and inputs.copick_config is not None:
        raise InputError("--copick-config is for --metric czii")
    picks_table = star.read_star(inputs.picks, required=star.COORDINATES)
    targets_table = read_targets(inputs.targets, inputs.picks, picks_table)
    if len(targets_table) == 0:
        raise InputError("no particles", inputs.targets)
    shapes = {path: size_of(path) for path in (inputs.picks, inputs.targets)}
    known = {p: s for p, s in shapes.items() if s is not None}
    if len(known) == 2 and shapes[inputs.picks] != shapes[inputs.targets]:
        raise InputError(f"tomogram size {shapes[inputs.picks]} (x, y, z) differs from "
                         f"{shapes[inputs.targets]} in {inputs.targets}", inputs.picks)
    mask_map = None
    if inputs.mask is not None:
        mask_shape, _ = mrc_grid(inputs.mask)
        size = next(iter(known.values()), None)
        if size is not None and mask_shape != size[::-1]:
            raise InputError(f"shape {mask_shape[::-1]} (x, y, z) differs from the "
                             f"tomogram size {size}", inputs.mask)
        mask_map = read_mrc(inputs.mask).data
    with about(inputs.targets):
        metrics = evaluate_picks(picks_table, targets_table, params.distance, params.sweep,
                                 mask_map, params.max_thresholds)
    if params.metric == "czii":
        from templearn.evaluate import czii_score
        from templearn.sample import CLASS_NAME

        names = targets_table[CLASS_NAME].astype(str) if CLASS_NAME in targets_table else []
        radii = czii_radii(params, inputs, sorted(set(names)))
        with about(inputs.targets):
            metrics["czii"] = czii_score(picks_table, targets_table, radii,
                                         parse_weights(params.weight), params.fraction,
                                         params.beta)
    metrics.update({"picks": str(inputs.picks), "targets": str(inputs.targets),
                    "mask": None if inputs.mask is None else str(inputs.mask)})
    plot_pr_curves(metrics, out / CURVE)
    atomic_write_text(out / METRICS, json.dumps(metrics, indent=1) + "\n")
    for name, entry in metrics["classes"].items():
        cross = entry["f1_at_p_eq_r"]
        log(f"evaluate: {name}: {entry['n_picks']} picks, {entry['n_true']} true, "
            f"F1 {entry['f1']:.3f}, best F1 {entry['best_f1']:.3f} "
            f"({params.sweep} >= {entry['best_threshold']}), F1 at P=R "
            f"{'n/a' if cross is None else f'{cross:.3f}'}")
    best = ", ".join(f"{name} F1 {entry['f1']:.3f} (best {entry['best_f1']:.3f})"
                     for name, entry in metrics["classes"].items())
    overall = (f"; all classes F1 {metrics['overall']['f1']:.3f} (mean "
               f"{metrics['mean_f1']:.3f})" if len(metrics["classes"]) > 1 else "")
    czii = (f", CZII F{params.beta:g} {metrics['czii']['score']:.3f}"
            if "czii" in metrics else "")
    return f"{best or 'no classes'}{overall}{czii} in {METRICS}"


STAGE = Stage(
    "evaluate", "Match picks to targets one-to-one per class within a distance: precision, "
    "recall, F1 and a threshold sweep (metrics.json, pr_curve.png).", Params, Inputs, write,
    packages=("numpy", "scipy", "matplotlib", "starfile"), default_output="evaluation")


#: `run(params, inputs, out_dir)`: the stage from Python, as the CLI runs it.
run = STAGE.run
