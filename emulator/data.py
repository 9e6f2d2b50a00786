"""Emulator data: channels, normalisation over wet points, rollout samples, splits.

The input is a time series of N-day means in stommel's layout (see
:mod:`emulator.make_data` and ``docs/emulator.md``): an ``xarray.Dataset``
with a ``time`` dimension, 3-D variables on ``(zt|zw, yt|yu, xt|xu)``,
2-D variables on ``(yt|yu, xt|xu)`` and the masks ``maskT, maskU, maskV,
maskW``.  All C-grid positions have the same ``(ny, nx)`` shape, so the
channels stack into one ``(H, W) = (ny, nx)`` grid.

Channels (one per variable and level, level 0 = bottom as in Veros):

* **prognostic** ``P``: temp, salt, u, v, log(eke + eps) per level and the 2-D psi;
* **forcing** ``F``: surface_taux, surface_tauy, t_star (optionally
  forc_temp_surface) and ``sin``/``cos`` of the phase of the year;
* **static** ``S``: latitude and the surface wet mask.

Every channel ``c`` is z-scored, ``z = (x - mu_c) / sigma_c``, with ``mu_c``
and ``sigma_c`` taken over its wet points and all times of the *training*
split, and set to 0 on land.  Channels with no wet point or a standard
deviation below ``rtol * max(1, |mu|)`` (e.g. salt, constant 35 in the ACC
set-up, or a zero meridional wind stress) are dropped and, for prognostic
variables, remembered as constants.

A model step maps ``(x_{t-1}, x_t, f_{t-1}, f_t, s)`` to ``(x_{t+1}, x_{t+2})``
(two states in, two out, channels time-major).  A training sample of a
``K``-step rollout starting at index ``i`` therefore needs the states
``i .. i + 2K + 1``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

import numpy as np

#: Prognostic variables in channel order, with their mask and vertical grid.
PROGNOSTIC_VARS = {
    "temp": ("maskT", "zt"),
    "salt": ("maskT", "zt"),
    "u": ("maskU", "zt"),
    "v": ("maskV", "zt"),
    "eke": ("maskW", "zw"),
    "psi": ("psi", None),
}
#: Forcing variables (surface fields) and the 3-D mask whose top level applies.
FORCING_VARS = {
    "surface_taux": "maskU",
    "surface_tauy": "maskV",
    "t_star": "maskT",
    "forc_temp_surface": "maskT",
}
DEFAULT_PROGNOSTIC = ("temp", "salt", "u", "v", "eke", "psi")
DEFAULT_FORCING = ("surface_taux", "surface_tauy", "t_star")
SECONDS_PER_DAY = 86400.0


@dataclass
class Channel:
    """One input or output channel (a variable at one level, or a 2-D field)."""

    var: str
    level: int | None
    kind: str  # "prognostic" | "forcing" | "static"
    mean: float = 0.0
    std: float = 1.0
    transform: str = "none"  # "none" | "log"
    #: per-point statistics ``(H, W)`` as nested lists (see :func:`point_normalise`); ``None``:
    #: the scalar ``mean`` and ``std`` apply everywhere
    mean_map: list | None = None
    std_map: list | None = None

    @property
    def name(self):
        return self.var if self.level is None else f"{self.var}[{self.level}]"

    @property
    def loc(self):
        """The mean subtracted before scaling: a float or an ``(H, W)`` array."""
        return self.mean if self.mean_map is None else np.asarray(self.mean_map, dtype=np.float64)

    @property
    def scale(self):
        """The standard deviation divided by: a float or an ``(H, W)`` array."""
        return self.std if self.std_map is None else np.asarray(self.std_map, dtype=np.float64)


@dataclass
class DataSpec:
    """Everything needed to map physical fields to network channels and back.

    Saved with a trained emulator so that rollouts need nothing else.
    """

    prognostic: list
    forcing: list
    static: list
    dropped: dict = field(default_factory=dict)  # name -> constant value (NaN if no wet point)
    eke_eps: float = 1e-6
    year_seconds: float = 365.0 * SECONDS_PER_DAY
    nz: int = 0
    grid: tuple = (0, 0)
    variables: tuple = ()  # prognostic variable names in use
    forcing_vars: tuple = ()

    @property
    def n_prognostic(self):
        return len(self.prognostic)

    @property
    def n_forcing(self):
        return len(self.forcing)

    @property
    def n_static(self):
        return len(self.static)

    @property
    def in_channels(self):
        """``2 P + 2 F + S`` (two input times)."""
        return 2 * self.n_prognostic + 2 * self.n_forcing + self.n_static

    @property
    def out_channels(self):
        """``2 P`` (two output times)."""
        return 2 * self.n_prognostic

    def to_json(self):
        d = asdict(self)
        d["grid"] = list(self.grid)
        d["variables"] = list(self.variables)
        d["forcing_vars"] = list(self.forcing_vars)
        return d

    @classmethod
    def from_json(cls, d):
        d = dict(d)
        for k in ("prognostic", "forcing", "static"):
            d[k] = [Channel(**c) for c in d[k]]
        d["grid"] = tuple(d["grid"])
        d["variables"] = tuple(d["variables"])
        d["forcing_vars"] = tuple(d["forcing_vars"])
        return cls(**d)


# ---------------------------------------------------------------------- #
# reading
# ---------------------------------------------------------------------- #
def open_dataset(path):
    """Open a data set written by ``make-data``: one NetCDF file or a directory of them.

    A directory's ``means_*.nc`` files are concatenated along ``time`` in name
    order; ``grid.nc``, if present, supplies the masks and coordinates.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist or a directory holds no ``.nc`` file.
    """
    import xarray as xr  # noqa: PLC0415

    if not os.path.exists(path):
        raise FileNotFoundError(f"data path {path!r} does not exist")
    if os.path.isfile(path):
        with xr.open_dataset(path) as ds:
            return ds.load()
    files = sorted(f for f in os.listdir(path) if f.startswith("means_") and f.endswith(".nc"))
    if not files:
        raise FileNotFoundError(f"no means_*.nc files in data directory {path!r}")
    parts = []
    for f in files:
        with xr.open_dataset(os.path.join(path, f)) as d:
            parts.append(d.load())
    ds = xr.concat(parts, dim="time", data_vars="minimal", coords="minimal",
                   compat="override", join="override", combine_attrs="override")
    grid = os.path.join(path, "grid.nc")
    if os.path.exists(grid):
        with xr.open_dataset(grid) as g:
            ds = ds.assign(g.load())
    return ds


def psi_mask(mask_t_surface):
    """Wet mask of the streamfunction at cell corners ``(yu, xu)``.

    A corner is wet if any of the four surrounding T cells at the surface is
    wet; x is periodic, the northern neighbour row is clamped.
    """
    m = np.asarray(mask_t_surface) > 0
    # corner (j, i) lies between T cells i, i+1 (periodic) and j, j+1 (clamped)
    e = np.roll(m, -1, axis=1)
    n = np.concatenate([m[1:], m[-1:]], axis=0)
    ne = np.roll(n, -1, axis=1)
    return (m | e | n | ne).astype(np.float32)


def _top(mask3d):
    """Surface level of a 3-D mask (index -1: Veros counts levels from the bottom)."""
    return np.asarray(mask3d)[-1]


def variable_masks(ds, var):
    """Wet masks ``(L, H, W)`` of a prognostic variable (``L = 1`` for 2-D fields)."""
    mname, _ = PROGNOSTIC_VARS[var]
    if mname == "psi":
        return psi_mask(_top(ds["maskT"].values))[None]
    return (np.asarray(ds[mname].values) > 0).astype(np.float32)


def _raw(ds, var, eke_eps):
    """Physical values with time first, levels second: ``(T, L, H, W)``; log for eke."""
    a = np.asarray(ds[var].values, dtype=np.float64)
    if a.ndim == 3:
        a = a[:, None]
    if var == "eke":
        a = np.log(np.maximum(a, 0.0) + eke_eps)
    return a


def season(time_seconds, year_seconds):
    """``(sin, cos)`` of the phase ``2 pi t / year`` as two ``(T,)`` arrays."""
    ph = 2.0 * np.pi * (np.asarray(time_seconds, dtype=np.float64) % year_seconds) / year_seconds
    return np.sin(ph), np.cos(ph)


def time_seconds(ds):
    """The ``time`` coordinate in seconds (float64), whatever its encoding."""
    t = ds["time"].values
    # make-data writes seconds; decoded CF times are also accepted
    if np.issubdtype(t.dtype, np.datetime64):
        return (t - t[0]).astype("timedelta64[ms]").astype(np.float64) / 1e3
    if np.issubdtype(t.dtype, np.timedelta64):
        return t.astype("timedelta64[ms]").astype(np.float64) / 1e3
    return np.asarray(t, dtype=np.float64)


# ---------------------------------------------------------------------- #
# splits
# ---------------------------------------------------------------------- #
@dataclass
class Split:
    """Contiguous index ranges ``[start, stop)`` along time for train/val/test."""

    train: tuple
    val: tuple
    test: tuple

    def to_json(self):
        return {k: list(v) for k, v in asdict(self).items()}


def split_by_years(n_times, states_per_year, train_years, val_years, test_years):
    """Split ``n_times`` states into consecutive train, validation and test ranges.

    The test period is taken from the end, validation just before it and
    training before that (ending where validation starts).

    Raises
    ------
    ValueError
        If the requested years do not fit in the data.
    """
    # whole numbers of states; the periods are laid out backwards from the end
    counts = [int(round(y * states_per_year)) for y in (train_years, val_years, test_years)]
    for name, y, c in zip(("train_years", "val_years", "test_years"),
                          (train_years, val_years, test_years), counts):
        if y < 0:
            raise ValueError(f"{name}={y} must be >= 0")
    if counts[0] < 1:
        raise ValueError(f"train_years={train_years} gives no training state")
    if sum(counts) > n_times:
        raise ValueError(f"train_years + val_years + test_years = "
                         f"{train_years + val_years + test_years} years = {sum(counts)} states, "
                         f"but the data hold only {n_times} states "
                         f"({n_times / states_per_year:.2f} years)")
    t_end = n_times
    test = (t_end - counts[2], t_end)
    val = (test[0] - counts[1], test[0])
    train = (val[0] - counts[0], val[0])
    return Split(train, val, test)


# ---------------------------------------------------------------------- #
# spec and arrays
# ---------------------------------------------------------------------- #
def build_spec(ds, train_range, *, variables=DEFAULT_PROGNOSTIC, forcing=DEFAULT_FORCING,
               eke_eps=1e-6, rtol=1e-6, year_seconds=None):
    """Choose channels and compute their statistics over the training range.

    Parameters
    ----------
    ds : xarray.Dataset
        Time series in stommel's layout.
    train_range : (int, int)
        Time indices ``[start, stop)`` used for the statistics.
    variables, forcing : sequence of str
        Prognostic and forcing variable names to consider (absent ones are skipped).
    eke_eps : float
        ``eke`` enters as ``log(eke + eke_eps)``.
    rtol : float
        A channel is dropped when its std over wet points is below ``rtol * max(1, |mean|)``.
    year_seconds : float, optional
        Length of the seasonal cycle (default: the data set's ``year_length_days``
        attribute, else 365 days).

    Returns
    -------
    DataSpec
    """
    for v in variables:
        if v not in PROGNOSTIC_VARS:
            raise ValueError(f"variable {v!r} is not one of {sorted(PROGNOSTIC_VARS)}")
    for v in forcing:
        if v not in FORCING_VARS:
            raise ValueError(f"forcing {v!r} is not one of {sorted(FORCING_VARS)}")
    if year_seconds is None:
        year_seconds = float(ds.attrs.get("year_length_days", 365.0)) * SECONDS_PER_DAY
    a, b = train_range
    sl = slice(a, b)
    nz = int(ds.sizes.get("zt", 0))
    H, W = int(ds.sizes["yt"]), int(ds.sizes["xt"])
    prog, dropped, used = [], {}, []
    # one channel per variable and level; statistics over wet points and training times
    for var in variables:
        if var not in ds:
            continue
        raw = _raw(ds.isel(time=sl), var, eke_eps)
        masks = variable_masks(ds, var)
        kept = False
        for lev in range(raw.shape[1]):
            level = None if var == "psi" else lev
            ch = Channel(var, level, "prognostic", transform="log" if var == "eke" else "none")
            m = masks[lev] > 0
            if not m.any():
                dropped[ch.name] = float("nan")
                continue
            vals = raw[:, lev][:, m]
            mu, sd = float(vals.mean()), float(vals.std())
            # a (numerically) constant channel cannot be z-scored: remember its value
            if not sd > rtol * max(1.0, abs(mu)):
                dropped[ch.name] = mu
                continue
            ch.mean, ch.std = mu, sd
            prog.append(ch)
            kept = True
        if kept:
            used.append(var)
    if not prog:
        raise ValueError("no prognostic channel varies over wet points in the training range")
    forc, fused = [], []
    for var in forcing:
        if var not in ds:
            continue
        raw = _raw(ds.isel(time=sl), var, eke_eps)[:, 0]
        m = _top(ds[FORCING_VARS[var]].values) > 0
        vals = raw[:, m]
        mu, sd = float(vals.mean()), float(vals.std())
        if not sd > rtol * max(1.0, abs(mu)):
            continue
        forc.append(Channel(var, None, "forcing", mu, sd))
        fused.append(var)
    # the phase of the year; already O(1), so identity normalisation
    forc += [Channel("season_sin", None, "forcing"), Channel("season_cos", None, "forcing")]
    static = [Channel("latitude", None, "static"), Channel("wet_surface", None, "static")]
    return DataSpec(prog, forc, static, dropped, float(eke_eps), float(year_seconds), nz,
                    (H, W), tuple(used), tuple(fused))


def point_normalise(spec, ds, train_range, variables, floor=0.01):
    """Give the channels of ``variables`` per-point statistics (in place; returns ``spec``).

    Samudra 2 z-scores a channel with one mean and one standard deviation over its wet points.
    A field whose variability differs by orders of magnitude across the domain, such as psi
    (tens of Sv in the ACC channel, a tenth of a Sv in the basin), is then dominated by its
    most variable region: a network error that is small in normalised units swamps the weak
    variability elsewhere.  A point-normalised channel is

        ``z(y, x) = (x(y, x) - mu(y, x)) / max(sigma(y, x), floor * sigma_c)``

    with ``mu``, ``sigma`` the temporal mean and standard deviation of the point over the
    training range and ``sigma_c`` the channel's wet-point standard deviation (kept as
    ``ch.std``); the floor keeps points that barely vary (e.g. psi on a boundary) finite.
    Land points get ``mu = 0``, ``sigma = 1`` (their values are zeroed anyway).

    Parameters
    ----------
    spec : DataSpec
        Channels and statistics from :func:`build_spec` (or a trained emulator's).
    ds : xarray.Dataset
    train_range : (int, int)
        Time indices ``[start, stop)`` of the statistics.
    variables : sequence of str
        Prognostic variables to point-normalise (each must have a channel in ``spec``).
    floor : float
        Smallest point standard deviation as a fraction of the channel's, in ``(0, 1]``.

    Raises
    ------
    ValueError
        For an unknown variable, one without a channel, or ``floor`` outside ``(0, 1]``.
    """
    if not 0.0 < float(floor) <= 1.0:
        raise ValueError(f"point-normalisation floor={floor}: must be in (0, 1]")
    names = {ch.var for ch in spec.prognostic}
    for v in variables:
        if v not in PROGNOSTIC_VARS:
            raise ValueError(f"point-normalised variable {v!r} is not one of {sorted(PROGNOSTIC_VARS)}")
        if v not in names:
            raise ValueError(f"point-normalised variable {v!r} has no channel in the data "
                             f"specification (channels of {sorted(names)})")
    a, b = train_range
    for v in variables:
        raw = _raw(ds.isel(time=slice(a, b)), v, spec.eke_eps)
        masks = variable_masks(ds, v)
        for ch in spec.prognostic:
            if ch.var != v:
                continue
            lev = 0 if ch.level is None else ch.level
            m = masks[lev] > 0
            mu = np.where(m, raw[:, lev].mean(axis=0), 0.0)
            sd = np.where(m, np.maximum(raw[:, lev].std(axis=0), float(floor) * ch.std), 1.0)
            ch.mean_map, ch.std_map = mu.tolist(), sd.tolist()
    return spec


def _channel_masks(ds, spec):
    """Wet masks ``(P, H, W)`` of the prognostic channels (float32 0/1)."""
    cache = {}
    out = []
    for ch in spec.prognostic:
        if ch.var not in cache:
            cache[ch.var] = variable_masks(ds, ch.var)
        out.append(cache[ch.var][0 if ch.level is None else ch.level])
    return np.stack(out).astype(np.float32)


def static_fields(ds, spec):
    """Static channels ``(S, H, W)``: latitude scaled to [-1, 1] and the surface wet mask."""
    H, W = spec.grid
    yt = np.asarray(ds["yt"].values, dtype=np.float64)
    lat = (yt - yt.mean()) / max(np.ptp(yt) / 2.0, 1e-12)
    wet = _top(ds["maskT"].values) > 0
    return np.stack([np.repeat(lat[:, None], W, axis=1), wet.astype(np.float64)]).astype(np.float32)


@dataclass
class EmulatorData:
    """Normalised arrays ready for training and rollouts (all float32, NumPy).

    Attributes
    ----------
    states : (T, P, H, W)
    forcing : (T, F, H, W)
    static : (S, H, W)
    wet : (P, H, W)
        Wet masks of the prognostic channels.
    time : (T,) seconds
    spec : DataSpec
    """

    states: np.ndarray
    forcing: np.ndarray
    static: np.ndarray
    wet: np.ndarray
    time: np.ndarray
    spec: DataSpec

    @property
    def n_times(self):
        return self.states.shape[0]


def prepare(ds, spec):
    """Normalise a data set with a given :class:`DataSpec` (see the module docstring)."""
    T = int(ds.sizes["time"])
    H, W = spec.grid
    P, F = spec.n_prognostic, spec.n_forcing
    states = np.zeros((T, P, H, W), np.float32)
    wet = _channel_masks(ds, spec)
    raw_cache = {}
    for c, ch in enumerate(spec.prognostic):
        # keep one variable's raw values at a time (channels are grouped by variable)
        if ch.var not in raw_cache:
            raw_cache = {ch.var: _raw(ds, ch.var, spec.eke_eps)}
        lev = 0 if ch.level is None else ch.level
        z = (raw_cache[ch.var][:, lev] - ch.loc) / ch.scale
        states[:, c] = (z * wet[c]).astype(np.float32)
    del raw_cache
    tsec = time_seconds(ds)
    forcing = np.zeros((T, F, H, W), np.float32)
    sin, cos = season(tsec, spec.year_seconds)
    for c, ch in enumerate(spec.forcing):
        if ch.var == "season_sin":
            forcing[:, c] = sin[:, None, None]
        elif ch.var == "season_cos":
            forcing[:, c] = cos[:, None, None]
        else:
            m = _top(ds[FORCING_VARS[ch.var]].values) > 0
            z = (_raw(ds, ch.var, spec.eke_eps)[:, 0] - ch.mean) / ch.std
            forcing[:, c] = z * m
    return EmulatorData(states, forcing, static_fields(ds, spec), wet, tsec, spec)


def to_physical(states, spec, wet=None):
    """Undo the normalisation of prognostic states.

    Parameters
    ----------
    states : array (T, P, H, W)
        Normalised states (e.g. a rollout).
    spec : DataSpec
    wet : array (P, H, W), optional
        If given, land is set to 0 in the output.

    Returns
    -------
    dict
        ``var -> (T, L, H, W)`` float64 arrays (``L = 1`` for psi); ``eke`` is
        transformed back with ``exp(z) - eps``; dropped constant channels are
        filled with their constant.
    """
    T = states.shape[0]
    H, W = spec.grid
    out = {}
    for var in spec.variables:
        L = 1 if var == "psi" else spec.nz
        arr = np.zeros((T, L, H, W))
        for lev in range(L):
            name = var if var == "psi" else f"{var}[{lev}]"
            if name in spec.dropped and np.isfinite(spec.dropped[name]):
                arr[:, lev] = spec.dropped[name]
        out[var] = arr
    for c, ch in enumerate(spec.prognostic):
        lev = 0 if ch.level is None else ch.level
        x = states[:, c].astype(np.float64) * ch.scale + ch.loc
        if ch.transform == "log":
            x = np.exp(x) - spec.eke_eps
        if wet is not None:
            x = x * wet[c]
        out[ch.var][:, lev] = x
    return out


def save_spec(path, spec, split=None, extra=None):
    """Write a :class:`DataSpec` (and optionally the split) as JSON."""
    d = {"spec": spec.to_json()}
    if split is not None:
        d["split"] = split.to_json()
    if extra:
        d.update(extra)
    with open(path, "w") as f:
        json.dump(d, f, indent=1, default=float)


def states_per_year(ds):
    """Number of N-day means per model year, from the data attributes or the time axis."""
    year = float(ds.attrs.get("year_length_days", 365.0))
    if "average_days" in ds.attrs:
        return year / float(ds.attrs["average_days"])
    t = time_seconds(ds)
    if len(t) < 2:
        raise ValueError("cannot infer the averaging interval from fewer than two times")
    dt_days = float(np.median(np.diff(t))) / SECONDS_PER_DAY
    return year / dt_days


def rollout_starts(split_range, k_steps, stride=1):
    """Start indices ``i`` of K-step rollout samples inside ``[start, stop)``.

    A sample needs states ``i .. i + 2K + 1`` (two in, ``2K`` predicted).
    """
    a, b = split_range
    need = 2 * k_steps + 2
    last = b - need
    if last < a:
        return np.zeros(0, dtype=np.int64)
    return np.arange(a, last + 1, stride, dtype=np.int64)

