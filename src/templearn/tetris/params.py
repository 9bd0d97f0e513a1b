"""Packing parameters and the constants the other tetris modules share (no heavy imports).

`TetrisParams` is the one place that names, defaults and validates the packer's options:
the `tetris` stage derives its CLI defaults from it and builds it from the stage's
Params, so a rule is checked the same way from the command line and from Python.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from templearn.errors import InputError

#: Voxel states of the packing state array.
FREE, OCCUPIED, WALL = 0, 1, 2
#: The local-search proxy tracks free cubes of half-edge 1..PROXY_MAX_HALF voxels.
PROXY_MAX_HALF = 3
#: How masks are made: a fixed threshold (the paper) or enclosing the molecular volume.
MASK_MODES = ("threshold", "volume")
#: Search strategies: windows around proxy candidates, or the whole sample (the paper).
SEARCHES = ("local", "full")
#: Insertion band [r_in, r_out] suited to each mask mode (volume masks then never overlap).
DEFAULT_BAND = {"threshold": (-2, 0), "volume": (0, 1)}


def fft_size(n: int) -> int:
    """Smallest size ≥ n whose prime factors are 2, 3 and 5 (fast FFTs)."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


@dataclass(frozen=True)
class TetrisParams:
    """Packing parameters (voxels unless stated); invalid values raise InputError naming
    the `templearn tetris` option."""

    shape_zyx: tuple[int, int, int] = (64, 192, 192)
    ratio: tuple[int, int] = (1, 2)  # templates : distractors
    band: tuple[int, int] = DEFAULT_BAND["threshold"]  # insertion band [r_in, r_out]
    sigma: float = 1.65  # Gaussian σ before binarisation
    threshold: float = 100.0  # on the e2pdb2mrc scale of `templearn density`
    mask_mode: str = "threshold"  # or "volume": each mask encloses the molecular volume
    rotations: int = 1  # rotations tried per molecule; the tightest fit is kept
    search: str = "local"  # or "full"
    # Proxy candidates tried before the full search (local search): a window search costs
    # ≈ 1 ms, a full search at 192×192×64 ≈ 50 ms; 12 leaves ≈ 1 full search in 150.
    candidates: int = 12
    patience: int = 0  # consecutive molecules that fit nowhere before stopping
    max_molecules: int | None = None
    max_protein_fraction: float | None = None  # stop once Σ molecular volume / sample ≥ this
    seed: int = 0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """InputError naming the CLI option for any value the packer cannot use."""
        if len(self.shape_zyx) != 3 or min(self.shape_zyx) < 1:
            raise InputError(f"--shape must be 3 positive sizes x,y,z, got "
                             f"{','.join(map(str, self.shape_zyx[::-1]))}")
        if len(self.ratio) != 2 or min(self.ratio) < 0:
            raise InputError(f"--ratio must be two numbers ≥ 0 (templates:distractors), got "
                             f"{':'.join(map(str, self.ratio))}")
        if sum(self.ratio) == 0:
            raise InputError("--ratio 0:0 selects no molecules")
        if len(self.band) != 2 or self.band[0] > self.band[1]:
            raise InputError(f"--band: insertion band [{', '.join(map(str, self.band))}] is "
                             "empty (need r_in ≤ r_out)")
        if not (math.isfinite(self.sigma) and self.sigma >= 0):
            raise InputError(f"--sigma must be a number ≥ 0, got {self.sigma}")
        if not math.isfinite(self.threshold):
            raise InputError(f"--threshold must be a finite number, got {self.threshold}")
        if self.mask_mode not in MASK_MODES:
            raise InputError(f"--mask must be one of {', '.join(MASK_MODES)}, got "
                             f"{self.mask_mode!r}")
        if self.search not in SEARCHES:
            raise InputError(f"--search must be one of {', '.join(SEARCHES)}, got "
                             f"{self.search!r}")
        for option, value, least in (("--rotations", self.rotations, 1),
                                     ("candidates", self.candidates, 1),
                                     ("--patience", self.patience, 0),
                                     ("--max-molecules", self.max_molecules, 1),
                                     ("--seed", self.seed, 0)):
            if value is not None and value < least:
                raise InputError(f"{option} must be at least {least}, got {value}")
        fraction = self.max_protein_fraction
        if fraction is not None and not 0 < fraction <= 1:
            raise InputError(f"--max-protein-fraction must be in (0, 1], got {fraction}")
