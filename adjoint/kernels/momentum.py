"""Tangent-linear and adjoint kernels of :mod:`ocean_core.kernels.momentum`.

Helpers with many call sites use ``helper`` (ordinary njit functions, cheap to
compile); the two large tangent helpers use ``device`` (IR-inlined).

Adjoints are in gather form: the thread of point p sums, over every output point q
whose forward stencil reads p, the partial derivative times the output adjoint.  For
flux-form operators the adjoint of each face flux is formed inline from the adjoints
of the two cells it separates (``b_flux = -c_left b_left + c_right b_right``) and then
multiplied by the flux's partial derivative with respect to p.
"""

from ocean_core import constants as C
from ocean_core.kernels import momentum as F
from ocean_core.kernels.framework import device, helper
from ocean_core.kernels.momentum import in_interior, utr_at, vtr_at, wtr_at

from .pairing import adjoint_of, tangent_of

# forward bodies reused by tangents of linear kernels (numba resolves module-level dispatchers)
_explicit_tendency = F.explicit_tendency.body


# ===========================================================================
# Coriolis and metric terms
# ===========================================================================

@tangent_of(F.coriolis_metric)
def coriolis_metric_tl(i, j, k, d_du_cor, d_dv_cor, d_u, d_v, u, v, coriolis_t, tantr, dxt, dxu, dyt, dyu, cost,
                       cosu, maskU, maskV):
    """Tangent of the Coriolis and metric terms (bilinear in u, v)."""
    if not in_interior(i, j, u.shape[2], u.shape[1]):
        d_du_cor[k, j, i] = 0.0
        d_dv_cor[k, j, i] = 0.0
        return
    r0 = dxt[i] / dxu[i]
    r1 = dxt[i + 1] / dxu[i]
    vs0 = v[k, j, i] + v[k, j - 1, i]
    vs1 = v[k, j, i + 1] + v[k, j - 1, i + 1]
    dvs0 = d_v[k, j, i] + d_v[k, j - 1, i]
    dvs1 = d_v[k, j, i + 1] + d_v[k, j - 1, i + 1]
    ua = u[k, j, i] + u[k, j, i - 1]
    ub = u[k, j, i + 1] + u[k, j, i]
    dua = d_u[k, j, i] + d_u[k, j, i - 1]
    dub = d_u[k, j, i + 1] + d_u[k, j, i]
    cor = 0.25 * (coriolis_t[j, i] * dvs0 * r0 + coriolis_t[j, i + 1] * dvs1 * r1)
    met = 0.125 * tantr[j] * ((dua * vs0 + ua * dvs0) * r0 + (dub * vs1 + ub * dvs1) * r1)
    d_du_cor[k, j, i] = maskU[k, j, i] * (cor + met)
    us0 = u[k, j, i - 1] + u[k, j, i]
    us1 = u[k, j + 1, i - 1] + u[k, j + 1, i]
    dus0 = d_u[k, j, i - 1] + d_u[k, j, i]
    dus1 = d_u[k, j + 1, i - 1] + d_u[k, j + 1, i]
    w0 = dyt[j] * cost[j] / (dyu[j] * cosu[j])
    w1 = dyt[j + 1] * cost[j + 1] / (dyu[j] * cosu[j])
    d_dv_cor[k, j, i] = maskV[k, j, i] * (-0.25 * (coriolis_t[j, i] * dus0 * w0 + coriolis_t[j + 1, i] * dus1 * w1)
                                          - 0.25 * (tantr[j] * us0 * dus0 * w0 + tantr[j + 1] * us1 * dus1 * w1))


@helper
def _cor_u_partials(k, j, i, u, v, coriolis_t, tantr, dxt, dxu, maskU):
    """d du_cor[k, j, i] / d(vs0), d(vs1), d(u_{i-1}), d(u_i), d(u_{i+1}) (0 outside the interior)."""
    if not in_interior(i, j, u.shape[2], u.shape[1]):
        return 0.0, 0.0, 0.0, 0.0, 0.0
    m = maskU[k, j, i]
    r0 = dxt[i] / dxu[i]
    r1 = dxt[i + 1] / dxu[i]
    vs0 = v[k, j, i] + v[k, j - 1, i]
    vs1 = v[k, j, i + 1] + v[k, j - 1, i + 1]
    ua = u[k, j, i] + u[k, j, i - 1]
    ub = u[k, j, i + 1] + u[k, j, i]
    t = 0.125 * tantr[j]
    g0 = m * (0.25 * coriolis_t[j, i] * r0 + t * ua * r0)
    g1 = m * (0.25 * coriolis_t[j, i + 1] * r1 + t * ub * r1)
    gm = m * t * vs0 * r0
    gp = m * t * vs1 * r1
    return g0, g1, gm, gm + gp, gp


