"""EKE closure of Veros (``core/eke.py``) on the W grid: diffusivities (Rossby and
Rhines lengths, K_gm), W-grid advection velocities, implicit dissipation,
lateral diffusion and superbee advection.

Non-smooth operations (sqrt at 0, min/max chains, the superbee limiter) are
evaluated branch-wise; their tangents and adjoints in :mod:`adjoint.kernels.eke`
differentiate the branch taken.
"""

import math

import numpy as np

from .framework import device, fuse, kernel
from .momentum import imax, imin, in_interior
from .. import constants as C


# ---------------------------------------------------------------------------
# diffusivities
# ---------------------------------------------------------------------------

def _ref_eke_diffusivities(eke, Nsqr, coriolis_t, beta, maskW, dzw, eke_lmin, eke_cross, eke_crhin, eke_c_k,
                           eke_k_max):
    C_rossby = (np.sqrt(np.maximum(0.0, Nsqr)) * dzw[:, None, None] * maskW / C.PI).sum(axis=0)
    L_rossby = np.minimum(C_rossby / np.maximum(np.abs(coriolis_t), 1e-16), np.sqrt(C_rossby / np.maximum(2 * beta, 1e-16)))
    sqrteke = np.sqrt(np.maximum(0.0, eke))
    L_rhines = np.sqrt(sqrteke / np.maximum(beta[None], 1e-16))
    eke_len = np.maximum(eke_lmin, np.minimum(eke_cross * L_rossby[None], eke_crhin * L_rhines))
    K_gm = np.minimum(eke_k_max, eke_c_k * eke_len * sqrteke)
    return L_rossby, sqrteke, eke_len, K_gm


@kernel("rows", outputs=("L_rossby", "sqrteke", "eke_len", "K_gm"), reference=_ref_eke_diffusivities,
        active=("eke", "Nsqr"), passes=2)
def eke_diffusivities(i, j, k, L_rossby, sqrteke, eke_len, K_gm, eke, Nsqr, coriolis_t, beta, maskW, dzw,
                      eke_lmin, eke_cross, eke_crhin, eke_c_k, eke_k_max):
    """``C = sum_k sqrt(max(0, N^2)) dzw maskW / pi``; ``L_rossby = min(C/max(|f|,1e-16), sqrt(C/max(2 beta,1e-16)))``;
    ``sqrteke = sqrt(max(0, eke))``; ``L_rhines = sqrt(sqrteke / max(beta, 1e-16))``;
    ``eke_len = max(lmin, min(cross L_rossby, crhin L_rhines))``; ``K_gm = min(k_max, c_k eke_len sqrteke)``.
    L_rossby (yt, xt); the others at W points.  The Rhines scale L_rhines is a local value only, not
    stored (no other operation reads it; one W-point store less in this memory-bound kernel).

    Row-wise in two passes: k < nz sums C into L_rossby (converted at the top level), then
    level ``k - nz`` of the W-point fields."""
    nz = eke.shape[0]
    if k < nz:
        cr = (L_rossby[j, i] if k > 0 else 0.0) + math.sqrt(max(0.0, Nsqr[k, j, i])) * dzw[k] * maskW[k, j, i] / C.PI
        if k == nz - 1:
            cr = min(cr / max(abs(coriolis_t[j, i]), 1e-16), math.sqrt(cr / max(2 * beta[j, i], 1e-16)))
        L_rossby[j, i] = cr
    else:
        kl = k - nz
        lr = L_rossby[j, i]
        bb = max(beta[j, i], 1e-16)
        se = math.sqrt(max(0.0, eke[kl, j, i]))
        lrh = math.sqrt(se / bb)
        el = max(eke_lmin, min(eke_cross * lr, eke_crhin * lrh))
        sqrteke[kl, j, i] = se
        eke_len[kl, j, i] = el
        K_gm[kl, j, i] = min(eke_k_max, eke_c_k * el * se)


# ---------------------------------------------------------------------------
# advection velocities on the W grid (Veros calculate_velocity_on_wgrid)
# ---------------------------------------------------------------------------

def wgrid_metrics(grid):
    """Static arrays of :func:`velocity_on_wgrid` (grid only).

    ``wint_up[k] = 0.5 dzt[k+1] / dzw[k]`` (0 at the top), ``wint_dn[k] = 0.5 dzt[k] / dzw[k]``,
    ``wint_mv[k] = dzw[k-1] / dzw[k]`` (0 at the bottom) (zw); the face masks
    ``wface_x = maskW_i maskW_{i+1}`` (zw, yt, xu) and ``wface_y = maskW_j maskW_{j+1}`` (zw, yu, xt), int8,
    set to 1 at the top level and where the face does not exist (last column / row): there the
    kernel neither masks nor moves a velocity up, which is what the Veros slicing does."""
    dzt = np.asarray(grid.dzt, float)
    dzw = np.asarray(grid.dzw, float)
    up = np.zeros_like(dzw)
    up[:-1] = 0.5 * dzt[1:] / dzw[:-1]
    mv = np.zeros_like(dzw)
    mv[1:] = dzw[:-1] / dzw[1:]
    mw = np.asarray(grid.maskW) != 0
    fx = np.ones(mw.shape, np.int8)
    fx[:-1, :, :-1] = mw[:-1, :, :-1] & mw[:-1, :, 1:]
    fy = np.ones(mw.shape, np.int8)
    fy[:-1, :-1, :] = mw[:-1, :-1, :] & mw[:-1, 1:, :]
    return {"wint_up": up, "wint_dn": 0.5 * dzt / dzw, "wint_mv": mv, "wface_x": fx, "wface_y": fy}


