import numpy as np
import pytest

from templearn.acquisition import (
    Acquisition,
    paper_grid,
    random_acquisitions,
    read_acquisitions,
    select_acquisition,
    write_acquisitions,
)
from templearn.errors import InputError


def test_paper_grid_has_the_48_distinct_combinations():
    for mode, defoci in (("vpp", {0.0, -0.5, -1.0}), ("def", {-2.5, -3.25, -4.0})):
        rows = paper_grid(mode)
        assert len(rows) == 48 and len({r.name for r in rows}) == 48
        assert {r.defocus_um for r in rows} == defoci
        assert all(r.phase_plate == (mode == "vpp") for r in rows)
        combos = {(r.defocus_um, r.dose_total, r.tilt_max, r.tilt_step, r.ice_density)
                  for r in rows}
        assert len(combos) == 48
        assert all(r.tilt_min == -r.tilt_max for r in rows)
    with pytest.raises(InputError):
        paper_grid("both")


def test_dose_symmetric_order_starts_at_zero_and_alternates_in_groups():
    acq = Acquisition(tilt_min=-6, tilt_max=6, tilt_step=2, dose_group=2, dose_total=70)
    angles = acq.nominal_angles()
    np.testing.assert_allclose(angles, [-6, -4, -2, 0, 2, 4, 6])
    sequence = angles[np.argsort(acq.acquisition_order())]
    np.testing.assert_allclose(sequence, [0, 2, 4, -2, -4, 6, -6])
    assert acq.dose_per_image() == pytest.approx(10.0)
    np.testing.assert_allclose(acq.prior_dose()[3], 0.0)  # 0° is exposed first
    np.testing.assert_allclose(acq.prior_dose()[0], 60.0)  # -6° last
    asymmetric = Acquisition(tilt_min=-10, tilt_max=50, tilt_step=10, dose_group=1)
    order = asymmetric.acquisition_order()
    assert sorted(order) == list(range(7))
    assert asymmetric.nominal_angles()[np.argmin(order)] == 0


def test_table_round_trip_and_row_selection(tmp_path):
    rows = random_acquisitions(5, seed=3)
    assert rows == random_acquisitions(5, seed=3)
    assert rows != random_acquisitions(5, seed=4)
    path = write_acquisitions(tmp_path / "acq.tsv", rows)
    back = read_acquisitions(path)
    assert back == rows
    assert select_acquisition(back, "random002") == rows[2]
    assert select_acquisition(back, "4") == rows[4]
    with pytest.raises(InputError):
        select_acquisition(back, "nope")
    for r in rows:
        assert -90 <= r.tilt_min < 0 < r.tilt_max <= 90 and r.tilt_step % 0.5 == 0
        lo, hi = (-1.0, 0.0) if r.phase_plate else (-4.0, -2.5)
        assert lo <= r.defocus_um <= hi


def test_impossible_settings_and_malformed_tables_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="dose_total"):
        Acquisition(dose_total=0)
    with pytest.raises(InputError, match="tilt_min"):
        Acquisition(tilt_min=10, tilt_max=-10)
    bad = tmp_path / "bad.tsv"
    bad.write_text("name\tcolour\nx\tblue\n")
    with pytest.raises(InputError, match="unknown"):
        read_acquisitions(bad)


HEADER = "name\tdefocus_um\tdose_total\ttilt_min\ttilt_max\ttilt_step\n"


