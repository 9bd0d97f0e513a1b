"""The GPU benchmark: U-Net, tetris, fast simulator and Parakeet on one lent GPU, ≤ 10 min.

Measures, in this order (the most wanted first, so a run cut short still reports them):
1. the U-Net train step (full `deepfinder` architecture, `--conv xla`, batch 8 and 25 of
   48³) and segmentation throughput (64³ tiles), with benchmarks/unet_benchmark.py;
2. `templearn tetris --search full` at 192×192×64 (16 Å, nucleosomes + the 75 shared
   distractors, 1:2), then `templearn simulate` (fast) + `templearn reconstruct` of that
   sample as processes and in process, with benchmarks/simulate_benchmark.py;
3. with `--parakeet`: `bin/install-parakeet` building MULTEM for the card, then one
   Parakeet exit-wave tilt of benchmarks/parakeet_benchmark.py's sample (512² detector).
It prints one table with the CPU figures of docs/benchmarks.md and docs/stages.md (2 CPU
cores; not re-run here) and the speed-up, and writes it to $OUT as gpu_benchmark.json and
gpu_benchmark.md when OUT is set. Without a GPU the U-Net rows are skipped (the CPU figures
exist) and the rest runs on the CPU cores, saying so.

Before the device call, on this machine (network and ../shared/data needed), once per
checkout:

    python benchmarks/gpu_benchmark.py --prepare

makes the git-ignored folder .gpu-bench/ (< 10 MiB): maps/ (the 16 Å maps), the Parakeet
test protein, and whl/ (wheels of the dependencies missing from the device image: gemmi,
mrcfile, starfile; JAX with CUDA, Flax, Optax, numpy, scipy, pandas, typer, rich are there).
Then the device `run` call (the image's python3 with its JAX, no virtual environment):

    run(command="bash benchmarks/gpu_benchmark.sh", carry=[".gpu-bench"], timeout_s=600)

`bash benchmarks/gpu_benchmark.sh --parakeet` adds step 3. The device cannot reach PyPI, so
install-parakeet's pip runs offline there (PIP_NO_INDEX, PIP_FIND_LINKS=.gpu-bench/parakeet):
the step is skipped, with a message, unless that folder holds what pip would fetch
(python-multem 0.4.1 and guanaco 0.3.4 sources, python-parakeet 0.6.8 and its dependencies
missing from the image — dask-jobqueue, distributed, lxml-html-clean, maptools, profet,
pydantic — nvidia-cufft 12.0.0.61 and nvidia-cublas 13.0.2.14 unless the image has those
versions, and the build requirements) and FFTW3's headers are found; the whole must stay
under the 64 MiB that a call carries. Without it the U-Net, tetris and simulator rows run.

    python benchmarks/gpu_benchmark.py --quick    # tiny sizes, here on CPU, ≈ 2 min
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # CLI steps share the GPU

import jax
import parakeet_benchmark
import simulate_benchmark
import tetris_benchmark
import unet_benchmark

ROOT = Path(__file__).resolve().parents[1]
CARRIED = ROOT / ".gpu-bench"  # git-ignored; the device `run` call carries it
DEVICE_WHEELS = ("gemmi", "mrcfile", "starfile")  # dependencies the device image lacks
WHEEL_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
                   "manylinux2014_x86_64", "manylinux1_x86_64")


@dataclass(frozen=True)
class CpuFigure:
    """A figure measured on 2 CPU cores, as the docs report it."""

    value: float
    source: str


#: CPU figures for the speed-up column (same units as the rows that use them).
CPU = {
    "unet b8": CpuFigure(64.8, "docs/benchmarks.md: deepfinder xla, idle 2 cores"),
    "unet b25": CpuFigure(60.5, "docs/benchmarks.md: DeepFinder side by side, im2col_x, "
                                "idle 2 cores"),
    "segment": CpuFigure(100e3, "docs/benchmarks.md: DeepFinder side by side, one 64³ tile"),
    "tetris": CpuFigure(3607.0, "docs/stages.md: 192×192×64, 88 s, full search"),
    "simulate cli": CpuFigure(5.2, "docs/benchmarks.md: templearn simulate, 192×192×64"),
    "reconstruct cli": CpuFigure(1.0, "docs/benchmarks.md: templearn reconstruct"),
    "simulate": CpuFigure(1.9, "docs/benchmarks.md: in process, compiled"),
    "reconstruct": CpuFigure(0.17, "docs/benchmarks.md: WBP in process, compiled"),
    "exit wave": CpuFigure(18.2, "docs/stages.md: 512², 11,495 atoms, per tilt"),
}


@dataclass(frozen=True)
class Sizes:
    """Problem sizes of one mode."""

    batches: tuple[int, ...] = (8, 25)
    patch: int = 48
    steps: int = 3
    tile: int = 64
    shape: str = "192,192,64"
    parakeet_size: int = 64  # sample width in 8 Å voxels: a 512² detector at 1 Å


QUICK = Sizes(batches=(1,), patch=16, steps=1, tile=16, shape="48,48,24", parakeet_size=8)


@dataclass
class Row:
    """One measurement: its value here, the CPU figure and the speed-up (None when n/a)."""

    name: str
    value: float | None
    unit: str
    cpu: float | None = None
    speedup: float | None = None
    note: str = ""


@dataclass
class Report:
    """The table so far, written to $OUT after every step; `compare`: add the CPU figures
    (off for the tiny sizes of --quick, which have none)."""

    header: dict[str, str]
    compare: bool
    rows: list[Row] = field(default_factory=list)

    def add(self, name: str, value: float, unit: str, cpu_key: str = "",
            lower_is_better: bool = True, note: str = "") -> None:
        """Add a measured row; speed-up against CPU[cpu_key] when that figure exists."""
        cpu = CPU.get(cpu_key) if self.compare else None
        speedup = None
        if cpu is not None and value > 0:
            speedup = cpu.value / value if lower_is_better else value / cpu.value
        self.rows.append(Row(name, value, unit, cpu and cpu.value, speedup, note))
        self.save()

    def skip(self, name: str, why: str) -> None:
        """Add a row for a step that did not run, and say why."""
        print(f"  SKIPPED {name}: {why}", flush=True)
        self.rows.append(Row(name, None, "", note=f"skipped: {why}"))
        self.save()

    def markdown(self) -> str:
        """Header lines and the table as markdown."""
        lines = [f"- {k}: {v}" for k, v in self.header.items()]
        lines += ["", "| measurement | here | unit | 2 CPU cores | speed-up | note |",
                  "|---|---|---|---|---|---|"]
        for r in self.rows:
            lines.append(f"| {r.name} | {_num(r.value)} | {r.unit} | {_num(r.cpu)} | "
                         f"{'' if r.speedup is None else f'{r.speedup:.1f}×'} | {r.note} |")
        return "\n".join(lines) + "\n"

    def save(self) -> None:
        """Write gpu_benchmark.json and .md under $OUT, if set."""
        out = os.environ.get("OUT")
        if not out:
            return
        data = {"header": self.header, "rows": [asdict(r) for r in self.rows],
                "cpu_sources": {k: asdict(v) for k, v in CPU.items()}}
        Path(out, "gpu_benchmark.json").write_text(json.dumps(data, indent=1))
        Path(out, "gpu_benchmark.md").write_text(self.markdown())


def _num(value: float | None) -> str:
    """A compact number for the table."""
    if value is None:
        return ""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def on_gpu() -> bool:
    """Whether JAX's default backend is a GPU."""
    return jax.default_backend() == "gpu"


