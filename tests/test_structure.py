import gzip

import gemmi
import numpy as np
import pytest

from templearn.errors import InputError
from templearn.structure import (
    output_suffix,
    read_structure,
    structure_stem,
    with_coords,
    write_structure,
)
from tests.conftest import RIBOSOME_70S, shared_file

PDB_TEXT = """\
ATOM      1  N   ALA A   1      11.104   6.134  -6.504  1.00 20.00           N
ATOM      2  CA  ALA A   1      11.639   6.071  -5.147  1.00 21.00           C
ATOM      3  C   ALA A   1      13.140   6.232  -5.133  1.00 22.00           C
HETATM    4 CL    CL A 101       8.716  26.591   7.147  1.00 73.71           L
HETATM    5  O   HOH A 201       1.000   2.000   3.000  1.00 30.00           O
END
"""


def test_pdb_reading_gives_atoms_elements_and_drops_waters(tmp_path):
    path = tmp_path / "mini.pdb"
    path.write_text(PDB_TEXT)
    model = read_structure(path)
    assert model.n_atoms == 4
    # The misaligned element column of the chloride is repaired from its atom name.
    np.testing.assert_array_equal(model.atomic_numbers, [7, 6, 6, 17])
    np.testing.assert_allclose(model.coords[1], [11.639, 6.071, -5.147])
    assert model.b_factors[2] == pytest.approx(22.0)
    assert list(model.atom_names[:2]) == ["N", "CA"]
    assert list(model.residue_index) == [0, 0, 0, 1]
    assert read_structure(path, keep_waters=True).n_atoms == 5


def test_pdb_mmcif_and_gzip_read_identically(tmp_path, nucleosome):
    model = read_structure(nucleosome)
    cif = write_structure(tmp_path / "n.cif", model.structure)
    gz = tmp_path / "n.cif.gz"
    gz.write_bytes(gzip.compress(cif.read_bytes()))
    for path in (cif, gz):
        other = read_structure(path)
        np.testing.assert_allclose(other.coords, model.coords, atol=1e-3)
        np.testing.assert_array_equal(other.atomic_numbers, model.atomic_numbers)
    assert structure_stem(gz) == "n"


def test_with_coords_writes_moved_atoms(tmp_path, nucleosome):
    model = read_structure(nucleosome)
    moved = write_structure(tmp_path / "m.pdb", with_coords(model, model.coords + [1, 2, 3]))
    np.testing.assert_allclose(read_structure(moved).coords, model.coords + [1, 2, 3], atol=1e-3)


def test_large_model_must_be_mmcif_and_has_no_assembly_records(tmp_path):
    model = read_structure(shared_file(RIBOSOME_70S))
    assert model.n_atoms > 99_999
    assert output_suffix(model.structure) == ".cif"
    with pytest.raises(ValueError, match="too large"):
        write_structure(tmp_path / "big.pdb", model.structure)
    path = write_structure(tmp_path / "big.cif", model.structure)
    assert len(gemmi.read_structure(str(path)).assemblies) == 0


@pytest.mark.parametrize("content", ["", "garbage that is not a structure\n", "END\n"])
def test_malformed_or_empty_files_are_input_errors(tmp_path, content):
    path = tmp_path / "bad.pdb"
    path.write_text(content)
    with pytest.raises(InputError, match=r"bad\.pdb"):
        read_structure(path)


def test_malformed_mmcif_is_an_input_error(tmp_path):
    path = tmp_path / "bad.cif"
    path.write_text("data_x\nloop_\n_atom_site.id\n_atom_site.Cartn_x\n1\n")
    with pytest.raises(InputError, match=r"bad\.cif"):
        read_structure(path)


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_structure(tmp_path / "absent.pdb")
