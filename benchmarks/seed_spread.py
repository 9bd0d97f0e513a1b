"""How much a run's picking figures move with the training seed alone.

One `templearn run` picks F1 from one trained network; a change that moves a figure by a
pick or two cannot be told from another seed's network (docs/transfer.md, finding 11:
one more seed moved Parakeet `defocus` by 0.07). This runs the same params files once per
training seed in one run directory — the simulated tomograms are made once and reused, only
`training` and what follows it run again — keeps each seed's per-tomogram metrics, and
prints F1 per tomogram and seed with the mean and the spread, so that a row of
docs/transfer.md can be a mean over seeds.

    python benchmarks/seed_spread.py params/ribosome.yaml CACHE/transfer-tomograms.yaml \\
        -o runs/ribosome --seeds 0 1 2 [--set train.loss=tversky-ce ...]

Each seed's metrics are copied to RUN/seeds/<seed>/<tomogram>.json; a rerun skips seeds
whose metrics are there (`--again` trains them anew).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

#: Where `templearn run` writes a tomogram's evaluation (RUN/picking/<name>/evaluation).
PICKING, EVALUATION, METRICS = "picking", "evaluation", "metrics.json"


def run_seed(params: list[Path], out: Path, seed: int, sets: list[str]) -> None:
    """`templearn run` with the training seed set; exit status 3 if the run fails."""
    command = [sys.executable, "-m", "templearn", "run", *map(str, params), "-o", str(out),
               "--no-report", "--set", f"train.seed={seed}"]
    for item in sets:
        command += ["--set", item]
    print("$", " ".join(command), flush=True)
    if subprocess.run(command).returncode != 0:
        sys.exit(f"seed_spread: the run for seed {seed} failed (its log is under {out}/logs)")


def keep_metrics(out: Path, seed: int) -> Path:
    """Copy every tomogram's metrics.json of the run to RUN/seeds/<seed>/<name>.json."""
    kept = out / "seeds" / str(seed)
    kept.mkdir(parents=True, exist_ok=True)
    for metrics in sorted((out / PICKING).glob(f"*/{EVALUATION}/{METRICS}")):
        shutil.copyfile(metrics, kept / f"{metrics.parent.parent.name}.json")
    return kept


def f1_per_tomogram(kept: Path) -> dict[str, float]:
    """Tomogram → F1 with all picks (all classes together where there are several)."""
    scores = {}
    for path in sorted(kept.glob("*.json")):
        metrics = json.loads(path.read_text())
        classes = metrics["classes"]
        overall = metrics.get("overall") if len(classes) > 1 else None
        scores[path.stem] = (overall or next(iter(classes.values())))["f1"]
    return scores


def table(per_seed: dict[int, dict[str, float]]) -> str:
    """Markdown: one row per tomogram, F1 per seed, mean and s.d. (sample)."""
    seeds = sorted(per_seed)
    names = sorted({name for scores in per_seed.values() for name in scores})
    lines = ["| tomogram | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | s.d. |",
             "|---|" + "---|" * (len(seeds) + 2)]
    for name in names:
        values = [per_seed[s].get(name) for s in seeds]
        present = [v for v in values if v is not None]
        spread = statistics.stdev(present) if len(present) > 1 else float("nan")
        cells = ["–" if v is None else f"{v:.3f}" for v in values]
        lines.append(f"| {name} | " + " | ".join(cells)
                     + f" | {statistics.fmean(present):.3f} | {spread:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("params", type=Path, nargs="+")
    parser.add_argument("-o", "--output", type=Path, required=True, help="run directory")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", dest="sets", action="append", default=[],
                        help="SECTION.KEY=VALUE, passed to templearn run (repeatable)")
    parser.add_argument("--again", action="store_true", help="train seeds already kept anew")
    args = parser.parse_args()
    per_seed = {}
    for seed in args.seeds:
        kept = args.output / "seeds" / str(seed)
        if args.again or not any(kept.glob("*.json")):
            run_seed(args.params, args.output, seed, args.sets)
            kept = keep_metrics(args.output, seed)
        per_seed[seed] = f1_per_tomogram(kept)
    print(table(per_seed))


if __name__ == "__main__":
    main()
