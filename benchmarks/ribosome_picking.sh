#!/usr/bin/env bash
# Template Learning end to end on 2 CPU cores: 70S ribosome (4v5d) among the 75 shared
# distractors at 16 Å. Simulated training tomograms (fast backend, random acquisitions),
# a cpu-small U-Net trained for 14 × 25 steps, picking in two held-out tomograms made
# with other seeds and other acquisitions. Usage: benchmarks/ribosome_picking.sh [WORKDIR]
# (about 1 h on 2 cores: NMA and conformers 2 min, each sample 4-6 min, training ~24 min).
# ABLATION=nodis|sparse|single runs one of the paper's Fig. 4 ablations, changing only the
# training samples (in WORKDIR/<ablation>*) and testing on the same crowded held-out
# tomograms: no distractors (ribosomes only), less crowding (30% of the full protein
# fraction, 0.053 instead of ~0.178), or one template map of the deposited structure
# without normal-mode flexibility. NO_DISTRACTORS=1 is kept as ABLATION=nodis.
set -euo pipefail
S="$(cd "$(dirname "$0")/../.." && pwd)/shared/data/structures"
W="${1:-/tmp/templearn-ribosome}"
mkdir -p "$W" && cd "$W"

[ -f nma/4v5d.modes.npz ] || templearn nma "$S/large/4v5d.cif" -o nma/4v5d.modes.npz
[ -d conf ] || templearn deform "$S/large/4v5d.cif" nma/4v5d.modes.npz -n 25 -A 150 --seed 0 -o conf
[ -f maps/ribo/maps.star ] || templearn density conf/*.cif -o maps/ribo
[ -f maps/single/maps.star ] || templearn density "$S/large/4v5d.cif" -o maps/single
[ -f maps/dis/maps.star ] || templearn density "$S"/distractors/*.pdb -o maps/dis
templearn randomize -n 12 --seed 0 -o acq_train.tsv
templearn randomize -n 4 --seed 1 -o acq_test.tsv

tomogram() {  # name, sample seed, acquisition table, row, simulation seed, [ablation]
  local s=$1 crowd=(-d maps/dis --ratio 1:5) maps=maps/ribo
  case "${6:-}" in
    nodis) crowd=() ;;
    sparse) crowd+=(--max-protein-fraction 0.053) ;;
    single) maps=maps/single ;;
  esac
  [ -f "$s/sample/molecules.star" ] || templearn tetris -t ribosome="$maps" "${crowd[@]}" \
      --shape 192,192,64 --seed "$2" -o "$s/sample"
  [ -f "$s/tilt/tiltseries.mrc" ] || templearn simulate "$s/sample/molecules.star" -a "$3" \
      --row "$4" --seed "$5" -o "$s/tilt"
  [ -f "$s/tomo/tomogram.mrc" ] || templearn reconstruct "$s/tilt/tiltseries.mrc" -o "$s/tomo"
  [ -f "$s/labels/labels.mrc" ] || templearn labels "$s/sample/molecules.star" \
      --like "$s/tomo/tomogram.mrc" -o "$s/labels"
}
ABLATION="${ABLATION:-}"
[ "${NO_DISTRACTORS:-0}" = 1 ] && ABLATION=nodis
case "$ABLATION" in
  "") T=train; RUN=ribo ;;
  nodis|sparse|single) T=$ABLATION; RUN=$ABLATION ;;
  *) echo "ABLATION must be nodis, sparse or single, not '$ABLATION'" >&2; exit 2 ;;
esac
for i in 0 2 3 4; do tomogram "$T$i" $((100 + i)) acq_train.tsv "$i" "$i" "$ABLATION"; done
for i in 0 1; do tomogram "test$i" $((108 + i)) acq_test.tsv "$i" $((8 + i)); done

templearn train -s "$T"0/tomo/tomogram.mrc,"$T"0/labels -s "$T"2/tomo/tomogram.mrc,"$T"2/labels \
    -s "$T"3/tomo/tomogram.mrc,"$T"3/labels -v "$T"4/tomo/tomogram.mrc,"$T"4/labels \
    --preset cpu-small --conv im2col_x --patch 32 --batch 8 --epochs 14 --steps 25 \
    --loss cross-entropy --lr 1e-3 --shift 8 -o "run/$RUN"

for t in test0 test1; do
  out="run/eval_$RUN/$t"
  templearn segment "$t/tomo/tomogram.mrc" "run/$RUN/model" -o "$out/seg" --tile 64 --crop 8 --batch 2
  for method in components meanshift; do
    templearn pick "$out/seg/labels.mrc" --method "$method" --radius 6 -o "$out/$method"
    templearn evaluate "$out/$method/picks.star" "$t/labels/targets.star" --sweep size \
        -o "$out/eval_$method"
  done
done
