#!/usr/bin/env bash
# Template Learning end to end on 2 CPU cores, from atomic templates to picks in held-out
# tomograms. TARGET=ribosome (default: the 70S ribosome 4v5d among the 75 shared
# distractors, 1:5) or TARGET=apoferritin (the 4v1w 24-mer, 1:2), at 16 Å: 25 flexible
# conformers (NMA), four 192×192×64 training samples (3 train, 1 validation) simulated
# with random acquisitions (fast backend), a cpu-small U-Net trained 14 × 25 steps of
# 8 × 32³, and picking in two held-out tomograms made with other seeds and acquisitions.
# Usage: [TARGET=...] [ABLATION=...] benchmarks/template_picking.sh [WORKDIR]
# (about 1 h: NMA and conformers 2 min, each sample 1-6 min, training ~25 min).
# ABLATION=nodis|sparse|single runs one of the paper's Fig. 4 ablations, changing only the
# training samples (in WORKDIR/<ablation>*) and testing on the same crowded held-out
# tomograms: no distractors, less crowding (30% of the protein fraction: 0.053 instead
# of ~0.178), or one template map of the deposited structure without flexibility.
set -euo pipefail
S="$(cd "$(dirname "$0")/../.." && pwd)/shared/data/structures"
TARGET="${TARGET:-ribosome}"
case "$TARGET" in
  ribosome) PDB="$S/large/4v5d.cif"; RATIO=1:5; RADIUS=6; SEED0=100 ;;
  apoferritin) PDB="$S/large/4v1w.cif"; RATIO=1:2; RADIUS=3; SEED0=500 ;;
  *) echo "TARGET must be ribosome or apoferritin, not '$TARGET'" >&2; exit 2 ;;
esac
W="${1:-/tmp/templearn-$TARGET}"
mkdir -p "$W" && cd "$W"
STEM="$(basename "${PDB%.*}")"

[ -f "nma/$STEM.modes.npz" ] || templearn nma "$PDB" -o "nma/$STEM.modes.npz"
[ -d conf ] || templearn deform "$PDB" "nma/$STEM.modes.npz" -n 25 -A 150 --seed 0 -o conf
shopt -s nullglob
conformers=(conf/*.pdb conf/*.cif)
[ -f maps/target/maps.star ] || templearn density "${conformers[@]}" -o maps/target
[ -f maps/single/maps.star ] || templearn density "$PDB" -o maps/single
[ -f maps/dis/maps.star ] || templearn density "$S"/distractors/*.pdb -o maps/dis
templearn randomize -n 12 --seed 0 -o acq_train.tsv
templearn randomize -n 4 --seed 1 -o acq_test.tsv

tomogram() {  # name, sample seed, acquisition table, row, simulation seed, [ablation]
  local s=$1 crowd=(-d maps/dis --ratio "$RATIO") maps=maps/target
  case "${6:-}" in
    nodis) crowd=() ;;
    sparse) crowd+=(--max-protein-fraction 0.053) ;;
    single) maps=maps/single ;;
  esac
  [ -f "$s/sample/molecules.star" ] || templearn tetris -t "$TARGET=$maps" "${crowd[@]}" \
      --shape 192,192,64 --seed "$2" -o "$s/sample"
  [ -f "$s/tilt/tiltseries.mrc" ] || templearn simulate "$s/sample/molecules.star" -a "$3" \
      --row "$4" --seed "$5" -o "$s/tilt"
  [ -f "$s/tomo/tomogram.mrc" ] || templearn reconstruct "$s/tilt/tiltseries.mrc" -o "$s/tomo"
  [ -f "$s/labels/labels.mrc" ] || templearn labels "$s/sample/molecules.star" \
      --like "$s/tomo/tomogram.mrc" -o "$s/labels"
}
ABLATION="${ABLATION:-}"
case "$ABLATION" in
  "") T=train; RUN=$TARGET ;;
  nodis|sparse|single) T=$ABLATION; RUN=$ABLATION ;;
  *) echo "ABLATION must be nodis, sparse or single, not '$ABLATION'" >&2; exit 2 ;;
esac
for i in 0 2 3 4; do tomogram "$T$i" $((SEED0 + i)) acq_train.tsv "$i" "$i" "$ABLATION"; done
for i in 0 1; do tomogram "test$i" $((SEED0 + 8 + i)) acq_test.tsv "$i" $((8 + i)); done

templearn train -s "$T"0/tomo/tomogram.mrc,"$T"0/labels -s "$T"2/tomo/tomogram.mrc,"$T"2/labels \
    -s "$T"3/tomo/tomogram.mrc,"$T"3/labels -v "$T"4/tomo/tomogram.mrc,"$T"4/labels \
    --preset cpu-small --patch 32 --batch 8 --epochs 14 --steps 25 \
    --loss cross-entropy --lr 1e-3 --shift 8 -o "run/$RUN"

for t in test0 test1; do
  out="run/eval_$RUN/$t"
  templearn segment "$t/tomo/tomogram.mrc" "run/$RUN/model" -o "$out/seg" --tile 64 --crop 8 --batch 2
  for method in components meanshift; do
    templearn pick "$out/seg/labels.mrc" --method "$method" --radius "$RADIUS" -o "$out/$method"
    templearn evaluate "$out/$method/picks.star" "$t/labels/targets.star" --sweep size \
        -o "$out/eval_$method"
  done
done
