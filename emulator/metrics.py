"""Evaluation metrics of an emulator rollout against the ocean model (Samudra 2's suite).

All functions take plain arrays; :func:`evaluate` applies them to two
``xarray.Dataset`` objects in stommel's layout (truth and rollout over the
same times) and returns a JSON-serialisable summary.

Metrics
-------
* **Detrended volume-mean temperature R^2 per depth band**:
  ``T_band(t) = sum(T dz A m) / sum(dz A m)`` over the levels whose centre
  lies in the band (``A`` cell area, ``m`` wet mask, ``dz`` thickness); both
  series are linearly detrended; ``R^2 = 1 - sum (t' - p')^2 / sum (t' - mean t')^2``.
* **RMSE by depth**: ``sqrt(sum_{t,x} A m (p - t)^2 / (T sum_x A m))`` per
  variable and level, with the truth's temporal standard deviation alongside
  (an RMSE above ``sqrt 2`` times it is no better than an unrelated state of
  the same variability).
* **Temporal variance ratio maps**: per depth band, the dz-weighted band
  average of a variable, as it is ("raw"), with a linear trend removed at
  every point ("detrended": model drift), and detrended with the seasonal
  climatology (mean per phase of year) of each series removed as well
  ("deseasoned"); ratio ``var_t(pred) / var_t(truth)`` at every wet point,
  and the ratio of the area means of the two variance maps.  A point's
  variance from a few years of a chaotic flow is itself noisy: the CLI's
  ``--baseline-years`` scores the model against its own earlier years the
  same way, the share of points in ``[0.5, 2]`` a perfect emulator could
  expect.  ``deseasoned_interval`` says how much of that noise is expected: the
  95 % interval of the true ratio at each point from the sample ratio and the
  effective degrees of freedom of each series (red-noise ``F`` test), and the
  share of points whose interval overlaps ``[0.5, 2]`` ("consistent") or lies
  inside it ("shown inside").
* **Isotropic spectra** (after Samudra's ``metrics/spectra.py``): plane
  removed, land set to 0, 2-D Hann window normalised by ``mean(w^2)``,
  ``|rfft2|^2`` with ``norm="forward"``, summed over ``min(H, W) // 2``
  annuli of ``|k|`` up to the lower Nyquist wavenumber and divided by the
  bin width (so that ``sum P dk`` is the windowed variance), returned as
  ``k P(k)``.
"""

from __future__ import annotations

import numpy as np

EARTH_RADIUS = 6.371e6
DEFAULT_BANDS = ((0.0, 300.0), (300.0, 1000.0), (1000.0, 1e5))


# ---------------------------------------------------------------------- #
# geometry
# ---------------------------------------------------------------------- #
def cell_area(lat_deg, lon_deg):
    """Cell areas ``(H, W)`` in m^2 of a regular lat-lon grid from centre coordinates."""
    lat = np.asarray(lat_deg, dtype=np.float64)
    lon = np.asarray(lon_deg, dtype=np.float64)
    dlat = np.gradient(lat) if lat.size > 1 else np.ones(1)
    dlon = np.gradient(lon) if lon.size > 1 else np.ones(1)
    dy = EARTH_RADIUS * np.deg2rad(np.abs(dlat))
    dx = EARTH_RADIUS * np.deg2rad(np.abs(dlon))
    return (dy * np.cos(np.deg2rad(lat)))[:, None] * dx[None, :]


def layer_thickness(zt, zw):
    """Thickness ``dzt`` (m) of each level from Veros coordinates.

    ``zw[k]`` is the top face of cell ``k`` (level 0 at the bottom, ``zw[-1] = 0``),
    so ``dzt[k] = zw[k] - zw[k-1]`` for ``k >= 1``; the bottom cell is assumed
    symmetric about its centre, ``dzt[0] = 2 (zw[0] - zt[0])``.
    """
    zt = np.asarray(zt, dtype=np.float64)
    zw = np.asarray(zw, dtype=np.float64)
    dz = np.empty_like(zt)
    dz[1:] = zw[1:] - zw[:-1]
    dz[0] = 2.0 * (zw[0] - zt[0])
    return np.abs(dz)


def band_levels(zt, band):
    """Indices of the levels whose centre depth ``|zt|`` lies in ``[lo, hi)``."""
    d = np.abs(np.asarray(zt, dtype=np.float64))
    return np.nonzero((d >= band[0]) & (d < band[1]))[0]


