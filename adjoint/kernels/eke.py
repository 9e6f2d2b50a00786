"""Tangent-linear and adjoint kernels of :mod:`ocean_core.kernels.eke`.

Conventions as in :mod:`adjoint.kernels.momentum`: adjoints are in gather form (the thread
of point p, or of column (j, i), writes only its own ``b_*`` entries, with ``+=``); small
partial-derivative functions with many call sites are ``helper`` functions; the tangents
of the linear kernels (velocity_on_wgrid, w_wgrid_continuity, eke_advection) reuse the
forward bodies.

Non-smooth operations: the derivative of the branch the forward code takes
--------------------------------------------------------------------------
Numba, like Python, evaluates ``max(a, b)`` as ``b if b > a else a`` and ``min(a, b)`` as
``b if b < a else a``: on a tie the *first* argument is returned, and the derivative is
that of the argument returned.  Hence:

* ``sqrt(max(0, x))`` (sqrteke from eke, the N^2 terms of C_rossby): ``0.5/sqrt(x)`` for
  ``x > 0`` and **0 for x <= 0** (at x = 0 the max returns its first argument, the constant
  0).  EKE starts at exactly 0 in the ACC run and is 0 on land: the exact derivative is 0
  there and unbounded just above 0.
* ``L_rhines = sqrt(sqrteke / beta')`` (an intermediate of eke_len, not stored by the forward):
  ``0.5/(L_rhines beta')`` per unit sqrteke where sqrteke > 0, 0 where sqrteke = 0 (it is a
  fourth root of eke).  Primes mark the 1e-16
  floors ``max(beta, 1e-16)``, ``max(|f|, 1e-16)``, ``max(2 beta, 1e-16)``: passive.
* ``L_rossby = min(C/|f|', sqrt(C/(2 beta)'))``: tie -> ``C/|f|'``.  The sqrt branch is taken
  only where it is strictly smaller, i.e. ``C > |f|'^2/(2 beta)' > 0``: its slope is finite.
* ``eke_len = max(lmin, min(cross L_rossby, crhin L_rhines))``: tie of the min -> the
  L_rossby branch, tie of the max -> lmin (slope 0).
* ``K_gm = min(k_max, c_k eke_len sqrteke)`` and the lateral diffusivity
  ``0.5 max(500, K_i + K_{i+1})``: ties -> the constant (slope 0).
* superbee (``superbee_flux``): ``where(vel > 0, rjm, rjp)`` is frozen (no derivative with
  respect to vel; vel = 0 takes rjp); the guard ``|rj| < 1e-20 -> 1e-20`` gives a constant
  denominator (derivative 0, also with respect to rj); the limiter
  ``max(clip(2r, 0, 1), clip(r, 0, 2))`` has slope 2 on [0, 1/2], 0 on (1/2, 1], 1 on (1, 2]
  and 0 elsewhere (ties by the rule above: r = 0 and 1/2 -> 2, r = 1 -> 0, r = 2 -> 1);
  ``|velc|`` and ``|velc dt/dx|`` have the derivative sign(.) with **sign(0) = 0**, the central
  difference of |v| at 0.

Regularised square root (option ``opt_sqrt_eps``, a model scalar, default 0 = exact)
-----------------------------------------------------------------------------------
With ``opt_sqrt_eps = eps > 0`` the derivative of ``sqrt(max(0, x))`` becomes
``0.5/sqrt(x + eps^2)`` for ``x >= 0`` (still 0 for x < 0): a finite slope at and near 0
instead of the singular one.  It applies to sqrteke (x = eke, eps in m/s), to the C_rossby
terms (x = N^2, the same number eps read in 1/s) and to L_rhines, whose 1/sqrt factor uses
the regularised ``sqrteke_eps = sqrt(max(eke, 0) + eps^2)``:
``dL_rhines/dsqrteke = 0.5/(sqrt(sqrteke_eps/beta') beta')``, so that dL_rhines/deke is the
derivative of ``sqrt(sqrt(eke + eps^2)/beta')``, finite at eke = 0.  Only the slopes change,
never the linearisation point.  This is an **approximate** tangent/adjoint, meant to tame
the 1/sqrt blow-up near eke = 0 in long adjoint runs: it is not the derivative of the
forward code, and finite-difference checks fail by construction near 0 (relative error
about eps^2/(2x) for x >> eps^2).  Tangent and adjoint remain exact transposes of each
other (the dot-product test holds for any eps).
"""

import math

from ocean_core import constants as C
from ocean_core.kernels import eke as F
from ocean_core.kernels.eke import eke_cint, eke_vcoeffs
from ocean_core.kernels.framework import helper
from ocean_core.kernels.momentum import in_interior

from .pairing import adjoint_of, tangent_of

# forward bodies reused by the tangents of linear kernels
_velocity_on_wgrid = F.velocity_on_wgrid.body
_w_wgrid_continuity = F.w_wgrid_continuity.body
_eke_advection = F.eke_advection.body

#: Adams-Bashforth weights of eke_update
_AB_NOW = 1.5 + C.AB_EPS
_AB_OLD = 0.5 + C.AB_EPS


@helper
def _sign(x):
    """Derivative of |x|: sign(x), with sign(0) = 0 (branch-free)."""
    return (1.0 if x > 0.0 else 0.0) - (1.0 if x < 0.0 else 0.0)


# ===========================================================================
# diffusivities (column)
# ===========================================================================

@helper
def _dsqrt(x, s, eps):
    """Slope of ``s = sqrt(max(0, x))``: exact (eps = 0) or regularised (eps > 0)."""
    if eps > 0.0:
        if x >= 0.0:
            return 0.5 / math.sqrt(x + eps * eps)
        return 0.0
    if x > 0.0:
        return 0.5 / s
    return 0.0


@helper
def _rossby(cr, f, beta):
    """``L_rossby`` (as the forward evaluates it) and ``dL_rossby/dC`` at Coriolis parameter f."""
    fa = max(abs(f), 1e-16)
    b2 = max(2 * beta, 1e-16)
    t1 = cr / fa
    t2 = math.sqrt(cr / b2)
    if t2 < t1:  # min(t1, t2) returns t2; here t2 > 0
        return t2, 0.5 / (t2 * b2)
    return t1, 1.0 / fa


@helper
def _level_jacobian(e, se, lrh, lr, bb, eke_lmin, eke_cross, eke_crhin, eke_c_k, eke_k_max, eps):
    """Jacobian of (sqrteke, L_rhines, eke_len, K_gm) at one level w.r.t. (eke, L_rossby), given the
    forward values ``se = sqrt(max(0, e))`` and ``lrh = sqrt(se / bb)`` (L_rhines is the forward's
    local intermediate, not a stored output: its slope lrh_e only enters eke_len and K_gm).

    Returns ``(se_e, lrh_e, el_e, el_l, k_e, k_l)`` with ``x_e = dx/deke``, ``x_l = dx/dL_rossby``
    (sqrteke and L_rhines do not depend on L_rossby).  Exact slopes (eps = 0) from one division:
    ``se_e = 0.5 / se``, ``lrh_e = 0.25 / (se lrh bb)`` where se > 0 (0 elsewhere)."""
    if eps > 0.0:
        se_e = _dsqrt(e, se, eps)
        # dL_rhines/dsqrteke: the 1/sqrt uses sqrt(max(eke, 0) + eps^2)
        r = 0.5 / (math.sqrt(math.sqrt(max(e, 0.0) + eps * eps) / bb) * bb) if e >= 0.0 else 0.0
        lrh_e = r * se_e
    elif se > 0.0:
        inv = 1.0 / (se * lrh * bb)
        se_e = 0.5 * lrh * bb * inv
        lrh_e = 0.25 * inv
    else:
        se_e = 0.0
        lrh_e = 0.0
    # m = min(cross lr, crhin lrh); el = max(lmin, m)
    m_e = 0.0
    m_l = eke_cross
    m = eke_cross * lr
    if eke_crhin * lrh < m:
        m = eke_crhin * lrh
        m_e = eke_crhin * lrh_e
        m_l = 0.0
    el = eke_lmin
    el_e = 0.0
    el_l = 0.0
    if m > eke_lmin:
        el = m
        el_e = m_e
        el_l = m_l
    # K_gm = min(k_max, c_k el se)
    k_e = 0.0
    k_l = 0.0
    if eke_c_k * el * se < eke_k_max:
        k_e = eke_c_k * (el_e * se + el * se_e)
        k_l = eke_c_k * el_l * se
    return se_e, lrh_e, el_e, el_l, k_e, k_l


