#!/bin/bash
# Continues the from-scratch CRPS chain A of docs/recipes/emulator_acc1_wind.sh
# (acc1_wind_scratch_pnuv_k16, --point-norm psi,u,v) with longer rollouts, to test whether 32- and
# 64-call CRPS training alone tames its variance overshoot (docs/emulator.md, stop 17):
#   32 calls, lr 1e-4, 0.6 h  ->  64 calls, lr 5e-5, 0.5 h   (one CPU thread)
# then 8-year test rollouts of members (seeds 1-3) and the deterministic member.  Usage:
#   bash docs/recipes/emulator_acc1_wind_scratch_long.sh [RUNDIR] [STAGE]   (STAGE: all, 32 or 64)
set -euo pipefail
R=${1:-runs}
STAGE=${2:-all}
export OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 MPLBACKEND=Agg
D=$R/acc1_wind
A=$R/acc1_wind_scratch_pnuv
[ -f ${A}_k16/emulator.npz ] || { echo "no ${A}_k16: run docs/recipes/emulator_acc1_wind.sh first" >&2; exit 2; }
SPLIT="--train-years 20 --val-years 1 --test-years 8"
COMMON="--loss crps --ensemble 2 --epochs 1 --batch-size 1 --ema-decay 0.995 --input-noise 0.05 \
    --val-every 100 --best-by val_rollout_rmse $SPLIT --quiet"

source "$(dirname "$0")/score.inc"  # score RUN [det]
if [ $STAGE = all ] || [ $STAGE = 32 ]; then
    stommel emulator train --data $D --out ${A}_k32 --init ${A}_k16 --rollout-steps 32 --lr 1e-4 \
        --max-hours 0.6 $COMMON
    score ${A}_k32
fi
if [ $STAGE = all ] || [ $STAGE = 64 ]; then
    stommel emulator train --data $D --out ${A}_k64 --init ${A}_k32 --rollout-steps 64 --lr 5e-5 \
        --max-hours 0.5 $COMMON
    score ${A}_k64
fi
