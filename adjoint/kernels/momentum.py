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
_hydrostatic_pressure = F.hydrostatic_pressure.body


# ===========================================================================
# Coriolis and metric terms
# ===========================================================================

@tangent_of(F.coriolis_metric)
def coriolis_metric_tl(i, j, k, d_du_cor, d_dv_cor, d_u, d_v, u, v, coriolis_t, tantr, cor_rx0, cor_rx1, cor_ry0,
                       cor_ry1, maskU, maskV):
    """Tangent of the Coriolis and metric terms (bilinear in u, v)."""
    if not in_interior(i, j, u.shape[2], u.shape[1]):
        d_du_cor[k, j, i] = 0.0
        d_dv_cor[k, j, i] = 0.0
        return
    r0 = cor_rx0[i]
    r1 = cor_rx1[i]
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
    w0 = cor_ry0[j]
    w1 = cor_ry1[j]
    d_dv_cor[k, j, i] = maskV[k, j, i] * (-0.25 * (coriolis_t[j, i] * dus0 * w0 + coriolis_t[j + 1, i] * dus1 * w1)
                                          - 0.25 * (tantr[j] * us0 * dus0 * w0 + tantr[j + 1] * us1 * dus1 * w1))


@device
def _inner(i, j, ni, nj):
    """in_interior without short-circuit evaluation (a select, no branch)."""
    return (i >= 2) & (i < ni - 2) & (j >= 2) & (j < nj - 2)


@device
def _sel(x, ok):
    """x if ok else 0.0, x formed before the test (so that its loads are unconditional)."""
    return x if ok else 0.0


@adjoint_of(F.coriolis_metric)
def coriolis_metric_ad(i, j, k, b_u, b_v, b_du_cor, b_dv_cor, u, v, coriolis_t, tantr, cor_rx0, cor_rx1, cor_ry0,
                       cor_ry1, maskU, maskV):
    """Adjoint of the Coriolis and metric terms, gathered at p = (k, j, i).

    With the masked adjoints ``a_q = maskU b_du_cor`` (U points) and ``c_q = maskV b_dv_cor`` (V points),
    0 outside the interior, and the forward's ratios ``cor_rx0[i] = dxt_i / dxu_i``,
    ``cor_rx1[i] = dxt_(i+1) / dxu_i``, ``cor_ry0``, ``cor_ry1`` (:func:`momentum_metrics`):

    * v_p enters ``vs0`` of the U points (j, i), (j+1, i) and ``vs1`` of (j, i-1), (j+1, i-1):
      ``b_v += X_j (r0 a_(j,i) + rW a_(j,i-1)) + X_(j+1) (r0 a_(j+1,i) + rW a_(j+1,i-1))`` with
      ``X_j = f_(j,i)/4 + tantr_j/8 (u_i + u_(i-1))`` (row j), r0 = dxt_i/dxu_i, rW = dxt_i/dxu_(i-1);
    * u_p enters the metric term of the U points (j, i-1), (j, i), (j, i+1):
      ``b_u += tantr_j/8 [vs0 (rW a_(j,i-1) + r0 a_(j,i)) + vs1 (r1 a_(j,i) + rE a_(j,i+1))]``
      (vs0, vs1 the v sums of columns i, i+1; r1 = dxt_(i+1)/dxu_i, rE = dxt_(i+1)/dxu_(i+1));
    * u_p enters ``us0`` of the V points (j, i), (j, i+1) and ``us1`` of (j-1, i), (j-1, i+1):
      ``b_u -= (Y_i (w0 c_(j,i) + w1 c_(j-1,i)) + Y_(i+1) (w0 c_(j,i+1) + w1 c_(j-1,i+1))) / 4`` with
      ``Y_i = f_(j,i) + tantr_j (u_(i-1) + u_i)``, ``w0 = dyt_j cost_j / (dyu_j cosu_j)`` = cor_ry0[j] and
      ``w1 = dyt_j cost_j / (dyu_(j-1) cosu_(j-1))`` = cor_ry1[j-1].

    No division per point; neighbour indices are clamped for loads whose weight is 0, and the
    weights are formed unconditionally and then selected (branch-free, so that the i loop vectorises)."""
    nz, NY, NX = u.shape
    ie = min(i + 1, NX - 1)
    iw = max(i - 1, 0)
    jn = min(j + 1, NY - 1)
    js = max(j - 1, 0)
    a0 = _sel(maskU[k, j, i] * b_du_cor[k, j, i], _inner(i, j, NX, NY))
    aW = _sel(maskU[k, j, iw] * b_du_cor[k, j, iw], _inner(i - 1, j, NX, NY))
    aE = _sel(maskU[k, j, ie] * b_du_cor[k, j, ie], _inner(i + 1, j, NX, NY))
    aN = _sel(maskU[k, jn, i] * b_du_cor[k, jn, i], _inner(i, j + 1, NX, NY))
    aNW = _sel(maskU[k, jn, iw] * b_du_cor[k, jn, iw], _inner(i - 1, j + 1, NX, NY))
    c0 = _sel(maskV[k, j, i] * b_dv_cor[k, j, i], _inner(i, j, NX, NY))
    cE = _sel(maskV[k, j, ie] * b_dv_cor[k, j, ie], _inner(i + 1, j, NX, NY))
    cS = _sel(maskV[k, js, i] * b_dv_cor[k, js, i], _inner(i, j - 1, NX, NY))
    cSE = _sel(maskV[k, js, ie] * b_dv_cor[k, js, ie], _inner(i + 1, j - 1, NX, NY))
    u0 = u[k, j, i]
    uW = u[k, j, iw]
    uE = u[k, j, ie]
    r0 = cor_rx0[i]
    rW = cor_rx1[iw]
    r1 = cor_rx1[i]
    rE = cor_rx0[ie]
    tj = 0.125 * tantr[j]
    # v: U points of rows j and j+1
    Xj = 0.25 * coriolis_t[j, i] + tj * (u0 + uW)
    Xn = 0.25 * coriolis_t[jn, i] + 0.125 * tantr[jn] * (u[k, jn, i] + u[k, jn, iw])
    b_v[k, j, i] += Xj * (r0 * a0 + rW * aW) + Xn * (r0 * aN + rW * aNW)
    # u: metric term of row j, then the V points of rows j and j-1
    vs0 = v[k, j, i] + v[k, js, i]
    vs1 = v[k, j, ie] + v[k, js, ie]
    bu = tj * (vs0 * (rW * aW + r0 * a0) + vs1 * (r1 * a0 + rE * aE))
    w0 = cor_ry0[j]
    w1 = cor_ry1[js]
    Yi = coriolis_t[j, i] + tantr[j] * (uW + u0)
    Ye = coriolis_t[j, ie] + tantr[j] * (u0 + uE)
    b_u[k, j, i] += bu - 0.25 * (Yi * (w0 * c0 + w1 * cS) + Ye * (w0 * cE + w1 * cSE))