@tangent_of(F.eke_diffusivities, space="column")
def eke_diffusivities_tl(i, j, d_L_rossby, d_sqrteke, d_eke_len, d_K_gm, d_eke, d_Nsqr, eke, Nsqr,
                         coriolis_t, beta, maskW, dzw, eke_lmin, eke_cross, eke_crhin, eke_c_k, eke_k_max,
                         opt_sqrt_eps):
    """Tangent of the EKE diffusivities:
    ``dC = sum_k s'(N^2_k) dN^2_k dzw_k maskW_k / pi``, ``dL_rossby = L_rossby'(C) dC`` and, per
    level, the chain rule through sqrteke, L_rhines (a local value: no d_L_rhines output), eke_len,
    K_gm along the branches taken (s' = slope of sqrt(max(0, .)), exact or regularised by
    ``opt_sqrt_eps``)."""
    nz = eke.shape[0]
    cr = 0.0
    dcr = 0.0
    for k in range(nz):
        # same expression as the forward, so that the branches agree
        sn = math.sqrt(max(0.0, Nsqr[k, j, i]))
        cr += sn * dzw[k] * maskW[k, j, i] / C.PI
        dcr += _dsqrt(Nsqr[k, j, i], sn, opt_sqrt_eps) * d_Nsqr[k, j, i] * dzw[k] * maskW[k, j, i] / C.PI
    lr, lr_c = _rossby(cr, coriolis_t[j, i], beta[j, i])
    dlr = lr_c * dcr
    d_L_rossby[j, i] = dlr
    bb = max(beta[j, i], 1e-16)
    for k in range(nz):
        e = eke[k, j, i]
        se = math.sqrt(max(0.0, e))
        se_e, lrh_e, el_e, el_l, k_e, k_l = _level_jacobian(e, se, math.sqrt(se / bb), lr, bb, eke_lmin, eke_cross,
                                                            eke_crhin, eke_c_k, eke_k_max, opt_sqrt_eps)
        de = d_eke[k, j, i]
        d_sqrteke[k, j, i] = se_e * de
        d_eke_len[k, j, i] = el_e * de + el_l * dlr
        d_K_gm[k, j, i] = k_e * de + k_l * dlr


@adjoint_of(F.eke_diffusivities, space="column")
def eke_diffusivities_ad(i, j, b_eke, b_Nsqr, b_L_rossby, b_sqrteke, b_eke_len, b_K_gm, L_rossby, sqrteke,
                         eke, Nsqr, coriolis_t, beta, maskW, dzw, eke_lmin, eke_cross, eke_crhin, eke_c_k,
                         eke_k_max, opt_sqrt_eps):
    """Adjoint of the EKE diffusivities (column-local): per level
    ``b_eke += J_e^T (b_sqrteke, b_eke_len, b_K_gm)``, the L_rossby adjoint
    ``b_L = b_L_rossby + sum_k J_l^T (b_eke_len, b_K_gm)_k`` and
    ``b_N^2_k += s'(N^2_k) dzw_k maskW_k / pi * L_rossby'(C) b_L``.

    The forward's own outputs L_rossby and sqrteke (exactly the values it computed at this
    linearisation point) replace the recomputation of their square roots; the Rhines scale, which
    the forward does not store, is recomputed from sqrteke as the forward does
    (``sqrt(sqrteke / max(beta, 1e-16))``, bitwise its value); C is summed again for the branch of
    L_rossby and its slope (:func:`_rossby`)."""
    nz = eke.shape[0]
    lr = L_rossby[j, i]
    bb = max(beta[j, i], 1e-16)
    blr = b_L_rossby[j, i]
    for k in range(nz):
        se = sqrteke[k, j, i]
        lrh = math.sqrt(se / bb)
        se_e, lrh_e, el_e, el_l, k_e, k_l = _level_jacobian(eke[k, j, i], se, lrh, lr, bb, eke_lmin, eke_cross,
                                                            eke_crhin, eke_c_k, eke_k_max, opt_sqrt_eps)
        bel = b_eke_len[k, j, i]
        bk = b_K_gm[k, j, i]
        b_eke[k, j, i] += se_e * b_sqrteke[k, j, i] + el_e * bel + k_e * bk
        blr += el_l * bel + k_l * bk
    if blr == 0.0:
        return
    cr = 0.0
    for k in range(nz):
        cr += math.sqrt(max(0.0, Nsqr[k, j, i])) * dzw[k] * maskW[k, j, i] / C.PI
    lr_, lr_c = _rossby(cr, coriolis_t[j, i], beta[j, i])
    bcr = lr_c * blr / C.PI
    for k in range(nz):
        n2 = Nsqr[k, j, i]
        b_Nsqr[k, j, i] += _dsqrt(n2, math.sqrt(max(0.0, n2)), opt_sqrt_eps) * dzw[k] * maskW[k, j, i] * bcr


# ===========================================================================
# velocities on the W grid (column, linear)
# ===========================================================================

@tangent_of(F.velocity_on_wgrid)
def velocity_on_wgrid_tl(i, j, k, d_u_wgrid, d_v_wgrid, d_u, d_v, maskU, maskV, wface_x, wface_y, wint_up, wint_dn,
                         wint_mv):
    """Tangent = the forward kernel applied to d_u, d_v (linear)."""
    _velocity_on_wgrid(i, j, k, d_u_wgrid, d_v_wgrid, d_u, d_v, maskU, maskV, wface_x, wface_y, wint_up, wint_dn,
                       wint_mv)


@helper
def _wgrid_column_ad(j, i, b_q, b_qw, m, wface, wint_up, wint_dn, wint_mv):
    """Adjoint of one velocity component of velocity_on_wgrid in column (j, i).

    Forward (:func:`ocean_core.kernels.eke.wgrid_face`): ``raw_k = up_k m_{k+1} q_{k+1} + dn_k m_k q_k``
    (+ dn_0 m_0 q_0 again at k = 0, no upper term at the top) and
    ``q_w[k] = f_k (raw_k + g_k raw_{k-1})`` with ``f = wface``, ``g_k = mv_k (1 - f_{k-1})`` (g_0 = 0).
    Accumulates ``b_q[:, j, i]``."""
    nz = b_q.shape[0]
    braw_prev = 0.0
    for k in range(nz):
        # adjoint of raw_k: from q_w[k] and from q_w[k+1] (the moved-up velocity)
        braw = wface[k, j, i] * b_qw[k, j, i]
        if k + 1 < nz:
            braw += wface[k + 1, j, i] * (wint_mv[k + 1] * (1.0 - wface[k, j, i])) * b_qw[k + 1, j, i]
        # q_k enters raw_k (dn_k, twice at k = 0) and raw_{k-1} (up_{k-1})
        bk = m[k, j, i] * wint_dn[k]
        r = bk * braw
        if k == 0:
            r += bk * braw
        else:
            r += m[k, j, i] * wint_up[k - 1] * braw_prev
        b_q[k, j, i] += r
        braw_prev = braw


