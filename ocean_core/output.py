"""Output of a model run: snapshot files, running time averages, the ACC transport
series and a restart file at the end.

:class:`OutputWriter` is a per-step callback for :meth:`ocean_core.model.Model.run`;
:func:`run_with_output` drives a run with it (progress bar, timing, blow-up and
interrupt handling).  The ``stommel run`` command line is a thin layer over both.

Layout of an output directory::

    DIR/snapshots/snapshot_itt00000720.nc   newest state every ``snapshot_every`` steps
    DIR/averages/average_itt00000001-00026280.nc
                                            mean over every step of each window
    DIR/transport.csv, DIR/transport.nc     ACC transport [Sv] every ``transport_every`` steps
    DIR/restart_itt00026280.nc              state at the end (continues bit for bit)

Schedules are aligned to the absolute step counter ``model.itt``, so a run continued
from a restart file writes its snapshots at the same model times as an uninterrupted
run.  Averaging windows are ``[k N + 1, (k + 1) N]`` in steps; a window cut short
(the run ends or starts inside it) is still written, flagged ``partial = 1``.

Time averages are accumulated on the model's backend (no host transfer per step) and
the transport values go into a backend buffer that is copied to the host in blocks.
"""

from __future__ import annotations

import math
import time as _time
from pathlib import Path

import numpy as np
import xarray as xr

from . import io as oio
from .variables import VARIABLES

__all__ = ["OutputWriter", "run_with_output", "check_output_dir", "steps_for", "RunInterrupted"]

#: transport values held on the backend before they are copied to the host
_TRANSPORT_BLOCK = 4096
#: zlib level for snapshot/average files (masks and land compress well; 1 is fast)
_COMPLEVEL = 1


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`run_with_output`; ``.restart_file`` holds the state reached."""

    def __init__(self, msg, restart_file=None):
        super().__init__(msg)
        self.restart_file = restart_file


def check_output_dir(path, overwrite=False):
    """Refuse to write into an existing non-empty directory unless ``overwrite``.

    Parameters
    ----------
    path : str or Path
    overwrite : bool
        Allow a non-empty directory; files of the same names are then replaced.

    Returns
    -------
    Path
        The directory (not created here).

    Raises
    ------
    FileExistsError
        ``path`` is a file, or a non-empty directory and ``overwrite`` is false.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise FileExistsError(f"output directory {str(p)!r} exists and is a file; choose another --out")
    # an empty directory (e.g. made by the user for the run) is fine
    if p.is_dir() and any(p.iterdir()) and not overwrite:
        raise FileExistsError(f"output directory {str(p)!r} is not empty; refusing to write into it "
                              f"(choose another --out, or pass --overwrite to replace files of the same names)")
    return p


def steps_for(seconds, dt, what="duration"):
    """Number of time steps of length ``dt`` in ``seconds`` (rounded, must be >= 1).

    Raises
    ------
    ValueError
        If the duration is not finite or shorter than half a step.
    """
    if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"{what}={seconds!r} s is invalid: must be a finite number > 0")
    n = int(round(seconds / dt))
    if n < 1:
        raise ValueError(f"{what}={seconds:g} s is invalid: shorter than one time step (dt_tracer={dt:g} s)")
    return n


