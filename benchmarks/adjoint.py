#!/usr/bin/env python
"""Cost of the adjoint: one adjoint step (re-running the forward step from the stored
state, then the adjoint operations) over one forward step, at 2 and 0.25 degrees,
with peak memory; and, when a Veros virtualenv with ``veros[jax]`` is available, the JAX
reverse pass of the same loss in the same run (:mod:`benchmarks.veros_adjoint`).

Usage::

    python benchmarks/adjoint.py [--resolutions 2,0.25] [--steps 20] [--threads 1]
    python benchmarks/adjoint.py --veros-python /work/venvs/veros/bin/python --veros-steps 1,10,20
    python benchmarks/adjoint.py --no-veros --markdown

Loss: ``adjoint.losses.FieldMSE("u")`` after N steps (mean square of u over the wet U
points), controls temp, A_h, r_bot, from the state after 3 spin-up steps; N = ``--steps`` at
>= 1 degree, ``max(3, steps // 4)`` below.

stommel method: the gradient is computed once untimed (compilation), then ``--repeats``
times; ``adjoint.gradient`` reports its forward sweep (steps + storing the trajectory) and
its reverse sweep (per step: restore, forward recompute, adjoint operations).  The
forward step (``step_ops`` + rotation, as in the sweeps) is timed over N steps, ``--repeats``
times.  With one thread, times are process CPU times (robust on a shared machine; wall
times are printed beside them); with more threads, wall times.  Min over the repeats.
``adj/fwd`` = reverse sweep per step / forward step (the issue's target is <= 3).

Veros method (see :mod:`benchmarks.veros_adjoint`): ``jax.vjp`` of N unrolled steps, with
the forward N-step program, the forward sweep storing residuals and the reverse sweep each
compiled separately and timed; one process per N (its own peak RSS), restricted by CPU
affinity to as many cores as stommel has threads.  Its ratio: reverse sweep per step over
its forward step.  When a Veros N equals stommel's N, the two temperature gradients are
compared (``grad rel diff``: max-norm relative difference; both sides solve the Poisson
problem to atol 1e-8, which bounds the agreement).

Veros's python: ``--veros-python``, else ``$STOMMEL_VEROS_PYTHON``, else the defaults of
:mod:`benchmarks.forward`; ``--no-veros`` skips it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# this script's own directory comes first on sys.path when it is run as a script, and its
# name would shadow the ``adjoint`` package: put the repository root in front of it
sys.path[:] = [ROOT] + [p for p in sys.path if os.path.abspath(p or os.curdir) not in (HERE, ROOT)]

from benchmarks.common import format_machine, format_table, load_average, machine_info, peak_rss_mib  # noqa: E402

CONTROLS = ("temp", "A_h", "r_bot")


@contextmanager
def _cpu_clock(enabled):
    """Make ``time.perf_counter`` read the process CPU time (so that the sweep timings of
    ``adjoint.gradient`` are CPU times); only for single-threaded runs."""
    if not enabled:
        yield
        return
    orig = time.perf_counter
    time.perf_counter = time.process_time
    try:
        yield
    finally:
        time.perf_counter = orig


def stommel_steps(resolution, steps):
    return steps if resolution >= 1 else max(3, steps // 4)


def measure(resolution, steps, threads, repeats=2, save_grad=None):
    """Forward-step and adjoint-step times of stommel (see the module docstring)."""
    import numba

    import adjoint
    from ocean_core import setups

    numba.set_num_threads(threads)
    cpu = threads == 1
    m = setups.acc(resolution)
    m.run(3, progress=False)
    grid = f"{m.grid.nx}x{m.grid.ny}x{m.grid.nz}"
    # warm-up (compilation) with 2 steps; the model is left at its state
    t0 = time.perf_counter()
    adjoint.gradient(m, adjoint.losses.FieldMSE("u", at_step=2), list(CONTROLS), 2)
    warm = time.perf_counter() - t0
    fwd, fwd_wall, adj, adj_wall, fsw = [], [], [], [], []
    g = None
    for _ in range(max(1, repeats)):
        # forward steps from the spun-up state (restored afterwards by gradient's capture/restore)
        from adjoint.core import capture, restore
        snap, levels = capture(m), dict(m.fields.levels)
        c0, t0 = time.process_time(), time.perf_counter()
        for _ in range(steps):
            m.step_ops()
            m.finish_step()
        fwd.append((time.process_time() - c0) / steps)
        fwd_wall.append((time.perf_counter() - t0) / steps)
        m.fields.levels.update(levels)
        restore(m, snap)
        loss = adjoint.losses.FieldMSE("u", target=0.0, at_step=steps)
        with _cpu_clock(cpu):
            g = adjoint.gradient(m, loss, list(CONTROLS), steps)
        adj.append(g.info["reverse_sweep_s"] / steps)
        fsw.append(g.info["forward_sweep_s"] / steps)
        t0 = time.perf_counter()
        adjoint.gradient(m, loss, list(CONTROLS), steps)
        adj_wall.append((time.perf_counter() - t0) / steps)
    if save_grad:
        import numpy as np
        np.savez(save_grad, temp=g["temp"], loss=g.value)
    f, a = min(fwd), min(adj)
    return {"resolution": resolution, "grid": grid, "threads": threads, "steps": steps,
            "clock": "cpu" if cpu else "wall", "forward_ms": f * 1e3, "adjoint_step_ms": a * 1e3, "ratio": a / f,
            "forward_wall_ms": min(fwd_wall) * 1e3,
            "gradient_wall_ms_per_step": min(adj_wall) * 1e3,  # forward sweep + reverse sweep, wall
            "forward_sweep_ms_per_step": min(fsw) * 1e3,
            "trajectory_MB_per_step": g.info["trajectory_bytes"] / steps / 2**20,
            "loss": g.value, "warmup_s": warm, "peak_rss_MB": peak_rss_mib()}


# ---------------------------------------------------------------------------
# Veros
# ---------------------------------------------------------------------------

def run_veros(python, resolution, steps, ncores=None, loop="unroll", save_grad=None, timeout=7200):
    """Run :mod:`benchmarks.veros_adjoint` (one subprocess per N, CPU affinity ``ncores``);
    returns a list of result dicts (or ``{"error": ...}`` entries)."""
    cmd = [python, os.path.join(HERE, "veros_adjoint.py"), "--resolution", repr(float(resolution)),
           "--steps", ",".join(str(n) for n in steps), "--loop", loop, "--timeout", str(timeout)]
    if save_grad:
        cmd += ["--save-grad", save_grad]
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.pop("PYTHONPATH", None)
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    preexec = None
    if ncores is not None and cpus is not None and ncores < len(cpus):
        sel = set(cpus[:ncores])
        preexec = lambda: os.sched_setaffinity(0, sel)  # noqa: E731
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tempfile.gettempdir(),
                             preexec_fn=preexec, timeout=timeout * max(1, len(steps)))
    except subprocess.TimeoutExpired:
        return [{"error": "timed out", "resolution": resolution}]
    res = []
    for line in out.stdout.splitlines():
        if line.startswith("VEROS_ADJ_RESULT "):
            res.append(json.loads(line[len("VEROS_ADJ_RESULT "):]))
        elif line.startswith("VEROS_ADJ_ERROR "):
            res.append({"error": line[len("VEROS_ADJ_ERROR "):], "resolution": resolution})
    if not res:
        tail = " | ".join((out.stderr or "").strip().splitlines()[-3:])
        res.append({"error": f"veros_adjoint.py exited {out.returncode}: {tail}", "resolution": resolution})
    return res


def _grad_diff(a_path, b_path):
    import numpy as np
    a = np.load(a_path)["temp"]
    b = np.load(b_path)["temp"]
    return float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-300))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--resolutions", default="2,0.25")
    p.add_argument("--steps", type=int, default=20, help="N at >= 1 degree (max(3, N // 4) below); default 20")
    p.add_argument("--threads", default="1")
    p.add_argument("--repeats", type=int, default=2, help="timed gradient runs per configuration (default 2)")
    p.add_argument("--veros-python", default=None, help="python of a venv with veros[jax]")
    p.add_argument("--no-veros", action="store_true", help="do not run Veros")
    p.add_argument("--veros-steps", default=None,
                   help="comma-separated N for Veros (default 1,10,N at >= 1 degree; 1,2 below)")
    p.add_argument("--veros-loop", default="unroll", choices=["unroll", "scan"])
    p.add_argument("--veros-timeout", type=float, default=7200.0, help="per-N Veros timeout in s")
    p.add_argument("--json", default=None, help="write all results to this JSON file")
    p.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    a = p.parse_args(argv)

    info0 = machine_info()
    print("machine:", format_machine(info0), flush=True)
    vpy, vinfo = None, "Veros not run (--no-veros)"
    if not a.no_veros:
        from benchmarks.forward import find_veros_python
        vpy, vinfo = find_veros_python(a.veros_python)
    print(f"Veros: {vpy} (veros, jax = {vinfo})" if vpy else vinfo, flush=True)

    tmp = tempfile.mkdtemp(prefix="stommel_adjbench_")
    results, veros = [], []
    for r in [float(x) for x in a.resolutions.split(",") if x.strip()]:
        n = stommel_steps(r, a.steps)
        for th in [int(x) for x in a.threads.split(",") if x.strip()]:
            sg = os.path.join(tmp, f"stommel_{r:g}_{n}.npz") if th == 1 else None
            load0 = load_average()
            res = measure(r, n, th, repeats=a.repeats, save_grad=sg)
            res["load"] = [load0, load_average()]
            results.append(res)
            print(f"stommel {r:g} deg ({res['grid']}) {th} thread(s), N={n}: forward {res['forward_ms']:.2f} ms, "
                  f"adjoint step {res['adjoint_step_ms']:.2f} ms ({res['clock']}), ratio {res['ratio']:.2f}; "
                  f"trajectory {res['trajectory_MB_per_step']:.2f} MB/step, peak RSS {res['peak_rss_MB']:.0f} MB",
                  flush=True)
        if vpy:
            vsteps = ([int(x) for x in a.veros_steps.split(",")] if a.veros_steps
                      else ([1, 10, n] if r >= 1 else [1, 2]))
            vsteps = sorted(set(vsteps))
            ncores = min(int(x) for x in a.threads.split(","))
            vg = os.path.join(tmp, f"veros_{r:g}_{{n}}.npz")
            for v in run_veros(vpy, r, vsteps, ncores=ncores, loop=a.veros_loop, save_grad=vg,
                               timeout=a.veros_timeout):
                v.setdefault("resolution", r)
                veros.append(v)
                if "error" in v:
                    print(f"Veros {r:g} deg: {v['error']}", flush=True)
                    continue
                mine = next((x for x in results if x["resolution"] == r and x["threads"] == 1), None)
                if mine is not None and v["steps"] == mine["steps"]:
                    v["grad_rel_diff"] = _grad_diff(os.path.join(tmp, f"stommel_{r:g}_{mine['steps']}.npz"),
                                                    vg.format(n=v["steps"]))
                    v["loss_rel_diff"] = abs(v["loss"] - mine["loss"]) / abs(mine["loss"])
                print(f"Veros-JAX {r:g} deg N={v['steps']}: forward {v['fwd_s'] / v['steps'] * 1e3:.1f} ms/step, "
                      f"reverse {v['bwd_s'] / v['steps'] * 1e3:.1f} ms/step, compile "
                      f"{v['fwd_compile_s']:.0f}+{v['fwdres_compile_s']:.0f}+{v['bwd_compile_s']:.0f} s, "
                      f"residuals {v['residual_MB']:.0f} MB, peak RSS {v['peak_rss_MB']:.0f} MB", flush=True)

    info1 = machine_info()
    rows = [[f"{x['resolution']:g}", x["grid"], x["threads"], x["steps"], x["clock"], f"{x['forward_ms']:.2f}",
             f"{x['adjoint_step_ms']:.2f}", f"{x['ratio']:.2f}", f"{x['forward_wall_ms']:.2f}",
             f"{x['gradient_wall_ms_per_step']:.2f}", f"{x['trajectory_MB_per_step']:.2f}",
             f"{x['peak_rss_MB']:.0f}"] for x in results]
    print()
    print(format_table(rows, ["deg", "grid", "thr", "N", "clock", "fwd ms/step", "adj ms/step", "adj/fwd",
                              "fwd wall ms", "gradient wall ms/step", "traj MB/step", "peak RSS MB"],
                       markdown=a.markdown))
    good = [v for v in veros if "error" not in v]
    if good:
        vrows = []
        for v in good:
            mine = next((x for x in results if x["resolution"] == v["resolution"] and x["threads"] == 1), None)
            nn = v["steps"]
            f1 = v["fwd_s"] / nn
            b1 = v["bwd_s"] / nn
            # against stommel's CPU times, Veros's CPU times (same core count by affinity)
            cpu = mine is not None and mine["clock"] == "cpu"
            b1c = (v["bwd_cpu_s"] if cpu else v["bwd_s"]) / nn
            g1c = ((v["fwdres_cpu_s"] + v["bwd_cpu_s"]) if cpu else (v["fwdres_s"] + v["bwd_s"])) / nn
            vrows.append([
                f"{v['resolution']:g}", nn, f"{f1 * 1e3:.1f}", f"{v['fwdres_s'] / nn * 1e3:.1f}", f"{b1 * 1e3:.1f}",
                f"{b1 / f1:.2f}", f"{(v['fwdres_s'] + v['bwd_s']) / v['fwd_s']:.2f}",
                f"{v['fwd_compile_s']:.0f}", f"{v['fwdres_compile_s'] + v['bwd_compile_s']:.0f}",
                f"{v['residual_MB'] / nn:.1f}", f"{v['peak_rss_MB']:.0f}",
                "-" if mine is None else f"{b1c * 1e3 / mine['adjoint_step_ms']:.2f}",
                "-" if mine is None else f"{g1c * 1e3 / (mine['forward_sweep_ms_per_step'] + mine['adjoint_step_ms']):.2f}",
                f"{v['grad_rel_diff']:.1e}" if "grad_rel_diff" in v else "-",
            ])
        print()
        print(format_table(vrows, ["deg", "N", "Veros fwd ms/step", "fwd+residuals ms/step", "reverse ms/step",
                                   "reverse/fwd", "gradient/forward (N steps)", "fwd compile s",
                                   "vjp compile s", "residuals MB/step", "peak RSS MB",
                                   "Veros/stommel adjoint step", "Veros/stommel gradient", "grad rel diff"],
                           markdown=a.markdown))
    print(f"\nload average at start {info0['load']}, at end {info1['load']}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"machine_start": info0, "machine_end": info1, "stommel": results, "veros": veros,
                       "argv": sys.argv}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