# ---------------------------------------------------------------------- #
# time series metrics
# ---------------------------------------------------------------------- #
def band_mean_series(field, mask, area, dz, levels):
    """Volume-weighted mean over the given levels: ``(T,)`` from ``field (T, L, H, W)``."""
    w = mask[levels] * area[None] * dz[levels][:, None, None]
    den = w.sum()
    if den <= 0:
        return np.full(field.shape[0], np.nan)
    return np.einsum("tlhw,lhw->t", field[:, levels], w) / den


def detrend(y):
    """Remove the least-squares straight line from a series."""
    y = np.asarray(y, dtype=np.float64)
    t = np.arange(y.size, dtype=np.float64)
    a, b = np.polyfit(t, y, 1)
    return y - (a * t + b)


def r2_score(truth, pred):
    """``1 - sum (t - p)^2 / sum (t - mean t)^2`` (NaN when the truth is constant)."""
    truth = np.asarray(truth, np.float64)
    pred = np.asarray(pred, np.float64)
    ss_tot = ((truth - truth.mean()) ** 2).sum()
    if ss_tot == 0:
        return float("nan")
    return float(1.0 - ((truth - pred) ** 2).sum() / ss_tot)


def detrended_r2(truth, pred):
    """R^2 of the linearly detrended series (each detrended with its own fit)."""
    return r2_score(detrend(truth), detrend(pred))


def rmse_by_level(truth, pred, mask, area):
    """Area-weighted RMSE over time and wet points for each level.

    Parameters
    ----------
    truth, pred : arrays (T, L, H, W)
    mask : array (L, H, W)
    area : array (H, W)

    Returns
    -------
    rmse, truth_std : arrays (L,)
        The RMSE and the area-weighted temporal standard deviation of the truth.
    """
    w = mask * area[None]
    den = w.sum(axis=(1, 2)) * truth.shape[0]
    err = np.einsum("tlhw,lhw->l", (pred - truth) ** 2, w)
    anom = truth - truth.mean(axis=0, keepdims=True)
    var = np.einsum("tlhw,lhw->l", anom ** 2, w)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(err / den), np.sqrt(var / den)


def rmse_by_lead(truth, pred, mask, area):
    """Area-weighted RMSE at each time over all wet points: ``(T,)``."""
    w = mask * area[None]
    err = np.einsum("tlhw,lhw->t", (pred - truth) ** 2, w)
    return np.sqrt(err / w.sum())


def seasonal_anomaly(series, phase_bins):
    """Remove the mean of each phase-of-year bin: ``series (T, ...)``, ``phase_bins (T,) int``."""
    out = np.array(series, dtype=np.float64, copy=True)
    for b in np.unique(phase_bins):
        sel = phase_bins == b
        out[sel] -= out[sel].mean(axis=0, keepdims=True)
    return out


def band_average(field, mask, dz, levels):
    """dz-weighted average over wet levels of a band: ``(T, H, W)`` and its wet mask ``(H, W)``."""
    w = mask[levels] * dz[levels][:, None, None]
    den = w.sum(axis=0)
    wet = den > 0
    avg = np.einsum("tlhw,lhw->thw", field[:, levels], w)
    with np.errstate(invalid="ignore", divide="ignore"):
        avg = np.where(wet[None], avg / np.where(wet, den, 1.0)[None], 0.0)
    return avg, wet


def detrend_maps(a):
    """Remove the least-squares straight line in time at every point of ``a (T, ...)``."""
    a = np.asarray(a, np.float64)
    t = np.arange(a.shape[0], dtype=np.float64)
    t -= t.mean()
    am = a - a.mean(axis=0, keepdims=True)
    slope = np.tensordot(t, am, axes=(0, 0)) / (t @ t)
    return am - t.reshape((-1,) + (1,) * (a.ndim - 1)) * slope


