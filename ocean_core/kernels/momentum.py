"""Explicit momentum tendencies (Coriolis and metric terms, flux-form advection,
wind stress, hydrostatic pressure and its gradient).

All arrays are ``[k, j, i]`` with 2 halo cells in x and y (see :mod:`ocean_core.grid`).
The *interior* is ``2 <= i < NX-2``, ``2 <= j < NY-2``; outputs are written on the
whole array and are zero outside the region where Veros defines them.
"""

import numpy as np

from .framework import device, fuse, kernel
from .. import constants as C


@device
def in_interior(i, j, ni, nj):
    """True for interior points ``2 <= i < ni-2, 2 <= j < nj-2``."""
    # bitwise &, not `and` (which Numba lowers to branches): loops over i stay vectorisable
    return (i >= 2) & (i < ni - 2) & (j >= 2) & (j < nj - 2)


@device
def imax(a, b):
    """``max(a, b)`` of two integers as a select.  Numba's builtin ``max`` keeps LLVM from
    vectorising the loop it sits in (measured: lateral_friction's interior loop stayed scalar)."""
    return b if b > a else a


@device
def imin(a, b):
    """``min(a, b)`` of two integers as a select (see :func:`imax`)."""
    return b if b < a else a


# ---------------------------------------------------------------------------
# Coriolis and metric terms (energy conserving), U and V points
# ---------------------------------------------------------------------------

def momentum_metrics(grid):
    """Static ratios and reciprocals of the momentum kernels (grid only), so that they divide
    nowhere per grid point.  With ``NX``/``NY`` the halo-inclusive sizes:

    * ``cor_rx0[i] = dxt_i / dxu_i``, ``cor_rx1[i] = dxt_{i+1} / dxu_i`` (xu; 0 on the last column),
      the Coriolis/metric weights of the two T points around U point i;
    * ``cor_ry0[j] = dyt_j cost_j / (dyu_j cosu_j)``, ``cor_ry1[j] = dyt_{j+1} cost_{j+1} / (dyu_j cosu_j)``
      (yu; 0 on the last row), those of the two T rows around V row j;
    * ``rdzt[k] = 1 / dzt_k`` (zt); ``rarea_u = 1 / area_u`` (yt, xu), ``rarea_v = 1 / area_v`` (yu, xt),
      the advective divergence metrics;
    * ``rdx_u = 1 / (cost dxu)`` (yt, xu) and ``rdy_v[j] = 1 / dyu_j`` (yu), the pressure gradient's.

    A tendency is then a product of these with the fluxes; results change at round-off.  Measured at
    0.25 deg, 1 thread, same process: the forward momentum tendency 0.96 of its time with divisions
    (the kernel is bound by its loads, not by the divisions), the tangents/adjoints of Coriolis and
    advection 0.90-0.97.
    """
    dxt, dxu = np.asarray(grid.dxt, float), np.asarray(grid.dxu, float)
    dyt, dyu = np.asarray(grid.dyt, float), np.asarray(grid.dyu, float)
    cost, cosu = np.asarray(grid.cost, float), np.asarray(grid.cosu, float)
    rx1 = np.zeros_like(dxu)
    rx1[:-1] = dxt[1:] / dxu[:-1]
    ry1 = np.zeros_like(dyu)
    ry1[:-1] = dyt[1:] * cost[1:] / (dyu[:-1] * cosu[:-1])
    return {"cor_rx0": dxt / dxu, "cor_rx1": rx1, "cor_ry0": dyt * cost / (dyu * cosu), "cor_ry1": ry1,
            "rdzt": 1.0 / np.asarray(grid.dzt, float), "rarea_u": 1.0 / np.asarray(grid.area_u, float),
            "rarea_v": 1.0 / np.asarray(grid.area_v, float), "rdx_u": 1.0 / (cost[:, None] * dxu[None, :]),
            "rdy_v": 1.0 / dyu}


#: the momentum_metrics arrays
MOMENTUM_METRICS = ("cor_rx0", "cor_rx1", "cor_ry0", "cor_ry1", "rdzt", "rarea_u", "rarea_v", "rdx_u", "rdy_v")


