"""Settings of the U-Net code that the stage layer needs without importing JAX.

The defaults here are the single source of the `train` and `segment` stages' defaults
(`templearn.stages.train`, `templearn.stages.segment` read them as class attributes), and
the name tuples are the choices the CLI offers; `model`, `losses`, `data`, `segment` and
`train` import them from here. Standard library only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

from templearn.errors import InputError

#: Convolution implementations (`templearn.unet.model`); "auto" picks one for the backend.
CONV_IMPLS = ("xla", "shift", "im2col", "im2col_x")
CONV_CHOICES = ("auto", *CONV_IMPLS)
#: Loss names (`templearn.unet.losses.loss_function`).
LOSSES = ("tversky", "dice", "cross-entropy", "tversky-ce", "nnpu", "pu-kl")
#: Architecture presets (`templearn.unet.model.PRESETS`).
PRESET_NAMES = ("deepfinder", "cpu-small")
#: How tomograms are prepared for the network (`templearn.unet.normalise`).
NORMALISATIONS = ("zscore", "whiten", "whiten-noise", "whiten-snr")
#: Those that measure the noise between a tomogram's half tomograms (`templearn.halves`).
NOISE_UNIT_NORMALISATIONS = ("whiten-noise", "whiten-snr")
#: Learning-rate schedules (`templearn.unet.train.learning_rate_schedule`).
LR_SCHEDULES = ("constant", "cosine")
#: How the validation tomograms are picked (`templearn.unet.train.pick_level_metrics`).
VALIDATION_PICK_METHODS = ("components", "meanshift")

S = TypeVar("S")


def from_fields(cls: type[S], source: Any, **values: Any) -> S:
    """The settings dataclass `cls` from the same-named attributes of `source` (a stage's
    Params) plus `values`; fields `source` lacks keep `cls`'s defaults."""
    given = {f.name: getattr(source, f.name) for f in dataclasses.fields(cls)  # type: ignore
             if f.name not in values and hasattr(source, f.name)}
    return cls(**given, **values)


@dataclass(frozen=True)
class Normalisation:
    """How tomograms are prepared for the network (`templearn.unet.normalise`): `method`
    one of NORMALISATIONS, and for the `whiten*` ones the σ (voxels) of the Gaussian
    low-pass envelope and of the Gaussian whose complement high-passes (0: none)."""

    method: str = "whiten"
    lowpass: float = 1.0
    highpass: float = 0.0

    @property
    def needs_halves(self) -> bool:
        """Whether tomograms need their even/odd half tomograms (`templearn.halves`)."""
        return self.method in NOISE_UNIT_NORMALISATIONS

    def validate(self) -> None:
        if self.method not in NORMALISATIONS:
            raise InputError(f"--normalise must be one of {', '.join(NORMALISATIONS)}, got "
                             f"{self.method!r}")
        if self.lowpass < 0:
            raise InputError(f"--whiten-lowpass must not be negative, got {self.lowpass}")
        if self.highpass < 0:
            raise InputError(f"--whiten-highpass must not be negative, got {self.highpass}")


@dataclass(frozen=True)
class SamplingParams:
    """Patch size (voxels, multiple of 4), batch size, random shift (voxels), share of
    background patches, whether to rotate by 180° about Y, and the intensity augmentation
    (`templearn.unet.augment`): share of patches augmented, largest blur σ (voxels) and
    largest added-noise s.d. (in tomogram s.d.s); share of patches replaced by
    particle-free noise labelled background."""

    patch: int = 48
    batch: int = 25
    shift: int = 13
    background_fraction: float = 0.1
    rotate: bool = True
    augment: float = 0.0
    augment_blur: float = 1.0
    augment_noise: float = 3.0
    noise_fraction: float = 0.0


@dataclass(frozen=True)
class ValidationPicking:
    """How the validation tomograms are picked and scored after training, to choose the
    model's smallest cluster size: best as `templearn pick` and `evaluate` will do it on
    the user's tomograms (method; MeanShift radius in voxels per class name; match
    distance in voxels), since cluster sizes depend on the method."""

    method: str = "components"
    radius: dict[str, float] = field(default_factory=dict)
    distance: float = 10.0


@dataclass(frozen=True)
class TrainParams:
    """Optimisation and validation settings (DeepFinder defaults where it has them)."""

    epochs: int = 100
    steps: int = 100  # per epoch
    learning_rate: float = 1e-4
    #: "constant", or "cosine": from learning_rate down to 0 over epochs × steps.
    lr_schedule: str = "constant"
    loss: str = "tversky"
    alpha: float = 0.5
    beta: float = 0.5
    prior: float = 0.01  # PU losses: expected share of particle voxels
    validation_batches: int = 4
    pick_validation: bool = True  # segment + pick + evaluate the validation tomograms at the end
    validation_picking: ValidationPicking = field(default_factory=ValidationPicking)
    seed: int = 0
    sampling: SamplingParams = field(default_factory=SamplingParams)
    normalisation: Normalisation = field(default_factory=Normalisation)
    #: Seconds between progress lines within an epoch (the first estimate comes earlier).
    log_every_s: float = 30.0


@dataclass(frozen=True)
class TileParams:
    """Tile side (multiple of 4), margin dropped per side, extra overlap, tiles per call."""

    tile: int = 112
    crop: int = 16
    overlap: int = 0
    batch: int = 1

    def validate(self) -> None:
        if self.tile % 4 or self.tile < 8:
            raise InputError(f"--tile must be a multiple of 4 and at least 8, got {self.tile}")
        if self.crop < 0 or self.overlap < 0 or self.tile - 2 * self.crop - self.overlap < 1:
            raise InputError(f"--crop {self.crop} and --overlap {self.overlap} leave nothing "
                             f"of a {self.tile}-voxel tile")
        if self.batch < 1:
            raise InputError(f"--batch must be at least 1, got {self.batch}")