@helper
def _cor_v_partials(k, j, i, u, coriolis_t, tantr, dyt, dyu, cost, cosu, maskV):
    """d dv_cor[k, j, i] / d(us0), d(us1) (0 outside the interior)."""
    if not in_interior(i, j, u.shape[2], u.shape[1]):
        return 0.0, 0.0
    m = maskV[k, j, i]
    us0 = u[k, j, i - 1] + u[k, j, i]
    us1 = u[k, j + 1, i - 1] + u[k, j + 1, i]
    w0 = dyt[j] * cost[j] / (dyu[j] * cosu[j])
    w1 = dyt[j + 1] * cost[j + 1] / (dyu[j] * cosu[j])
    return (m * (-0.25 * coriolis_t[j, i] * w0 - 0.25 * tantr[j] * us0 * w0),
            m * (-0.25 * coriolis_t[j + 1, i] * w1 - 0.25 * tantr[j + 1] * us1 * w1))


@adjoint_of(F.coriolis_metric)
def coriolis_metric_ad(i, j, k, b_u, b_v, b_du_cor, b_dv_cor, u, v, coriolis_t, tantr, dxt, dxu, dyt, dyu, cost,
                       cosu, maskU, maskV):
    """Adjoint of the Coriolis and metric terms (gather over the U/V points reading u, v at p)."""
    NX = u.shape[2]
    NY = u.shape[1]
    bu = 0.0
    bv = 0.0
    # du_cor at U points (j, i'), i' in {i-1, i, i+1}, reads u[j, i] and v at rows j, j-1 of cols i', i'+1
    if i >= 1:
        g0, g1, gm, gc, gp = _cor_u_partials(k, j, i - 1, u, v, coriolis_t, tantr, dxt, dxu, maskU)
        bu += gp * b_du_cor[k, j, i - 1]          # as u_{i'+1}
        bv += g1 * b_du_cor[k, j, i - 1]          # v[j, i'+1]
    g0, g1, gm, gc, gp = _cor_u_partials(k, j, i, u, v, coriolis_t, tantr, dxt, dxu, maskU)
    bu += gc * b_du_cor[k, j, i]
    bv += g0 * b_du_cor[k, j, i]                  # v[j, i'] in vs0
    if i + 1 < NX:
        g0, g1, gm, gc, gp = _cor_u_partials(k, j, i + 1, u, v, coriolis_t, tantr, dxt, dxu, maskU)
        bu += gm * b_du_cor[k, j, i + 1]          # as u_{i'-1}
    if j + 1 < NY:
        g0, g1, gm, gc, gp = _cor_u_partials(k, j + 1, i, u, v, coriolis_t, tantr, dxt, dxu, maskU)
        bv += g0 * b_du_cor[k, j + 1, i]          # v[j'-1, i'] in vs0
        if i >= 1:
            g0, g1, gm, gc, gp = _cor_u_partials(k, j + 1, i - 1, u, v, coriolis_t, tantr, dxt, dxu, maskU)
            bv += g1 * b_du_cor[k, j + 1, i - 1]  # v[j'-1, i'+1] in vs1
    # dv_cor at V points (j', i'), reads u at (j', i'-1), (j', i') [us0] and (j'+1, i'-1), (j'+1, i') [us1]
    c0, c1 = _cor_v_partials(k, j, i, u, coriolis_t, tantr, dyt, dyu, cost, cosu, maskV)
    bu += c0 * b_dv_cor[k, j, i]
    if i + 1 < NX:
        c0, c1 = _cor_v_partials(k, j, i + 1, u, coriolis_t, tantr, dyt, dyu, cost, cosu, maskV)
        bu += c0 * b_dv_cor[k, j, i + 1]
    if j >= 1:
        c0, c1 = _cor_v_partials(k, j - 1, i, u, coriolis_t, tantr, dyt, dyu, cost, cosu, maskV)
        bu += c1 * b_dv_cor[k, j - 1, i]
        if i + 1 < NX:
            c0, c1 = _cor_v_partials(k, j - 1, i + 1, u, coriolis_t, tantr, dyt, dyu, cost, cosu, maskV)
            bu += c1 * b_dv_cor[k, j - 1, i + 1]
    b_u[k, j, i] += bu
    b_v[k, j, i] += bv


