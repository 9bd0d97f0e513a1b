"""benchmarks/seed_spread.py: each seed's metrics kept, F1 read per tomogram, mean and s.d."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "seed_spread.py"
_SPEC = importlib.util.spec_from_file_location("benchmark_seed_spread", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
seed_spread = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(seed_spread)


def _write_metrics(run: Path, name: str, classes: dict[str, float],
                   overall: float | None = None) -> None:
    folder = run / "picking" / name / "evaluation"
    folder.mkdir(parents=True)
    metrics = {"classes": {c: {"f1": f1} for c, f1 in classes.items()}}
    if overall is not None:
        metrics["overall"] = {"f1": overall}
    (folder / "metrics.json").write_text(json.dumps(metrics))


def test_kept_metrics_give_each_tomograms_f1(tmp_path: Path) -> None:
    _write_metrics(tmp_path, "sparse", {"ribosome": 0.5})
    _write_metrics(tmp_path, "test0", {"ribosome": 0.9, "apoferritin": 0.7}, overall=0.8)
    kept = seed_spread.keep_metrics(tmp_path, 3)
    assert kept == tmp_path / "seeds" / "3"
    # A later seed's run overwrites picking/, not what was kept.
    (tmp_path / "picking" / "sparse" / "evaluation" / "metrics.json").unlink()
    assert seed_spread.f1_per_tomogram(kept) == {"sparse": 0.5, "test0": 0.8}


def test_table_has_mean_and_sample_spread_per_tomogram() -> None:
    text = seed_spread.table({0: {"sparse": 0.4, "test0": 0.9},
                              1: {"sparse": 0.6, "test0": 0.9},
                              2: {"sparse": 0.5}})
    rows = {line.split(" | ")[0].strip("| "): line for line in text.splitlines()[2:]}
    assert rows["sparse"].endswith(f"| {0.5:.3f} | {0.1:.3f} |")
    assert "| – |" in rows["test0"] and rows["test0"].endswith("| 0.900 | 0.000 |")
    assert text.splitlines()[0].count("seed") == 3


def test_one_seed_has_no_spread() -> None:
    assert seed_spread.table({0: {"sparse": 0.4}}).splitlines()[-1].endswith("| nan |")
    with pytest.raises(SystemExit):
        seed_spread.run_seed([Path("/nonexistent/params.yaml")], Path("/nonexistent/run"), 0, [])