def header() -> dict[str, str]:
    """Device, versions and machine, printed and recorded."""
    info = {
        "devices": str(jax.devices()),
        "backend": jax.default_backend(),
        "jax": jax.__version__,
        "python": sys.version.split()[0],
        "cpu cores": str(os.cpu_count()),
    }
    if shutil.which("nvidia-smi"):
        query = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                                "--format=csv,noheader"], capture_output=True, text=True)
        info["nvidia-smi"] = query.stdout.strip()
    return info


def step(report: Report, name: str, body: Callable[[], None]) -> None:
    """Run one step; a failure becomes a row and the next step still runs."""
    print(f"== {name}", flush=True)
    start = time.perf_counter()
    try:
        body()
    except Exception as error:  # one broken step must not lose the others' figures
        traceback.print_exc()
        report.skip(name, f"failed: {type(error).__name__}: {str(error)[:200]}")
    print(f"   ({time.perf_counter() - start:.0f} s)", flush=True)


def unet_rows(report: Report, sizes: Sizes, quick: bool) -> None:
    """Train step and segmentation of the full DeepFinder U-Net with --conv xla."""
    if not (on_gpu() or quick):
        report.skip("U-Net --conv xla", "JAX sees no GPU (CPU figures are in docs/benchmarks.md)")
        return
    preset = unet_benchmark.PRESETS["deepfinder"]
    config = unet_benchmark.UNetConfig(**{**preset.__dict__, "conv": "xla"})
    on = f"deepfinder, --conv xla on {jax.default_backend()}"
    for batch in sizes.batches:
        wall, _ = unet_benchmark.bench_train(config, batch, sizes.steps, sizes.patch)
        report.add(f"U-Net train step b{batch} {sizes.patch}³", wall, "s/step", f"unet b{batch}",
                   note=on)
        print(f"   train step batch {batch}: {wall:.3f} s", flush=True)
    wall, _ = unet_benchmark.bench_segment(config, sizes.tile, repeats=3)
    rate = sizes.tile**3 / wall
    report.add(f"U-Net segment {sizes.tile}³ tiles", rate, "voxels/s", "segment",
               lower_is_better=False, note=on)
    print(f"   segmentation: {rate:,.0f} voxels/s", flush=True)