@adjoint_of(F.velocity_on_wgrid, space="column")
def velocity_on_wgrid_ad(i, j, b_u, b_v, b_u_wgrid, b_v_wgrid, maskU, maskV, wface_x, wface_y, wint_up, wint_dn,
                         wint_mv):
    """Adjoint of velocity_on_wgrid: the W-grid velocities of column (j, i) read u, v of the
    same column only, so the adjoint is column-local (see :func:`_wgrid_column_ad`)."""
    _wgrid_column_ad(j, i, b_u, b_u_wgrid, maskU, wface_x, wint_up, wint_dn, wint_mv)
    _wgrid_column_ad(j, i, b_v, b_v_wgrid, maskV, wface_y, wint_up, wint_dn, wint_mv)


# ===========================================================================
# vertical velocity on the W grid (column, linear)
# ===========================================================================

@tangent_of(F.w_wgrid_continuity)
def w_wgrid_continuity_tl(i, j, k, d_w_wgrid, d_u_wgrid, d_v_wgrid, cost, cosu, dxt, dyt, dzw):
    """Tangent = the forward kernel applied to d_u_wgrid, d_v_wgrid (linear)."""
    _w_wgrid_continuity(i, j, k, d_w_wgrid, d_u_wgrid, d_v_wgrid, cost, cosu, dxt, dyt, dzw)


@adjoint_of(F.w_wgrid_continuity, space="column")
def w_wgrid_continuity_ad(i, j, b_u_wgrid, b_v_wgrid, b_w_wgrid, cost, cosu, dxt, dyt, dzw):
    """Adjoint of the cumulative continuity sum ``w[k] = sum_{k' <= k} div_{k'}``: the adjoint of
    ``div_k`` of column c is the suffix sum ``S_k(c) = sum_{k' >= k} b_w[k', c]``.  u_wgrid at (j, i)
    is read by the columns (j, i) and (j, i+1), v_wgrid by (j, i) and (j+1, i)."""
    nz, NY, NX = b_w_wgrid.shape
    own = i >= 1 and j >= 1
    east = i + 1 < NX and j >= 1
    north = j + 1 < NY and i >= 1
    # metric factors of the three columns (0 where the column does not read the point)
    cu0 = 1.0 / (cost[j] * dxt[i]) if own else 0.0
    cv0 = cosu[j] / (cost[j] * dyt[j]) if own else 0.0
    cu1 = 1.0 / (cost[j] * dxt[i + 1]) if east else 0.0
    cv2 = cosu[j] / (cost[j + 1] * dyt[j + 1]) if north else 0.0
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    for kk in range(nz):
        k = nz - 1 - kk
        if own:
            s0 += b_w_wgrid[k, j, i]
        if east:
            s1 += b_w_wgrid[k, j, i + 1]
        if north:
            s2 += b_w_wgrid[k, j + 1, i]
        b_u_wgrid[k, j, i] += dzw[k] * (cu1 * s1 - cu0 * s0)
        b_v_wgrid[k, j, i] += dzw[k] * (cv2 * s2 - cv0 * s0)


# ===========================================================================
# implicit vertical step (tridiagonal per column)
# ===========================================================================

@tangent_of(F.eke_implicit, space="column")
def eke_implicit_tl(i, j, d_eke_imp, scr_cp, d_eke, d_K_diss_h, d_sqrteke, d_eke_len, d_kappaM, eke, K_diss_h,
                    sqrteke, eke_len, kappaM, maskW, kbot, rdzt, eke_rdz, dt_tracer, eke_c_eps, alpha_eke):
    """Tangent of the implicit step ``A(kappaM, c_int) x = d``: ``A dx = dd - dA x`` with
    ``dd = d_eke + dt d_K_diss_h`` and
    ``(dA x)_k = ddelta_{k-1}/h_k (x_k - x_{k-1}) + ddelta_k/dzw_k (x_k - x_{k+1}) + dt dc_int_k x_k``,
    ``ddelta_k = dt/dzt_{k+1} 0.5 (dkappaM_k + dkappaM_{k+1}) alpha`` (0 at the top), ``h_k = dzw_k``
    (half at the top; 1/dzt and 1/h read from rdzt and eke_rdz, as in the forward), ``dc_int = c_eps maskW (dsqrteke/eke_len - sqrteke deke_len/eke_len^2)``.
    The primal x is solved first into ``d_eke_imp`` (the forward's Thomas algorithm, ``scr_cp``
    scratch), then replaced by dx (same factors)."""
    nz = d_eke.shape[0]
    for k in range(nz):
        d_eke_imp[k, j, i] = 0.0
        scr_cp[k, j, i] = 0.0
    if not in_interior(i, j, d_eke.shape[2], d_eke.shape[1]) or kbot[j, i] == 0:
        return
    k0 = kbot[j, i] - 1
    # primal solve, as the forward kernel
    for k in range(k0, nz):
        ci = eke_cint(k, j, i, sqrteke, eke_len, maskW, eke_c_eps)
        a, b, c = eke_vcoeffs(k, k0, nz, j, i, kappaM, ci, rdzt, eke_rdz, dt_tracer, alpha_eke)
        d = eke[k, j, i] + dt_tracer * K_diss_h[k, j, i]
        if k == k0:
            den = b
            scr_cp[k, j, i] = c / den
            d_eke_imp[k, j, i] = d / den
        else:
            den = b - a * scr_cp[k - 1, j, i]
            scr_cp[k, j, i] = c / den
            d_eke_imp[k, j, i] = (d - a * d_eke_imp[k - 1, j, i]) / den
    for kk in range(nz - 1 - k0):
        k = nz - 2 - kk
        d_eke_imp[k, j, i] = d_eke_imp[k, j, i] - scr_cp[k, j, i] * d_eke_imp[k + 1, j, i]
    # tangent right-hand side and forward elimination, overwriting x_k once it is no longer needed
    x_below = 0.0   # x_{k-1}
    dd_below = 0.0  # ddelta_{k-1}
    for k in range(k0, nz):
        ci = eke_cint(k, j, i, sqrteke, eke_len, maskW, eke_c_eps)
        a, b, c = eke_vcoeffs(k, k0, nz, j, i, kappaM, ci, rdzt, eke_rdz, dt_tracer, alpha_eke)
        x = d_eke_imp[k, j, i]
        el = eke_len[k, j, i]
        dci = eke_c_eps * maskW[k, j, i] * (d_sqrteke[k, j, i] / el - sqrteke[k, j, i] * d_eke_len[k, j, i] / (el * el))
        r = d_eke[k, j, i] + dt_tracer * d_K_diss_h[k, j, i] - dt_tracer * dci * x
        dd = 0.0
        if k < nz - 1:
            dd = dt_tracer * rdzt[k + 1] * 0.5 * (d_kappaM[k, j, i] + d_kappaM[k + 1, j, i]) * alpha_eke
            r -= dd * eke_rdz[k] * (x - d_eke_imp[k + 1, j, i])
        if k > k0:
            r -= dd_below * eke_rdz[k] * (x - x_below)
            d_eke_imp[k, j, i] = (r - a * d_eke_imp[k - 1, j, i]) / (b - a * scr_cp[k - 1, j, i])
        else:
            d_eke_imp[k, j, i] = r / b
        x_below = x
        dd_below = dd
    for kk in range(nz - 1 - k0):
        k = nz - 2 - kk
        d_eke_imp[k, j, i] = d_eke_imp[k, j, i] - scr_cp[k, j, i] * d_eke_imp[k + 1, j, i]