@pytest.mark.parametrize(("text", "needle"), [
    (HEADER + "x\t-3\tlots\t-60\t60\t2\n", r"row 0 \(line 2\), column dose_total: 'lots' "
                                             "is not a number"),
    (HEADER + "x\t-3\t100\t-60\t60\t2\ny\t-3\n", r"row 1 \(line 3\), column dose_total: "
                                                  "value missing"),
    (HEADER + "x\t-3\t\t-60\t60\t2\n", "column dose_total: value missing"),
    (HEADER + "x\t-3\t100\t-60\t60\t2\t7\n", "more values than columns"),
    (HEADER + "x\t-3\t100\t-60\t60\t0\n", "row 0.*tilt_step"),
    (HEADER + "x\tinf\t100\t-60\t60\t2\n", "column defocus_um: 'inf' is not a finite"),
    ("name\tdefocus_um\ttilt_min\ttilt_max\ttilt_step\nx\t-3\t-60\t60\t2\n",
     "lacks the column.*dose_total"),
    ("name\tdose_total\nx\t100\n", "defocus_um, tilt_min, tilt_max, tilt_step"),
    (HEADER.replace("\n", "\tphase_plate\n") + "x\t-3\t100\t-60\t60\t2\tmaybe\n",
     "column phase_plate"),
    (HEADER, "no rows"),
])
def test_incomplete_or_malformed_rows_name_the_file_row_and_column(tmp_path, text, needle):
    bad = tmp_path / "bad.tsv"
    bad.write_text(text)
    with pytest.raises(InputError, match=needle) as error:
        read_acquisitions(bad)
    assert str(error.value).startswith(f"{bad}: ") and "\n" not in str(error.value)


def test_optional_columns_take_defaults_and_a_directory_is_refused(tmp_path):
    table = tmp_path / "acquisitions.tsv"
    table.write_text(HEADER + "x\t-2\t80\t-40\t40\t4\n")
    (row,) = read_acquisitions(table)
    assert (row.defocus_um, row.dose_total, row.tilt_step) == (-2.0, 80.0, 4.0)
    assert row.voltage_kv == Acquisition().voltage_kv and not row.phase_plate
    with pytest.raises(InputError, match=r"give the acquisitions\.tsv in it"):
        read_acquisitions(tmp_path)


def test_contrast_scale_draws_are_log_uniform_and_off_by_default():
    from templearn.acquisition import Ranges, random_acquisitions

    plain = random_acquisitions(20, 4)
    assert all(a.contrast_scale == 1.0 for a in plain)
    drawn = random_acquisitions(400, 4, Ranges(contrast_scale=(0.1, 1.0)))
    scales = np.array([a.contrast_scale for a in drawn])
    assert scales.min() >= 0.1 and scales.max() <= 1.0
    # log-uniform: the median sits near the geometric mean, not the arithmetic one
    assert abs(np.median(scales) - np.sqrt(0.1)) < 0.05
    # the other fields of the first row are drawn as without the randomisation
    assert drawn[0].defocus_um == plain[0].defocus_um


def test_ice_texture_scale_is_drawn_log_uniformly_and_written_only_when_used(tmp_path):
    """Tables without the randomisation keep their columns (and so the fingerprints of
    the simulations made from them); with it the column is written and read back."""
    from templearn.acquisition import Ranges, random_acquisitions

    plain = random_acquisitions(5, 1)
    write_acquisitions(tmp_path / "plain.tsv", plain)
    assert "ice_texture_scale" not in (tmp_path / "plain.tsv").read_text()
    drawn = random_acquisitions(300, 1, Ranges(ice_texture_scale=(1.0, 10.0)))
    scales = np.array([a.ice_texture_scale for a in drawn])
    assert scales.min() >= 1.0 and scales.max() <= 10.0
    assert abs(np.median(scales) - np.sqrt(10.0)) < 0.5
    assert drawn[0].defocus_um == plain[0].defocus_um
    write_acquisitions(tmp_path / "drawn.tsv", drawn)
    assert read_acquisitions(tmp_path / "drawn.tsv") == drawn
    assert read_acquisitions(tmp_path / "plain.tsv") == plain


def test_amplitude_contrast_is_drawn_only_when_a_range_is_given():
    from templearn.acquisition import Ranges, random_acquisitions

    assert {a.amplitude_contrast for a in random_acquisitions(10, 2)} == {0.07}
    drawn = [a.amplitude_contrast for a in
             random_acquisitions(50, 2, Ranges(amplitude_contrast=(0.0, 0.1)))]
    assert min(drawn) >= 0 and max(drawn) <= 0.1 and len(set(drawn)) > 40
