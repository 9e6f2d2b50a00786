"""Friction: implicit vertical friction, harmonic lateral friction with cos scaling,
linear bottom drag, and the lateral-friction dissipation that feeds the EKE budget.

Parameter fields (controls of the adjoint): ``A_h_t`` (T points) and ``A_h_z``
(corner points, the pairwise average of the four surrounding T values, see
:func:`ocean_core.params`), ``r_bot_u`` / ``r_bot_v`` at U / V points.  For
uniform parameters the fields hold the scalar exactly, so the model reproduces
Veros's scalar A_h and r_bot to the last bit.
"""

import numpy as np

from .framework import device, fuse, kernel
from .momentum import imax, imin, in_interior


# ---------------------------------------------------------------------------
# tridiagonal solve (Thomas algorithm) on the wet part k0..nz-1 of a column
# ---------------------------------------------------------------------------

def thomas_ref(a, b, c, d):
    """Reference Thomas algorithm on 1-d NumPy arrays (a[0], c[-1] ignored)."""
    n = len(d)
    cp = np.zeros(n)
    dp = np.zeros(n)
    cp[0] = c[0] / b[0]
    dp[0] = d[0] / b[0]
    for k in range(1, n):
        den = b[k] - a[k] * cp[k - 1]
        cp[k] = c[k] / den
        dp[k] = (d[k] - a[k] * dp[k - 1]) / den
    x = np.zeros(n)
    x[-1] = dp[-1]
    for k in range(n - 2, -1, -1):
        x[k] = dp[k] - cp[k] * x[k + 1]
    return x


# ---------------------------------------------------------------------------
# implicit vertical friction (backward Euler with kappaM), U and V columns
# ---------------------------------------------------------------------------

@device
def vfric_coeffs(k, kk0, nz, delta_km1, delta_k, dzt):
    """(a, b, c) of the implicit vertical-friction matrix at level k (kk0 = bottom wet level)."""
    a = -delta_km1 / dzt[k]
    c = -delta_k / dzt[k]
    if k == kk0:
        b = 1.0 + delta_k / dzt[k]
    elif k == nz - 1:
        b = 1.0 + delta_km1 / dzt[k]
    else:
        b = 1.0 + delta_km1 / dzt[k] + delta_k / dzt[k]
    return a, b, c


@device
def vfric_delta_u(k, j, i, nz, kappaM, maskU, dzw, dt_mom):
    if k < 0 or k >= nz - 1:
        return 0.0
    return dt_mom / dzw[k] * (0.5 * (kappaM[k, j, i] + kappaM[k, j, i + 1])) * maskU[k + 1, j, i] * maskU[k, j, i]


@device
def vfric_delta_v(k, j, i, nz, kappaM, maskV, dzw, dt_mom):
    if k < 0 or k >= nz - 1:
        return 0.0
    return dt_mom / dzw[k] * (0.5 * (kappaM[k, j, i] + kappaM[k, j + 1, i])) * maskV[k + 1, j, i] * maskV[k, j, i]


def _ref_implicit_vert_friction(u, v, kappaM, maskU, maskV, kbot, dzt, dzw, dt_mom):
    nz, NY, NX = u.shape
    outs = []
    for q, mask, isv in ((u, maskU, False), (v, maskV, True)):
        out = np.zeros_like(q)
        for j in range(1, NY - 2):
            for i in range(1, NX - 2):
                kss = max(kbot[j, i], kbot[j + 1, i]) if isv else max(kbot[j, i], kbot[j, i + 1])
                if kss == 0:
                    continue
                k0 = kss - 1
                km = 0.5 * (kappaM[:-1, j, i] + (kappaM[:-1, j + 1, i] if isv else kappaM[:-1, j, i + 1]))
                delta = np.zeros(nz)
                delta[:-1] = dt_mom / dzw[:-1] * km * mask[1:, j, i] * mask[:-1, j, i]
                n = nz - k0
                a = np.zeros(n)
                b = np.zeros(n)
                c = np.zeros(n)
                for kk in range(n):
                    k = k0 + kk
                    dkm1 = delta[k - 1] if k > 0 else 0.0
                    a[kk] = -dkm1 / dzt[k]
                    c[kk] = -delta[k] / dzt[k]
                    if k == k0:
                        b[kk] = 1 + delta[k] / dzt[k]
                    elif k == nz - 1:
                        b[kk] = 1 + dkm1 / dzt[k]
                    else:
                        b[kk] = 1 + dkm1 / dzt[k] + delta[k] / dzt[k]
                x = thomas_ref(a, b, c, q[k0:, j, i])
                out[k0:, j, i] = (x - q[k0:, j, i]) / dt_mom
        outs.append(out)
    # (scratch outputs: not compared)
    return outs[0], outs[1], np.zeros_like(u), np.zeros_like(u[0]), np.zeros_like(u[0])


