"""Cheap per-step checks: the largest CFL number of a column, NaN/Inf propagating."""

import numpy as np

from .framework import kernel


def _ref_column_cfl(u, v, w, temp, salt, eke, cost, dxt, dyt, dzt, dt):
    c = np.maximum(np.abs(u) * dt / (cost[None, :, None] * dxt[None, None, :]),
                   np.abs(v) * dt / dyt[None, :, None])
    c = np.maximum(c, np.abs(w) * dt / dzt[:, None, None])
    bad = 0.0 * (u + v + w + temp + salt + eke)
    return (c.max(axis=0) + bad.sum(axis=0),)


@kernel("rows", outputs=("cfl_col",), reference=_ref_column_cfl, kind="diagnostic")
def column_cfl(i, j, k, cfl_col, u, v, w, temp, salt, eke, cost, dxt, dyt, dzt, dt):
    """``max_k max(|u| dt/(cost dxt), |v| dt/dyt, |w| dt/dzt)`` per column (T2); NaN or Inf in
    any of u, v, w, temp, salt, eke makes the result NaN.

    Row-wise: the running maximum is kept in cfl_col, ``0 * (u + v + w + ...)`` (0, or NaN
    for a NaN/Inf) added at every level, so a NaN sticks (``c > NaN`` is false)."""
    c = abs(u[k, j, i]) * dt / (cost[j] * dxt[i])
    cv = abs(v[k, j, i]) * dt / dyt[j]
    cw = abs(w[k, j, i]) * dt / dzt[k]
    c = cv if cv > c else c
    c = cw if cw > c else c
    m = cfl_col[j, i] if k > 0 else 0.0
    m = c if c > m else m
    cfl_col[j, i] = m + 0.0 * (u[k, j, i] + v[k, j, i] + w[k, j, i] + temp[k, j, i] + salt[k, j, i] + eke[k, j, i])