@device
def coriolis_u_at(k, j, i, u, v, coriolis_t, tantr, cor_rx0, cor_rx1):
    """du_cor at the U point (k, j, i), without the mask.

    ``0.25 [f_i (v_{j}+v_{j-1}) r0_i + f_{i+1} (v^{i+1}_{j}+v^{i+1}_{j-1}) r1_i]`` with
    ``r0 = dxt_i / dxu_i``, ``r1 = dxt_{i+1} / dxu_i`` (:func:`momentum_metrics`), plus the metric term
    ``0.125 tantr_j [(u_i+u_{i-1})(v_j+v_{j-1}) r0_i + (u_{i+1}+u_i)(...) r1_i]``.
    """
    vs0 = v[k, j, i] + v[k, j - 1, i]
    vs1 = v[k, j, i + 1] + v[k, j - 1, i + 1]
    r0 = cor_rx0[i]
    r1 = cor_rx1[i]
    cor = 0.25 * (coriolis_t[j, i] * vs0 * r0 + coriolis_t[j, i + 1] * vs1 * r1)
    met = 0.125 * tantr[j] * ((u[k, j, i] + u[k, j, i - 1]) * vs0 * r0 + (u[k, j, i + 1] + u[k, j, i]) * vs1 * r1)
    return cor, met


@device
def coriolis_v_at(k, j, i, u, coriolis_t, tantr, cor_ry0, cor_ry1):
    """dv_cor at the V point (k, j, i), without the mask (Coriolis, metric); weights
    ``w0 = dyt_j cost_j / (dyu_j cosu_j)``, ``w1 = dyt_{j+1} cost_{j+1} / (dyu_j cosu_j)``."""
    us0 = u[k, j, i - 1] + u[k, j, i]
    us1 = u[k, j + 1, i - 1] + u[k, j + 1, i]
    w0 = cor_ry0[j]
    w1 = cor_ry1[j]
    cor = -0.25 * (coriolis_t[j, i] * us0 * w0 + coriolis_t[j + 1, i] * us1 * w1)
    met = -0.125 * (tantr[j] * us0 * us0 * w0 + tantr[j + 1] * us1 * us1 * w1)
    return cor, met


@device
def cormet_u_at(k, j, i, u, v, coriolis_t, tantr, cor_rx0, cor_rx1, maskU):
    """du_cor at an interior U point: ``maskU cor + maskU met``."""
    cu, mu = coriolis_u_at(k, j, i, u, v, coriolis_t, tantr, cor_rx0, cor_rx1)
    return maskU[k, j, i] * cu + maskU[k, j, i] * mu


@device
def cormet_v_at(k, j, i, u, coriolis_t, tantr, cor_ry0, cor_ry1, maskV):
    """dv_cor at an interior V point: ``maskV cor + maskV met``."""
    cv, mv = coriolis_v_at(k, j, i, u, coriolis_t, tantr, cor_ry0, cor_ry1)
    return maskV[k, j, i] * cv + maskV[k, j, i] * mv


def _ref_coriolis_metric(u, v, coriolis_t, tantr, cor_rx0, cor_rx1, cor_ry0, cor_ry1, maskU, maskV):
    du = np.zeros_like(u)
    dv = np.zeros_like(v)
    s = (slice(None), slice(2, -2), slice(2, -2))
    f = coriolis_t[None]
    vs0 = v[:, 2:-2, 2:-2] + v[:, 1:-3, 2:-2]
    vs1 = v[:, 2:-2, 3:-1] + v[:, 1:-3, 3:-1]
    rx0 = cor_rx0[None, None, 2:-2]
    rx1 = cor_rx1[None, None, 2:-2]
    du[s] = maskU[s] * (0.25 * (f[:, 2:-2, 2:-2] * vs0 * rx0 + f[:, 2:-2, 3:-1] * vs1 * rx1)
                        + 0.125 * tantr[None, 2:-2, None] * ((u[:, 2:-2, 2:-2] + u[:, 2:-2, 1:-3]) * vs0 * rx0
                                                             + (u[:, 2:-2, 3:-1] + u[:, 2:-2, 2:-2]) * vs1 * rx1))
    us0 = u[:, 2:-2, 1:-3] + u[:, 2:-2, 2:-2]
    us1 = u[:, 3:-1, 1:-3] + u[:, 3:-1, 2:-2]
    w0 = cor_ry0[None, 2:-2, None]
    w1 = cor_ry1[None, 2:-2, None]
    dv[s] = maskV[s] * (-0.25 * (f[:, 2:-2, 2:-2] * us0 * w0 + f[:, 3:-1, 2:-2] * us1 * w1)
                        - 0.125 * (tantr[None, 2:-2, None] * us0 ** 2 * w0 + tantr[None, 3:-1, None] * us1 ** 2 * w1))
    return du, dv


