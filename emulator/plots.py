"""PNG figures of an evaluation (matplotlib, Agg backend).

Each function writes one file and returns its path; :func:`all_figures`
writes the whole set from the ``arrays`` returned by
:func:`emulator.metrics.evaluate`.
"""

from __future__ import annotations

import json
import os

import numpy as np


def _plt():
    # non-interactive backend: figures are only written to files
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def band_series(arrays, path):
    """Band-mean temperature, truth against rollout, one panel per depth band."""
    plt = _plt()
    series = arrays["band_series"]
    n = max(len(series), 1)
    fig, axs = plt.subplots(n, 1, figsize=(8, 2.4 * n), sharex=True, squeeze=False)
    t = arrays["time_days"] / 365.0
    for ax, (key, (st, sp)) in zip(axs[:, 0], series.items()):
        ax.plot(t, st, "k-", lw=1, label="ocean model")
        ax.plot(t, sp, "C1-", lw=1, label="emulator")
        ax.set_ylabel(f"T {key} (degC)")
    axs[0, 0].legend(loc="best", fontsize=8)
    axs[-1, 0].set_xlabel("years into the rollout")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def rmse_profiles(arrays, path):
    """RMSE by level (solid) and the truth's temporal std (dashed) per variable."""
    plt = _plt()
    items = [(k, v) for k, v in arrays["rmse"].items() if k != "psi"]
    n = max(len(items), 1)
    fig, axs = plt.subplots(1, n, figsize=(3 * n, 4), squeeze=False)
    for ax, (var, (rmse, sd, _)) in zip(axs[0], items):
        lev = np.arange(len(rmse))
        ax.plot(rmse, lev, "C0-o", ms=3, label="RMSE")
        ax.plot(sd, lev, "k--", label="truth std")
        ax.set_title(var)
        ax.set_xlabel("value")
        ax.set_xscale("log")
    axs[0, 0].set_ylabel("level (0 = bottom)")
    axs[0, 0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def rmse_lead(arrays, path):
    """RMSE over all wet points against time into the rollout."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    t = arrays["time_days"] / 365.0
    top = []
    for var, (_, sd, lead) in arrays["rmse"].items():
        # normalise by the truth's variability so that variables share one axis
        ref = np.sqrt(np.mean(sd ** 2)) if np.all(np.isfinite(sd)) else 1.0
        y = lead / (ref if ref > 0 else 1.0)
        ax.plot(t, y, label=var)
        top.append(np.nanmax(y) if np.any(np.isfinite(y)) else 1.0)
    if top and max(top) > 100:  # a drifting rollout: a log axis keeps every variable readable
        ax.set_yscale("log")
    ax.axhline(1.0, color="0.6", lw=0.8, ls="--")
    ax.set_xlabel("years into the rollout")
    ax.set_ylabel("RMSE / truth temporal std")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def ratio_maps(arrays, path, which=1):
    """Maps of log2 of the temporal variance ratio (``which``: 0 raw, 1 detrended and
    deseasoned, 2 detrended)."""
    plt = _plt()
    maps = arrays["ratio_maps"]
    n = max(len(maps), 1)
    ncol = min(3, n)
    nrow = -(-n // ncol)
    fig, axs = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 3.2 * nrow), squeeze=False)
    im = None
    for ax, (key, pair) in zip(axs.ravel(), maps.items()):
        r = pair[which]
        # log2 ratio: 0 is a perfect match, +-1 a factor two too much or too little variance
        with np.errstate(divide="ignore", invalid="ignore"):
            im = ax.pcolormesh(np.log2(r), vmin=-2, vmax=2, cmap="RdBu_r")
        ax.set_title(key, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axs.ravel()[len(maps):]:
        ax.axis("off")
    if im is not None:
        fig.colorbar(im, ax=axs, shrink=0.7, label="log2(var emulator / var model)")
    fig.suptitle("temporal variance ratio (" + ("raw", "detrended and deseasoned",
                                                 "detrended")[which] + ")")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def spectra(arrays, path):
    """Isotropic spectra ``k P(k)``, truth against rollout."""
    plt = _plt()
    sp = arrays["spectra"]
    n = max(len(sp), 1)
    fig, axs = plt.subplots(1, n, figsize=(4.5 * n, 3.8), squeeze=False)
    for ax, (name, (k, a, b)) in zip(axs[0], sp.items()):
        lam = 2 * np.pi / k / 1e3
        ax.loglog(lam, a, "k-", label="ocean model")
        ax.loglog(lam, b, "C1-", label="emulator")
        ax.invert_xaxis()
        ax.set_xlabel("wavelength (km)")
        ax.set_ylabel("k P(k)")
        ax.set_title(name)
    axs[0, 0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def snapshot(truth, pred, path, var="temp", level=-1, index=-1):
    """Truth, rollout and difference of one variable at one level and time."""
    plt = _plt()
    t = np.asarray(truth[var].values[index])
    p = np.asarray(pred[var].values[index])
    if t.ndim == 3:
        t, p = t[level], p[level]
    fig, axs = plt.subplots(1, 3, figsize=(11, 3.6))
    vmin, vmax = np.nanpercentile(t, [1, 99])
    for ax, a, title in ((axs[0], t, "ocean model"), (axs[1], p, "emulator")):
        im = ax.pcolormesh(a, vmin=vmin, vmax=vmax, cmap="viridis")
        ax.set_title(title)
        fig.colorbar(im, ax=ax, shrink=0.8)
    d = p - t
    lim = np.nanmax(np.abs(d)) or 1.0
    im = axs[2].pcolormesh(d, vmin=-lim, vmax=lim, cmap="RdBu_r")
    axs[2].set_title("emulator - model")
    fig.colorbar(im, ax=axs[2], shrink=0.8)
    fig.suptitle(f"{var} level {level}, time index {index}")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def training_curve(log_path, path):
    """Training loss (unweighted MSE, or CRPS for ensemble training) and validation MSE
    against step from ``train_log.jsonl``."""
    plt = _plt()
    steps, loss, vsteps, vmse = [], [], [], []
    kind = "MSE"
    with open(log_path) as f:
        for line in f:
            r = json.loads(line)
            if "loss" in r:
                steps.append(r["step"])
                kind = "CRPS" if "crps" in r else "MSE"
                loss.append(r["crps"] if "crps" in r else r["mse"])
            elif "val_mse" in r:
                vsteps.append(r["step"])
                vmse.append(r["val_mse"])
    fig, ax = plt.subplots(figsize=(7, 3.5))
    if steps:
        ax.semilogy(steps, loss, "C0-", lw=0.6, alpha=0.7, label=f"train rollout {kind} (unweighted)")
    if vsteps:
        ax.semilogy(vsteps, vmse, "C3-o", ms=3, label="validation rollout MSE (EMA)")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel(f"{'CRPS, ' if kind == 'CRPS' else ''}MSE (normalised units)")
    if steps or vsteps:  # an empty log (a run stopped before its first step) has nothing to label
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def all_figures(arrays, truth, pred, outdir):
    """Write every evaluation figure into ``outdir``; returns the list of paths."""
    os.makedirs(outdir, exist_ok=True)
    paths = [band_series(arrays, os.path.join(outdir, "band_mean_temp.png")),
             rmse_profiles(arrays, os.path.join(outdir, "rmse_by_level.png")),
             rmse_lead(arrays, os.path.join(outdir, "rmse_by_lead.png")),
             ratio_maps(arrays, os.path.join(outdir, "variance_ratio_deseasoned.png"), which=1),
             ratio_maps(arrays, os.path.join(outdir, "variance_ratio_raw.png"), which=0),
             spectra(arrays, os.path.join(outdir, "spectra.png")),
             snapshot(truth, pred, os.path.join(outdir, "snapshot_sst.png"))]
    return paths
