"""Tangent-linear and adjoint kernels of :mod:`ocean_core.kernels.tracers`.

* surface forcing, the AB2 step: linear, pointwise;
* vertical diffusivity: the convective switch ``Nsqr < 0`` is frozen, ``kappaH_0`` is an
  active scalar (the adjoint writes per-point contributions that the caller sums);
* advection: bilinear in (tracer, velocity); the adjoint is gathered face by face:
  the adjoint of a face flux is formed from the adjoints of the two cells it separates
  (``b_flux = -c_left b_left + c_right b_right``) and multiplied by the flux's partial
  derivative with respect to the value at p;
* implicit vertical mixing: per column, the line-by-line transpose of the Thomas
  algorithm (the transposed system solved with the same LU factors) plus the
  sensitivities of the matrix coefficients chained to kappaH;
* equation of state: nonlinear pointwise, with the buoyancy frequency reading the
  level above (gather over the two Nsqr rows that read level k).

All helpers take arrays and have at most six call sites per kernel, so they are
``device`` (IR-inlined): as ``helper`` (non-inlined njit calls inside the ``prange``
loop) they made the advection adjoint 4x and the mixing adjoint 2x slower at 0.25
degrees, for a compile time that stays under 6 s per kernel either way.
"""

from ocean_core import constants as C
from ocean_core.kernels import tracers as F
from ocean_core.kernels.framework import device
from ocean_core.kernels.momentum import in_interior
from ocean_core.kernels.tracers import adv2_tendency, eos_drho_ds, eos_drho_dt, vmix_coeffs

from .pairing import adjoint_of, tangent_of

# forward bodies reused by tangents of linear kernels (numba resolves module-level dispatchers)
_tracer_ab2 = F.tracer_ab2.body


# ===========================================================================
# surface forcing (2-d, linear)
# ===========================================================================

@tangent_of(F.surface_forcing)
def surface_forcing_tl(i, j, d_forc_temp_surface, d_temp, d_t_star, t_rest):
    """``d_forc = t_rest (d_t_star - d_temp[top])``."""
    nz = d_temp.shape[0]
    d_forc_temp_surface[j, i] = t_rest[j, i] * (d_t_star[j, i] - d_temp[nz - 1, j, i])


@adjoint_of(F.surface_forcing)
def surface_forcing_ad(i, j, b_temp, b_t_star, b_forc_temp_surface, t_rest):
    """``b_t_star += t_rest b_forc``, ``b_temp[top] -= t_rest b_forc`` (the (j, i) thread owns the top cell)."""
    nz = b_temp.shape[0]
    g = t_rest[j, i] * b_forc_temp_surface[j, i]
    b_t_star[j, i] += g
    b_temp[nz - 1, j, i] -= g


# ===========================================================================
# vertical diffusivity (3-d, switch frozen)
# ===========================================================================

@tangent_of(F.vertical_diffusivity)
def vertical_diffusivity_tl(i, j, k, d_kappaH, d_kappaH_0, Nsqr):
    """``d_kappaH = 0`` where ``Nsqr < 0`` (convective value 1 is constant), else ``d_kappaH_0`` (a float)."""
    if Nsqr[k, j, i] < 0.0:
        d_kappaH[k, j, i] = 0.0
    else:
        d_kappaH[k, j, i] = d_kappaH_0


@adjoint_of(F.vertical_diffusivity)
def vertical_diffusivity_ad(i, j, k, b_kappaH_0, b_kappaH, Nsqr):
    """Per-point contribution to the scalar adjoint: ``b_kappaH_0[p] += b_kappaH[p]`` where the forward
    took the ``kappaH_0`` branch (``not Nsqr < 0``); the caller sums ``b_kappaH_0`` over the grid."""
    if not Nsqr[k, j, i] < 0.0:
        b_kappaH_0[k, j, i] += b_kappaH[k, j, i]


# ===========================================================================
# advection (3-d, bilinear in tracer and velocity)
# ===========================================================================

