"""Plots of a run: barotropic streamfunction map, ACC transport series and
temperature sections (matplotlib with the non-interactive Agg backend).

:func:`plot_run` makes all three from an output directory written by
:class:`ocean_core.output.OutputWriter` (``stommel plot DIR``); the single-figure
functions take xarray Datasets and can be used on any snapshot or average.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

__all__ = ["plot_streamfunction", "plot_transport", "plot_temperature", "plot_run", "load_run", "PLOT_FILES"]

#: file names written by :func:`plot_run`
PLOT_FILES = {"psi": "streamfunction.png", "transport": "transport.png", "temp": "temperature.png"}

_LAND = "0.75"  # colour of land


def _plt():
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    return plt


def _describe(ds):
    """'annual mean, days 0-365' / 'snapshot, day 10.0' from the attributes of ``ds``."""
    if "averaging_window_s" in ds.attrs:
        t0 = ds.attrs.get("averaging_start_s", float(ds["time"]) - 0.5 * ds.attrs["averaging_window_s"]) / 86400
        t1 = t0 + ds.attrs["averaging_window_s"] / 86400
        kind = "partial mean" if ds.attrs.get("partial") else "mean"
        return f"{kind} over days {t0:.0f}-{t1:.0f}"
    return f"snapshot at day {float(ds['time']) / 86400:.1f}"


def _edges(c):
    """Cell edges from (uniformly or smoothly spaced) centres."""
    c = np.asarray(c, dtype=float)
    mid = 0.5 * (c[1:] + c[:-1])
    return np.concatenate([[2 * c[0] - mid[0]], mid, [2 * c[-1] - mid[-1]]])


def _land_cmap():
    from matplotlib.colors import ListedColormap
    return ListedColormap([_LAND])


def _levels(lo, hi, n):
    """About ``n`` contour levels at round values covering ``[lo, hi]``."""
    from matplotlib.ticker import MaxNLocator
    if not hi > lo:
        return np.array([lo - 1.0, lo, lo + 1.0])
    return MaxNLocator(nbins=n).tick_values(lo, hi)


def _save(fig, path, overwrite):
    path = Path(path)
    if path.exists() and not overwrite:
        _plt().close(fig)
        raise FileExistsError(f"{path} exists; refusing to overwrite it (pass --overwrite / overwrite=True)")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    _plt().close(fig)
    return path


def plot_streamfunction(ds, path, overwrite=False):
    """Map of the barotropic streamfunction ``psi`` in Sv with land shaded.

    Parameters
    ----------
    ds : xarray.Dataset
        A snapshot or average with ``psi`` (yu, xu) and ``maskT``.
    path : str or Path
        PNG file to write.
    overwrite : bool
        Replace an existing file.
    """
    plt = _plt()
    from matplotlib import colors
    psi = ds["psi"].values / 1e6
    land = ds["maskT"].isel(zt=-1).values == 0
    xu, yu = ds["xu"].values, ds["yu"].values
    lo, hi = float(np.nanmin(psi)), float(np.nanmax(psi))
    levels = _levels(lo, hi, 24)
    lo, hi = levels[0], levels[-1]
    # diverging colours centred on zero when the field has both signs
    norm = colors.TwoSlopeNorm(vcenter=0.0, vmin=lo, vmax=hi) if lo < 0 < hi else None
    fig, ax = plt.subplots(figsize=(6.2, 7.2))
    cf = ax.contourf(xu, yu, psi, levels=levels, cmap="RdBu_r" if norm else "viridis", norm=norm, extend="neither")
    # labelled lines every other level (dashed where negative), as oceanographers read psi maps
    cs = ax.contour(xu, yu, psi, levels=levels[::2], colors="k", linewidths=0.5)
    ax.clabel(cs, levels=cs.levels[::2], fmt="%.0f", fontsize=7)
    ax.pcolormesh(_edges(ds["xt"].values), _edges(ds["yt"].values), np.where(land, 1.0, np.nan),
                  cmap=_land_cmap(), shading="flat")
    ax.set_xlim(xu[0], xu[-1])
    ax.set_ylim(yu[0], yu[-1])
    cb = fig.colorbar(cf, ax=ax, shrink=0.85)
    cb.set_label("barotropic streamfunction (Sv)")
    ax.set_xlabel("longitude (°E)")
    ax.set_ylabel("latitude (°N)")
    ax.set_aspect(1.0 / np.cos(np.deg2rad(0.5 * (yu[0] + yu[-1]))))
    tr = ds.attrs.get("acc_transport_Sv")
    sub = f"{_describe(ds)}" + (f"; ACC transport {tr:.1f} Sv" if tr is not None else "")
    ax.set_title(f"Barotropic streamfunction\n{sub}", fontsize=10)
    return _save(fig, path, overwrite)


def plot_transport(series, path, overwrite=False):
    """Time series of the ACC transport in Sv.

    Parameters
    ----------
    series : xarray.Dataset
        With ``transport`` (Sv) over ``time`` (s), e.g. ``transport.nc``.
    path : str or Path
    overwrite : bool
    """
    plt = _plt()
    t = series["time"].values / 86400.0
    y = series["transport"].values
    years = t.size and t[-1] > 730
    x = t / 365.0 if years else t
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    ax.plot(x, y, lw=1.2, color="C0")
    ax.set_xlabel("model time (years)" if years else "model time (days)")
    ax.set_ylabel("ACC transport (Sv)")
    ax.grid(alpha=0.3)
    if y.size:
        ax.set_title(f"ACC transport (psi south wall - psi north wall); final {y[-1]:.1f} Sv "
                     f"at day {t[-1]:.1f}", fontsize=10)
        ax.axhline(y[-1], color="0.5", lw=0.8, ls="--")
    return _save(fig, path, overwrite)


def plot_temperature(ds, path, overwrite=False):
    """Zonal-mean temperature section (latitude-depth, left) and surface temperature map (right).

    Parameters
    ----------
    ds : xarray.Dataset
        With ``temp`` (zt, yt, xt) and ``maskT``.
    path : str or Path
    overwrite : bool
    """
    plt = _plt()
    temp = ds["temp"].values
    mask = ds["maskT"].values > 0
    yt, xt = ds["yt"].values, ds["xt"].values
    depth = -ds["zt"].values
    # zonal mean over wet cells only; all-land rows stay blank
    cnt = mask.sum(axis=2)
    zm = np.where(cnt > 0, (temp * mask).sum(axis=2) / np.maximum(cnt, 1), np.nan)
    sst = np.where(mask[-1], temp[-1], np.nan)
    levels = _levels(np.nanmin(zm), np.nanmax(zm), 20)
    fig, (a0, a1) = plt.subplots(1, 2, figsize=(11.5, 4.8), constrained_layout=True,
                                 gridspec_kw={"width_ratios": [1.6, 1.0]})
    # left: latitude-depth section of the zonal mean
    a0.set_facecolor(_LAND)
    cf = a0.contourf(yt, depth, zm, levels=levels, cmap="RdYlBu_r", extend="both")
    cs = a0.contour(yt, depth, zm, levels=levels[::2], colors="k", linewidths=0.5)
    a0.clabel(cs, fmt="%.0f", fontsize=7)
    a0.invert_yaxis()
    a0.set_xlabel("latitude (°N)")
    a0.set_ylabel("depth (m)")
    a0.set_title("Zonal-mean temperature", fontsize=10)
    fig.colorbar(cf, ax=a0, shrink=0.9).set_label("potential temperature (°C)")
    # right: temperature of the top level
    from matplotlib.colors import BoundaryNorm
    lv = _levels(np.nanmin(sst), np.nanmax(sst), 16)
    cmap = plt.get_cmap("RdYlBu_r")
    # cells drawn as they are (no interpolation), land in grey
    cf2 = a1.pcolormesh(_edges(xt), _edges(yt), sst, cmap=cmap, norm=BoundaryNorm(lv, cmap.N), shading="flat")
    a1.pcolormesh(_edges(xt), _edges(yt), np.where(mask[-1], np.nan, 1.0),
                  cmap=_land_cmap(), shading="flat")
    a1.set_xlabel("longitude (°E)")
    a1.set_ylabel("latitude (°N)")
    a1.set_aspect(1.0 / np.cos(np.deg2rad(0.5 * (yt[0] + yt[-1]))))
    a1.set_title(f"Temperature at {depth[-1]:.0f} m depth", fontsize=10)
    fig.colorbar(cf2, ax=a1, shrink=0.9).set_label("°C")
    fig.suptitle(_describe(ds), fontsize=10)
    return _save(fig, path, overwrite)


def load_run(run_dir):
    """The field dataset and transport series of an output directory.

    Returns
    -------
    (xarray.Dataset or None, xarray.Dataset or None, str)
        The last complete average (else the last partial one, else the last snapshot),
        the transport series, and a description of where the fields came from.
    """
    d = Path(run_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"run directory {str(d)!r} does not exist")
    fields, source = None, ""
    avgs = sorted((d / "averages").glob("average_itt*.nc"))
    snaps = sorted((d / "snapshots").glob("snapshot_itt*.nc"))
    full = []
    for p in avgs:
        with xr.open_dataset(p) as ds:
            if not ds.attrs.get("partial", 0):
                full.append(p)
    pick = (full or avgs or snaps or [None])[-1]
    if pick is not None:
        with xr.open_dataset(pick) as ds:
            fields = ds.load()
        source = str(pick)
    series = None
    if (d / "transport.nc").exists():
        with xr.open_dataset(d / "transport.nc") as ds:
            series = ds.load()
    elif (d / "transport.csv").exists():
        # a run that is still going (or died hard) has only the CSV
        arr = np.loadtxt(d / "transport.csv", delimiter=",", skiprows=1, ndmin=2)
        series = xr.Dataset({"transport": ("time", arr[:, 3])}, coords={"time": ("time", arr[:, 1])})
    return fields, series, source


def plot_run(run_dir, out_dir=None, overwrite=False):
    """Write the streamfunction, transport and temperature PNGs of a run.

    Parameters
    ----------
    run_dir : str or Path
        An output directory of ``stommel run``.
    out_dir : str or Path, optional
        Where to write the PNGs (default ``run_dir``).
    overwrite : bool
        Replace existing PNGs of the same names.

    Returns
    -------
    list of Path

    Raises
    ------
    FileNotFoundError
        If the directory holds neither fields nor a transport series.
    """
    fields, series, _ = load_run(run_dir)
    if fields is None and series is None:
        raise FileNotFoundError(f"{run_dir!s} holds no averages/, snapshots/ or transport series to plot")
    out = Path(out_dir) if out_dir is not None else Path(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    targets = []
    if fields is not None:
        targets += [("psi", fields), ("temp", fields)]
    if series is not None and series["transport"].size:
        targets.append(("transport", series))
    # refuse before drawing anything, so a refusal leaves no half-updated set
    for key, _ in targets:
        p = out / PLOT_FILES[key]
        if p.exists() and not overwrite:
            raise FileExistsError(f"{p} exists; refusing to overwrite it (pass --overwrite)")
    funcs = {"psi": plot_streamfunction, "temp": plot_temperature, "transport": plot_transport}
    return [funcs[k](data, out / PLOT_FILES[k], overwrite=overwrite) for k, data in targets]