@device
def _vfric_solve(j, i, k0, nz, isv, x, q, scr_cp, kappaM, mask, dzt, dzw, dt_mom):
    """Thomas algorithm on U column (j, i) (``isv``: V column), wet levels k0 .. nz-1:
    ``x = (u* - u) / dt`` with ``c'`` in scr_cp (strided in k; only columns with viscosity)."""
    for k in range(k0, nz):
        if isv:
            dkm1 = vfric_delta_v(k - 1, j, i, nz, kappaM, mask, dzw, dt_mom)
            dk = vfric_delta_v(k, j, i, nz, kappaM, mask, dzw, dt_mom)
        else:
            dkm1 = vfric_delta_u(k - 1, j, i, nz, kappaM, mask, dzw, dt_mom)
            dk = vfric_delta_u(k, j, i, nz, kappaM, mask, dzw, dt_mom)
        a, b, c = vfric_coeffs(k, k0, nz, dkm1, dk, dzt)
        if k == k0:
            den = b
            scr_cp[k, j, i] = c / den
            x[k, j, i] = q[k, j, i] / den
        else:
            den = b - a * scr_cp[k - 1, j, i]
            scr_cp[k, j, i] = c / den
            x[k, j, i] = (q[k, j, i] - a * x[k - 1, j, i]) / den
    for kk in range(nz - 1 - k0):
        k = nz - 2 - kk
        x[k, j, i] = x[k, j, i] - scr_cp[k, j, i] * x[k + 1, j, i]
    for k in range(k0, nz):
        x[k, j, i] = (x[k, j, i] - q[k, j, i]) / dt_mom


@kernel("rows", outputs=("du_mix_v", "dv_mix_v", "scr_cp", "scr_col", "scr_col2"),
        reference=_ref_implicit_vert_friction, active=("u", "v", "kappaM"), passes=2)
def implicit_vert_friction(i, j, k, du_mix_v, dv_mix_v, scr_cp, scr_col, scr_col2, u, v, kappaM, maskU, maskV,
                           kbot, dzt, dzw, dt_mom):
    """Implicit vertical friction (Veros ``implicit_vert_friction``) as a tendency.

    For each U column (``1 <= i < NX-2``, ``1 <= j < NY-2``) solve
    ``(I - dt d_z(kappaM d_z)) u* = u`` on the wet levels ``k >= max(kbot_i, kbot_{i+1}) - 1``
    with ``delta[k] = dt/dzw[k] 0.5 (kappaM_i + kappaM_{i+1})[k] maskU[k+1] maskU[k]``,
    and return ``du_mix_v = (u* - u) / dt`` (zero elsewhere).  Same for v.  kappaM at W.
    Where kappaM vanishes at every interface of the solve the matrix is the identity and the
    tendency is exactly 0, so the solve is skipped (kappaM_0 = 0, the paper configuration).

    Row-wise in 2 passes: pass 0 (levels ascending, i contiguous) zeroes the tendencies and flags
    the U / V columns with viscosity (``scr_col`` / ``scr_col2`` = 1); pass 1, at its first
    level, solves the flagged columns (:func:`_vfric_solve`).  ``scr_cp``, ``scr_col``,
    ``scr_col2`` are scratch (the v solve overwrites the u solve's ``c'``).
    """
    nz = u.shape[0]
    if k > nz:
        return  # pass 1 works at its first level only
    NY = u.shape[1]
    NX = u.shape[2]
    ip = imin(i + 1, NX - 1)
    jp = imin(j + 1, NY - 1)
    k0u = imax(kbot[j, i], kbot[j, ip]) - 1
    k0v = imax(kbot[j, i], kbot[jp, i]) - 1
    if k < nz:
        # zero level k; flag columns with kappaM != 0 at some interface k0 <= k < nz-1
        # (scr_cp is not cleared: a solve writes c'[k] before it reads it, from its first level up)
        du_mix_v[k, j, i] = 0.0
        dv_mix_v[k, j, i] = 0.0
        fu = scr_col[j, i] if k > 0 else 0.0
        fv = scr_col2[j, i] if k > 0 else 0.0
        vis = k < nz - 1
        kc = kappaM[k, j, i] != 0.0
        scr_col[j, i] = 1.0 if vis & (k >= k0u) & (kc | (kappaM[k, j, ip] != 0.0)) else fu
        scr_col2[j, i] = 1.0 if vis & (k >= k0v) & (kc | (kappaM[k, jp, i] != 0.0)) else fv
    elif k == nz:
        inner = (i >= 1) & (i < NX - 2) & (j >= 1) & (j < NY - 2)
        if inner & (k0u >= 0) & (scr_col[j, i] != 0.0):
            _vfric_solve(j, i, k0u, nz, False, du_mix_v, u, scr_cp, kappaM, maskU, dzt, dzw, dt_mom)
        if inner & (k0v >= 0) & (scr_col2[j, i] != 0.0):
            _vfric_solve(j, i, k0v, nz, True, dv_mix_v, v, scr_cp, kappaM, maskV, dzt, dzw, dt_mom)


