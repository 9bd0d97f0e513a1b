"""`templearn segment`: class score maps and a label map of a tomogram from a trained model."""

from __future__ import annotations

from pathlib import Path

import typer


def command(
    tomogram: Path = typer.Argument(..., help="Tomogram (MRC) to segment."),
    model: Path = typer.Argument(..., help="Model directory (templearn train: DIR/model)."),
    output_dir: Path = typer.Option(Path("segmentation"), "--output-dir", "-o"),
    tile: int = typer.Option(112, help="Tile side in voxels (multiple of 4)."),
    crop: int = typer.Option(16, help="Margin dropped from each inner tile side, voxels."),
    overlap: int = typer.Option(0, help="Extra overlap between kept tile centres, voxels."),
    batch: int = typer.Option(1, help="Tiles per network call."),
    any_voxel_size: bool = typer.Option(
        False, help="Accept a tomogram whose voxel size differs from the training data's."),
) -> None:
    """Per-class probability maps (scores_<class>.mrc), labels.mrc (argmax) and classes.json."""
    import json

    import numpy as np

    from templearn.errors import InputError
    from templearn.files import atomic_write_text
    from templearn.jaxcache import enable_compilation_cache
    from templearn.mrc import Volume, read_mrc, write_mrc, write_mrc_slabs
    from templearn.progress import log
    from templearn.provenance import write_provenance
    from templearn.unet.data import normalise
    from templearn.unet.segment import TileParams, predictor, segment
    from templearn.unet.store import load_model

    enable_compilation_cache()
    params = TileParams(tile=tile, crop=crop, overlap=overlap, batch=batch)
    params.validate()
    volume = read_mrc(tomogram)
    network, info = load_model(model)
    if not any_voxel_size and not np.isclose(volume.voxel_size, info.voxel_size, rtol=0.05):
        raise InputError(f"voxel size {volume.voxel_size:g} Å, but the model was trained at "
                         f"{info.voxel_size:g} Å (reconstruct with --pixel-size, or pass "
                         f"--any-voxel-size)", tomogram)
    scores, labels = segment(normalise(volume.data), predictor(network, params.batch),
                             info.config.classes, params)
    for k, name in enumerate(info.class_names):
        if k > 0:
            write_mrc_slabs(output_dir / f"scores_{name}.mrc", scores[k], volume.voxel_size,
                            volume.origin)
    write_mrc(output_dir / "labels.mrc", Volume(labels, volume.voxel_size, volume.origin))
    atomic_write_text(output_dir / "classes.json", json.dumps(
        {str(k): name for k, name in enumerate(info.class_names)}, indent=1))
    write_provenance(output_dir, "segment", {
        "tomogram": tomogram, "model": model, "tile": tile, "crop": crop, "overlap": overlap,
        "batch": batch}, packages=("numpy", "jax", "flax", "mrcfile"))
    counts = ", ".join(f"{n} {int((labels == k).sum())}" for k, n in
                       enumerate(info.class_names) if k > 0)
    log(f"segment: {volume.data.shape[::-1]} voxels labelled ({counts}) -> {output_dir}")