#: the wgrid_metrics arrays
WGRID_METRICS = ("wint_up", "wint_dn", "wint_mv", "wface_x", "wface_y")


@device
def wgrid_raw(k, j, i, q, m, wint_up, wint_dn):
    """q (at U or V points, mask m) interpolated to W level k of its column, before the
    redirection at topography: ``q_{k+1} m_{k+1} wint_up_k + q_k m_k wint_dn_k`` (no upper term at
    the top), the lower half cell added again at k = 0.  Clamped level index and selects, so
    the loads are unconditional (the i loop vectorises without masked loads)."""
    nz = q.shape[0]
    kp = imin(k + 1, nz - 1)
    b = q[k, j, i] * m[k, j, i] * wint_dn[k]
    r = q[kp, j, i] * m[kp, j, i] * wint_up[k] + b
    r = r if k < nz - 1 else b
    r0 = r + b
    return r0 if k == 0 else r


@device
def wgrid_face(k, j, i, q, m, wface, wint_up, wint_dn, wint_mv):
    """q on W level k at a face with mask ``wface``: ``wface_k (raw_k + raw_{k-1} wint_mv_k (1 - wface_{k-1}))``
    (a velocity at a face that is not wet on both sides moves one level up)."""
    km = imax(k - 1, 0)
    r = wgrid_raw(k, j, i, q, m, wint_up, wint_dn)
    t = r + wgrid_raw(km, j, i, q, m, wint_up, wint_dn) * wint_mv[k] * (1.0 - wface[km, j, i])
    t = t if k > 0 else r
    return t * wface[k, j, i]


def _ref_velocity_on_wgrid(u, v, maskU, maskV, wface_x, wface_y, wint_up, wint_dn, wint_mv):
    out = []
    for q, m, f in ((u, maskU, wface_x), (v, maskV, wface_y)):
        qm = q * m
        raw = qm * wint_dn[:, None, None]
        raw[:-1] += qm[1:] * wint_up[:-1, None, None]
        raw[0] += qm[0] * wint_dn[0]
        qw = raw.copy()
        qw[1:] += raw[:-1] * wint_mv[1:, None, None] * (1.0 - f[:-1])
        out.append(qw * f)
    return tuple(out)


@kernel("3d", outputs=("u_wgrid", "v_wgrid"), reference=_ref_velocity_on_wgrid, active=("u", "v"))
def velocity_on_wgrid(i, j, k, u_wgrid, v_wgrid, u, v, maskU, maskV, wface_x, wface_y, wint_up, wint_dn, wint_mv):
    """Horizontal velocities on W levels (Veros ``calculate_velocity_on_wgrid``):
    ``u_w[k] = (u[k+1] mU dzt[k+1] + u[k] mU dzt[k]) / (2 dzw[k])``, the bottom half cell added to
    level 0, and the velocity at a W face that is not wet on both sides (``maskW_i maskW_{i+1} = 0``)
    moved one level up (scaled by dzw[k-1]/dzw[k]); u_wgrid at (zw, yt, xu), v_wgrid at (zw, yu, xt).

    The coefficients and face masks come from :func:`wgrid_metrics` (no division, no neighbour
    column: every load is contiguous in i; the moved-up value is the raw value of level k-1,
    recomputed)."""
    u_wgrid[k, j, i] = wgrid_face(k, j, i, u, maskU, wface_x, wint_up, wint_dn, wint_mv)
    v_wgrid[k, j, i] = wgrid_face(k, j, i, v, maskV, wface_y, wint_up, wint_dn, wint_mv)


def _ref_w_wgrid(u_wgrid, v_wgrid, cost, cosu, dxt, dyt, dzw):
    w = np.zeros_like(u_wgrid)
    div = -dzw[:, None, None] * ((u_wgrid[:, 1:, 1:] - u_wgrid[:, 1:, :-1]) / (cost[None, 1:, None] * dxt[None, None, 1:])
                                 + (cosu[None, 1:, None] * v_wgrid[:, 1:, 1:] - cosu[None, :-1, None] * v_wgrid[:, :-1, 1:])
                                 / (cost[None, 1:, None] * dyt[None, 1:, None]))
    w[:, 1:, 1:] = np.cumsum(div, axis=0)
    return (w,)