# ===========================================================================
# momentum advection
# ===========================================================================

@helper
def _cu(k, j, i, maskU, dzt, area_u):
    """Coefficient of du_adv at U point q: mU / (dzt area_u) in the interior, else 0."""
    if i < 2 or i >= maskU.shape[2] - 2 or j < 2 or j >= maskU.shape[1] - 2:
        return 0.0
    return maskU[k, j, i] / (dzt[k] * area_u[j, i])


@helper
def _cv(k, j, i, maskV, dzt, area_v):
    if i < 2 or i >= maskV.shape[2] - 2 or j < 2 or j >= maskV.shape[1] - 2:
        return 0.0
    return maskV[k, j, i] / (dzt[k] * area_v[j, i])


@device
def _tl_madv_u(k, j, i, d_u, d_v, d_w, u, v, w, maskU, maskV, maskW, dxt, dyt, dzt, cosu, area_t, area_u):
    nz = u.shape[0]
    # fluxes and their tangents at the four horizontal faces
    U0 = utr_at(k, j, i - 1, u, maskU, dyt, dzt)
    U1 = utr_at(k, j, i, u, maskU, dyt, dzt)
    U2 = utr_at(k, j, i + 1, u, maskU, dyt, dzt)
    dU0 = utr_at(k, j, i - 1, d_u, maskU, dyt, dzt)
    dU1 = utr_at(k, j, i, d_u, maskU, dyt, dzt)
    dU2 = utr_at(k, j, i + 1, d_u, maskU, dyt, dzt)
    s1 = u[k, j, i] + u[k, j, i + 1]
    s0 = u[k, j, i - 1] + u[k, j, i]
    ds1 = d_u[k, j, i] + d_u[k, j, i + 1]
    ds0 = d_u[k, j, i - 1] + d_u[k, j, i]
    dfe1 = 0.25 * (ds1 * (U2 + U1) + s1 * (dU2 + dU1))
    dfe0 = 0.25 * (ds0 * (U1 + U0) + s0 * (dU1 + dU0))
    V1 = vtr_at(k, j, i + 1, v, maskV, dxt, dzt, cosu) + vtr_at(k, j, i, v, maskV, dxt, dzt, cosu)
    V0 = vtr_at(k, j - 1, i + 1, v, maskV, dxt, dzt, cosu) + vtr_at(k, j - 1, i, v, maskV, dxt, dzt, cosu)
    dV1 = vtr_at(k, j, i + 1, d_v, maskV, dxt, dzt, cosu) + vtr_at(k, j, i, d_v, maskV, dxt, dzt, cosu)
    dV0 = vtr_at(k, j - 1, i + 1, d_v, maskV, dxt, dzt, cosu) + vtr_at(k, j - 1, i, d_v, maskV, dxt, dzt, cosu)
    n1 = u[k, j, i] + u[k, j + 1, i]
    n0 = u[k, j - 1, i] + u[k, j, i]
    dn1 = d_u[k, j, i] + d_u[k, j + 1, i]
    dn0 = d_u[k, j - 1, i] + d_u[k, j, i]
    dfn1 = 0.25 * (dn1 * V1 + n1 * dV1)
    dfn0 = 0.25 * (dn0 * V0 + n0 * dV0)
    r = -maskU[k, j, i] * (dfe1 - dfe0 + dfn1 - dfn0) / (dzt[k] * area_u[j, i])
    tmp = maskU[k, j, i] / (dzt[k] * area_u[j, i])
    if k < nz - 1:
        W = wtr_at(k, j, i, w, maskW, area_t) + wtr_at(k, j, i + 1, w, maskW, area_t)
        dW = wtr_at(k, j, i, d_w, maskW, area_t) + wtr_at(k, j, i + 1, d_w, maskW, area_t)
        r = r - tmp * 0.25 * ((d_u[k + 1, j, i] + d_u[k, j, i]) * W + (u[k + 1, j, i] + u[k, j, i]) * dW)
    if k > 0:
        W = wtr_at(k - 1, j, i, w, maskW, area_t) + wtr_at(k - 1, j, i + 1, w, maskW, area_t)
        dW = wtr_at(k - 1, j, i, d_w, maskW, area_t) + wtr_at(k - 1, j, i + 1, d_w, maskW, area_t)
        r = r + tmp * 0.25 * ((d_u[k, j, i] + d_u[k - 1, j, i]) * W + (u[k, j, i] + u[k - 1, j, i]) * dW)
    return r


