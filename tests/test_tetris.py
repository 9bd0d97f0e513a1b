import numpy as np
import pytest
from scipy.ndimage import affine_transform, gaussian_filter

from templearn import geometry, star
from templearn.density import density_map
from templearn.errors import InputError
from templearn.mrc import Volume
from templearn.sample import Grid
from templearn.tetris.molecules import mask_thresholds, molecule_set
from templearn.tetris.packer import molecules_table, pack
from templearn.tetris.params import TetrisParams
from templearn.tetris.search import box_sums, grow_by_cube

VOXEL = 16.0


def l_shaped_molecule(rng, arm: float) -> tuple[np.ndarray, np.ndarray]:
    """Carbon atoms filling an asymmetric L of two bars (Å), so orientation errors show."""
    # One carbon per 20 Å³, about a protein's atom density.
    long = rng.uniform([-arm, -24, -24], [arm, 24, 24], size=(int(2 * arm * 48 * 48 / 20), 3))
    short = rng.uniform([-arm, 24, -24], [-arm + 48, arm, 24],
                        size=(int(48 * (arm - 24) * 48 / 20), 3))
    coords = np.concatenate([long, short])
    return coords, np.full(len(coords), 6)


@pytest.fixture(scope="module")
def molecules():
    rng = np.random.default_rng(3)
    maps, masses = [], []
    for arm in (60.0, 80.0, 50.0, 90.0):
        coords, z = l_shaped_molecule(rng, arm)
        maps.append(density_map(coords, z, VOXEL, 32.0).data)
        masses.append(12.0 * len(coords) * 2.5)
    return molecule_set(maps, ["t1", "d1", "d2", "d3"], [1, 0, 0, 0], masses, VOXEL,
                        ["tclass", "distractor", "distractor", "distractor"])


def packed_sample(molecules):
    """A small packed sample of the test molecules: table (with a map key per molecule),
    grid, the maps by key, and Tetris's own density of the sample."""
    params = TetrisParams(shape_zyx=(24, 40, 40), seed=4, max_molecules=30)
    result = pack(molecules, params)
    table = molecules_table(result, molecules, "s")
    table[star.MAP_FILE] = [f"map{k}" for k in result.molecule_index]
    sizes = (2 * molecules.centres[:, 0] + 1).astype(int)  # undo the padding of the set
    maps = {f"map{k}": Volume(molecules.maps[k, :n, :n, :n], VOXEL) for k, n in enumerate(sizes)}
    return table, Grid(params.shape_zyx, VOXEL), maps, result.density


def replaced_masks(molecules, params, packed, table):
    """Each molecule's mask re-made independently from the table (scipy), in the sample."""
    thresholds = mask_thresholds(molecules, params)
    out = []
    for i, row in table.iterrows():
        k = int(packed.molecule_index[i])
        n = int(molecules.maps.shape[1])
        blurred = gaussian_filter(molecules.maps[k].astype(np.float64), params.sigma,
                                  mode="constant")
        matrix = geometry.xyz_to_zyx(geometry.relion_to_matrix(
            row[list(star.ANGLES)].to_numpy(float)))
        centre_zyx = np.array([row[c] for c in star.COORDINATES[::-1]])
        grid = np.array(params.shape_zyx)
        # sample voxel q comes from map voxel R⁻¹ (q − centre) + map centre
        offset = molecules.centres[k] - matrix.T @ centre_zyx
        mask = affine_transform(blurred[:n, :n, :n], matrix.T, offset=offset,
                                output_shape=tuple(grid), order=1, cval=0.0) >= thresholds[k]
        out.append(mask)
    return out


def instance_iou(result, masks):
    """IoU per molecule between the instance map and masks re-placed in placement order."""
    union = np.zeros(result.instances.shape, dtype=bool)
    ious = []
    for i, mask in enumerate(masks):
        expected = mask & ~union
        got = result.instances == i + 1
        ious.append((expected & got).sum() / max((expected | got).sum(), 1))
        union |= mask
    return np.array(ious)


