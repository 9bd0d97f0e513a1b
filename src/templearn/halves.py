"""Even/odd half tomograms: two reconstructions from alternating tilts, for the noise.

Each half is reconstructed from every other image of the tilt series (in tilt-angle order),
so the two share the particles but not the counting noise: half their difference is an
estimate of the full tomogram's noise (as used by cryoCARE and by FSC-based resolution
estimates). `templearn reconstruct --halves` writes them beside the tomogram as
`<stem>_even.mrc` and `<stem>_odd.mrc`; the `whiten-noise` and `whiten-snr`
normalisations (`templearn.unet.normalise`) read them to put every tomogram in units of
its own noise. `half_agreement` tells picks on a structure (present in both halves) from
picks on noise (independent between them).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from templearn.errors import InputError
from templearn.mrc import read_mrc
from templearn.shells import shell_frequencies

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


def require_halves(tomogram: str | os.PathLike[str], where: str = "this model "
                   ) -> tuple[Path, Path]:
    """The half tomograms' paths, or InputError naming the first missing one (`where`
    begins the message: what needs them, e.g. the option or params-file item)."""
    paths = half_paths(tomogram)
    for path in paths:
        if not path.is_file():
            raise InputError(f"{where}needs the even/odd half tomograms beside "
                             f"{Path(tomogram).name}, as {paths[0].name} and {paths[1].name} "
                             "(`templearn reconstruct --halves`, or link your software's "
                             "even/odd reconstructions there)", path)
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


def _spectra_and_shells(even: np.ndarray, odd: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both halves' `rfftn` (flattened) and each coefficient's shell (width 1/max(shape)
    cycles/voxel, up to Nyquist)."""
    n_shells = max(even.shape) // 2 + 1
    shell = np.minimum(np.rint(shell_frequencies(even.shape) * max(even.shape)),
                       n_shells - 1).astype(np.intp).ravel()
    return np.fft.rfftn(even).ravel(), np.fft.rfftn(odd).ravel(), shell


def _fsc(fe: np.ndarray, fo: np.ndarray, shell: np.ndarray) -> np.ndarray:
    n_shells = int(shell.max()) + 1
    cross = np.bincount(shell, (fe * np.conj(fo)).real, n_shells)
    power = np.sqrt(np.bincount(shell, np.abs(fe) ** 2, n_shells)
                    * np.bincount(shell, np.abs(fo) ** 2, n_shells))
    return cross / np.maximum(power, np.finfo(np.float64).tiny)


def shell_fsc(even: np.ndarray, odd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fourier shell correlation of the halves (one value per shell of width 1/max(shape)
    cycles/voxel, up to Nyquist) and each rfft coefficient's shell index."""
    fe, fo, shell = _spectra_and_shells(even, odd)
    return _fsc(fe, fo, shell), shell


class _LocalCorrelation:
    """Pearson correlation of `a` with other volumes within a ball around every voxel (zero
    outside the volume); `a`'s own local sums are computed once."""

    def __init__(self, a: np.ndarray, radius: float) -> None:
        r = int(np.ceil(radius))
        grid = np.mgrid[-r:r + 1, -r:r + 1, -r:r + 1]
        self.ball = ((grid**2).sum(0) <= radius**2).astype(np.float32)
        self.a = a
        self.count = np.maximum(self.local(np.ones_like(a)), 1.0)
        self.sum_a = self.local(a)
        self.var_a = self.local(a * a) - self.sum_a**2 / self.count

    def local(self, v: np.ndarray) -> np.ndarray:
        from scipy.signal import fftconvolve

        return fftconvolve(v, self.ball, mode="same")

    def with_(self, b: np.ndarray) -> np.ndarray:
        sum_b = self.local(b)
        cov = self.local(self.a * b) - self.sum_a * sum_b / self.count
        var = self.var_a * (self.local(b * b) - sum_b**2 / self.count)
        return cov / np.sqrt(np.maximum(var, np.finfo(np.float32).tiny))


def half_agreement(even: np.ndarray, odd: np.ndarray, centres_zyx: np.ndarray,
                   radius: float | np.ndarray) -> np.ndarray:
    """How much the halves agree within `radius` voxels of each centre (one radius, or one
    per centre), in standard deviations above chance.

    A particle is in both halves; counting noise is independent between them. Both halves
    are weighted per frequency shell by √FSC (their own agreement, so the frequencies that
    hold signal count, whatever made the tomogram), then correlated within a ball around
    every voxel. Chance is the same correlation with one half shifted by half the volume
    in y and x, where no structure is shared: its mean and s.d. over all voxels give the
    null. No labels and no tuning: noise scores ≈ N(0, 1)."""
    fe, fo, shell = _spectra_and_shells(even.astype(np.float64), odd.astype(np.float64))
    weight = np.sqrt(np.clip(_fsc(fe, fo, shell), 0.0, None))
    weight[0] = 0.0  # the mean
    rfft_shape = (*even.shape[:-1], even.shape[-1] // 2 + 1)

    def weighted(spectrum: np.ndarray) -> np.ndarray:
        return np.fft.irfftn((spectrum * weight[shell]).reshape(rfft_shape), s=even.shape,
                             axes=tuple(range(even.ndim))).astype(np.float32)

    a, b = weighted(fe), weighted(fo)
    shifted = np.roll(b, (0, even.shape[1] // 2, even.shape[2] // 2), axis=(0, 1, 2))
    centres = np.atleast_2d(np.asarray(centres_zyx, float))
    idx = tuple(np.clip(np.rint(centres).astype(np.intp), 0, np.array(even.shape) - 1).T)
    radii = np.broadcast_to(np.asarray(radius, float), len(centres))
    scores = np.empty(len(centres))
    for value in np.unique(radii):  # one correlation map per radius (per class)
        chosen = radii == value
        correlation = _LocalCorrelation(a, float(value))
        null = correlation.with_(shifted)
        agreement = correlation.with_(b)[tuple(i[chosen] for i in idx)]
        scores[chosen] = (agreement - null.mean()) / max(float(null.std()), 1e-12)
    return scores
