"""Per-operation profile of one forward step (process CPU time per op, mean over steps).

Usage::

    NUMBA_NUM_THREADS=1 python benchmarks/profile_step.py --resolution 0.25 --steps 5

Builds ``setups.acc(resolution, "paper")``, runs ``--warmup`` steps (compiling the
kernels on the first), then times every operation of :meth:`Model.build_ops` and the
CFL/NaN check separately for ``--steps`` steps with ``time.process_time`` (CPU time
of the whole process, so a busy machine inflates it less than wall time) and prints
the mean per step, largest first.  The ops run in the model's order on the model's
own fields, so the profile is of a real step, not of kernels on random input.
"""

from __future__ import annotations

import argparse
import time


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--resolution", type=float, default=0.25)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                   help="process CPU time (default; all threads summed) or wall time per op "
                        "(what counts with more than one thread)")
    a = p.parse_args(argv)
    clock = time.process_time if a.clock == "cpu" else time.perf_counter
    import numba  # noqa: PLC0415

    numba.set_num_threads(a.threads)
    from ocean_core import setups  # noqa: PLC0415

    m = setups.acc(resolution=a.resolution, config="paper")
    for _ in range(a.warmup):
        m.step()
    F = m.fields
    tot: dict[str, float] = {}
    for _ in range(a.steps):
        for op in m.ops:
            # kernel ops are named by their kernel, the others by their class
            name = getattr(getattr(op, "kernel", None), "name", None) or type(op).__name__
            t = clock()
            op.forward(F)
            tot[name] = tot.get(name, 0.0) + clock() - t
        t = clock()
        m.check()
        tot["check"] = tot.get("check", 0.0) + clock() - t
        m.finish_step()
    print(f"resolution {a.resolution} deg, grid {m.grid.nx}x{m.grid.ny}x{m.grid.nz}, "
          f"{a.threads} thread(s), {a.clock.upper()} ms per step (mean of {a.steps}):")
    for k, v in sorted(tot.items(), key=lambda x: -x[1]):
        print(f"  {k:28s} {1e3 * v / a.steps:8.2f}")
    print(f"  {'total':28s} {1e3 * sum(tot.values()) / a.steps:8.2f}")


if __name__ == "__main__":
    main()
