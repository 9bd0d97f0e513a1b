"""Crowded samples: the Template Learning "Tetris" packer, in JAX.

The paper's loop: start with a randomly rotated molecule at the sample centre; for each
next molecule, rotate its map, binarise it (Gaussian σ, threshold), build an insertion
shell = outer(mask) − BIG·core(mask) from the insertion band [r_in, r_out] (core = mask
eroded by −r_in, outer = mask dilated by r_out), correlate the shell with the occupied
sample and place the molecule at the maximum; stop when no position has a positive
score. A positive score means the core touches nothing and the outer layer touches at
least one occupied voxel.

What makes it fast:
- a molecule is rotated, blurred, binarised and eroded/dilated in one jitted function on
  a small box (FFT morphology with ball kernels), several rotations at once if asked;
- in `local` search, a global proxy of where a molecule fits (a free cube with the most
  occupied voxels around it, one map per cube size) is kept up to date incrementally,
  and the exact correlation is done in a small window around its best candidates;
  windows found full are struck off the proxy. Only when no candidate window has room
  is the whole sample searched: first on a 2× coarser grid (max-pooled, so a coarse
  fit is a real fit), then exactly, so the stopping rule is the paper's (the molecule
  fits nowhere). `full` search skips the proxy and searches the whole sample for every
  molecule, like the paper's loop (a GPU does that quickly);
- the occupied sample is the union of the placed masks, updated in place, instead of
  re-blurring and re-thresholding the whole sample density at every step.

Modules, each importing only those above it: `params` (TetrisParams, shared constants;
no heavy imports), `molecules` (maps → MoleculeSet, thresholds, box), `search` (device
kernels and the proxy), `packer` (`pack`, `molecules_table`). The names below are
importable from `templearn.tetris` itself; they load their module (and JAX) on first use,
so `templearn.tetris.params` stays cheap to import.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> the module that defines it.
_EXPORTS = {
    "TetrisParams": "params", "fft_size": "params", "FREE": "params", "OCCUPIED": "params",
    "WALL": "params", "PROXY_MAX_HALF": "params", "MASK_MODES": "params",
    "SEARCHES": "params", "DEFAULT_BAND": "params",
    "MoleculeSet": "molecules", "molecule_set": "molecules", "read_molecule_set": "molecules",
    "map_files": "molecules", "mask_thresholds": "molecules", "molecule_box": "molecules",
    "prepare_molecules": "search", "kernel_spectra": "search", "best_offset": "search",
    "box_sums": "search", "ArgmaxGrid": "search",
    "PackedSample": "packer", "molecule_sequence": "packer", "pack": "packer",
    "molecules_table": "packer",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
