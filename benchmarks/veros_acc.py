#!/usr/bin/env python
"""Time one step of Veros's ACC setup in the paper configuration (JAX backend).

Runs inside a separate virtual environment that has ``veros[jax]`` (reference:
Veros 1.7.0, JAX 0.10.x), e.g.::

    python3 -m venv /work/venvs/veros && /work/venvs/veros/bin/pip install "veros[jax]==1.7.0"
    /work/venvs/veros/bin/python benchmarks/veros_acc.py --resolution 0.25 --steps 5

It does not import stommel.  :mod:`benchmarks.forward` runs it as a subprocess and
reads the last stdout line, ``VEROS_RESULT {json}``.

Configuration: ``veros.setups.acc.ACCSetup`` with the paper settings (EKE on, TKE
off, neutral diffusion off, A_h = 3435.5036038313715, r_bot = 1e-5, K_iso = K_gm =
62.5, eke_c_k = 0.4, eke_c_eps = 0.5, eke_k_max = 625, eke_lmin = 1, dt_mom =
dt_tracer = 1200 s), float64, ``scipy_jax`` streamfunction solver (Veros's
BiCGSTAB, atol 1e-8), all diagnostics off.  Resolution r degrees gives
``nx = 60/r``, ``ny = 84/r`` (stommel's grid; ``--ny`` overrides, e.g. 320 for the
0-60E x 40S-40N domain at 0.25 degrees), ``dxt = dyt = r``; topography, forcing and
initial state are those of the shipped setup.

Timing: ``setup`` (grid, operators, first compile of nothing), then the first step
(JAX tracing + XLA compilation of every routine + one step: reported as
``first_step_s``; ``compile_s`` = first step minus the steady median), ``--warmup``
further untimed steps, then ``--steps`` timed steps.  Veros's step ends with
``sanity_check`` (a host read of ``all(isfinite(u))``), so each timed step is
complete; a ``block_until_ready`` on the prognostic arrays is added for safety.
The process CPU time of each timed step (all threads) is reported too (``cpu_times_s``).
With ``--serve`` the timed steps come in rounds requested on stdin (``STEP n``), so that
:mod:`benchmarks.forward` can interleave them with stommel's (``--interleave``).
"""

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time

PAPER = dict(
    enable_eke=True,
    enable_tke=False,
    enable_neutral_diffusion=False,
    A_h=3435.5036038313715,
    r_bot=1e-5,
    K_iso_0=62.5,
    K_gm_0=62.5,
    eke_c_k=0.4,
    eke_c_eps=0.5,
    eke_k_max=625.0,
    eke_lmin=1.0,
    dt_mom=1200.0,
    dt_tracer=1200.0,
)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--resolution", type=float, default=2.0, help="grid spacing in degrees (default 2)")
    p.add_argument("--ny", type=int, default=None, help="override ny (default 84/resolution)")
    p.add_argument("--steps", type=int, default=10, help="timed steps (default 10)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps after the first (default 2)")
    p.add_argument("--backend", default="jax", choices=["jax", "numpy"])
    p.add_argument("--solver", default="scipy_jax", help="VEROS_LINEAR_SOLVER (default scipy_jax, the paper's)")
    p.add_argument("--tdma", default="auto", choices=["auto", "ext", "jax"],
                   help="tridiagonal solver: Veros default (auto: Cython custom call if present), "
                        "ext (force it), jax (pure-JAX lax.scan, VEROS_USE_SPECIAL_TDMA=0)")
    p.add_argument("--serve", action="store_true",
                   help="after the warm-up, time steps on request: read 'STEP n' lines from stdin, "
                        "answer each with 'VEROS_TIMES {json}'; 'QUIT' (or end of input) ends with "
                        "VEROS_RESULT over all requested steps (--steps is ignored)")
    return p.parse_args(argv)


def grid_size(resolution, ny=None):
    nx = 60.0 / resolution
    nyf = 84.0 / resolution if ny is None else float(ny)
    if abs(nx - round(nx)) > 1e-9 or abs(nyf - round(nyf)) > 1e-9:
        raise SystemExit(f"resolution={resolution!r}: 60/r and 84/r must be integers")
    return int(round(nx)), int(round(nyf))


def paper_setup_class(resolution, nx, ny, identifier):
    """Veros's ACCSetup in the paper configuration (:data:`PAPER`) on an ``nx`` x ``ny`` grid of
    ``resolution``-degree cells, with diagnostics off (shared with veros_adjoint.py).  Import
    Veros (and set its runtime settings) before calling."""
    from veros import veros_routine
    from veros.core.operators import update, at
    from veros.setups.acc import ACCSetup

    res = float(resolution)

    class ACCPaper(ACCSetup):
        @veros_routine
        def set_parameter(self, state):
            ACCSetup.__dict__["set_parameter"].function(self, state)
            s = state.settings
            s.identifier = identifier
            for k, v in PAPER.items():
                setattr(s, k, v)
            s.nx, s.ny = nx, ny

        @veros_routine
        def set_grid(self, state):
            ACCSetup.__dict__["set_grid"].function(self, state)
            vs = state.variables
            vs.dxt = update(vs.dxt, at[...], res)
            vs.dyt = update(vs.dyt, at[...], res)

        @veros_routine
        def set_diagnostics(self, state):
            for d in state.diagnostics.values():
                d.output_frequency = 0
                if hasattr(d, "sampling_frequency"):
                    d.sampling_frequency = 0

    return ACCPaper