# ---------------------------------------------------------------------------
# harmonic lateral friction (cos scaling, free slip) and linear bottom drag
# ---------------------------------------------------------------------------

def friction_metrics(grid, cos_power):
    """Coefficients of the harmonic friction fluxes and divergences (grid and cos power only).

    With ``cfT = cost**p``, ``cfU = cosu**p`` (p = hor_friction_cosPower), ``NX``/``NY`` the
    halo-inclusive sizes:

    * ``fric_ce_u[j, i] = cfT_j / (cost_j dxt_{i+1})`` (east flux of u at T point (j, i+1)),
    * ``fric_cn_u[j] = cfU_j cosu_j / dyu_j`` (north flux of u at corner row j),
    * ``fric_ce_v[j, i] = cfU_j / (cosu_j dxu_i)`` (east flux of v at corner (j, i)),
    * ``fric_cn_v[j] = cfT_{j+1} cost_{j+1} / dyt_{j+1}`` (north flux of v at T row j+1),

    each 0 on the last column / row (no face there), and the reciprocal divergence metrics
    ``fric_rx_u = 1 / (cost dxu)``, ``fric_ry_u = 1 / (cost dyt)`` (U points),
    ``fric_rx_v = 1 / (cosu dxt)``, ``fric_ry_v = 1 / (dyu cosu)`` (V points).  A flux is then
    ``A c (q_1 - q_0) m_1 m_0`` and a divergence ``(f_1 - f_0) r``: no division per grid point
    (measured at 0.25 deg: friction and its dissipation in 0.65 of the time with divisions).
    """
    cost, cosu = np.asarray(grid.cost, float), np.asarray(grid.cosu, float)
    dxt, dxu = np.asarray(grid.dxt, float), np.asarray(grid.dxu, float)
    dyt, dyu = np.asarray(grid.dyt, float), np.asarray(grid.dyu, float)
    cft, cfu = cost ** cos_power, cosu ** cos_power
    ce_u = np.zeros((cost.size, dxt.size))
    ce_u[:, :-1] = cft[:, None] / (cost[:, None] * dxt[None, 1:])
    cn_u = np.zeros(cost.size)
    cn_u[:-1] = cfu[:-1] / dyu[:-1] * cosu[:-1]
    ce_v = np.zeros((cost.size, dxt.size))
    ce_v[:, :-1] = cfu[:, None] / (cosu[:, None] * dxu[None, :-1])
    cn_v = np.zeros(cost.size)
    cn_v[:-1] = cft[1:] / dyt[1:] * cost[1:]
    return {"fric_ce_u": ce_u, "fric_cn_u": cn_u, "fric_ce_v": ce_v, "fric_cn_v": cn_v,
            "fric_rx_u": 1.0 / (cost[:, None] * dxu[None, :]), "fric_ry_u": 1.0 / (cost * dyt),
            "fric_rx_v": 1.0 / (cosu[:, None] * dxt[None, :]), "fric_ry_v": 1.0 / (dyu * cosu)}


#: the friction_metrics arrays in kernel argument order
FRICTION_METRICS = ("fric_ce_u", "fric_cn_u", "fric_ce_v", "fric_cn_v", "fric_rx_u", "fric_ry_u", "fric_rx_v",
                    "fric_ry_v")


@device
def hfric_fe_u(k, j, i, u, maskU, A_h_t, fric_ce_u):
    """East flux of u at T point (j, i+1): ``A_h_t c_e (u_{i+1} - u_i) mU mU``."""
    if i >= u.shape[2] - 1:
        return 0.0
    return hfric_fe_u_in(k, j, i, u, maskU, A_h_t, fric_ce_u)


@device
def hfric_fe_u_in(k, j, i, u, maskU, A_h_t, fric_ce_u):
    """:func:`hfric_fe_u` where the neighbour exists (no test: interior bodies, the dissipation)."""
    return A_h_t[j, i + 1] * fric_ce_u[j, i] * (u[k, j, i + 1] - u[k, j, i]) * maskU[k, j, i + 1] * maskU[k, j, i]


