"""How to reconstruct: `ReconstructParams` and the choices it allows (no heavy imports).

`ReconstructParams` names, defaults and validates the reconstruction options; the
`reconstruct` stage derives its CLI options from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from templearn.errors import InputError

if TYPE_CHECKING:
    from templearn.reconstruct.radial import RadialFilter

METHODS = ("wbp", "sirt", "fake-sirt")
BACKENDS = ("builtin", "imod")
ANTIALIAS = ("fourier", "lanczos")


@dataclass(frozen=True)
class ReconstructParams:
    """How to reconstruct. `bin_factor` or `pixel_size` (Å) set the output sampling (default:
    the series' own); `thickness` is in output voxels (default: the sample's thickness from
    `meta.json`); `iterations` applies to `sirt` and `fake-sirt`."""

    method: str = "wbp"
    iterations: int = 10
    radial: tuple[float, float] = (0.5, 0.5)
    bin_factor: float | None = None
    pixel_size: float | None = None
    antialias: str = "fourier"
    thickness: int | None = None
    backend: str = "builtin"

    def validate(self) -> None:
        """InputError (naming the CLI option) for any value that cannot work."""
        for name, value, allowed in (("--method", self.method, METHODS),
                                     ("--backend", self.backend, BACKENDS),
                                     ("--antialias", self.antialias, ANTIALIAS)):
            if value not in allowed:
                raise InputError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        if self.method != "wbp" and self.iterations < 1:
            raise InputError(f"--iterations must be ≥ 1, got {self.iterations}")
        if self.backend == "imod" and self.method == "sirt":
            raise InputError("--backend imod offers wbp and fake-sirt, not sirt; use "
                             "--backend builtin for SIRT")
        cutoff, falloff = self.radial
        if not (cutoff > 0 and falloff >= 0):
            raise InputError(f"--radial needs cutoff > 0 and falloff ≥ 0, got {cutoff},{falloff}")
        if self.bin_factor is not None and self.pixel_size is not None:
            raise InputError("give --bin or --pixel-size, not both")
        if self.bin_factor is not None and not self.bin_factor > 0:
            raise InputError(f"--bin must be positive, got {self.bin_factor:g}")
        if self.pixel_size is not None and not self.pixel_size > 0:
            raise InputError(f"--pixel-size must be positive, got {self.pixel_size:g}")
        if self.thickness is not None and self.thickness < 1:
            raise InputError(f"--thickness must be a positive number of voxels, "
                             f"got {self.thickness}")

    def radial_filter(self) -> RadialFilter:
        from templearn.reconstruct.radial import RadialFilter

        k = self.iterations if self.method == "fake-sirt" else 0
        return RadialFilter(self.radial[0], self.radial[1], k)