@kernel("rows", outputs=("w_wgrid",), reference=_ref_w_wgrid, active=("u_wgrid", "v_wgrid"))
def w_wgrid_continuity(i, j, k, w_wgrid, u_wgrid, v_wgrid, cost, cosu, dxt, dyt, dzw):
    """Vertical velocity on the W grid from continuity, cumulative from the bottom (i, j >= 1):
    ``w[k] = w[k-1] - dzw[k] [(u_i - u_{i-1}) / (cost dxt) + (cosu_j v_j - cosu_{j-1} v_{j-1}) / (cost dyt)]``
    with ``w[-1] = 0``.  Row-wise (k outer, i inner, w[k-1] read back); branch-free in i."""
    im = imax(i - 1, 0)
    jm = imax(j - 1, 0)
    prev = w_wgrid[imax(k - 1, 0), j, i] if k > 0 else 0.0
    s = prev + -dzw[k] * ((u_wgrid[k, j, i] - u_wgrid[k, j, im]) / (cost[j] * dxt[i])
                          + (cosu[j] * v_wgrid[k, j, i] - cosu[jm] * v_wgrid[k, jm, i]) / (cost[j] * dyt[j]))
    w_wgrid[k, j, i] = s if (i >= 1) & (j >= 1) else 0.0


# ---------------------------------------------------------------------------
# implicit part: vertical diffusion (kappaM), dissipation, forcing
# ---------------------------------------------------------------------------

@device
def eke_vcoeffs(k, k0, nz, j, i, kappaM, c_int, rdzt, eke_rdz, dt_tracer, alpha_eke):
    """(a, b, c) of the implicit EKE matrix at W level k (k0 = bottom wet level):
    ``delta_k = dt / dzt_{k+1} 0.5 (kappaM_k + kappaM_{k+1}) alpha`` (0 at the top), ``h_k = dzw_k``
    (half at the top), ``a = -delta_{k-1} / h_k``, ``c = -delta_k / dzw_k``, ``b = 1 - a - c + dt c_int``
    (bottom: no a term); the reciprocals from rdzt = 1/dzt and eke_rdz = 1/h (no division per point).
    Clamped level indices and selects (no branch: k0 varies along a row, vectorisation)."""
    kp = imin(k + 1, nz - 1)
    km = imax(k - 1, 0)
    dk = dt_tracer * rdzt[kp] * 0.5 * (kappaM[k, j, i] + kappaM[kp, j, i]) * alpha_eke
    dk = dk if k < nz - 1 else 0.0
    dkm1 = dt_tracer * rdzt[k] * 0.5 * (kappaM[km, j, i] + kappaM[k, j, i]) * alpha_eke
    dkm1 = dkm1 if k > 0 else 0.0
    rh = eke_rdz[k]  # 1/dzw below the top (where c and the mid/bottom rows need it), 1/(0.5 dzw) at the top
    a = -dkm1 * rh
    c = -dk * rh
    b_top = 1.0 + dkm1 * rh + dt_tracer * c_int
    b_mid = 1.0 + (dk + dkm1) * rh + dt_tracer * c_int
    b_bot = 1.0 + dk * rh + dt_tracer * c_int
    b = b_top if k == nz - 1 else b_mid
    b = b_bot if k == k0 else b
    return a, b, c


@device
def eke_cint(k, j, i, sqrteke, eke_len, maskW, eke_c_eps):
    return eke_c_eps * sqrteke[k, j, i] / eke_len[k, j, i] * maskW[k, j, i]


def _ref_eke_implicit(eke, K_diss_h, sqrteke, eke_len, kappaM, maskW, kbot, rdzt, eke_rdz, dt_tracer, eke_c_eps,
                      alpha_eke):
    from .friction import thomas_ref
    nz, NY, NX = eke.shape
    out = np.zeros_like(eke)
    c_int = eke_c_eps * sqrteke / eke_len * maskW
    for j in range(2, NY - 2):
        for i in range(2, NX - 2):
            if kbot[j, i] == 0:
                continue
            k0 = kbot[j, i] - 1
            delta = np.zeros(nz)
            delta[:-1] = dt_tracer * rdzt[1:] * 0.5 * (kappaM[:-1, j, i] + kappaM[1:, j, i]) * alpha_eke
            n = nz - k0
            a, b, c = np.zeros(n), np.zeros(n), np.zeros(n)
            for kk in range(n):
                k = k0 + kk
                dkm1 = delta[k - 1] if k > 0 else 0.0
                rh = eke_rdz[k]  # 1/h: 1/dzw, half cell at the top
                a[kk] = -dkm1 * rh
                c[kk] = -delta[k] * rh
                if k == k0:
                    b[kk] = 1 + delta[k] * rh + dt_tracer * c_int[k, j, i]
                elif k == nz - 1:
                    b[kk] = 1 + dkm1 * rh + dt_tracer * c_int[k, j, i]
                else:
                    b[kk] = 1 + (delta[k] + dkm1) * rh + dt_tracer * c_int[k, j, i]
            d = eke[k0:, j, i] + dt_tracer * K_diss_h[k0:, j, i]
            out[k0:, j, i] = thomas_ref(a, b, c, d)
    return out, np.zeros_like(eke), np.zeros_like(eke[0])  # (scratch outputs: not compared)