@device
def _tl_adv(k, j, i, q, dq, u, v, w, du, dv, dw, maskT, maskU, maskV, maskW, cosu, rdx_t, rdy_t, rdzt):
    """Tangent of the central advection tendency of one tracer: the forward tendency is bilinear, so
    ``d adv(q; u) = adv(dq; u) + adv(q; du)``."""
    return (adv2_tendency(k, j, i, dq, u, v, w, maskT, maskU, maskV, maskW, cosu, rdx_t, rdy_t, rdzt)
            + adv2_tendency(k, j, i, q, du, dv, dw, maskT, maskU, maskV, maskW, cosu, rdx_t, rdy_t, rdzt))


@tangent_of(F.tracer_advection)
def tracer_advection_tl(i, j, k, d_dtemp, d_dsalt, d_temp, d_salt, d_u, d_v, d_w, temp, salt, u, v, w, maskT,
                        maskU, maskV, maskW, cosu, rdx_t, rdy_t, rdzt):
    """Tangent of the central advection (product rule on every face flux; zero outside the interior)."""
    if in_interior(i, j, temp.shape[2], temp.shape[1]):
        d_dtemp[k, j, i] = _tl_adv(k, j, i, temp, d_temp, u, v, w, d_u, d_v, d_w, maskT, maskU, maskV, maskW, cosu,
                                   rdx_t, rdy_t, rdzt)
        d_dsalt[k, j, i] = _tl_adv(k, j, i, salt, d_salt, u, v, w, d_u, d_v, d_w, maskT, maskU, maskV, maskW, cosu,
                                   rdx_t, rdy_t, rdzt)
    else:
        d_dtemp[k, j, i] = 0.0
        d_dsalt[k, j, i] = 0.0


# The tendency of an interior cell is -cx (fe_i - fe_{i-1}) - cy (fn_j - fn_{j-1}) - cz (ft_k - ft_{k-1})
# (ft_{-1} = ft_{nz-1} = 0); with the cell coefficients c set to 0 outside the interior, the adjoint of
# the flux through the face between cells p and p+1 is  c_{p+1} b_{p+1} - c_p b_p.

@device
def _cx(k, j, i, maskT, rdx_t):
    """maskT / (cost dxt) of cell (k, j, i) in the interior, else 0 ((k, j, i) in bounds; branch-free)."""
    x = maskT[k, j, i] * rdx_t[j, i]
    ok = (i >= 2) & (i < maskT.shape[2] - 2) & (j >= 2) & (j < maskT.shape[1] - 2)
    return x if ok else 0.0


@device
def _cy(k, j, i, maskT, rdy_t):
    """maskT / (cost dyt) of cell (k, j, i) in the interior, else 0 ((k, j, i) in bounds; branch-free)."""
    x = maskT[k, j, i] * rdy_t[j]
    ok = (i >= 2) & (i < maskT.shape[2] - 2) & (j >= 2) & (j < maskT.shape[1] - 2)
    return x if ok else 0.0


