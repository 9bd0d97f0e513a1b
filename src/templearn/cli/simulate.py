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
    backend: str = typer.Option(
        "fast", help="Simulator: 'fast' (JAX projection simulator) or 'parakeet' (Parakeet + "
                     "MULTEM multislice from the atomic structures; bin/install-parakeet)."),
    pixel_size: float | None = typer.Option(
        None, help="Output pixel, Å (default: the sample's voxel size)."),
    sim_pixel: float | None = typer.Option(
        None, help="Image-formation pixel, Å (default: fast, half the output pixel; "
                   "parakeet, 1.25 Å adjusted to divide the output pixel)."),
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
    slice_thickness: float = typer.Option(
        3.0, help="parakeet: multislice slice thickness, Å."),
    grf_ice: bool = typer.Option(True, help="parakeet: Gaussian-random-field ice model."),
    sensitivity: float = typer.Option(
        0.08, help="parakeet: radiation-damage sensitivity (B = 8π²·s·dose; paper 0.08)."),
    device: str = typer.Option("auto", help="parakeet: MULTEM device, auto | cpu | gpu."),
    work_dir: Path | None = typer.Option(
        None, help="parakeet: working directory of its steps (default: OUTPUT_DIR/parakeet); "
                   "a rerun resumes after the last finished step."),
    keep_intermediates: bool = typer.Option(
        False, help="parakeet: keep the sample, exit-wave, optics and image files."),
) -> None:
    """Tilt series (tiltseries.mrc, tilt × y × x) + tiltseries.tlt + meta.json of a sample."""
    from templearn.acquisition import Acquisition, read_acquisitions, select_acquisition
    from templearn.errors import InputError
    from templearn.progress import log
    from templearn.provenance import write_provenance
    from templearn.sample import read_molecules
    from templearn.simulate.fast import FastParams
    from templearn.simulate.potential import SpecimenParams
    from templearn.tiltseries import write_tilt_series

    if backend not in ("fast", "parakeet"):
        raise InputError(f"unknown --backend {backend!r} (available: fast, parakeet)")
    for name, value in (("--ice-texture", ice_texture), ("--fiducials", fiducials),
                        ("--fiducial-radius", fiducial_radius),
                        ("--ice-texture-length", ice_texture_length),
                        ("--sensitivity", sensitivity)):
        if value < 0:
            raise InputError(f"{name} must not be negative, got {value}")
    for name, value in (("--pixel-size", pixel_size), ("--sim-pixel", sim_pixel),
                        ("--thickness", thickness), ("--slice-thickness", slice_thickness)):
        if value is not None and value <= 0:
            raise InputError(f"{name} must be positive, got {value}")
    if device not in ("auto", "cpu", "gpu"):
        raise InputError(f"--device must be auto, cpu or gpu, not {device!r}")
    acquisition = (select_acquisition(read_acquisitions(acquisitions), row)
                   if acquisitions is not None else Acquisition())
    table, sample = read_molecules(molecules)
    if len(table) == 0:
        raise InputError("the sample has no molecules", molecules)
    if backend == "parakeet":
        from templearn.simulate.multislice import ParakeetParams, simulate_parakeet

        unsupported = [name for name, used in (("--ideal", ideal), ("--maps", bool(maps)),
                                               ("--fiducials", fiducials > 0)) if used]
        if unsupported:
            raise InputError(f"{', '.join(unsupported)}: only for --backend fast")
        params = ParakeetParams(
            pixel_size=pixel_size, sim_pixel=sim_pixel or ParakeetParams.sim_pixel,
            slice_thickness=slice_thickness, thickness=thickness, ice=grf_ice, damage=damage,
            sensitivity=sensitivity, device=device, keep_intermediates=keep_intermediates,
            seed=seed)
        series = simulate_parakeet(table, sample, acquisition, params,
                                   work_dir or output_dir / "parakeet")
    else:
        from templearn.jaxcache import enable_compilation_cache

        enable_compilation_cache()
        series = _simulate_fast(table, sample, acquisition, maps, FastParams(
            pixel_size=pixel_size, sim_pixel=sim_pixel, thickness=thickness, ideal=ideal,
            damage=damage, seed=seed,
            specimen=SpecimenParams(ice_texture=ice_texture,
                                    ice_texture_length=ice_texture_length,
                                    fiducials=fiducials, fiducial_radius=fiducial_radius)))
    series.meta["molecules"] = str(molecules)
    write_tilt_series(output_dir, series)
    write_provenance(output_dir, "simulate", {
        "molecules": molecules, "acquisitions": acquisitions, "row": row, "backend": backend,
        "pixel_size": pixel_size, "sim_pixel": sim_pixel, "maps": maps, "thickness": thickness,
        "ideal": ideal, "damage": damage, "ice_texture": ice_texture,
        "ice_texture_length": ice_texture_length, "fiducials": fiducials,
        "fiducial_radius": fiducial_radius, "seed": seed, "slice_thickness": slice_thickness,
        "grf_ice": grf_ice, "sensitivity": sensitivity, "device": device,
        "work_dir": work_dir, "keep_intermediates": keep_intermediates},
        packages=(("numpy", "scipy", "mrcfile", "starfile", "python-parakeet",
                   "python-multem") if backend == "parakeet"
                  else ("numpy", "scipy", "jax", "mrcfile", "starfile")))
    log(f"simulate: {series.images.shape[0]} tilts of {series.images.shape[2]}×"
        f"{series.images.shape[1]} px at {series.pixel_size:g} Å ({acquisition.name}) -> "
        f"{output_dir}")


def _simulate_fast(table, sample, acquisition, maps: list[Path], params):
    """The fast backend on the molecules' maps (or same-named maps from `maps`)."""
    from templearn import star
    from templearn.errors import InputError
    from templearn.mrc import read_mrc
    from templearn.simulate.fast import simulate_fast

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
    return simulate_fast(table, sample, volumes, acquisition, params)