@kernel("rows", outputs=("eke_imp", "scr_cp", "scr_col"), reference=_ref_eke_implicit,
        active=("eke", "K_diss_h", "sqrteke", "eke_len", "kappaM"), passes=3)
def eke_implicit(i, j, k, eke_imp, scr_cp, scr_col, eke, K_diss_h, sqrteke, eke_len, kappaM, maskW, kbot, rdzt,
                 eke_rdz, dt_tracer, eke_c_eps, alpha_eke):
    """Implicit vertical diffusion (kappaM), forcing by friction dissipation and the linearised
    dissipation ``c_int = c_eps sqrteke / eke_len``:
    ``(I - dt d_z(alpha kappaM d_z) + dt c_int) e* = eke[tau] + dt K_diss_h`` on the wet W levels
    ``k >= k0 = kbot - 1`` of interior columns; zero elsewhere.

    Thomas algorithm, row-wise in three passes over k (i innermost):
    0. levels nz-1 .. 0: ``scr_col = 1`` if kappaM != 0 at some wet level of the column (else the
       matrix is diagonal and the solve reduces exactly to ``x = d / b``);
    1. levels 0 .. nz-1: forward sweep, ``c'`` in ``scr_cp``, ``d'`` in ``eke_imp``;
    2. levels nz-2 .. k0: back substitution ``x_k = d'_k - c'_k x_{k+1}``.
    ``scr_cp``, ``scr_col`` are scratch."""
    nz = eke.shape[0]
    live = in_interior(i, j, eke.shape[2], eke.shape[1]) & (kbot[j, i] > 0)
    k0 = kbot[j, i] - 1
    # every case computed and the result selected (no branch on data that varies along the
    # row), so that the i loop vectorises; the selected value is the scalar Thomas
    # algorithm's (diagonal: d / b; bottom: c / b, d / b; above: (d - a d'_{k-1}) / den)
    if k < nz:
        kl = nz - 1 - k
        f = scr_col[j, i] if k > 0 else 0.0
        scr_col[j, i] = 1.0 if (kl >= k0) & (kappaM[kl, j, i] != 0.0) else f
    elif k < 2 * nz:
        kl = k - nz
        ci = eke_cint(kl, j, i, sqrteke, eke_len, maskW, eke_c_eps)
        a, b, c = eke_vcoeffs(kl, k0, nz, j, i, kappaM, ci, rdzt, eke_rdz, dt_tracer, alpha_eke)
        d = eke[kl, j, i] + dt_tracer * K_diss_h[kl, j, i]
        km = imax(kl - 1, 0)
        cpm = scr_cp[km, j, i]
        em = eke_imp[km, j, i]
        diag = scr_col[j, i] == 0.0
        start = diag | (kl == k0)
        den = b if start else b - a * cpm
        cp = 0.0 if diag else c / den
        e = (d if start else d - a * em) / den
        dead = (~live) | (kl < k0)
        scr_cp[kl, j, i] = 0.0 if dead else cp
        eke_imp[kl, j, i] = 0.0 if dead else e
    else:
        kl = nz - 2 - (k - 2 * nz)
        e = eke_imp[kl, j, i]
        back = e - scr_cp[kl, j, i] * eke_imp[kl + 1, j, i]
        eke_imp[kl, j, i] = back if live & (kl >= k0) & (scr_col[j, i] != 0.0) else e


# ---------------------------------------------------------------------------
# superbee advection on the W grid
# ---------------------------------------------------------------------------

@device
def superbee_limiter(cr):
    """``max(clip(2 cr, 0, 1), clip(cr, 0, 2))``."""
    a = min(max(2.0 * cr, 0.0), 1.0)
    b = min(max(cr, 0.0), 2.0)
    return max(a, b)


@device
def superbee_flux(vel, velc, qm1, q0, qp1, qp2, mm1, m0, mp1, rlen, dt):
    """Superbee-limited flux through a face between q0 and qp1.

    vel: velocity deciding the upwind side; velc: velocity carried (cosu v for y);
    mm1, m0, mp1: face masks of the faces below, at and above; rlen: 1/dx, the reciprocal
    length of the CFL number (a static metric, so that no face divides).
    ``F = velc (q1 + q0)/2 - |velc| ((1 - cr) + |velc dt rlen| cr) rj / 2``.
    """
    rjp = (qp2 - qp1) * mp1
    rj = (qp1 - q0) * m0
    rjm = (q0 - qm1) * mm1
    up = rjm if vel > 0.0 else rjp
    den = 1e-20 if abs(rj) < 1e-20 else rj
    cr = superbee_limiter(up / den)
    cfl = abs(velc * (dt * rlen))
    return velc * (qp1 + q0) * 0.5 - abs(velc) * ((1.0 - cr) + cfl * cr) * rj * 0.5


