"""External (barotropic) mode of the rigid-lid model: depth-mean forcing, the curl
that drives the streamfunction, the psi time step and the velocity update.

psi, dpsi and the island basis functions ``psin`` live at Z points (NE corners),
shape ``(NY, NX)``; ``psin`` is ``(nisle, NY, NX)``.
"""

import numpy as np

from .framework import device, kernel
from .momentum import imax, in_interior
from .. import constants as C


def external_metrics(grid):
    """Reciprocal metrics of the external mode (grid only), so that its kernels divide nowhere per point:
    ``rdx_z = 1 / (cosu dxu)`` (yu, xu), the zonal one of the curl at Z points (:func:`streamfunction_rhs`),
    and ``rdy_u[j] = 1 / dyt_j`` (yt), the meridional psi difference across a U point
    (:func:`velocity_update`).  Two more equal friction arrays exactly and are read from there:
    ``fric_ry_v = 1 / (dyu cosu)`` (yu) and ``fric_rx_v = 1 / (cosu dxt)`` (yu, xt),
    :func:`ocean_core.kernels.friction.friction_metrics`.
    """
    dxu, dyt = np.asarray(grid.dxu, float), np.asarray(grid.dyt, float)
    cosu = np.asarray(grid.cosu, float)
    return {"rdx_z": 1.0 / (cosu[:, None] * dxu[None, :]), "rdy_u": 1.0 / dyt}


#: the external_metrics arrays
EXTERNAL_METRICS = ("rdx_z", "rdy_u")


def _ref_barotropic_forcing(du, dv, du_mix, dv_mix, maskU, maskV, dzt, hur, hvr):
    dz = dzt[:, None, None]
    uloc = ((du + du_mix) * maskU * dz).sum(axis=0) * hur
    vloc = ((dv + dv_mix) * maskV * dz).sum(axis=0) * hvr
    return uloc, vloc


@kernel("rows", outputs=("uloc", "vloc"), reference=_ref_barotropic_forcing,
        active=("du", "dv", "du_mix", "dv_mix"))
def barotropic_forcing(i, j, k, uloc, vloc, du, dv, du_mix, dv_mix, maskU, maskV, dzt, hur, hvr):
    """Depth means of the momentum tendency: ``uloc = hur sum_k (du + du_mix) maskU dzt`` (U, 2-d),
    ``vloc`` likewise at V points.  The current tendency ``du[tau]`` is used, not its AB2 extrapolation.
    Row-wise: the partial sum (from k = 0 up) is kept in uloc / vloc, times hur / hvr at the top."""
    nz = du.shape[0]
    su = (uloc[j, i] if k > 0 else 0.0) + (du[k, j, i] + du_mix[k, j, i]) * maskU[k, j, i] * dzt[k]
    sv = (vloc[j, i] if k > 0 else 0.0) + (dv[k, j, i] + dv_mix[k, j, i]) * maskV[k, j, i] * dzt[k]
    if k == nz - 1:
        su = su * hur[j, i]
        sv = sv * hvr[j, i]
    uloc[j, i] = su
    vloc[j, i] = sv


def _ref_streamfunction_rhs(uloc, vloc, cost, rdx_z, fric_ry_v):
    forc = np.zeros_like(uloc)
    forc[2:-2, 2:-2] = ((vloc[2:-2, 3:-1] - vloc[2:-2, 2:-2]) * rdx_z[2:-2, 2:-2]
                        - (cost[3:-1, None] * uloc[3:-1, 2:-2] - cost[2:-2, None] * uloc[2:-2, 2:-2])
                        * fric_ry_v[2:-2, None])
    return (forc,)


