#!/bin/bash
# Scale of a stochastic emulator's noise inputs at rollout time (--latent-scale), chosen on the
# training period and then scored on the test period (docs/emulator.md, stop 18):
#   1. 8 years from index 876 (inside the 20 training years), seed 1, scales 0.25 0.5 0.75 1
#      -> RUN/trainscan_l<scale>; pick the scale with the highest mean deseasoned share
#      (10 numbers: temp, u, v per band and psi; printed at the end)
#   2. members seeds 1-3 at the picked scale on the 8 test years from index 1533 -> RUN/eval_l<scale>_s<seed>
# Usage: bash docs/recipes/emulator_acc1_wind_latent_scale.sh [RUNDIR] [RUN]
#   RUN defaults to RUNDIR/acc1_wind_scratch_pnuv_k32_white (docs/recipes/emulator_acc1_wind_noise_length.sh)
set -euo pipefail
R=${1:-runs}
RUN=${2:-$R/acc1_wind_scratch_pnuv_k32_white}
export OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 MPLBACKEND=Agg
D=$R/acc1_wind
[ -f $RUN/emulator.npz ] || { echo "no $RUN/emulator.npz" >&2; exit 2; }

member() {  # start, seed, scale, output name
    stommel emulator rollout --emulator $RUN --data $D --out $RUN/$4.nc --start $1 --years 8 \
        --seed $2 --latent-scale $3 --quiet
    stommel emulator evaluate --data $D --rollout $RUN/$4.nc --out $RUN/$4 --baseline-years 8 --no-figures
}
for s in 0.25 0.5 0.75 1; do
    member 876 1 $s trainscan_l$s
done
# the scale with the highest mean share on the training period
PICK=$(python - "$RUN" <<'PY'
import json, sys
best = None
for s in ("0.25", "0.5", "0.75", "1"):
    try:
        m = json.load(open(f"{sys.argv[1]}/trainscan_l{s}/metrics.json"))
    except FileNotFoundError:  # a dry run of the recipe: no outputs
        print("0.5"); sys.exit()
    sh = [r["deseasoned"]["frac_in_range"] for v in ("temp", "u", "v", "psi")
          for r in m["variance_ratio"][v].values()]
    score = sum(sh) / len(sh)
    print(f"latent scale {s}: mean deseasoned share {100 * score:.1f} %", file=sys.stderr)
    if best is None or score > best[0]:
        best = (score, s)
print(best[1])
PY
)
echo "picked latent scale $PICK" >&2
for seed in 1 2 3; do
    member 1533 $seed $PICK test_l${PICK}_s$seed
done
