"""Simulate + reconstruct a 192×192×64 tomogram at 16 Å with 61 tilts (goal: < 10 s).

    python benchmarks/simulate_benchmark.py [--work DIR] [--shape 192,192,64]

Prepares (once, cached in DIR) nucleosome and distractor maps at 16 Å and a Tetris sample
from ../shared/data, then times `templearn simulate` (fast backend, default acquisition:
-3 µm, ±60° step 2°, 100 e⁻/Å²) and `templearn reconstruct` (WBP) as separate processes,
the way a pipeline runs them (wall time, imports and JAX compilation included), and
prints an in-process breakdown of the simulation's steps.

    python benchmarks/simulate_benchmark.py --scaling [--scaling-sizes 64,128,192]
                                            [--scaling-tilts 21,41,61]

prints instead how the fast simulation's and WBP's times grow, in this process (each
timed after a warm-up call of the same shape, so compilation is not counted), with the
tomogram volume (x = y = size, z = 64, 61 tilts; samples packed once and cached in DIR)
and with the tilt count (±60°, at the largest size), and the fitted exponents
(`scaling.py`).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Iterable
from functools import partial
from pathlib import Path

from scaling import (
    add_scaling_arguments,
    parse_sizes,
    report_scaling,
    warm_timed,
    write_scaling_json,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "structures"
TEMPLEARN = [sys.executable, "-m", "templearn"]


def run(*args: str) -> float:
    """Run one templearn command; return its wall time (s)."""
    start = time.perf_counter()
    subprocess.run([*TEMPLEARN, *args], check=True, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def prepare_maps(work: Path) -> None:
    """Nucleosome and distractor maps at 16 Å in work/maps (skipped when already there)."""
    if not (work / "maps" / "nucleosome" / "maps.star").exists():
        run("density", str(DATA / "nucleosome" / "2pyo_centered.pdb"),
            str(DATA / "nucleosome" / "7kbe_centered.pdb"), "-o", str(work / "maps" / "nucleosome"))
        run("density", *map(str, sorted((DATA / "distractors").glob("*.pdb"))),
            "-o", str(work / "maps" / "distractors"))


def prepare(work: Path, shape: str) -> Path:
    """Maps and a packed sample (skipped when already there)."""
    sample = work / f"sample_{shape.replace(',', 'x')}" / "molecules.star"
    prepare_maps(work)
    if not sample.exists():
        seconds = run("tetris", "-t", f"nucleosome={work / 'maps' / 'nucleosome'}",
                      "-d", str(work / "maps" / "distractors"), "--shape", shape,
                      "-o", str(sample.parent))
        print(f"prepared the sample in {seconds:.0f} s", flush=True)
    return sample


def load_sample(sample: Path) -> tuple:
    """The molecules table, the sample grid and the structure maps of a packed sample."""
    from templearn import star
    from templearn.mrc import read_mrc
    from templearn.sample import read_molecules

    table, grid = read_molecules(sample)
    return table, grid, {f: read_mrc(f) for f in table[star.MAP_FILE].astype(str).unique()}


def breakdown(sample: Path) -> tuple[float, float]:
    """Seconds per step of the fast simulator, in this process (second run: compiled);
    returns the compiled run's simulate and reconstruct seconds."""
    from templearn.acquisition import Acquisition
    from templearn.reconstruct import ReconstructParams, reconstruct_tomogram
    from templearn.simulate import fast, potential

    table, grid, maps = load_sample(sample)
    times: dict[str, float] = {}

    def timed(module, name):
        function = getattr(module, name)

        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            result = function(*args, **kwargs)
            times[name] = times.get(name, 0.0) + time.perf_counter() - start
            return result
        setattr(module, name, wrapper)

    for module, name in ((potential, "place_molecules"), (fast, "project"),
                         (fast, "_form_images")):
        timed(module, name)
    for attempt in ("first (compiles)", "second"):
        times.clear()
        start = time.perf_counter()
        series = fast.simulate_fast(table, grid, maps, Acquisition())
        simulated = time.perf_counter() - start
        start = time.perf_counter()
        reconstruct_tomogram(series, ReconstructParams())
        rebuilt = time.perf_counter() - start
        steps = ", ".join(f"{k} {v:.2f} s" for k, v in times.items())
        print(f"  in process, {attempt}: simulate {simulated:.2f} s ({steps}); "
              f"reconstruct {rebuilt:.2f} s", flush=True)
    return simulated, rebuilt


def scaling(work: Path, sizes: list[int], tilts: list[int]) -> list[dict]:
    """Simulate and reconstruct seconds against tomogram volume and against tilt count."""
    from templearn.acquisition import Acquisition
    from templearn.reconstruct import ReconstructParams, reconstruct_tomogram
    from templearn.simulate import fast

    def sweep(cases: Iterable[tuple]) -> dict[str, list[tuple[float, float]]]:
        """(size, sample, acquisition) -> points per step, each timed after a warm-up."""
        times: dict[str, list[tuple[float, float]]] = {"simulate": [], "reconstruct": []}
        for size, sample, acquisition in cases:
            simulated, series = warm_timed(partial(fast.simulate_fast, *sample, acquisition))
            rebuilt, _ = warm_timed(partial(reconstruct_tomogram, series, ReconstructParams()))
            times["simulate"].append((size, simulated))
            times["reconstruct"].append((size, rebuilt))
        return times

    samples = [load_sample(prepare(work, f"{size},{size},64")) for size in sizes]
    shapes = [f"{size}×{size}×64" for size in sizes]
    by_size = sweep((size * size * 64, sample, Acquisition())
                    for size, sample in zip(sizes, samples, strict=True))
    by_tilts = sweep((n, samples[-1], Acquisition(tilt_step=120 / (n - 1))) for n in tilts)
    extra = {"tomogram": shapes, "molecules": [len(sample[0]) for sample in samples]}
    return ([report_scaling(f"{step} time (61 tilts)", "volume", points, "voxels", extra)
             for step, points in by_size.items()]
            + [report_scaling(f"{step} time ({shapes[-1]})", "tilts", points)
               for step, points in by_tilts.items()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/templearn-bench-simulate"))
    parser.add_argument("--shape", default="192,192,64")
    add_scaling_arguments(parser, "64,128,192", "simulate and reconstruct")
    parser.add_argument("--scaling-tilts", default="21,41,61", type=parse_sizes,
                        metavar="N,N,...",
                        help="tilt counts (±60°) for --scaling (default 21,41,61)")
    args = parser.parse_args()
    if not DATA.exists():
        sys.exit(f"shared data not found at {DATA}")
    if args.scaling:
        records = scaling(args.work, args.scaling_sizes, args.scaling_tilts)
        write_scaling_json(args.scaling_json, records)
        return
    sample = prepare(args.work, args.shape)
    n_molecules = sum(1 for line in sample.read_text().splitlines()
                      if line.strip() and line.split()[0].startswith("sample"))
    print(f"sample {args.shape} at 16 Å, {n_molecules} molecules; 61 tilts (±60°, step 2°)")
    series = args.work / "tiltseries"
    simulate_s = run("simulate", str(sample), "-o", str(series))
    reconstruct_s = run("reconstruct", str(series / "tiltseries.mrc"), "-o",
                        str(args.work / "tomogram"))
    total = simulate_s + reconstruct_s
    print(f"  templearn simulate {simulate_s:.2f} s + templearn reconstruct "
          f"{reconstruct_s:.2f} s = {total:.2f} s wall (goal < 10 s: "
          f"{'met' if total < 10 else 'missed'})", flush=True)
    breakdown(sample)


if __name__ == "__main__":
    main()