@adjoint_of(F.eke_implicit, space="column")
def eke_implicit_ad(i, j, b_eke, b_K_diss_h, b_sqrteke, b_eke_len, b_kappaM, scr_cp, scr_dp, scr_y, b_eke_imp, eke,
                    K_diss_h, sqrteke, eke_len, kappaM, maskW, kbot, rdzt, eke_rdz, dt_tracer, eke_c_eps, alpha_eke):
    """Adjoint of the implicit step: solve ``A^T lam = b_eke_imp`` on the wet levels, then
    ``b_eke += lam``, ``b_K_diss_h += dt lam`` and the coefficient sensitivities
    ``b_a_k = -lam_k x_{k-1}``, ``b_b_k = -lam_k x_k``, ``b_c_k = -lam_k x_{k+1}`` (x the primal
    solution), i.e. ``b_c_int_k = -dt lam_k x_k`` -> sqrteke, eke_len and
    ``b_delta_k = (x_{k+1} - x_k)(lam_k/dzw_k - lam_{k+1}/h_{k+1})`` -> kappaM_k, kappaM_{k+1}.

    With the LU factors of the forward Thomas algorithm, ``A = L U`` (L: pivots den_k and
    sub-diagonal a_k; U: unit, super-diagonal cp_k = c_k/den_k): upward sweep ``cp`` (``scr_cp``),
    the primal ``dp = L^-1 d`` (``scr_dp``) and ``y = U^-T b_eke_imp`` (``scr_y``); downward sweep
    ``x = U^-1 dp``, ``lam = L^-T y`` and the sensitivities."""
    nz = b_eke.shape[0]
    if not in_interior(i, j, b_eke.shape[2], b_eke.shape[1]) or kbot[j, i] == 0:
        return
    k0 = kbot[j, i] - 1
    # without vertical viscosity (the forward's fast path) A is diagonal, b_k = 1 + dt c_int_k exactly:
    # x = d / b, lam = b_eke_imp / b level by level, and b_delta_k still follows from x and lam
    diffusive = False
    for k in range(k0, nz):
        if kappaM[k, j, i] != 0.0:
            diffusive = True
    if not diffusive:
        x_up = 0.0
        lam_up = 0.0
        pend = 0.0
        ha = 0.5 * alpha_eke * dt_tracer
        for kk in range(nz - k0):
            k = nz - 1 - kk
            mw = maskW[k, j, i]
            rel = 1.0 / eke_len[k, j, i]
            se = sqrteke[k, j, i]
            rb = 1.0 / (1.0 + dt_tracer * (eke_c_eps * se * rel * mw))
            x = (eke[k, j, i] + dt_tracer * K_diss_h[k, j, i]) * rb
            lam = b_eke_imp[k, j, i] * rb
            b_eke[k, j, i] += lam
            b_K_diss_h[k, j, i] += dt_tracer * lam
            g = -dt_tracer * lam * x * eke_c_eps * mw * rel     # b_c_int_k times d c_int / d sqrteke
            b_sqrteke[k, j, i] += g
            b_eke_len[k, j, i] -= g * se * rel
            if k < nz - 1:
                w = ha * rdzt[k + 1] * (x_up - x) * (lam * eke_rdz[k] - lam_up * eke_rdz[k + 1])
                b_kappaM[k + 1, j, i] += w + pend
                pend = w
            x_up = x
            lam_up = lam
        b_kappaM[k0, j, i] += pend
        return
    for k in range(k0, nz):
        ci = eke_cint(k, j, i, sqrteke, eke_len, maskW, eke_c_eps)
        a, b, c = eke_vcoeffs(k, k0, nz, j, i, kappaM, ci, rdzt, eke_rdz, dt_tracer, alpha_eke)
        d = eke[k, j, i] + dt_tracer * K_diss_h[k, j, i]
        if k == k0:
            den = b
            scr_dp[k, j, i] = d / den
            scr_y[k, j, i] = b_eke_imp[k, j, i]
        else:
            den = b - a * scr_cp[k - 1, j, i]
            scr_dp[k, j, i] = (d - a * scr_dp[k - 1, j, i]) / den
            scr_y[k, j, i] = b_eke_imp[k, j, i] - scr_cp[k - 1, j, i] * scr_y[k - 1, j, i]
        scr_cp[k, j, i] = c / den
    x_up = 0.0        # x_{k+1}
    lam_up = 0.0      # lam_{k+1}
    a_up = 0.0        # a_{k+1}
    pend = 0.0        # kappaM_k share of b_delta_k, added at the next level down
    for kk in range(nz - k0):
        k = nz - 1 - kk
        ci = eke_cint(k, j, i, sqrteke, eke_len, maskW, eke_c_eps)
        a, b, c = eke_vcoeffs(k, k0, nz, j, i, kappaM, ci, rdzt, eke_rdz, dt_tracer, alpha_eke)
        den = b if k == k0 else b - a * scr_cp[k - 1, j, i]
        x = scr_dp[k, j, i] - scr_cp[k, j, i] * x_up
        lam = (scr_y[k, j, i] - a_up * lam_up) / den
        b_eke[k, j, i] += lam
        b_K_diss_h[k, j, i] += dt_tracer * lam
        # c_int = c_eps sqrteke / eke_len maskW on the diagonal (times dt)
        bci = -dt_tracer * lam * x
        el = eke_len[k, j, i]
        b_sqrteke[k, j, i] += eke_c_eps * maskW[k, j, i] / el * bci
        b_eke_len[k, j, i] -= eke_c_eps * sqrteke[k, j, i] * maskW[k, j, i] / (el * el) * bci
        # delta_k (k < nz-1) enters rows k and k+1
        if k < nz - 1:
            w = dt_tracer * rdzt[k + 1] * 0.5 * alpha_eke * (x_up - x) * (lam * eke_rdz[k] - lam_up * eke_rdz[k + 1])
            b_kappaM[k + 1, j, i] += w + pend
            pend = w
        x_up = x
        lam_up = lam
        a_up = a
    b_kappaM[k0, j, i] += pend


# ===========================================================================
# superbee advective fluxes
# ===========================================================================

@helper
def _limiter(r):
    """``superbee_limiter(r)`` and its slope, with the forward's min/max evaluation (branch-free):
    ``a = min(max(2r, 0), 1)`` has slope 2 iff ``0 <= 2r <= 1``, ``b = min(max(r, 0), 2)`` slope 1 iff
    ``0 <= r <= 2``, and ``max(a, b)`` returns b only if ``b > a``."""
    t = 2.0 * r
    a = min(max(t, 0.0), 1.0)
    b = min(max(r, 0.0), 2.0)
    ga = 2.0 if (t >= 0.0) & (t <= 1.0) else 0.0
    gb = 1.0 if (r >= 0.0) & (r <= 2.0) else 0.0
    if b > a:
        return b, gb
    return a, ga


@helper
def _sb_partials(vel, velc, qm1, q0, qp1, qp2, mm1, m0, mp1, rlen, dt):
    """Partial derivatives of ``superbee_flux`` w.r.t. (qm1, q0, qp1, qp2, velc), branch-wise.

    With ``G = (1 - cr) + cfl cr`` and ``den = rj`` (or the guard 1e-20): ``dF/dcr = -|velc| (cfl - 1) rj/2``,
    ``dF/dup = dF/dcr lim'/den``, ``dF/drj = -|velc| G/2 - dF/dup up/den`` (the last term only when
    ``|rj| >= 1e-20``), ``dF/dvelc = (q0 + qp1)/2 - sign(velc) G rj/2 - |velc| cr rj/2 sign(velc dt/dx) dt/dx``; ``rlen = 1/dx``
    as in the forward (``cfl = |velc (dt rlen)|``, the same rounding)."""
    rjp = (qp2 - qp1) * mp1
    rj = (qp1 - q0) * m0
    rjm = (q0 - qm1) * mm1
    upwind = vel > 0.0
    up = rjm if upwind else rjp
    guard = abs(rj) < 1e-20
    den = 1e-20 if guard else rj
    ratio = up / den                  # as the forward: decides the limiter branch
    cr, slope = _limiter(ratio)
    cfl_fac = dt * rlen
    cfl = abs(velc * cfl_fac)
    avel = abs(velc)
    # dF/dup = dF/dcr lim'/den; rj/den = 1 unless guarded (saves a division)
    f_up = -avel * (cfl - 1.0) * slope * 0.5 * (rj * 1e20 if guard else 1.0)
    f_rj = -avel * ((1.0 - cr) + cfl * cr) * 0.5 - (0.0 if guard else f_up * ratio)
    f_rjm = f_up if upwind else 0.0
    f_rjp = 0.0 if upwind else f_up
    g_qm1 = -mm1 * f_rjm
    g_q0 = 0.5 * velc - m0 * f_rj + mm1 * f_rjm
    g_qp1 = 0.5 * velc + m0 * f_rj - mp1 * f_rjp
    g_qp2 = mp1 * f_rjp
    g_vc = (qp1 + q0) * 0.5 - (_sign(velc) * ((1.0 - cr) + cfl * cr)
                               + avel * cr * _sign(velc * cfl_fac) * cfl_fac) * rj * 0.5
    return g_qm1, g_q0, g_qp1, g_qp2, g_vc