def tetris_and_simulate(report: Report, sizes: Sizes, work: Path) -> None:
    """templearn tetris --search full, then simulate + reconstruct its sample."""
    from templearn.mrc import read_mrc
    from templearn.sample import read_molecules

    maps = CARRIED / "maps"
    if not (maps / "distractors" / "maps.star").exists():
        report.skip("tetris + simulate", f"no maps in {maps}: run --prepare on a machine with "
                    "../shared/data and carry .gpu-bench")
        return
    sample = work / "sample"
    seconds = simulate_benchmark.run(
        "tetris", "-t", f"nucleosome={maps / 'nucleosome'}", "-d", str(maps / "distractors"),
        "--shape", sizes.shape, "--search", "full", "--seed", "0", "-o", str(sample))
    table, _ = read_molecules(sample / "molecules.star")
    packing = tetris_benchmark.binarised_sample(read_mrc(sample / "density.mrc").data)
    report.add(f"tetris --search full {sizes.shape}", len(table) / seconds * 60,
               "molecules/min", "tetris", lower_is_better=False,
               note=f"{len(table)} molecules in {seconds:.1f} s (process), packing {packing:.3f}")
    series = work / "tiltseries"
    seconds = simulate_benchmark.run("simulate", str(sample / "molecules.star"),
                                     "-o", str(series))
    report.add("templearn simulate (process)", seconds, "s", "simulate cli")
    seconds = simulate_benchmark.run("reconstruct", str(series / "tiltseries.mrc"),
                                     "-o", str(work / "tomogram"))
    report.add("templearn reconstruct (process)", seconds, "s", "reconstruct cli")
    simulated, rebuilt = simulate_benchmark.breakdown(sample / "molecules.star")
    report.add("fast simulation, compiled", simulated, "s", "simulate")
    report.add("WBP, compiled", rebuilt, "s", "reconstruct")


