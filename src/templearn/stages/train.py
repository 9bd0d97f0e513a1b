"""Stage `train`: labelled tomograms → a trained 3D U-Net (`model/`), its training log and
curves, checkpoints and the validation tomograms' pick-level metrics.

The stage is resumable: training checkpoints every epoch into the work directory, and a
killed run leaves it for the next identical run, which continues after the last finished
epoch (batch k depends only on the seed and k, so the result is the same).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from templearn.stages.base import Record, Stage, StageParams, option
from templearn.unet.params import (
    CONV_CHOICES,
    LOSSES,
    LR_SCHEDULES,
    NORMALISATIONS,
    PRESET_NAMES,
    VALIDATION_PICK_METHODS,
    Normalisation,
    SamplingParams,
    TrainParams,
    ValidationPicking,
    from_fields,
)

#: Files and folders in the output directory (the input contract of `segment`: MODEL).
MODEL, LOG, CURVES, CHECKPOINTS, VALIDATION_PICKS = (
    "model", "training_log.csv", "training_curves.png", "checkpoints", "validation_picks.json")
#: How a --sample / --validation item is written.
PAIR = "TOMOGRAM.mrc,LABELS_DIR"

_T, _S, _N, _V = TrainParams, SamplingParams, Normalisation, ValidationPicking
_DEFAULT_WORK = (f"{_T.epochs} epochs × {_T.steps} steps of {_S.batch} patches of "
                 f"{_S.patch}³")


def _widths(text: str) -> tuple[int, int, int]:
    """'16,24,32' → (16, 24, 32); InputError naming --widths otherwise."""
    from templearn.errors import InputError

    parts = [p.strip() for p in text.replace(":", ",").split(",") if p.strip()]
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3:
        raise InputError(f"--widths expects three integers a,b,c, got {text!r}")
    return values  # type: ignore[return-value]


@dataclass(frozen=True)
class Inputs(Record):
    sample: tuple[str, ...] = option(
        help=f"Training tomogram and its labels as {PAIR} (LABELS_DIR from `templearn "
             "labels`: labels.mrc + targets.star); repeat for several.",
        short="-s", repeat=True)
    validation: tuple[str, ...] = option(
        (), f"Validation tomogram and labels as {PAIR} (repeatable); default: the last "
            "--val-fraction of the samples.", short="-v", repeat=True)
    init: Path | None = option(None, "Fine-tune this model directory (same classes and "
                                     "architecture).")


@dataclass(frozen=True)
class Params(StageParams):
    val_fraction: float = option(0.2, "Share of samples held out for validation when no "
                                      "--validation is given.", minimum=0)
    preset: str = option("deepfinder", "Architecture, one of: deepfinder (DeepFinder's "
                                       "U-Net), cpu-small (under a quarter of its weights).",
                         choices=PRESET_NAMES)
    widths: tuple[int, int, int] | None = option(None, "Channel widths a,b,c (overrides "
                                                       "preset).", parse=_widths, positive=True)
    conv: str | None = option(
        None, "Convolution implementation, one of: auto (default: im2col_x on CPU, xla on "
              "GPU), xla, im2col_x (fastest on CPU), im2col, shift. Same weights.",
        choices=CONV_CHOICES)
    loss: str = option(_T.loss, "Loss (tversky-ce: Tversky plus cross-entropy, for small "
                                "targets; nnpu, pu-kl: positive-unlabelled, for sparse "
                                "annotations).", choices=LOSSES)
    alpha: float = option(_T.alpha, "Tversky α (false positives).", minimum=0)
    beta: float = option(_T.beta, "Tversky β (false negatives).", minimum=0)
    prior: float = option(_T.prior, "PU losses: expected share of particle voxels.",
                          positive=True)
    epochs: int = option(
        _T.epochs, f"Epochs (each --steps updates, a validation, a checkpoint). The defaults "
                   f"({_DEFAULT_WORK}, deepfinder preset) take weeks on a CPU (about 4 min "
                   f"per step on 2 cores): there use e.g. --preset cpu-small --patch 32 "
                   f"--batch 8 --epochs 20 --steps 25, or a GPU.", minimum=1)
    steps: int = option(_T.steps, "Steps (updates) per epoch.", minimum=1)
    batch: int = option(_S.batch, "Patches per step (the cost of a step grows with it).",
                        minimum=1)
    patch: int = option(_S.patch, "Patch side, voxels (multiple of 4).", minimum=8)
    shift: int = option(_S.shift, "Random shift of patch centres, ± voxels.", minimum=0)
    background_fraction: float = option(_S.background_fraction, "Share of random background "
                                                                "patches.", minimum=0)
    rotate: bool = option(_S.rotate, "180° rotations about the tilt axis (Y).")
    augment: float = option(
        _S.augment, "Share of patches given a random blur, high-pass and extra noise, so "
                    "that the picker also finds particles shown less clearly than in its "
                    "simulations (0: off).", minimum=0)
    augment_blur: float = option(_S.augment_blur, "Largest blur of augmented patches "
                                                  "(Gaussian σ, voxels).", minimum=0)
    augment_noise: float = option(_S.augment_noise, "Largest extra noise of augmented "
                                                    "patches (s.d., in units of the "
                                                    "tomogram's s.d.).", minimum=0)
    noise_fraction: float = option(
        _S.noise_fraction, "Share of patches replaced by particle-free noise (a tilt "
                           "series' missing wedge, prepared as the tomograms) labelled "
                           "background, to teach the picker empty ice (0: off).", minimum=0)
    normalise: str = option(
        _N.method, "How tomograms are prepared for the network (recorded in the model; "
                   "segment does the same, --init keeps the model's): whiten (every "
                   "tomogram given the same power spectrum, so that the picker does not depend "
                   "on how a simulator or microscope shapes it; docs/transfer.md), "
                   "whiten-noise (whitened, then in units of the noise measured between the "
                   "tomogram's half tomograms, `reconstruct --halves`: a sparse tomogram's "
                   "noise is not raised to its particles' strength), whiten-snr (every "
                   "frequency shell in units of its own noise, from the same halves) or "
                   "zscore.",
        choices=NORMALISATIONS)
    whiten_lowpass: float = option(_N.lowpass, "With --normalise whiten*: Gaussian "
                                               "blur after whitening (σ, voxels; 0: none).",
                                   minimum=0)
    whiten_highpass: float = option(_N.highpass, "With --normalise whiten*: remove the "
                                                 "scales "
                                                 "a Gaussian blur of this σ keeps (voxels; "
                                                 "0: none), where a low-dose tomogram's "
                                                 "whitened spectrum is mostly noise.",
                                    minimum=0)
    learning_rate: float = option(_T.learning_rate, "Adam learning rate.", flag="--lr",
                                  positive=True)
    lr_schedule: str = option(_T.lr_schedule, "Learning-rate schedule: constant, or cosine "
                                              "(from --lr down to 0 over all epochs × steps; "
                                              "--init starts it afresh).",
                              choices=LR_SCHEDULES)
    seed: int = option(_T.seed, "Random seed (weights and batches).", minimum=0)
    pick_method: str = option(
        _V.method, "How the validation tomograms are picked after training to choose the "
                   "model's smallest cluster size (segment hands it to pick "
                   "--validated-min-size): components, or meanshift with --pick-radius. "
                   "Use the method you will pick with: cluster sizes depend on it.",
        choices=VALIDATION_PICK_METHODS)
    pick_radius: tuple[str, ...] = option(
        (), "With --pick-method meanshift: particle radius in voxels, VOX or NAME=VOX "
            "(repeatable), as for pick --radius.", repeat=True)
    pick_distance: float = option(_V.distance, "Validation picks match a particle within "
                                               "this many voxels (as evaluate --distance).",
                                  positive=True)

    def check(self) -> None:
        from templearn.errors import InputError
        from templearn.stages.pick import parse_radii

        if self.pick_method == "meanshift" and not self.pick_radius:
            raise InputError("--pick-method meanshift needs --pick-radius (voxels)")
        parse_radii(self.pick_radius, "--pick-radius")

        if self.val_fraction >= 1:
            raise InputError(f"--val-fraction must be below 1, got {self.val_fraction}")
        if self.augment > 1:
            raise InputError(f"--augment must be at most 1, got {self.augment}")
        if self.noise_fraction > 1:
            raise InputError(f"--noise-fraction must be at most 1, got {self.noise_fraction}")
        if self.background_fraction > 1:
            raise InputError(f"--background-fraction must be at most 1, got "
                             f"{self.background_fraction}")
        if self.prior >= 1:
            raise InputError(f"--prior must be below 1, got {self.prior}")
        if self.patch % 4:
            raise InputError(f"--patch must be a multiple of 4, got {self.patch}")
        self.normalisation().validate()

    def normalisation(self) -> Normalisation:
        """How tomograms are prepared for a new model (`templearn.unet.normalise`)."""
        return Normalisation(self.normalise, self.whiten_lowpass, self.whiten_highpass)


def pairs(specs: tuple[str, ...], option_name: str) -> list[tuple[Path, Path]]:
    """(tomogram, labels dir) of each TOMOGRAM.mrc,LABELS_DIR, checked to exist."""
    from templearn.errors import InputError
    from templearn.files import require_file

    out = []
    for spec in specs:
        tomogram, sep, labels = (s.strip() for s in spec.partition(","))
        if not sep or not tomogram or not labels or "," in labels:
            raise InputError(f"{option_name} expects {PAIR}, got {spec!r}")
        require_file(tomogram)
        label_dir = Path(labels)
        if not label_dir.is_dir():
            raise InputError(f"{option_name}: no such labels directory (from `templearn "
                             f"labels`)", label_dir)
        for name in ("labels.mrc", "targets.star"):
            require_file(label_dir / name)
        out.append((Path(tomogram), label_dir))
    return out


def check_grids(items: list[tuple[Path, Path]], patch: int) -> None:
    """From MRC headers only: each label map on its tomogram's grid, one voxel size for
    all, every tomogram at least a patch in size."""
    import math

    from templearn.errors import InputError
    from templearn.stages.mrcgrid import mrc_grid

    first: tuple[Path, float] | None = None
    for tomogram, label_dir in items:
        shape, voxel = mrc_grid(tomogram)
        label_shape, label_voxel = mrc_grid(label_dir / "labels.mrc")
        if label_shape != shape:
            raise InputError(f"label map size {label_shape[::-1]} (x, y, z) differs from "
                             f"the tomogram's {shape[::-1]} ({tomogram})",
                             label_dir / "labels.mrc")
        if not math.isclose(label_voxel, voxel, rel_tol=1e-3):
            raise InputError(f"voxel size {label_voxel:g} Å differs from the tomogram's "
                             f"{voxel:g} Å ({tomogram})", label_dir / "labels.mrc")
        if min(shape) < patch:
            raise InputError(f"size {shape[::-1]} (x, y, z) is smaller than a {patch}³ patch "
                             f"(--patch)", tomogram)
        if first is None:
            first = (tomogram, voxel)
        elif not math.isclose(voxel, first[1], rel_tol=1e-3):
            raise InputError(f"voxel size {voxel:g} Å differs from {first[0]}'s "
                             f"{first[1]:g} Å (training and validation tomograms must share "
                             f"one)", tomogram)


def class_names_of(label_dirs: list[Path]) -> dict[int, str]:
    """Class id → name from the targets.star files (tlClassName) and, where `labels` wrote
    one (--distractor-class), classes.json; 0 is background."""
    from templearn import star
    from templearn.errors import InputError
    from templearn.sample import CLASS_NAME
    from templearn.stages.labels import CLASSES
    from templearn.stages.pick import read_classes

    names: dict[int, str] = {0: "background"}
    for label_dir in label_dirs:
        path = label_dir / "targets.star"
        targets = star.read_star(path, star.PARTICLES_BLOCK)
        pairs: list[tuple[int, str]] = []
        if CLASS_NAME in targets and star.CLASS_ID in targets:
            pairs += zip(targets[star.CLASS_ID].astype(int), targets[CLASS_NAME].astype(str),
                         strict=True)
        if (label_dir / CLASSES).exists():
            path = label_dir / CLASSES
            pairs += read_classes(path).items()
        for k, name in pairs:
            if names.setdefault(int(k), name) != name:
                raise InputError(f"class {k} is {name!r} here but {names[int(k)]!r} in "
                                 f"another labels directory", path)
    return names


def write(params: Params, inputs: Inputs, out: Path) -> str:
    """model/, training_log.csv, training_curves.png, checkpoints/, validation_picks.json."""
    import math
    from dataclasses import replace

    from templearn.errors import InputError
    from templearn.files import require_file
    from templearn.halves import require_halves
    from templearn.stages.pick import radii_of

    # Every check that needs no tomogram first: options, files, headers.
    train_pairs = pairs(inputs.sample, "--sample")
    val_pairs = pairs(inputs.validation, "--validation")
    if not train_pairs:
        raise InputError(f"--sample: give at least one {PAIR}")
    if inputs.init is not None:
        if not inputs.init.is_dir():
            raise InputError("--init: no such model directory", inputs.init)
        require_file(inputs.init / "model.json")
        if params.widths is not None:
            raise InputError("--widths does not go with --init (the model keeps its "
                             "architecture)")
    init_info = None
    if inputs.init is not None:  # fine-tuning keeps the model's normalisation
        from templearn.unet.store import read_info

        init_info = read_info(inputs.init)
    how = init_info.normalisation if init_info is not None else params.normalisation()
    if how.needs_halves:
        for tomogram, _ in train_pairs + val_pairs:
            require_halves(tomogram)
    if not val_pairs and len(train_pairs) > 1 and params.val_fraction > 0:
        n_val = max(1, math.ceil(len(train_pairs) * params.val_fraction))
        train_pairs, val_pairs = train_pairs[:-n_val], train_pairs[-n_val:]
    check_grids(train_pairs + val_pairs, params.patch)
    names = class_names_of([d for _, d in train_pairs + val_pairs])
    radii = {names[k]: r for k, r in radii_of(
        params.pick_radius, {k: n for k, n in names.items() if k}, "--pick-radius").items()
    } if params.pick_radius else {}

    from templearn.jaxcache import enable_compilation_cache
    from templearn.progress import log
    from templearn.unet.data import load_labelled
    from templearn.unet.model import PRESETS
    from templearn.unet.train import train

    enable_compilation_cache()
    train_data = [load_labelled(t, d, how) for t, d in train_pairs]
    val_data = [load_labelled(t, d, how) for t, d in val_pairs]
    n_classes = max([*names, *(int(d.labels.max()) for d in train_data + val_data)]) + 1
    class_names = [names.get(k, f"class{k}") for k in range(n_classes)]
    if init_info is not None:
        config = init_info.config
    else:
        config = replace(PRESETS[params.preset], classes=n_classes)
        if params.widths is not None:
            config = replace(config, widths=params.widths)
    if params.conv is not None:
        config = replace(config, conv=params.conv)
    picking = ValidationPicking(params.pick_method, radii, params.pick_distance)
    settings = from_fields(TrainParams, params, sampling=from_fields(SamplingParams, params),
                           normalisation=how, validation_picking=picking)
    plan = (f"{len(train_data)} training and {len(val_data)} validation tomograms, classes "
            f"{', '.join(class_names[1:])}; {params.epochs} epochs × {params.steps} steps of "
            f"{params.batch} × {params.patch}³")
    log(f"train: {plan}")
    train(train_data, val_data, class_names, config, settings, out, inputs.init)
    picks = f", {VALIDATION_PICKS}" if val_data else ""
    return f"{plan} → {MODEL}/, {LOG}{picks}"


STAGE = Stage(
    "train", f"Train (or fine-tune) the 3D U-Net on patches of labelled tomograms; "
    f"checkpoints every epoch, and a killed run resumes where it stopped. The defaults "
    f"({_DEFAULT_WORK}) take weeks on a CPU: see --epochs.",
    Params, Inputs, write, packages=("numpy", "jax", "flax", "optax", "orbax-checkpoint"),
    resumable=True, default_output="training")


#: `run(params, inputs, out_dir)`: the stage from Python, as the CLI runs it.
run = STAGE.run