@device
def _tl_madv_v(k, j, i, d_u, d_v, d_w, u, v, w, maskU, maskV, maskW, dxt, dyt, dzt, cosu, area_t, area_v):
    nz = v.shape[0]
    Ue1 = utr_at(k, j + 1, i, u, maskU, dyt, dzt) + utr_at(k, j, i, u, maskU, dyt, dzt)
    Ue0 = utr_at(k, j + 1, i - 1, u, maskU, dyt, dzt) + utr_at(k, j, i - 1, u, maskU, dyt, dzt)
    dUe1 = utr_at(k, j + 1, i, d_u, maskU, dyt, dzt) + utr_at(k, j, i, d_u, maskU, dyt, dzt)
    dUe0 = utr_at(k, j + 1, i - 1, d_u, maskU, dyt, dzt) + utr_at(k, j, i - 1, d_u, maskU, dyt, dzt)
    e1 = v[k, j, i] + v[k, j, i + 1]
    e0 = v[k, j, i - 1] + v[k, j, i]
    de1 = d_v[k, j, i] + d_v[k, j, i + 1]
    de0 = d_v[k, j, i - 1] + d_v[k, j, i]
    dfe1 = 0.25 * (de1 * Ue1 + e1 * dUe1)
    dfe0 = 0.25 * (de0 * Ue0 + e0 * dUe0)
    V0 = vtr_at(k, j - 1, i, v, maskV, dxt, dzt, cosu)
    V1 = vtr_at(k, j, i, v, maskV, dxt, dzt, cosu)
    V2 = vtr_at(k, j + 1, i, v, maskV, dxt, dzt, cosu)
    dV0 = vtr_at(k, j - 1, i, d_v, maskV, dxt, dzt, cosu)
    dV1 = vtr_at(k, j, i, d_v, maskV, dxt, dzt, cosu)
    dV2 = vtr_at(k, j + 1, i, d_v, maskV, dxt, dzt, cosu)
    n1 = v[k, j, i] + v[k, j + 1, i]
    n0 = v[k, j - 1, i] + v[k, j, i]
    dn1 = d_v[k, j, i] + d_v[k, j + 1, i]
    dn0 = d_v[k, j - 1, i] + d_v[k, j, i]
    dfn1 = 0.25 * (dn1 * (V2 + V1) + n1 * (dV2 + dV1))
    dfn0 = 0.25 * (dn0 * (V1 + V0) + n0 * (dV1 + dV0))
    r = -maskV[k, j, i] * (dfe1 - dfe0 + dfn1 - dfn0) / (dzt[k] * area_v[j, i])
    tmp = maskV[k, j, i] / (dzt[k] * area_v[j, i])
    if k < nz - 1:
        W = wtr_at(k, j, i, w, maskW, area_t) + wtr_at(k, j + 1, i, w, maskW, area_t)
        dW = wtr_at(k, j, i, d_w, maskW, area_t) + wtr_at(k, j + 1, i, d_w, maskW, area_t)
        r = r - tmp * 0.25 * ((d_v[k + 1, j, i] + d_v[k, j, i]) * W + (v[k + 1, j, i] + v[k, j, i]) * dW)
    if k > 0:
        W = wtr_at(k - 1, j, i, w, maskW, area_t) + wtr_at(k - 1, j + 1, i, w, maskW, area_t)
        dW = wtr_at(k - 1, j, i, d_w, maskW, area_t) + wtr_at(k - 1, j + 1, i, d_w, maskW, area_t)
        r = r + tmp * 0.25 * ((d_v[k, j, i] + d_v[k - 1, j, i]) * W + (v[k, j, i] + v[k - 1, j, i]) * dW)
    return r


