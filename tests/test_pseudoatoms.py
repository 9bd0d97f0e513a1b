import gemmi
import numpy as np
import pytest

from templearn.density import density_map
from templearn.errors import InputError
from templearn.mrc import Volume
from templearn.pseudoatoms import foreground_mask, pseudo_atomic_model, pseudo_atoms
from templearn.structure import read_structure, write_structure
from tests.conftest import ncc


@pytest.fixture(scope="module")
def nucleosome_map():
    from tests.conftest import NUCLEOSOME, shared_file

    model = read_structure(shared_file(NUCLEOSOME))
    return density_map(model.coords, model.atomic_numbers, voxel_size=6.0, resolution=15.0)


def test_round_trip_redensified_model_correlates_with_the_map(tmp_path, nucleosome_map):
    model = pseudo_atoms(nucleosome_map, np.random.default_rng(0), lowpass=15.0)
    path = write_structure(tmp_path / "pseudo.pdb", model)
    back = read_structure(path)  # readable by gemmi (Parakeet reads through gemmi too)
    assert set(back.elements) == {"C", "P"}
    redensified = density_map(back.coords, back.atomic_numbers, 6.0, 15.0,
                              box=nucleosome_map.data.shape[0])
    assert ncc(redensified.data, nucleosome_map.data) > 0.9
    # Placed in the map's frame: centres of mass agree within a voxel.
    com = (back.coords * back.atomic_numbers[:, None]).sum(0) / back.atomic_numbers.sum()
    n = nucleosome_map.data.shape[0]
    centre = np.array(nucleosome_map.origin) + (n - 1) / 2 * 6.0
    assert np.linalg.norm(com - centre) < 6.0


def test_phosphorus_fraction_is_exact_and_raises_contrast(nucleosome_map):
    totals = []
    for fraction in (0.0, 1 / 3, 1.0):
        st = pseudo_atoms(nucleosome_map, np.random.default_rng(0), phosphorus_fraction=fraction)
        elements = [a.element.name for r in st[0].all() for a in [r.atom]]
        assert elements.count("P") == round(fraction * len(elements))
        totals.append(sum(gemmi.Element(e).atomic_number for e in elements))
    assert totals[0] < totals[1] < totals[2]


def test_mass_threshold_encloses_the_requested_volume(nucleosome_map):
    mask = foreground_mask(nucleosome_map, 0.0, mass_kda=200.0)
    assert mask.sum() == pytest.approx(200e3 * 1.21 / 6.0**3, abs=2)


def test_empty_foreground_is_an_input_error():
    with pytest.raises(InputError, match="threshold"):
        foreground_mask(Volume(np.zeros((8, 8, 8), np.float32), 5.0), 0.0, threshold=1.0)


def test_bad_phosphorus_fraction_is_an_input_error(nucleosome_map):
    with pytest.raises(InputError, match="fraction"):
        pseudo_atoms(nucleosome_map, np.random.default_rng(0), phosphorus_fraction=1.5)


def test_mass_beyond_the_map_is_an_input_error_before_the_lowpass(monkeypatch):
    import templearn.pseudoatoms as module

    monkeypatch.setattr(module, "gaussian_lowpass", lambda *a: pytest.fail("low-passed first"))
    with pytest.raises(InputError, match="kDa"):
        foreground_mask(Volume(np.ones((8, 8, 8), np.float32), 5.0), 20.0, mass_kda=1e6)


def test_large_models_keep_one_subchain_per_chain(rng):
    # A subchain per residue made gemmi's entity set-up and mmCIF writing quadratic.
    model = pseudo_atomic_model(rng.uniform(0, 100, (12_000, 3)), np.zeros(12_000, bool))
    model.setup_entities()
    assert [ch.name for ch in model[0]] == ["A", "B"]
    assert {r.subchain for ch in model[0] for r in ch} == {"A", "B"}
    assert len(model.entities) == 1