class OutputWriter:
    """Per-step output of a model run; pass it as ``callback`` to :meth:`Model.run`.

    Parameters
    ----------
    model : Model
    out_dir : str or Path
        Created if missing.  Check it first with :func:`check_output_dir`.
    snapshot_every : int or None
        Steps between snapshot files (``None`` or 0: none).
    average_every : int or None
        Steps per averaging window (``None`` or 0: no averages).
    transport_every : int
        Steps between entries of the transport series (0: none).
    variables : sequence of str, optional
        Snapshot / average variables (default :data:`ocean_core.io.SNAPSHOT_VARIABLES`).
    overwrite : bool
        Replace existing files of the same names (otherwise :class:`FileExistsError`).

    Attributes
    ----------
    files : list of Path
        Every file written so far.
    """

    def __init__(self, model, out_dir, snapshot_every=None, average_every=None, transport_every=1,
                 variables=None, overwrite=False):
        for name, val in (("snapshot_every", snapshot_every), ("average_every", average_every),
                          ("transport_every", transport_every)):
            if val is not None and (not isinstance(val, (int, np.integer)) or val < 0):
                raise ValueError(f"{name}={val!r} is invalid: must be an integer number of steps >= 0")
        names = tuple(variables) if variables is not None else oio.SNAPSHOT_VARIABLES
        unknown = [n for n in names if n not in VARIABLES]
        if unknown:
            raise ValueError(f"variables={unknown} unknown: allowed are {sorted(VARIABLES)}")
        unstored = [n for n in names if n in getattr(model, "internal_fields", ())]
        if unstored:
            raise ValueError(f"variables={unstored} are not stored by the fused step (kept in registers); "
                             "build the model with fused=False to write them")
        self.model = model
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.snapshot_every = int(snapshot_every or 0)
        self.average_every = int(average_every or 0)
        self.transport_every = int(transport_every or 0)
        self.variables = names
        self.overwrite = bool(overwrite)
        self.files: list[Path] = []
        be = model.backend
        F = model.fields
        # running sums of the averaged fields, on the backend
        self._avg_names = names + (() if "psi" in names else ("psi",))
        self._sums = {}
        if self.average_every:
            for n in self._avg_names:
                self._sums[n] = be.xp.zeros_like(F[self._key(n)])
        self._nsum = 0
        self._t_window = model.time  # model time at the start of the current window
        self._itt_window = model.itt + 1
        # transport series: values in a backend buffer, step and time on the host
        self._tbuf = be.zeros((_TRANSPORT_BLOCK,))
        self._tn = 0
        self._t_itt: list[int] = []
        self._t_time: list[float] = []
        self._t_vals: list[float] = []
        self._csv = None
        # the CSV is appended during the run, so a crash still leaves the series so far
        if self.transport_every:
            self._csv_path = self._claim(self.out / "transport.csv")
            self._csv = open(self._csv_path, "w", encoding="utf-8")
            self._csv.write("itt,time_s,time_days,transport_Sv\n")
            self.files.append(self._csv_path)
        self.closed = False

    # ------------------------------------------------------------------
    @staticmethod
    def _key(n):
        return f"{n}@tau" if VARIABLES[n].time_levels else n

    def _claim(self, path):
        """``path`` if it may be written (new, or ``overwrite``), else FileExistsError."""
        path = Path(path)
        if path.exists() and not self.overwrite:
            raise FileExistsError(f"{path} exists; refusing to overwrite it (pass --overwrite / overwrite=True)")
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def _write(self, ds, path):
        enc = {n: {"zlib": True, "complevel": _COMPLEVEL} for n in ds.data_vars}
        oio.safe_to_netcdf(ds, self._claim(path), overwrite=self.overwrite, encoding=enc)
        self.files.append(Path(path))
        return Path(path)

    # ------------------------------------------------------------------
    def __call__(self, model):
        """Record the state after a step (``model.itt`` steps done)."""
        itt = model.itt
        F = model.fields
        if self.transport_every and itt % self.transport_every == 0:
            # the same formula as Model.transport(), evaluated on the backend
            psi = F["psi@tau"]
            self._tbuf[self._tn] = psi[1, 2] - psi[model.grid.ny + 1, 2]
            self._t_itt.append(itt)
            self._t_time.append(model.time)
            self._tn += 1
            if self._tn == _TRANSPORT_BLOCK:
                self.flush()
        if self.average_every:
            for n, s in self._sums.items():
                s += F[self._key(n)]  # in place, on the backend
            self._nsum += 1
            if itt % self.average_every == 0:
                self.write_average()
        if self.snapshot_every and itt % self.snapshot_every == 0:
            self.write_snapshot()

    def write_snapshot(self):
        """Write the newest state to ``snapshots/snapshot_itt########.nc``."""
        ds = oio.snapshot(self.model, self.variables)
        return self._write(ds, self.out / "snapshots" / f"snapshot_itt{self.model.itt:08d}.nc")

    def write_average(self):
        """Write the mean over the current window (if it has samples) and start a new one."""
        n = self._nsum
        if n == 0:
            return None
        m = self.model
        be = m.backend
        # a snapshot supplies coordinates and attributes; its values are replaced by the means
        ds = oio.snapshot(m, self.variables)
        for name in self.variables:
            ds[name].values[...] = oio._strip(be.to_numpy(self._sums[name]) / n, VARIABLES[name].dims)
        # transport of the mean streamfunction (psi is linear, so also the mean transport)
        psi = be.to_numpy(self._sums["psi"]) / n
        t0, t1 = self._t_window, m.time
        ds = ds.assign_coords(time=xr.DataArray(0.5 * (t0 + t1), attrs=ds["time"].attrs))
        ds.attrs["acc_transport_Sv"] = float(psi[1, 2] - psi[m.grid.ny + 1, 2]) / 1e6
        ds.attrs["averaging_window_s"] = float(t1 - t0)
        ds.attrs["averaging_start_s"] = float(t0)
        ds.attrs["averaging_end_s"] = float(t1)
        ds.attrs["averaging_samples"] = int(n)
        ds.attrs["averaging_first_itt"] = int(self._itt_window)
        ds.attrs["averaging_last_itt"] = int(m.itt)
        ds.attrs["partial"] = int(n != self.average_every)
        path = self._write(ds, self.out / "averages" / f"average_itt{self._itt_window:08d}-{m.itt:08d}.nc")
        # next window
        for s in self._sums.values():
            s[...] = 0.0
        self._nsum = 0
        self._t_window = m.time
        self._itt_window = m.itt + 1
        return path

    def flush(self):
        """Copy buffered transport values to the host and append them to ``transport.csv``."""
        if self._tn == 0:
            return
        # one device-to-host copy per block, not per step
        vals = self.model.backend.to_numpy(self._tbuf[: self._tn]) / 1e6
        start = len(self._t_vals)
        self._t_vals.extend(float(v) for v in vals)
        if self._csv is not None:
            lines = []
            for k in range(start, len(self._t_vals)):
                t = self._t_time[k]
                # repr() keeps every digit, so the CSV round-trips exactly
                lines.append(f"{self._t_itt[k]},{t!r},{t / 86400.0!r},{self._t_vals[k]!r}\n")
            self._csv.write("".join(lines))
            self._csv.flush()
        self._tn = 0

    def transport_series(self):
        """The transport series so far as an :class:`xarray.Dataset` (``transport`` in Sv over ``time``)."""
        self.flush()
        time = np.asarray(self._t_time, dtype=np.float64)
        ds = xr.Dataset(
            {"transport": ("time", np.asarray(self._t_vals, dtype=np.float64),
                           {"units": "Sv", "long_name": "ACC transport (psi south wall - psi north wall)"})},
            coords={"time": ("time", time, {"units": "s", "long_name": "model time since start"}),
                    "itt": ("time", np.asarray(self._t_itt, dtype=np.int64), {"long_name": "time steps done"}),
                    "time_days": ("time", time / 86400.0, {"units": "days", "long_name": "model time"})})
        ds.attrs.update(oio._global_attrs(self.model))
        return ds

    def close(self, restart=True):
        """Flush everything: partial average, ``transport.nc`` and (if ``restart``) the restart file.

        Returns
        -------
        dict
            ``{"restart": path or None, "transport": path or None}``.
        """
        if self.closed:
            return {}
        self.closed = True
        res = {"restart": None, "transport": None}
        try:
            # a window cut short by the end of the run is still written (flagged partial)
            if self.average_every and self._nsum:
                self.write_average()
            if self.transport_every:
                self.flush()
                res["transport"] = self._write(self.transport_series(), self.out / "transport.nc")
            if restart:
                res["restart"] = self.write_restart()
        finally:
            if self._csv is not None:
                self._csv.close()
        return res

    def write_restart(self):
        """Write ``restart_itt########.nc`` (continues the run bit for bit)."""
        path = self._claim(self.out / f"restart_itt{self.model.itt:08d}.nc")
        oio.write_restart(self.model, path, overwrite=self.overwrite)
        self.files.append(path)
        return path


