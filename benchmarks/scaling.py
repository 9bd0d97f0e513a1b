"""How cost grows: seconds against a size, as a Markdown table with the exponent b of
seconds ≈ a·size^b (least squares in log–log space). A benchmark's ``--scaling`` times a
step at a few sizes in process after a warm-up call (imports and JIT compilation are not
counted; short steps are repeated, the median kept), prints a table per step and, with
``--scaling-json PATH``, writes them all."""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")
Point = tuple[float, float]  # (size, seconds)


def fit_exponent(points: Sequence[Point]) -> float:
    """b of seconds ≈ a·size^b (least squares on the logs); nan with fewer than 2 sizes."""
    sizes, seconds = np.asarray(points, dtype=float).reshape(-1, 2).T
    if len(np.unique(sizes)) < 2:
        return math.nan
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def scaling_table(points: Sequence[Point], axis: str, unit: str = "",
                  extra: Mapping[str, Sequence[object]] | None = None) -> str:
    """Markdown rows by size: size, seconds, seconds per unit of size relative to the
    smallest size, any `extra` columns (one value per point); then the fitted exponent."""
    extra = extra or {}
    order = sorted(range(len(points)), key=lambda i: points[i][0])
    size0, seconds0 = points[order[0]]
    header = [f"{axis} ({unit})" if unit else axis, "seconds", "s per unit (× smallest)", *extra]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for i in order:
        size, seconds = points[i]
        shown = f"{size:,.0f}" if float(size).is_integer() else f"{size:g}"
        relative = seconds / size / (seconds0 / size0)
        took = f"{seconds:.3g}" if seconds < 100 else f"{seconds:.0f}"
        cells = [shown, took, f"{relative:.2f}", *(str(v[i]) for v in extra.values())]
        lines.append("| " + " | ".join(cells) + " |")
    exponent = fit_exponent(points)
    fitted = "n/a (needs two sizes)" if math.isnan(exponent) else f"time ∝ {axis}^{exponent:.2f}"
    return "\n".join([*lines, "", f"fitted exponent: {fitted}"])


def report_scaling(what: str, axis: str, points: Sequence[Point], unit: str = "",
                   extra: Mapping[str, Sequence[object]] | None = None) -> dict[str, Any]:
    """Print the table under a title; return it as a record for `write_scaling_json`."""
    print(f"\n{what} against {axis}\n\n{scaling_table(points, axis, unit, extra)}",
          flush=True)
    exponent = fit_exponent(points)
    return {"what": what, "axis": axis, "unit": unit, "sizes": [p[0] for p in points],
            "seconds": [p[1] for p in points], "extra": dict(extra or {}),
            "exponent": None if math.isnan(exponent) else exponent}


def write_scaling_json(path: Path | None, records: list[dict[str, Any]]) -> None:
    """Write the records of `report_scaling` to `path` as JSON (nothing when None)."""
    if path is not None:
        path.write_text(json.dumps(records, indent=1, ensure_ascii=False) + "\n")


def warm_timed(fn: Callable[[], T], budget_s: float = 1.0, most: int = 9) -> tuple[float, T]:
    """Median seconds of calls of `fn` after a warm-up call (repeated while they total under
    `budget_s`, at most `most` times) and the last result; `fn` must return host data."""
    result, times = fn(), []
    while not times or (sum(times) < budget_s and len(times) < most):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def parse_sizes(text: str) -> list[int]:
    """Comma-separated sizes: "64,96,128" -> [64, 96, 128]."""
    return [int(v) for v in text.split(",")]


def add_scaling_arguments(parser: argparse.ArgumentParser, sizes: str, what: str) -> None:
    """--scaling (time `what` at `sizes` instead of the usual run), --scaling-sizes, -json."""
    group = parser.add_argument_group("scaling")
    group.add_argument("--scaling", action="store_true",
                       help=f"instead of the usual run, time {what} at each of the "
                       "scaling sizes (after a warm-up) and print the scaling tables")
    group.add_argument("--scaling-sizes", default=sizes, type=parse_sizes, metavar="N,N,...",
                       help=f"comma-separated sizes for --scaling (default {sizes})")
    group.add_argument("--scaling-json", type=Path, metavar="PATH",
                       help="also write the tables to this file")
