"""Trained models on disk: `model.json` (architecture, class names, voxel size, how inputs
are normalised) and `params/` (an Orbax checkpoint of the weights).

`templearn segment` and `templearn train --init` read this; a model directory is complete
only once `model.json` is written (last), so a killed save never looks like a model.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

from templearn.errors import InputError
from templearn.files import atomic_write_text
from templearn.unet.model import UNet, UNetConfig
from templearn.unet.params import Normalisation

MODEL_JSON = "model.json"
#: Orbax's marker of a finished checkpoint, and its text without the writer's path.
COMMIT_MARKER, COMMIT_TEXT = "commit_success.txt", "Checkpoint commit was successful\n"


@dataclass
class ModelInfo:
    """What a model needs besides its weights."""

    config: UNetConfig
    class_names: list[str]  # index = class id; 0 is background
    voxel_size: float
    patch: int
    normalisation: Normalisation = field(default_factory=Normalisation)

    def to_json(self) -> str:
        record = {"config": asdict(self.config), "class_names": self.class_names,
                  "voxel_size": self.voxel_size, "patch": self.patch,
                  "normalisation": asdict(self.normalisation)}
        return json.dumps(record, indent=1)


def new_model(config: UNetConfig, seed: int) -> UNet:
    """A freshly initialised U-Net: Glorot-uniform kernels and zero biases (Keras' defaults,
    as in DeepFinder), drawn with numpy so that no initialiser has to be compiled (XLA
    compiles one per shape, seconds each on a busy CPU)."""
    model = nnx.eval_shape(lambda: UNet(config, rngs=nnx.Rngs(0)))
    rng = np.random.default_rng(seed)

    def initial(leaf: jax.ShapeDtypeStruct) -> jax.Array:
        if len(leaf.shape) < 2:
            return jnp.zeros(leaf.shape, leaf.dtype)
        receptive = int(np.prod(leaf.shape[:-2]))
        limit = np.sqrt(6.0 / (receptive * (leaf.shape[-2] + leaf.shape[-1])))
        return jnp.asarray(rng.uniform(-limit, limit, leaf.shape), leaf.dtype)

    graph, state = nnx.split(model)
    return nnx.merge(graph, jax.tree.map(initial, state))


def forget_paths(directory: str | os.PathLike[str]) -> None:
    """Rewrite Orbax's `commit_success.txt` markers under `directory` without the absolute
    path they name, so that a directory built elsewhere and moved into place (a stage's
    work directory) records nothing of where it was written. Orbax only checks that the
    markers exist."""
    for marker in sorted(Path(directory).rglob(COMMIT_MARKER)):
        if marker.read_text() != COMMIT_TEXT:
            atomic_write_text(marker, COMMIT_TEXT)


def save_model(directory: str | os.PathLike[str], model: UNet, info: ModelInfo) -> Path:
    """Write weights then `model.json` into `directory` (replacing an older model)."""
    out = Path(directory).absolute()
    out.mkdir(parents=True, exist_ok=True)
    (out / MODEL_JSON).unlink(missing_ok=True)
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(out / "params", nnx.state(model, nnx.Param), force=True)
        checkpointer.wait_until_finished()
    forget_paths(out)
    atomic_write_text(out / MODEL_JSON, info.to_json())
    return out


def read_info(directory: str | os.PathLike[str]) -> ModelInfo:
    path = Path(directory) / MODEL_JSON
    if not path.exists():
        raise InputError("not a templearn model (no model.json)", directory)
    try:
        record = json.loads(path.read_text())
        config = record["config"]
        config["widths"] = tuple(config["widths"])
        how = record.get("normalisation")  # models before whitening: a text, z-score
        normalisation = (Normalisation(**how) if isinstance(how, dict)  # absent keys: defaults
                         else Normalisation("zscore"))
        normalisation.validate()
        return ModelInfo(UNetConfig(**config), list(record["class_names"]),
                         float(record["voxel_size"]), int(record["patch"]), normalisation)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, InputError) as exc:
        raise InputError(f"unreadable model.json ({exc})", path) from None


def load_model(directory: str | os.PathLike[str]) -> tuple[UNet, ModelInfo]:
    """The model saved in `directory` and its description."""
    info = read_info(directory)
    model = new_model(info.config, 0)
    abstract = nnx.state(model, nnx.Param)
    with ocp.StandardCheckpointer() as checkpointer:
        restored = checkpointer.restore(Path(directory).absolute() / "params", abstract)
    nnx.update(model, restored)
    return model, info