@device
def hfric_fn_u(k, j, i, u, maskU, A_h_z, fric_cn_u):
    """North flux of u at corner (j, i): ``A_h_z c_n (u_{j+1} - u_j) mU mU``."""
    if j >= u.shape[1] - 1:
        return 0.0
    return hfric_fn_u_in(k, j, i, u, maskU, A_h_z, fric_cn_u)


@device
def hfric_fn_u_in(k, j, i, u, maskU, A_h_z, fric_cn_u):
    """:func:`hfric_fn_u` where the neighbour exists (no test: interior bodies, the dissipation)."""
    return A_h_z[j, i] * fric_cn_u[j] * (u[k, j + 1, i] - u[k, j, i]) * maskU[k, j + 1, i] * maskU[k, j, i]


@device
def hfric_fe_v(k, j, i, v, maskV, A_h_z, fric_ce_v):
    """East flux of v at corner (j, i): ``A_h_z c_e (v_{i+1} - v_i) mV mV``."""
    if i >= v.shape[2] - 1:
        return 0.0
    return hfric_fe_v_in(k, j, i, v, maskV, A_h_z, fric_ce_v)


@device
def hfric_fe_v_in(k, j, i, v, maskV, A_h_z, fric_ce_v):
    """:func:`hfric_fe_v` where the neighbour exists (no test: interior bodies, the dissipation)."""
    return A_h_z[j, i] * fric_ce_v[j, i] * (v[k, j, i + 1] - v[k, j, i]) * maskV[k, j, i + 1] * maskV[k, j, i]


@device
def hfric_fn_v(k, j, i, v, maskV, A_h_t, fric_cn_v):
    """North flux of v at T point (j+1, i): ``A_h_t c_n (v_{j+1} - v_j) mV mV``."""
    if j >= v.shape[1] - 1:
        return 0.0
    return hfric_fn_v_in(k, j, i, v, maskV, A_h_t, fric_cn_v)


@device
def hfric_fn_v_in(k, j, i, v, maskV, A_h_t, fric_cn_v):
    """:func:`hfric_fn_v` where the neighbour exists (no test: interior bodies, the dissipation)."""
    return A_h_t[j + 1, i] * fric_cn_v[j] * (v[k, j + 1, i] - v[k, j, i]) * maskV[k, j, i] * maskV[k, j + 1, i]


@device
def bottom_level_u(j, i, kbot):
    return imax(kbot[j, i], kbot[j, i + 1]) - 1


@device
def bottom_level_v(j, i, kbot):
    return imax(kbot[j, i], kbot[j + 1, i]) - 1


def _ref_fluxes(q, mask, A_e, c_e, A_n, c_n):
    """East and north harmonic fluxes of q (NumPy): ``A c (q_1 - q_0) m_1 m_0``, 0 on the last column/row."""
    fe = np.zeros_like(q)
    fn = np.zeros_like(q)
    fe[:, :, :-1] = A_e[None] * c_e[None, :, :-1] * (q[:, :, 1:] - q[:, :, :-1]) * mask[:, :, 1:] * mask[:, :, :-1]
    fn[:, :-1, :] = A_n[None] * c_n[None, :-1, None] * (q[:, 1:, :] - q[:, :-1, :]) * mask[:, 1:, :] * mask[:, :-1, :]
    return fe, fn


def _ref_lateral_friction(du_mix_v, dv_mix_v, u, v, A_h_t, A_h_z, r_bot_u, r_bot_v, maskU, maskV, kbot,
                          fric_ce_u, fric_cn_u, fric_ce_v, fric_cn_v, fric_rx_u, fric_ry_u, fric_rx_v, fric_ry_v):
    nz = u.shape[0]
    s = (slice(None), slice(2, -2), slice(2, -2))
    out = []
    for q, mask, A_e, c_e, A_n, c_n, rx, ry, base in (
            (u, maskU, A_h_t[:, 1:], fric_ce_u, A_h_z[:-1, :], fric_cn_u, fric_rx_u, fric_ry_u, du_mix_v),
            (v, maskV, A_h_z[:, :-1], fric_ce_v, A_h_t[1:, :], fric_cn_v, fric_rx_v, fric_ry_v, dv_mix_v)):
        fe, fn = _ref_fluxes(q, mask, A_e, c_e, A_n, c_n)
        d = np.zeros_like(q)
        d[s] = base[s] + mask[s] * ((fe[:, 2:-2, 2:-2] - fe[:, 2:-2, 1:-3]) * rx[None, 2:-2, 2:-2]
                                    + (fn[:, 2:-2, 2:-2] - fn[:, 1:-3, 2:-2]) * ry[None, 2:-2, None])
        out.append(d)
    du, dv = out
    ks = np.arange(nz)[:, None, None]
    ku = np.maximum(kbot[:, :-1], kbot[:, 1:]) - 1
    bu = np.zeros_like(u)
    bu[:, :, :-1] = (ks == ku[None]) * (-maskU[:, :, :-1] * r_bot_u[None, :, :-1] * u[:, :, :-1])
    kv = np.maximum(kbot[:-1, :], kbot[1:, :]) - 1
    bv = np.zeros_like(v)
    bv[:, :-1, :] = (ks == kv[None]) * (-maskV[:, :-1, :] * r_bot_v[None, :-1, :] * v[:, :-1, :])
    du[s] += bu[s]
    dv[s] += bv[s]
    return du, dv