def main(argv=None):
    args = parse_args(argv)
    nx, ny = grid_size(args.resolution, args.ny)

    # runtime settings must be set before veros.core is imported
    os.environ["VEROS_BACKEND"] = args.backend
    os.environ["VEROS_LINEAR_SOLVER"] = args.solver
    os.environ["VEROS_FLOAT_TYPE"] = "float64"
    os.environ["VEROS_DISKLESS_MODE"] = "1"
    os.environ["VEROS_FORCE_OVERWRITE"] = "1"
    os.environ.setdefault("VEROS_LOGLEVEL", "error")
    if args.tdma == "jax":
        os.environ["VEROS_USE_SPECIAL_TDMA"] = "0"
    elif args.tdma == "ext":
        os.environ["VEROS_USE_SPECIAL_TDMA"] = "1"

    import warnings
    warnings.filterwarnings("ignore", message="Could not use custom TDMA")

    import veros
    from veros import runtime_settings
    from veros.core.operators import numpy as npx

    res = float(args.resolution)
    ACCPaperBench = paper_setup_class(res, nx, ny, "acc_paper_bench")

    def block(vs):
        if args.backend == "jax":
            import jax
            jax.block_until_ready((vs.u, vs.v, vs.w, vs.temp, vs.salt, vs.psi, vs.eke))

    sim = ACCPaperBench()
    t0 = time.perf_counter()
    sim.setup()
    vs = sim.state.variables
    block(vs)
    t_setup = time.perf_counter() - t0

    t0 = time.perf_counter()
    sim.step(sim.state)
    block(vs)
    first = time.perf_counter() - t0
    warm = []
    for _ in range(args.warmup):
        t0 = time.perf_counter()
        sim.step(sim.state)
        block(vs)
        warm.append(time.perf_counter() - t0)
    times, cpu = [], []

    def timed_steps(n):
        tt, cc = [], []
        for _ in range(n):
            c0 = time.process_time()
            t0 = time.perf_counter()
            sim.step(sim.state)
            block(vs)
            tt.append(time.perf_counter() - t0)
            cc.append(time.process_time() - c0)
        times.extend(tt)
        cpu.extend(cc)
        return tt, cc

    if args.serve:
        # interleaved timing (benchmarks/forward.py --interleave): the parent alternates
        # rounds of its own steps with rounds of ours, so both see the same machine state
        print("VEROS_READY " + json.dumps({"setup_s": t_setup, "first_step_s": first}), flush=True)
        for line in sys.stdin:
            cmd = line.split()
            if not cmd or cmd[0] == "QUIT":
                break
            if cmd[0] != "STEP" or len(cmd) != 2 or not cmd[1].isdigit():
                print(f"VEROS_ERROR unknown request {line.strip()!r} (expected 'STEP n' or 'QUIT')",
                      flush=True)
                continue
            tt, cc = timed_steps(int(cmd[1]))
            print("VEROS_TIMES " + json.dumps({"times_s": tt, "cpu_times_s": cc}), flush=True)
    else:
        timed_steps(args.steps)

    import importlib.metadata as im
    med = statistics.median(times) if times else float("nan")
    try:
        jax_version = im.version("jax")
    except Exception:
        jax_version = None
    tdma_ext = None
    try:
        from veros.core.special.tdma_ import HAS_CPU_EXT
        tdma_ext = bool(HAS_CPU_EXT) and args.tdma != "jax"
    except Exception:
        tdma_ext = False
    out = dict(
        veros=veros.__version__, jax=jax_version, backend=runtime_settings.backend,
        linear_solver=runtime_settings.linear_solver, float_type=runtime_settings.float_type,
        tdma_ext=tdma_ext, python=platform.python_version(),
        nx=nx, ny=ny, nz=int(sim.state.settings.nz), resolution=res,
        affinity=sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        setup_s=t_setup, first_step_s=first, warmup_s=warm, times_s=times,
        min_s=min(times) if times else float("nan"), median_s=med,
        cpu_times_s=cpu, cpu_median_s=statistics.median(cpu) if cpu else float("nan"),
        compile_s=first - med,
        finite=bool(npx.all(npx.isfinite(vs.u))),
        peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    )
    print("VEROS_RESULT " + json.dumps(out), flush=True)
    return out


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