@adjoint_of(F.tracer_advection)
def tracer_advection_ad(i, j, k, b_temp, b_salt, b_u, b_v, b_w, b_dtemp, b_dsalt, temp, salt, u, v, w, maskT,
                        maskU, maskV, maskW, cosu, rdx_t, rdy_t, rdzt):
    """Adjoint of the central advection, gathered from the six faces of cell p.  With the face-flux
    adjoints ``b_f = c_{p+1} b_dT_{p+1} - c_p b_dT_p`` (c = maskT / (cost dxt), maskT / (cost dyt),
    maskT / dzt in the interior, 0 elsewhere):
    ``b_T[p] += 0.5 sum_faces U_face b_fT(face)`` (U_face = u maskU, cosu v maskV, w maskW),
    ``b_u[p] += 0.5 maskU ((T_i + T_{i+1}) b_fT(east face i) + (S_i + S_{i+1}) b_fS(east face i))``,
    likewise v (cosu, north face j) and w (top face k, k < nz-1).

    Branch-free so that the i loop vectorises: neighbour indices are clamped (every load is in
    bounds), every term is formed and then kept or dropped by a select, in the order of the guarded
    form (the same arithmetic, bitwise the same result)."""
    nz, NY, NX = temp.shape
    hasE = i + 1 < NX
    hasW = i >= 1
    hasN = j + 1 < NY
    hasS = j >= 1
    inner = (i >= 2) & (i < NX - 2) & (j >= 2) & (j < NY - 2)
    hasU = inner & (k < nz - 1)
    hasD = inner & (k >= 1)
    ie = min(i + 1, NX - 1)
    iw = max(i - 1, 0)
    jn = min(j + 1, NY - 1)
    js = max(j - 1, 0)
    kp = min(k + 1, nz - 1)
    km = max(k - 1, 0)
    # own cell: coefficient times adjoint, shared by its two faces in each direction
    cx = _cx(k, j, i, maskT, rdx_t)
    cy = _cy(k, j, i, maskT, rdy_t)
    t = maskT[k, j, i] * rdzt[k]
    cz = t if inner else 0.0
    gT = b_dtemp[k, j, i]
    gS = b_dsalt[k, j, i]
    T0 = temp[k, j, i]
    S0 = salt[k, j, i]
    bT = 0.0
    bS = 0.0
    # --- east face i (its flux reads u at p) and west face i-1 ---
    c = _cx(k, j, ie, maskT, rdx_t)
    ft = c * b_dtemp[k, j, ie] - cx * gT
    fs = c * b_dsalt[k, j, ie] - cx * gS
    U = 0.5 * u[k, j, i] * maskU[k, j, i]
    tT = U * ft
    tS = U * fs
    bT = bT + tT if hasE else bT
    bS = bS + tS if hasE else bS
    x = 0.5 * maskU[k, j, i] * ((T0 + temp[k, j, ie]) * ft + (S0 + salt[k, j, ie]) * fs)
    o = b_u[k, j, i]
    b_u[k, j, i] = o + x if hasE else o
    c = _cx(k, j, iw, maskT, rdx_t)
    U = 0.5 * u[k, j, iw] * maskU[k, j, iw]
    tT = U * (cx * gT - c * b_dtemp[k, j, iw])
    tS = U * (cx * gS - c * b_dsalt[k, j, iw])
    bT = bT + tT if hasW else bT
    bS = bS + tS if hasW else bS
    # --- north face j (its flux reads v at p) and south face j-1 ---
    c = _cy(k, jn, i, maskT, rdy_t)
    ft = c * b_dtemp[k, jn, i] - cy * gT
    fs = c * b_dsalt[k, jn, i] - cy * gS
    V = cosu[j] * 0.5 * v[k, j, i] * maskV[k, j, i]
    tT = V * ft
    tS = V * fs
    bT = bT + tT if hasN else bT
    bS = bS + tS if hasN else bS
    x = cosu[j] * 0.5 * maskV[k, j, i] * ((T0 + temp[k, jn, i]) * ft + (S0 + salt[k, jn, i]) * fs)
    o = b_v[k, j, i]
    b_v[k, j, i] = o + x if hasN else o
    c = _cy(k, js, i, maskT, rdy_t)
    V = cosu[js] * 0.5 * v[k, js, i] * maskV[k, js, i]
    tT = V * (cy * gT - c * b_dtemp[k, js, i])
    tS = V * (cy * gS - c * b_dsalt[k, js, i])
    bT = bT + tT if hasS else bT
    bS = bS + tS if hasS else bS
    # --- top face k (its flux reads w at p; none at the surface) and bottom face k-1, interior columns ---
    c = maskT[kp, j, i] * rdzt[kp]
    ft = c * b_dtemp[kp, j, i] - cz * gT
    fs = c * b_dsalt[kp, j, i] - cz * gS
    W = 0.5 * w[k, j, i] * maskW[k, j, i]
    tT = W * ft
    tS = W * fs
    bT = bT + tT if hasU else bT
    bS = bS + tS if hasU else bS
    x = 0.5 * maskW[k, j, i] * ((T0 + temp[kp, j, i]) * ft + (S0 + salt[kp, j, i]) * fs)
    o = b_w[k, j, i]
    b_w[k, j, i] = o + x if hasU else o
    c = maskT[km, j, i] * rdzt[km]
    W = 0.5 * w[km, j, i] * maskW[km, j, i]
    tT = W * (cz * gT - c * b_dtemp[km, j, i])
    tS = W * (cz * gS - c * b_dsalt[km, j, i])
    bT = bT + tT if hasD else bT
    bS = bS + tS if hasD else bS
    b_temp[k, j, i] += bT
    b_salt[k, j, i] += bS


