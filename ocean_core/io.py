"""Output: xarray snapshots and time averages (CF attributes, halos removed),
netCDF restart files that continue a run bit for bit, and safe file naming.

Dimensions are named after their grid points (``xt``/``xu``, ``yt``/``yu``,
``zt``/``zw``); variables carry Veros's names.  ``zt``/``zw`` are negative
downward and index 0 is the bottom level, as in Veros.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import xarray as xr

from .variables import COORDS, PROGNOSTIC, VARIABLES

__all__ = ["snapshot", "time_average", "write_restart", "read_restart", "unique_path", "SNAPSHOT_VARIABLES",
           "safe_to_netcdf"]

#: variables of a snapshot (newest state and the diagnosed fields of the last step)
SNAPSHOT_VARIABLES = ("u", "v", "w", "temp", "salt", "psi", "eke", "rho", "Nsqr", "kappaH", "K_gm", "L_rossby",
                      "eke_len", "K_diss_h", "surface_taux", "surface_tauy", "forc_temp_surface", "t_star")
#: static fields added to every snapshot
STATIC_VARIABLES = ("maskT", "maskU", "maskV", "maskW", "ht", "coriolis_t")


def _coords(grid):
    c = {}
    for name, (units, long_name, std) in COORDS.items():
        vals = getattr(grid, name)
        if name[0] in "xy":
            vals = vals[2:-2]
        attrs = {"units": units, "long_name": long_name}
        if std in ("longitude", "latitude"):
            attrs["standard_name"] = std
        if name[0] == "z":
            attrs["positive"] = "up"
            attrs["axis"] = "Z"
        elif name[0] == "x":
            attrs["axis"] = "X"
        else:
            attrs["axis"] = "Y"
        c[name] = xr.DataArray(np.asarray(vals, dtype=np.float64), dims=(name,), attrs=attrs)
    return c


def _strip(a, dims):
    s = tuple(slice(2, -2) if d[0] in "xy" else slice(None) for d in dims)
    return np.asarray(a)[s]


def snapshot(model, variables=None, include_static=True):
    """Newest state of ``model`` as an :class:`xarray.Dataset` without halos.

    Prognostic variables are taken at the newest time level (``tau`` after the step);
    diagnosed fields (kappaH, K_gm, forc_temp_surface, ...) are those of the last step.
    """
    names = tuple(variables) if variables is not None else SNAPSHOT_VARIABLES
    unknown = [n for n in names if n not in VARIABLES]
    if unknown:
        raise ValueError(f"variables={unknown} unknown: allowed are {sorted(VARIABLES)}")
    g = model.grid
    data = {}
    for n in names + (STATIC_VARIABLES if include_static else ()):
        meta = VARIABLES[n]
        a = model.get(n)
        attrs = {"units": meta.units, "long_name": meta.long_name}
        if meta.standard_name:
            attrs["standard_name"] = meta.standard_name
        data[n] = xr.DataArray(_strip(a, meta.dims), dims=meta.dims, attrs=attrs)
    ds = xr.Dataset(data, coords=_coords(g))
    # plain seconds (not "seconds since ..."): readers do not need cftime to open the file
    ds = ds.assign_coords(time=xr.DataArray(float(model.time), attrs={"units": "s",
                                                                       "long_name": "model time since start"}),
                          itt=xr.DataArray(int(model.itt), attrs={"long_name": "time steps done"}))
    ds.attrs.update(_global_attrs(model))
    ds.attrs["acc_transport_Sv"] = model.transport()
    return ds


def _global_attrs(model):
    return {
        "Conventions": "CF-1.8",
        "title": f"stommel {model.name}",
        "source": "stommel ocean_core (Veros 1.7 / pyOM2 numerics)",
        "settings_json": json.dumps(model.settings.asdict()),
        "backend": model.backend.name,
    }


def time_average(model, steps, variables=None):
    """Run ``steps`` steps and return the mean over them of the snapshot variables.

    The mean includes the state after every step (``steps`` samples); the ``time``
    coordinate is the centre of the averaging window.
    """
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps={steps!r} is invalid: must be an integer >= 1")
    names = tuple(variables) if variables is not None else SNAPSHOT_VARIABLES
    if "psi" not in names:
        names = names + ("psi",)
    acc = {n: 0.0 for n in names}
    t0 = model.time
    F = model.fields

    def add(m):
        # accumulate on the backend (no host transfer per step)
        for n in names:
            key = f"{n}@tau" if VARIABLES[n].time_levels else n
            acc[n] = acc[n] + F[key]

    model.run(steps, callback=add)
    ds = snapshot(model, names)
    be = model.backend
    for n in names:
        ds[n].values[...] = _strip(be.to_numpy(acc[n]) / steps, VARIABLES[n].dims)
    ds = ds.assign_coords(time=xr.DataArray(0.5 * (t0 + model.time), attrs=ds["time"].attrs))
    ds.attrs["averaging_window_s"] = float(model.time - t0)
    ds.attrs["averaging_samples"] = int(steps)
    psi = be.to_numpy(acc["psi"]) / steps
    ds.attrs["acc_transport_Sv"] = float(psi[1, 2] - psi[model.grid.ny + 1, 2]) / 1e6
    return ds


def unique_path(path):
    """``path`` if it does not exist, else ``path`` with ``_1``, ``_2``, ... before the suffix."""
    path = Path(path)
    if not path.exists():
        return path
    for n in range(1, 100000):
        p = path.with_name(f"{path.stem}_{n}{path.suffix}")
        if not p.exists():
            return p
    raise FileExistsError(f"no free file name for {path}")


def safe_to_netcdf(ds, path, overwrite=False, encoding=None):
    """Write a dataset; refuse to replace an existing file unless ``overwrite``.

    Writes to a temporary file first and renames, so a crash never leaves half a file
    under the final name.  ``encoding`` is passed to :meth:`xarray.Dataset.to_netcdf`
    (e.g. ``{"temp": {"zlib": True, "complevel": 1}}``).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; refusing to overwrite it (pass overwrite=True or choose another path)")
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    try:
        ds.to_netcdf(tmp, encoding=encoding)
    except BaseException:
        tmp.unlink(missing_ok=True)  # no stray temporary file after a failed write
        raise
    os.replace(tmp, path)
    return path


