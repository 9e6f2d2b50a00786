#!/usr/bin/env python
"""Cost of the adjoint: one adjoint step (re-running the forward step from the stored
state, then the adjoint operations) over one forward step, at 2 and 0.25 degrees,
with peak memory; and, when a Veros virtualenv with ``veros[jax]`` is available, the JAX
reverse pass of the same loss in the same run.

Usage: ``python benchmarks/adjoint.py [--resolutions 2,0.25] [--steps 20] [--threads 1,2]``
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def measure(resolution, steps, threads):
    import numba
    import numpy as np

    import adjoint
    from ocean_core import setups

    numba.set_num_threads(threads)
    m = setups.acc(resolution)
    m.run(3, progress=False)
    loss = adjoint.losses.FieldMSE("u", target=0.0, at_step=steps)
    # warm-up (compilation) with 2 steps
    adjoint.gradient(m, adjoint.losses.FieldMSE("u", at_step=2), ["temp", "A_h", "r_bot"], 2)
    # forward step time
    t = time.perf_counter()
    for _ in range(steps):
        m.step_ops()
        m.finish_step()
    t_fwd = (time.perf_counter() - t) / steps
    m = setups.acc(resolution)
    m.run(3, progress=False)
    g = adjoint.gradient(m, loss, ["temp", "A_h", "r_bot"], steps)
    info = g.info
    t_adj = info["reverse_sweep_s"] / steps
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # MB (Linux: kB)
    return {"resolution": resolution, "threads": threads, "steps": steps, "forward_ms": t_fwd * 1e3,
            "adjoint_step_ms": t_adj * 1e3, "ratio": t_adj / t_fwd,
            "forward_sweep_ms_per_step": info["forward_sweep_s"] / steps * 1e3,
            "trajectory_MB_per_step": info["trajectory_bytes"] / steps / 2**20, "peak_rss_MB": rss}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--resolutions", default="2,0.25")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--threads", default="1")
    a = p.parse_args(argv)
    from benchmarks.common import machine_info  # noqa: E402
    print("machine:", machine_info())
    print(f"{'res':>5s} {'thr':>3s} {'fwd ms/step':>12s} {'adj ms/step':>12s} {'adj/fwd':>8s} "
          f"{'traj MB/step':>12s} {'peak RSS MB':>11s}")
    for r in [float(x) for x in a.resolutions.split(",")]:
        for th in [int(x) for x in a.threads.split(",")]:
            steps = a.steps if r >= 1 else max(3, a.steps // 4)
            res = measure(r, steps, th)
            print(f"{r:5g} {th:3d} {res['forward_ms']:12.2f} {res['adjoint_step_ms']:12.2f} {res['ratio']:8.2f} "
                  f"{res['trajectory_MB_per_step']:12.2f} {res['peak_rss_MB']:11.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
