"""Stage `segment`: a tomogram and a trained model → per-class score maps, the argmax label
map and the class names (the input contract of `pick`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from templearn.stages.base import Record, Stage, StageParams, option
from templearn.unet.params import TileParams, from_fields

#: Files in the output directory: SCORES.format(name) per class, LABELS, CLASSES.
SCORES, LABELS, CLASSES = "scores_{}.mrc", "labels.mrc", "classes.json"

_T = TileParams


@dataclass(frozen=True)
class Inputs(Record):
    tomogram: Path = option(help="Tomogram (MRC) to segment.", argument=True)
    model: Path = option(help="Model directory (templearn train: DIR/model).", argument=True)


@dataclass(frozen=True)
class Params(StageParams):
    tile: int = option(_T.tile, "Tile side in voxels (multiple of 4).", minimum=8)
    crop: int = option(_T.crop, "Margin dropped from each inner tile side, voxels.",
                       minimum=0)
    overlap: int = option(_T.overlap, "Extra overlap between kept tile centres, voxels.",
                          minimum=0)
    batch: int = option(_T.batch, "Tiles per network call.", minimum=1)
    any_voxel_size: bool = option(False, "Accept a tomogram whose voxel size differs from "
                                         "the training data's.")
    average_rotations: bool = option(False, "Average each tile's probabilities over it and "
                                            "its three 180° rotations about z, y and x "
                                            "(they keep the missing wedge in place): 4× "
                                            "the time, steadier maps.")

    def check(self) -> None:
        self.tiles().validate()

    def tiles(self) -> TileParams:
        """The tiling settings of `templearn.unet.segment`."""
        return from_fields(TileParams, self)


def check_model_dir(model: Path) -> None:
    """InputError naming `model` unless it is a model directory (with a hint when it is
    the training directory around one)."""
    from templearn.errors import InputError

    if not model.is_dir():
        raise InputError("no such model directory (templearn train: DIR/model)", model)
    if not (model / "model.json").is_file():
        if (model / "model" / "model.json").is_file():
            raise InputError(f"a training directory; pass its model: {model / 'model'}", model)
        raise InputError("not a templearn model (no model.json)", model)


#: The model's picking defaults (from its validation tomograms), copied beside the scores.
PICKING_DEFAULTS = "picking.json"


def write(params: Params, inputs: Inputs, out: Path) -> str:
    """scores_<class>.mrc for each class but the background, labels.mrc and classes.json."""
    import json

    import numpy as np

    from templearn.errors import InputError
    from templearn.files import atomic_write_text
    from templearn.stages.mrcgrid import mrc_grid

    _, voxel = mrc_grid(inputs.tomogram)
    check_model_dir(inputs.model)

    from templearn.jaxcache import enable_compilation_cache
    from templearn.mrc import Volume, read_mrc, write_mrc, write_mrc_slabs
    from templearn.unet.data import prepared
    from templearn.unet.segment import predictor, rotation_averaged, segment
    from templearn.unet.store import load_model, read_info

    info = read_info(inputs.model)
    if not params.any_voxel_size and not np.isclose(voxel, info.voxel_size, rtol=0.05):
        raise InputError(f"voxel size {voxel:g} Å, but the model was trained at "
                         f"{info.voxel_size:g} Å (reconstruct with --pixel-size, or pass "
                         f"--any-voxel-size)", inputs.tomogram)
    enable_compilation_cache()
    volume = read_mrc(inputs.tomogram)
    tomogram = prepared(volume.data, inputs.tomogram, info.normalisation)
    network, info = load_model(inputs.model)
    tiles = params.tiles()
    predict = predictor(network, tiles.batch)
    if params.average_rotations:
        predict = rotation_averaged(predict)
    scores, labels = segment(tomogram, predict, info.config.classes, tiles)
    for k, name in enumerate(info.class_names):
        if k > 0:
            write_mrc_slabs(out / SCORES.format(name), scores[k], volume.voxel_size,
                            volume.origin)
    write_mrc(out / LABELS, Volume(labels, volume.voxel_size, volume.origin))
    atomic_write_text(out / CLASSES, json.dumps(
        {str(k): name for k, name in enumerate(info.class_names)}, indent=1))
    defaults = inputs.model / PICKING_DEFAULTS
    if defaults.is_file():  # validation-derived picking defaults travel with the scores
        atomic_write_text(out / PICKING_DEFAULTS, defaults.read_text())
    counts = ", ".join(f"{n} {int((labels == k).sum())}" for k, n in
                       enumerate(info.class_names) if k > 0)
    return (f"{volume.data.shape[::-1]} voxels labelled ({counts}) in {LABELS}, score maps "
            f"{SCORES.format('<class>')}")


STAGE = Stage(
    "segment", "Per-class probability maps (scores_<class>.mrc), the argmax label map "
    "(labels.mrc) and classes.json of a tomogram, from a trained model (tiled inference).",
    Params, Inputs, write, packages=("numpy", "jax", "flax", "mrcfile"),
    default_output="segmentation")


#: `run(params, inputs, out_dir)`: the stage from Python, as the CLI runs it.
run = STAGE.run
