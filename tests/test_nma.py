import numpy as np
import pytest

from templearn import nma
from templearn.errors import InputError
from templearn.nma import (
    NormalModes,
    anm_hessian,
    canonical_signs,
    compute_normal_modes,
    node_of_each_atom,
    select_nodes,
)
from templearn.structure import read_structure


@pytest.fixture(scope="module")
def nucleosome_modes():
    from tests.conftest import NUCLEOSOME, shared_file

    model = read_structure(shared_file(NUCLEOSOME))
    return model, compute_normal_modes(model)


def test_sparse_hessian_equals_prody_dense_hessian(nucleosome):
    prody = pytest.importorskip("prody")
    model = read_structure(nucleosome)
    nodes = model.coords[select_nodes(model, "name CA P")]
    anm = prody.ANM()
    anm.buildHessian(nodes, cutoff=15.0, gamma=1.0)
    np.testing.assert_allclose(anm_hessian(nodes, 15.0, 1.0).toarray(), anm.getHessian(),
                               atol=1e-10)


def test_modes_match_prody_eigenvalues_and_subspace(nucleosome_modes):
    prody = pytest.importorskip("prody")
    model, modes = nucleosome_modes
    nodes = model.coords[modes.node_indices] - model.coords.mean(axis=0)
    anm = prody.ANM()
    anm.buildHessian(nodes, cutoff=15.0, gamma=1.0)
    anm.calcModes(20)
    np.testing.assert_allclose(modes.eigenvalues, anm.getEigvals(), rtol=1e-6)
    # Compare on the nodes: the extended modes restricted to the nodes span ProDy's modes.
    ours = modes.modes[:, modes.node_indices, :].reshape(20, -1)
    ours /= np.linalg.norm(ours, axis=1, keepdims=True)
    theirs = anm.getArray().T
    overlap = np.abs(ours[:10] @ theirs[:10].T)
    assert np.linalg.svd(overlap, compute_uv=False).min() > 0.99


def test_modes_are_unit_norm_non_rigid_and_extended_per_residue(nucleosome_modes):
    model, modes = nucleosome_modes
    assert modes.modes.shape == (20, model.n_atoms, 3)
    np.testing.assert_allclose(np.linalg.norm(modes.modes.reshape(20, -1), axis=1), 1.0,
                               rtol=1e-5)
    assert np.all(modes.eigenvalues > 0) and np.all(np.diff(modes.eigenvalues) >= 0)
    assert modes.n_zero_modes >= 6
    # Rigid-body translations are excluded: the node displacements of each mode sum to ~0.
    node_sum = modes.modes[:, modes.node_indices, :].sum(axis=1)
    node_norm = np.linalg.norm(modes.modes[:, modes.node_indices, :], axis=(1, 2))
    assert np.all(np.linalg.norm(node_sum, axis=1) < 1e-4 * node_norm * len(modes.node_indices))
    # Every atom of a residue with one node moves exactly like that node.
    ca = np.flatnonzero(model.atom_names == "CA")[0]
    same_residue = model.residue_index == model.residue_index[ca]
    np.testing.assert_allclose(modes.modes[:, same_residue, :],
                               np.repeat(modes.modes[:, [ca], :], same_residue.sum(), axis=1))


def test_atom_follows_nearest_node_of_its_residue_or_nearest_node():
    coords = np.array([[0, 0, 0], [10, 0, 0], [1, 0, 0], [9, 0, 0], [50, 0, 0], [12, 0, 0.0]])
    residue = np.array([0, 0, 0, 0, 1, 2])
    nodes = np.array([0, 1, 4])  # residue 0 has two nodes, residue 2 none
    np.testing.assert_array_equal(node_of_each_atom(coords, residue, nodes), [0, 1, 0, 1, 2, 1])


def test_save_load_round_trip(tmp_path, nucleosome_modes):
    _, modes = nucleosome_modes
    back = NormalModes.load(modes.save(tmp_path / "m.npz"))
    np.testing.assert_allclose(back.modes, modes.modes, rtol=1e-6)
    np.testing.assert_array_equal(back.node_indices, modes.node_indices)
    assert back.params["selection"] == "name CA P"


def test_not_a_modes_file_is_an_input_error(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, a=np.zeros(3))
    with pytest.raises(InputError, match="modes file"):
        NormalModes.load(path)


@pytest.mark.parametrize("selection", ["name XYZ", "name CA and not name CA"])
def test_empty_selection_is_an_input_error(nucleosome, selection):
    with pytest.raises(InputError, match="matches no atoms"):
        compute_normal_modes(read_structure(nucleosome), selection=selection)


def test_invalid_selection_is_an_input_error(nucleosome):
    with pytest.raises(InputError, match="invalid atom selection"):
        compute_normal_modes(read_structure(nucleosome), selection="name CA and and")


def test_canonical_signs_make_the_largest_component_positive_whatever_the_input_sign(rng):
    vectors = rng.normal(size=(50, 6))
    fixed = canonical_signs(vectors)
    flips = np.array([1, -1, -1, 1, -1, 1])
    np.testing.assert_array_equal(canonical_signs(-vectors), fixed)
    np.testing.assert_array_equal(canonical_signs(vectors * flips), fixed)
    np.testing.assert_array_equal(np.abs(fixed), np.abs(vectors))
    largest = fixed[np.abs(fixed).argmax(axis=0), np.arange(6)]
    assert np.all(largest > 0)
    # Components tied in magnitude (up to noise): the first one decides, for either sign.
    tied = np.array([[0.0], [-0.6], [0.6 + 1e-12], [0.1]])
    np.testing.assert_array_equal(canonical_signs(tied)[:, 0], [0.0, 0.6, -0.6 - 1e-12, -0.1])
    np.testing.assert_array_equal(canonical_signs(-tied), canonical_signs(tied))


def test_modes_do_not_depend_on_the_solver_start(monkeypatch, nucleosome_modes):
    model, reference = nucleosome_modes
    eigsh, starts = nma.spla.eigsh, []

    def eigsh_from(v0):
        def solve(*args, **kwargs):
            starts.append(v0)
            return eigsh(*args, **{**kwargs, "v0": v0})
        return solve

    start = np.random.default_rng(5).normal(size=3 * len(reference.node_indices))
    results = []
    for v0 in (start, -start):  # ±v0 gives exactly negated eigenvectors without a convention
        monkeypatch.setattr(nma.spla, "eigsh", eigsh_from(v0))
        results.append(compute_normal_modes(model))
    assert len(starts) >= 2  # the Lanczos path was taken
    np.testing.assert_allclose(results[0].modes, results[1].modes, atol=1e-6)
    np.testing.assert_allclose(results[0].modes, reference.modes, atol=1e-6)


def test_two_runs_give_bit_identical_modes(nucleosome_modes):
    """The solver's start vector is fixed, so reruns reproduce the modes to the bit."""
    model, reference = nucleosome_modes
    np.testing.assert_array_equal(compute_normal_modes(model).modes, reference.modes)


def test_dense_and_sparse_solvers_give_the_same_modes(monkeypatch, nucleosome_modes):
    model, _ = nucleosome_modes
    dense = compute_normal_modes(model, selection="name P")  # 294 nodes: the dense solver
    monkeypatch.setattr(nma, "DENSE_MAX_DOF", 0)
    sparse = compute_normal_modes(model, selection="name P")
    np.testing.assert_allclose(sparse.eigenvalues, dense.eigenvalues, rtol=1e-8)
    np.testing.assert_allclose(sparse.modes, dense.modes, atol=1e-6)
