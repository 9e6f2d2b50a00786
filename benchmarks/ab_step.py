"""Same-process A/B of two variants of the step: the model as it is against one with a
feature turned off.

Usage::

    python benchmarks/ab_step.py --variant masks --threads 2 --steps 40
    python benchmarks/ab_step.py --variant fusion --threads 1 --steps 30

``--variant masks``: kernels read int8 masks (the default) against float64 masks (the
grid's) put back into the field store.  ``--variant fusion``: the fused launches (the
default) against their parts launched one by one (each ``FusedOp`` replaced by its part
ops).  Builds both ``setups.acc(resolution, "paper")`` models in one process and
alternates their steps, so that a noisy machine (shared memory bandwidth) slows both
alike.  Prints the median and minimum time per step of each, the median of the per-pair
ratios new / old, and checks that both models end bitwise equal.
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
    p.add_argument("--variant", choices=("masks", "fusion"), default="masks")
    a = p.parse_args(argv)
    import numba  # noqa: PLC0415

    numba.set_num_threads(a.threads)
    from ocean_core import setups  # noqa: PLC0415
    from ocean_core.grid import MASKS  # noqa: PLC0415

    def make(new):
        m = setups.acc(resolution=a.resolution, config="paper")
        if not new and a.variant == "masks":
            for k in MASKS:
                m.fields.arrays[k] = np.ascontiguousarray(getattr(m.grid, k))
        if not new and a.variant == "fusion":
            m.ops = [p for op in m.ops for p in getattr(op, "parts", (op,))]
        m.run(3)  # compile and leave the state of rest
        return m

    label = {"masks": ("int8", "float64"), "fusion": ("fused", "parts")}[a.variant]
    models = {label[1]: make(False), label[0]: make(True)}
    times = {k: [] for k in models}
    for _ in range(a.steps):
        for k, m in models.items():
            t = time.perf_counter()
            m.step()
            times[k].append(time.perf_counter() - t)
    ms = {k: np.array(v) * 1e3 for k, v in times.items()}
    g = models[label[0]].grid
    print(f"{a.resolution} deg ({g.nx}x{g.ny}x{g.nz}), {a.threads} thread(s), {a.steps} alternating steps each")
    for k, v in ms.items():
        print(f"  {a.variant} {k:8s} median {np.median(v):8.2f} ms  min {v.min():8.2f} ms")
    print(f"  median per-pair ratio {label[0]} / {label[1]}: {np.median(ms[label[0]] / ms[label[1]]):.3f}")
    same = all(np.array_equal(models[label[0]].fields.arrays[v], models[label[1]].fields.arrays[v])
               for v in ("u", "v", "temp", "salt", "eke", "psi"))
    print(f"  bitwise equal states after the run: {same}")


if __name__ == "__main__":
    main()
