"""`templearn simulate`: a tilt series of a packed sample under one acquisition."""

from __future__ import annotations

from pathlib import Path

import typer


def command(
    molecules: Path = typer.Argument(..., help="molecules.star of the sample (templearn tetris)."),
    acquisitions: Path | None = typer.Option(
        None, "--acquisitions", "-a", help="Acquisition table (templearn randomize); "
                                           "default: the built-in default acquisition."),
    row: str = typer.Option("0", help="Row of the table: its name or 0-based index."),
    output_dir: Path = typer.Option(Path("tiltseries"), "--output-dir", "-o"),
    backend: str = typer.Option("fast", help="Simulator: 'fast' (JAX projection simulator)."),
    pixel_size: float | None = typer.Option(
        None, help="Output pixel, Å (default: the sample's voxel size)."),
    sim_pixel: float | None = typer.Option(
        None, help="Image-formation pixel, Å (default: half the output pixel)."),
    maps: list[Path] = typer.Option(
        [], help="Directory of maps to use instead of each molecule's tlMapFile (same file "
                 "names, e.g. made by `templearn density --voxel-size 8`); repeatable."),
    thickness: float | None = typer.Option(
        None, help="Ice thickness, Å (default: the sample's thickness)."),
    ideal: bool = typer.Option(
        False, help="Noise-free projections of the potential over -90°..90°, no CTF."),
    damage: bool = typer.Option(True, help="Cumulative-dose radiation damage."),
    ice_texture: float = typer.Option(
        0.1, help="Ice random-field s.d., as a fraction of the ice potential (0: flat ice)."),
    ice_texture_length: float = typer.Option(10.0, help="Ice texture correlation length, Å."),
    fiducials: int = typer.Option(0, help="Gold beads on the ice surfaces."),
    fiducial_radius: float = typer.Option(50.0, help="Gold bead radius, Å."),
    seed: int = typer.Option(0, help="Random seed (noise, tilt jitter, ice, beads)."),
) -> None:
    """Tilt series (tiltseries.mrc, tilt × y × x) + tiltseries.tlt + meta.json of a sample."""
    from templearn import star
    from templearn.acquisition import Acquisition, read_acquisitions, select_acquisition
    from templearn.errors import InputError
    from templearn.jaxcache import enable_compilation_cache
    from templearn.mrc import read_mrc
    from templearn.progress import log
    from templearn.provenance import write_provenance
    from templearn.sample import read_molecules
    from templearn.simulate.fast import FastParams, simulate_fast
    from templearn.simulate.potential import SpecimenParams
    from templearn.tiltseries import write_tilt_series

    enable_compilation_cache()

    if backend != "fast":
        raise InputError(f"unknown --backend {backend!r} (available: fast)")
    for name, value in (("--ice-texture", ice_texture), ("--fiducials", fiducials),
                        ("--fiducial-radius", fiducial_radius),
                        ("--ice-texture-length", ice_texture_length)):
        if value < 0:
            raise InputError(f"{name} must not be negative, got {value}")
    for name, value in (("--pixel-size", pixel_size), ("--sim-pixel", sim_pixel),
                        ("--thickness", thickness)):
        if value is not None and value <= 0:
            raise InputError(f"{name} must be positive, got {value}")
    acquisition = (select_acquisition(read_acquisitions(acquisitions), row)
                   if acquisitions is not None else Acquisition())
    table, sample = read_molecules(molecules)
    if len(table) == 0:
        raise InputError("the sample has no molecules", molecules)
    volumes = {}
    for key in table[star.MAP_FILE].astype(str).unique():
        source = Path(key)
        for directory in maps:
            if (directory / source.name).exists():
                source = directory / source.name
                break
        else:
            if maps:
                raise InputError(f"no map named {source.name} in --maps "
                                 f"{', '.join(map(str, maps))}")
        volumes[key] = read_mrc(source)
    params = FastParams(
        pixel_size=pixel_size, sim_pixel=sim_pixel, thickness=thickness, ideal=ideal,
        damage=damage, seed=seed,
        specimen=SpecimenParams(ice_texture=ice_texture, ice_texture_length=ice_texture_length,
                                fiducials=fiducials, fiducial_radius=fiducial_radius))
    series = simulate_fast(table, sample, volumes, acquisition, params)
    series.meta["molecules"] = str(molecules)
    write_tilt_series(output_dir, series)
    write_provenance(output_dir, "simulate", {
        "molecules": molecules, "acquisitions": acquisitions, "row": row, "backend": backend,
        "pixel_size": pixel_size, "sim_pixel": sim_pixel, "maps": maps, "thickness": thickness,
        "ideal": ideal, "damage": damage, "ice_texture": ice_texture,
        "ice_texture_length": ice_texture_length, "fiducials": fiducials,
        "fiducial_radius": fiducial_radius, "seed": seed},
        packages=("numpy", "scipy", "jax", "mrcfile", "starfile"))
    log(f"simulate: {series.images.shape[0]} tilts of {series.images.shape[2]}×"
        f"{series.images.shape[1]} px at {series.pixel_size:g} Å ({acquisition.name}) -> "
        f"{output_dir}")
