"""`templearn randomize`: tables of acquisition settings (domain randomisation)."""

from __future__ import annotations

from pathlib import Path

import typer


def command(
    output: Path = typer.Option(Path("acquisitions.tsv"), "--output", "-o",
                                help="Acquisition table (tab-separated)."),
    grid: str | None = typer.Option(
        None, "--grid", help="The paper's 48-combination grid with phase-plate ('vpp') or "
                             "conventional ('def') defoci, instead of random draws."),
    n: int = typer.Option(48, "-n", help="Number of random acquisitions (without --grid)."),
    seed: int = typer.Option(0, help="Random seed."),
    vpp_fraction: float = typer.Option(0.5, help="Share of phase-plate acquisitions."),
    defocus_vpp: str = typer.Option("-1,0", help="Defocus range with phase plate, µm."),
    defocus: str = typer.Option("-4,-2.5", help="Defocus range without phase plate, µm "
                                                "(negative = underfocus)."),
    dose: str = typer.Option("75,150", help="Total dose range, e⁻/Å²."),
    tilt_max: str = typer.Option("40,60", help="Range of the largest tilt (±), degrees."),
    tilt_step: str = typer.Option("2,4", help="Tilt step range, degrees (0.5° steps)."),
    ice_density: str = typer.Option("0.9,1.1", help="Ice density range, g/cm³."),
    astigmatism: str = typer.Option("0,0.1", help="Astigmatism range, µm."),
    tilt_jitter: str = typer.Option("0,0.3", help="Range of tilt-angle error s.d., degrees."),
    voltage: float = typer.Option(300.0, help="Acceleration voltage, kV (all rows)."),
    cs: float = typer.Option(2.7, help="Spherical aberration, mm (all rows)."),
) -> None:
    """Acquisition settings: the paper's grid or random draws from ranges, one per row."""
    from templearn.acquisition import (
        Acquisition,
        Ranges,
        paper_grid,
        random_acquisitions,
        write_acquisitions,
    )
    from templearn.cli.options import float_pair
    from templearn.errors import InputError
    from templearn.progress import log

    base = Acquisition(voltage_kv=voltage, cs_mm=cs)
    if grid is not None:
        rows = paper_grid(grid, base)
    else:
        if n < 1:
            raise InputError(f"-n must be at least 1, got {n}")
        ranges = Ranges(
            vpp_fraction=vpp_fraction, defocus_vpp_um=float_pair(defocus_vpp, "--defocus-vpp"),
            defocus_um=float_pair(defocus, "--defocus"), dose_total=float_pair(dose, "--dose"),
            tilt_max=float_pair(tilt_max, "--tilt-max"),
            tilt_step=float_pair(tilt_step, "--tilt-step"),
            ice_density=float_pair(ice_density, "--ice-density"),
            astigmatism_um=float_pair(astigmatism, "--astigmatism"),
            tilt_jitter_deg=float_pair(tilt_jitter, "--tilt-jitter"))
        rows = random_acquisitions(n, seed, ranges, base)
    write_acquisitions(output, rows)
    log(f"randomize: {len(rows)} acquisitions -> {output}")