@kernel("2d", outputs=("forc",), reference=_ref_streamfunction_rhs, active=("uloc", "vloc"))
def streamfunction_rhs(i, j, forc, uloc, vloc, cost, rdx_z, fric_ry_v):
    """Curl of the depth-mean tendency at Z points (interior):
    ``forc = (vloc_{i+1} - vloc_i) / (cosu dxu) - (cost_{j+1} uloc_{j+1} - cost_j uloc_j) / (cosu dyu)``,
    the divisions as products with rdx_z = 1/(cosu dxu) (yu, xu, :func:`external_metrics`) and the
    friction metric fric_ry_v = 1/(dyu cosu) (yu).  Measured at 0.25 deg, 1 thread: 0.76 of the time
    with the two divisions."""
    if in_interior(i, j, uloc.shape[1], uloc.shape[0]):
        forc[j, i] = ((vloc[j, i + 1] - vloc[j, i]) * rdx_z[j, i]
                      - (cost[j + 1] * uloc[j + 1, i] - cost[j] * uloc[j, i]) * fric_ry_v[j])
    else:
        forc[j, i] = 0.0


def _ref_psi_update(dpsi_new, psi_old, dpsi_old, dt_mom):
    ab1, ab0 = 1.5 + C.AB_EPS, 0.5 + C.AB_EPS
    return (psi_old + dt_mom * (ab1 * dpsi_new - ab0 * dpsi_old),)


@kernel("2d", outputs=("psi_new",), reference=_ref_psi_update, active=("dpsi_new", "psi_old", "dpsi_old"))
def psi_update(i, j, psi_new, dpsi_new, psi_old, dpsi_old, dt_mom):
    """Adams-Bashforth step of the interior streamfunction (Z points):
    ``psi[taup1] = psi[tau] + dt (1.6 dpsi[taup1] - 0.6 dpsi[tau])``.  The island part
    ``dt sum_n (1.6 dpsin[n, tau] - 0.6 dpsin[n, taum1]) psin[n]`` is added by
    :class:`ocean_core.ops.IslandPsiOp` (a reduction in its adjoint)."""
    ab1 = 1.5 + C.AB_EPS
    ab0 = 0.5 + C.AB_EPS
    psi_new[j, i] = psi_old[j, i] + dt_mom * (ab1 * dpsi_new[j, i] - ab0 * dpsi_old[j, i])


def _ref_velocity_update(u_old, v_old, du_now, dv_now, du_old, dv_old, du_mix, dv_mix, psi, maskU, maskV, dzt,
                         fric_rx_v, rdy_u, hur, hvr, dt_mom):
    ab1, ab0 = 1.5 + C.AB_EPS, 0.5 + C.AB_EPS
    dz = dzt[:, None, None]
    u = u_old + dt_mom * (du_mix + ab1 * du_now - ab0 * du_old) * maskU
    v = v_old + dt_mom * (dv_mix + ab1 * dv_now - ab0 * dv_old) * maskV
    u = u - (u * maskU * dz).sum(axis=0)[None] * maskU * hur[None]
    v = v - (v * maskV * dz).sum(axis=0)[None] * maskV * hvr[None]
    s = (slice(None), slice(2, -2), slice(2, -2))
    u[s] += -maskU[s] * (psi[None, 2:-2, 2:-2] - psi[None, 1:-3, 2:-2]) * rdy_u[None, 2:-2, None] * hur[None, 2:-2, 2:-2]
    v[s] += maskV[s] * (psi[None, 2:-2, 2:-2] - psi[None, 2:-2, 1:-3]) * fric_rx_v[None, 2:-2, 2:-2] * hvr[None, 2:-2, 2:-2]
    return u, v, np.zeros_like(psi), np.zeros_like(psi)  # (scratch outputs: not compared)


@kernel("rows", outputs=("u_new", "v_new", "scr_col", "scr_col2"), reference=_ref_velocity_update,
        active=("u_old", "v_old", "du_now", "dv_now", "du_old", "dv_old", "du_mix", "dv_mix", "psi"), passes=2)
