#!/usr/bin/env python
"""Reverse pass of Veros 1.7 (JAX backend) through N steps of the ACC paper configuration.

Runs inside a separate virtual environment that has ``veros[jax]`` (reference: Veros 1.7.0,
JAX 0.10.x), e.g.::

    /work/venvs/veros/bin/python benchmarks/veros_adjoint.py --resolution 2 --steps 1,10,50

It does not import stommel.  :mod:`benchmarks.adjoint` runs it as a subprocess and reads
the ``VEROS_ADJ_RESULT {json}`` lines it prints (one per N).

Veros has no adjoint; as in the differentiable-Veros work, the step is differentiated by
JAX's reverse mode.  This script expresses N steps as a pure JAX function of the initial
temperature and returns the loss of stommel's benchmark (:mod:`benchmarks.adjoint`,
``adjoint.losses.FieldMSE("u")``): the mean square of u over the wet U points of the
interior after step N,

    J(T) = sum(maskU u^2) / sum(maskU)      (u, maskU without halos, u at time level tau).

The control is the interior temperature at the current time level (x halos are periodic
copies, y halos keep their values); density and N^2 of the initial state are recomputed
from it (``calc_eq_of_state``), as stommel's ``temp`` control does.

How the step becomes a pure function.  A ``VerosState`` is a JAX pytree (its variables are
the leaves; settings are static, hashed aux data).  The function rebuilds a state from the
leaves, sets the temperature, and calls the core routines of ``VerosSetup.step`` in its
order (forcing, EKE and TKE diffusivities, momentum, thermodynamics, W-grid velocities,
EKE, boundary exchange, vertical velocity, time-level rotation), skipping what is not part
of the model state (restart, diagnostics, and the host-side ``sanity_check``).  Every
``veros_kernel`` is a ``jax.jit`` function and is traced into the outer program.  Two
pieces of the shipped code matter for differentiation:

* the tridiagonal solver: Veros's default on CPU is a Cython XLA custom call
  (``veros.core.special.tdma_``) without a JVP/transpose rule, so ``jax.vjp`` fails through
  it; the pure-JAX ``lax.scan`` Thomas algorithm (``VEROS_USE_SPECIAL_TDMA=0``) is used
  here, and the forward step is timed with the same code;
* the streamfunction solver (``scipy_jax``) is ``jax.scipy.sparse.linalg.bicgstab``, which
  is wrapped in ``lax.custom_linear_solve``: its reverse mode is a BiCGSTAB solve with the
  transposed operator (same tolerance, atol 1e-8), so it differentiates as shipped.

A_h and r_bot are *settings* (static Python floats baked into the compiled program and
part of the state's pytree hash), not variables, so the shipped code cannot be
differentiated with respect to them without modifying Veros; only the temperature control
is timed.

Timings (each compiled once, then run ``--repeats`` times, min reported; wall and process
CPU time):

* ``fwd``: the N-step function alone, ``jax.jit`` (the forward step time is fwd / N);
* ``fwdres``: ``jax.vjp`` under ``jax.jit`` returning the loss and the VJP closure (the
  forward sweep that stores the residuals); its residuals (the leaves of the closure) are
  the trajectory memory;
* ``bwd``: the VJP closure applied to 1.0 under ``jax.jit`` (the reverse sweep alone);
* compile times of the three programs (lowering + XLA compilation).

``--loop unroll`` (default, as in the paper) traces N copies of the step; ``--loop scan``
uses ``lax.scan`` (one traced step; compile time independent of N).  ``--check`` compares
the gradient with a central finite difference along a random direction.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--resolution", type=float, default=2.0, help="grid spacing in degrees (default 2)")
    p.add_argument("--steps", default="1,10", help="comma-separated N (default 1,10); one process per N")
    p.add_argument("--spinup", type=int, default=3, help="Veros steps before the differentiated ones (default 3)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs of each compiled program (default 3)")
    p.add_argument("--loop", default="unroll", choices=["unroll", "scan"])
    p.add_argument("--solver", default="scipy_jax", help="VEROS_LINEAR_SOLVER (default scipy_jax)")
    p.add_argument("--check", action="store_true", help="finite-difference check of the gradient")
    p.add_argument("--save-grad", default=None,
                   help="write the temperature gradient to this npz ([k, j, i], no halos; '{n}' is replaced by N)")
    p.add_argument("--timeout", type=float, default=3600.0, help="per-N subprocess timeout (s)")
    p.add_argument("--single", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _setenv(args):
    # runtime settings must be set before veros.core is imported
    os.environ["VEROS_BACKEND"] = "jax"
    os.environ["VEROS_LINEAR_SOLVER"] = args.solver
    os.environ["VEROS_FLOAT_TYPE"] = "float64"
    os.environ["VEROS_DISKLESS_MODE"] = "1"
    os.environ["VEROS_FORCE_OVERWRITE"] = "1"
    os.environ.setdefault("VEROS_LOGLEVEL", "error")
    os.environ["VEROS_USE_SPECIAL_TDMA"] = "0"   # the Cython custom call has no derivative rule
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def build(resolution):
    """The ACC paper setup at ``resolution`` degrees, set up (same configuration as veros_acc.py)."""
    sys.path.insert(0, HERE)
    from veros_acc import grid_size, paper_setup_class

    nx, ny = grid_size(resolution)
    ACCPaperAdjoint = paper_setup_class(resolution, nx, ny, "acc_paper_adjoint")
    sim = ACCPaperAdjoint()
    sim.setup()
    return sim


def make_step(sim):
    """``step(state)``: the model part of ``VerosSetup.step`` (no restart, diagnostics or host check)."""
    from veros.core import advection, eke, momentum, thermodynamics, tke, utilities

    def step(state):
        vs = state.variables
        st = state.settings
        sim.set_forcing(state)
        eke.set_eke_diffusivities(state)
        tke.set_tke_diffusivities(state)
        momentum.momentum(state)
        thermodynamics.thermodynamics(state)
        advection.calculate_velocity_on_wgrid(state)
        eke.integrate_eke(state)
        with vs.unlock():
            vs.u = utilities.enforce_boundaries(vs.u, st.enable_cyclic_x)
            vs.v = utilities.enforce_boundaries(vs.v, st.enable_cyclic_x)
            vs.eke = utilities.enforce_boundaries(vs.eke, st.enable_cyclic_x)
        momentum.vertical_velocity(state)
        with vs.unlock():
            vs.itt = vs.itt + 1
            vs.time = vs.time + st.dt_tracer
            vs.taum1, vs.tau, vs.taup1 = vs.tau, vs.taup1, vs.taum1

    return step


def make_loss(sim, nsteps, loop):
    """``(J(T, leaves), T0, leaves)``: the loss as a pure function of the interior temperature T
    (Veros layout x, y, z) and of the state's pytree leaves."""
    import jax
    import jax.numpy as jnp
    from veros.core import thermodynamics
    from veros.core.operators import at, update

    step = make_step(sim)
    leaves, treedef = jax.tree_util.tree_flatten(sim.state)
    vs0 = sim.state.variables
    tau0 = int(vs0.tau)
    cyclic = bool(sim.state.settings.enable_cyclic_x)
    maskU = vs0.maskU[2:-2, 2:-2, :]
    wsum = float(jnp.sum(maskU))

    def loss(T, leaves):
        state = treedef.unflatten(leaves)
        vs = state.variables
        full = vs.temp[..., tau0]
        full = update(full, at[2:-2, 2:-2, :], T)
        if cyclic:
            full = update(full, at[:2, 2:-2, :], T[-2:])
            full = update(full, at[-2:, 2:-2, :], T[:2])
        with vs.unlock():
            vs.temp = update(vs.temp, at[..., tau0], full)
            vs.update(thermodynamics.calc_eq_of_state(state, vs.tau))
        if loop == "scan":
            def body(lv, _):
                s = treedef.unflatten(lv)
                step(s)
                return jax.tree_util.tree_leaves(s), None

            lv, _ = jax.lax.scan(body, jax.tree_util.tree_leaves(state), None, length=nsteps)
            vs = treedef.unflatten(lv).variables
        else:
            for _ in range(nsteps):
                step(state)
        u = vs.u[2:-2, 2:-2, :, vs.tau]
        return jnp.sum(maskU * u * u) / wsum

    T0 = vs0.temp[2:-2, 2:-2, :, tau0]
    return loss, T0, leaves