# ===========================================================================
# momentum advection
# ===========================================================================

@device
def _tl_madv_u(k, j, i, d_u, d_v, d_w, u, v, w, maskU, maskV, maskW, dxt, dyt, dzt, cosu, area_t, rdzt, rarea_u):
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
    rv = rdzt[k] * rarea_u[j, i]
    r = -maskU[k, j, i] * (dfe1 - dfe0 + dfn1 - dfn0) * rv
    tmp = maskU[k, j, i] * rv
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
def _tl_madv_v(k, j, i, d_u, d_v, d_w, u, v, w, maskU, maskV, maskW, dxt, dyt, dzt, cosu, area_t, rdzt, rarea_v):
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
    rv = rdzt[k] * rarea_v[j, i]
    r = -maskV[k, j, i] * (dfe1 - dfe0 + dfn1 - dfn0) * rv
    tmp = maskV[k, j, i] * rv
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
                          cosu, area_t, rdzt, rarea_u, rarea_v):
    """Tangent of the flux-form momentum advection (product rule on every face flux)."""
    if in_interior(i, j, u.shape[2], u.shape[1]):
        d_du_adv[k, j, i] = _tl_madv_u(k, j, i, d_u, d_v, d_w, u, v, w, maskU, maskV, maskW, dxt, dyt, dzt, cosu,
                                       area_t, rdzt, rarea_u)
        d_dv_adv[k, j, i] = _tl_madv_v(k, j, i, d_u, d_v, d_w, u, v, w, maskU, maskV, maskW, dxt, dyt, dzt, cosu,
                                       area_t, rdzt, rarea_v)
    else:
        d_du_adv[k, j, i] = 0.0
        d_dv_adv[k, j, i] = 0.0


@device
def _wgt(k, j, i, b, mask, rdzt, rarea):
    """Weighted adjoint ``mask b rdzt rarea = mask b / (dzt area)`` of the advection tendency at (k, j, i):
    0 outside the interior.  (k, j, i) must be in bounds; branch-free (the value is formed and then selected)."""
    x = mask[k, j, i] * b[k, j, i] * (rdzt[k] * rarea[j, i])
    ok = (i >= 2) & (i < mask.shape[2] - 2) & (j >= 2) & (j < mask.shape[1] - 2)
    return x if ok else 0.0


