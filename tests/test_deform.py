import numpy as np
import pytest

from templearn.deform import deform
from templearn.errors import InputError
from templearn.nma import compute_normal_modes
from templearn.structure import read_structure


@pytest.fixture(scope="module")
def model_and_modes():
    from tests.conftest import NUCLEOSOME, shared_file

    model = read_structure(shared_file(NUCLEOSOME))
    return model, compute_normal_modes(model)


def test_rmsd_follows_amplitude_and_mode_count(model_and_modes):
    model, modes = model_and_modes
    result = deform(model, modes, 200, 100.0, np.random.default_rng(0))
    # Unit-norm modes, amplitudes U(-A, A): E[RMSD²] = k·A²/3 / N when modes are orthogonal.
    expected = 100.0 * np.sqrt(len(modes.eigenvalues) / (3 * model.n_atoms))
    assert np.sqrt((result.rmsd**2).mean()) == pytest.approx(expected, rel=0.1)
    assert 1.5 < np.median(result.rmsd) < 3.5  # the paper reports ≈2 Å for nucleosomes
    assert np.all(np.abs(result.amplitudes) <= 100.0)
    # The reported RMSD is the RMSD of the coordinates actually produced.
    centred = model.coords - model.coords.mean(axis=0)
    direct = np.sqrt(((result.coords[3] - centred) ** 2).sum(axis=1).mean())
    assert result.rmsd[3] == pytest.approx(direct)


def test_same_seed_same_conformers_other_seed_differs(model_and_modes):
    model, modes = model_and_modes
    a = deform(model, modes, 3, 100.0, np.random.default_rng(7))
    b = deform(model, modes, 3, 100.0, np.random.default_rng(7))
    c = deform(model, modes, 3, 100.0, np.random.default_rng(8))
    np.testing.assert_array_equal(a.coords, b.coords)
    assert not np.allclose(a.coords, c.coords)


def test_zero_amplitude_gives_the_centred_input(model_and_modes):
    model, modes = model_and_modes
    result = deform(model, modes, 1, 0.0, np.random.default_rng(0))
    np.testing.assert_allclose(result.coords[0], model.coords - model.coords.mean(axis=0))


def test_modes_of_another_structure_are_rejected(model_and_modes):
    model, modes = model_and_modes
    shifted = type(model)(**{**model.__dict__, "coords": model.coords + 5.0})
    with pytest.raises(InputError, match="other coordinates"):
        deform(shifted, modes, 1, 100.0, np.random.default_rng(0))