@tangent_of(F.momentum_advection)
def momentum_advection_tl(i, j, k, d_du_adv, d_dv_adv, d_u, d_v, d_w, u, v, w, maskU, maskV, maskW, dxt, dyt, dzt,
                          cosu, area_t, area_u, area_v):
    """Tangent of the flux-form momentum advection (product rule on every face flux)."""
    if in_interior(i, j, u.shape[2], u.shape[1]):
        d_du_adv[k, j, i] = _tl_madv_u(k, j, i, d_u, d_v, d_w, u, v, w, maskU, maskV, maskW, dxt, dyt, dzt, cosu,
                                       area_t, area_u)
        d_dv_adv[k, j, i] = _tl_madv_v(k, j, i, d_u, d_v, d_w, u, v, w, maskU, maskV, maskW, dxt, dyt, dzt, cosu,
                                       area_t, area_v)
    else:
        d_du_adv[k, j, i] = 0.0
        d_dv_adv[k, j, i] = 0.0


# adjoints of the face fluxes, from the adjoints of the two cells they separate;
# each returns 0 for faces the forward kernel never uses

@helper
def _b_fe_u(k, j, f, b_du, maskU, dzt, area_u):
    """Adjoint of the u-equation east flux at face f (between U cells f and f+1)."""
    NX = maskU.shape[2]
    if f < 0 or f + 1 >= NX:
        return 0.0
    return -_cu(k, j, f, maskU, dzt, area_u) * b_du[k, j, f] + _cu(k, j, f + 1, maskU, dzt, area_u) * b_du[k, j, f + 1]


@helper
def _b_fn_u(k, f, i, b_du, maskU, dzt, area_u):
    """Adjoint of the u-equation north flux at corner row f (between U rows f and f+1)."""
    NY = maskU.shape[1]
    if f < 0 or f + 1 >= NY:
        return 0.0
    return -_cu(k, f, i, maskU, dzt, area_u) * b_du[k, f, i] + _cu(k, f + 1, i, maskU, dzt, area_u) * b_du[k, f + 1, i]


@helper
def _b_ft_u(f, j, i, b_du, maskU, dzt, area_u):
    """Adjoint of the u-equation top flux of level f (between levels f and f+1)."""
    nz = maskU.shape[0]
    if f < 0 or f + 1 >= nz:
        return 0.0
    return -_cu(f, j, i, maskU, dzt, area_u) * b_du[f, j, i] + _cu(f + 1, j, i, maskU, dzt, area_u) * b_du[f + 1, j, i]


@helper
def _b_fe_v(k, j, f, b_dv, maskV, dzt, area_v):
    NX = maskV.shape[2]
    if f < 0 or f + 1 >= NX:
        return 0.0
    return -_cv(k, j, f, maskV, dzt, area_v) * b_dv[k, j, f] + _cv(k, j, f + 1, maskV, dzt, area_v) * b_dv[k, j, f + 1]


@helper
def _b_fn_v(k, f, i, b_dv, maskV, dzt, area_v):
    NY = maskV.shape[1]
    if f < 0 or f + 1 >= NY:
        return 0.0
    return -_cv(k, f, i, maskV, dzt, area_v) * b_dv[k, f, i] + _cv(k, f + 1, i, maskV, dzt, area_v) * b_dv[k, f + 1, i]


@helper
def _b_ft_v(f, j, i, b_dv, maskV, dzt, area_v):
    nz = maskV.shape[0]
    if f < 0 or f + 1 >= nz:
        return 0.0
    return -_cv(f, j, i, maskV, dzt, area_v) * b_dv[f, j, i] + _cv(f + 1, j, i, maskV, dzt, area_v) * b_dv[f + 1, j, i]


