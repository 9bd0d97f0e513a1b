"""Tilt series on disk: `tiltseries.mrc` (`[tilt, y, x]`, sorted by angle), `tiltseries.tlt`
(one angle per line, ascending, as IMOD reads it) and `meta.json` (every parameter).

`meta.json` also records the sample the series was simulated from (its centre and
thickness), so `templearn reconstruct` can place the tomogram on the sample's centre and
choose its thickness without being told.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from templearn.errors import InputError
from templearn.files import atomic_write_text, require_file
from templearn.mrc import Volume, read_mrc, write_mrc

STACK_NAME, ANGLES_NAME, META_NAME = "tiltseries.mrc", "tiltseries.tlt", "meta.json"


@dataclass
class TiltSeries:
    """Images `[tilt, y, x]` (float32), their tilt angles (degrees) and pixel size (Å)."""

    images: np.ndarray
    angles_deg: np.ndarray
    pixel_size: float
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.images.ndim != 3 or len(self.angles_deg) != self.images.shape[0]:
            raise ValueError(f"{len(self.angles_deg)} angles for images of shape "
                             f"{self.images.shape}")


def write_tilt_series(out_dir: str | os.PathLike[str], series: TiltSeries) -> Path:
    """Write the stack, `.tlt` and `meta.json` (each atomically); return the stack path."""
    out = Path(out_dir)
    order = np.argsort(series.angles_deg, kind="stable")
    stack = write_mrc(out / STACK_NAME, Volume(series.images[order].astype(np.float32),
                                               series.pixel_size))
    atomic_write_text(out / ANGLES_NAME,
                      "".join(f"{a:.3f}\n" for a in np.asarray(series.angles_deg)[order]))
    atomic_write_text(out / META_NAME, json.dumps(series.meta, indent=1, default=_json_value))
    return stack


def _json_value(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def read_angles(path: str | os.PathLike[str]) -> np.ndarray:
    """Tilt angles from an IMOD `.tlt` file (one number per line)."""
    p = require_file(path)
    try:
        angles = np.array([float(line) for line in p.read_text().split() if line.strip()])
    except ValueError:
        raise InputError("not a tilt-angle file (one number per line)", p) from None
    if len(angles) == 0 or not np.isfinite(angles).all() or np.abs(angles).max() > 90:
        raise InputError("tilt angles must be finite degrees in [-90, 90]", p)
    return angles


def read_tilt_series(stack: str | os.PathLike[str],
                     angles: str | os.PathLike[str] | None = None) -> TiltSeries:
    """Read a stack with its `.tlt` (default: same stem) and `meta.json` beside it, if any."""
    stack = Path(stack)
    angles_path = Path(angles) if angles is not None else stack.with_suffix(".tlt")
    tilt_angles = read_angles(angles_path)
    volume = read_mrc(stack)
    if volume.data.shape[0] != len(tilt_angles):
        raise InputError(f"{volume.data.shape[0]} images but {len(tilt_angles)} angles in "
                         f"{angles_path.name}", stack)
    meta_path = stack.parent / META_NAME
    meta: dict[str, Any] = {}
    if meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON ({exc})", meta_path) from None
    return TiltSeries(volume.data.astype(np.float32), tilt_angles, volume.voxel_size, meta)
