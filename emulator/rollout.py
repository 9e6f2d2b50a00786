"""Autoregressive rollouts of a trained emulator.

Starting from two true states ``x_s, x_{s+1}``, each model call predicts the
next two from the previous two predictions and the forcing at the input times
(taken from the data), with no feedback from the truth::

    (x_{s+2k}, x_{s+2k+1}), (f_{s+2k}, f_{s+2k+1}) -> (x_{s+2k+2}, x_{s+2k+3}).

The result is converted back to physical units (``exp`` for ``log(eke+eps)``,
constants for dropped channels) and written as an ``xarray.Dataset`` with the
same variables, dimensions and masks as the data it emulates.
"""

from __future__ import annotations

import time

import numpy as np

from .data import EmulatorData, to_physical
from .model import Emulator, smooth_noise


def noise_per_channel(spec, noise):
    """Noise standard deviation of every prognostic channel from a number or a dict by variable."""
    P = spec.n_prognostic
    if isinstance(noise, dict):
        known = {ch.var for ch in spec.prognostic}
        bad = sorted(set(noise) - known)
        if bad:
            raise ValueError(f"noise: variable {bad[0]!r} is not one of the emulator's {sorted(known)}")
        sigma = np.array([float(noise.get(ch.var, 0.0)) for ch in spec.prognostic])
    else:
        sigma = np.full(P, float(noise))
    if not np.all(sigma >= 0):
        raise ValueError(f"noise={noise}: must be >= 0 (a standard deviation in normalised units)")
    return sigma


def training_bounds(data: EmulatorData, train_range, margin):
    """Per-channel bounds for :func:`rollout_normalized`'s ``clamp``.

    ``[min - margin (max - min), max + margin (max - min)]`` of each normalised prognostic
    channel over its wet points and the times ``train_range = (a, b)``.
    """
    if not margin >= 0:
        raise ValueError(f"clamp margin={margin}: must be >= 0 (a fraction of each channel's range)")
    a, b = int(train_range[0]), int(train_range[1])
    if not 0 <= a < b <= data.n_times:
        raise ValueError(f"train_range={train_range}: not a range of the data's {data.n_times} times")
    P = data.spec.n_prognostic
    lo, hi = np.zeros(P), np.zeros(P)
    for c in range(P):
        v = data.states[a:b, c][:, data.wet[c] > 0]
        mn, mx = float(v.min()), float(v.max())
        lo[c], hi[c] = mn - margin * (mx - mn), mx + margin * (mx - mn)
    return lo, hi


