#!/bin/bash
# Spatially correlated noise inputs (docs/emulator.md, stop 18): the white noise inputs of the
# CRPS-trained ensemble put power at the grid scale (SST small-scale power 7-8x the model's).
# Two fine-tunes of the from-scratch 32-call ensemble (acc1_wind_scratch_pnuv_k32, made by
# docs/recipes/emulator_acc1_wind_scratch_long.sh) that differ only in the noise:
#   white  : 32 calls, lr 1e-4, 0.5 h, white noise inputs (the control)
#   smooth : the same with --noise-length 2 (Gaussian correlation exp(-d^2/16) between cells d apart)
# each scored on the 8 test years (members seeds 1-3 and the deterministic member).  Usage:
#   bash docs/recipes/emulator_acc1_wind_noise_length.sh [RUNDIR] [all|white|smooth]
set -euo pipefail
R=${1:-runs}
WHICH=${2:-all}
export OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 MPLBACKEND=Agg
D=$R/acc1_wind
K=$R/acc1_wind_scratch_pnuv_k32
[ -f $K/emulator.npz ] || { echo "no $K: run docs/recipes/emulator_acc1_wind_scratch_long.sh first" >&2; exit 2; }
COMMON="--loss crps --ensemble 2 --epochs 1 --batch-size 1 --ema-decay 0.995 --input-noise 0.05 \
    --val-every 100 --best-by val_rollout_rmse --train-years 20 --val-years 1 --test-years 8 \
    --rollout-steps 32 --lr 1e-4 --max-hours 0.5 --quiet"

source "$(dirname "$0")/score.inc"  # score RUN [det]
if [ $WHICH = all ] || [ $WHICH = white ]; then
    stommel emulator train --data $D --out ${K}_white --init $K $COMMON
    score ${K}_white
fi
if [ $WHICH = all ] || [ $WHICH = smooth ]; then
    stommel emulator train --data $D --out ${K}_nl2 --init $K --noise-length 2 $COMMON
    score ${K}_nl2
fi