@adjoint_of(F.momentum_advection)
def momentum_advection_ad(i, j, k, b_u, b_v, b_w, b_du_adv, b_dv_adv, u, v, w, maskU, maskV, maskW, dxt, dyt, dzt,
                          cosu, area_t, area_u, area_v):
    """Adjoint of the momentum advection, gathered from the faces whose fluxes read u, v, w at p."""
    nz, NY, NX = u.shape
    bu = 0.0
    bv = 0.0
    bw = 0.0
    cU = maskU[k, j, i] * dyt[j] * dzt[k]                 # d utr / d u at p
    cV = dzt[k] * cosu[j] * dxt[i] * maskV[k, j, i]       # d vtr / d v at p
    cW = maskW[k, j, i] * area_t[j, i]                    # d wtr / d w at p
    # --- u-equation, east faces i (u at p is u[f]) and i-1 (u at p is u[f+1]) ---
    if i + 1 < NX:
        b = _b_fe_u(k, j, i, b_du_adv, maskU, dzt, area_u)
        S = utr_at(k, j, i + 1, u, maskU, dyt, dzt) + utr_at(k, j, i, u, maskU, dyt, dzt)
        bu += b * 0.25 * (S + (u[k, j, i] + u[k, j, i + 1]) * cU)
    if i >= 1:
        b = _b_fe_u(k, j, i - 1, b_du_adv, maskU, dzt, area_u)
        S = utr_at(k, j, i, u, maskU, dyt, dzt) + utr_at(k, j, i - 1, u, maskU, dyt, dzt)
        bu += b * 0.25 * (S + (u[k, j, i - 1] + u[k, j, i]) * cU)
    # --- u-equation, north faces at corner rows j and j-1 (column i): d/du = 0.25 (V_i + V_{i+1}) ---
    if j + 1 < NY and i + 1 < NX:
        b = _b_fn_u(k, j, i, b_du_adv, maskU, dzt, area_u)
        bu += b * 0.25 * (vtr_at(k, j, i + 1, v, maskV, dxt, dzt, cosu) + vtr_at(k, j, i, v, maskV, dxt, dzt, cosu))
    if j >= 1 and i + 1 < NX:
        b = _b_fn_u(k, j - 1, i, b_du_adv, maskU, dzt, area_u)
        bu += b * 0.25 * (vtr_at(k, j - 1, i + 1, v, maskV, dxt, dzt, cosu)
                          + vtr_at(k, j - 1, i, v, maskV, dxt, dzt, cosu))
    # north faces of u read v at p: corner (j, i) [vtr_i] and (j, i-1) [vtr_{i'+1}]
    if j + 1 < NY:
        b = _b_fn_u(k, j, i, b_du_adv, maskU, dzt, area_u)
        bv += b * 0.25 * (u[k, j, i] + u[k, j + 1, i]) * cV
        if i >= 1:
            b = _b_fn_u(k, j, i - 1, b_du_adv, maskU, dzt, area_u)
            bv += b * 0.25 * (u[k, j, i - 1] + u[k, j + 1, i - 1]) * cV
    # --- u-equation, top faces k and k-1 (column i): d/du = 0.25 (W_i + W_{i+1}) ---
    if i + 1 < NX:
        if k + 1 < nz:
            b = _b_ft_u(k, j, i, b_du_adv, maskU, dzt, area_u)
            bu += b * 0.25 * (wtr_at(k, j, i, w, maskW, area_t) + wtr_at(k, j, i + 1, w, maskW, area_t))
        if k >= 1:
            b = _b_ft_u(k - 1, j, i, b_du_adv, maskU, dzt, area_u)
            bu += b * 0.25 * (wtr_at(k - 1, j, i, w, maskW, area_t) + wtr_at(k - 1, j, i + 1, w, maskW, area_t))
    # top faces of u read w at p: columns i and i-1
    if k + 1 < nz:
        b = _b_ft_u(k, j, i, b_du_adv, maskU, dzt, area_u)
        bw += b * 0.25 * (u[k + 1, j, i] + u[k, j, i]) * cW
        if i >= 1:
            b = _b_ft_u(k, j, i - 1, b_du_adv, maskU, dzt, area_u)
            bw += b * 0.25 * (u[k + 1, j, i - 1] + u[k, j, i - 1]) * cW
    # --- v-equation, east faces: fe_v(j', f) reads u at (j', f) and (j'+1, f) and v at f, f+1 ---
    if i + 1 < NX:
        if j + 1 < NY:
            b = _b_fe_v(k, j, i, b_dv_adv, maskV, dzt, area_v)
            bu += b * 0.25 * (v[k, j, i] + v[k, j, i + 1]) * cU                 # u as utr[j', f]
        if j >= 1:
            b = _b_fe_v(k, j - 1, i, b_dv_adv, maskV, dzt, area_v)
            bu += b * 0.25 * (v[k, j - 1, i] + v[k, j - 1, i + 1]) * cU         # u as utr[j'+1, f]
    if j + 1 < NY:
        S = utr_at(k, j + 1, i, u, maskU, dyt, dzt) + utr_at(k, j, i, u, maskU, dyt, dzt)
        if i + 1 < NX:
            b = _b_fe_v(k, j, i, b_dv_adv, maskV, dzt, area_v)
            bv += b * 0.25 * S
        if i >= 1:
            b = _b_fe_v(k, j, i - 1, b_dv_adv, maskV, dzt, area_v)
            bv += b * 0.25 * (utr_at(k, j + 1, i - 1, u, maskU, dyt, dzt) + utr_at(k, j, i - 1, u, maskU, dyt, dzt))
    # --- v-equation, north faces j (v at p is v[f]) and j-1 (v at p is v[f+1]) ---
    if j + 1 < NY:
        b = _b_fn_v(k, j, i, b_dv_adv, maskV, dzt, area_v)
        S = vtr_at(k, j + 1, i, v, maskV, dxt, dzt, cosu) + vtr_at(k, j, i, v, maskV, dxt, dzt, cosu)
        bv += b * 0.25 * (S + (v[k, j, i] + v[k, j + 1, i]) * cV)
    if j >= 1:
        b = _b_fn_v(k, j - 1, i, b_dv_adv, maskV, dzt, area_v)
        S = vtr_at(k, j, i, v, maskV, dxt, dzt, cosu) + vtr_at(k, j - 1, i, v, maskV, dxt, dzt, cosu)
        bv += b * 0.25 * (S + (v[k, j - 1, i] + v[k, j, i]) * cV)
    # --- v-equation, top faces (row j): d/dv = 0.25 (W_j + W_{j+1}); w at p read by rows j and j-1 ---
    if j + 1 < NY:
        if k + 1 < nz:
            b = _b_ft_v(k, j, i, b_dv_adv, maskV, dzt, area_v)
            bv += b * 0.25 * (wtr_at(k, j, i, w, maskW, area_t) + wtr_at(k, j + 1, i, w, maskW, area_t))
        if k >= 1:
            b = _b_ft_v(k - 1, j, i, b_dv_adv, maskV, dzt, area_v)
            bv += b * 0.25 * (wtr_at(k - 1, j, i, w, maskW, area_t) + wtr_at(k - 1, j + 1, i, w, maskW, area_t))
    if k + 1 < nz:
        b = _b_ft_v(k, j, i, b_dv_adv, maskV, dzt, area_v)
        bw += b * 0.25 * (v[k + 1, j, i] + v[k, j, i]) * cW
        if j >= 1:
            b = _b_ft_v(k, j - 1, i, b_dv_adv, maskV, dzt, area_v)
            bw += b * 0.25 * (v[k + 1, j - 1, i] + v[k, j - 1, i]) * cW
    b_u[k, j, i] += bu
    b_v[k, j, i] += bv
    b_w[k, j, i] += bw


