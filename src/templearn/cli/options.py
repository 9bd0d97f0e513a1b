"""Parsers for option values shared by several stage CLIs (no heavy imports)."""

from __future__ import annotations

import glob
from pathlib import Path

from templearn.errors import InputError


def int_tuple(text: str, n: int, option: str) -> tuple[int, ...]:
    """'192,192,64' -> (192, 192, 64); InputError naming the option otherwise."""
    parts = [p for p in text.replace("x", ",").replace(":", ",").split(",") if p.strip()]
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise InputError(f"{option} expects {n} integers, got {text!r}") from None
    if len(values) != n:
        raise InputError(f"{option} expects {n} integers, got {text!r}")
    return values


def map_files(spec: str, option: str) -> list[Path]:
    """MRC files named by a file, a directory (all *.mrc in it) or a glob pattern."""
    path = Path(spec)
    if path.is_dir():
        files = sorted(path.glob("*.mrc"))
    elif any(c in spec for c in "*?["):
        files = sorted(Path(p) for p in glob.glob(spec))
    else:
        files = [path]
    if not files:
        raise InputError(f"{option} {spec!r} names no .mrc files")
    return files


def float_pair(text: str, option: str) -> tuple[float, float]:
    """'-4,-2.5' -> (-4.0, -2.5); InputError naming the option otherwise."""
    parts = [p for p in text.split(",") if p.strip()]
    try:
        low, high = (float(p) for p in parts)
    except ValueError:
        raise InputError(f"{option} expects LOW,HIGH, got {text!r}") from None
    if low > high:
        raise InputError(f"{option}: low {low} > high {high}")
    return low, high
