"""The tiny committed inputs in tests/data read with the project's readers, and agree with
what tests/data/make_test_data.py makes from the structure."""

from __future__ import annotations

import numpy as np
import pytest

from templearn.data import structures_dir
from templearn.density import density_map
from templearn.maps_index import read_map_entries
from templearn.mrc import read_mrc
from templearn.sample import read_molecules
from templearn.structure import read_structure
from templearn.tiltseries import read_tilt_series
from tests.conftest import TEST_DATA


def test_committed_data_is_small():
    files = [p for p in TEST_DATA.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert sum(p.stat().st_size for p in files) < 300_000


def test_structure_is_the_bundled_3qm1(tiny_structure):
    assert tiny_structure.read_bytes() == (
        structures_dir() / "distractors" / "3qm1.cif.gz").read_bytes()
    model = read_structure(tiny_structure)
    assert model.n_atoms == 2028
    assert 27 < model.mass_da() / 1000 < 28


def test_map_and_index(tiny_map, tiny_structure):
    volume = read_mrc(tiny_map)
    assert volume.data.shape == (16, 16, 16)
    assert volume.voxel_size == 8.0
    [entry] = read_map_entries([tiny_map])
    assert entry.name == "3qm1"
    assert entry.structure_file.is_file()
    model = read_structure(entry.structure_file)
    assert entry.mass_da == pytest.approx(model.mass_da(), rel=1e-9)
    expected = density_map(model.coords, model.atomic_numbers, 8.0, 16.0, 16)
    np.testing.assert_allclose(volume.data, expected.data, rtol=1e-5, atol=1e-4)


def test_molecules(tiny_molecules):
    table, grid = read_molecules(tiny_molecules)
    assert len(table) == 3
    assert grid.shape_zyx == (16, 32, 32) and grid.voxel_size == 8.0
    for column in ("tlMapFile", "tlStructureFile"):
        assert all(read_mrc(p) if column == "tlMapFile" else read_structure(p)
                   for p in table[column])


def test_tilt_series(tiny_tilt_series):
    series = read_tilt_series(tiny_tilt_series)
    assert series.images.shape == (5, 32, 32)
    np.testing.assert_allclose(series.angles_deg, [-40, -20, 0, 20, 40])
    assert series.pixel_size == 8.0
    assert series.meta["sample"]["thickness_angst"] == 128.0
    # The molecules stand out of the noise in every view (noise: MAD of the view).
    images = series.images
    mad = np.median(np.abs(images - np.median(images, axis=(1, 2), keepdims=True)), axis=(1, 2))
    assert (images.max(axis=(1, 2)) > 10 * mad).all()
