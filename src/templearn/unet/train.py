"""Training: Adam on sampled patches, validation each epoch, Orbax checkpoints, resume.

Each epoch runs `steps` jit-compiled updates, then measures the loss and voxel-wise
precision / recall / F1 per class on a fixed set of validation batches, appends a row to
`training_log.csv`, redraws `training_curves.png` and checkpoints model and optimizer.
At the end the validation tomograms are segmented, picked and matched to their particles
(`validation_picks.json`: pick-level precision, recall, F1). Within an epoch a line
reports the first step (which compiles), an estimate of the time left after the second,
and progress every `log_every_s` seconds.
A killed training restarts from its last checkpoint and, because batch k depends only on
(seed, k), continues exactly as if it had not stopped.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pandas as pd
from flax import nnx

from templearn import star
from templearn.errors import InputError
from templearn.files import atomic_write_text
from templearn.progress import log
from templearn.report.plots import plot_training_curves
from templearn.sample import CLASS_NAME
from templearn.unet.data import LabelledTomogram, check_sizes, sample_batch
from templearn.unet.losses import loss_function
from templearn.unet.model import UNet, UNetConfig
from templearn.unet.params import TrainParams, ValidationPicking
from templearn.unet.segment import TileParams, predictor, segment
from templearn.unet.store import ModelInfo, forget_paths, load_model, new_model, save_model

#: Picking defaults learned on the validation tomograms, kept inside the model directory.
PICKING_DEFAULTS = "picking.json"
LOG_NAME, CURVES_NAME, CHECKPOINTS, MODEL_DIR, PICK_METRICS = (
    "training_log.csv", "training_curves.png", "checkpoints", "model", "validation_picks.json")


def _validation_counts(model: UNet, images: jax.Array, labels: jax.Array, classes: int
                       ) -> jax.Array:
    """Hard-assignment true positives, false positives and false negatives per class."""
    predicted = jnp.argmax(model(images), axis=-1)
    pred = jax.nn.one_hot(predicted, classes)
    true = jax.nn.one_hot(labels, classes)
    axes = tuple(range(pred.ndim - 1))
    return jnp.stack([(pred * true).sum(axes), (pred * (1 - true)).sum(axes),
                      ((1 - pred) * true).sum(axes)])


def _scores(counts: np.ndarray) -> dict[str, np.ndarray]:
    tp, fp, fn = counts
    precision = tp / np.maximum(tp + fp, 1)
    recall = tp / np.maximum(tp + fn, 1)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return {"precision": precision, "recall": recall, "f1": f1}


def _write_log(path: Path, rows: list[dict[str, float]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def _read_log(path: Path, epochs_done: int) -> list[dict[str, float]]:
    if not path.exists():
        return []
    rows = list(csv.DictReader(path.read_text().splitlines()))
    return [{k: float(v) for k, v in row.items()} for row in rows][:epochs_done]


def pick_level_metrics(predict: Callable[[np.ndarray], np.ndarray],
                       data: list[LabelledTomogram], class_names: list[str],
                       tiles: TileParams, how: ValidationPicking = ValidationPicking()) -> dict:
    """Segment each validation tomogram with `predict` (a model's `predictor`), pick it as
    `how` says (by default connected components) and match the picks to its particles
    (within `how.distance` voxels, sweep over cluster size): the paper's pick-level F1."""
    from templearn.evaluate import evaluate_picks
    from templearn.pick import pick_particles

    names = dict(enumerate(class_names))
    radii = {k: how.radius[name] for k, name in names.items() if name in how.radius}
    picks, targets = [], []
    for item in data:
        scores, labels = segment(item.tomogram, predict, len(class_names), tiles)
        if labels.max() > 0:
            picks.append(pick_particles(labels, scores, how.method, radii or 10.0,
                                        class_names=names, tomo_name=item.name))
        targets.append(pd.DataFrame({
            star.TOMO_NAME: item.name,
            **{c: item.centres_xyz[:, a] for a, c in enumerate(star.COORDINATES)},
            star.CLASS_ID: item.classes, CLASS_NAME: [names[int(k)] for k in item.classes]}))
    all_picks = pd.concat(picks, ignore_index=True) if picks else pd.DataFrame(
        columns=[star.TOMO_NAME, *star.COORDINATES, star.CLASS_ID, CLASS_NAME,
                 star.CLUSTER_SIZE])
    metrics = evaluate_picks(all_picks, pd.concat(targets, ignore_index=True), how.distance)
    return {"method": how.method, **metrics}


def picking_defaults(metrics: dict) -> dict:
    """What validation picking teaches about picking with this model: per class, the
    smallest cluster size worth keeping (the size threshold of the best validation F1).
    Stored with the model, so no threshold is ever tuned on the tomograms picked."""
    return {"source": f"validation tomograms, {metrics['method']}, sweep over cluster size",
            "min_size": {name: int(entry["best_threshold"])
                         for name, entry in metrics["classes"].items()
                         if entry.get("best_threshold") is not None}}


def duration(seconds: float) -> str:
    """'45 s', '12 min', '3.5 h', '9.2 days': a rough, readable length of time."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


class StepProgress:
    """Progress lines within epochs: the first step's time (it includes compiling), an
    estimate of the remaining time after the next step, then a line every
    `params.log_every_s` seconds. Steps are timed after the first (compiling) one."""

    def __init__(self, params: TrainParams, start_epoch: int) -> None:
        self.params = params
        self.left = (params.epochs - start_epoch) * params.steps
        self.began = self.last = time.monotonic()
        self.timed: tuple[float, int] | None = None  # (time, steps left) after the first step
        self.estimated = False

    def remaining(self, now: float) -> tuple[float, float]:
        """Seconds per step and the estimated seconds left."""
        assert self.timed is not None
        at, left = self.timed
        per_step = (now - at) / max(left - self.left, 1)
        return per_step, per_step * self.left

    def step(self, epoch: int, s: int, losses: list[float]) -> None:
        """Called after each finished step (`losses`: the epoch's losses so far)."""
        self.left -= 1
        now = time.monotonic()
        p, sampling = self.params, self.params.sampling
        if self.timed is None:
            self.timed = (now, self.left)
            self.last = now
            log(f"train: first step done in {duration(now - self.began)} (includes "
                f"compiling); {self.left} of {p.epochs * p.steps} steps to go")
            return
        per_step, left_s = self.remaining(now)
        if not self.estimated:
            self.estimated = True
            self.last = now
            log(f"train: {per_step:.3g} s per step of {sampling.batch} × {sampling.patch}³; "
                f"estimated time left {duration(left_s)} (validation not counted)")
        elif now - self.last >= p.log_every_s:
            self.last = now
            log(f"train: epoch {epoch + 1}/{p.epochs} step {s + 1}/{p.steps} loss "
                f"{np.mean(losses):.4f}; {per_step:.3g} s per step, about {duration(left_s)} "
                f"left")


def learning_rate_schedule(params: TrainParams) -> optax.Schedule:
    """Adam's step size per update: constant, or a cosine decay to 0 over the whole run
    (a constant rate leaves the weights hopping around the minimum it has found; decaying
    it lets them settle there, which is where the last epochs gain most)."""
    if params.lr_schedule == "cosine":
        return optax.cosine_decay_schedule(params.learning_rate,
                                           decay_steps=params.epochs * params.steps)
    return optax.constant_schedule(params.learning_rate)


def train(train_data: list[LabelledTomogram], val_data: list[LabelledTomogram],
          class_names: list[str], config: UNetConfig, params: TrainParams,
          out_dir: str | os.PathLike[str], init: str | os.PathLike[str] | None = None
          ) -> tuple[UNet, list[dict[str, float]]]:
    """Train (or resume training) a U-Net; returns the model and the training log rows."""
    out = Path(out_dir).absolute()
    classes = len(class_names)
    if config.classes != classes:
        raise InputError(f"the model has {config.classes} classes, the data {classes}")
    if not train_data:
        raise InputError("no training tomograms")
    check_sizes(train_data + val_data, params.sampling.patch)
    voxel = train_data[0].voxel_size
    if any(not np.isclose(d.voxel_size, voxel, rtol=1e-3) for d in train_data + val_data):
        raise InputError("training and validation tomograms must share one voxel size")
    loss_fn = loss_function(params.loss, params.alpha, params.beta, params.prior)

    if init is not None:
        model, info = load_model(init)
        if info.config != config or info.class_names != class_names:
            raise InputError(f"--init model has classes {info.class_names} and {info.config}; "
                             f"expected {class_names} and {config}", init)
        if info.normalisation != params.normalisation:
            raise InputError(f"--init model prepares tomograms by {info.normalisation}, the "
                             f"data were prepared by {params.normalisation}", init)
    else:
        model = new_model(config, params.seed)
    optimizer = nnx.Optimizer(model, optax.adam(learning_rate_schedule(params)), wrt=nnx.Param)

    @nnx.jit
    def train_step(model, optimizer, images, labels):
        loss, grads = nnx.value_and_grad(lambda m: loss_fn(m(images), labels))(model)
        optimizer.update(model, grads)
        return loss

    @nnx.jit
    def evaluate(model, images, labels):
        return loss_fn(model(images), labels), _validation_counts(model, images, labels,
                                                                  classes)

    manager = ocp.CheckpointManager(out / CHECKPOINTS,
                                    options=ocp.CheckpointManagerOptions(max_to_keep=2))
    start = 0
    if manager.latest_step() is not None:
        start = int(manager.latest_step()) + 1
        target = {"model": nnx.state(model, nnx.Param), "optimizer": nnx.state(optimizer)}
        restored = manager.restore(start - 1, args=ocp.args.StandardRestore(target))
        nnx.update(model, restored["model"])
        nnx.update(optimizer, restored["optimizer"])
        log(f"train: resuming after epoch {start} from its checkpoint")
    rows = _read_log(out / LOG_NAME, start)
    validation = val_data or train_data
    val_batches = [sample_batch(validation, classes, params.sampling, params.seed + 1, k,
                                params.normalisation)
                   for k in range(params.validation_batches)]
    info = ModelInfo(config, class_names, voxel, params.sampling.patch, params.normalisation)
    progress = StepProgress(params, start)
    for epoch in range(start, params.epochs):
        began = time.monotonic()
        losses = []
        for s in range(params.steps):
            images, labels = sample_batch(train_data, classes, params.sampling, params.seed,
                                          epoch * params.steps + s, params.normalisation)
            loss = train_step(model, optimizer, jnp.asarray(images), jnp.asarray(labels))
            losses.append(float(loss))  # waits for the step: honest timings
            progress.step(epoch, s, losses)
        train_loss = float(np.mean(losses))
        val_losses, counts = [], np.zeros((3, classes))
        for images, labels in val_batches:
            loss, c = evaluate(model, jnp.asarray(images), jnp.asarray(labels))
            val_losses.append(float(loss))
            counts += np.asarray(c)
        scores = _scores(counts)
        row = {"epoch": epoch + 1, "step": (epoch + 1) * params.steps,
               "seconds": round(time.monotonic() - began, 2), "train_loss": train_loss,
               "val_loss": float(np.mean(val_losses))}
        for k, name in enumerate(class_names[1:], start=1):
            for metric in ("precision", "recall", "f1"):
                row[f"val_{metric}_{name}"] = float(scores[metric][k])
        rows.append(row)
        # Log first, checkpoint last: a resumed run keeps the log's first `epochs done` rows.
        _write_log(out / LOG_NAME, rows)
        plot_training_curves(out / CURVES_NAME, rows, class_names)
        manager.save(epoch, args=ocp.args.StandardSave(
            {"model": nnx.state(model, nnx.Param), "optimizer": nnx.state(optimizer)}))
        manager.wait_until_finished()
        forget_paths(out / CHECKPOINTS)
        f1 = ", ".join(f"{n} {row[f'val_f1_{n}']:.3f}" for n in class_names[1:])
        log(f"train: epoch {epoch + 1}/{params.epochs} loss {train_loss:.4f} "
            f"val {row['val_loss']:.4f} voxel F1 {f1} ({row['seconds']:.0f} s)")
    manager.close()
    save_model(out / MODEL_DIR, model, info)
    if val_data and params.pick_validation:
        tiles = TileParams(tile=max(64, params.sampling.patch), crop=8)
        metrics = pick_level_metrics(predictor(model, tiles.batch), val_data, class_names,
                                     tiles, params.validation_picking)
        atomic_write_text(out / PICK_METRICS, json.dumps(metrics, indent=1))
        atomic_write_text(out / MODEL_DIR / PICKING_DEFAULTS, json.dumps(
            picking_defaults(metrics), indent=1))
        summary = ", ".join(f"{n} best F1 {c['best_f1']:.3f}, F1 at P=R {c['f1_at_p_eq_r']}"
                            for n, c in metrics["classes"].items())
        log(f"train: validation picks: {summary}")
    return model, rows
