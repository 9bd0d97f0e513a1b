"""benchmarks/scaling.py: the fitted exponent and the table of the --scaling runs."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "scaling.py"
_SPEC = importlib.util.spec_from_file_location("benchmark_scaling", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
scaling = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(scaling)

SIZES = (1_000, 8_000, 27_000, 64_000)


@pytest.mark.parametrize("exponent", [1.5, 0.5, 1.0])
def test_fit_recovers_a_power_law(exponent: float) -> None:
    points = [(size, 0.003 * size**exponent) for size in SIZES]
    assert scaling.fit_exponent(points) == pytest.approx(exponent, abs=1e-9)
    assert f"time ∝ volume^{exponent:.2f}" in scaling.scaling_table(points, "volume")


def test_fit_needs_two_sizes() -> None:
    assert math.isnan(scaling.fit_exponent([(10, 1.0)]))
    assert "n/a" in scaling.scaling_table([(10, 1.0), (10, 1.1)], "tilts")


def test_table_lists_every_size_in_order() -> None:
    points = [(size, 1e-4 * size**1.5) for size in SIZES[::-1]]  # given largest first
    text = scaling.scaling_table(points, "volume", unit="voxels",
                                 extra={"molecules": [40, 30, 20, 10]})
    rows = [line for line in text.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [row.split(" | ")[0][2:] for row in rows] == [f"{s:,}" for s in SIZES]
    assert rows[0].split(" | ")[2] == "1.00"  # relative to the smallest
    assert rows[-1].split(" | ")[2] == "8.00"  # (64000 / 1000)^0.5
    assert rows[-1].endswith(" | 40 |")  # extra values follow their points
    assert rows[-1].split(" | ")[1] == "1619"  # 1e-4 · 64000^1.5
    assert text.splitlines()[0].startswith("| volume (voxels) | seconds |")


def test_report_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record = scaling.report_scaling("tetris time", "volume", [(8, 2.0), (64, 16.0)])
    assert "tetris time against volume" in capsys.readouterr().out
    scaling.write_scaling_json(tmp_path / "s.json", [record])
    written = json.loads((tmp_path / "s.json").read_text())
    assert written[0]["exponent"] == pytest.approx(1.0)
    assert written[0]["sizes"] == [8, 64]


def test_warm_timed_warms_up_and_repeats_short_calls() -> None:
    calls: list[int] = []
    seconds, result = scaling.warm_timed(lambda: calls.append(1) or len(calls), most=4)
    assert len(calls) == 5 and result == 5  # warm-up + 4 timed calls of a quick function
    assert 0 <= seconds < 0.1
