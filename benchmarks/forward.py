#!/usr/bin/env python
"""Forward-model benchmark: time per step of the ACC paper configuration.

Times ``Model.step()`` (the full step including the CFL/NaN check, like Veros's step,
which ends with its own sanity check) of ``setups.acc(resolution, "paper")`` at each
requested resolution, on the CPU with each requested numba thread count, and on the
GPU with ``--backend cuda``/``all`` when a CUDA device is usable.  In the same run it
times Veros 1.7 (JAX backend, same grid and settings, see :mod:`benchmarks.veros_acc`)
in a separate virtual environment -- restricted by CPU affinity to as many cores as
stommel has threads -- and prints the ratio Veros / stommel.

Usage::

    python benchmarks/forward.py                              # 2 and 0.25 deg, 1 and all threads
    python benchmarks/forward.py --resolutions 2 --no-veros
    python benchmarks/forward.py --veros-python /work/venvs/veros/bin/python --markdown
    python benchmarks/forward.py --backend all                # + cuda timings and the 10-step check
    python benchmarks/forward.py --resolutions 0.25 --interleave 5   # Veros and stommel in alternating rounds

Veros's python: ``--veros-python``, else ``$STOMMEL_VEROS_PYTHON``, else the first of
``/work/venvs/veros/bin/python``, ``~/venvs/veros/bin/python``, ``~/.venvs/veros/bin/python``
that imports ``veros`` and ``jax``; otherwise the Veros column says "Veros not installed".

Method: per configuration, ``--warmup`` untimed steps (the first also loads/compiles the
numba kernels; its time is reported as ``first``), then ``--repeats`` individually timed
steps; min and median are reported.  The machine (CPU model, cores, load average at the
start and end) is printed with the results: on a shared machine other load inflates the
median, and the 2-thread figures are the most affected.  The process CPU time per step
(all threads) is reported beside the wall time: for the 1-thread/1-core rows it estimates
the unloaded time on a loaded machine.  The 1-minute load average before and after each
measurement is in the table; ``--max-load X`` waits (up to ``--max-wait`` s) for a quieter
machine before each measurement.

On a shared machine whose speed drifts (memory bandwidth of a VM that changes over minutes),
timing stommel and then Veros compares two different machines.  ``--interleave ROUNDS``
keeps Veros running as a server and alternates rounds of stommel steps and Veros steps
(:func:`time_interleaved`); the table's "ratio (rounds)" is the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import (format_machine, format_table, load_average, machine_info, peak_rss_mib,  # noqa: E402
                               timeit)

DEFAULT_VEROS_PYTHONS = ("/work/venvs/veros/bin/python", "~/venvs/veros/bin/python", "~/.venvs/veros/bin/python")
CHECK_VARS = ("u", "v", "w", "temp", "salt", "rho", "Nsqr", "psi", "dpsi", "eke")


# ---------------------------------------------------------------------------
# stommel
# ---------------------------------------------------------------------------

def default_repeats(resolution):
    return 50 if resolution >= 1.0 else 20


def time_stommel(resolution, backend="cpu", threads=None, repeats=None, warmup=3):
    """Build the model, run ``warmup`` steps, time ``repeats`` steps; returns a result dict."""
    import numba
    from ocean_core import setups

    if threads is not None:
        numba.set_num_threads(int(threads))
    t0 = time.perf_counter()
    m = setups.acc(resolution=resolution, config="paper", backend=backend)
    build = time.perf_counter() - t0
    be = m.backend
    t0 = time.perf_counter()
    m.step()
    be.synchronize()
    first = time.perf_counter() - t0
    load0 = load_average()
    r = timeit(m.step, repeats=repeats or default_repeats(resolution), warmup=max(0, warmup - 1),
               sync=be.synchronize)
    return {"load": [load0, load_average()],
        "code": "stommel", "backend": backend, "resolution": resolution, "nx": m.grid.nx, "ny": m.grid.ny,
        "nz": m.grid.nz, "threads": (numba.get_num_threads() if backend == "cpu" else None),
        "build_s": build, "first_s": first, "min_s": r["min"], "median_s": r["median"],
        "cpu_median_s": r["cpu_median"], "cpu_times_s": r["cpu_times"], "repeats": len(r["times"]),
        "warmup": warmup, "times_s": r["times"], "peak_rss_mib": peak_rss_mib(),
    }


def cuda_check(resolution, steps=10, tol=1e-12):
    """Run ``steps`` steps on the CPU and on the GPU from the same initial state and return the
    largest relative difference ``max|gpu - cpu| / max|cpu|`` over the prognostic fields."""
    from ocean_core import setups

    models = {}
    for be in ("cpu", "cuda"):
        m = setups.acc(resolution=resolution, config="paper", backend=be)
        m.run(steps, progress=False)
        models[be] = m
    per_var = {}
    for v in CHECK_VARS:
        a = models["cpu"].get(v)
        b = models["cuda"].get(v)
        scale = float(abs(a).max())
        per_var[v] = float(abs(b - a).max()) / scale if scale > 0 else float(abs(b - a).max())
    worst = max(per_var, key=per_var.get)
    return {"resolution": resolution, "steps": steps, "max_rel_diff": per_var[worst], "worst_var": worst,
            "per_var": per_var, "tol": tol, "ok": per_var[worst] <= tol}


# ---------------------------------------------------------------------------
# Veros
# ---------------------------------------------------------------------------

def find_veros_python(explicit=None):
    """(path, versions) of a python that imports veros and jax, or (None, reason)."""
    cands = [explicit] if explicit else []
    if not explicit:
        if os.environ.get("STOMMEL_VEROS_PYTHON"):
            cands.append(os.environ["STOMMEL_VEROS_PYTHON"])
        cands += list(DEFAULT_VEROS_PYTHONS)
    for c in cands:
        p = os.path.expanduser(c)
        if not os.path.exists(p):
            continue
        try:
            out = subprocess.run([p, "-c", "import veros, jax; print(veros.__version__, jax.__version__)"],
                                 capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"{p}: {exc}"
        if out.returncode == 0:
            return p, out.stdout.strip()
        if explicit:
            return None, f"{p} cannot import veros/jax: {out.stderr.strip().splitlines()[-1:]}"
    return None, "Veros not installed"


def _veros_command(python, resolution, ncores, warmup, ny, extra, script=None):
    """Command, environment and pre-exec hook (CPU affinity to the first ``ncores`` CPUs) of a
    :mod:`benchmarks.veros_acc` child (``script`` replaces veros_acc.py, for tests)."""
    cmd = [python, str(script or HERE / "veros_acc.py"), "--resolution", repr(float(resolution)),
           "--warmup", str(warmup)] + list(extra)
    if ny is not None:
        cmd += ["--ny", str(ny)]
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # silence XLA's per-compile custom-call warnings
    env.pop("PYTHONPATH", None)
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    preexec = None
    if ncores is not None and cpus is not None and ncores < len(cpus):
        sel = set(cpus[:ncores])
        preexec = lambda: os.sched_setaffinity(0, sel)  # noqa: E731
    return cmd, env, preexec


def time_veros(python, resolution, ncores=None, steps=5, warmup=3, ny=None, timeout=3600):
    """Run :mod:`benchmarks.veros_acc` with ``python`` restricted to the first ``ncores`` CPUs."""
    cmd, env, preexec = _veros_command(python, resolution, ncores, warmup, ny, ["--steps", str(steps)])
    load0 = load_average()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd="/tmp",
                             preexec_fn=preexec)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    for line in reversed(out.stdout.splitlines()):
        if line.startswith("VEROS_RESULT "):
            r = json.loads(line[len("VEROS_RESULT "):])
            r["cores"] = len(r["affinity"]) if r.get("affinity") else ncores
            r["code"] = "veros"
            r["load"] = [load0, load_average()]
            return r
    tail = "\n".join((out.stderr or "").strip().splitlines()[-5:])
    return {"error": f"veros_acc.py exited {out.returncode}: {tail}"}


def _read_tagged(proc, tags, deadline):
    """The JSON payload of the next stdout line of ``proc`` starting with one of ``tags``
    (``(tag, payload)``); raises RuntimeError if the child exits or ``deadline`` passes."""
    import select

    while True:
        left = deadline - time.time()
        if left <= 0:
            raise RuntimeError("Veros did not answer in time")
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if not ready:
            continue
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"Veros exited with code {proc.wait()}")
        for t in tags:
            if line.startswith(t + " "):
                return t, json.loads(line[len(t) + 1:])
        if line.startswith("VEROS_ERROR"):
            raise RuntimeError(line.strip())


def time_interleaved(python, resolution, threads, rounds, repeats, veros_steps, warmup=3, veros_warmup=3,
                     ny=None, timeout=3600, pause=0.5, script=None):
    """Time stommel (CPU, ``threads`` numba threads) and Veros (``threads`` cores) in alternating
    rounds, so that both see the same state of a shared machine.

    Veros runs as a server (``veros_acc.py --serve``): it compiles and warms up while stommel
    builds, then each round times ``ceil(repeats / rounds)`` stommel steps and
    ``ceil(veros_steps / rounds)`` Veros steps, with ``pause`` seconds between the two so that
    idle-spinning threads of one code do not steal from the other.  Returns stommel's and
    Veros's result dicts (all timed steps, as :func:`time_stommel` / :func:`time_veros`) and the
    per-round medians: the median over rounds of the per-round ratio is the figure least
    affected by slow phases of the machine.  If Veros fails (before it is ready or during a
    round), stommel's result is ``None`` and Veros's is ``{"error": ...}``.
    """
    import math
    import tempfile

    import numba
    from ocean_core import setups

    numba.set_num_threads(int(threads))
    cmd, env, preexec = _veros_command(python, resolution, threads, veros_warmup, ny, ["--serve"], script)
    deadline = time.time() + timeout
    err = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True,
                            env=env, cwd="/tmp", preexec_fn=preexec, bufsize=1)
    try:
        # stommel builds and warms up while Veros compiles; timing starts when both are ready
        t0 = time.perf_counter()
        m = setups.acc(resolution=resolution, config="paper", backend="cpu")
        build = time.perf_counter() - t0
        t0 = time.perf_counter()
        m.step()
        first = time.perf_counter() - t0
        for _ in range(max(0, warmup - 1)):
            m.step()
        try:
            _read_tagged(proc, ("VEROS_READY",), deadline)
            ks, kv = math.ceil(repeats / rounds), math.ceil(veros_steps / rounds)
            load0 = load_average()
            st, sc, per_round = [], [], []
            for _ in range(int(rounds)):
                time.sleep(pause)
                r = timeit(m.step, repeats=ks, warmup=0)
                st += r["times"]
                sc += r["cpu_times"]
                time.sleep(pause)
                proc.stdin.write(f"STEP {kv}\n")
                proc.stdin.flush()
                _, v = _read_tagged(proc, ("VEROS_TIMES",), deadline)
                sm, vm = statistics.median(r["times"]), statistics.median(v["times_s"])
                per_round.append({"stommel_median_s": sm, "veros_median_s": vm, "ratio": vm / sm})
            load1 = load_average()
            proc.stdin.write("QUIT\n")
            proc.stdin.flush()
            # its result covers all the steps of all the rounds
            _, vres = _read_tagged(proc, ("VEROS_RESULT",), deadline)
        except (RuntimeError, BrokenPipeError) as exc:
            err.seek(0)
            tail = "\n".join(err.read().strip().splitlines()[-5:])
            return None, {"error": f"{exc}: {tail}"}, []
    finally:
        if proc.poll() is None:
            try:
                proc.stdin.close()
                proc.wait(timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
        err.close()
    sres = {"load": [load0, load1], "code": "stommel", "backend": "cpu", "resolution": resolution,
            "nx": m.grid.nx, "ny": m.grid.ny, "nz": m.grid.nz, "threads": numba.get_num_threads(),
            "build_s": build, "first_s": first, "min_s": min(st), "median_s": statistics.median(st),
            "cpu_median_s": statistics.median(sc), "cpu_times_s": sc, "repeats": len(st),
            "warmup": warmup, "times_s": st, "peak_rss_mib": peak_rss_mib(), "interleaved_rounds": int(rounds)}
    vres.update(cores=len(vres["affinity"]) if vres.get("affinity") else threads, code="veros",
                load=[load0, load1], resolution=resolution, threads=threads, interleaved_rounds=int(rounds))
    return sres, vres, per_round


# ---------------------------------------------------------------------------

def wait_for_load(max_load, max_wait):
    """Sleep until the 1-minute load average is below ``max_load`` (at most ``max_wait`` seconds)."""
    if not max_load:
        return
    t0 = time.time()
    while (load_average() or (0,))[0] > max_load and time.time() - t0 < max_wait:
        time.sleep(10)


def parse_threads(spec, ncpu):
    out = []
    for t in spec.split(","):
        t = t.strip()
        n = ncpu if t == "all" else int(t)
        if n not in out:
            out.append(min(n, ncpu))
    return out


def _load(r):
    """'a-b': 1-min load average before and after a measurement."""
    ld = r.get("load") or [None, None]
    return "-".join("?" if x is None else f"{x[0]:.1f}" for x in ld)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--resolutions", default="2,0.25", help="comma-separated degrees (default 2,0.25)")
    p.add_argument("--threads", default="1,all", help="numba thread counts, 'all' = NUMBA_NUM_THREADS (default 1,all)")
    p.add_argument("--backend", default="cpu", choices=["cpu", "cuda", "all"])
    p.add_argument("--repeats", type=int, default=None, help="timed steps (default 50 at >= 1 deg, else 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps before timing (default 3)")
    p.add_argument("--veros-python", default=None, help="python of a venv with veros[jax]")
    p.add_argument("--no-veros", action="store_true", help="do not run Veros")
    p.add_argument("--veros-steps", type=int, default=None, help="timed Veros steps (default 20 at >= 1 deg, else 10)")
    p.add_argument("--veros-warmup", type=int, default=3, help="untimed Veros steps after the compiling one")
    p.add_argument("--veros-ny", type=int, default=None, help="Veros ny override (default 84/r, stommel's)")
    p.add_argument("--interleave", type=int, default=0, metavar="ROUNDS",
                   help="time stommel (cpu) and Veros in ROUNDS alternating rounds with Veros kept "
                        "running as a server, so both see the same machine state (0: one after the "
                        "other, the default); the per-round ratios are printed and their median is "
                        "the 'ratio (rounds)' column")
    p.add_argument("--check-steps", type=int, default=10, help="steps of the cuda-vs-cpu check (default 10)")
    p.add_argument("--max-load", type=float, default=None,
                   help="before each measurement wait (up to --max-wait s) until the 1-min load average is below this")
    p.add_argument("--max-wait", type=float, default=600.0)
    p.add_argument("--json", default=None, help="write all results to this JSON file")
    p.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    args = p.parse_args(argv)

    import numba

    resolutions = [float(r) for r in args.resolutions.split(",") if r.strip()]
    nmax = numba.config.NUMBA_NUM_THREADS
    threads = parse_threads(args.threads, nmax)
    info0 = machine_info(gpu=args.backend != "cpu")
    print(f"machine: {format_machine(info0)}", flush=True)
    print(f"numba threads: max {nmax} (threading layer chosen at first launch)", flush=True)

    results, veros, checks = [], [], []
    want_cuda = args.backend in ("cuda", "all")
    have_cuda = False
    if want_cuda:
        from ocean_core.backend import cuda_available
        have_cuda = cuda_available()
        if not have_cuda:
            print("no CUDA device: skipping the cuda backend", flush=True)

    vpy, vinfo = (None, "Veros not run (--no-veros)") if args.no_veros else find_veros_python(args.veros_python)
    if vpy:
        print(f"Veros: {vpy} (veros, jax = {vinfo})", flush=True)
    else:
        print(vinfo, flush=True)

    interleave = bool(vpy) and args.interleave > 0
    if args.interleave < 0:
        p.error(f"--interleave {args.interleave}: must be >= 0 (rounds; 0 = off)")
    for res in resolutions:
        if args.backend in ("cpu", "all") and interleave:
            vsteps = args.veros_steps or (20 if res >= 1.0 else 10)
            for n in threads:
                wait_for_load(args.max_load, args.max_wait)
                r, v, rounds = time_interleaved(vpy, res, n, args.interleave,
                                                args.repeats or default_repeats(res), vsteps,
                                                warmup=args.warmup, veros_warmup=args.veros_warmup,
                                                ny=args.veros_ny)
                v.setdefault("resolution", res)
                v["threads"] = n
                veros.append(v)
                if r is None:
                    print(f"Veros {res:g} deg {n} core(s): {v['error']}", flush=True)
                    continue
                r["round_ratios"] = [x["ratio"] for x in rounds]
                r["round_ratio_median"] = statistics.median(r["round_ratios"])
                results.append(r)
                print(f"interleaved {res:g} deg, {n} thread(s)/core(s), {len(rounds)} rounds: stommel min "
                      f"{r['min_s'] * 1e3:.2f} ms, median {r['median_s'] * 1e3:.2f} ms; Veros-JAX min "
                      f"{v['min_s'] * 1e3:.1f} ms, median {v['median_s'] * 1e3:.1f} ms; per-round ratios "
                      + ", ".join(f"{x:.1f}" for x in r["round_ratios"])
                      + f" (median {r['round_ratio_median']:.1f}x)", flush=True)
        elif args.backend in ("cpu", "all"):
            for n in threads:
                wait_for_load(args.max_load, args.max_wait)
                r = time_stommel(res, "cpu", threads=n, repeats=args.repeats, warmup=args.warmup)
                results.append(r)
                print(f"stommel cpu {res:g} deg ({r['nx']}x{r['ny']}x{r['nz']}) {n} thread(s): "
                      f"min {r['min_s'] * 1e3:.2f} ms, median {r['median_s'] * 1e3:.2f} ms "
                      f"({r['repeats']} steps; first {r['first_s']:.2f} s)", flush=True)
        if have_cuda:
            r = time_stommel(res, "cuda", repeats=args.repeats, warmup=args.warmup)
            results.append(r)
            print(f"stommel cuda {res:g} deg: min {r['min_s'] * 1e3:.3f} ms, median {r['median_s'] * 1e3:.3f} ms "
                  f"(first {r['first_s']:.2f} s)", flush=True)
            c = cuda_check(res, steps=args.check_steps)
            checks.append(c)
            print(f"cuda vs cpu after {c['steps']} steps at {res:g} deg: max relative difference "
                  f"{c['max_rel_diff']:.2e} ({c['worst_var']}) -> {'OK' if c['ok'] else 'FAIL'} (tol {c['tol']:g})",
                  flush=True)
        if vpy and not interleave:
            vsteps = args.veros_steps or (20 if res >= 1.0 else 10)
            for n in threads:
                wait_for_load(args.max_load, args.max_wait)
                v = time_veros(vpy, res, ncores=n, steps=vsteps, warmup=args.veros_warmup, ny=args.veros_ny)
                v.setdefault("resolution", res)
                v["threads"] = n
                veros.append(v)
                if "error" in v:
                    print(f"Veros {res:g} deg {n} core(s): {v['error']}", flush=True)
                else:
                    print(f"Veros-JAX {res:g} deg ({v['nx']}x{v['ny']}x{v['nz']}) {v['cores']} core(s): "
                          f"min {v['min_s'] * 1e3:.1f} ms, median {v['median_s'] * 1e3:.1f} ms "
                          f"({len(v['times_s'])} steps; setup {v['setup_s']:.1f} s, first step {v['first_step_s']:.1f} s, "
                          f"compile ~{v['compile_s']:.1f} s)", flush=True)

    info1 = machine_info(gpu=have_cuda)

    # summary table
    rows = []
    for r in results:
        v = next((x for x in veros if "error" not in x and x["resolution"] == r["resolution"]
                  and r["backend"] == "cpu" and x["threads"] == r["threads"]), None)
        if v is None and r["backend"] == "cuda":
            v = next((x for x in veros if "error" not in x and x["resolution"] == r["resolution"]
                      and x["threads"] == max(threads)), None)
        vtxt = vinfo if not vpy else ("-" if v is None else f"{v['median_s'] * 1e3:.1f}")
        rows.append([
            f"{r['resolution']:g}", f"{r['nx']}x{r['ny']}x{r['nz']}", r["backend"],
            r["threads"] if r["threads"] is not None else "gpu",
            f"{r['min_s'] * 1e3:.2f}", f"{r['median_s'] * 1e3:.2f}", vtxt,
            "-" if v is None else f"{v['median_s'] / r['median_s']:.1f}x",
            "-" if v is None else f"{v['min_s'] / r['min_s']:.1f}x",
            f"{r['round_ratio_median']:.1f}x" if "round_ratio_median" in r else "-",
            f"{r['cpu_median_s'] * 1e3:.2f}" if r["backend"] == "cpu" else "-",
            "-" if v is None or "cpu_median_s" not in v else f"{v['cpu_median_s'] * 1e3:.1f}",
            _load(r) + " / " + (_load(v) if v is not None else "-"),
        ])
    heads = ["deg", "grid", "backend", "threads", "stommel min ms", "stommel median ms", "Veros-JAX median ms",
             "ratio (median)", "ratio (min)", "ratio (rounds)", "stommel CPU-time median ms", "Veros CPU-time median ms",
             "load stommel / Veros"]
    if rows:
        print()
        print(format_table(rows, heads, markdown=args.markdown))
    if veros and any("error" not in v for v in veros):
        vrows = [[f"{v['resolution']:g}", f"{v['nx']}x{v['ny']}x{v['nz']}", v["cores"], f"{v['min_s'] * 1e3:.1f}",
                  f"{v['median_s'] * 1e3:.1f}", len(v["times_s"]), f"{v['setup_s']:.1f}", f"{v['first_step_s']:.1f}",
                  f"{v['compile_s']:.1f}", v.get("peak_rss_mib"), _load(v)] for v in veros if "error" not in v]
        print()
        print(format_table(vrows, ["deg", "grid", "cores", "Veros min ms", "Veros median ms", "steps", "setup s",
                                   "first step s", "compile s", "peak RSS MiB", "load"], markdown=args.markdown))
    if checks:
        print()
        print(format_table([[f"{c['resolution']:g}", c["steps"], f"{c['max_rel_diff']:.2e}", c["worst_var"],
                             "OK" if c["ok"] else "FAIL"] for c in checks],
                           ["deg", "steps", "max rel diff cuda vs cpu", "field", "<= 1e-12"], markdown=args.markdown))
    print(f"\nload average at start {info0['load']}, at end {info1['load']}; stommel peak RSS {peak_rss_mib()} MiB")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine_start": info0, "machine_end": info1, "stommel": results,
                                               "veros": veros, "cuda_check": checks,
                                               "argv": sys.argv}, indent=1))
    return 0 if all(c["ok"] for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
