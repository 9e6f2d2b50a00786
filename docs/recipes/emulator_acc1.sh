#!/bin/bash
# The 1-degree emulator experiment of docs/emulator.md ("Results at 1 degree"), end to end on one
# CPU thread: 29 model years of data, a 4-step training run, three fine-tuning stages that double
# the rollout length (8, 16, 32 calls) with input noise, then 8-year test rollouts and metrics.
# About 2 h of ocean_core (data) plus ~2 h of training on one core.  Usage:
#   bash docs/recipes/emulator_acc1.sh [RUNDIR]        (default RUNDIR: runs)
set -euo pipefail
R=${1:-runs}
export OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 MPLBACKEND=Agg
D=$R/acc1_seasonal
stommel emulator make-data --out $D --resolution 1 --years 29 --spinup-years 1 --average-days 5 \
    --dt 3600 --train-years 20 --val-years 1 --test-years 8
# split by time: years 0-19 train, 20 validation (the test years are not touched in training)
SPLIT="--train-years 20 --val-years 1 --test-years 8"
stommel emulator train --data $D --out $R/acc1_small --config small --residual --lr 6e-4 \
    --ema-decay 0.995 --epochs 2 --batch-size 4 --rollout-steps 4 --val-every 100 $SPLIT --quiet
prev=$R/acc1_small
# curriculum: each stage starts from the previous one with a fresh optimiser and twice the rollout
for stage in "8 2 2e-4 0.7" "16 1 1.5e-4 0.65" "32 1 1e-4 0.6"; do
    set -- $stage
    out=$R/acc1_ft_k$1
    stommel emulator train --data $D --out $out --init $prev --epochs 1 --batch-size $2 \
        --rollout-steps $1 --lr $3 --ema-decay 0.995 --input-noise 0.05 --max-hours $4 \
        --val-every 100 --best-by val_rollout_rmse $SPLIT --quiet
    prev=$out
done
for run in acc1_small acc1_ft_k8 acc1_ft_k16 acc1_ft_k32; do
    stommel emulator rollout --emulator $R/$run --data $D --out $R/$run/rollout_test8y.nc \
        --start 1533 --years 8 --quiet
    stommel emulator evaluate --data $D --rollout $R/$run/rollout_test8y.nc --out $R/$run/eval
done
