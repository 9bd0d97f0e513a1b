"""Make (once) the Parakeet test tomograms of the transfer benchmark, cached outside the
repository, and a params layer that picks them with `templearn run`.

Cases (among held-out distractors, 64×64 voxels at 16 Å, Parakeet + MULTEM at ≈1.23 Å,
binned to 16 Å). 70S ribosomes (PDB 4V5D as deposited):
  defocus   −3 µm, 100 e⁻/Å², ±60°/6°, 32 voxels thick, crowded (1:5)
  vpp       phase plate −0.5 µm, otherwise as defocus
  thick     −3.5 µm, 100 e⁻/Å², ±60°/6°, 48 voxels (768 Å) thick, crowded
  sparse    −2.5 µm, 60 e⁻/Å², ±60°/6°, 32 thick, few molecules (protein fraction 0.05, 1:2)
  sparse-100  the sample of sparse at 100 e⁻/Å² (separates the dose from the crowding)
  fine      phase plate −0.8 µm, 120 e⁻/Å², ±45°/3° (31 tilts), 32 thick, crowded
Apoferritin (PDB 4V1W, from ../shared/data/structures/large), crowded at 1:2:
  apo-defocus  −3 µm, 100 e⁻/Å², ±60°/6°, 32 thick
  apo-vpp      phase plate −0.5 µm, otherwise as apo-defocus
Nucleosomes (the six models of ../shared/data/structures/nucleosome, one class) at 8 Å,
96×96×40 voxels (768×768×320 Å), crowded at 1:2:
  nuc-defocus  −2.5 µm, 100 e⁻/Å², ±60°/4°
  nuc-vpp      phase plate −0.5 µm, otherwise as nuc-defocus
Each target's cases go into a params layer of their own: `transfer-tomograms.yaml`
(ribosome), `transfer-apoferritin.yaml` and `transfer-nucleosome.yaml`.
Distractor split (written down once): the test samples use only the shared distractors
that are NOT bundled with templearn (`src/templearn/data/structures/distractors`), so no
distractor of a test tomogram is ever used in training, which uses the bundled ones.

Each case costs half an hour to an hour of one CPU core (the exit wave); cases run in parallel
(`--jobs`), and a killed run resumes (Parakeet steps and finished stages are kept).
Samples are packed once and kept in the repository (`benchmarks/transfer_samples/CASE.star`,
file names only; `--store-samples` writes them): a case whose sample is stored is simulated
from it, so the benchmark's tomograms stay the same when `tetris` changes (finding 11).

    python benchmarks/transfer_cases.py [--cache DIR] [--cases defocus vpp] [--jobs 2]
                                        [--store-samples]
    templearn run params/ribosome.yaml DIR/transfer-tomograms.yaml -o runs/transfer
    templearn run params/apoferritin.yaml DIR/transfer-apoferritin.yaml -o runs/apoferritin
"""

from __future__ import annotations

import argparse
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from templearn import data, star
from templearn.acquisition import Acquisition, write_acquisitions
from templearn.stages import density, labels, reconstruct, simulate, tetris
from templearn.stages.base import recorded_fingerprint

STRUCTURES = Path(__file__).resolve().parents[2] / "shared" / "data" / "structures"
SHARED = STRUCTURES / "distractors"
#: Target → its atomic model(s) (the ribosome's is bundled with templearn).
TARGETS = {"ribosome": lambda: [data.target_structure()],
           "apoferritin": lambda: [STRUCTURES / "large" / "4v1w.cif"],
           "nucleosome": lambda: sorted((STRUCTURES / "nucleosome").glob("*.pdb"))}
#: Packed samples of the cases, kept so that the cases outlive changes to `tetris`.
STORED_SAMPLES = Path(__file__).resolve().parent / "transfer_samples"
#: Target → the params layer listing its finished cases.
LAYERS = {"ribosome": "transfer-tomograms.yaml", "apoferritin": "transfer-apoferritin.yaml",
          "nucleosome": "transfer-nucleosome.yaml"}


@dataclass(frozen=True)
class Case:
    """One Parakeet test tomogram: its acquisition, sample seed and packing options, the
    acquisition table holding its row (the first two cases keep the table they were
    simulated with, so that cached simulations stay valid as cases are added), the
    target molecule and the voxel size of maps, sample and tomogram."""

    acquisition: Acquisition
    seed: int
    packing: dict[str, Any] = field(default_factory=dict)
    table: str = "acquisitions-2.tsv"
    target: str = "ribosome"
    voxel_size: float = 16.0

    def maps(self, cache: Path, name: str) -> Path:
        """Maps of `name` (a target or the distractors) at this case's voxel size (16 Å maps
        keep their first folder, so that cached cases stay valid)."""
        folder = name if self.voxel_size == 16 else f"{name}-{self.voxel_size:g}A"
        return cache / "maps" / folder


