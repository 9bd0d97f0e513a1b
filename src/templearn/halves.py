"""Even/odd half tomograms: two reconstructions from alternating tilts, for the noise.

Each half is reconstructed from every other image of the tilt series (in tilt-angle order),
so the two share the particles but not the counting noise: half their difference is an
estimate of the full tomogram's noise (as used by cryoCARE and by FSC-based resolution
estimates). `templearn reconstruct --halves` writes them beside the tomogram as
`<stem>_even.mrc` and `<stem>_odd.mrc`; the `whiten-noise` and `whiten-snr`
normalisations (`templearn.unet.normalise`) read them to put every tomogram in units of
its own noise.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from templearn.errors import InputError
from templearn.mrc import read_mrc

#: Suffixes of the even and odd half tomograms' file stems.
HALF_SUFFIXES = ("_even", "_odd")


def half_paths(tomogram: str | os.PathLike[str]) -> tuple[Path, Path]:
    """The even and odd half tomograms that belong beside `tomogram`."""
    path = Path(tomogram)
    return tuple(path.with_name(f"{path.stem}{s}{path.suffix}")  # type: ignore[return-value]
                 for s in HALF_SUFFIXES)


def split_views(angles_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the even and odd views in tilt-angle order."""
    order = np.argsort(np.asarray(angles_deg), kind="stable")
    if len(order) < 4:
        raise InputError(f"--halves needs at least 4 tilts, the series has {len(order)}")
    return order[0::2], order[1::2]


def require_halves(tomogram: str | os.PathLike[str], where: str = "") -> tuple[Path, Path]:
    """The half tomograms' paths, or InputError naming the first missing one (`where`
    prefixes the message: the option or params-file item that named the tomogram)."""
    paths = half_paths(tomogram)
    for path in paths:
        if not path.is_file():
            raise InputError(f"{where}this model needs the even/odd half tomograms beside "
                             f"{Path(tomogram).name} (`templearn reconstruct --halves`)", path)
    return paths


def read_halves(tomogram: str | os.PathLike[str], shape: tuple[int, ...]
                ) -> tuple[np.ndarray, np.ndarray]:
    """The even and odd half tomograms beside `tomogram` (float32), checked against the
    tomogram's `shape`; InputError naming the missing or mismatched file."""
    halves = []
    for path in require_halves(tomogram):
        data = read_mrc(path).data
        if data.shape != tuple(shape):
            raise InputError(f"half tomogram {data.shape} does not match the tomogram "
                             f"{tuple(shape)}", path)
        halves.append(data.astype(np.float32))
    return halves[0], halves[1]