@kernel("3d", outputs=("du_cor", "dv_cor"), reference=_ref_coriolis_metric, active=("u", "v"),
        split=True, same_shapes=True)
def coriolis_metric(i, j, k, du_cor, dv_cor, u, v, coriolis_t, tantr, cor_rx0, cor_rx1, cor_ry0, cor_ry1,
                    maskU, maskV):
    """Coriolis force and spherical metric terms at U and V points (Veros ``tend_coriolisf``).

    Arrays: u, du_cor, maskU at U (zt, yt, xu); v, dv_cor, maskV at V (zt, yu, xt);
    coriolis_t (yt, xt); tantr (yt); cor_rx0, cor_rx1 (xu) and cor_ry0, cor_ry1 (yu) the
    metric ratios of :func:`momentum_metrics`.
    """
    if in_interior(i, j, u.shape[2], u.shape[1]):
        du_cor[k, j, i] = cormet_u_at(k, j, i, u, v, coriolis_t, tantr, cor_rx0, cor_rx1, maskU)
        dv_cor[k, j, i] = cormet_v_at(k, j, i, u, coriolis_t, tantr, cor_ry0, cor_ry1, maskV)
    else:
        du_cor[k, j, i] = 0.0
        dv_cor[k, j, i] = 0.0


# ---------------------------------------------------------------------------
# Momentum advection: 2nd-order flux form, energy conserving (MITgcm / Veros)
# transports utr = u dyt dzt (U), vtr = v cosu dxt dzt (V), wtr = w area_t (W)
# ---------------------------------------------------------------------------

@device
def utr_at(k, j, i, u, maskU, dyt, dzt):
    return u[k, j, i] * maskU[k, j, i] * dyt[j] * dzt[k]


@device
def vtr_at(k, j, i, v, maskV, dxt, dzt, cosu):
    return dzt[k] * cosu[j] * dxt[i] * v[k, j, i] * maskV[k, j, i]


@device
def wtr_at(k, j, i, w, maskW, area_t):
    return w[k, j, i] * maskW[k, j, i] * area_t[j, i]


@device
def madv_u_at(k, j, i, u, v, w, maskU, maskV, maskW, dxt, dyt, dzt, cosu, area_t, rdzt, rarea_u):
    """du_adv at an interior U point (``rdzt rarea_u = 1 / (dzt area_u)``)."""
    nz = u.shape[0]
    # flux_east at faces i and i-1 (T points i+1 and i)
    fe1 = 0.25 * (u[k, j, i] + u[k, j, i + 1]) * (utr_at(k, j, i + 1, u, maskU, dyt, dzt) + utr_at(k, j, i, u, maskU, dyt, dzt))
    fe0 = 0.25 * (u[k, j, i - 1] + u[k, j, i]) * (utr_at(k, j, i, u, maskU, dyt, dzt) + utr_at(k, j, i - 1, u, maskU, dyt, dzt))
    # flux_north at corners j and j-1
    fn1 = 0.25 * (u[k, j, i] + u[k, j + 1, i]) * (vtr_at(k, j, i + 1, v, maskV, dxt, dzt, cosu) + vtr_at(k, j, i, v, maskV, dxt, dzt, cosu))
    fn0 = 0.25 * (u[k, j - 1, i] + u[k, j, i]) * (vtr_at(k, j - 1, i + 1, v, maskV, dxt, dzt, cosu) + vtr_at(k, j - 1, i, v, maskV, dxt, dzt, cosu))
    rv = rdzt[k] * rarea_u[j, i]
    r = -maskU[k, j, i] * (fe1 - fe0 + fn1 - fn0) * rv
    tmp = maskU[k, j, i] * rv
    # vertical fluxes with clamped level indices and selects, not branches: the loads are
    # then unconditional and the i loop vectorises without masked loads (same bits)
    kp = imin(k + 1, nz - 1)
    km = imax(k - 1, 0)
    ft1 = 0.25 * (u[kp, j, i] + u[k, j, i]) * (wtr_at(k, j, i, w, maskW, area_t) + wtr_at(k, j, i + 1, w, maskW, area_t))
    r1 = r - tmp * ft1
    r = r1 if k < nz - 1 else r
    ft0 = 0.25 * (u[k, j, i] + u[km, j, i]) * (wtr_at(km, j, i, w, maskW, area_t) + wtr_at(km, j, i + 1, w, maskW, area_t))
    r0 = r + tmp * ft0
    return r0 if k > 0 else r


