"""Tomogram reconstruction from tilt series: builtin WBP, SIRT and fake SIRT, or IMOD.

`reconstruct_tomogram(series, ReconstructParams(...)) -> Volume` is the entry point;
`params` holds the options (no heavy imports), `radial` the IMOD-style filter, `wbp` and
`sirt` the builtin methods, `imod` the IMOD backend, `tomogram` binning, thickness and
placement. The two names below load their module on first use, so that importing
`templearn.reconstruct.params` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"ReconstructParams": "params", "reconstruct_tomogram": "tomogram"}
__all__ = ["ReconstructParams", "reconstruct_tomogram"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