def parakeet_rows(report: Report, sizes: Sizes, work: Path) -> None:
    """install-parakeet (offline, from .gpu-bench/parakeet) and one exit-wave tilt."""
    from templearn.acquisition import Acquisition
    from templearn.simulate.multislice import ParakeetParams, simulate_parakeet

    protein = CARRIED / parakeet_benchmark.PROTEIN.name
    if not protein.exists():
        report.skip("Parakeet", f"{protein} missing: run --prepare and carry .gpu-bench")
        return
    if importlib.util.find_spec("parakeet") is None:
        wheelhouse = CARRIED / "parakeet"
        if not wheelhouse.is_dir():
            report.skip("install-parakeet", f"no {wheelhouse}: this machine cannot reach PyPI, "
                        "and install-parakeet's sources and wheels must be carried there "
                        "(see this script's docstring)")
            return
        env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheelhouse)}
        start = time.perf_counter()
        subprocess.run([str(ROOT / "bin" / "install-parakeet"), "--python", sys.executable],
                       check=True, env=env)
        report.add("bin/install-parakeet (build)", time.perf_counter() - start, "s")
    table, grid = parakeet_benchmark.sample_of_copies(sizes.parakeet_size, 1, protein)
    acquisition = Acquisition(tilt_min=0, tilt_max=0, tilt_step=2, dose_total=40)
    device = "gpu" if on_gpu() else "cpu"
    series = simulate_parakeet(table, grid, acquisition,
                               ParakeetParams(sim_pixel=1.0, device=device), work / "parakeet")
    px = sizes.parakeet_size * int(parakeet_benchmark.VOXEL)
    report.add(f"Parakeet exit wave, 1 tilt {px}²", series.meta["step_seconds"]["exit_wave"],
               "s", "exit wave", note=f"MULTEM device {device}")


def prepare() -> None:
    """Make .gpu-bench/ here: the 16 Å maps, the Parakeet protein, the missing wheels."""
    if not simulate_benchmark.DATA.exists():
        sys.exit(f"shared data not found at {simulate_benchmark.DATA}")
    simulate_benchmark.prepare_maps(CARRIED)
    shutil.copy2(parakeet_benchmark.PROTEIN, CARRIED / parakeet_benchmark.PROTEIN.name)
    platforms = [arg for p in WHEEL_PLATFORMS for arg in ("--platform", p)]
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--only-binary=:all:", "--python-version", "3.12", "--implementation",
                    "cp", *platforms, "-d", str(CARRIED / "whl"),
                    *(f"{name}=={version(name)}" for name in DEVICE_WHEELS)], check=True)
    size = sum(f.stat().st_size for f in CARRIED.rglob("*") if f.is_file())
    print(f"prepared {CARRIED} ({size / 2**20:.1f} MiB); carry it: carry=['.gpu-bench']")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a check on CPU)")
    parser.add_argument("--prepare", action="store_true",
                        help="only make .gpu-bench/ (run before the device call)")
    parser.add_argument("--parakeet", action="store_true",
                        help="also build Parakeet and simulate one exit-wave tilt")
    parser.add_argument("--skip-unet", action="store_true")
    parser.add_argument("--skip-simulate", action="store_true",
                        help="skip tetris + simulate + reconstruct")
    args = parser.parse_args()
    if args.prepare or (args.quick and not (CARRIED / "whl").is_dir()):
        prepare()
        if args.prepare:
            return
    sizes = QUICK if args.quick else Sizes()
    report = Report(header(), compare=not args.quick)
    report.header["mode"] = "quick (tiny sizes; no speed-ups)" if args.quick else "full"
    for key, value in report.header.items():
        print(f"{key}: {value}")
    if not on_gpu():
        print("NO GPU: JAX's backend is "
              f"{jax.default_backend()}; GPU-only rows are skipped or marked, the rest runs "
              f"on {os.cpu_count()} CPU cores", flush=True)
    os.environ.setdefault("TEMPLEARN_JAX_CACHE", "")  # compile as a first run would
    with tempfile.TemporaryDirectory(prefix="templearn-gpu-bench-") as tmp:
        work = Path(tmp)
        if not args.skip_unet:
            step(report, "U-Net", lambda: unet_rows(report, sizes, args.quick))
        if not args.skip_simulate:
            step(report, "tetris + fast simulator",
                 lambda: tetris_and_simulate(report, sizes, work))
        if args.parakeet:
            step(report, "Parakeet", lambda: parakeet_rows(report, sizes, work))
    print()
    print(report.markdown(), flush=True)


if __name__ == "__main__":
    main()
