"""`templearn train`: train (or fine-tune) the 3D U-Net on labelled tomograms."""

from __future__ import annotations

from pathlib import Path

import typer


def command(
    sample: list[str] = typer.Option(
        ..., "--sample", "-s",
        help="Training tomogram and its labels as TOMOGRAM.mrc,LABELS_DIR (LABELS_DIR from "
             "`templearn labels`: labels.mrc + targets.star); repeat for several."),
    validation: list[str] = typer.Option(
        [], "--validation", "-v", help="Validation tomogram,labels (repeatable); default: "
                                       "the last --val-fraction of the samples."),
    val_fraction: float = typer.Option(0.2, help="Share of samples held out for validation "
                                                 "when no --validation is given."),
    output_dir: Path = typer.Option(Path("training"), "--output-dir", "-o"),
    preset: str = typer.Option("deepfinder", help="Architecture: deepfinder or cpu-small."),
    widths: str | None = typer.Option(None, help="Channel widths a,b,c (overrides preset)."),
    conv: str | None = typer.Option(
        None, help="Convolution implementation: auto (default: im2col_x on CPU, xla on GPU), "
                   "xla, im2col_x (fastest on CPU), im2col, shift. Same weights."),
    loss: str = typer.Option("tversky", help="tversky, dice, cross-entropy, nnpu or pu-kl."),
    alpha: float = typer.Option(0.5, help="Tversky α (false positives)."),
    beta: float = typer.Option(0.5, help="Tversky β (false negatives)."),
    prior: float = typer.Option(0.01, help="PU losses: expected share of particle voxels."),
    epochs: int = typer.Option(100, help="Epochs."),
    steps: int = typer.Option(100, help="Steps per epoch."),
    batch: int = typer.Option(25, help="Patches per step."),
    patch: int = typer.Option(48, help="Patch side, voxels (multiple of 4)."),
    shift: int = typer.Option(13, help="Random shift of patch centres, ± voxels."),
    background_fraction: float = typer.Option(0.1, help="Share of random background patches."),
    rotate: bool = typer.Option(True, help="180° rotations about the tilt axis (Y)."),
    learning_rate: float = typer.Option(1e-4, "--lr", help="Adam learning rate."),
    init: Path | None = typer.Option(
        None, help="Fine-tune this model directory (same classes and architecture)."),
    seed: int = typer.Option(0, help="Random seed (weights and batches)."),
) -> None:
    """U-Net on patches; checkpoints every epoch and resumes from DIR/checkpoints."""
    import math
    from dataclasses import replace

    from templearn import star
    from templearn.cli.options import int_tuple
    from templearn.errors import InputError
    from templearn.jaxcache import enable_compilation_cache
    from templearn.progress import log
    from templearn.provenance import write_provenance
    from templearn.sample import CLASS_NAME
    from templearn.unet.data import SamplingParams, load_labelled
    from templearn.unet.losses import LOSSES
    from templearn.unet.model import CONV_CHOICES, PRESETS
    from templearn.unet.store import read_info
    from templearn.unet.train import TrainParams, train

    enable_compilation_cache()
    if preset not in PRESETS:
        raise InputError(f"--preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    if loss not in LOSSES:
        raise InputError(f"--loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    for name, value in (("--epochs", epochs), ("--steps", steps), ("--batch", batch)):
        if value < 1:
            raise InputError(f"{name} must be at least 1, got {value}")
    if not 0 <= background_fraction <= 1 or not 0 <= val_fraction < 1 or learning_rate <= 0:
        raise InputError("--background-fraction and --val-fraction must be in [0, 1), "
                         "--lr positive")

    def pairs(specs: list[str], option: str) -> list[tuple[Path, Path]]:
        out = []
        for spec in specs:
            tomo, sep, labels = spec.partition(",")
            if not sep:
                raise InputError(f"{option} expects TOMOGRAM.mrc,LABELS_DIR, got {spec!r}")
            out.append((Path(tomo), Path(labels)))
        return out

    train_pairs, val_pairs = pairs(sample, "--sample"), pairs(validation, "--validation")
    if not val_pairs and len(train_pairs) > 1 and val_fraction > 0:
        n_val = max(1, math.ceil(len(train_pairs) * val_fraction))
        train_pairs, val_pairs = train_pairs[:-n_val], train_pairs[-n_val:]
    train_data = [load_labelled(t, d) for t, d in train_pairs]
    val_data = [load_labelled(t, d) for t, d in val_pairs]
    names: dict[int, str] = {0: "background"}
    for _, labels in train_pairs + val_pairs:
        targets = star.read_star(labels / "targets.star", star.PARTICLES_BLOCK)
        if CLASS_NAME in targets:
            names.update(zip(targets[star.CLASS_ID].astype(int), targets[CLASS_NAME].astype(str),
                             strict=True))
    n_classes = max([*names, *(int(d.labels.max()) for d in train_data + val_data)]) + 1
    class_names = [names.get(k, f"class{k}") for k in range(n_classes)]
    if init is not None:
        config = read_info(init).config
    else:
        config = replace(PRESETS[preset], classes=n_classes)
        if widths is not None:
            config = replace(config, widths=int_tuple(widths, 3, "--widths"))
    if conv is not None:
        if conv not in CONV_CHOICES:
            raise InputError(f"--conv must be one of {', '.join(CONV_CHOICES)}, got {conv!r}")
        config = replace(config, conv=conv)
    params = TrainParams(
        epochs=epochs, steps=steps, learning_rate=learning_rate, loss=loss, alpha=alpha,
        beta=beta, prior=prior, seed=seed,
        sampling=SamplingParams(patch=patch, batch=batch, shift=shift,
                                background_fraction=background_fraction, rotate=rotate))
    log(f"train: {len(train_data)} training and {len(val_data)} validation tomograms, classes "
        f"{', '.join(class_names[1:])}; {epochs} epochs × {steps} steps of {batch} × {patch}³")
    write_provenance(output_dir, "train", {
        "sample": sample, "validation": validation, "val_fraction": val_fraction,
        "preset": preset, "widths": list(config.widths), "conv": config.conv, "loss": loss,
        "alpha": alpha, "beta": beta, "prior": prior, "epochs": epochs, "steps": steps,
        "batch": batch, "patch": patch, "shift": shift,
        "background_fraction": background_fraction, "rotate": rotate,
        "learning_rate": learning_rate, "init": init, "seed": seed},
        packages=("numpy", "jax", "flax", "optax", "orbax-checkpoint"))
    train(train_data, val_data, class_names, config, params, output_dir, init)
    log(f"train: model -> {output_dir / 'model'}")