@helper
def _sb_fup(velc, up, rj, rlen, dt):
    """``dF/dup`` of ``superbee_flux`` alone (as in :func:`_sb_partials`): the partial of a face w.r.t. its
    outer cell (q_{f-1} through rjm on upwind faces, q_{f+2} through rjp otherwise) is ``-+ mask dF/dup``.
    Zero where the limiter is flat (branch-free: the value is formed and then selected)."""
    guard = abs(rj) < 1e-20
    den = 1e-20 if guard else rj
    cr, slope = _limiter(up / den)
    cfl = abs(velc * (dt * rlen))
    r = -abs(velc) * (cfl - 1.0) * slope * 0.5 * (rj * 1e20 if guard else 1.0)
    return 0.0 if slope == 0.0 else r


@helper
def _sb_face(vel, velc, rjm, rj, rjp, cfl_fac):
    """Partials of ``superbee_flux`` w.r.t. its three differences, as :func:`_sb_partials` (same
    expressions): ``(f_rj, f_up, G, cr)`` with ``f_up = dF/dup`` for the upwind-chosen difference
    (rjm if vel > 0, else rjp), ``G = (1 - cr) + cfl cr`` and the limiter value cr; ``cfl_fac = dt/dx``,
    formed as ``dt rlen`` (rlen = 1/dx, a metric) like the forward."""
    up = rjm if vel > 0.0 else rjp
    guard = abs(rj) < 1e-20
    den = 1e-20 if guard else rj
    ratio = up / den
    cr, slope = _limiter(ratio)
    avel = abs(velc)
    cfl = abs(velc * cfl_fac)
    G = (1.0 - cr) + cfl * cr
    f_up = -avel * (cfl - 1.0) * slope * 0.5 * (rj * 1e20 if guard else 1.0)
    f_rj = -avel * G * 0.5 - (0.0 if guard else f_up * ratio)
    return f_rj, f_up, G, cr


@helper
def _sb_gv(velc, cfl_fac, q0, qp1, rj, G, cr):
    """``dF/dvelc = (q0 + qp1)/2 - (sign(velc) G + |velc| cr sign(velc cfl_fac) cfl_fac) rj / 2`` (as
    :func:`_sb_partials`)."""
    return (qp1 + q0) * 0.5 - (_sign(velc) * G + abs(velc) * cr * _sign(velc * cfl_fac) * cfl_fac) * rj * 0.5


# Face stencils, read in the bodies (array-taking helpers that are not inlined pay NRT
# reference counting per call: the bodies load scalars and call the scalar helpers).
# East face f of row (k, j): cells f-1..f+2, face masks maskW_f maskW_{f+1} of faces f-1..f+1,
# velocity u_wgrid[k, j, f], reciprocal CFL length rdx_t[j, f] = 1/(cost_j dxt_f); north faces
# likewise with cosu_f v and rdy_t[f]; top face f: levels max(f-1, 0), f, f+1, min(f+2, nz-1),
# eke_rdz[f] = 1/dzw_f (f <= nz-2; the top value, 2/dzw, is read only by discarded terms).

@tangent_of(F.eke_fluxes)
def eke_fluxes_tl(i, j, k, d_eke_fe, d_eke_fn, d_eke_ft, d_eke, d_u_wgrid, d_v_wgrid, d_w_wgrid, eke, u_wgrid,
                  v_wgrid, w_wgrid, maskW, cosu, rdx_t, rdy_t, eke_rdz, dt_tracer):
    """Tangent of the superbee fluxes: ``dF = sum_s dF/dq_s dq_s + dF/dvel dvel`` over the 4 cells and the
    velocity of each face (branch-wise partials, :func:`_sb_partials`); zero where the forward is zero."""
    nz, NY, NX = eke.shape
    q = eke
    m = maskW
    if i >= 1 and i < NX - 2 and j >= 2 and j < NY - 2:
        vel = u_wgrid[k, j, i]
        g0, g1, g2, g3, gv = _sb_partials(vel, vel, q[k, j, i - 1], q[k, j, i], q[k, j, i + 1], q[k, j, i + 2],
                                          m[k, j, i - 1] * m[k, j, i], m[k, j, i] * m[k, j, i + 1],
                                          m[k, j, i + 1] * m[k, j, i + 2], rdx_t[j, i], dt_tracer)
        d_eke_fe[k, j, i] = (g0 * d_eke[k, j, i - 1] + g1 * d_eke[k, j, i] + g2 * d_eke[k, j, i + 1]
                             + g3 * d_eke[k, j, i + 2] + gv * d_u_wgrid[k, j, i])
    else:
        d_eke_fe[k, j, i] = 0.0
    if i >= 2 and i < NX - 2 and j >= 1 and j < NY - 2:
        vel = v_wgrid[k, j, i]
        g0, g1, g2, g3, gv = _sb_partials(vel, cosu[j] * vel, q[k, j - 1, i], q[k, j, i], q[k, j + 1, i],
                                          q[k, j + 2, i], m[k, j - 1, i] * m[k, j, i], m[k, j, i] * m[k, j + 1, i],
                                          m[k, j + 1, i] * m[k, j + 2, i], rdy_t[j], dt_tracer)
        d_eke_fn[k, j, i] = (g0 * d_eke[k, j - 1, i] + g1 * d_eke[k, j, i] + g2 * d_eke[k, j + 1, i]
                             + g3 * d_eke[k, j + 2, i] + gv * cosu[j] * d_v_wgrid[k, j, i])
    else:
        d_eke_fn[k, j, i] = 0.0
    if in_interior(i, j, NX, NY) and k < nz - 1:
        km = k - 1 if k > 0 else 0
        kp2 = k + 2 if k + 2 < nz else nz - 1
        mp1 = m[k + 2, j, i] * m[k + 1, j, i] if k + 2 < nz else 0.0
        vel = w_wgrid[k, j, i]
        g0, g1, g2, g3, gv = _sb_partials(vel, vel, q[km, j, i], q[k, j, i], q[k + 1, j, i], q[kp2, j, i],
                                          m[km + 1, j, i] * m[km, j, i], m[k + 1, j, i] * m[k, j, i], mp1,
                                          eke_rdz[k], dt_tracer)
        d_eke_ft[k, j, i] = (g0 * d_eke[km, j, i] + g1 * d_eke[k, j, i] + g2 * d_eke[k + 1, j, i]
                             + g3 * d_eke[kp2, j, i] + gv * d_w_wgrid[k, j, i])
    else:
        d_eke_ft[k, j, i] = 0.0


