"""Stage `tetris`: template and distractor maps → a crowded sample (`molecules.star`,
`instances.mrc`, `density.mrc`, `slices.png`).

The packer's own parameters (`templearn.tetris.params.TetrisParams`) name, default and
validate the packing options; this module only maps them to the CLI (x,y,z shape, the
band chosen by the mask mode) and adds the sample name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from templearn.errors import InputError
from templearn.stages.base import Record, Stage, StageParams, option
from templearn.tetris.params import DEFAULT_BAND, MASK_MODES, SEARCHES, TetrisParams

#: The packer's defaults, which the options below show and use.
_DEFAULT = TetrisParams()


def _shape(text: str) -> tuple[int, ...]:
    """'192,192,64' (or 192x192x64) -> (192, 192, 64)."""
    parts = [p for p in text.replace("x", ",").split(",") if p.strip()]
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise InputError(f"--shape expects three integers x,y,z, got {text!r}") from None
    if len(values) != 3:
        raise InputError(f"--shape expects three integers x,y,z, got {text!r}")
    return values


def _band_help() -> str:
    defaults = " or ".join(f"{','.join(map(str, band))} ({mode} masks)"
                           for mode, band in DEFAULT_BAND.items())
    return f"Insertion band r_in,r_out in voxels. Default: {defaults}."


@dataclass(frozen=True)
class Inputs(Record):
    template: dict[str, Path] = option(
        help="Template class as NAME=MAPS (MAPS: a map, a directory of maps, or a glob); "
             "repeat for several classes. Maps come from `templearn density`.",
        short="-t", repeat=True)
    distractors: tuple[str | Path, ...] = option(
        (), "Distractor maps (map, directory or glob); repeatable.", short="-d", repeat=True)


@dataclass(frozen=True)
class Params(StageParams):
    name: str = option("sample", "Sample name (rlnTomoName in molecules.star).")
    shape: tuple[int, int, int] = option(_DEFAULT.shape_zyx[::-1],
                                         "Sample size x,y,z in voxels.", parse=_shape)
    ratio: tuple[int, int] = option(_DEFAULT.ratio, "Templates : distractors, e.g. 1:2.")
    band: tuple[int, int] | None = option(None, _band_help())
    sigma: float = option(_DEFAULT.sigma, "Gaussian σ (voxels) before binarising a map.")
    threshold: float = option(_DEFAULT.threshold, "Binarisation threshold on the e2pdb2mrc "
                                                  "scale of 16 Å voxels (maps at another voxel "
                                                  "size are cut at the same density).")
    mask: str = option(_DEFAULT.mask_mode, "'threshold' (paper) or 'volume': each mask "
                       "encloses the molecule's volume at 1.21 Å³/Da, for protein-dense "
                       "samples.", choices=MASK_MODES)
    rotations: int = option(_DEFAULT.rotations, "Rotations tried per molecule (tightest fit "
                                                "kept).")
    search: str = option(_DEFAULT.search, "'local' (fast, windowed) or 'full' (paper).",
                         choices=SEARCHES)
    patience: int = option(_DEFAULT.patience, "Molecules that may fail to fit in a row "
                                              "before stopping (0 = paper).")
    max_molecules: int | None = option(_DEFAULT.max_molecules,
                                       "Stop after this many molecules.")
    max_protein_fraction: float | None = option(
        _DEFAULT.max_protein_fraction, "Stop once the molecules fill this fraction of the "
        "sample volume (at 1.21 Å³/Da; cytoplasm is about 0.2-0.3).")
    seed: int = option(_DEFAULT.seed, "Random seed.")

    def tetris(self) -> TetrisParams:
        """The packer's parameters (validated; InputError naming the option)."""
        nx, ny, nz = self.shape
        band = self.band if self.band is not None else DEFAULT_BAND.get(self.mask,
                                                                         _DEFAULT.band)
        return TetrisParams(
            shape_zyx=(nz, ny, nx), ratio=self.ratio, band=band, sigma=self.sigma,
            threshold=self.threshold, mask_mode=self.mask, rotations=self.rotations,
            search=self.search, patience=self.patience, max_molecules=self.max_molecules,
            max_protein_fraction=self.max_protein_fraction, seed=self.seed)

    def check(self) -> None:
        self.tetris()


def write(params: Params, inputs: Inputs, out: Path) -> str:
    """Pack the maps into a sample; write its table, instance and density maps, slices."""
    import time

    import numpy as np

    from templearn import star
    from templearn.jaxcache import enable_compilation_cache
    from templearn.mrc import Volume, write_mrc
    from templearn.progress import Counter, log
    from templearn.report.plots import write_slices_png
    from templearn.sample import PROTEIN_VOLUME_PER_DA, TEMPLATE, Grid, write_molecules
    from templearn.tetris.molecules import read_molecule_set
    from templearn.tetris.packer import molecules_table, pack

    tetris = params.tetris()
    if not inputs.template:
        raise InputError("give at least one --template NAME=MAPS")
    molecules = read_molecule_set(inputs.template, inputs.distractors)
    voxel = molecules.voxel_size
    enable_compilation_cache()
    start = time.monotonic()
    counter = Counter("tetris: molecules placed")
    try:
        packed = pack(molecules, tetris, on_placed=counter.update)
    finally:
        counter.close()
    seconds = time.monotonic() - start
    table = molecules_table(packed, molecules, params.name)
    write_mrc(out / "instances.mrc", Volume(packed.instances, voxel))
    write_mrc(out / "density.mrc", Volume(packed.density, voxel))
    write_slices_png(out / "slices.png", packed.density, packed.instances)
    write_molecules(out / "molecules.star", table, Grid(tetris.shape_zyx, voxel))
    n = len(table)
    n_templates = int((table[star.MOLECULE_CLASS] == TEMPLATE).sum())
    packing = float((packed.instances > 0).mean())
    protein = float(molecules.masses_da[packed.molecule_index].sum() * PROTEIN_VOLUME_PER_DA
                    / (np.prod(tetris.shape_zyx) * voxel**3))
    # Timing is logged, not recorded: the record of identical runs is identical.
    log(f"tetris: {n} molecules in {seconds:.1f} s ({n / max(seconds, 1e-9) * 60:.0f}/min), "
        f"{packed.n_full_searches} whole-sample searches")
    return (f"{n} molecules ({n_templates} templates); mask packing {packing:.4f}, "
            f"protein volume fraction {protein:.4f}")


STAGE = Stage(
    "tetris", 'Crowded sample by the Template Learning "Tetris" algorithm (JAX): '
    "molecules.star, instances.mrc, density.mrc, slices.png.",
    Params, Inputs, write, packages=("jax", "numpy", "scipy", "mrcfile", "starfile"),
    default_output="sample")


#: `run(params, inputs, out_dir)`: the stage from Python, as the CLI runs it.
run = STAGE.run
