"""Training data from stommel's ocean model: N-day means of the ACC set-up.

``stommel emulator make-data`` builds the ACC model (seasonal cycle on),
spins it up, then writes one NetCDF file per model year of N-day means
(``means_0000.nc``, ``means_0001.nc``, ...) plus ``grid.nc`` (masks,
coordinates, layer thickness) and ``meta.json`` into the output directory::

    temp, u, v, eke          (time, zt|zw, yt|yu, xt|xu)   float32
    salt                     only if it varies (constant 35 in the ACC set-up)
    psi                      (time, yu, xu)
    surface_taux, surface_tauy, t_star, forc_temp_surface   (time, y, x)

Global attributes: ``average_days``, ``year_length_days``, ``resolution``,
``seasonal``, ``spinup_years``, ``dt_tracer``.  ``restart.nc`` and
``progress.json`` hold the resume point of an interrupted run (``--resume``).  The series is split into
train/validation/test periods by time at training time
(:func:`emulator.data.split_by_years`); ``meta.json`` records the suggested
split given on the command line.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time

import numpy as np

SAVED_VARS = ("temp", "salt", "u", "v", "psi", "eke", "surface_taux", "surface_tauy",
              "t_star", "forc_temp_surface")
GRID_VARS = ("maskT", "maskU", "maskV", "maskW")
SECONDS_PER_DAY = 86400.0


def default_model_factory(resolution, backend, seasonal=True, config="paper", **overrides):
    """The real ocean model: ``ocean_core.setups.acc(...)`` (``overrides``: settings such as
    ``dt_mom`` and ``dt_tracer``).

    Raises
    ------
    RuntimeError
        If ``ocean_core.setups.acc`` is not available.
    """
    try:
        from ocean_core import setups  # noqa: PLC0415
        acc = setups.acc
    except Exception as exc:  # pragma: no cover - depends on the checkout
        raise RuntimeError("make-data needs the ocean model (ocean_core.setups.acc), which "
                           f"cannot be imported: {exc}") from exc
    return acc(resolution=resolution, config=config, backend=backend, seasonal=seasonal, **overrides)


def _log(msg, stream):
    if stream is not None:
        print(time.strftime("%H:%M:%S"), msg, file=stream, flush=True)


def year_length_days(model):
    """Length of the model's seasonal cycle in days (``settings.year_length`` if the
    model has one, in days or seconds; else 365)."""
    s = getattr(model, "settings", None)
    for name in ("year_length_days", "year_length"):
        v = getattr(s, name, None)
        if v:
            v = float(v)
            return v / SECONDS_PER_DAY if v > 1e4 else v
    return 365.0


def prepare_output(out, overwrite):
    """Create the output directory; refuse a non-empty one unless ``overwrite``.

    Raises
    ------
    FileExistsError
        If ``out`` exists, is not empty and ``overwrite`` is False.
    """
    if os.path.exists(out):
        if os.path.isfile(out) or os.listdir(out):
            if not overwrite:
                raise FileExistsError(f"output {out!r} exists and is not empty; pass --overwrite "
                                      f"to replace it")
            if os.path.isfile(out):
                os.remove(out)
            else:
                shutil.rmtree(out)
    os.makedirs(out, exist_ok=True)


def _run(model, steps):
    """``model.run(steps)`` without the model's own progress bar when it has one."""
    try:
        model.run(steps=steps, progress=False)
    except TypeError:
        model.run(steps=steps)


def _time_average(model, steps):
    """Mean over ``steps`` steps of the saved variables (all variables if the model
    does not take a variable list)."""
    try:
        return model.time_average(steps=steps, variables=SAVED_VARS)
    except TypeError:
        return model.time_average(steps=steps)