# ===========================================================================
# hydrostatic pressure (column, linear in rho)
# ===========================================================================

@tangent_of(F.hydrostatic_pressure)
def hydrostatic_pressure_tl(i, j, d_p_hydro, d_rho, maskT, dzw):
    """Tangent = the forward recurrence applied to d_rho (linear)."""
    nz = d_rho.shape[0]
    gr = C.GRAV / C.RHO_0
    p = 0.5 * d_rho[nz - 1, j, i] * C.GRAV / C.RHO_0 * dzw[nz - 1] * maskT[nz - 1, j, i]
    d_p_hydro[nz - 1, j, i] = p
    for kk in range(nz - 1):
        k = nz - 2 - kk
        p = maskT[k, j, i] * (p + 0.5 * dzw[k] * gr * (d_rho[k + 1, j, i] + d_rho[k, j, i]))
        d_p_hydro[k, j, i] = p


@adjoint_of(F.hydrostatic_pressure)
def hydrostatic_pressure_ad(i, j, b_rho, b_p_hydro, maskT, dzw):
    """Adjoint of the downward pressure recurrence: the total adjoint of p[k] is
    ``P_k = b_p[k] + maskT[k-1] P_{k-1}``, accumulated from the bottom up."""
    nz = b_rho.shape[0]
    gr = C.GRAV / C.RHO_0
    P = 0.0
    for k in range(nz - 1):
        if k == 0:
            P = b_p_hydro[0, j, i]
        else:
            P = b_p_hydro[k, j, i] + maskT[k - 1, j, i] * P
        c = maskT[k, j, i] * 0.5 * dzw[k] * gr * P
        b_rho[k, j, i] += c
        b_rho[k + 1, j, i] += c
    if nz == 1:
        P = b_p_hydro[0, j, i]
    else:
        P = b_p_hydro[nz - 1, j, i] + maskT[nz - 2, j, i] * P
    b_rho[nz - 1, j, i] += 0.5 * C.GRAV / C.RHO_0 * dzw[nz - 1] * maskT[nz - 1, j, i] * P