@device
def maskw_x(k, j, i, maskW):
    """W-grid face mask in x: maskW_i maskW_{i+1}, for ``i < NX-1`` (the east faces of :func:`sb_fe`,
    ``1 <= i < NX-2``, read i-1 .. i+1).  No bound test: a test the loop bound does not imply kept
    eke_fluxes' vectorised loop predicated, with masked loads."""
    return maskW[k, j, i + 1] * maskW[k, j, i]


@device
def maskw_y(k, j, i, maskW):
    """W-grid face mask in y: maskW_j maskW_{j+1}, for ``j < NY-1`` (see :func:`maskw_x`)."""
    return maskW[k, j + 1, i] * maskW[k, j, i]


@device
def maskw_z(k, j, i, maskW):
    """W-grid face mask in z: maskW_k maskW_{k+1} (0 at the top level); the level above through a
    clamped index and a select, so that the load is unconditional."""
    nz = maskW.shape[0]
    m = maskW[imin(k + 1, nz - 1), j, i] * maskW[k, j, i]
    return m if k < nz - 1 else 0.0


@device
def sb_fe(k, j, i, q, u_wgrid, maskW, rdx_t, dt):
    """Superbee flux through the east face of W cell (k, j, i), 1 <= i < NX-2; CFL length
    ``cost_j dxt_i`` through ``rdx_t[j, i] = 1/(cost_j dxt_i)``."""
    vel = u_wgrid[k, j, i]
    return superbee_flux(vel, vel, q[k, j, i - 1], q[k, j, i], q[k, j, i + 1], q[k, j, i + 2],
                         maskw_x(k, j, i - 1, maskW), maskw_x(k, j, i, maskW), maskw_x(k, j, i + 1, maskW),
                         rdx_t[j, i], dt)


@device
def sb_fn(k, j, i, q, v_wgrid, maskW, cosu, rdy_t, dt):
    """North face: carried velocity ``cosu_j v``, CFL length ``cost_j dyt_j`` (``rdy_t[j]``)."""
    vel = v_wgrid[k, j, i]
    return superbee_flux(vel, cosu[j] * vel, q[k, j - 1, i], q[k, j, i], q[k, j + 1, i], q[k, j + 2, i],
                         maskw_y(k, j - 1, i, maskW), maskw_y(k, j, i, maskW), maskw_y(k, j + 1, i, maskW),
                         rdy_t[j], dt)


@device
def sb_ft(k, j, i, q, w_wgrid, maskW, eke_rdz, dt):
    """Superbee flux through the top face of W cell k (meaningful for k < nz-1), edge-padded in z;
    every level index is clamped, so it may be evaluated (and discarded) at k = nz-1 too.  CFL
    length dzw_k: ``eke_rdz[k] = 1/dzw_k`` for every k < nz-1 (it differs only at the top
    level, whose face flux is discarded)."""
    nz = q.shape[0]
    km = k - 1 if k > 0 else 0
    kp1 = imin(k + 1, nz - 1)
    kp2 = k + 2 if k + 2 < nz else nz - 1
    vel = w_wgrid[k, j, i]
    return superbee_flux(vel, vel, q[km, j, i], q[k, j, i], q[kp1, j, i], q[kp2, j, i],
                         maskw_z(km, j, i, maskW), maskw_z(k, j, i, maskW), maskw_z(kp1, j, i, maskW),
                         eke_rdz[k], dt)


def _ref_superbee_flux(vel, velc, qm1, q0, qp1, qp2, mm1, m0, mp1, rdx, dt):
    rjp = (qp2 - qp1) * mp1
    rj = (qp1 - q0) * m0
    rjm = (q0 - qm1) * mm1
    cr = np.where(vel > 0.0, rjm, rjp) / np.where(np.abs(rj) < 1e-20, 1e-20, rj)
    cr = np.maximum(np.clip(2 * cr, 0, 1), np.clip(cr, 0, 2))
    return velc * (qp1 + q0) * 0.5 - np.abs(velc) * ((1.0 - cr) + np.abs(velc * (dt * rdx)) * cr) * rj * 0.5