def _save_restart(model, out, progress):
    """Atomically write ``restart.nc`` and ``progress.json`` (the resume point)."""
    if not hasattr(model, "save_restart"):
        return
    tmp = os.path.join(out, ".restart.part.nc")
    if os.path.exists(tmp):
        os.remove(tmp)
    model.save_restart(tmp)
    os.replace(tmp, os.path.join(out, "restart.nc"))
    with open(os.path.join(out, ".progress.json.part"), "w") as f:
        json.dump(progress, f)
    os.replace(os.path.join(out, ".progress.json.part"), os.path.join(out, "progress.json"))


def generate(out, *, resolution=1.0, years=28, spinup_years=10.0, average_days=5.0,
             backend="cpu", overwrite=False, resume=False, model_factory=None, split=(20, 0, 8),
             log=sys.stdout, config="paper", dt=None, wind_noise=0.0, wind_noise_days=30.0, wind_noise_seed=0,
             initial_state=None):
    """Run the ACC model and write N-day means (see the module docstring).

    Parameters
    ----------
    out : str
        Output directory.
    resolution : float
        Grid spacing in degrees (``nx = 60 / r``, ``ny = 84 / r``).
    years : float
        Model years of means to write after the spin-up.
    spinup_years : float
        Model years run (and discarded) first.
    average_days : float
        Averaging window N (days); must be a whole number of time steps.
    backend : str
        Ocean-model backend.
    overwrite : bool
        Replace a non-empty output directory.
    resume : bool
        Continue an interrupted run in ``out`` from its last restart file
        (written after every tenth of a spin-up year and every year of means);
        the arguments must match those of the interrupted run.
    model_factory : callable, optional
        ``factory(resolution, backend, seasonal=True, config=...)`` returning a
        model with ``settings.dt_tracer``, ``run(steps)``, ``time_average(steps)``
        and ``snapshot()`` (and ``save_restart``/``load_restart`` for resuming);
        default :func:`default_model_factory`.
    split : (train, val, test) years
        Recorded in ``meta.json`` as the suggested split.
    dt : float, optional
        Time step in seconds for momentum and tracers (``dt_mom = dt_tracer``);
        default: the configuration's (1200 s in ``"paper"``).
    wind_noise, wind_noise_days, wind_noise_seed : float, float, int
        Red-noise wind-stress anomaly on top of the seasonal cycle (settings of the same names,
        :class:`ocean_core.settings.Settings`): relative standard deviation (0: none), e-folding
        time in days and seed.  It gives the data forced interannual variability, which the
        emulator sees through its wind-stress forcing channels.
    initial_state : str, optional
        A restart file (``stommel run --out``, or the ``restart.nc`` of an earlier make-data run) to start
        from instead of the model's initial state, e.g. a state already spun up for decades; the model
        time continues from it.  Read once at the start (a resumed run continues from its own restart).

    Returns
    -------
    dict
        The metadata written to ``meta.json``.
    """
    import xarray as xr  # noqa: PLC0415

    for name, v in (("resolution", resolution), ("years", years), ("average_days", average_days)):
        if not v > 0:
            raise ValueError(f"{name}={v} must be > 0")
    if spinup_years < 0:
        raise ValueError(f"spinup_years={spinup_years} must be >= 0")
    if dt is not None and not dt > 0:
        raise ValueError(f"dt={dt} must be > 0 (seconds)")
    args = {"resolution": float(resolution), "years": float(years),
            "spinup_years": float(spinup_years), "average_days": float(average_days),
            "config": config, "dt": None if dt is None else float(dt)}
    if initial_state is not None:
        if not os.path.isfile(initial_state):
            raise FileNotFoundError(f"initial_state={initial_state!r}: no such restart file")
        args["initial_state"] = os.path.abspath(initial_state)
    # the wind-noise settings: recorded (progress, attributes) only when on, so that runs started
    # before the option still resume
    noise = ({"wind_noise": float(wind_noise), "wind_noise_days": float(wind_noise_days),
              "wind_noise_seed": int(wind_noise_seed)} if wind_noise else {})
    args.update(noise)
    progress = {"args": args, "spinup_steps": 0, "years_written": 0, "salt_varies": None,
                "salt_ref": None, "model_seconds": 0.0}
    prog_path = os.path.join(out, "progress.json")
    # resuming needs the same arguments: the restart file only holds the model state
    if resume and os.path.exists(prog_path):
        with open(prog_path) as f:
            progress = json.load(f)
        if progress["args"] != args:
            raise ValueError(f"cannot resume {out!r}: it was started with {progress['args']}, "
                             f"this call asks for {args}")
    else:
        resume = False
        prepare_output(out, overwrite)
    factory = model_factory or default_model_factory
    t0 = time.perf_counter()
    overrides = {} if dt is None else {"dt_mom": float(dt), "dt_tracer": float(dt)}
    overrides.update(noise)
    model = factory(resolution, backend, seasonal=True, config=config, **overrides)
    if initial_state is not None and not resume:
        model.load_restart(initial_state)
        _log(f"initial state from {initial_state}", log)
    if resume:
        model.load_restart(os.path.join(out, "restart.nc"))
        _log(f"resuming from {out}/restart.nc: {progress['spinup_steps']} spin-up steps, "
             f"{progress['years_written']} years written", log)
    # every mean must cover a whole number of steps and a year a whole number of means
    dt = float(model.settings.dt_tracer)
    steps_per_mean = average_days * SECONDS_PER_DAY / dt
    if abs(steps_per_mean - round(steps_per_mean)) > 1e-9:
        raise ValueError(f"average_days={average_days} is not a whole number of time steps "
                         f"(dt_tracer={dt} s)")
    steps_per_mean = int(round(steps_per_mean))
    ylen = year_length_days(model)
    means_per_year = ylen / average_days
    if abs(means_per_year - round(means_per_year)) > 1e-9:
        raise ValueError(f"average_days={average_days} does not divide the {ylen}-day year")
    means_per_year = int(round(means_per_year))
    steps_per_year = steps_per_mean * means_per_year
    _log(f"model built in {time.perf_counter() - t0:.1f} s: dt={dt} s, {steps_per_mean} steps per "
         f"{average_days}-day mean, {means_per_year} means per {ylen}-day year", log)
    attrs = {"average_days": float(average_days), "year_length_days": float(ylen),
             "resolution": float(resolution), "seasonal": 1, "spinup_years": float(spinup_years),
             "dt_tracer": dt, "source": "stommel ocean_core ACC, written by emulator.make_data"}
    attrs.update(noise)
    if not os.path.exists(os.path.join(out, "grid.nc")):
        _write_grid(model.snapshot(), os.path.join(out, "grid.nc"), model, attrs)
    # spin-up, in chunks of a tenth of a year (progress and a restart point each)
    spin_steps = int(round(spinup_years * steps_per_year))
    chunk = max(steps_per_year // 10, 1)
    t_spin = time.perf_counter()
    while progress["spinup_steps"] < spin_steps:
        n = min(chunk, spin_steps - progress["spinup_steps"])
        t1 = time.perf_counter()
        _run(model, n)
        progress["model_seconds"] += time.perf_counter() - t1
        progress["spinup_steps"] += n
        _save_restart(model, out, progress)
        el = time.perf_counter() - t_spin
        _log(f"spin-up {progress['spinup_steps'] / steps_per_year:.2f}/{spinup_years:g} years, "
             f"{el:.0f} s ({progress['model_seconds'] / progress['spinup_steps'] * steps_per_year:.0f}"
             f" s per model year)", log)
    n_total = int(round(years * means_per_year))
    n_years = -(-n_total // means_per_year)
    t_run = time.perf_counter()
    first_year = progress["years_written"]
    for year in range(first_year, n_years):
        recs = []
        t1 = time.perf_counter()
        for j in range(min(means_per_year, n_total - year * means_per_year)):
            ds = _time_average(model, steps_per_mean)
            if progress["salt_varies"] is None and "salt" in ds:
                ref, varies = _salt_check(ds, model.snapshot())
                progress["salt_ref"], progress["salt_varies"] = ref, varies
                _log("salt varies: keeping it" if varies else
                     f"salt is constant ({ref:g}) over wet points: not written", log)
            recs.append(_select(ds, keep_salt=bool(progress["salt_varies"])))
        # one file per model year, written under a temporary name and renamed
        yr = xr.concat(recs, dim="time", data_vars="all", coords="minimal",
                       compat="override", join="override")
        yr.attrs.update(attrs)
        if progress["salt_varies"] is False:
            yr.attrs["salt_constant"] = float(progress["salt_ref"])
        path = os.path.join(out, f"means_{year:04d}.nc")
        yr.to_netcdf(path + ".part")
        os.replace(path + ".part", path)
        progress["model_seconds"] += time.perf_counter() - t1
        progress["years_written"] = year + 1
        _save_restart(model, out, progress)
        el = time.perf_counter() - t_run
        done_y = year + 1 - first_year
        _log(f"wrote {path}: {min((year + 1) * means_per_year, n_total)}/{n_total} means, "
             f"{el:.0f} s this session ({el / max(done_y, 1e-9):.0f} s per model year)", log)
    model_years = progress["spinup_steps"] / steps_per_year + n_total / means_per_year
    meta = dict(attrs)
    meta.update({"years": float(years), "n_means": n_total, "means_per_year": means_per_year,
                 "steps_per_mean": steps_per_mean, "salt_written": bool(progress["salt_varies"]),
                 "model_seconds_per_year": progress["model_seconds"] / max(model_years, 1e-12),
                 "backend": backend,
                 "suggested_split_years": {"train": split[0], "val": split[1], "test": split[2]},
                 "wall_seconds_last_session": time.perf_counter() - t0})
    if progress["salt_varies"] is False:
        meta["salt_constant"] = float(progress["salt_ref"])
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    return meta


def _salt_check(ds, grid, tol=1e-10):
    """``(reference value, varies?)`` of salt over wet points of one record
    (``grid`` supplies ``maskT``)."""
    s = np.asarray(ds["salt"].values, np.float64)
    m = np.asarray(grid["maskT"].values) > 0
    vals = s[m]
    ref = float(vals.mean())
    return ref, bool(np.abs(vals - ref).max() > tol * max(1.0, abs(ref)))


def _select(ds, keep_salt):
    """Keep the saved variables of one mean as float32 with a length-1 time axis."""
    keep = [v for v in SAVED_VARS if v in ds and (v != "salt" or keep_salt)]
    sub = ds[keep]
    # drop scalar diagnostics (e.g. the step counter) that would clash between records
    sub = sub.drop_vars([c for c in sub.coords if c not in sub.dims and c != "time"])
    sub = sub.astype(np.float32)
    if "time" not in sub.dims:
        sub = sub.expand_dims("time")
    return sub


def _write_grid(ds, path, model, attrs):
    """Masks, coordinates and (if the model has it) the layer thickness ``dzt``."""
    import xarray as xr  # noqa: PLC0415

    g = xr.Dataset({m: ds[m].astype(np.int8) for m in GRID_VARS if m in ds})
    dzt = None
    for obj in (getattr(model, "grid", None), getattr(model, "settings", None), model):
        v = getattr(obj, "dzt", None) if obj is not None else None
        if v is not None:
            dzt = np.asarray(v, np.float64).ravel()
            break
    if dzt is not None and "zt" in ds.sizes and dzt.size == ds.sizes["zt"]:
        g["dzt"] = ("zt", dzt)
    for c in ("xt", "xu", "yt", "yu", "zt", "zw"):
        if c in ds.coords:
            g = g.assign_coords({c: ds[c]})
    g.attrs.update(attrs)
    g.to_netcdf(path)