def variance_ratio_map(truth2d, pred2d, wet, phase_bins=None, rel_floor=1e-6, detrended=False,
                       area=None):
    """Temporal variance ratio ``var(pred) / var(truth)`` at each wet point.

    Parameters
    ----------
    truth2d, pred2d : arrays (T, H, W)
    wet : bool array (H, W)
    phase_bins : int array (T,), optional
        If given, the seasonal climatology is removed first.
    detrended : bool
        Remove a linear trend at every point first (model drift).
    rel_floor : float
        Points where the truth's variance is below ``rel_floor`` times its
        largest value are excluded (NaN): a ratio of two round-off-level
        variances means nothing.

    area : array (H, W), optional
        Cell areas: if given, also return the ratio of the area means,
        ``sum(A var(pred)) / sum(A var(truth))`` over the points where the
        ratio is defined (one number, robust to the sampling noise of
        single-point variances).

    Returns
    -------
    ratio : array (H, W), NaN where undefined.
    area_ratio : float (only if ``area`` is given)
    """
    t, p = truth2d, pred2d
    if detrended:
        t, p = detrend_maps(t), detrend_maps(p)
    if phase_bins is not None:
        t = seasonal_anomaly(t, phase_bins)
        p = seasonal_anomaly(p, phase_bins)
    vt = t.var(axis=0)
    vp = p.var(axis=0)
    ok = wet & (vt > rel_floor * (vt[wet].max() if wet.any() else 0.0)) & (vt > 0)
    ratio = np.full(vt.shape, np.nan)
    ratio[ok] = vp[ok] / vt[ok]
    if area is None:
        return ratio
    a = np.broadcast_to(area, vt.shape)[ok]
    area_ratio = float((a * vp[ok]).sum() / (a * vt[ok]).sum()) if ok.any() else float("nan")
    return ratio, area_ratio


def lag1_autocorrelation(a):
    """Lag-1 autocorrelation ``sum a[t] a[t-1] / sum a[t]^2`` of anomalies ``a (T, ...)`` per point."""
    a = np.asarray(a, np.float64)
    num = (a[1:] * a[:-1]).sum(axis=0)
    den = (a * a).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def effective_dof(a):
    """Degrees of freedom of the variance of the anomalies ``a (T, ...)`` at each point.

    For a red-noise (AR(1)) series with lag-1 autocorrelation ``r`` the variance of ``T``
    samples is as good as that of ``T_eff = T (1 - r^2) / (1 + r^2)`` independent ones
    (Bretherton et al. 1999, J. Climate, for the variance); ``r`` is clipped to ``[0, 0.999]``
    and the result ``T_eff - 1`` to at least 1.
    """
    r = np.clip(lag1_autocorrelation(a), 0.0, 0.999)
    n = np.asarray(a).shape[0]
    return np.maximum(n * (1.0 - r * r) / (1.0 + r * r) - 1.0, 1.0)


def variance_ratio_interval(truth2d, pred2d, wet, phase_bins=None, detrended=True, level=0.95,
                            rel_floor=1e-6):
    """Confidence interval of the *true* variance ratio at each wet point.

    The sample ratio ``R = var(pred) / var(truth)`` of two independent red-noise series with
    ``nu_p`` and ``nu_t`` effective degrees of freedom (:func:`effective_dof`) is the true ratio
    times an ``F(nu_p, nu_t)`` variable, so the true ratio lies in
    ``[R / F_(1+level)/2, R / F_(1-level)/2]`` with probability ``level``.  Where a few years
    of a slow point hold only a handful of independent samples the interval is wide: it says
    how much a variance ratio from this record can say at all.

    Same anomalies as :func:`variance_ratio_map` (detrended, deseasoned if ``phase_bins``).
    Returns ``ratio, lower, upper`` maps (NaN where undefined).
    """
    from scipy.stats import f as f_dist  # noqa: PLC0415

    t, p = truth2d, pred2d
    if detrended:
        t, p = detrend_maps(t), detrend_maps(p)
    if phase_bins is not None:
        t = seasonal_anomaly(t, phase_bins)
        p = seasonal_anomaly(p, phase_bins)
    vt = t.var(axis=0)
    vp = p.var(axis=0)
    ok = wet & (vt > rel_floor * (vt[wet].max() if wet.any() else 0.0)) & (vt > 0)
    ratio = np.full(vt.shape, np.nan)
    lower = np.full(vt.shape, np.nan)
    upper = np.full(vt.shape, np.nan)
    if not ok.any():
        return ratio, lower, upper
    nu_t = effective_dof(t)[ok]
    nu_p = effective_dof(p)[ok]
    r = vp[ok] / vt[ok]
    alpha = 1.0 - level
    ratio[ok] = r
    lower[ok] = r / f_dist.ppf(1.0 - alpha / 2, nu_p, nu_t)
    upper[ok] = r / f_dist.ppf(alpha / 2, nu_p, nu_t)
    return ratio, lower, upper


