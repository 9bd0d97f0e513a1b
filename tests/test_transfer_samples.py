"""benchmarks/transfer_cases.py: the stored samples of the transfer cases restore on any machine."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

from templearn import star

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "transfer_cases.py"
_SPEC = importlib.util.spec_from_file_location("transfer_cases", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
cases = importlib.util.module_from_spec(_SPEC)
sys.modules["transfer_cases"] = cases  # its dataclasses look their module up
_SPEC.loader.exec_module(cases)

pytestmark = pytest.mark.skipif(not cases.SHARED.is_dir(),
                                reason="needs ../shared/data/structures (held-out distractors)")


@pytest.mark.parametrize("name", sorted(cases.CASES))
def test_every_case_has_a_stored_sample_that_restores(name: str, tmp_path: Path) -> None:
    molecules = tmp_path / "sample" / "molecules.star"
    cases.restore_sample(tmp_path, name, molecules)
    table = star.read_star(molecules)
    case = cases.CASES[name]
    assert (table[star.MOLECULE_CLASS] == "template").sum() > 0
    assert all(Path(p).is_file() for p in table[star.STRUCTURE_FILE])
    maps = {str(case.maps(tmp_path, case.target)), str(case.maps(tmp_path, "distractors"))}
    assert {str(Path(p).parent) for p in table[star.MAP_FILE]} <= maps
    # Test samples never hold a training (bundled) distractor.
    held_out = {p.name for p in cases.held_out_distractors()}
    distractors = table[table[star.MOLECULE_CLASS] == "distractor"]
    assert {Path(p).name for p in distractors[star.STRUCTURE_FILE]} <= held_out


def test_store_then_restore_gives_the_same_sample(tmp_path: Path, monkeypatch) -> None:
    original = tmp_path / "original.star"
    cases.restore_sample(tmp_path, "sparse", original)
    monkeypatch.setattr(cases, "STORED_SAMPLES", tmp_path / "stored")
    cases.store_sample(original, "sparse")
    stored = star.read_star(cases.stored_sample_path("sparse"))
    assert not any("/" in p for p in stored[star.MAP_FILE])
    again = tmp_path / "again.star"
    cases.restore_sample(tmp_path, "sparse", again)
    assert cases.same_tables(star.read_blocks(again), star.read_blocks(original))
    os.utime(again, ns=(0, 0))
    cases.restore_sample(tmp_path, "sparse", again)  # unchanged: not rewritten (fingerprints)
    assert again.stat().st_mtime_ns == 0
