#!/bin/bash
# The wind-noise 1-degree emulator experiment of docs/emulator.md ("A CRPS curriculum from scratch
# with per-point normalisation"), end to end from a cold start:
#   1. data: 30 spin-up years, then 29 years of 5-day means with a red-noise wind-stress anomaly
#      (years 0-19 train, 20 validation, 21-28 test); about 56 min on 2 threads;
#   2. two ensemble emulators trained from scratch with the fair CRPS (2 members, 4 noise input
#      channels), residual, on a 4 -> 8 -> 16-call rollout curriculum: A with psi, u and v z-scored
#      per grid point, B with temperature as well; the two run side by side, one core each,
#      about 75 min;
#   3. 8-year test rollouts from index 1533 (three members and the deterministic member) scored
#      against the model, with the model-against-itself baseline.
# Usage:  bash docs/recipes/emulator_acc1_wind.sh [RUNDIR]        (default RUNDIR: runs)
# Every step refuses to overwrite an existing output; rerun a failed step by hand with --resume.
set -euo pipefail
R=${1:-runs}
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MPLBACKEND=Agg
D=$R/acc1_wind
# (skipped when the data are already complete)
[ -f $D/meta.json ] || NUMBA_NUM_THREADS=2 stommel emulator make-data --out $D --resolution 1 --years 29 --spinup-years 30 \
    --average-days 5 --dt 3600 --wind-noise 0.15 --wind-noise-days 60 --wind-noise-seed 1 \
    --train-years 20 --val-years 1 --test-years 8
export NUMBA_NUM_THREADS=1
SPLIT="--train-years 20 --val-years 1 --test-years 8"

# one curriculum: stage 1 from scratch, stages 2 and 3 from the previous stage (fresh optimiser);
# the per-point statistics are stored in the emulator, so later stages keep them
curriculum() {  # name, point-normalised variables
    local name=$1 pn=$2
    stommel emulator train --data $D --out $R/${name}_k4 --config small --residual \
        --loss crps --ensemble 2 --noise-channels 4 --point-norm $pn --epochs 1 --batch-size 2 \
        --rollout-steps 4 --lr 6e-4 --ema-decay 0.995 --input-noise 0.05 --max-hours 0.45 \
        --val-every 100 $SPLIT --quiet
    stommel emulator train --data $D --out $R/${name}_k8 --init $R/${name}_k4 --loss crps \
        --ensemble 2 --epochs 1 --batch-size 1 --rollout-steps 8 --lr 2e-4 --ema-decay 0.995 \
        --input-noise 0.05 --max-hours 0.33 --val-every 100 $SPLIT --quiet
    stommel emulator train --data $D --out $R/${name}_k16 --init $R/${name}_k8 --loss crps \
        --ensemble 2 --epochs 1 --batch-size 1 --rollout-steps 16 --lr 1.5e-4 --ema-decay 0.995 \
        --input-noise 0.05 --max-hours 0.45 --val-every 100 $SPLIT --quiet
}
curriculum acc1_wind_scratch_pnuv psi,u,v > $R/acc1_wind_scratch_pnuv.log 2>&1 &
a=$!
curriculum acc1_wind_scratch_pnuvt psi,u,v,temp > $R/acc1_wind_scratch_pnuvt.log 2>&1 &
b=$!
wait $a
wait $b

# 8-year test rollouts: members (seeds 1-3) and the deterministic member (--no-latent)
for run in acc1_wind_scratch_pnuv_k16 acc1_wind_scratch_pnuvt_k16; do
    for seed in 1 2 3; do
        stommel emulator rollout --emulator $R/$run --data $D --out $R/$run/test_s$seed.nc \
            --start 1533 --years 8 --seed $seed --quiet
        stommel emulator evaluate --data $D --rollout $R/$run/test_s$seed.nc --out $R/$run/eval_s$seed \
            --baseline-years 8 --no-figures
    done
    stommel emulator rollout --emulator $R/$run --data $D --out $R/$run/test_det.nc --start 1533 \
        --years 8 --no-latent --quiet
    stommel emulator evaluate --data $D --rollout $R/$run/test_det.nc --out $R/$run/eval_det \
        --baseline-years 8
done