@device
def lateral_friction_interior(i, j, k, du_mix, dv_mix, du_mix_v, dv_mix_v, u, v, A_h_t, A_h_z, r_bot_u, r_bot_v,
                              maskU, maskV, kbot, fric_ce_u, fric_cn_u, fric_ce_v, fric_cn_v, fric_rx_u, fric_ry_u,
                              fric_rx_v, fric_ry_v):
    """:func:`lateral_friction` at an interior point (no interior test; the split launcher's interior loop)."""
    hu = maskU[k, j, i] * (
        (hfric_fe_u_in(k, j, i, u, maskU, A_h_t, fric_ce_u) - hfric_fe_u_in(k, j, i - 1, u, maskU, A_h_t, fric_ce_u))
        * fric_rx_u[j, i]
        + (hfric_fn_u_in(k, j, i, u, maskU, A_h_z, fric_cn_u) - hfric_fn_u_in(k, j - 1, i, u, maskU, A_h_z, fric_cn_u))
        * fric_ry_u[j])
    a = du_mix_v[k, j, i] + hu
    # bottom drag as a select (unconditional loads: the i loop vectorises without masked loads)
    ad = a + (-maskU[k, j, i] * r_bot_u[j, i] * u[k, j, i])
    du_mix[k, j, i] = ad if k == bottom_level_u(j, i, kbot) else a
    hv = maskV[k, j, i] * (
        (hfric_fe_v_in(k, j, i, v, maskV, A_h_z, fric_ce_v) - hfric_fe_v_in(k, j, i - 1, v, maskV, A_h_z, fric_ce_v))
        * fric_rx_v[j, i]
        + (hfric_fn_v_in(k, j, i, v, maskV, A_h_t, fric_cn_v) - hfric_fn_v_in(k, j - 1, i, v, maskV, A_h_t, fric_cn_v))
        * fric_ry_v[j])
    b = dv_mix_v[k, j, i] + hv
    bd = b + (-maskV[k, j, i] * r_bot_v[j, i] * v[k, j, i])
    dv_mix[k, j, i] = bd if k == bottom_level_v(j, i, kbot) else b


@kernel("3d", outputs=("du_mix", "dv_mix"), reference=_ref_lateral_friction,
        active=("du_mix_v", "dv_mix_v", "u", "v", "A_h_t", "A_h_z", "r_bot_u", "r_bot_v"), split=True, same_shapes=True,
        interior=lateral_friction_interior)
def lateral_friction(i, j, k, du_mix, dv_mix, du_mix_v, dv_mix_v, u, v, A_h_t, A_h_z, r_bot_u, r_bot_v,
                     maskU, maskV, kbot, fric_ce_u, fric_cn_u, fric_ce_v, fric_cn_v, fric_rx_u, fric_ry_u,
                     fric_rx_v, fric_ry_v):
    """Friction tendency ``du_mix = du_mix_v + harmonic(u) - r_bot u [bottom cell]`` (U; V likewise).

    Harmonic part (Veros ``harmonic_friction`` with cos scaling, free slip):
    ``maskU [(fe_i - fe_{i-1}) / (cost dxu) + (fn_j - fn_{j-1}) / (cost dyt)]`` with the fluxes
    and reciprocal metrics of :func:`friction_metrics`; bottom drag acts on the deepest wet
    cell only and is *not* divided by dz.
    """
    if not in_interior(i, j, u.shape[2], u.shape[1]):
        du_mix[k, j, i] = 0.0
        dv_mix[k, j, i] = 0.0
        return
    lateral_friction_interior(i, j, k, du_mix, dv_mix, du_mix_v, dv_mix_v, u, v, A_h_t, A_h_z, r_bot_u, r_bot_v,
                              maskU, maskV, kbot, fric_ce_u, fric_cn_u, fric_ce_v, fric_cn_v, fric_rx_u, fric_ry_u,
                              fric_rx_v, fric_ry_v)