def rollout_normalized(emu: Emulator, data: EmulatorData, start: int, n_states: int,
                       progress=False, clamp=None, noise=0.0, seed=0, noise_length=0.0, latent=1.0):
    """Roll the emulator out in normalised space.

    Parameters
    ----------
    emu : Emulator
    data : EmulatorData
        Supplies the two initial states and the forcing.
    start : int
        Index of the first initial state ``x_s``.
    n_states : int
        Number of states to return, the two initial ones included.
    progress : bool
        Show a progress bar.
    clamp : (lo, hi) arrays of shape (P,), optional
        Clip every predicted state, channel by channel, into ``[lo, hi]`` (normalised units,
        see :func:`training_bounds`) before it is returned and fed back; land is reset to 0.
    noise : float or dict
        Stochastic rollout: add Gaussian noise of this standard deviation (normalised units,
        wet points only) to every predicted state before it is stored and fed back (before
        the clamp); a dict gives one value per prognostic variable (``{"temp": 0.005, ...}``,
        missing variables get none).  One ``seed`` is one ensemble member; the same seed gives
        the same rollout.
    noise_length : float
        Correlation length of the noise in grid cells: white noise smoothed with a Gaussian of
        this standard deviation (periodic in x, reflecting in y) and rescaled to unit variance
        (0: white in space, which puts its power at the grid scale).
    latent : float
        For a stochastic emulator (``emu.noise_channels > 0``): its noise inputs are standard
        normal values drawn from ``default_rng([seed, 7])`` at every call (one seed = one
        ensemble member), times ``latent`` (1: as trained; 0, or False: zeros, the deterministic
        member; values in between narrow the ensemble).  Ignored for a deterministic emulator.

    Returns
    -------
    states : numpy array (n_states, P, H, W) float32
        ``states[0:2]`` are the true initial states, the rest predictions.
    seconds : float
        Wall time of the model calls (excluding set-up and transfers of the result).
    """
    if n_states < 3:
        raise ValueError(f"n_states={n_states} must be >= 3 (two initial states and a prediction)")
    n_calls = -(-(n_states - 2) // 2)
    last = start + 2 * n_calls - 1  # forcing index of the last call's second input
    if start < 0 or last >= data.n_times:
        raise ValueError(f"a rollout of {n_states} states from start={start} needs forcing up to "
                         f"index {last}, but the data hold {data.n_times} times")
    bk = emu.bk
    xp = bk.xp
    dt = emu.unet.dtype
    P = data.spec.n_prognostic
    out = np.empty((n_states, P) + data.states.shape[2:], np.float32)
    out[:2] = data.states[start:start + 2]
    # (2, P, H, W) -> channel-major (2P, 1, H, W), channels time-major
    x = bk.asarray(out[:2].reshape(2 * P, 1, *out.shape[2:]), dtype=dt)
    sigma = noise_per_channel(data.spec, noise)
    rng = np.random.default_rng(seed)
    # the emulator's own noise inputs come from a stream of their own (the same member whether
    # or not output noise is added)
    latent = float(latent)
    if not (latent >= 0 and np.isfinite(latent)):
        raise ValueError(f"latent={latent}: must be a finite number >= 0 (scale of the noise inputs)")
    lrng = np.random.default_rng([seed, 7]) if (latent > 0 and emu.noise_channels) else None
    # noise std per output channel (two times, channel-major) on wet points
    wet2 = (np.concatenate([data.wet, data.wet]) * np.tile(sigma, 2)[:, None, None])[:, None]
    noise = float(sigma.max()) if sigma.size else 0.0
    if not noise_length >= 0:
        raise ValueError(f"noise_length={noise_length}: must be >= 0 (grid cells)")

    def draw(shape):
        e = rng.standard_normal(shape)
        if noise_length > 0:
            e = smooth_noise(e, noise_length)
        return e
    if clamp is not None:
        lo, hi = (np.asarray(b, np.float64).reshape(-1) for b in clamp)
        if lo.shape != (P,) or hi.shape != (P,) or not np.all(lo <= hi):
            raise ValueError(f"clamp: need two arrays of {P} bounds with lo <= hi")
        # channel-major layout of a call's output: (2P, 1, H, W), time-major channels
        lo_x = bk.asarray(np.tile(lo, 2).reshape(2 * P, 1, 1, 1), dtype=dt)
        hi_x = bk.asarray(np.tile(hi, 2).reshape(2 * P, 1, 1, 1), dtype=dt)
        wet_x = bk.asarray(np.concatenate([data.wet, data.wet])[:, None], dtype=dt)
    it = range(n_calls)
    if progress:
        from tqdm import tqdm  # noqa: PLC0415

        it = tqdm(it, desc="rollout", unit="call")
    t0 = time.perf_counter()
    for k in it:
        # forcing at the two input times comes from the data, the states from the model
        i = start + 2 * k
        f = np.concatenate([data.forcing[i], data.forcing[i + 1]])[:, None]
        z = emu.draw_noise(lrng, 1) if lrng is not None else None
        if z is not None and latent != 1.0:
            z *= latent
        y, _ = emu.step(x, bk.asarray(f, dtype=dt), train=False, store="none", noise=z)
        if noise > 0:
            # drawn on the host (one NumPy stream for both backends, so a seed means the same
            # ensemble member on CPU and GPU); the copy happens only in stochastic rollouts
            y = y + bk.asarray(draw(y.shape) * wet2, dtype=dt)
        if clamp is not None:
            y = xp.minimum(xp.maximum(y, lo_x), hi_x) * wet_x  # land stays 0
        yh = bk.to_numpy(y)
        n0 = 2 + 2 * k
        m = min(2, n_states - n0)  # the last call may overshoot n_states by one
        out[n0:n0 + m] = yh.reshape(2, P, *out.shape[2:])[:m]
        x = y
    if bk.is_gpu:  # pragma: no cover - GPU only
        xp.cuda.get_current_stream().synchronize()
    return out, time.perf_counter() - t0


def physical_dataset(states, data: EmulatorData, template, start, attrs=None):
    """Wrap normalised states as an ``xarray.Dataset`` in physical units.

    Parameters
    ----------
    states : array (T, P, H, W)
    data : EmulatorData
    template : xarray.Dataset
        The data set the states emulate (for dimension names, coordinates and
        masks); its times ``start .. start + T - 1`` label the result.
    start : int
    attrs : dict, optional
        Global attributes of the result.
    """
    import xarray as xr  # noqa: PLC0415

    spec = data.spec
    fields = to_physical(states, spec, wet=data.wet)
    T = states.shape[0]
    tsel = template.isel(time=slice(start, start + T))
    out = {}
    for var, arr in fields.items():
        dims = template[var].dims
        val = arr[:, 0] if var == "psi" else arr
        out[var] = (dims, val.astype(np.float32 if template[var].dtype == np.float32 else np.float64))
    ds = xr.Dataset(out, coords={k: tsel.coords[k] for k in tsel.coords})
    for m in ("maskT", "maskU", "maskV", "maskW", "dzt"):
        if m in template:
            ds[m] = template[m]
    ds.attrs.update(attrs or {})
    return ds


def run_rollout(emu: Emulator, data: EmulatorData, template, start, n_states, progress=False,
                clamp=None, noise=0.0, seed=0, noise_length=0.0, latent=1.0):
    """Roll out and return ``(dataset, timing)`` (``clamp``, ``noise``, ``seed``, ``latent``: see
    :func:`rollout_normalized`).

    ``timing`` holds the wall time of the model calls and the seconds per
    simulated year (using the data's averaging interval).
    """
    states, seconds = rollout_normalized(emu, data, start, n_states, progress=progress,
                                         clamp=clamp, noise=noise, seed=seed,
                                         noise_length=noise_length, latent=latent)
    dt_state = float(np.median(np.diff(data.time))) if data.n_times > 1 else float("nan")
    sim_years = (n_states - 2) * dt_state / data.spec.year_seconds
    timing = {"seconds": seconds, "model_calls": -(-(n_states - 2) // 2),
              "simulated_years": sim_years,
              "seconds_per_simulated_year": seconds / sim_years if sim_years > 0 else float("nan")}
    attrs = {"source": "stommel emulator rollout", "start_index": int(start),
             "n_initial_states": 2, **{k: float(v) for k, v in timing.items()}}
    if emu.noise_channels:
        attrs.update(noise_channels=int(emu.noise_channels), latent_scale=float(latent),
                     noise_length=float(emu.noise_length), seed=int(seed))
    ds = physical_dataset(states, data, template, start, attrs)
    return ds, timing