CROWDED = {"shape": (64, 64, 32), "ratio": (1, 5)}
NUCLEOSOMES = {"shape": (96, 96, 40), "ratio": (1, 2)}
CASES = {
    "defocus": Case(Acquisition(name="defocus", defocus_um=-3.0, dose_total=100.0,
                                tilt_min=-60, tilt_max=60, tilt_step=6.0), 9001, CROWDED,
                    "acquisitions.tsv"),
    "vpp": Case(Acquisition(name="vpp", defocus_um=-0.5, phase_plate=True, dose_total=100.0,
                            tilt_min=-60, tilt_max=60, tilt_step=6.0), 9002, CROWDED,
                "acquisitions.tsv"),
    "thick": Case(Acquisition(name="thick", defocus_um=-3.5, dose_total=100.0, tilt_min=-60,
                              tilt_max=60, tilt_step=6.0), 9003,
                  {**CROWDED, "shape": (64, 64, 48)}),
    "sparse": Case(Acquisition(name="sparse", defocus_um=-2.5, dose_total=60.0, tilt_min=-60,
                               tilt_max=60, tilt_step=6.0), 9004,
                   {**CROWDED, "ratio": (1, 2), "max_protein_fraction": 0.05}),
    "sparse-100": Case(Acquisition(name="sparse-100", defocus_um=-2.5, dose_total=100.0,
                                   tilt_min=-60, tilt_max=60, tilt_step=6.0), 9004,
                       {**CROWDED, "ratio": (1, 2), "max_protein_fraction": 0.05},
                       "acquisitions-3.tsv"),
    "fine": Case(Acquisition(name="fine", defocus_um=-0.8, phase_plate=True, dose_total=120.0,
                             tilt_min=-45, tilt_max=45, tilt_step=3.0), 9005, CROWDED),
    "apo-defocus": Case(Acquisition(name="apo-defocus", defocus_um=-3.0, dose_total=100.0,
                                    tilt_min=-60, tilt_max=60, tilt_step=6.0), 9101,
                        {**CROWDED, "ratio": (1, 2)}, "acquisitions-apo.tsv", "apoferritin"),
    "apo-vpp": Case(Acquisition(name="apo-vpp", defocus_um=-0.5, phase_plate=True,
                                dose_total=100.0, tilt_min=-60, tilt_max=60, tilt_step=6.0),
                    9102, {**CROWDED, "ratio": (1, 2)}, "acquisitions-apo.tsv", "apoferritin"),
    "nuc-defocus": Case(Acquisition(name="nuc-defocus", defocus_um=-2.5, dose_total=100.0,
                                    tilt_min=-60, tilt_max=60, tilt_step=4.0), 9201,
                        NUCLEOSOMES, "acquisitions-nuc.tsv", "nucleosome", 8.0),
    "nuc-vpp": Case(Acquisition(name="nuc-vpp", defocus_um=-0.5, phase_plate=True,
                                dose_total=100.0, tilt_min=-60, tilt_max=60, tilt_step=4.0),
                    9202, NUCLEOSOMES, "acquisitions-nuc.tsv", "nucleosome", 8.0),
}
SEEDS = {name: case.seed for name, case in CASES.items()}


def held_out_distractors() -> list[Path]:
    """Shared distractors whose PDB ID is not among the bundled (training) ones."""
    bundled = {p.name.split(".")[0].removesuffix("_centered") for p in
               data.distractor_structures()}
    files = sorted(SHARED.glob("*.pdb"))
    if not files:
        raise SystemExit(f"no shared distractors in {SHARED}")
    return [p for p in files if p.stem.removesuffix("_centered") not in bundled]


def once(stage, params, inputs, out: Path) -> None:
    """Run a stage unless its folder already holds this exact run."""
    from templearn.stages.base import fingerprint

    key = fingerprint(stage.STAGE.name, params.record(), inputs.record())
    if recorded_fingerprint(out, stage.STAGE.name) != key:
        stage.run(params, inputs, out)


def prepare(cache: Path, cases: list[Case]) -> None:
    """Maps of the targets and the held-out distractors at each case's voxel size, and the
    acquisition tables."""
    for case in cases:
        params = density.Params(voxel_size=case.voxel_size)
        once(density, params, density.Inputs(tuple(TARGETS[case.target]())),
             case.maps(cache, case.target))
        once(density, params, density.Inputs(tuple(held_out_distractors())),
             case.maps(cache, "distractors"))
    for table in {c.table for c in CASES.values()}:
        write_acquisitions(cache / table, [c.acquisition for c in CASES.values()
                                           if c.table == table])


def stored_sample_path(name: str) -> Path:
    return STORED_SAMPLES / f"{name}.star"