def _ref_eke_fluxes(eke, u_wgrid, v_wgrid, w_wgrid, maskW, cosu, rdx_t, rdy_t, eke_rdz, dt_tracer):
    q = eke
    mx = np.zeros_like(q)
    mx[:, :, :-1] = maskW[:, :, 1:] * maskW[:, :, :-1]
    my = np.zeros_like(q)
    my[:, :-1, :] = maskW[:, 1:, :] * maskW[:, :-1, :]
    mz = np.zeros_like(q)
    mz[:-1] = maskW[1:] * maskW[:-1]
    fe = np.zeros_like(q)
    fn = np.zeros_like(q)
    ft = np.zeros_like(q)
    sj = slice(2, -2)
    fe[:, sj, 1:-2] = _ref_superbee_flux(u_wgrid[:, sj, 1:-2], u_wgrid[:, sj, 1:-2], q[:, sj, :-3], q[:, sj, 1:-2],
                                         q[:, sj, 2:-1], q[:, sj, 3:], mx[:, sj, :-3], mx[:, sj, 1:-2], mx[:, sj, 2:-1],
                                         rdx_t[None, sj, 1:-2], dt_tracer)
    fn[:, 1:-2, sj] = _ref_superbee_flux(v_wgrid[:, 1:-2, sj], cosu[None, 1:-2, None] * v_wgrid[:, 1:-2, sj],
                                         q[:, :-3, sj], q[:, 1:-2, sj], q[:, 2:-1, sj], q[:, 3:, sj],
                                         my[:, :-3, sj], my[:, 1:-2, sj], my[:, 2:-1, sj],
                                         rdy_t[None, 1:-2, None], dt_tracer)
    qp = np.concatenate([q[:1], q, q[-1:]])
    mp = np.concatenate([mz[:1], mz, mz[-1:]])
    ft[:-1, sj, sj] = _ref_superbee_flux(w_wgrid[:-1, sj, sj], w_wgrid[:-1, sj, sj], qp[:-3, sj, sj], qp[1:-2, sj, sj],
                                         qp[2:-1, sj, sj], qp[3:, sj, sj], mp[:-3, sj, sj], mp[1:-2, sj, sj],
                                         mp[2:-1, sj, sj], eke_rdz[:-1, None, None], dt_tracer)
    return fe, fn, ft


@device
def eke_fluxes_interior(i, j, k, eke_fe, eke_fn, eke_ft, eke, u_wgrid, v_wgrid, w_wgrid, maskW, cosu, rdx_t, rdy_t,
                        eke_rdz, dt_tracer):
    """:func:`eke_fluxes` at an interior point (all three face ranges contain it)."""
    nz = eke.shape[0]
    eke_fe[k, j, i] = sb_fe(k, j, i, eke, u_wgrid, maskW, rdx_t, dt_tracer)
    eke_fn[k, j, i] = sb_fn(k, j, i, eke, v_wgrid, maskW, cosu, rdy_t, dt_tracer)
    ft = sb_ft(k, j, i, eke, w_wgrid, maskW, eke_rdz, dt_tracer)
    eke_ft[k, j, i] = ft if k < nz - 1 else 0.0


@kernel("3d", outputs=("eke_fe", "eke_fn", "eke_ft"), reference=_ref_eke_fluxes,
        active=("eke", "u_wgrid", "v_wgrid", "w_wgrid"), split=True, same_shapes=True, interior=eke_fluxes_interior)
def eke_fluxes(i, j, k, eke_fe, eke_fn, eke_ft, eke, u_wgrid, v_wgrid, w_wgrid, maskW, cosu, rdx_t, rdy_t, eke_rdz,
               dt_tracer):
    """Superbee-limited advective fluxes of EKE on the W grid (Veros ``adv_flux_superbee_wgrid``):
    east faces (``1 <= i < NX-2``, interior j), north faces (interior i, ``1 <= j < NY-2``) and top faces
    (interior, ``k < nz-1``, edge-padded stencil in z); zero elsewhere.  Face arrays share the W-cell index.
    The CFL numbers ``|u dt / (cost dxt)|``, ``|cosu v dt / (cost dyt)|``, ``|w dt / dzw|`` are formed
    as products with the reciprocals rdx_t = 1/(cost dxt) (yt, xt), rdy_t = 1/(cost dyt) (yt) and
    eke_rdz = 1/dzw (zw; read below the top level only): 0.95 of the time with the three divisions
    (0.25 deg, 1 thread; the limiter ratio up/rj still divides, by data)."""
    NY = eke.shape[1]
    NX = eke.shape[2]
    nz = eke.shape[0]
    if i >= 1 and i < NX - 2 and j >= 2 and j < NY - 2:
        eke_fe[k, j, i] = sb_fe(k, j, i, eke, u_wgrid, maskW, rdx_t, dt_tracer)
    else:
        eke_fe[k, j, i] = 0.0
    if i >= 2 and i < NX - 2 and j >= 1 and j < NY - 2:
        eke_fn[k, j, i] = sb_fn(k, j, i, eke, v_wgrid, maskW, cosu, rdy_t, dt_tracer)
    else:
        eke_fn[k, j, i] = 0.0
    # top faces: evaluated everywhere (sb_ft reads the column only) and selected, so that the
    # loads are unconditional and the i loop vectorises without masked loads
    ft = sb_ft(k, j, i, eke, w_wgrid, maskW, eke_rdz, dt_tracer)
    eke_ft[k, j, i] = ft if in_interior(i, j, NX, NY) and k < nz - 1 else 0.0


