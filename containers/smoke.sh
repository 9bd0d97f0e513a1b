#!/bin/sh
# Smoke test of one image (bin/build-images --test), run inside it as its own user with
# the repository's tests/data mounted read-only at /data: the --help of every stage the
# image serves, then a tiny run of them.
#
#   sh /smoke.sh IMAGE
set -eu
image="$1"
cd "$(mktemp -d)"

helps() { for stage in "$@"; do templearn "$stage" --help >/dev/null; done; }

# A map, a packed sample and its simulated tilt series (tests/data's STAR files hold
# relative paths, so the sample is packed here).
sample_and_tilts() {
  templearn density /data/3qm1.cif.gz --voxel-size 8 --resolution 16 -o maps
  templearn tetris -t esterase=maps --shape 32,32,16 --ratio 1,0 --threshold 1 \
    --max-molecules 3 -o sample
  templearn randomize -n 1 --tilt-max 30,30 --tilt-step 10,10 -o acquisitions
  templearn simulate sample/molecules.star -a acquisitions/acquisitions.tsv -o tilt "$@"
}

case "$image" in
  structure)
    helps nma deform pseudoatoms
    if python -c "import jax" 2>/dev/null; then
      echo "smoke: JAX is installed in the structure image" >&2; exit 1
    fi
    templearn nma /data/3qm1.cif.gz --modes 3 -o nma
    templearn deform /data/3qm1.cif.gz nma/modes.npz -n 1 -o conformers
    templearn pseudoatoms /data/maps/3qm1.mrc -o pseudoatoms ;;
  jax)
    helps density tetris randomize simulate reconstruct labels pick evaluate report
    sample_and_tilts
    templearn reconstruct tilt/tiltseries.mrc -o tomo
    templearn labels sample/molecules.star --like tomo/tomogram.mrc -o labels
    templearn pick labels/labels.mrc --method components --radius 3 -o picks
    templearn evaluate picks/picks.star labels/targets.star -o evaluation ;;
  unet|unet-cuda)
    helps train segment
    python -c "import jax; print('smoke: JAX devices', jax.devices())"
    templearn reconstruct /data/tilt/tiltseries.mrc -o tomo
    templearn labels /data/sample/molecules.star --like tomo/tomogram.mrc -o labels
    templearn train -s tomo/tomogram.mrc,labels --preset cpu-small --patch 16 --batch 1 \
      --epochs 1 --steps 1 --shift 2 -o training
    templearn segment tomo/tomogram.mrc training/model --tile 16 --crop 2 -o segment ;;
  parakeet)
    helps simulate
    python -c "import multem; print('smoke: MULTEM GPU available:', multem.is_gpu_available())"
    sample_and_tilts --backend parakeet ;;
  imod)
    helps reconstruct
    templearn reconstruct /data/tilt/tiltseries.mrc --backend imod -o tomo ;;
  *)
    echo "smoke: no smoke test for image '$image'" >&2; exit 2 ;;
esac
echo "smoke: templearn-$image passed"