@adjoint_of(F.momentum_advection)
def momentum_advection_ad(i, j, k, b_u, b_v, b_w, b_du_adv, b_dv_adv, u, v, w, maskU, maskV, maskW, dxt, dyt, dzt,
                          cosu, area_t, rdzt, rarea_u, rarea_v):
    """Adjoint of the momentum advection, gathered from the faces whose fluxes read u, v, w at p.

    With the weighted adjoints ``a_q = maskU b_du_adv / (dzt area_u)`` of the U cells (``c_q`` with V
    metrics for the V cells; 0 outside the interior), the flux through the face between cells q and
    q+1 (in x, y or z) has the adjoint ``a_{q+1} - a_q``; each of the 18 weighted adjoints around p
    is formed once.  Partials of the face fluxes ``0.25 (q_f + q_{f+1}) T`` (T a sum of two
    transports ``utr = u maskU dyt dzt``, ``vtr = v maskV cosu dxt dzt``, ``wtr = w maskW area_t``):
    ``0.25 T`` w.r.t. the advected velocity and ``0.25 (q_f + q_{f+1}) dT/d(u, v, w)_p`` w.r.t. the
    transporting one.  u-equation: east faces i, i-1 (u by both), north faces at corners (j, i),
    (j-1, i) (u) and (j, i), (j, i-1) (v), top faces k, k-1 (u) and k of columns i, i-1 (w);
    v-equation likewise with the roles of x and y exchanged.

    Branch-free so that the i loop vectorises: neighbour indices are clamped (every load is in
    bounds), every term is formed and then kept or dropped by a select, in the order of the guarded
    form (the same arithmetic, bitwise the same result)."""
    nz, NY, NX = u.shape
    hasE = i + 1 < NX
    hasW = i >= 1
    hasN = j + 1 < NY
    hasS = j >= 1
    hasU = k + 1 < nz
    hasD = k >= 1
    ie = min(i + 1, NX - 1)
    iw = max(i - 1, 0)
    jn = min(j + 1, NY - 1)
    js = max(j - 1, 0)
    kp = min(k + 1, nz - 1)
    km = max(k - 1, 0)
    # weighted adjoints of du_adv (U cells) and dv_adv (V cells) that this point's faces separate
    bd = b_du_adv
    a0 = _wgt(k, j, i, bd, maskU, rdzt, rarea_u)
    t = _wgt(k, j, ie, bd, maskU, rdzt, rarea_u)
    aE = t if hasE else 0.0
    t = _wgt(k, j, iw, bd, maskU, rdzt, rarea_u)
    aW = t if hasW else 0.0
    t = _wgt(k, jn, i, bd, maskU, rdzt, rarea_u)
    aN = t if hasN else 0.0
    t = _wgt(k, js, i, bd, maskU, rdzt, rarea_u)
    aS = t if hasS else 0.0
    t = _wgt(k, jn, iw, bd, maskU, rdzt, rarea_u)
    aNW = t if hasN & hasW else 0.0
    t = _wgt(kp, j, i, bd, maskU, rdzt, rarea_u)
    aU = t if hasU else 0.0
    t = _wgt(km, j, i, bd, maskU, rdzt, rarea_u)
    aD = t if hasD else 0.0
    t = _wgt(kp, j, iw, bd, maskU, rdzt, rarea_u)
    aUW = t if hasU & hasW else 0.0
    bd = b_dv_adv
    c0 = _wgt(k, j, i, bd, maskV, rdzt, rarea_v)
    t = _wgt(k, j, ie, bd, maskV, rdzt, rarea_v)
    cE = t if hasE else 0.0
    t = _wgt(k, j, iw, bd, maskV, rdzt, rarea_v)
    cW = t if hasW else 0.0
    t = _wgt(k, jn, i, bd, maskV, rdzt, rarea_v)
    cN = t if hasN else 0.0
    t = _wgt(k, js, i, bd, maskV, rdzt, rarea_v)
    cS = t if hasS else 0.0
    t = _wgt(k, js, ie, bd, maskV, rdzt, rarea_v)
    cSE = t if hasS & hasE else 0.0
    t = _wgt(kp, j, i, bd, maskV, rdzt, rarea_v)
    cU = t if hasU else 0.0
    t = _wgt(km, j, i, bd, maskV, rdzt, rarea_v)
    cD = t if hasD else 0.0
    t = _wgt(kp, js, i, bd, maskV, rdzt, rarea_v)
    cUS = t if hasU & hasS else 0.0
    # face-flux adjoints b_face = a(right/upper cell) - a(left/lower cell)
    bfe_u = aE - a0            # u east face i        (needs hasE)
    bfe_uw = a0 - aW           # u east face i-1      (needs hasW)
    bfn_u = aN - a0            # u north face, corner (j, i)     (needs hasN)
    bfn_us = a0 - aS           # u north face, corner (j-1, i)   (needs hasS)
    bfn_uw = aNW - aW          # u north face, corner (j, i-1)   (needs hasN, hasW)
    bft_u = aU - a0            # u top face k, column i          (needs hasU)
    bft_ud = a0 - aD           # u top face k-1                  (needs hasD)
    bft_uw = aUW - aW          # u top face k, column i-1        (needs hasU, hasW)
    bfe_v = cE - c0            # v east face, corner (j, i)      (needs hasE)
    bfe_vw = c0 - cW           # v east face, corner (j, i-1)    (needs hasW)
    bfe_vs = cSE - cS          # v east face, corner (j-1, i)    (needs hasS, hasE)
    bfn_v = cN - c0            # v north face j                  (needs hasN)
    bfn_vs = c0 - cS           # v north face j-1                (needs hasS)
    bft_v = cU - c0            # v top face k, row j             (needs hasU)
    bft_vd = c0 - cD           # v top face k-1                  (needs hasD)
    bft_vs = cUS - cS          # v top face k, row j-1           (needs hasU, hasS)
    # transports at and around p
    cUt = maskU[k, j, i] * dyt[j] * dzt[k]                 # d utr / d u at p
    cVt = dzt[k] * cosu[j] * dxt[i] * maskV[k, j, i]       # d vtr / d v at p
    cWt = maskW[k, j, i] * area_t[j, i]                    # d wtr / d w at p
    u0 = u[k, j, i]
    v0 = v[k, j, i]
    ut0 = u0 * cUt
    vt0 = v0 * cVt
    uE = u[k, j, ie]
    uW = u[k, j, iw]
    hEN = hasE & hasN
    hES = hasE & hasS
    hEU = hasE & hasU
    hED = hasE & hasD
    hNW = hasN & hasW
    hUW = hasU & hasW
    hUS = hasU & hasS
    # u-equation terms of b_u, b_v, b_w
    bu = 0.0
    bv = 0.0
    bw = 0.0
    t = bfe_u * 0.25 * (utr_at(k, j, ie, u, maskU, dyt, dzt) + ut0 + (u0 + uE) * cUt)
    bu = bu + t if hasE else bu
    t = bfe_uw * 0.25 * (ut0 + utr_at(k, j, iw, u, maskU, dyt, dzt) + (uW + u0) * cUt)
    bu = bu + t if hasW else bu
    t = bfn_u * 0.25 * (vtr_at(k, j, ie, v, maskV, dxt, dzt, cosu) + vt0)
    bu = bu + t if hEN else bu
    t = bfn_us * 0.25 * (vtr_at(k, js, ie, v, maskV, dxt, dzt, cosu) + vtr_at(k, js, i, v, maskV, dxt, dzt, cosu))
    bu = bu + t if hES else bu
    t = bfn_u * 0.25 * (u0 + u[k, jn, i]) * cVt
    bv = bv + t if hasN else bv
    t = bfn_uw * 0.25 * (u[k, j, iw] + u[k, jn, iw]) * cVt
    bv = bv + t if hNW else bv
    t = bft_u * 0.25 * (wtr_at(k, j, i, w, maskW, area_t) + wtr_at(k, j, ie, w, maskW, area_t))
    bu = bu + t if hEU else bu
    t = bft_ud * 0.25 * (wtr_at(km, j, i, w, maskW, area_t) + wtr_at(km, j, ie, w, maskW, area_t))
    bu = bu + t if hED else bu
    t = bft_u * 0.25 * (u[kp, j, i] + u0) * cWt
    bw = bw + t if hasU else bw
    t = bft_uw * 0.25 * (u[kp, j, iw] + u[k, j, iw]) * cWt
    bw = bw + t if hUW else bw
    # v-equation
    t = bfe_v * 0.25 * (v0 + v[k, j, ie]) * cUt
    bu = bu + t if hEN else bu
    t = bfe_vs * 0.25 * (v[k, js, i] + v[k, js, ie]) * cUt
    bu = bu + t if hES else bu
    t = bfe_v * 0.25 * (utr_at(k, jn, i, u, maskU, dyt, dzt) + ut0)
    bv = bv + t if hEN else bv
    t = bfe_vw * 0.25 * (utr_at(k, jn, iw, u, maskU, dyt, dzt) + utr_at(k, j, iw, u, maskU, dyt, dzt))
    bv = bv + t if hNW else bv
    t = bfn_v * 0.25 * (vtr_at(k, jn, i, v, maskV, dxt, dzt, cosu) + vt0 + (v0 + v[k, jn, i]) * cVt)
    bv = bv + t if hasN else bv
    t = bft_v * 0.25 * (wtr_at(k, j, i, w, maskW, area_t) + wtr_at(k, jn, i, w, maskW, area_t))
    bv = bv + t if hasN & hasU else bv
    t = bft_vd * 0.25 * (wtr_at(km, j, i, w, maskW, area_t) + wtr_at(km, jn, i, w, maskW, area_t))
    bv = bv + t if hasN & hasD else bv
    t = bfn_vs * 0.25 * (vt0 + vtr_at(k, js, i, v, maskV, dxt, dzt, cosu) + (v[k, js, i] + v0) * cVt)
    bv = bv + t if hasS else bv
    t = bft_v * 0.25 * (v[kp, j, i] + v0) * cWt
    bw = bw + t if hasU else bw
    t = bft_vs * 0.25 * (v[kp, js, i] + v[k, js, i]) * cWt
    bw = bw + t if hUS else bw
    b_u[k, j, i] += bu
    b_v[k, j, i] += bv
    b_w[k, j, i] += bw