def eke_metrics(grid):
    """``eke_rdz[k] = 1 / dzw_k`` below the top, ``1 / (0.5 dzw_top)`` at the top level (zw): the
    reciprocal thickness of the W cells (the top one is half a cell)."""
    dzw = np.asarray(grid.dzw, float)
    h = dzw.copy()
    h[-1] = 0.5 * dzw[-1]
    return {"eke_rdz": 1.0 / h}


#: the eke_metrics arrays
EKE_METRICS = ("eke_rdz",)


def _ref_eke_advection(eke_fe, eke_fn, eke_ft, maskW, rdx_t, rdy_t, eke_rdz):
    fe, fn, ft = eke_fe, eke_fn, eke_ft
    d = np.zeros_like(fe)
    d[:, 2:-2, 2:-2] = maskW[:, 2:-2, 2:-2] * (
        -(fe[:, 2:-2, 2:-2] - fe[:, 2:-2, 1:-3]) * rdx_t[None, 2:-2, 2:-2]
        - (fn[:, 2:-2, 2:-2] - fn[:, 1:-3, 2:-2]) * rdy_t[None, 2:-2, None])
    s = (slice(2, -2), slice(2, -2))
    d[(0,) + s] += -ft[(0,) + s] * eke_rdz[0]
    d[(slice(1, None),) + s] += -(ft[(slice(1, None),) + s] - ft[(slice(None, -1),) + s]) * eke_rdz[1:, None, None]
    return (d,)


@device
def eke_advection_interior(i, j, k, deke, eke_fe, eke_fn, eke_ft, maskW, rdx_t, rdy_t, eke_rdz):
    """:func:`eke_advection` at an interior point (no interior test)."""
    r = maskW[k, j, i] * (-(eke_fe[k, j, i] - eke_fe[k, j, i - 1]) * rdx_t[j, i]
                          - (eke_fn[k, j, i] - eke_fn[k, j - 1, i]) * rdy_t[j])
    # no flux through the bottom face (k = 0), a half cell at the top (k = nz-1, in eke_rdz); as
    # a select (ft - 0.0 == ft exactly), so that the loop over i vectorises
    ftm = eke_ft[imax(k - 1, 0), j, i]
    ftm = ftm if k > 0 else 0.0
    deke[k, j, i] = r + (-(eke_ft[k, j, i] - ftm) * eke_rdz[k])


@kernel("3d", outputs=("deke",), reference=_ref_eke_advection, active=("eke_fe", "eke_fn", "eke_ft"),
        interior=eke_advection_interior)
def eke_advection(i, j, k, deke, eke_fe, eke_fn, eke_ft, maskW, rdx_t, rdy_t, eke_rdz):
    """Advection tendency of EKE from the face fluxes (interior; half cell at the top):
    ``deke = -maskW [d_x fe / (cost dxt) + d_y fn / (cost dyt)] - d_z ft / dzw``, the reciprocals
    rdx_t = 1/(cost dxt), rdy_t = 1/(cost dyt) (yt) and eke_rdz = 1/dzw (1/(0.5 dzw) at the top)."""
    if not in_interior(i, j, eke_fe.shape[2], eke_fe.shape[1]):
        deke[k, j, i] = 0.0
        return
    eke_advection_interior(i, j, k, deke, eke_fe, eke_fn, eke_ft, maskW, rdx_t, rdy_t, eke_rdz)


# ---------------------------------------------------------------------------
# lateral diffusion and the Adams-Bashforth step of advection
# ---------------------------------------------------------------------------

@device
def eke_fe(k, j, i, eke, K_gm, maskU, rdx_u):
    """Diffusive EKE flux through the east face (U point) ``0.5 max(500, K_i + K_{i+1}) (e_{i+1} - e_i) / (cost dxu) maskU``."""
    if i >= eke.shape[2] - 1:
        return 0.0
    return eke_fe_in(k, j, i, eke, K_gm, maskU, rdx_u)


@device
def eke_fe_in(k, j, i, eke, K_gm, maskU, rdx_u):
    """:func:`eke_fe` at a face with an east neighbour (``i < NX-1``; no test: interior bodies)."""
    return (0.5 * max(500.0, K_gm[k, j, i] + K_gm[k, j, i + 1]) * (eke[k, j, i + 1] - eke[k, j, i])
            * rdx_u[j, i] * maskU[k, j, i])


@device
def eke_fn(k, j, i, eke, K_gm, maskV, cosu, rdy_v):
    """Diffusive EKE flux through the north face (V point) ``0.5 max(500, K_j + K_{j+1}) (e_{j+1} - e_j) / dyu maskV cosu``."""
    if j >= eke.shape[1] - 1:
        return 0.0
    return eke_fn_in(k, j, i, eke, K_gm, maskV, cosu, rdy_v)


