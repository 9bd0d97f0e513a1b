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