@pytest.fixture(scope="module")
def packed(molecules):
    params = TetrisParams(shape_zyx=(24, 48, 40), ratio=(1, 2), seed=5)
    return params, pack(molecules, params)


def test_sample_is_crowded_and_ratio_respected(molecules, packed):
    _, result = packed
    n = len(result.molecule_index)
    assert n >= 20
    assert (result.instances > 0).mean() > 0.5
    n_templates = int(molecules.is_template[result.molecule_index].sum())
    assert abs(n_templates - n / 3) <= 1


def test_table_reproduces_instance_map_and_cores_never_overlap(molecules, packed):
    params, result = packed
    table = molecules_table(result, molecules, "s")
    masks = replaced_masks(molecules, params, result, table)
    iou = instance_iou(result, masks)
    assert iou.min() > 0.85 and iou.mean() > 0.93
    # The core (mask eroded by 2 voxels, band [-2, 0]) of a molecule overlaps no other mask.
    cores = [box_sums(np.pad(mask, 2).astype(np.int32), 2) == 125 for mask in masks]
    for i, core in enumerate(cores):
        others = np.any([m for j, m in enumerate(masks) if j != i], axis=0)
        assert (core & others).sum() <= 0.02 * core.sum()
    # Orientation matters: the inverse rotations reproduce the instance map clearly worse.
    inverse = table.copy()
    angles = table[list(star.ANGLES)].to_numpy(float)
    inverse[list(star.ANGLES)] = geometry.rotation_to_relion(
        geometry.relion_to_rotation(angles).inv())
    wrong = instance_iou(result, replaced_masks(molecules, params, result, inverse))
    assert wrong.mean() < iou.mean() - 0.2


def test_molecules_inside_sample_and_touching(molecules, packed):
    params, result = packed
    table = molecules_table(result, molecules, "s")
    xyz = table[list(star.COORDINATES)].to_numpy()
    assert np.all(xyz >= 0) and np.all(xyz < np.array(params.shape_zyx[::-1]))
    # Every molecule's instance voxels lie inside the sample and none is empty.
    counts = np.bincount(result.instances.ravel(), minlength=len(table) + 1)
    assert np.all(counts[1:] > 0)
    np.testing.assert_allclose(table[star.POSITION_ANGST[0]], xyz[:, 0] * VOXEL)


def test_volume_masks_with_band_0_1_never_overlap(molecules):
    params = TetrisParams(shape_zyx=(24, 40, 40), mask_mode="volume", band=(0, 1), seed=2,
                          max_molecules=40)
    result = pack(molecules, params)
    table = molecules_table(result, molecules, "s")
    masks = replaced_masks(molecules, params, result, table)
    overlap = np.sum(masks, axis=0) > 1
    assert overlap.sum() <= 0.02 * np.sum(masks) and len(table) == 40
    # Volume masks hold about the molecular volume each: packed protein well above 10 %.
    volume = molecules.masses_da[result.molecule_index].sum() * 1.21
    assert volume / (np.prod(params.shape_zyx) * VOXEL**3) > 0.1


def test_same_seed_same_sample_other_seed_differs(molecules):
    params = TetrisParams(shape_zyx=(24, 32, 32), seed=9, max_molecules=15)
    a, b = pack(molecules, params), pack(molecules, params)
    np.testing.assert_array_equal(a.instances, b.instances)
    np.testing.assert_array_equal(a.angles, b.angles)
    c = pack(molecules, TetrisParams(shape_zyx=(24, 32, 32), seed=10, max_molecules=15))
    assert not np.array_equal(a.instances, c.instances)


def test_local_search_packs_as_densely_as_full_search(molecules):
    # The local search is the fast approximation: it may place molecules elsewhere (and
    # sometimes fit more) but must not stop early.
    local = pack(molecules, TetrisParams(shape_zyx=(24, 32, 32), seed=1))
    full = pack(molecules, TetrisParams(shape_zyx=(24, 32, 32), seed=1, search="full"))
    assert len(local.molecule_index) >= 0.85 * len(full.molecule_index)


