import mrcfile
import numpy as np
import pytest

from templearn.errors import InputError
from templearn.files import atomic_path
from templearn.mrc import Volume, read_mrc, write_mrc


def test_round_trip_keeps_data_voxel_size_and_origin(tmp_path, rng):
    data = rng.normal(size=(4, 5, 6)).astype(np.float32)
    path = write_mrc(tmp_path / "v.mrc", Volume(data, 7.5, (1.0, -2.0, 3.5)))
    volume = read_mrc(path)
    np.testing.assert_array_equal(volume.data, data)
    assert volume.voxel_size == pytest.approx(7.5)
    assert volume.origin == pytest.approx((1.0, -2.0, 3.5))
    with mrcfile.open(path) as mrc:  # [z, y, x] in memory = nx 6, ny 5, nz 4 in the header
        assert (int(mrc.header.nx), int(mrc.header.ny), int(mrc.header.nz)) == (6, 5, 4)


def test_integer_maps_use_smallest_integer_mode(tmp_path):
    labels = np.zeros((3, 3, 3), dtype=np.int64)
    labels[1, 1, 1] = 3
    assert read_mrc(write_mrc(tmp_path / "l.mrc", Volume(labels, 4.0))).data.dtype == np.int8
    labels[0, 0, 0] = 1000
    assert read_mrc(write_mrc(tmp_path / "l.mrc", Volume(labels, 4.0))).data.dtype == np.int16


def test_garbage_file_is_an_input_error(tmp_path):
    bad = tmp_path / "bad.mrc"
    bad.write_bytes(b"not an mrc" * 10)
    with pytest.raises(InputError, match=r"bad\.mrc.*MRC"):
        read_mrc(bad)


def test_zero_voxel_size_is_an_input_error(tmp_path):
    path = tmp_path / "z.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.zeros((2, 2, 2), np.float32))
        mrc.voxel_size = 0.0
    with pytest.raises(InputError, match="voxel size"):
        read_mrc(path)


def test_two_dimensional_image_is_an_input_error(tmp_path):
    path = tmp_path / "img.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.zeros((8, 8), np.float32))
    with pytest.raises(InputError, match="3D"):
        read_mrc(path)


def test_failed_write_leaves_no_file(tmp_path):
    target = tmp_path / "out.mrc"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half written")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