# ---------------------------------------------------------------------------
# dissipation of lateral friction (source of EKE): U/V points, then W/T grid
# ---------------------------------------------------------------------------

@device
def diss_u_at(k, j, i, u, maskU, A_h_t, A_h_z, fric_ce_u, fric_cn_u, fric_rx_u, fric_ry_u):
    fe1 = hfric_fe_u_in(k, j, i, u, maskU, A_h_t, fric_ce_u)
    fe0 = hfric_fe_u_in(k, j, i - 1, u, maskU, A_h_t, fric_ce_u)
    fn1 = hfric_fn_u_in(k, j, i, u, maskU, A_h_z, fric_cn_u)
    fn0 = hfric_fn_u_in(k, j - 1, i, u, maskU, A_h_z, fric_cn_u)
    return (0.5 * ((u[k, j, i + 1] - u[k, j, i]) * fe1 + (u[k, j, i] - u[k, j, i - 1]) * fe0) * fric_rx_u[j, i]
            + 0.5 * ((u[k, j + 1, i] - u[k, j, i]) * fn1 + (u[k, j, i] - u[k, j - 1, i]) * fn0) * fric_ry_u[j])


@device
def diss_v_at(k, j, i, v, maskV, A_h_t, A_h_z, fric_ce_v, fric_cn_v, fric_rx_v, fric_ry_v):
    fe1 = hfric_fe_v_in(k, j, i, v, maskV, A_h_z, fric_ce_v)
    fe0 = hfric_fe_v_in(k, j, i - 1, v, maskV, A_h_z, fric_ce_v)
    fn1 = hfric_fn_v_in(k, j, i, v, maskV, A_h_t, fric_cn_v)
    fn0 = hfric_fn_v_in(k, j - 1, i, v, maskV, A_h_t, fric_cn_v)
    return (0.5 * ((v[k, j, i + 1] - v[k, j, i]) * fe1 + (v[k, j, i] - v[k, j, i - 1]) * fe0) * fric_rx_v[j, i]
            + 0.5 * ((v[k, j + 1, i] - v[k, j, i]) * fn1 + (v[k, j, i] - v[k, j - 1, i]) * fn0) * fric_ry_v[j])


def _ref_friction_dissipation(u, v, A_h_t, A_h_z, maskU, maskV, fric_ce_u, fric_cn_u, fric_ce_v, fric_cn_v,
                              fric_rx_u, fric_ry_u, fric_rx_v, fric_ry_v):
    fe, fn = _ref_fluxes(u, maskU, A_h_t[:, 1:], fric_ce_u, A_h_z[:-1, :], fric_cn_u)
    du = np.zeros_like(u)
    du[:, 2:-2, 1:-2] = (0.5 * ((u[:, 2:-2, 2:-1] - u[:, 2:-2, 1:-2]) * fe[:, 2:-2, 1:-2]
                                + (u[:, 2:-2, 1:-2] - u[:, 2:-2, :-3]) * fe[:, 2:-2, :-3]) * fric_rx_u[None, 2:-2, 1:-2]
                         + 0.5 * ((u[:, 3:-1, 1:-2] - u[:, 2:-2, 1:-2]) * fn[:, 2:-2, 1:-2]
                                  + (u[:, 2:-2, 1:-2] - u[:, 1:-3, 1:-2]) * fn[:, 1:-3, 1:-2])
                         * fric_ry_u[None, 2:-2, None])
    fe, fn = _ref_fluxes(v, maskV, A_h_z[:, :-1], fric_ce_v, A_h_t[1:, :], fric_cn_v)
    dv = np.zeros_like(v)
    dv[:, 1:-2, 2:-2] = (0.5 * ((v[:, 1:-2, 3:-1] - v[:, 1:-2, 2:-2]) * fe[:, 1:-2, 2:-2]
                                + (v[:, 1:-2, 2:-2] - v[:, 1:-2, 1:-3]) * fe[:, 1:-2, 1:-3]) * fric_rx_v[None, 1:-2, 2:-2]
                         + 0.5 * ((v[:, 2:-1, 2:-2] - v[:, 1:-2, 2:-2]) * fn[:, 1:-2, 2:-2]
                                  + (v[:, 1:-2, 2:-2] - v[:, :-3, 2:-2]) * fn[:, :-3, 2:-2])
                         * fric_ry_v[None, 1:-2, None])
    return du, dv


