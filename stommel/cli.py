"""The ``stommel`` command line.

Commands
--------
``stommel run acc``
    Run the ACC model (default: 2 degrees, paper configuration, one model year) and
    write snapshots, time averages, the ACC transport series, a restart file, plots
    and ``run.json`` into ``--out`` (default ``stommel_acc_run``).
``stommel plot DIR``
    Streamfunction map, transport series and temperature sections of a run.
``stommel emulator ...``, ``stommel gradcheck ...``
    Registered from :mod:`emulator.cli` and :mod:`adjoint.gradcheck` when those
    modules can be imported; otherwise the command explains why it is unavailable.

Exit status: 0 success, 1 plots failed after a successful run, 2 bad input,
3 the model blew up (the last good state is in the output directory),
130 interrupted (the state reached is in the output directory).

Nothing here imports numba at start-up, so ``--threads`` can still set
``NUMBA_NUM_THREADS`` before the kernels load.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import subprocess
import sys
from pathlib import Path

from ocean_core.settings import CONFIGS, SettingsError, make_settings

__all__ = ["main", "build_parser"]

DEFAULT_OUT = "stommel_acc_run"

#: command-line flag -> Settings field for the overridable parameters
OVERRIDES = {"dt_mom": "--dt-mom", "dt_tracer": "--dt-tracer", "A_h": "--A-h", "r_bot": "--r-bot",
             "kappaM_0": "--kappaM-0", "kappaH_0": "--kappaH-0"}


class CLIError(Exception):
    """Bad command-line input (exit status 2)."""


# ---------------------------------------------------------------------------
# argument types: each error names the value and what is allowed
# ---------------------------------------------------------------------------

def _number(kind, lo, strict, what):
    def conv(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid value {text!r}: must be {what}") from None
        if isinstance(v, float) and not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"invalid value {text!r}: must be {what}")
        if (v <= lo) if strict else (v < lo):
            raise argparse.ArgumentTypeError(f"invalid value {text!r}: must be {what}")
        return v
    return conv


def _resolution(text):
    allowed = "a number of degrees r > 0 with 60/r and 84/r integers >= 4 (e.g. 4, 2, 1, 0.5, 0.25)"
    try:
        r = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: must be {allowed}") from None
    ok = math.isfinite(r) and r > 0
    if ok:
        nx, ny = 60.0 / r, 84.0 / r
        ok = abs(nx - round(nx)) < 1e-9 and abs(ny - round(ny)) < 1e-9 and round(nx) >= 4
    if not ok:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: must be {allowed}")
    return r


_pos_float = _number(float, 0.0, True, "a finite number > 0")
_nonneg_float = _number(float, 0.0, False, "a finite number >= 0")
_nonneg_int = _number(int, 0, False, "an integer >= 0")
_pos_int = _number(int, 0, True, "an integer >= 1")


# ---------------------------------------------------------------------------
# parser
# ---------------------------------------------------------------------------

def build_parser():
    """The ``stommel`` argument parser with all sub-commands."""
    from stommel import __version__

    p = argparse.ArgumentParser(prog="stommel", description="stommel ocean model: run, plot, emulate, check "
                                "gradients. 'stommel COMMAND --help' describes each command.")
    p.add_argument("--version", action="version", version=f"stommel {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    _add_run(sub)
    _add_plot(sub)
    _add_optional(sub, "emulator", "emulator.cli", "Samudra 2 emulator of the ACC model")
    _add_optional(sub, "gradcheck", "adjoint.gradcheck", "check adjoint gradients against finite differences")
    return p


def _add_run(sub):
    q = sub.add_parser(
        "run", help="run a model and write netCDF output, the transport series and plots",
        description="Run the ACC model. With no options: 2 degrees, paper configuration, one model year "
                    f"(26,280 steps of 1200 s), output in ./{DEFAULT_OUT}.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    q.add_argument("setup", choices=("acc",), help="model setup")
    q.add_argument("--resolution", type=_resolution, default=None,
                   help="grid spacing in degrees (default 2, or that of --restart)")
    q.add_argument("--config", choices=sorted(CONFIGS), default="paper", help="named configuration")
    g = q.add_mutually_exclusive_group()
    g.add_argument("--steps", type=_nonneg_int, help="number of time steps")
    g.add_argument("--days", type=_pos_float, help="model days to run")
    g.add_argument("--years", type=_pos_float, help="model years to run (default 1)")
    q.add_argument("--out", default=DEFAULT_OUT, help="output directory (must be new or empty)")
    q.add_argument("--backend", choices=("cpu", "cuda"), default="cpu", help="array backend")
    for name, flag in OVERRIDES.items():
        q.add_argument(flag, dest=name, type=float, default=None, metavar="X",
                       help=f"override setting {name} (SI units)")
    q.add_argument("--seasonal", action="store_const", const=True, default=None,
                   help="seasonal cycle of wind stress and relaxation target")
    q.add_argument("--snapshot-days", type=_nonneg_float, default=10.0, help="days between snapshots (0: none)")
    q.add_argument("--average-days", type=_nonneg_float, default=365.0,
                   help="length of the averaging windows in days (0: no averages)")
    q.add_argument("--transport-every", type=_nonneg_int, default=1,
                   help="steps between entries of the transport series (0: none)")
    q.add_argument("--restart", metavar="FILE", help="continue from a restart file (its settings and "
                   "resolution are used unless given here)")
    q.add_argument("--overwrite", action="store_true",
                   help="write into a non-empty --out, replacing files of the same names")
    q.add_argument("--no-plots", action="store_true", help="do not write PNG plots at the end")
    q.add_argument("--no-progress", action="store_true", help="no progress bar")
    q.add_argument("--threads", type=_pos_int, default=None,
                   help="Numba threads (default: NUMBA_NUM_THREADS if set, else 1: the 2-degree grid gains "
                        "nothing from threads and slows down badly with them on a busy machine)")
    q.set_defaults(func=cmd_run)


def _add_plot(sub):
    q = sub.add_parser("plot", help="plot a run directory (streamfunction, transport, temperature)",
                       description="Write streamfunction.png, transport.png and temperature.png for the output "
                                   "directory of 'stommel run' (from its last complete average, else its last "
                                   "snapshot).")
    q.add_argument("dir", help="output directory of 'stommel run'")
    q.add_argument("--out", default=None, help="directory for the PNGs (default: DIR)")
    q.add_argument("--overwrite", action="store_true", help="replace existing PNGs")
    q.set_defaults(func=cmd_plot)


def _add_optional(sub, name, module, help_text):
    """Register ``module.add_subparser`` if it imports; else a command that explains why not."""
    reason = None
    try:
        import importlib
        mod = importlib.import_module(module)
        mod.add_subparser(sub)
        return
    except Exception as exc:  # a missing or broken optional module must not break the other commands
        reason = f"{type(exc).__name__}: {exc}"
    try:
        q = sub.add_parser(name, help=f"{help_text} (unavailable)", add_help=False)
    except argparse.ArgumentError:  # add_subparser failed after registering the name
        return
    # accept any arguments, so the user sees why the command is missing instead of a usage error
    q.add_argument("rest", nargs=argparse.REMAINDER)
    q.set_defaults(func=lambda args: _unavailable(name, module, reason), accepts_extra=True)


def _unavailable(name, module, reason):
    print(f"stommel: error: the '{name}' command is not available in this installation: importing "
          f"{module}.add_subparser failed ({reason})", file=sys.stderr)
    return 2


# ---------------------------------------------------------------------------
# stommel run
# ---------------------------------------------------------------------------

def _set_threads(n):
    """Numba threads: via the environment before numba loads, else at run time."""
    if n is None:
        return
    if "numba" not in sys.modules:
        os.environ["NUMBA_NUM_THREADS"] = str(n)
        return
    import numba
    try:
        numba.set_num_threads(n)
    except ValueError:
        raise CLIError(f"--threads={n} is invalid: at most NUMBA_NUM_THREADS={numba.config.NUMBA_NUM_THREADS} "
                       f"(set NUMBA_NUM_THREADS before starting for more)") from None


def _restart_info(path):
    """Settings and resolution stored in a restart file."""
    import xarray as xr
    p = Path(path)
    if not p.is_file():
        raise CLIError(f"--restart={path!r} is invalid: no such file")
    try:
        with xr.open_dataset(p) as ds:
            attrs = dict(ds.attrs)
        settings = json.loads(attrs["settings_json"])
        grid = json.loads(attrs["grid"])
    except Exception as exc:
        raise CLIError(f"--restart={path!r} is invalid: not a stommel restart file ({exc})") from None
    return settings, 60.0 / grid["nx"]


def _resolve(args):
    """Resolution, configuration and setting overrides from the arguments (and --restart)."""
    overrides = {}
    resolution = args.resolution
    if args.restart:
        stored, res = _restart_info(args.restart)
        overrides.update(stored)  # continue with the stored settings ...
        if resolution is None:
            resolution = res
    if resolution is None:
        resolution = 2.0
    for name, flag in OVERRIDES.items():  # ... unless given on the command line
        val = getattr(args, name)
        if val is not None:
            try:
                make_settings(args.config, **{name: val})
            except SettingsError as exc:
                raise CLIError(f"{flag}: {exc}") from None
            overrides[name] = val
    if args.seasonal is not None:
        overrides["seasonal"] = True
    settings = make_settings(args.config, **overrides)
    return resolution, settings


def _duration_steps(args, settings):
    from ocean_core.output import steps_for
    if args.steps is not None:
        return args.steps
    if args.days is not None:
        return steps_for(args.days * 86400.0, settings.dt_tracer, "--days")
    years = args.years if args.years is not None else 1.0
    return steps_for(years * settings.year_length, settings.dt_tracer, "--years")


def _versions():
    v = {"python": sys.version.split()[0], "platform": platform.platform()}
    for mod in ("numpy", "numba", "xarray", "netCDF4", "matplotlib", "scipy"):
        try:
            v[mod] = __import__(mod).__version__
        except Exception:
            v[mod] = None
    from stommel import __version__
    v["stommel"] = __version__
    try:  # the commit of a source checkout, if this is one
        root = Path(__file__).resolve().parents[1]
        r = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        v["git_commit"] = r.stdout.strip() if r.returncode == 0 else None
    except Exception:
        v["git_commit"] = None
    return v


def _numba_threads():
    import numba
    return numba.get_num_threads()


def _write_json(path, data):
    tmp = Path(str(path) + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def cmd_run(args):
    """``stommel run acc``: build, run with output, plot, summarise."""
    threads = args.threads
    if threads is None and "NUMBA_NUM_THREADS" not in os.environ:
        threads = 1  # measured: 2 threads were 6x slower than 1 at 2 degrees on a loaded 2-core machine
    _set_threads(threads)
    from ocean_core.output import check_output_dir

    resolution, settings = _resolve(args)
    steps = _duration_steps(args, settings)
    dt = settings.dt_tracer
    snap_every = steps_for_days(args.snapshot_days, dt, "--snapshot-days")
    avg_every = steps_for_days(args.average_days, dt, "--average-days")
    out = check_output_dir(args.out, args.overwrite)  # before any work, and before creating anything
    if (out / "run.json").exists() and not args.overwrite:
        raise CLIError(f"{out / 'run.json'} exists; pass --overwrite")

    # kernels load from here on
    from ocean_core import setups
    from ocean_core.model import ModelBlowUpError
    from ocean_core.output import OutputWriter, RunInterrupted, run_with_output

    model = setups.acc(resolution, config=args.config, backend=args.backend, **settings.asdict())
    if args.restart:
        model.load_restart(args.restart)
    out.mkdir(parents=True, exist_ok=True)
    model.output_dir = str(out)  # a blow-up writes its last good state here
    writer = OutputWriter(model, out, snapshot_every=snap_every, average_every=avg_every,
                          transport_every=args.transport_every, overwrite=args.overwrite)
    record = {
        "command": ["stommel"] + list(args.argv),
        "arguments": {k: v for k, v in vars(args).items() if k not in ("func", "argv", "accepts_extra")},
        "setup": "acc", "resolution": resolution, "config": args.config, "backend": args.backend,
        "grid": {"nx": model.grid.nx, "ny": model.grid.ny, "nz": model.grid.nz},
        "settings": settings.asdict(), "steps": steps, "start_itt": model.itt, "start_time_s": model.time,
        "snapshot_every_steps": snap_every, "average_every_steps": avg_every,
        "versions": _versions(), "numba_threads": _numba_threads(), "started": _dt.datetime.now().isoformat(timespec="seconds"),
        "status": "running",
    }
    run_json = out / "run.json"
    _write_json(run_json, record)
    print(f"stommel run acc: {steps} steps at {resolution:g} degrees ({model.grid.nx}x{model.grid.ny}x"
          f"{model.grid.nz}), config {args.config}, backend {args.backend}, from step {model.itt} -> {out}",
          flush=True)

    status = 0
    try:
        info = run_with_output(model, steps, writer, progress=False if args.no_progress else None)
    except ModelBlowUpError as exc:
        record.update(status="blew_up", error=str(exc), last_good_state=str(exc.restart_file), end_itt=model.itt)
        _write_json(run_json, record)
        print(f"stommel: error: the model blew up: {exc}", file=sys.stderr)
        return 3
    except RunInterrupted as exc:
        record.update(status="interrupted", error=str(exc), restart=str(exc.restart_file), end_itt=model.itt)
        _write_json(run_json, record)
        print(f"stommel: {exc}", file=sys.stderr)
        return 130
    record.update(status="completed", end_itt=model.itt, end_time_s=model.time,
                  wall_s=info["wall_s"], first_step_s=info["first_step_s"], ms_per_step=info["ms_per_step"],
                  final_transport_Sv=info["transport_Sv"],
                  restart=str(info.get("restart")), transport=str(info.get("transport")))
    plots = []
    if not args.no_plots:
        try:
            from ocean_core.plotting import plot_run
            plots = [str(p) for p in plot_run(out, overwrite=args.overwrite)]
        except Exception as exc:  # the run's results are on disk; report and fail softly
            record["plot_error"] = f"{type(exc).__name__}: {exc}"
            print(f"stommel: error: plotting failed: {record['plot_error']}", file=sys.stderr)
            status = 1
    record["plots"] = plots
    record["files"] = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    record["finished"] = _dt.datetime.now().isoformat(timespec="seconds")
    _write_json(run_json, record)
    _summary(model, info, out, writer, plots)
    return status


def steps_for_days(days, dt, flag):
    """Steps in ``days`` (0 -> 0, meaning off)."""
    if not days:
        return 0
    from ocean_core.output import steps_for
    return steps_for(days * 86400.0, dt, flag)


def _summary(model, info, out, writer, plots):
    n = info["steps_done"]
    years = n * model.settings.dt_tracer / model.settings.year_length
    snaps = sum(1 for p in writer.files if p.parent.name == "snapshots")
    avgs = sum(1 for p in writer.files if p.parent.name == "averages")
    print(f"done: {n} steps ({years:.3f} model years, now step {model.itt}, day {model.time / 86400:.1f})")
    print(f"  wall time {info['wall_s']:.1f} s (first step, incl. kernel compile/load: {info['first_step_s']:.1f} s); "
          f"{info['ms_per_step']:.2f} ms/step")
    print(f"  ACC transport at the end: {info['transport_Sv']:.2f} Sv")
    print(f"  output in {out}: {snaps} snapshots, {avgs} averages, transport.csv/.nc, "
          f"{Path(info['restart']).name if info.get('restart') else 'no restart'}, {len(plots)} plots, run.json")


# ---------------------------------------------------------------------------
# stommel plot
# ---------------------------------------------------------------------------

def cmd_plot(args):
    """``stommel plot DIR``."""
    from ocean_core.plotting import load_run, plot_run
    paths = plot_run(args.dir, out_dir=args.out, overwrite=args.overwrite)
    _, _, source = load_run(args.dir)
    if source:
        print(f"fields from {source}")
    for p in paths:
        print(f"wrote {p}")
    return 0


# ---------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------

def main(argv=None):
    """Run the ``stommel`` command line; returns the exit status."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_extra", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.argv = argv
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except (CLIError, SettingsError, FileExistsError, FileNotFoundError) as exc:
        print(f"stommel: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, RuntimeError) as exc:
        # invalid values found deeper down (e.g. backend='cuda' without a GPU, a restart for another grid)
        print(f"stommel: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