def velocity_update(i, j, k, u_new, v_new, scr_col, scr_col2, u_old, v_old, du_now, dv_now, du_old, dv_old, du_mix,
                    dv_mix, psi, maskU, maskV, dzt, fric_rx_v, rdy_u, hur, hvr, dt_mom):
    """New velocities (U / V columns, whole array):
    ``u* = u[tau] + dt (du_mix + 1.6 du[tau] - 0.6 du[taum1]) maskU``; remove the depth mean
    ``hur sum(u* maskU dzt)``; add the barotropic velocity ``-maskU (psi_j - psi_{j-1}) / dyt hur``
    (interior).  v: ``+maskV (psi_i - psi_{i-1}) / (cosu dxt) hvr``.  The divisions are products with
    rdy_u = 1/dyt (yt, :func:`external_metrics`) and fric_rx_v = 1/(cosu dxt) (yu, xt, a friction metric):
    0.95 of the time with the two divisions (0.25 deg, 1 thread).

    Row-wise in two passes: k < nz stores u* and sums ``u* maskU dzt`` from k = 0 up in
    ``scr_col`` (v: ``scr_col2``); pass 2 corrects level ``k - nz``.  Branch-free in i
    (clamped neighbour, selected barotropic term)."""
    nz = u_old.shape[0]
    ab1 = 1.5 + C.AB_EPS
    ab0 = 0.5 + C.AB_EPS
    if k < nz:
        a = u_old[k, j, i] + dt_mom * (du_mix[k, j, i] + ab1 * du_now[k, j, i] - ab0 * du_old[k, j, i]) * maskU[k, j, i]
        b = v_old[k, j, i] + dt_mom * (dv_mix[k, j, i] + ab1 * dv_now[k, j, i] - ab0 * dv_old[k, j, i]) * maskV[k, j, i]
        u_new[k, j, i] = a
        v_new[k, j, i] = b
        scr_col[j, i] = (scr_col[j, i] if k > 0 else 0.0) + a * maskU[k, j, i] * dzt[k]
        scr_col2[j, i] = (scr_col2[j, i] if k > 0 else 0.0) + b * maskV[k, j, i] * dzt[k]
    else:
        kl = k - nz
        inner = in_interior(i, j, u_old.shape[2], u_old.shape[1])
        jm = imax(j - 1, 0)
        im = imax(i - 1, 0)
        a = u_new[kl, j, i] + (-scr_col[j, i] * maskU[kl, j, i] * hur[j, i])
        b = v_new[kl, j, i] + (-scr_col2[j, i] * maskV[kl, j, i] * hvr[j, i])
        bu = (psi[j, i] - psi[jm, i]) * rdy_u[j] * hur[j, i]
        bv = (psi[j, i] - psi[j, im]) * fric_rx_v[j, i] * hvr[j, i]
        a1 = a + (-maskU[kl, j, i] * bu)
        b1 = b + maskV[kl, j, i] * bv
        u_new[kl, j, i] = a1 if inner else a
        v_new[kl, j, i] = b1 if inner else b


def _ref_vertical_velocity(u, v, maskW, cost, cosu, dxt, dyt, dzt):
    w = np.zeros_like(u)
    fxa = -maskW[:, 1:, 1:] * dzt[:, None, None] * (
        (u[:, 1:, 1:] - u[:, 1:, :-1]) / (cost[None, 1:, None] * dxt[None, None, 1:])
        + (cosu[None, 1:, None] * v[:, 1:, 1:] - cosu[None, :-1, None] * v[:, :-1, 1:]) / (cost[None, 1:, None] * dyt[None, 1:, None]))
    w[:, 1:, 1:] = np.cumsum(fxa, axis=0)
    return (w,)


@kernel("rows", outputs=("w_new",), reference=_ref_vertical_velocity, active=("u", "v"))
def vertical_velocity(i, j, k, w_new, u, v, maskW, cost, cosu, dxt, dyt, dzt):
    """Vertical velocity at W points from continuity, integrated upward from the bottom
    (``i, j >= 1``): ``w[k] = -sum_{k'<=k} maskW dzt [d_x u / (cost dxt) + d_y(cosu v) / (cost dyt)]``.
    w at the surface is the (round-off) divergence error of the rigid lid.
    Row-wise (k outer, i inner, w[k-1] read back); branch-free in i."""
    im = imax(i - 1, 0)
    jm = imax(j - 1, 0)
    prev = w_new[imax(k - 1, 0), j, i] if k > 0 else 0.0
    s = prev + -maskW[k, j, i] * dzt[k] * ((u[k, j, i] - u[k, j, im]) / (cost[j] * dxt[i])
                                           + (cosu[j] * v[k, j, i] - cosu[jm] * v[k, jm, i]) / (cost[j] * dyt[j]))
    w_new[k, j, i] = s if (i >= 1) & (j >= 1) else 0.0