@device
def friction_dissipation_interior(i, j, k, diss_u, diss_v, u, v, A_h_t, A_h_z, maskU, maskV, fric_ce_u, fric_cn_u,
                                  fric_ce_v, fric_cn_v, fric_rx_u, fric_ry_u, fric_rx_v, fric_ry_v):
    """:func:`friction_dissipation` at an interior point (both face ranges contain it)."""
    diss_u[k, j, i] = diss_u_at(k, j, i, u, maskU, A_h_t, A_h_z, fric_ce_u, fric_cn_u, fric_rx_u, fric_ry_u)
    diss_v[k, j, i] = diss_v_at(k, j, i, v, maskV, A_h_t, A_h_z, fric_ce_v, fric_cn_v, fric_rx_v, fric_ry_v)


@kernel("3d", outputs=("diss_u", "diss_v"), reference=_ref_friction_dissipation,
        active=("u", "v", "A_h_t", "A_h_z"), split=True, same_shapes=True, interior=friction_dissipation_interior)
def friction_dissipation(i, j, k, diss_u, diss_v, u, v, A_h_t, A_h_z, maskU, maskV, fric_ce_u, fric_cn_u, fric_ce_v,
                         fric_cn_v, fric_rx_u, fric_ry_u, fric_rx_v, fric_ry_v):
    """Dissipation of harmonic friction ``0.5 sum(flux * gradient)`` at U points
    (``1 <= i < NX-2``, interior j) and V points (interior i, ``1 <= j < NY-2``)."""
    NY = u.shape[1]
    NX = u.shape[2]
    if i >= 1 and i < NX - 2 and j >= 2 and j < NY - 2:
        diss_u[k, j, i] = diss_u_at(k, j, i, u, maskU, A_h_t, A_h_z, fric_ce_u, fric_cn_u, fric_rx_u, fric_ry_u)
    else:
        diss_u[k, j, i] = 0.0
    if i >= 2 and i < NX - 2 and j >= 1 and j < NY - 2:
        diss_v[k, j, i] = diss_v_at(k, j, i, v, maskV, A_h_t, A_h_z, fric_ce_v, fric_cn_v, fric_rx_v, fric_ry_v)
    else:
        diss_v[k, j, i] = 0.0



def dissipation_metrics(grid):
    """Weights of :func:`dissipation_to_tgrid` (grid only): ``diss_dzr[k] = dzw[k-1] / dzw[k]`` (1 at
    k = 0) (zw); ``diss_wx0[i] = dxu[i-1] / (2 dxt[i])``, ``diss_wx1[i] = dxu[i] / (2 dxt[i])`` (xt);
    ``diss_wy0[j, i] = area_v[j-1, i] / (2 area_t[j, i])``, ``diss_wy1 = area_v / (2 area_t)`` (yt, xt)
    (0 in the first column / row, which the kernel does not reach)."""
    dzw = np.asarray(grid.dzw, float)
    dxt, dxu = np.asarray(grid.dxt, float), np.asarray(grid.dxu, float)
    area_t, area_v = np.asarray(grid.area_t, float), np.asarray(grid.area_v, float)
    dzr = np.ones_like(dzw)
    dzr[1:] = dzw[:-1] / dzw[1:]
    wx0 = np.zeros_like(dxt)
    wx0[1:] = dxu[:-1] / (2 * dxt[1:])
    wy0 = np.zeros_like(area_t)
    wy0[1:] = area_v[:-1] / (2 * area_t[1:])
    return {"diss_dzr": dzr, "diss_wx0": wx0, "diss_wx1": dxu / (2 * dxt), "diss_wy0": wy0,
            "diss_wy1": area_v / (2 * area_t)}


#: the dissipation_metrics arrays
DISSIPATION_METRICS = ("diss_dzr", "diss_wx0", "diss_wx1", "diss_wy0", "diss_wy1")


@device
def diss_on_wgrid(k, nz, ks, d_k, d_kp1, dzr):
    """Veros ``dissipation_on_wgrid``: value at W level k from level values d (T-like levels);
    ``dzr = dzw[k-1] / dzw[k]`` (:func:`dissipation_metrics`)."""
    # written as selects (no early returns) so that loops over i vectorise; precedence:
    # ks <= 0 -> 0, top level -> d_k, bottom wet level -> mean + bottom term, above -> mean
    kb = ks - 1
    mean = 0.5 * (d_k + d_kp1)
    r = mean if k > kb else 0.0
    r = mean + 0.5 * (d_k * dzr) if k == kb else r
    r = d_k if k == nz - 1 else r
    return 0.0 if ks <= 0 else r