@device
def madv_v_at(k, j, i, u, v, w, maskU, maskV, maskW, dxt, dyt, dzt, cosu, area_t, rdzt, rarea_v):
    """dv_adv at an interior V point (``rdzt rarea_v = 1 / (dzt area_v)``)."""
    nz = v.shape[0]
    fe1 = 0.25 * (v[k, j, i] + v[k, j, i + 1]) * (utr_at(k, j + 1, i, u, maskU, dyt, dzt) + utr_at(k, j, i, u, maskU, dyt, dzt))
    fe0 = 0.25 * (v[k, j, i - 1] + v[k, j, i]) * (utr_at(k, j + 1, i - 1, u, maskU, dyt, dzt) + utr_at(k, j, i - 1, u, maskU, dyt, dzt))
    fn1 = 0.25 * (v[k, j, i] + v[k, j + 1, i]) * (vtr_at(k, j + 1, i, v, maskV, dxt, dzt, cosu) + vtr_at(k, j, i, v, maskV, dxt, dzt, cosu))
    fn0 = 0.25 * (v[k, j - 1, i] + v[k, j, i]) * (vtr_at(k, j, i, v, maskV, dxt, dzt, cosu) + vtr_at(k, j - 1, i, v, maskV, dxt, dzt, cosu))
    rv = rdzt[k] * rarea_v[j, i]
    r = -maskV[k, j, i] * (fe1 - fe0 + fn1 - fn0) * rv
    tmp = maskV[k, j, i] * rv
    # vertical fluxes with clamped level indices and selects, not branches: the loads are
    # then unconditional and the i loop vectorises without masked loads (same bits)
    kp = imin(k + 1, nz - 1)
    km = imax(k - 1, 0)
    ft1 = 0.25 * (v[kp, j, i] + v[k, j, i]) * (wtr_at(k, j, i, w, maskW, area_t) + wtr_at(k, j + 1, i, w, maskW, area_t))
    r1 = r - tmp * ft1
    r = r1 if k < nz - 1 else r
    ft0 = 0.25 * (v[k, j, i] + v[km, j, i]) * (wtr_at(km, j, i, w, maskW, area_t) + wtr_at(km, j + 1, i, w, maskW, area_t))
    r0 = r + tmp * ft0
    return r0 if k > 0 else r