def store_sample(molecules: Path, name: str) -> None:
    """Keep a packed sample in the repository, its map and structure files by name only."""
    blocks = star.read_blocks(molecules)
    table = blocks[star.PARTICLES_BLOCK]
    for column in (star.MAP_FILE, star.STRUCTURE_FILE):
        table[column] = [Path(value).name for value in table[column]]
    STORED_SAMPLES.mkdir(exist_ok=True)
    star.write_star(stored_sample_path(name), blocks)


def restore_sample(cache: Path, name: str, molecules: Path) -> None:
    """A stored sample as molecules.star, its files found again on this machine: the maps in
    the cache, the structures among the target's and the held-out distractors'."""
    case = CASES[name]
    blocks = star.read_blocks(stored_sample_path(name))
    table = blocks[star.PARTICLES_BLOCK]
    structures = {p.name: p for p in [*TARGETS[case.target](), *held_out_distractors()]}
    unknown = sorted(set(table[star.STRUCTURE_FILE]) - set(structures))
    if unknown:
        raise SystemExit(f"{stored_sample_path(name)}: structures not found: {unknown}")
    folders = {"template": case.target, "distractor": "distractors"}
    table[star.MAP_FILE] = [str(case.maps(cache, folders[kind]) / file) for kind, file
                            in zip(table[star.MOLECULE_CLASS], table[star.MAP_FILE],
                                   strict=True)]
    table[star.STRUCTURE_FILE] = [str(structures[file]) for file in table[star.STRUCTURE_FILE]]
    if molecules.is_file() and same_tables(star.read_blocks(molecules), blocks):
        return  # rewriting would change the file's bytes (a time stamp) and its fingerprint
    molecules.parent.mkdir(parents=True, exist_ok=True)
    star.write_star(molecules, blocks)


def same_tables(first: dict, second: dict) -> bool:
    return first.keys() == second.keys() and all(first[k].equals(second[k]) for k in first)


def pack(cache: Path, name: str, store: bool = False) -> Path:
    """The case's sample (molecules.star): the stored one, else packed (and kept if `store`)."""
    case = CASES[name]
    molecules = cache / name / "sample" / "molecules.star"
    if stored_sample_path(name).is_file():
        restore_sample(cache, name, molecules)
        return molecules
    once(tetris, tetris.Params(name=f"parakeet-{name}", seed=case.seed, **case.packing),
         tetris.Inputs(template={case.target: case.maps(cache, case.target)},
                       distractors=(case.maps(cache, "distractors"),)), molecules.parent)
    if store:
        store_sample(molecules, name)
    return molecules


def make_case(cache: Path, name: str, store: bool = False) -> dict:
    """sample → Parakeet tilt series → tomogram → labels for one case."""
    base, case = cache / name, CASES[name]
    molecules = pack(cache, name, store)
    once(simulate, simulate.Params(row=name, backend="parakeet", seed=case.seed),
         simulate.Inputs(molecules=molecules, acquisitions=cache / case.table),
         base / "tilt")
    # Half tomograms too: the noise measure of the recipes' whiten-noise normalisation.
    once(reconstruct, reconstruct.Params(halves=True),
         reconstruct.Inputs(tilt_series=base / "tilt" / "tiltseries.mrc"), base / "tomo")
    once(labels, labels.Params(name=f"parakeet-{name}"),
         labels.Inputs(molecules=molecules, like=base / "tomo" / "tomogram.mrc"),
         base / "labels")
    return entry(cache, name)


def entry(cache: Path, name: str) -> dict:
    """The case as a tomogram of a params file (name, tomogram, ground truth)."""
    base = cache / name
    return {"name": f"parakeet-{name}", "tomogram": str(base / "tomo" / "tomogram.mrc"),
            "targets": str(base / "labels" / "targets.star")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get(
        "TEMPLEARN_CACHE", Path.home() / ".cache" / "templearn")) / "transfer")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--store-samples", action="store_true",
                        help="keep newly packed samples in benchmarks/transfer_samples")
    parser.add_argument("--pack-only", action="store_true",
                        help="pack the samples (with --store-samples: keep them), simulate none")
    args = parser.parse_args()
    cache = args.cache.resolve()
    prepare(cache, [CASES[name] for name in args.cases])
    if args.pack_only:
        for name in args.cases:
            print(pack(cache, name, args.store_samples))
        return
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        list(pool.map(make_case, [cache] * len(args.cases), args.cases,
                      [args.store_samples] * len(args.cases)))
    for target, layer_name in LAYERS.items():  # every finished case, also earlier ones
        tomograms = [entry(cache, name) for name, case in CASES.items()
                     if case.target == target
                     and recorded_fingerprint(cache / name / "labels", labels.STAGE.name)]
        if tomograms:
            layer = cache / layer_name
            layer.write_text(yaml.safe_dump({"tomograms": tomograms}, sort_keys=False))
            print(f"{target} transfer cases ready: {layer}")


if __name__ == "__main__":
    main()