@adjoint_of(F.eke_fluxes)
def eke_fluxes_ad(i, j, k, b_eke, b_u_wgrid, b_v_wgrid, b_w_wgrid, b_eke_fe, b_eke_fn, b_eke_ft, eke, u_wgrid,
                  v_wgrid, w_wgrid, maskW, cosu, rdx_t, rdy_t, eke_rdz, dt_tracer):
    """Adjoint of the superbee fluxes, gathered at p = (k, j, i) direction by direction.

    A face flux reads q only through the central sum ``q_f + q_{f+1}`` and the masked differences
    ``D_a = (q_{a+1} - q_a) m_a`` (``m_a = maskW_a maskW_{a+1}``): ``rjm = D_{f-1}``, ``rj = D_f``,
    ``rjp = D_{f+1}``.  q at p enters D_{i-1} (+m_{i-1}) and D_i (-m_i) only, so with the adjoints
    ``B_a = sum_faces b_F dF/dD_a``, ``b_eke[p] += m_{i-1} B_{i-1} - m_i B_i + 0.5 (b_F_i velc_i + b_F_{i-1}
    velc_{i-1})``.  B_i gathers face i (as rj), face i-1 (as rjp, if vel <= 0) and face i+1 (as rjm, if
    vel > 0); B_{i-1} gathers face i-1 (rj), face i (rjm, vel > 0), face i-2 (rjp, vel <= 0): two full
    partial sets (:func:`_sb_face`) and two limiter slopes (:func:`_sb_fup`) per direction, each
    face evaluated once.  The velocity at p is read only by face p (:func:`_sb_gv`).  Faces: east
    ``1 <= f < NX-2`` (rows ``2 <= j < NY-2``), north likewise in j with ``velc = cosu_f v``, top
    ``0 <= f <= nz-2`` of interior columns; the edge padding in z makes rjm of face 0 and rjp of face
    nz-2 identically zero (no dependence).

    Branch-free so that the i loop vectorises: neighbour indices are clamped (every load is in
    bounds), every face term is formed and then kept or dropped by a select (conditions: the face
    exists, its upwind direction, a nonzero flux adjoint for the slope terms), in the order of the
    guarded form (the same arithmetic, bitwise the same result)."""
    nz, NY, NX = eke.shape
    q = eke
    m = maskW
    dt = dt_tracer
    ip = min(i + 1, NX - 1)
    ip2 = min(i + 2, NX - 1)
    im = max(i - 1, 0)
    im2 = max(i - 2, 0)
    jp = min(j + 1, NY - 1)
    jp2 = min(j + 2, NY - 1)
    jm = max(j - 1, 0)
    jm2 = max(j - 2, 0)
    kp = min(k + 1, nz - 1)
    kp2 = min(k + 2, nz - 1)
    km = max(k - 1, 0)
    km2 = max(k - 2, 0)
    q00 = q[k, j, i]
    m00 = m[k, j, i]
    be = 0.0
    # ---------------- x: faces f = i-2 .. i+1 of rows 2 <= j < NY-2 (faces 1 <= f < NX-2) -------------
    rowx = (j >= 2) & (j < NY - 2)
    # differences D_a = (q_{a+1} - q_a) mx_a for a = i-1, i (own), adjoint B_a gathered from faces
    t = m00 * m[k, j, ip]
    mi = t if i + 1 < NX else 0.0
    t = m[k, j, im] * m00
    mim = t if i >= 1 else 0.0
    Bi = 0.0     # adjoint of D_i
    Bim = 0.0    # adjoint of D_{i-1}
    # face i: rjm = D_{i-1}, rj = D_i, rjp = D_{i+1}
    ok = rowx & (i >= 1) & (i < NX - 2)
    vel = u_wgrid[k, j, i]
    bf = b_eke_fe[k, j, i]
    cf = dt * rdx_t[j, i]
    q0 = q00
    q1 = q[k, j, ip]
    rj = (q1 - q0) * mi
    f_rj, f_up, G, cr = _sb_face(vel, vel, (q0 - q[k, j, im]) * mim, rj,
                                 (q[k, j, ip2] - q1) * (m[k, j, ip] * m[k, j, ip2]), cf)
    t = bf * f_rj
    Bi = Bi + t if ok else Bi
    t = bf * f_up
    Bim = Bim + t if ok & (vel > 0.0) else Bim
    t = 0.5 * vel * bf
    be = be + t if ok else be
    t = _sb_gv(vel, cf, q0, q1, rj, G, cr) * bf
    o = b_u_wgrid[k, j, i]
    b_u_wgrid[k, j, i] = o + t if ok else o
    # face i-1: rjm = D_{i-2}, rj = D_{i-1}, rjp = D_i
    ok = rowx & (i >= 2) & (i < NX - 1)
    vel = u_wgrid[k, j, im]
    bf = b_eke_fe[k, j, im]
    qm = q[k, j, im]
    f_rj, f_up, G, cr = _sb_face(vel, vel, (qm - q[k, j, im2]) * (m[k, j, im2] * m[k, j, im]),
                                 (q0 - qm) * mim, (q[k, j, ip] - q0) * mi, dt * rdx_t[j, im])
    t = bf * f_rj
    Bim = Bim + t if ok else Bim
    t = bf * f_up
    Bi = Bi + t if ok & (vel <= 0.0) | ok & (vel != vel) else Bi
    t = 0.5 * vel * bf
    be = be + t if ok else be
    # face i+1 reads D_i as rjm (upwind faces only)
    vel = u_wgrid[k, j, ip]
    bf = b_eke_fe[k, j, ip]
    t = bf * _sb_fup(vel, (q[k, j, ip] - q[k, j, i]) * mi,
                     (q[k, j, ip2] - q[k, j, ip]) * (m[k, j, ip] * m[k, j, ip2]), rdx_t[j, ip], dt)
    Bi = Bi + t if rowx & (i + 1 < NX - 2) & (vel > 0.0) & (bf != 0.0) else Bi
    # face i-2 reads D_{i-1} as rjp (faces with vel <= 0)
    vel = u_wgrid[k, j, im2]
    bf = b_eke_fe[k, j, im2]
    t = bf * _sb_fup(vel, (q[k, j, i] - q[k, j, im]) * mim,
                     (q[k, j, im] - q[k, j, im2]) * (m[k, j, im2] * m[k, j, im]), rdx_t[j, im2], dt)
    Bim = Bim + t if rowx & (i >= 3) & ((vel <= 0.0) | (vel != vel)) & (bf != 0.0) else Bim
    t = mim * Bim - mi * Bi
    be = be + t if rowx else be
    # ---------------- y: faces f = j-2 .. j+1 of columns 2 <= i < NX-2 (faces 1 <= f < NY-2) ----------
    colx = (i >= 2) & (i < NX - 2)
    t = m00 * m[k, jp, i]
    mj = t if j + 1 < NY else 0.0
    t = m[k, jm, i] * m00
    mjm = t if j >= 1 else 0.0
    Bj = 0.0
    Bjm = 0.0
    # face j
    ok = colx & (j >= 1) & (j < NY - 2)
    vel = v_wgrid[k, j, i]
    vc = cosu[j] * vel
    bf = b_eke_fn[k, j, i]
    cf = dt * rdy_t[j]
    q0 = q00
    q1 = q[k, jp, i]
    rj = (q1 - q0) * mj
    f_rj, f_up, G, cr = _sb_face(vel, vc, (q0 - q[k, jm, i]) * mjm, rj,
                                 (q[k, jp2, i] - q1) * (m[k, jp, i] * m[k, jp2, i]), cf)
    t = bf * f_rj
    Bj = Bj + t if ok else Bj
    t = bf * f_up
    Bjm = Bjm + t if ok & (vel > 0.0) else Bjm
    t = 0.5 * vc * bf
    be = be + t if ok else be
    t = _sb_gv(vc, cf, q0, q1, rj, G, cr) * cosu[j] * bf
    o = b_v_wgrid[k, j, i]
    b_v_wgrid[k, j, i] = o + t if ok else o
    # face j-1
    ok = colx & (j >= 2) & (j < NY - 1)
    vel = v_wgrid[k, jm, i]
    vc = cosu[jm] * vel
    bf = b_eke_fn[k, jm, i]
    qm = q[k, jm, i]
    f_rj, f_up, G, cr = _sb_face(vel, vc, (qm - q[k, jm2, i]) * (m[k, jm2, i] * m[k, jm, i]),
                                 (q0 - qm) * mjm, (q[k, jp, i] - q0) * mj,
                                 dt * rdy_t[jm])
    t = bf * f_rj
    Bjm = Bjm + t if ok else Bjm
    t = bf * f_up
    Bj = Bj + t if ok & (vel <= 0.0) | ok & (vel != vel) else Bj
    t = 0.5 * vc * bf
    be = be + t if ok else be
    # face j+1
    vel = v_wgrid[k, jp, i]
    bf = b_eke_fn[k, jp, i]
    t = bf * _sb_fup(cosu[jp] * vel, (q[k, jp, i] - q[k, j, i]) * mj,
                     (q[k, jp2, i] - q[k, jp, i]) * (m[k, jp, i] * m[k, jp2, i]),
                     rdy_t[jp], dt)
    Bj = Bj + t if colx & (j + 1 < NY - 2) & (vel > 0.0) & (bf != 0.0) else Bj
    # face j-2
    vel = v_wgrid[k, jm2, i]
    bf = b_eke_fn[k, jm2, i]
    t = bf * _sb_fup(cosu[jm2] * vel, (q[k, j, i] - q[k, jm, i]) * mjm,
                     (q[k, jm, i] - q[k, jm2, i]) * (m[k, jm2, i] * m[k, jm, i]),
                     rdy_t[jm2], dt)
    Bjm = Bjm + t if colx & (j >= 3) & ((vel <= 0.0) | (vel != vel)) & (bf != 0.0) else Bjm
    t = mjm * Bjm - mj * Bj
    be = be + t if colx else be
    # ---------------- z: faces f = k-2 .. k+1 (0 <= f <= nz-2) of interior columns ------------------------
    # edge padding: face 0 has rjm = 0 and face nz-2 has rjp = 0 identically (no dependence)
    inner = rowx & colx
    t = m00 * m[kp, j, i]
    mk = t if k + 1 < nz else 0.0
    t = m[km, j, i] * m00
    mkm = t if k >= 1 else 0.0
    Bk = 0.0
    Bkm = 0.0
    # face k
    ok = inner & (k <= nz - 2)
    vel = w_wgrid[k, j, i]
    bf = b_eke_ft[k, j, i]
    cf = dt * eke_rdz[k]
    q0 = q00
    q1 = q[kp, j, i]
    rj = (q1 - q0) * mk
    t = (q0 - q[km, j, i]) * mkm
    rjm = t if k >= 1 else 0.0
    t = (q[kp2, j, i] - q1) * (m[kp, j, i] * m[kp2, j, i])
    rjp = t if k + 2 < nz else 0.0
    f_rj, f_up, G, cr = _sb_face(vel, vel, rjm, rj, rjp, cf)
    t = bf * f_rj
    Bk = Bk + t if ok else Bk
    t = bf * f_up
    Bkm = Bkm + t if ok & (vel > 0.0) else Bkm
    t = 0.5 * vel * bf
    be = be + t if ok else be
    t = _sb_gv(vel, cf, q0, q1, rj, G, cr) * bf
    o = b_w_wgrid[k, j, i]
    b_w_wgrid[k, j, i] = o + t if ok else o
    # face k-1
    ok = inner & (k >= 1)
    vel = w_wgrid[km, j, i]
    bf = b_eke_ft[km, j, i]
    qm = q[km, j, i]
    t = (qm - q[km2, j, i]) * (m[km2, j, i] * m[km, j, i])
    rjm = t if k >= 2 else 0.0
    t = (q[kp, j, i] - q0) * mk
    rjp = t if k + 1 < nz else 0.0
    f_rj, f_up, G, cr = _sb_face(vel, vel, rjm, (q0 - qm) * mkm, rjp, dt * eke_rdz[km])
    t = bf * f_rj
    Bkm = Bkm + t if ok else Bkm
    t = bf * f_up
    Bk = Bk + t if ok & (vel <= 0.0) | ok & (vel != vel) else Bk
    t = 0.5 * vel * bf
    be = be + t if ok else be
    # face k+1 reads D_k as rjm
    vel = w_wgrid[kp, j, i]
    bf = b_eke_ft[kp, j, i]
    rjp = (q[kp2, j, i] - q[kp, j, i]) * (m[kp, j, i] * m[kp2, j, i])
    t = bf * _sb_fup(vel, (q[kp, j, i] - q[k, j, i]) * mk, rjp, eke_rdz[kp], dt)
    Bk = Bk + t if inner & (k + 1 <= nz - 2) & (vel > 0.0) & (bf != 0.0) else Bk
    # face k-2 reads D_{k-1} as rjp
    vel = w_wgrid[km2, j, i]
    bf = b_eke_ft[km2, j, i]
    t = bf * _sb_fup(vel, (q[k, j, i] - q[km, j, i]) * mkm,
                     (q[km, j, i] - q[km2, j, i]) * (m[km2, j, i] * m[km, j, i]), eke_rdz[km2], dt)
    Bkm = Bkm + t if inner & (k >= 2) & ((vel <= 0.0) | (vel != vel)) & (bf != 0.0) else Bkm
    t = mkm * Bkm - mk * Bk
    be = be + t if inner else be
    b_eke[k, j, i] += be