# ===========================================================================
# Adams-Bashforth step (3-d, linear)
# ===========================================================================

@tangent_of(F.tracer_ab2)
def tracer_ab2_tl(i, j, k, d_temp_ab, d_salt_ab, d_temp_old, d_salt_old, d_dtemp_now, d_dsalt_now, d_dtemp_old,
                  d_dsalt_old, maskT, dt_tracer):
    """Tangent = the forward AB2 step applied to the tangent fields (linear)."""
    _tracer_ab2(i, j, k, d_temp_ab, d_salt_ab, d_temp_old, d_salt_old, d_dtemp_now, d_dsalt_now, d_dtemp_old,
                d_dsalt_old, maskT, dt_tracer)


@adjoint_of(F.tracer_ab2)
def tracer_ab2_ad(i, j, k, b_temp_old, b_salt_old, b_dtemp_now, b_dsalt_now, b_dtemp_old, b_dsalt_old, b_temp_ab,
                  b_salt_ab, maskT, dt_tracer):
    """``b_T_old += b``, ``b_dT_now += dt ab1 maskT b``, ``b_dT_old -= dt ab0 maskT b`` (b = b_T_ab); same for S."""
    ab1 = 1.5 + C.AB_EPS
    ab0 = 0.5 + C.AB_EPS
    bt = b_temp_ab[k, j, i]
    bs = b_salt_ab[k, j, i]
    gt = dt_tracer * maskT[k, j, i] * bt
    gs = dt_tracer * maskT[k, j, i] * bs
    b_temp_old[k, j, i] += bt
    b_salt_old[k, j, i] += bs
    b_dtemp_now[k, j, i] += ab1 * gt
    b_dsalt_now[k, j, i] += ab1 * gs
    b_dtemp_old[k, j, i] -= ab0 * gt
    b_dsalt_old[k, j, i] -= ab0 * gs


# ===========================================================================
# implicit vertical mixing (column, tridiagonal)
# ===========================================================================
#
# On the wet levels k0..nz-1 of an interior column the forward solves A(kappaH) x = d,
# d = T* (+ dt forc / dzt at the top), with the Thomas algorithm:
#   den_k = b_k - a_k cp_{k-1},  cp_k = c_k / den_k,  dp_k = (d_k - a_k dp_{k-1}) / den_k,
#   x_k = dp_k - cp_k x_{k+1},
# i.e. A = L U with L = (den on the diagonal, a below) and U = (1 on the diagonal, cp above).
# Tangent:  A dx = dd - dA x,  solved with the same recurrences.
# Adjoint:  A^T lam = b_x  as  U^T y = b_x (upward: y_k = b_x_k - cp_{k-1} y_{k-1}) and
#           L^T lam = y (downward: lam_k = (y_k - a_{k+1} lam_{k+1}) / den_k): the sub- and
#           super-diagonals swap roles, and the recurrences are the line-by-line transpose of
#           the forward ones.  Then b_d += lam and, with b_a_k = -lam_k x_{k-1},
#           b_b_k = -lam_k x_k, b_c_k = -lam_k x_{k+1} and delta_k entering b_k, c_k, a_{k+1}
#           and b_{k+1}:  b_delta_k = (x_{k+1} - x_k)(lam_k / dzt_k - lam_{k+1} / dzt_{k+1}).
# x and lam come out of downward recurrences fed by upward ones (cp, dp, y), so the adjoint
# stores three columns (scr_cp, scr_dp, scr_y) and treats temp and salt one after the other;
# the tangent keeps its primal x in its own outputs and needs scr_cp only.