# ---------------------------------------------------------------------------
# restart files
# ---------------------------------------------------------------------------

def write_restart(model, path, overwrite=False):
    """Write everything a step reads (all time levels, with halos) and the parameter fields.

    Reading it back with :func:`read_restart` into a model built with the same setup and
    settings continues the run bit for bit.
    """
    F = model.fields
    be = model.backend
    lv = F.levels
    order = [lv["taum1"], lv["tau"], lv["taup1"]]
    data = {}
    for n in PROGNOSTIC:
        a = be.to_numpy(F.arrays[n])[order]
        dims = ("level",) + tuple(d + "_h" if d[0] in "xy" else d for d in VARIABLES[n].dims)
        data[n] = (dims, a)
    for n in ("A_h_t", "r_bot_t", "kappaM", "surface_taux", "surface_tauy", "t_star", "t_rest",
              "forc_salt_surface") + (("surface_taux_base", "surface_tauy_base", "t_star_base")
                                       if model.settings.time_dependent_forcing else ()):
        dims = tuple(d + "_h" if d[0] in "xy" else d for d in VARIABLES[n].dims)
        data[n] = (dims, be.to_numpy(F.arrays[n]))
    ds = xr.Dataset(data, coords={"level": ["taum1", "tau", "taup1"]})
    ds.attrs.update(_global_attrs(model))
    ds.attrs["itt"] = int(model.itt)
    ds.attrs["time"] = repr(float(model.time))
    ds.attrs["grid"] = json.dumps({"nx": model.grid.nx, "ny": model.grid.ny, "nz": model.grid.nz})
    return safe_to_netcdf(ds, path, overwrite=overwrite)


def read_restart(model, path):
    """Load a restart file written by :func:`write_restart` into ``model`` (same grid required)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"restart file {path} does not exist")
    with xr.open_dataset(path) as ds:
        ds.load()
    grid = json.loads(ds.attrs["grid"])
    g = model.grid
    if (grid["nx"], grid["ny"], grid["nz"]) != (g.nx, g.ny, g.nz):
        raise ValueError(f"restart file {path} is for a {grid['nx']}x{grid['ny']}x{grid['nz']} grid, "
                         f"the model is {g.nx}x{g.ny}x{g.nz}")
    F = model.fields
    be = model.backend
    F.levels.update({"taum1": 0, "tau": 1, "taup1": 2})
    for n in PROGNOSTIC:
        F.arrays[n][...] = be.asarray(ds[n].values)
    for n in ("A_h_t", "r_bot_t", "kappaM", "surface_taux", "surface_tauy", "t_star", "t_rest",
              "forc_salt_surface", "surface_taux_base", "surface_tauy_base", "t_star_base"):
        if n in ds:
            F.arrays[n][...] = be.asarray(ds[n].values)
    model.itt = int(ds.attrs["itt"])
    model.time = float(ds.attrs["time"])
    return model
