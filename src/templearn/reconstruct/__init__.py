"""Tomogram reconstruction from tilt series: builtin WBP, SIRT and fake SIRT, or IMOD.

`reconstruct_tomogram(series, ReconstructParams(...)) -> Volume` is the entry point;
`radial` holds the IMOD-style filter, `wbp` and `sirt` the builtin methods, `imod` the
IMOD backend, `tomogram` binning, thickness and placement.
"""

from templearn.reconstruct.tomogram import ReconstructParams, reconstruct_tomogram

__all__ = ["ReconstructParams", "reconstruct_tomogram"]
