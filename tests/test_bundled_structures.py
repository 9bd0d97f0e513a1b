"""The curated structure set shipped in templearn.data: present, small, readable, and the
same atoms as its sources (compared when ../shared/data is available)."""

from __future__ import annotations

import numpy as np
import pytest

from templearn.data import distractor_structures, structures_dir, target_structure
from templearn.data.curate import DISTRACTORS, TARGET
from templearn.structure import read_structure, structure_stem
from tests.conftest import STRUCTURES, shared_file

#: The set must stay small enough to ship in the package (about 10 MB).
MAX_TOTAL_BYTES = 10_500_000


def test_helpers_return_the_bundled_files():
    assert target_structure().name == "4v5d.cif.gz"
    paths = distractor_structures()
    assert len(paths) >= 20
    assert {structure_stem(p) for p in paths} == {e.id for e in DISTRACTORS}
    assert all(p.is_file() and p.name.endswith(".cif.gz") for p in paths)


def test_set_is_small_and_documented():
    files = [target_structure(), *distractor_structures()]
    assert sum(p.stat().st_size for p in files) <= MAX_TOTAL_BYTES
    readme = (structures_dir() / "README.md").read_text()
    for entry in (TARGET, *DISTRACTORS):
        assert f"| {entry.id.upper()} |" in readme
    assert "CC0 1.0" in readme


def test_bundled_files_read_and_span_sizes():
    masses = {structure_stem(p): read_structure(p).mass_da() / 1000
              for p in distractor_structures()}
    assert min(masses.values()) < 40
    assert max(masses.values()) > 500
    assert sum(1 for m in masses.values() if 100 <= m <= 400) >= 10


@pytest.mark.slow
@pytest.mark.parametrize("entry", [TARGET, *DISTRACTORS], ids=lambda e: e.id)
def test_same_atoms_as_source(entry):
    """Stripping keeps every atom of the first model (one altloc, no waters): same count,
    order, elements, names, coordinates and mass as the source read by read_structure."""
    source = read_structure(shared_file(STRUCTURES / entry.source))
    bundled_path = (target_structure() if entry is TARGET
                    else structures_dir() / "distractors" / f"{entry.id}.cif.gz")
    bundled = read_structure(bundled_path)
    assert bundled.n_atoms == source.n_atoms
    assert (bundled.atomic_numbers == 1).sum() == 0
    np.testing.assert_array_equal(bundled.atomic_numbers, source.atomic_numbers)
    np.testing.assert_array_equal(bundled.atom_names, source.atom_names)
    np.testing.assert_array_equal(bundled.residue_names, source.residue_names)
    np.testing.assert_array_equal(bundled.residue_numbers, source.residue_numbers)
    np.testing.assert_array_equal(bundled.chain_ids, source.chain_ids)
    np.testing.assert_allclose(bundled.coords, source.coords, atol=6e-4)
    np.testing.assert_allclose(bundled.b_factors, source.b_factors, atol=6e-3)
    assert bundled.mass_da() == pytest.approx(source.mass_da(), rel=1e-12)