# ===========================================================================
# explicit tendency (linear)
# ===========================================================================

@tangent_of(F.explicit_tendency)
def explicit_tendency_tl(i, j, k, d_du, d_dv, d_du_cor, d_dv_cor, d_du_adv, d_dv_adv, d_p_hydro, d_surface_taux,
                         d_surface_tauy, maskU, maskV, dzt, dxu, dyu, cost):
    """Tangent = the forward kernel applied to the tangent fields (linear)."""
    _explicit_tendency(i, j, k, d_du, d_dv, d_du_cor, d_dv_cor, d_du_adv, d_dv_adv, d_p_hydro, d_surface_taux,
                             d_surface_tauy, maskU, maskV, dzt, dxu, dyu, cost)


@adjoint_of(F.explicit_tendency)
def explicit_tendency_ad(i, j, k, b_du_cor, b_dv_cor, b_du_adv, b_dv_adv, b_p_hydro, b_surface_taux, b_surface_tauy,
                         b_du, b_dv, maskU, maskV, dzt, dxu, dyu, cost):
    """Adjoint of the explicit tendency; the pressure-gradient adjoint gathers from U points (j, i), (j, i-1)
    and V points (j, i), (j-1, i).  The wind-stress adjoints are written by the top-level thread only."""
    nz, NY, NX = b_du.shape
    inner = in_interior(i, j, NX, NY)
    if inner:
        b_du_cor[k, j, i] += b_du[k, j, i]
        b_dv_cor[k, j, i] += b_dv[k, j, i]
        b_du_adv[k, j, i] += b_du[k, j, i]
        b_dv_adv[k, j, i] += b_dv[k, j, i]
        if k == nz - 1:
            b_surface_taux[j, i] += maskU[k, j, i] / dzt[k] / C.RHO_0 * b_du[k, j, i]
            b_surface_tauy[j, i] += maskV[k, j, i] / dzt[k] / C.RHO_0 * b_dv[k, j, i]
    bp = 0.0
    if inner:
        bp += 1.0 / (cost[j] * dxu[i]) * maskU[k, j, i] * b_du[k, j, i]
        bp += 1.0 / dyu[j] * maskV[k, j, i] * b_dv[k, j, i]
    if i >= 1 and in_interior(i - 1, j, NX, NY):
        bp -= 1.0 / (cost[j] * dxu[i - 1]) * maskU[k, j, i - 1] * b_du[k, j, i - 1]
    if j >= 1 and in_interior(i, j - 1, NX, NY):
        bp -= 1.0 / dyu[j - 1] * maskV[k, j - 1, i] * b_dv[k, j - 1, i]
    b_p_hydro[k, j, i] += bp
