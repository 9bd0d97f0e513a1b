"""The simulation backends' options, with their defaults (standard library only).

The `simulate` stage derives its CLI defaults from these classes and builds them from its
Params, so each default is written once, here.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SpecimenParams:
    """Ice texture (relative s.d. and correlation length, Å) and gold fiducials."""

    ice_texture: float = 0.1
    ice_texture_length: float = 10.0
    fiducials: int = 0
    fiducial_radius: float = 50.0


@dataclass(frozen=True)
class FastParams:
    """Options of the fast simulator (pixel sizes in Å; None = derived)."""

    pixel_size: float | None = None  # output pixel; default: the sample's voxel size
    sim_pixel: float | None = None  # image-formation pixel; default: pixel_size / 2
    thickness: float | None = None  # ice slab (Å); default: the sample's thickness
    ideal: bool = False
    damage: bool = True
    specimen: SpecimenParams = field(default_factory=SpecimenParams)
    seed: int = 0


@dataclass(frozen=True)
class ParakeetParams:
    """Options of the Parakeet backend (lengths in Å)."""

    pixel_size: float | None = None  # output pixel; default: the sample's voxel size
    sim_pixel: float = 1.25  # requested simulation pixel (made to divide the output pixel)
    slice_thickness: float = 3.0  # multislice slice thickness, as in the paper
    thickness: float | None = None  # ice slab; default: the sample's thickness
    ice: bool = True  # Gaussian-random-field ice model
    damage: bool = True
    sensitivity: float = 0.08  # B-factor per e⁻/Å² / 8π² (paper: 0.08; Parakeet: 0.022)
    margin: int = 20  # simulation margin and padding, pixels of the simulation grid
    padding: int = 20
    device: str = "auto"  # auto | cpu | gpu
    keep_intermediates: bool = False
    seed: int = 0