@tangent_of(F.vertical_mixing, space="column")
def vertical_mixing_tl(i, j, d_temp_new, d_salt_new, scr_cp, d_temp_ab, d_salt_ab, d_kappaH, d_forc_temp_surface,
                       d_forc_salt_surface, temp_ab, salt_ab, kappaH, forc_temp_surface, forc_salt_surface, kbot, dzt,
                       dzw, dt_tracer):
    """Tangent of the implicit mixing: ``A dx = dT* (+ dt d_forc / dzt at the top) - dA(d_kappaH) x`` on the
    wet levels of interior columns, with ``dA x = ddelta_k (x_k - x_{k+1}) / dzt_k
    + ddelta_{k-1} (x_k - x_{k-1}) / dzt_k`` (``ddelta = dt d_kappaH / dzw``; no k-1 term at k0, no k term
    at the top); ``dx = dT*`` elsewhere.  The primal x is recomputed into d_*_new first; ``scr_cp`` is scratch."""
    nz = temp_ab.shape[0]
    for k in range(nz):
        d_temp_new[k, j, i] = d_temp_ab[k, j, i]
        d_salt_new[k, j, i] = d_salt_ab[k, j, i]
        scr_cp[k, j, i] = 0.0
    if not in_interior(i, j, temp_ab.shape[2], temp_ab.shape[1]) or kbot[j, i] == 0:
        return
    k0 = kbot[j, i] - 1
    # primal Thomas (as the forward): cp -> scr_cp, dp then x -> d_temp_new / d_salt_new
    for k in range(k0, nz):
        a, b, c = vmix_coeffs(k, k0, nz, kappaH, j, i, dzw, dzt, dt_tracer)
        rt = temp_ab[k, j, i]
        rs = salt_ab[k, j, i]
        if k == nz - 1:
            rt = rt + dt_tracer * forc_temp_surface[j, i] / dzt[nz - 1]
            rs = rs + dt_tracer * forc_salt_surface[j, i] / dzt[nz - 1]
        if k == k0:
            den = b
            scr_cp[k, j, i] = c / den
            d_temp_new[k, j, i] = rt / den
            d_salt_new[k, j, i] = rs / den
        else:
            den = b - a * scr_cp[k - 1, j, i]
            scr_cp[k, j, i] = c / den
            d_temp_new[k, j, i] = (rt - a * d_temp_new[k - 1, j, i]) / den
            d_salt_new[k, j, i] = (rs - a * d_salt_new[k - 1, j, i]) / den
    for kk in range(nz - 1 - k0):
        k = nz - 2 - kk
        d_temp_new[k, j, i] = d_temp_new[k, j, i] - scr_cp[k, j, i] * d_temp_new[k + 1, j, i]
        d_salt_new[k, j, i] = d_salt_new[k, j, i] - scr_cp[k, j, i] * d_salt_new[k + 1, j, i]
    # tangent right-hand side dd - dA x, swept upward with the same LU: x_k and x_{k+1} are read before
    # d_*_new[k] is overwritten by the tangent's dp, x_{k-1} is carried
    xmt = 0.0
    xms = 0.0
    for k in range(k0, nz):
        a, b, c = vmix_coeffs(k, k0, nz, kappaH, j, i, dzw, dzt, dt_tracer)
        xt = d_temp_new[k, j, i]
        xs = d_salt_new[k, j, i]
        rt = d_temp_ab[k, j, i]
        rs = d_salt_ab[k, j, i]
        if k < nz - 1:
            e = dt_tracer / dzw[k] * d_kappaH[k, j, i] / dzt[k]
            rt = rt - e * (xt - d_temp_new[k + 1, j, i])
            rs = rs - e * (xs - d_salt_new[k + 1, j, i])
        else:
            rt = rt + dt_tracer * d_forc_temp_surface[j, i] / dzt[nz - 1]
            rs = rs + dt_tracer * d_forc_salt_surface[j, i] / dzt[nz - 1]
        if k > k0:
            e = dt_tracer / dzw[k - 1] * d_kappaH[k - 1, j, i] / dzt[k]
            rt = rt - e * (xt - xmt)
            rs = rs - e * (xs - xms)
            den = b - a * scr_cp[k - 1, j, i]
            d_temp_new[k, j, i] = (rt - a * d_temp_new[k - 1, j, i]) / den
            d_salt_new[k, j, i] = (rs - a * d_salt_new[k - 1, j, i]) / den
        else:
            d_temp_new[k, j, i] = rt / b
            d_salt_new[k, j, i] = rs / b
        xmt = xt
        xms = xs
    for kk in range(nz - 1 - k0):
        k = nz - 2 - kk
        d_temp_new[k, j, i] = d_temp_new[k, j, i] - scr_cp[k, j, i] * d_temp_new[k + 1, j, i]
        d_salt_new[k, j, i] = d_salt_new[k, j, i] - scr_cp[k, j, i] * d_salt_new[k + 1, j, i]