def test_sample_smaller_than_a_molecule_is_an_input_error(molecules):
    with pytest.raises(InputError, match="does not fit"):
        pack(molecules, TetrisParams(shape_zyx=(4, 4, 4)))


def test_box_sums_match_direct_sums(rng):
    values = rng.integers(0, 2, size=(9, 10, 11))
    sums = box_sums(values, 1)
    assert sums.shape == (7, 8, 9)
    assert sums[2, 3, 4] == values[2:5, 3:6, 4:7].sum()


@pytest.mark.parametrize("times", [1, 2, 3])
def test_growing_by_a_cube_repeatedly_marks_cubes_that_touch_a_blocked_voxel(rng, times):
    blocked = rng.random((14, 15, 16)) < 0.02
    grown = blocked
    for _ in range(times):
        grown = grow_by_cube(grown)
    np.testing.assert_array_equal(grown, box_sums(blocked, times) > 0)


def test_packing_stops_at_the_requested_protein_fraction(molecules):
    params = TetrisParams(shape_zyx=(24, 40, 40), mask_mode="volume", band=(0, 1), seed=2,
                          max_protein_fraction=0.15)
    result = pack(molecules, params)
    volume = molecules.masses_da[result.molecule_index] * 1.21
    sample = np.prod(params.shape_zyx) * VOXEL**3
    assert volume.sum() / sample >= 0.15 > volume[:-1].sum() / sample


@pytest.mark.parametrize(("changes", "needle"), [
    ({"ratio": (1, -2)}, "--ratio"),
    ({"ratio": (0, 0)}, "--ratio"),
    ({"band": (1, -1)}, "--band"),
    ({"shape_zyx": (0, 8, 8)}, "--shape"),
    ({"mask_mode": "sphere"}, "--mask"),
    ({"search": "global"}, "--search"),
    ({"rotations": 0}, "--rotations"),
    ({"patience": -1}, "--patience"),
    ({"max_molecules": 0}, "--max-molecules"),
    ({"max_protein_fraction": 1.5}, "--max-protein-fraction"),
    ({"sigma": -1.0}, "--sigma"),
    ({"seed": -1}, "--seed"),
])
def test_impossible_parameters_are_input_errors_naming_the_option(changes, needle):
    with pytest.raises(InputError, match=needle):
        TetrisParams(**changes)


def test_stage_params_build_the_packer_params():
    from templearn.stages.tetris import Params

    params = Params.from_mapping({"shape": "40,32,24", "ratio": "2:3", "mask": "volume"})
    tetris = params.tetris()
    assert tetris.shape_zyx == (24, 32, 40) and tetris.ratio == (2, 3)
    assert tetris.band == (0, 1)  # the volume masks' default band
    assert Params(band=(-1, 1)).tetris().band == (-1, 1)
    assert Params().tetris() == TetrisParams()  # one set of defaults
    with pytest.raises(InputError, match="--ratio"):
        Params.from_mapping({"ratio": "1:-2"})


def test_params_module_imports_no_jax():
    import subprocess
    import sys

    code = ("import sys; import templearn.stages.tetris, templearn.tetris.params\n"
            "assert 'jax' not in sys.modules and 'numpy' not in sys.modules\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_fixed_threshold_cuts_maps_of_any_voxel_size_at_the_same_density():
    """The same molecule mapped at 8 and 16 Å: the default threshold (given for 16 Å voxels)
    encloses about the same volume in Å³, instead of an 8× too high cut at 8 Å."""
    coords, z = l_shaped_molecule(np.random.default_rng(5), 70.0)
    params = TetrisParams()
    volumes = []
    for voxel in (8.0, 16.0):
        data = density_map(coords, z, voxel, 32.0).data
        molecules = molecule_set([data], ["t"], [1], [1.0], voxel)
        threshold = mask_thresholds(molecules, params)[0]
        blurred = gaussian_filter(data.astype(np.float64), params.sigma * 16.0 / voxel)
        volumes.append((blurred >= threshold).sum() * voxel**3)
    assert 0.7 < volumes[0] / volumes[1] < 1.3