def interval_summary(lower, upper, lo=0.5, hi=2.0):
    """Shares of defined points whose interval overlaps ``[lo, hi]`` (consistent with it), lies
    wholly inside it (shown to be in it) and contains 1, and the median width factor ``upper / lower``."""
    ok = np.isfinite(lower) & np.isfinite(upper)
    if not ok.any():
        return {"n": 0}
    lw, up = lower[ok], upper[ok]
    return {"n": int(ok.sum()), "frac_consistent": float(((up >= lo) & (lw <= hi)).mean()),
            "frac_shown_inside": float(((lw >= lo) & (up <= hi)).mean()),
            # for the model against itself (true ratio 1) this is the interval's coverage
            "frac_covering_1": float(((lw <= 1.0) & (up >= 1.0)).mean()),
            "median_width_factor": float(np.median(up / lw)), "range": [lo, hi]}


def ratio_summary(ratio, lo=0.5, hi=2.0, area_ratio=None):
    """Min, median, max and the fraction of defined points in ``[lo, hi]``
    (and the ratio of area means, if given)."""
    r = ratio[np.isfinite(ratio)]
    if r.size == 0:
        return {"n": 0}
    out = {"n": int(r.size), "min": float(r.min()), "median": float(np.median(r)),
           "max": float(r.max()), "frac_in_range": float(((r >= lo) & (r <= hi)).mean()),
           "range": [lo, hi]}
    if area_ratio is not None:
        out["area_mean_ratio"] = float(area_ratio)
    return out