def _ref_momentum_advection(u, v, w, maskU, maskV, maskW, dxt, dyt, dzt, cosu, area_t, rdzt, rarea_u, rarea_v):
    dz = dzt[:, None, None]
    utr = u * maskU * dyt[None, :, None] * dz
    vtr = dz * cosu[None, :, None] * dxt[None, None, :] * v * maskV
    wtr = w * maskW * area_t[None]
    out = []
    for q, tr_e, tr_n, wsh, rarea, mask in (
        (u, lambda: (utr[:, 2:-2, 2:-1] + utr[:, 2:-2, 1:-2]), lambda: (vtr[:, 1:-2, 3:-1] + vtr[:, 1:-2, 2:-2]),
         (slice(2, -2), slice(3, -1)), rarea_u, maskU),
        (v, lambda: (utr[:, 3:-1, 1:-2] + utr[:, 2:-2, 1:-2]), lambda: (vtr[:, 2:-1, 2:-2] + vtr[:, 1:-2, 2:-2]),
         (slice(3, -1), slice(2, -2)), rarea_v, maskV),
    ):
        fe = np.zeros_like(q)
        fn = np.zeros_like(q)
        ft = np.zeros_like(q)
        fe[:, 2:-2, 1:-2] = 0.25 * (q[:, 2:-2, 1:-2] + q[:, 2:-2, 2:-1]) * tr_e()
        fn[:, 1:-2, 2:-2] = 0.25 * (q[:, 1:-2, 2:-2] + q[:, 2:-1, 2:-2]) * tr_n()
        ft[:-1, 2:-2, 2:-2] = 0.25 * (q[1:, 2:-2, 2:-2] + q[:-1, 2:-2, 2:-2]) * (
            wtr[:-1, 2:-2, 2:-2] + wtr[(slice(None, -1),) + wsh])
        d = np.zeros_like(q)
        rv = rdzt[:, None, None] * rarea[None]
        d[:, 2:-2, 2:-2] = -mask[:, 2:-2, 2:-2] * (fe[:, 2:-2, 2:-2] - fe[:, 2:-2, 1:-3] + fn[:, 2:-2, 2:-2]
                                                   - fn[:, 1:-3, 2:-2]) * rv[:, 2:-2, 2:-2]
        tmp = mask * rv
        d = d - tmp * ft
        d[1:] += tmp[1:] * ft[:-1]
        out.append(d)
    return tuple(out)


@kernel("3d", outputs=("du_adv", "dv_adv"), reference=_ref_momentum_advection, active=("u", "v", "w"),
        split=True, same_shapes=True)
def momentum_advection(i, j, k, du_adv, dv_adv, u, v, w, maskU, maskV, maskW, dxt, dyt, dzt, cosu,
                       area_t, rdzt, rarea_u, rarea_v):
    """Second-order, energy-conserving flux-form momentum advection (Veros ``momentum_advection``).

    ``du_adv = -maskU [d_x(fe) + d_y(fn)] / (dzt area_u) - maskU d_z(ft) / (dzt area_u)`` with
    ``fe = 0.25 (u_i + u_{i+1})(utr_{i+1} + utr_i)`` etc.; du_adv at U, dv_adv at V,
    w at W points; area_t (2-d); ``1 / (dzt area_u)`` as ``rdzt rarea_u`` (:func:`momentum_metrics`).
    """
    if in_interior(i, j, u.shape[2], u.shape[1]):
        du_adv[k, j, i] = madv_u_at(k, j, i, u, v, w, maskU, maskV, maskW, dxt, dyt, dzt, cosu, area_t, rdzt,
                                    rarea_u)
        dv_adv[k, j, i] = madv_v_at(k, j, i, u, v, w, maskU, maskV, maskW, dxt, dyt, dzt, cosu, area_t, rdzt,
                                    rarea_v)
    else:
        du_adv[k, j, i] = 0.0
        dv_adv[k, j, i] = 0.0


# ---------------------------------------------------------------------------
# hydrostatic pressure (column)
# ---------------------------------------------------------------------------

def _ref_hydrostatic_pressure(rho, maskT, dzw):
    nz = rho.shape[0]
    p = np.zeros_like(rho)
    gr = C.GRAV / C.RHO_0
    p[nz - 1] = 0.5 * rho[nz - 1] * C.GRAV / C.RHO_0 * dzw[nz - 1] * maskT[nz - 1]
    for k in range(nz - 2, -1, -1):
        p[k] = maskT[k] * (p[k + 1] + 0.5 * dzw[k] * gr * (rho[k + 1] + rho[k]))
    return (p,)