def _timed(fn, repeats):
    import jax
    best_w, best_c, out = float("inf"), float("inf"), None
    for _ in range(max(1, repeats)):
        c0 = time.process_time()
        t0 = time.perf_counter()
        out = jax.block_until_ready(fn())
        best_w = min(best_w, time.perf_counter() - t0)
        best_c = min(best_c, time.process_time() - c0)
    return out, best_w, best_c


def run_single(args, nsteps):
    _setenv(args)
    import warnings
    warnings.filterwarnings("ignore", message="Could not use custom TDMA")
    import jax
    import jax.numpy as jnp
    import numpy as np
    import veros

    jax.config.update("jax_enable_x64", True)
    t0 = time.perf_counter()
    sim = build(args.resolution)
    for _ in range(args.spinup):
        sim.step(sim.state)
    vs = sim.state.variables
    jax.block_until_ready(vs.u)
    setup_s = time.perf_counter() - t0
    loss, T0, leaves = make_loss(sim, nsteps, args.loop)   # captures the state after the spin-up
    # Veros's own step (same pure-JAX TDMA), for reference; it advances sim, not the captured leaves
    stepped = []
    for _ in range(3):
        t0 = time.perf_counter()
        sim.step(sim.state)
        jax.block_until_ready((vs.u, vs.temp, vs.psi))
        stepped.append(time.perf_counter() - t0)
    out = {"code": "veros-jax", "veros": veros.__version__, "jax": jax.__version__,
           "resolution": args.resolution, "steps": nsteps, "loop": args.loop, "tdma": "pure JAX (lax.scan)",
           "solver": args.solver, "setup_s": setup_s, "veros_step_s": min(stepped[1:]),
           "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
           "grid": [int(x) for x in (vs.u.shape[0] - 4, vs.u.shape[1] - 4, vs.u.shape[2])]}

    def compile_(f, *a):
        t = time.perf_counter()
        c = jax.jit(f).lower(*a).compile()
        return c, time.perf_counter() - t

    cf, out["fwd_compile_s"] = compile_(loss, T0, leaves)
    J, out["fwd_s"], out["fwd_cpu_s"] = _timed(lambda: cf(T0, leaves), args.repeats)
    out["loss"] = float(J)

    def fwdres(T, lv):
        return jax.vjp(lambda t: loss(t, lv), T)

    cr, out["fwdres_compile_s"] = compile_(fwdres, T0, leaves)
    (J2, vjp), out["fwdres_s"], out["fwdres_cpu_s"] = _timed(lambda: cr(T0, leaves), args.repeats)
    out["residual_MB"] = sum(x.nbytes for x in jax.tree_util.tree_leaves(vjp)) / 2**20
    one = jnp.ones((), dtype=J2.dtype)
    cb, out["bwd_compile_s"] = compile_(lambda v, c: v(c)[0], vjp, one)
    g, out["bwd_s"], out["bwd_cpu_s"] = _timed(lambda: cb(vjp, one), args.repeats)
    g = np.asarray(g)
    out["grad_norm"] = float(np.sqrt((g * g).sum()))
    if args.check:
        rng = np.random.default_rng(0)
        d = rng.standard_normal(g.shape) * np.asarray(vs.maskT[2:-2, 2:-2, :])
        h = 1e-3
        jp = float(cf(T0 + h * d, leaves))
        jm = float(cf(T0 - h * d, leaves))
        fd = (jp - jm) / (2 * h)
        ad = float((g * d).sum())
        out["check"] = {"fd": fd, "adjoint": ad, "rel": abs(fd - ad) / max(abs(fd), abs(ad), 1e-300), "h": h}
    if args.save_grad:
        np.savez(args.save_grad.format(n=nsteps), temp=np.transpose(g, (2, 1, 0)), loss=out["loss"])
    del vjp
    out["peak_rss_MB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("VEROS_ADJ_RESULT " + json.dumps(out), flush=True)
    return out


def main(argv=None):
    args = parse_args(argv)
    steps = [int(s) for s in str(args.steps).split(",") if s.strip()]
    if args.single or len(steps) == 1:
        run_single(args, steps[0])
        return 0
    # one process per N, so that the peak RSS of each is its own
    rc = 0
    for n in steps:
        cmd = [sys.executable, os.path.abspath(__file__), "--single", "--steps", str(n)]
        for k, v in vars(args).items():
            if k in ("steps", "single", "check", "timeout") or v is None:
                continue
            cmd += [f"--{k.replace('_', '-')}", str(v)]
        if args.check:
            cmd.append("--check")
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            print(f"VEROS_ADJ_ERROR N={n}: timed out after {args.timeout:.0f} s", flush=True)
            rc = 1
            continue
        lines = [ln for ln in r.stdout.splitlines() if ln.startswith("VEROS_ADJ_RESULT ")]
        if lines:
            print(lines[-1], flush=True)
        else:
            tail = " | ".join((r.stderr or "").strip().splitlines()[-3:])
            print(f"VEROS_ADJ_ERROR N={n}: exit {r.returncode}: {tail}", flush=True)
            rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