# ---------------------------------------------------------------------- #
# spectra
# ---------------------------------------------------------------------- #
def isotropic_spectrum(field, dx, dy, wet=None):
    """Radially averaged power spectrum ``k P(k)`` of a 2-D field.

    Parameters
    ----------
    field : array (H, W)
    dx, dy : float
        Grid spacing (m) in x and y.
    wet : bool array (H, W), optional
        Land is set to zero after the plane removal.

    Returns
    -------
    k : array (nbins,)
        Bin-centre wavenumbers (rad/m).
    kP : array (nbins,)
        ``k P(k)``; the first bin is NaN (mean removed).
    """
    f = np.asarray(field, dtype=np.float64)
    H, W = f.shape
    yy, xx = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    m = np.ones_like(f, bool) if wet is None else np.asarray(wet, bool)
    A = np.stack([np.ones(m.sum()), xx[m], yy[m]], axis=1)
    coef, *_ = np.linalg.lstsq(A, f[m], rcond=None)
    f = f - (coef[0] + coef[1] * xx + coef[2] * yy)
    f = np.where(m, f, 0.0)
    win = np.outer(np.hanning(H), np.hanning(W))
    f = f * win / np.sqrt((win ** 2).mean())
    F = np.fft.rfft2(f, norm="forward")
    Lx, Ly = W * dx, H * dy
    # spectral density per unit (kx, ky) / (2 pi)^2, one-sided in x (conjugate half doubled)
    psd = (np.abs(F) ** 2) * Lx * Ly
    psd[:, 1:] *= 2.0
    ky = 2 * np.pi * np.fft.fftfreq(H, d=dy)
    kx = 2 * np.pi * np.fft.rfftfreq(W, d=dx)
    K = np.sqrt(ky[:, None] ** 2 + kx[None, :] ** 2)
    kmax = min(np.pi / dx, np.pi / dy)  # truncate at the lower Nyquist
    nb = max(min(H, W) // 2, 2)
    edges = np.linspace(0.0, kmax, nb + 1)
    dk = edges[1] - edges[0]
    idx = np.digitize(K.ravel(), edges) - 1
    # E(k) = sum over the annulus of psd dkx dky / (2 pi)^2 / dk, so that sum E dk ~ mean(f^2)
    cell = (2 * np.pi / Lx) * (2 * np.pi / Ly) / (2 * np.pi) ** 2
    flat = psd.ravel()
    P = np.full(nb, np.nan)
    for b in range(nb):
        sel = idx == b
        if sel.any():
            P[b] = flat[sel].sum() * cell / dk
    kc = 0.5 * (edges[1:] + edges[:-1])
    kP = kc * P
    kP[0] = np.nan
    return kc, kP


def mean_spectrum(fields, dx, dy, wet=None):
    """Time-mean of :func:`isotropic_spectrum` over ``fields (T, H, W)``."""
    ks, ps = None, []
    for f in fields:
        ks, p = isotropic_spectrum(f, dx, dy, wet)
        ps.append(p)
    return ks, np.mean(ps, axis=0)


# ---------------------------------------------------------------------- #
# the whole evaluation
# ---------------------------------------------------------------------- #
def _phase_bins(time_seconds, year_seconds, bins_per_year):
    ph = (np.asarray(time_seconds, np.float64) % year_seconds) / year_seconds
    return np.floor(ph * bins_per_year + 1e-6).astype(int) % bins_per_year


def _levels_of(var, ds):
    return "zw" if "zw" in ds[var].dims else "zt"


def evaluate(truth, pred, bands=DEFAULT_BANDS, year_seconds=365 * 86400.0,
             variables=("temp", "salt", "u", "v", "eke", "psi"), spectra_every=1):
    """Compare a rollout with the truth over the same times.

    Parameters
    ----------
    truth, pred : xarray.Dataset
        Same variables, coordinates and times (see :func:`emulator.rollout.physical_dataset`).
    bands : sequence of (lo, hi)
        Depth bands in metres (positive down).
    year_seconds : float
        Length of the seasonal cycle used to deseason.
    variables : sequence of str
        Variables to evaluate (those absent from ``pred`` are skipped).
    spectra_every : int
        Use every n-th time for the spectra.

    Returns
    -------
    summary : dict
        JSON-serialisable metrics (see the module docstring).
    arrays : dict
        Series, maps and spectra for the figures.
    """
    from .data import psi_mask, time_seconds  # noqa: PLC0415

    if truth.sizes["time"] != pred.sizes["time"]:
        raise ValueError(f"truth has {truth.sizes['time']} times, the rollout "
                         f"{pred.sizes['time']}; evaluate over the same times")
    zt = truth["zt"].values
    zw = truth["zw"].values
    dz = truth["dzt"].values if "dzt" in truth else layer_thickness(zt, zw)
    area_t = cell_area(truth["yt"].values, truth["xt"].values)
    area_v = cell_area(truth["yu"].values, truth["xt"].values)
    area_c = cell_area(truth["yu"].values, truth["xu"].values)
    tsec = time_seconds(truth)
    dt = float(np.median(np.diff(tsec))) if len(tsec) > 1 else year_seconds
    bins_per_year = max(int(round(year_seconds / dt)), 1)
    pb = _phase_bins(tsec, year_seconds, bins_per_year)
    mask_of = {"temp": "maskT", "salt": "maskT", "u": "maskU", "v": "maskV", "eke": "maskW"}
    area_of = {"v": area_v}
    summary = {"n_times": int(truth.sizes["time"]),
               "years": float(truth.sizes["time"] * dt / year_seconds),
               "bands_m": [list(b) for b in bands], "r2_detrended_mean_temp": {},
               "rmse_by_level": {}, "variance_ratio": {}, "nan_in_rollout": {}}
    arrays = {"time_days": (tsec - tsec[0]) / 86400.0, "zt": zt, "band_series": {},
              "ratio_maps": {}, "rmse": {}, "spectra": {}}
    for var in variables:
        if var not in pred:
            continue
        summary["nan_in_rollout"][var] = int(np.isnan(pred[var].values).sum())
    # detrended band-mean temperature R^2
    T_true = truth["temp"].values.astype(np.float64)
    T_pred = pred["temp"].values.astype(np.float64)
    mT = (truth["maskT"].values > 0).astype(np.float64)
    for lo, hi in bands:
        lev = band_levels(zt, (lo, hi))
        key = f"{lo:g}-{hi:g}m"
        if lev.size == 0:
            continue
        st = band_mean_series(T_true, mT, area_t, dz, lev)
        sp = band_mean_series(T_pred, mT, area_t, dz, lev)
        summary["r2_detrended_mean_temp"][key] = {
            "r2": detrended_r2(st, sp), "r2_raw": r2_score(st, sp),
            "bias": float((sp - st).mean()), "truth_detrended_std": float(detrend(st).std()),
            "levels": lev.tolist()}
        arrays["band_series"][key] = (st, sp)
    # RMSE by level, variance ratios
    for var in variables:
        if var not in pred or var not in truth:
            continue
        t = truth[var].values.astype(np.float64)
        p = pred[var].values.astype(np.float64)
        if var == "psi":
            m = psi_mask(truth["maskT"].values[-1])
            t, p, m3 = t[:, None], p[:, None], m[None]
            area = area_c
        else:
            m3 = (truth[mask_of[var]].values > 0).astype(np.float64)
            area = area_of.get(var, area_t)
        if np.isnan(p).any():
            summary["rmse_by_level"][var] = None
            continue
        rmse, sd = rmse_by_level(t, p, m3, area)
        summary["rmse_by_level"][var] = {"rmse": rmse.tolist(), "truth_std": sd.tolist()}
        arrays["rmse"][var] = (rmse, sd, rmse_by_lead(t, p, m3, area))
        # variance ratios per band (psi: the single level)
        vr = {}
        zc = zw if _levels_of(var, truth) == "zw" else zt
        band_list = [("all", None)] if var == "psi" else \
            [(f"{lo:g}-{hi:g}m", band_levels(zc, (lo, hi))) for lo, hi in bands]
        for key, lev in band_list:
            if lev is None:
                tb, pbnd, wet = t[:, 0], p[:, 0], m3[0] > 0
            else:
                if lev.size == 0:
                    continue
                tb, wet = band_average(t, m3, dz, lev)
                pbnd, _ = band_average(p, m3, dz, lev)
            raw, a_raw = variance_ratio_map(tb, pbnd, wet, area=area)
            det, a_det = variance_ratio_map(tb, pbnd, wet, detrended=True, area=area)
            des, a_des = variance_ratio_map(tb, pbnd, wet, phase_bins=pb, detrended=True, area=area)
            _, ci_lo, ci_hi = variance_ratio_interval(tb, pbnd, wet, phase_bins=pb)
            vr[key] = {"raw": ratio_summary(raw, area_ratio=a_raw),
                       "detrended": ratio_summary(det, area_ratio=a_det),
                       "deseasoned": ratio_summary(des, area_ratio=a_des),
                       "deseasoned_interval": interval_summary(ci_lo, ci_hi)}
            arrays["ratio_maps"][f"{var} {key}"] = (raw, des, det)
        summary["variance_ratio"][var] = vr
    # spectra of surface temperature and surface kinetic energy
    lat = truth["yt"].values
    dxm = EARTH_RADIUS * np.deg2rad(float(np.median(np.diff(truth["xt"].values)))) * \
        np.cos(np.deg2rad(float(np.mean(lat))))
    dym = EARTH_RADIUS * np.deg2rad(float(np.median(np.diff(lat))))
    wet_s = truth["maskT"].values[-1] > 0
    sel = slice(None, None, max(int(spectra_every), 1))
    sst_t, sst_p = T_true[sel, -1], T_pred[sel, -1]
    k, Pt = mean_spectrum(sst_t, dxm, dym, wet_s)
    _, Pp = mean_spectrum(sst_p, dxm, dym, wet_s)
    arrays["spectra"]["sst"] = (k, Pt, Pp)
    spec_sum = {}
    if "u" in pred and "v" in pred:
        ke_t = 0.5 * (truth["u"].values[sel, -1] ** 2 + truth["v"].values[sel, -1] ** 2)
        ke_p = 0.5 * (pred["u"].values[sel, -1] ** 2 + pred["v"].values[sel, -1] ** 2)
        _, Kt = mean_spectrum(ke_t, dxm, dym, wet_s)
        _, Kp = mean_spectrum(ke_p, dxm, dym, wet_s)
        arrays["spectra"]["surface_ke"] = (k, Kt, Kp)
    for name, (kk, a, b) in arrays["spectra"].items():
        n = len(kk)
        hi = slice(2 * n // 3, n)
        spec_sum[name] = {"small_scale_power_ratio": float(np.nansum(b[hi]) / np.nansum(a[hi])),
                          "total_power_ratio": float(np.nansum(b) / np.nansum(a))}
    summary["spectra"] = spec_sum
    # overall range of the variance ratios (the acceptance criterion)
    lo_all, hi_all = np.inf, -np.inf
    for var, d in summary["variance_ratio"].items():
        for key, r in d.items():
            s = r["raw"]
            if s.get("n", 0):
                lo_all, hi_all = min(lo_all, s["min"]), max(hi_all, s["max"])
    summary["variance_ratio_raw_range"] = [float(lo_all), float(hi_all)]
    return summary, arrays
