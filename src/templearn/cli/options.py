"""Parsers for option values shared by several stage CLIs (no heavy imports)."""

from __future__ import annotations

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