def _ref_wgrid(d, ks, diss_dzr):
    nz = d.shape[0]
    out = np.zeros_like(d)
    land = ks > 0
    kk = np.arange(nz)[:, None, None]
    edge = land[None] & (kk == ks[None] - 1)
    water = land[None] & (kk > ks[None] - 1)
    out[:-1] = ((0.5 * (d[:-1] + d[1:]) + 0.5 * (d[:-1] * diss_dzr[:-1, None, None])) * edge[:-1]
                + 0.5 * (d[:-1] + d[1:]) * water[:-1])
    out[-1] = d[-1] * land
    return out


def _ref_dissipation_to_tgrid(diss_u, diss_v, kbot, diss_dzr, diss_wx0, diss_wx1, diss_wy0, diss_wy1):
    ksu = np.zeros_like(kbot)
    ksu[2:-2, 1:-2] = np.maximum(kbot[2:-2, 1:-2], kbot[2:-2, 2:-1])
    ksv = np.zeros_like(kbot)
    ksv[1:-2, 2:-2] = np.maximum(kbot[1:-2, 2:-2], kbot[2:-1, 2:-2])
    wu = _ref_wgrid(diss_u, ksu, diss_dzr)
    wv = _ref_wgrid(diss_v, ksv, diss_dzr)
    out = np.zeros_like(diss_u)
    s = (slice(None), slice(2, -2), slice(2, -2))
    out[s] = ((diss_wx1[None, None, 2:-2] * wu[s] + diss_wx0[None, None, 2:-2] * wu[:, 2:-2, 1:-3])
              + (diss_wy1[None, 2:-2, 2:-2] * wv[s] + diss_wy0[None, 2:-2, 2:-2] * wv[:, 1:-3, 2:-2]))
    return (out,)


@device
def dissipation_to_tgrid_interior(i, j, k, K_diss_h, diss_u, diss_v, kbot, diss_dzr, diss_wx0, diss_wx1, diss_wy0,
                                  diss_wy1):
    """:func:`dissipation_to_tgrid` at an interior point (no interior test)."""
    nz = diss_u.shape[0]
    kp = k + 1 if k < nz - 1 else k
    dzr = diss_dzr[k]
    wu1 = diss_on_wgrid(k, nz, imax(kbot[j, i], kbot[j, i + 1]), diss_u[k, j, i], diss_u[kp, j, i], dzr)
    wu0 = diss_on_wgrid(k, nz, imax(kbot[j, i - 1], kbot[j, i]), diss_u[k, j, i - 1], diss_u[kp, j, i - 1], dzr)
    wv1 = diss_on_wgrid(k, nz, imax(kbot[j, i], kbot[j + 1, i]), diss_v[k, j, i], diss_v[kp, j, i], dzr)
    wv0 = diss_on_wgrid(k, nz, imax(kbot[j - 1, i], kbot[j, i]), diss_v[k, j - 1, i], diss_v[kp, j - 1, i], dzr)
    K_diss_h[k, j, i] = ((diss_wx1[i] * wu1 + diss_wx0[i] * wu0)
                         + (diss_wy1[j, i] * wv1 + diss_wy0[j, i] * wv0))


@kernel("3d", outputs=("K_diss_h",), reference=_ref_dissipation_to_tgrid, active=("diss_u", "diss_v"),
        split=True, same_shapes=True,
        interior=dissipation_to_tgrid_interior)
def dissipation_to_tgrid(i, j, k, K_diss_h, diss_u, diss_v, kbot, diss_dzr, diss_wx0, diss_wx1, diss_wy0, diss_wy1):
    """K_diss_h on the W grid at T columns (interior only) from the U and V dissipation:
    each is moved to W levels (``dissipation_on_wgrid``) and averaged to T,
    ``K = (dxu_i W_u[i] + dxu_{i-1} W_u[i-1]) / (2 dxt_i) + (area_v_j W_v[j] + area_v_{j-1} W_v[j-1]) / (2 area_t)``,
    with the weights of :func:`dissipation_metrics` (no division per point)."""
    if not in_interior(i, j, diss_u.shape[2], diss_u.shape[1]):
        K_diss_h[k, j, i] = 0.0
        return
    dissipation_to_tgrid_interior(i, j, k, K_diss_h, diss_u, diss_v, kbot, diss_dzr, diss_wx0, diss_wx1, diss_wy0,
                                  diss_wy1)


#: Lateral friction and its dissipation (both read the velocity stencil of the same
#: point; neither reads the other's output) in one pass over memory.
friction_with_dissipation = fuse("friction_with_dissipation", lateral_friction, friction_dissipation,
                                 split=True, same_shapes=True)