@device
def _vmix_ad_tracer(j, i, k0, b_q_ab, b_kappaH, scr_cp, scr_dp, scr_y, b_q_new, q_ab, kappaH, forc, dzt, dzw,
                    dt_tracer):
    """Adjoint of one tracer's solve on levels k0..nz-1: accumulates b_q_ab and b_kappaH, returns the
    adjoint of the surface flux.  Upward sweep: cp, dp (primal) and y = U^-T b_x; downward sweep:
    x = U^-1 dp, lam = L^-T y and the coefficient sensitivities."""
    nz = q_ab.shape[0]
    for k in range(k0, nz):
        a, b, c = vmix_coeffs(k, k0, nz, kappaH, j, i, dzw, dzt, dt_tracer)
        r = q_ab[k, j, i]
        if k == nz - 1:
            r = r + dt_tracer * forc[j, i] / dzt[nz - 1]
        if k == k0:
            den = b
            scr_dp[k, j, i] = r / den
            scr_y[k, j, i] = b_q_new[k, j, i]
        else:
            den = b - a * scr_cp[k - 1, j, i]
            scr_dp[k, j, i] = (r - a * scr_dp[k - 1, j, i]) / den
            scr_y[k, j, i] = b_q_new[k, j, i] - scr_cp[k - 1, j, i] * scr_y[k - 1, j, i]
        scr_cp[k, j, i] = c / den
    x1 = 0.0    # x_{k+1}
    l1 = 0.0    # lam_{k+1}
    a1 = 0.0    # a_{k+1}
    bf = 0.0
    for kk in range(nz - k0):
        k = nz - 1 - kk
        a, b, c = vmix_coeffs(k, k0, nz, kappaH, j, i, dzw, dzt, dt_tracer)
        den = b if k == k0 else b - a * scr_cp[k - 1, j, i]
        if k == nz - 1:
            x = scr_dp[k, j, i]
            lam = scr_y[k, j, i] / den
            bf = dt_tracer / dzt[nz - 1] * lam
        else:
            x = scr_dp[k, j, i] - scr_cp[k, j, i] * x1
            lam = (scr_y[k, j, i] - a1 * l1) / den
            b_kappaH[k, j, i] += dt_tracer / dzw[k] * (x1 - x) * (lam / dzt[k] - l1 / dzt[k + 1])
        b_q_ab[k, j, i] += lam
        x1 = x
        l1 = lam
        a1 = a
    return bf