# ===========================================================================
# advection tendency from the face fluxes (linear)
# ===========================================================================

@tangent_of(F.eke_advection)
def eke_advection_tl(i, j, k, d_deke, d_eke_fe, d_eke_fn, d_eke_ft, maskW, rdx_t, rdy_t, eke_rdz):
    """Tangent = the forward kernel applied to the tangent fluxes (linear)."""
    _eke_advection(i, j, k, d_deke, d_eke_fe, d_eke_fn, d_eke_ft, maskW, rdx_t, rdy_t, eke_rdz)


@adjoint_of(F.eke_advection)
def eke_advection_ad(i, j, k, b_eke_fe, b_eke_fn, b_eke_ft, b_deke, maskW, rdx_t, rdy_t, eke_rdz):
    """Adjoint of the flux divergence: fe[k, j, i] enters deke at (j, i) and (j, i+1), fn at (j, i) and
    (j+1, i), ft[k] at levels k (``-1/dzw_k``) and k+1 (``+1/dzw_{k+1}``; half cells at the top level),
    each only where deke is computed (the interior).

    Branch-free so that the i loop vectorises: neighbour indices are clamped, terms are formed and
    then kept or dropped by a select, in the order of the guarded form (bitwise the same result)."""
    nz, NY, NX = b_deke.shape
    inner = (i >= 2) & (i < NX - 2) & (j >= 2) & (j < NY - 2)
    ip = min(i + 1, NX - 1)
    jp = min(j + 1, NY - 1)
    kp = min(k + 1, nz - 1)
    bfe = 0.0
    bfn = 0.0
    bft = 0.0
    b = b_deke[k, j, i]
    t = maskW[k, j, i] * rdx_t[j, i] * b
    bfe = bfe - t if inner else bfe
    t = maskW[k, j, i] * rdy_t[j] * b
    bfn = bfn - t if inner else bfn
    t = b * eke_rdz[k]
    bft = bft - t if inner else bft
    t = b_deke[kp, j, i] * eke_rdz[kp]
    bft = bft + t if inner & (k + 1 < nz) else bft
    t = maskW[k, j, ip] * rdx_t[j, ip] * b_deke[k, j, ip]
    bfe = bfe + t if (i + 1 < NX) & (ip >= 2) & (ip < NX - 2) & (j >= 2) & (j < NY - 2) else bfe
    t = maskW[k, jp, i] * rdy_t[jp] * b_deke[k, jp, i]
    bfn = bfn + t if (j + 1 < NY) & (i >= 2) & (i < NX - 2) & (jp >= 2) & (jp < NY - 2) else bfn
    b_eke_fe[k, j, i] += bfe
    b_eke_fn[k, j, i] += bfn
    b_eke_ft[k, j, i] += bft

