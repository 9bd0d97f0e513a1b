"""`templearn reconstruct`: a tomogram from a tilt series (builtin WBP/SIRT or IMOD)."""

from __future__ import annotations

from pathlib import Path

import typer


def command(
    tilt_series: Path = typer.Argument(..., help="Tilt series stack (MRC, one image per tilt)."),
    angles: Path | None = typer.Option(
        None, help="Tilt angles, one per line (default: the stack's .tlt)."),
    output_dir: Path = typer.Option(Path("reconstruct"), "--output-dir", "-o",
                                    help="Writes tomogram.mrc and provenance here."),
    method: str = typer.Option("wbp", help="'wbp', 'sirt' or 'fake-sirt'."),
    iterations: int = typer.Option(10, help="Iterations of sirt / fake-sirt."),
    radial: str = typer.Option(
        "0.5,0.5", help="IMOD -RADIAL cutoff,falloff (≤1: cycles/pixel, >1: Fourier pixels)."),
    bin_factor: int | None = typer.Option(None, "--bin", help="Bin the series by N first."),
    pixel_size: float | None = typer.Option(
        None, help="Bin to this output pixel size, Å (instead of --bin)."),
    antialias: str = typer.Option(
        "fourier", help="Binning filter: 'fourier' (spectrum crop) or 'lanczos' (IMOD "
                        "newstack -antialias 6)."),
    thickness: int | None = typer.Option(
        None, help="Tomogram thickness in output voxels (default: the sample thickness "
                   "from meta.json)."),
    backend: str = typer.Option("builtin", help="'builtin' or 'imod' (IMOD on PATH)."),
) -> None:
    """Tomogram (MRC float32, voxel size and origin in the header) oriented as IMOD
    `tilt -PERPENDICULAR` + `trimvol -rx`, centred on the simulated sample when meta.json
    records it."""
    from templearn.errors import InputError
    from templearn.mrc import write_mrc
    from templearn.progress import log
    from templearn.provenance import write_provenance
    from templearn.reconstruct import ReconstructParams, reconstruct_tomogram
    from templearn.tiltseries import read_tilt_series

    parts = radial.split(",")
    try:
        cutoff, falloff = (float(p) for p in parts)
    except ValueError:
        raise InputError(f"--radial expects cutoff,falloff, got {radial!r}") from None
    params = ReconstructParams(method=method, iterations=iterations, radial=(cutoff, falloff),
                               bin_factor=bin_factor, pixel_size=pixel_size,
                               antialias=antialias, thickness=thickness, backend=backend)
    params.validate()
    series = read_tilt_series(tilt_series, angles)
    tomogram = reconstruct_tomogram(series, params)
    path = write_mrc(output_dir / "tomogram.mrc", tomogram)
    write_provenance(output_dir, "reconstruct", {
        "tilt_series": tilt_series, "angles": angles, "method": method,
        "iterations": iterations, "radial": [cutoff, falloff], "bin": bin_factor,
        "pixel_size": pixel_size, "antialias": antialias, "thickness": thickness,
        "backend": backend, "voxel_size": tomogram.voxel_size,
        "shape_xyz": list(tomogram.data.shape[::-1]), "origin_xyz": list(tomogram.origin)},
        packages=("numpy", "scipy", "mrcfile"))
    log(f"reconstruct: {'×'.join(map(str, tomogram.data.shape[::-1]))} at "
        f"{tomogram.voxel_size:g} Å -> {path}")