@adjoint_of(F.vertical_mixing, space="column")
def vertical_mixing_ad(i, j, b_temp_ab, b_salt_ab, b_forc_temp_surface, b_forc_salt_surface, b_kappaH, scr_cp,
                       scr_dp, scr_y, b_temp_new, b_salt_new, temp_ab, salt_ab, kappaH, forc_temp_surface,
                       forc_salt_surface, kbot, dzt, dzw, dt_tracer):
    """Adjoint of the implicit mixing (see the comment above :func:`vertical_mixing_tl`): per tracer,
    ``lam = A^-T b_x``, ``b_T* += lam``, ``b_forc += dt / dzt[top] lam[top]``,
    ``b_kappaH[k] += dt / dzw[k] sum_tracers (x_{k+1} - x_k)(lam_k / dzt_k - lam_{k+1} / dzt_{k+1})``
    (k0 <= k < nz-1); identity ``b_T* += b_x`` on the levels and columns not solved.
    ``scr_cp``, ``scr_dp``, ``scr_y`` are scratch."""
    nz = temp_ab.shape[0]
    solved = in_interior(i, j, temp_ab.shape[2], temp_ab.shape[1]) and kbot[j, i] > 0
    k0 = kbot[j, i] - 1 if solved else nz
    for k in range(k0):
        b_temp_ab[k, j, i] += b_temp_new[k, j, i]
        b_salt_ab[k, j, i] += b_salt_new[k, j, i]
    if not solved:
        return
    # no mixing in the column (forward fast path): A = I, x = d (T* plus the surface flux at the top),
    # lam = b_x, so b_T* += b_x, b_forc += dt / dzt[top] b_x[top] and only the kappaH sensitivity
    # dt / dzw_k sum_tracers (x_{k+1} - x_k)(b_x_k / dzt_k - b_x_{k+1} / dzt_{k+1}) remains
    mixing = False
    for k in range(k0, nz - 1):
        if kappaH[k, j, i] != 0.0:
            mixing = True
    if not mixing:
        top = nz - 1
        ft = dt_tracer / dzt[top]
        lt1 = b_temp_new[top, j, i]
        ls1 = b_salt_new[top, j, i]
        b_temp_ab[top, j, i] += lt1
        b_salt_ab[top, j, i] += ls1
        b_forc_temp_surface[j, i] += ft * lt1
        b_forc_salt_surface[j, i] += ft * ls1
        xt1 = temp_ab[top, j, i] + dt_tracer * forc_temp_surface[j, i] / dzt[top]
        xs1 = salt_ab[top, j, i] + dt_tracer * forc_salt_surface[j, i] / dzt[top]
        lt1 = lt1 / dzt[top]
        ls1 = ls1 / dzt[top]
        for kk in range(nz - 1 - k0):
            k = nz - 2 - kk
            lt = b_temp_new[k, j, i]
            ls = b_salt_new[k, j, i]
            b_temp_ab[k, j, i] += lt
            b_salt_ab[k, j, i] += ls
            xt = temp_ab[k, j, i]
            xs = salt_ab[k, j, i]
            r = 1.0 / dzt[k]
            lt = lt * r
            ls = ls * r
            b_kappaH[k, j, i] += dt_tracer / dzw[k] * ((xt1 - xt) * (lt - lt1) + (xs1 - xs) * (ls - ls1))
            xt1 = xt
            xs1 = xs
            lt1 = lt
            ls1 = ls
        return
    b_forc_temp_surface[j, i] += _vmix_ad_tracer(j, i, k0, b_temp_ab, b_kappaH, scr_cp, scr_dp, scr_y, b_temp_new,
                                                 temp_ab, kappaH, forc_temp_surface, dzt, dzw, dt_tracer)
    b_forc_salt_surface[j, i] += _vmix_ad_tracer(j, i, k0, b_salt_ab, b_kappaH, scr_cp, scr_dp, scr_y, b_salt_new,
                                                 salt_ab, kappaH, forc_salt_surface, dzt, dzw, dt_tracer)