def run_with_output(model, steps, writer=None, progress=None, chunk=72):
    """Run ``steps`` steps with ``writer`` as callback, a progress bar and timing.

    Parameters
    ----------
    model : Model
    steps : int
    writer : OutputWriter, optional
        Closed at the end (restart written) or on a blow-up / interrupt (no restart:
        the model writes its last good state itself).
    progress : bool, optional
        Progress bar with model day and transport (default: more than 2000 steps).
    chunk : int
        Steps between progress updates.

    Returns
    -------
    dict
        ``steps``, ``wall_s`` (all stepping), ``first_step_s`` (includes loading or
        compiling the kernels), ``ms_per_step`` (after the first step), ``transport_Sv``,
        ``restart`` and ``transport`` paths.

    Raises
    ------
    ModelBlowUpError
        From the model (its ``restart_file`` holds the last good state).
    RunInterrupted
        On Ctrl-C, after writing the state reached to a restart file.
    """
    if not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps={steps!r} is invalid: must be an integer >= 0")
    steps = int(steps)
    show = steps > 2000 if progress is None else bool(progress)
    bar = None
    if show:
        from tqdm.auto import tqdm
        bar = tqdm(total=steps, desc=f"{model.name}", unit="step", mininterval=1.0, dynamic_ncols=True)
    info = {"steps": steps, "first_step_s": 0.0, "wall_s": 0.0, "ms_per_step": float("nan")}
    done = 0
    itt0 = model.itt
    t_start = _time.perf_counter()
    ok = False
    try:
        if steps:
            # the first step loads (or compiles) every kernel: time it separately
            model.run(1, progress=False, callback=writer)
            info["first_step_s"] = _time.perf_counter() - t_start
            done = 1
            if bar is not None:
                bar.update(1)
        t1 = _time.perf_counter()
        while done < steps:
            n = min(chunk, steps - done)
            model.run(n, progress=False, callback=writer)
            done += n
            if bar is not None:
                bar.update(n)
                bar.set_postfix_str(f"day {model.time / 86400:.1f}, ACC {model.transport():.1f} Sv", refresh=False)
        rest = _time.perf_counter() - t1
        if steps > 1:
            info["ms_per_step"] = 1e3 * rest / (steps - 1)
        ok = True
    except KeyboardInterrupt:
        # a step only writes the new level and its own tendencies, so the state
        # before the interrupted step is intact and can be written
        path = oio.unique_path(Path(writer.out if writer else (model.output_dir or ".")) /
                               f"restart_interrupted_itt{model.itt:08d}.nc")
        oio.write_restart(model, path)
        raise RunInterrupted(f"interrupted after {model.itt} steps; state written to {path}", path) from None
    finally:
        if bar is not None:
            bar.close()
        model.backend.synchronize()
        info["wall_s"] = _time.perf_counter() - t_start
        info["steps_done"] = model.itt - itt0
        if writer is not None:
            info.update(writer.close(restart=ok))
    info["transport_Sv"] = model.transport()
    return info