# ===========================================================================
# lateral diffusion and the Adams-Bashforth step
# ===========================================================================

@helper
def _diff_partials(K_l, K_r, e_l, e_r, w):
    """Partials of the diffusive face flux ``0.5 max(500, K_l + K_r) (e_r - e_l) w``:
    ``(g_e, g_K)`` with d/de_r = g_e = -d/de_l and d/dK_l = d/dK_r = g_K (0 unless the sum wins the max)."""
    s = K_l + K_r
    if s > 500.0:
        return 0.5 * s * w, 0.5 * (e_r - e_l) * w
    return 0.5 * 500.0 * w, 0.0


@tangent_of(F.eke_update)
def eke_update_tl(i, j, k, d_eke_new, d_eke_imp, d_eke, d_K_gm, d_deke_now, d_deke_old, eke, K_gm, maskU, maskV,
                  maskW, cosu, rdx_t, rdx_u, rdy_t, rdy_v, dt_tracer):
    """Tangent of the EKE update: ``d fe_f = g_e (de_{f+1} - de_f) + g_K (dK_f + dK_{f+1})`` on every face
    (:func:`_diff_partials`), then the forward's divergence and Adams-Bashforth combination."""
    r = d_eke_imp[k, j, i]
    if in_interior(i, j, eke.shape[2], eke.shape[1]):
        e = eke
        K = K_gm
        ge, gk = _diff_partials(K[k, j, i], K[k, j, i + 1], e[k, j, i], e[k, j, i + 1],
                                maskU[k, j, i] * rdx_u[j, i])
        fe1 = ge * (d_eke[k, j, i + 1] - d_eke[k, j, i]) + gk * (d_K_gm[k, j, i] + d_K_gm[k, j, i + 1])
        ge, gk = _diff_partials(K[k, j, i - 1], K[k, j, i], e[k, j, i - 1], e[k, j, i],
                                maskU[k, j, i - 1] * rdx_u[j, i - 1])
        fe0 = ge * (d_eke[k, j, i] - d_eke[k, j, i - 1]) + gk * (d_K_gm[k, j, i - 1] + d_K_gm[k, j, i])
        ge, gk = _diff_partials(K[k, j, i], K[k, j + 1, i], e[k, j, i], e[k, j + 1, i],
                                maskV[k, j, i] * cosu[j] * rdy_v[j])
        fn1 = ge * (d_eke[k, j + 1, i] - d_eke[k, j, i]) + gk * (d_K_gm[k, j, i] + d_K_gm[k, j + 1, i])
        ge, gk = _diff_partials(K[k, j - 1, i], K[k, j, i], e[k, j - 1, i], e[k, j, i],
                                maskV[k, j - 1, i] * cosu[j - 1] * rdy_v[j - 1])
        fn0 = ge * (d_eke[k, j, i] - d_eke[k, j - 1, i]) + gk * (d_K_gm[k, j - 1, i] + d_K_gm[k, j, i])
        r = r + dt_tracer * maskW[k, j, i] * ((fe1 - fe0) * rdx_t[j, i] + (fn1 - fn0) * rdy_t[j])
    d_eke_new[k, j, i] = r + dt_tracer * (_AB_NOW * d_deke_now[k, j, i] - _AB_OLD * d_deke_old[k, j, i])


@adjoint_of(F.eke_update)
def eke_update_ad(i, j, k, b_eke_imp, b_eke, b_K_gm, b_deke_now, b_deke_old, b_eke_new, eke, K_gm, maskU, maskV,
                  maskW, cosu, rdx_t, rdx_u, rdy_t, rdy_v, dt_tracer):
    """Adjoint of the EKE update.  The adjoint of the flux at face f is formed from the two cells it
    separates, ``b_fe_f = dt (c_f b_new_f - c_{f+1} b_new_{f+1})`` (c = maskW/(cost dxt), 0 outside the
    interior); p gathers from its faces f = i (as cell f) and f = i-1 (as cell f+1), likewise in y."""
    NY = eke.shape[1]
    NX = eke.shape[2]
    e = eke
    K = K_gm
    dt = dt_tracer
    bn = b_eke_new[k, j, i]
    b_eke_imp[k, j, i] += bn
    b_deke_now[k, j, i] += dt * _AB_NOW * bn
    b_deke_old[k, j, i] -= dt * _AB_OLD * bn
    # branch-free (selects on clamped, in-bounds neighbour indices, so that the i loop can be
    # vectorised): the same values as the guarded form.  Divergence weights dt c of the cells
    # p, p+-1 (0 outside the interior: no diffusion there)
    ip = min(i + 1, NX - 1)
    im = max(i - 1, 0)
    jp = min(j + 1, NY - 1)
    jm = max(j - 1, 0)
    row = (j >= 2) & (j < NY - 2)
    col = (i >= 2) & (i < NX - 2)
    e0 = e[k, j, i]
    k0 = K[k, j, i]
    cx = dt * maskW[k, j, i] * rdx_t[j, i] * bn if row & col else 0.0
    cy = dt * maskW[k, j, i] * rdy_t[j] * bn if row & col else 0.0
    # east face i (p is its west cell) and face i-1 (p is its east cell)
    t = dt * maskW[k, j, ip] * rdx_t[j, ip] * b_eke_new[k, j, ip]
    bfe = cx - t if row & (i + 1 >= 2) & (i + 1 < NX - 2) else cx
    ge_e, gk_e = _diff_partials(k0, K[k, j, ip], e0, e[k, j, ip], maskU[k, j, i] * rdx_u[j, i])
    t = dt * maskW[k, j, im] * rdx_t[j, im] * b_eke_new[k, j, im]
    bfw = -cx + t if row & (i - 1 >= 2) & (i - 1 < NX - 2) else -cx
    ge_w, gk_w = _diff_partials(K[k, j, im], k0, e[k, j, im], e0, maskU[k, j, im] * rdx_u[j, im])
    # north face j and face j-1
    t = dt * maskW[k, jp, i] * rdy_t[jp] * b_eke_new[k, jp, i]
    bfn = cy - t if col & (j + 1 >= 2) & (j + 1 < NY - 2) else cy
    ge_n, gk_n = _diff_partials(k0, K[k, jp, i], e0, e[k, jp, i], maskV[k, j, i] * cosu[j] * rdy_v[j])
    t = dt * maskW[k, jm, i] * rdy_t[jm] * b_eke_new[k, jm, i]
    bfs = -cy + t if col & (j - 1 >= 2) & (j - 1 < NY - 2) else -cy
    ge_s, gk_s = _diff_partials(K[k, jm, i], k0, e[k, jm, i], e0, maskV[k, jm, i] * cosu[jm] * rdy_v[jm])
    hasE = i + 1 < NX
    hasW = i >= 1
    hasN = j + 1 < NY
    hasS = j >= 1
    be = 0.0
    bk = 0.0
    be = be - ge_e * bfe if hasE else be
    bk = bk + gk_e * bfe if hasE else bk
    be = be + ge_w * bfw if hasW else be
    bk = bk + gk_w * bfw if hasW else bk
    be = be - ge_n * bfn if hasN else be
    bk = bk + gk_n * bfn if hasN else bk
    be = be + ge_s * bfs if hasS else be
    bk = bk + gk_s * bfs if hasS else bk
    b_eke[k, j, i] += be
    b_K_gm[k, j, i] += bk
