"""Shared fixtures: paths to ../shared/data (tests skip with a reason when it is absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
STRUCTURES = SHARED_DATA / "structures"
POLNET_MAPS = SHARED_DATA / "maps" / "polnet_10A"
NUCLEOSOME = STRUCTURES / "nucleosome" / "2pyo_centered.pdb"
RIBOSOME_70S = STRUCTURES / "large" / "4v5d.cif"


def shared_file(path: Path) -> Path:
    """Return `path`, or skip the test if the shared data folder does not provide it."""
    if not path.exists():
        pytest.skip(f"shared data not available: {path} (expected ../shared/data beside the repo)")
    return path


@pytest.fixture
def nucleosome() -> Path:
    return shared_file(NUCLEOSOME)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def ncc(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised cross-correlation of two equally shaped arrays."""
    a = (a - a.mean()) / a.std()
    b = (b - b.mean()) / b.std()
    return float((a * b).mean())


@pytest.fixture(scope="session", autouse=True)
def jax_compilation_cache(tmp_path_factory):
    """Reuse XLA compilations within the test session (trainings recompile the same steps)."""
    import os

    os.environ["TEMPLEARN_JAX_CACHE"] = str(tmp_path_factory.mktemp("jax-cache"))
    from templearn.jaxcache import enable_compilation_cache

    enable_compilation_cache()


# Tiny committed inputs in tests/data (what they are: tests/data/README.md; regenerate
# with tests/data/make_test_data.py). They need no ../shared/data.
TEST_DATA = Path(__file__).resolve().parent / "data"
TINY_STRUCTURE = TEST_DATA / "3qm1.cif.gz"


def _absolute_star_paths(path: Path, columns: tuple[str, ...]) -> None:
    """Make the relative paths in `columns` of every block of a STAR file absolute
    (resolved against the file's folder), as the stages write them."""
    import starfile

    blocks = starfile.read(path, always_dict=True)
    for table in blocks.values():
        for column in columns:
            if column in table:
                table[column] = [str((path.parent / v).resolve()) for v in table[column]]
    starfile.write(blocks, path, overwrite=True)


@pytest.fixture
def tiny_data(tmp_path) -> Path:
    """A private copy of tests/data with absolute paths in its STAR files: `3qm1.cif.gz`,
    `maps/` (3qm1.mrc 16³ + maps.star), `sample/molecules.star`, `tilt/` (tilt series)."""
    import shutil

    from templearn import star

    copy = tmp_path / "tiny-data"
    shutil.copytree(TEST_DATA, copy,
                    ignore=shutil.ignore_patterns("*.py", "*.md", "__pycache__"))
    _absolute_star_paths(copy / "maps" / star.MAPS_INDEX, (star.STRUCTURE_FILE,))
    _absolute_star_paths(copy / "sample" / "molecules.star",
                         (star.STRUCTURE_FILE, star.MAP_FILE))
    return copy


@pytest.fixture
def tiny_structure() -> Path:
    """A small real protein, 3QM1 (27.6 kDa, 2028 atoms), gzipped stripped mmCIF
    (read-only: the committed file)."""
    return TINY_STRUCTURE


@pytest.fixture
def tiny_map(tiny_data) -> Path:
    """A 16³ density map of 3QM1 (8 Å/voxel, 16 Å) with its maps.star beside it."""
    return tiny_data / "maps" / "3qm1.mrc"


@pytest.fixture
def tiny_molecules(tiny_data) -> Path:
    """A molecules.star of three 3QM1 molecules (class `esterase`) in a 32×32×16 sample at
    8 Å/voxel; its map and structure paths point into the copy."""
    return tiny_data / "sample" / "molecules.star"


@pytest.fixture
def tiny_tilt_series(tiny_data) -> Path:
    """tiltseries.mrc (5 tilts, -40°..40°, 32×32 px at 8 Å) of the tiny sample, with its
    .tlt and meta.json."""
    return tiny_data / "tilt" / "tiltseries.mrc"