@kernel("rows", outputs=("p_hydro",), reference=_ref_hydrostatic_pressure, active=("rho",))
def hydrostatic_pressure(i, j, k, p_hydro, rho, maskT, dzw):
    """Hydrostatic pressure (divided by rho_0) at T points from the density anomaly rho (T).

    ``p[nz-1] = 0.5 rho[nz-1] g/rho_0 dzw[nz-1]``;
    ``p[k] = maskT[k] (p[k+1] + 0.5 dzw[k] g/rho_0 (rho[k+1] + rho[k]))`` downward
    (row-wise: sweep k computes level ``kl = nz-1-k``, p[kl+1] read back).
    """
    nz = rho.shape[0]
    gr = C.GRAV / C.RHO_0
    kl = nz - 1 - k
    if k == 0:
        p_hydro[kl, j, i] = 0.5 * rho[kl, j, i] * C.GRAV / C.RHO_0 * dzw[kl] * maskT[kl, j, i]
    else:
        p_hydro[kl, j, i] = maskT[kl, j, i] * (p_hydro[kl + 1, j, i] + 0.5 * dzw[kl] * gr * (rho[kl + 1, j, i] + rho[kl, j, i]))


# ---------------------------------------------------------------------------
# explicit tendency: du[tau] = du_cor + wind + du_adv - grad p
# ---------------------------------------------------------------------------

def _ref_explicit_tendency(du_cor, dv_cor, du_adv, dv_adv, p_hydro, surface_taux, surface_tauy, maskU, maskV,
                           dzt, rdx_u, rdy_v):
    du = np.zeros_like(du_cor)
    dv = np.zeros_like(dv_cor)
    s = (slice(None), slice(2, -2), slice(2, -2))
    du[s] = du_cor[s]
    dv[s] = dv_cor[s]
    du[-1, 2:-2, 2:-2] += maskU[-1, 2:-2, 2:-2] * surface_taux[2:-2, 2:-2] / dzt[-1] / C.RHO_0
    dv[-1, 2:-2, 2:-2] += maskV[-1, 2:-2, 2:-2] * surface_tauy[2:-2, 2:-2] / dzt[-1] / C.RHO_0
    du[s] += du_adv[s]
    dv[s] += dv_adv[s]
    du[s] += -(p_hydro[:, 2:-2, 3:-1] - p_hydro[:, 2:-2, 2:-2]) * rdx_u[None, 2:-2, 2:-2] * maskU[s]
    dv[s] += -(p_hydro[:, 3:-1, 2:-2] - p_hydro[:, 2:-2, 2:-2]) * rdy_v[None, 2:-2, None] * maskV[s]
    return du, dv


@kernel("3d", outputs=("du", "dv"), reference=_ref_explicit_tendency,
        active=("du_cor", "dv_cor", "du_adv", "dv_adv", "p_hydro", "surface_taux", "surface_tauy"))
def explicit_tendency(i, j, k, du, dv, du_cor, dv_cor, du_adv, dv_adv, p_hydro, surface_taux, surface_tauy,
                      maskU, maskV, dzt, rdx_u, rdy_v):
    """The Adams-Bashforth-extrapolated momentum tendency at U / V points.

    ``du = du_cor + [k=top] maskU taux / (dzt rho_0) + du_adv - maskU (p_{i+1} - p_i) / (cost dxu)``
    (same for v with ``(p_{j+1} - p_j) / dyu``); surface_taux (yt, xu), surface_tauy (yu, xt);
    ``1 / (cost dxu)`` is rdx_u (yt, xu), ``1 / dyu`` rdy_v (yu) (:func:`momentum_metrics`).
    """
    if in_interior(i, j, du.shape[2], du.shape[1]):
        du[k, j, i] = explicit_u_at(k, j, i, du_cor[k, j, i], du_adv[k, j, i], p_hydro, surface_taux, maskU,
                                    dzt, rdx_u)
        dv[k, j, i] = explicit_v_at(k, j, i, dv_cor[k, j, i], dv_adv[k, j, i], p_hydro, surface_tauy, maskV,
                                    dzt, rdy_v)
    else:
        du[k, j, i] = 0.0
        dv[k, j, i] = 0.0


@device
def explicit_u_at(k, j, i, cor, adv, p_hydro, surface_taux, maskU, dzt, rdx_u):
    """du at an interior U point from its Coriolis/metric and advective parts (summed in this order)."""
    a = cor
    aw = a + maskU[k, j, i] * surface_taux[j, i] / dzt[k] / C.RHO_0
    a = aw if k == p_hydro.shape[0] - 1 else a
    a = a + adv
    return a + (-(p_hydro[k, j, i + 1] - p_hydro[k, j, i]) * rdx_u[j, i] * maskU[k, j, i])


