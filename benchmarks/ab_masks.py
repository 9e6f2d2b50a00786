"""A/B of the kernels' mask dtype: int8 (the model's default) against float64 masks.

Usage::

    python benchmarks/ab_masks.py --threads 2 --steps 40

Builds two ``setups.acc(resolution, "paper")`` models in one process, puts the float64
grid masks back into the field store of one of them, and alternates their steps, so
that a noisy machine (shared memory bandwidth) slows both alike.  Prints the median and
minimum time per step of each and the median of the per-pair ratios int8 / float64, and
checks that both models end bitwise equal (a mask value is 0 or 1, every product with it
is exact).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--resolution", type=float, default=0.25)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=30, help="timed steps per model")
    a = p.parse_args(argv)
    import numba  # noqa: PLC0415

    numba.set_num_threads(a.threads)
    from ocean_core import setups  # noqa: PLC0415
    from ocean_core.grid import MASKS  # noqa: PLC0415

    def make(int8):
        m = setups.acc(resolution=a.resolution, config="paper")
        if not int8:
            for k in MASKS:
                m.fields.arrays[k] = np.ascontiguousarray(getattr(m.grid, k))
        m.run(3)  # compile and leave the state of rest
        return m

    models = {"float64": make(False), "int8": make(True)}
    times = {k: [] for k in models}
    for _ in range(a.steps):
        for k, m in models.items():
            t = time.perf_counter()
            m.step()
            times[k].append(time.perf_counter() - t)
    ms = {k: np.array(v) * 1e3 for k, v in times.items()}
    g = models["int8"].grid
    print(f"{a.resolution} deg ({g.nx}x{g.ny}x{g.nz}), {a.threads} thread(s), {a.steps} alternating steps each")
    for k, v in ms.items():
        print(f"  masks {k:8s} median {np.median(v):8.2f} ms  min {v.min():8.2f} ms")
    print(f"  median per-pair ratio int8 / float64: {np.median(ms['int8'] / ms['float64']):.3f}")
    same = all(np.array_equal(models["int8"].fields.arrays[v], models["float64"].fields.arrays[v])
               for v in ("u", "v", "temp", "salt", "eke", "psi"))
    print(f"  bitwise equal states after the run: {same}")


if __name__ == "__main__":
    main()
