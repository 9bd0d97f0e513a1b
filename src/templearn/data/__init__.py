"""Data shipped with templearn: a curated set of atomic models (`structures/`).

The set holds the demo's target, the T. thermophilus 70S ribosome (PDB 4V5D), and 20
distractor proteins of 28–730 kDa, stripped to what a density map and a physics
simulation need and gzipped (see `structures/README.md`; rebuilt by
`python -m templearn.data.curate`). Every file reads with `templearn.structure.read_structure`.

    from templearn.data import target_structure, distractor_structures
    target_structure()        # .../structures/4v5d.cif.gz
    distractor_structures()   # [.../structures/distractors/1bxn.cif.gz, ...]
"""

from __future__ import annotations

import atexit
import contextlib
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

#: PDB ID of the demo's target (the file `structures/<id>.cif.gz`).
TARGET_ID = "4v5d"
STRUCTURES_DIR = "structures"
DISTRACTORS_DIR = "distractors"
STRUCTURE_SUFFIX = ".cif.gz"

_extracted = contextlib.ExitStack()
atexit.register(_extracted.close)


def _as_path(item: Traversable) -> Path:
    """A file-system path for a packaged resource (extracted for the life of the process
    when the package is not installed as plain files, e.g. from a zip)."""
    if isinstance(item, Path):
        return item
    return _extracted.enter_context(resources.as_file(item))


def structures_dir() -> Path:
    """The folder of the curated structure set."""
    return _as_path(resources.files(__name__) / STRUCTURES_DIR)


def target_structure() -> Path:
    """The demo's target: the 70S ribosome of T. thermophilus (4V5D), gzipped mmCIF."""
    path = structures_dir() / f"{TARGET_ID}{STRUCTURE_SUFFIX}"
    if not path.is_file():
        raise FileNotFoundError(f"bundled target structure missing: {path}")
    return path


def distractor_structures() -> list[Path]:
    """The bundled distractor proteins (gzipped mmCIF), sorted by file name."""
    paths = sorted((structures_dir() / DISTRACTORS_DIR).glob(f"*{STRUCTURE_SUFFIX}"))
    if not paths:
        raise FileNotFoundError(f"no bundled distractor structures in "
                                f"{structures_dir() / DISTRACTORS_DIR}")
    return paths