@device
def eke_fn_in(k, j, i, eke, K_gm, maskV, cosu, rdy_v):
    """:func:`eke_fn` at a face with a north neighbour (``j < NY-1``; no test: interior bodies)."""
    return (0.5 * max(500.0, K_gm[k, j, i] + K_gm[k, j + 1, i]) * (eke[k, j + 1, i] - eke[k, j, i])
            * rdy_v[j] * maskV[k, j, i] * cosu[j])


def _ref_eke_update(eke_imp, eke, K_gm, deke_now, deke_old, maskU, maskV, maskW, cosu, rdx_t, rdx_u, rdy_t, rdy_v,
                    dt_tracer):
    fe = np.zeros_like(eke)
    fn = np.zeros_like(eke)
    fe[:, :, :-1] = (0.5 * np.maximum(500.0, K_gm[:, :, :-1] + K_gm[:, :, 1:]) * (eke[:, :, 1:] - eke[:, :, :-1])
                     * rdx_u[None, :, :-1] * maskU[:, :, :-1])
    fn[:, :-1, :] = (0.5 * np.maximum(500.0, K_gm[:, :-1, :] + K_gm[:, 1:, :]) * (eke[:, 1:, :] - eke[:, :-1, :])
                     * rdy_v[None, :-1, None] * maskV[:, :-1, :] * cosu[None, :-1, None])
    out = eke_imp.copy()
    out[:, 2:-2, 2:-2] += dt_tracer * maskW[:, 2:-2, 2:-2] * (
        (fe[:, 2:-2, 2:-2] - fe[:, 2:-2, 1:-3]) * rdx_t[None, 2:-2, 2:-2]
        + (fn[:, 2:-2, 2:-2] - fn[:, 1:-3, 2:-2]) * rdy_t[None, 2:-2, None])
    out += dt_tracer * ((1.5 + C.AB_EPS) * deke_now - (0.5 + C.AB_EPS) * deke_old)
    return (out,)


@device
def eke_update_interior(i, j, k, eke_new, eke_imp, eke, K_gm, deke_now, deke_old, maskU, maskV, maskW, cosu, rdx_t,
                        rdx_u, rdy_t, rdy_v, dt_tracer):
    """:func:`eke_update` at an interior point (no interior test)."""
    r = eke_imp[k, j, i] + dt_tracer * maskW[k, j, i] * (
        (eke_fe_in(k, j, i, eke, K_gm, maskU, rdx_u) - eke_fe_in(k, j, i - 1, eke, K_gm, maskU, rdx_u))
        * rdx_t[j, i]
        + (eke_fn_in(k, j, i, eke, K_gm, maskV, cosu, rdy_v) - eke_fn_in(k, j - 1, i, eke, K_gm, maskV, cosu, rdy_v))
        * rdy_t[j])
    eke_new[k, j, i] = r + dt_tracer * ((1.5 + C.AB_EPS) * deke_now[k, j, i] - (0.5 + C.AB_EPS) * deke_old[k, j, i])


@kernel("3d", outputs=("eke_new",), reference=_ref_eke_update,
        active=("eke_imp", "eke", "K_gm", "deke_now", "deke_old"), interior=eke_update_interior)
def eke_update(i, j, k, eke_new, eke_imp, eke, K_gm, deke_now, deke_old, maskU, maskV, maskW, cosu, rdx_t, rdx_u,
               rdy_t, rdy_v, dt_tracer):
    """``eke[taup1] = e* + dt maskW div(K grad eke[tau]) + dt (1.6 deke[tau] - 0.6 deke[taum1])`` with the
    lateral diffusivity ``K = 0.5 max(500, K_gm_i + K_gm_{i+1})`` (interior for the diffusion); reciprocal
    metrics rdx_u = 1/(cost dxu), rdy_v = 1/dyu, rdx_t = 1/(cost dxt), rdy_t = 1/(cost dyt)."""
    if in_interior(i, j, eke.shape[2], eke.shape[1]):
        eke_update_interior(i, j, k, eke_new, eke_imp, eke, K_gm, deke_now, deke_old, maskU, maskV, maskW, cosu,
                            rdx_t, rdx_u, rdy_t, rdy_v, dt_tracer)
    else:
        eke_new[k, j, i] = eke_imp[k, j, i] + dt_tracer * ((1.5 + C.AB_EPS) * deke_now[k, j, i]
                                                           - (0.5 + C.AB_EPS) * deke_old[k, j, i])


#: EKE advection tendency and the EKE update in one pass over memory: eke_update reads
#: the new tendency ``deke`` at its own point only.  Split interior/halo loops: without the
#: split the fused loop ran 1.9x slower than the two kernels, with it 0.92x (0.25 deg, 1 thread).
eke_advection_update = fuse("eke_advection_update", eke_advection, (eke_update, {"deke_now": "deke"}),
                            split=True, same_shapes=True)