@device
def explicit_v_at(k, j, i, cor, adv, p_hydro, surface_tauy, maskV, dzt, rdy_v):
    """dv at an interior V point (see :func:`explicit_u_at`)."""
    b = cor
    bw = b + maskV[k, j, i] * surface_tauy[j, i] / dzt[k] / C.RHO_0
    b = bw if k == p_hydro.shape[0] - 1 else b
    b = b + adv
    return b + (-(p_hydro[k, j + 1, i] - p_hydro[k, j, i]) * rdy_v[j] * maskV[k, j, i])


@device
def _momentum_tendency_interior(i, j, k, du, dv, u, v, coriolis_t, tantr, cor_rx0, cor_rx1, cor_ry0, cor_ry1, maskU,
                                maskV, w, maskW, dxt, dyt, dzt, cosu, area_t, rdzt, rarea_u, rarea_v, p_hydro,
                                surface_taux, surface_tauy, rdx_u, rdy_v):
    """:func:`_momentum_tendency` at an interior point (no interior test: the split launcher's
    interior loop; see the framework's ``interior=``)."""
    cor = cormet_u_at(k, j, i, u, v, coriolis_t, tantr, cor_rx0, cor_rx1, maskU)
    adv = madv_u_at(k, j, i, u, v, w, maskU, maskV, maskW, dxt, dyt, dzt, cosu, area_t, rdzt, rarea_u)
    du[k, j, i] = explicit_u_at(k, j, i, cor, adv, p_hydro, surface_taux, maskU, dzt, rdx_u)
    cor = cormet_v_at(k, j, i, u, coriolis_t, tantr, cor_ry0, cor_ry1, maskV)
    adv = madv_v_at(k, j, i, u, v, w, maskU, maskV, maskW, dxt, dyt, dzt, cosu, area_t, rdzt, rarea_v)
    dv[k, j, i] = explicit_v_at(k, j, i, cor, adv, p_hydro, surface_tauy, maskV, dzt, rdy_v)


def _momentum_tendency(i, j, k, du, dv, u, v, coriolis_t, tantr, cor_rx0, cor_rx1, cor_ry0, cor_ry1, maskU, maskV,
                       w, maskW, dxt, dyt, dzt, cosu, area_t, rdzt, rarea_u, rarea_v, p_hydro, surface_taux,
                       surface_tauy, rdx_u, rdy_v):
    """The explicit momentum tendency in one pass over memory (coriolis_metric, momentum_advection
    and explicit_tendency fused): at every point the Coriolis and metric terms and the advection,
    kept in registers, summed with wind stress and pressure gradient (``p_hydro`` computed before).

    ``du = maskU (cor + met) + [k=top] maskU taux / (dzt rho_0) + du_adv - maskU (p_{i+1} - p_i) / (cost dxu)``
    at U points, dv likewise at V points; du_cor, dv_cor, du_adv, dv_adv are not stored.
    Same operations in the same order as the three kernels, so the same bits (tested).
    """
    if in_interior(i, j, u.shape[2], u.shape[1]):
        _momentum_tendency_interior(i, j, k, du, dv, u, v, coriolis_t, tantr, cor_rx0, cor_rx1, cor_ry0, cor_ry1,
                                    maskU, maskV, w, maskW, dxt, dyt, dzt, cosu, area_t, rdzt, rarea_u, rarea_v,
                                    p_hydro, surface_taux, surface_tauy, rdx_u, rdy_v)
    else:
        du[k, j, i] = 0.0
        dv[k, j, i] = 0.0


#: The explicit momentum tendency, fused: the intermediate tendencies stay in registers
#: (measured at 0.25 deg, same process: 0.67 of the time of the fused launch that stored
#: them on 1 thread, 0.72 on 2).
momentum_tendency = fuse("momentum_tendency", coriolis_metric, momentum_advection, explicit_tendency,
                         split=True, same_shapes=True, internal=("du_cor", "dv_cor", "du_adv", "dv_adv"),
                         body=_momentum_tendency, interior=_momentum_tendency_interior)