# ===========================================================================
# equation of state (3-d, nonlinear pointwise; Nsqr reads the level above)
# ===========================================================================

@tangent_of(F.equation_of_state)
def equation_of_state_tl(i, j, k, d_rho, d_Nsqr, d_temp, d_salt, temp, salt, maskT, maskW, zt, dzw):
    """``d_rho = (rho'_T dT + rho'_S dS) maskT`` at |zt_k|; ``d_Nsqr[k] = -g/rho_0/dzw maskW
    (d rho'(S_{kk+1}, T_{kk+1}, |zt_kk|) - maskT_kk d rho'(S_kk, T_kk, |zt_kk|))``, kk = min(k, nz-2)."""
    nz = temp.shape[0]
    p = abs(zt[k])
    d_rho[k, j, i] = (eos_drho_dt(salt[k, j, i], temp[k, j, i], p) * d_temp[k, j, i]
                      + eos_drho_ds(salt[k, j, i], temp[k, j, i], p) * d_salt[k, j, i]) * maskT[k, j, i]
    kk = k if k < nz - 1 else nz - 2
    p = abs(zt[kk])
    dr0 = (eos_drho_dt(salt[kk, j, i], temp[kk, j, i], p) * d_temp[kk, j, i]
           + eos_drho_ds(salt[kk, j, i], temp[kk, j, i], p) * d_salt[kk, j, i]) * maskT[kk, j, i]
    dr1 = (eos_drho_dt(salt[kk + 1, j, i], temp[kk + 1, j, i], p) * d_temp[kk + 1, j, i]
           + eos_drho_ds(salt[kk + 1, j, i], temp[kk + 1, j, i], p) * d_salt[kk + 1, j, i])
    d_Nsqr[k, j, i] = -C.GRAV / C.RHO_0 / dzw[kk] * maskW[kk, j, i] * (dr1 - dr0)


@adjoint_of(F.equation_of_state)
def equation_of_state_ad(i, j, k, b_temp, b_salt, b_rho, b_Nsqr, temp, salt, maskT, maskW, zt, dzw):
    """Gather over the outputs reading level k: rho[k]; the Nsqr rows whose lower level is k
    (row k for k <= nz-2, and the copied top row when k = nz-2) with weight ``+g/rho_0/dzw_k maskW_k maskT_k``;
    the rows whose upper level is k (row k-1, and the top row when k = nz-1) with weight
    ``-g/rho_0/dzw_{k-1} maskW_{k-1}``, the derivative taken at the pressure |zt_{k-1}|."""
    nz = temp.shape[0]
    s = salt[k, j, i]
    t = temp[k, j, i]
    p = abs(zt[k])
    # rho[k] and the lower level of Nsqr (both at the pressure of level k)
    g = maskT[k, j, i] * b_rho[k, j, i]
    if k <= nz - 2:
        B = b_Nsqr[k, j, i]
        if k == nz - 2:
            B += b_Nsqr[nz - 1, j, i]
        g += C.GRAV / C.RHO_0 / dzw[k] * maskW[k, j, i] * maskT[k, j, i] * B
    bt = eos_drho_dt(s, t, p) * g
    bs = eos_drho_ds(s, t, p) * g
    # upper level of Nsqr rows k-1 (at the pressure of level k-1)
    if k >= 1:
        B = b_Nsqr[k - 1, j, i]
        if k == nz - 1:
            B += b_Nsqr[nz - 1, j, i]
        g = -C.GRAV / C.RHO_0 / dzw[k - 1] * maskW[k - 1, j, i] * B
        p = abs(zt[k - 1])
        bt += eos_drho_dt(s, t, p) * g
        bs += eos_drho_ds(s, t, p) * g
    b_temp[k, j, i] += bt
    b_salt[k, j, i] += bs