# ===========================================================================
# hydrostatic pressure (column, linear in rho)
# ===========================================================================

@tangent_of(F.hydrostatic_pressure)
def hydrostatic_pressure_tl(i, j, k, d_p_hydro, d_rho, maskT, dzw):
    """Tangent = the forward recurrence applied to d_rho (linear)."""
    _hydrostatic_pressure(i, j, k, d_p_hydro, d_rho, maskT, dzw)


@adjoint_of(F.hydrostatic_pressure, space="column")
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
                         d_surface_tauy, maskU, maskV, dzt, rdx_u, rdy_v):
    """Tangent = the forward kernel applied to the tangent fields (linear)."""
    _explicit_tendency(i, j, k, d_du, d_dv, d_du_cor, d_dv_cor, d_du_adv, d_dv_adv, d_p_hydro, d_surface_taux,
                       d_surface_tauy, maskU, maskV, dzt, rdx_u, rdy_v)


@adjoint_of(F.explicit_tendency)
def explicit_tendency_ad(i, j, k, b_du_cor, b_dv_cor, b_du_adv, b_dv_adv, b_p_hydro, b_surface_taux, b_surface_tauy,
                         b_du, b_dv, maskU, maskV, dzt, rdx_u, rdy_v):
    """Adjoint of the explicit tendency; the pressure-gradient adjoint gathers from U points (j, i), (j, i-1)
    and V points (j, i), (j-1, i).  The wind-stress adjoints are written by the top-level thread only.

    Branch-free apart from the top-level wind-stress stores (so that the i loop vectorises): neighbour
    indices are clamped, terms are formed and then kept or dropped by a select, in the order of the
    guarded form (the same arithmetic, bitwise the same result)."""
    nz, NY, NX = b_du.shape
    inner = _inner(i, j, NX, NY)
    iw = max(i - 1, 0)
    js = max(j - 1, 0)
    bdu = b_du[k, j, i]
    bdv = b_dv[k, j, i]
    o = b_du_cor[k, j, i]
    b_du_cor[k, j, i] = o + bdu if inner else o
    o = b_dv_cor[k, j, i]
    b_dv_cor[k, j, i] = o + bdv if inner else o
    o = b_du_adv[k, j, i]
    b_du_adv[k, j, i] = o + bdu if inner else o
    o = b_dv_adv[k, j, i]
    b_dv_adv[k, j, i] = o + bdv if inner else o
    if inner and k == nz - 1:
        b_surface_taux[j, i] += maskU[k, j, i] / dzt[k] / C.RHO_0 * bdu
        b_surface_tauy[j, i] += maskV[k, j, i] / dzt[k] / C.RHO_0 * bdv
    bp = 0.0
    t = rdx_u[j, i] * maskU[k, j, i] * bdu
    bp = bp + t if inner else bp
    t = rdy_v[j] * maskV[k, j, i] * bdv
    bp = bp + t if inner else bp
    t = rdx_u[j, iw] * maskU[k, j, iw] * b_du[k, j, iw]
    bp = bp - t if (i >= 1) & _inner(i - 1, j, NX, NY) else bp
    t = rdy_v[js] * maskV[k, js, i] * b_dv[k, js, i]
    bp = bp - t if (j >= 1) & _inner(i, j - 1, NX, NY) else bp
    b_p_hydro[k, j, i] += bp
