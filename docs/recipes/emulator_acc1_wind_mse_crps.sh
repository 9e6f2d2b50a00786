#!/bin/bash
# A compressed "MSE first, then CRPS with per-point psi, u, v" curriculum on the wind-noise 1-degree
# data (docs/emulator.md, stop 17).  The chain that reached acc1_wind_pnuv2 took about 7 core-hours
# over several stops (MSE on seasonal-only data, a wind fine-tune, CRPS 8/16/32, then point-normalised
# 8/32); this one trains on the wind data from the start and fits in about 1.7 h on one CPU thread:
#   MSE (dynamic loss)  4 calls 0.35 h -> 8 calls 0.3 h -> 16 calls 0.3 h
#   fair CRPS, 2 members, 4 noise channels, --point-norm psi,u,v: 16 calls 0.35 h -> 32 calls 0.4 h
# then 8-year test rollouts (members seeds 1-3 and the deterministic member) scored against the
# model's own earlier 8 years; then a 64-call CRPS stage (lr 5e-5, 0.5 h) on top of c32, scored the
# same way (stop 18).  Needs the data of docs/recipes/emulator_acc1_wind.sh.  Usage:
#   bash docs/recipes/emulator_acc1_wind_mse_crps.sh [RUNDIR] [STAGE]
# RUNDIR defaults to runs; STAGE is all (default), chain (up to c32) or 64 (only the 64-call stage).
set -euo pipefail
R=${1:-runs}
STAGE=${2:-all}
export OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 MPLBACKEND=Agg
D=$R/acc1_wind
[ -f $D/meta.json ] || { echo "no data in $D: run docs/recipes/emulator_acc1_wind.sh first" >&2; exit 2; }
SPLIT="--train-years 20 --val-years 1 --test-years 8"
N=$R/acc1_wind_mc
COMMON="--ema-decay 0.995 --val-every 100 --best-by val_rollout_rmse $SPLIT --quiet"

source "$(dirname "$0")/score.inc"  # score RUN [det]

if [ $STAGE = all ] || [ $STAGE = chain ]; then
# MSE curriculum: damps the anomalies but gives stable multi-year dynamics to start CRPS from
stommel emulator train --data $D --out ${N}_m4 --config small --residual --epochs 3 --batch-size 4 \
    --rollout-steps 4 --lr 6e-4 --max-hours 0.35 $COMMON
stommel emulator train --data $D --out ${N}_m8 --init ${N}_m4 --epochs 1 --batch-size 2 \
    --rollout-steps 8 --lr 2e-4 --input-noise 0.05 --max-hours 0.3 $COMMON
stommel emulator train --data $D --out ${N}_m16 --init ${N}_m8 --epochs 1 --batch-size 1 \
    --rollout-steps 16 --lr 1.5e-4 --input-noise 0.05 --max-hours 0.3 $COMMON
# CRPS ensemble with noise inputs, psi/u/v z-scored per point (restores the anomaly variance)
stommel emulator train --data $D --out ${N}_c16 --init ${N}_m16 --loss crps --ensemble 2 \
    --noise-channels 4 --noise-init 0.1 --point-norm psi,u,v --epochs 1 --batch-size 1 \
    --rollout-steps 16 --lr 1.5e-4 --input-noise 0.05 --max-hours 0.35 $COMMON
stommel emulator train --data $D --out ${N}_c32 --init ${N}_c16 --loss crps --ensemble 2 \
    --epochs 1 --batch-size 1 --rollout-steps 32 --lr 1e-4 --input-noise 0.05 --max-hours 0.4 $COMMON

score ${N}_m16 det
score ${N}_c32
fi
if [ $STAGE = all ] || [ $STAGE = 64 ]; then
    [ $STAGE = all ] || [ -f ${N}_c32/emulator.npz ] || { echo "no ${N}_c32: run the chain first" >&2; exit 2; }
    stommel emulator train --data $D --out ${N}_c64 --init ${N}_c32 --loss crps --ensemble 2 \
        --epochs 1 --batch-size 1 --rollout-steps 64 --lr 5e-5 --input-noise 0.05 --max-hours 0.5 \
        $COMMON
    score ${N}_c64
fi
