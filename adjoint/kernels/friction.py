"""Tangent-linear and adjoint kernels of :mod:`ocean_core.kernels.friction`.

Every harmonic face flux of the forward code has the form ``A K (q_1 - q_0)`` with a
viscosity value A (``A_h_t`` or ``A_h_z``), the differences of the velocity q across the
face and a passive coefficient K (cos factors, metrics, masks); its dissipation term
is ``A K (q_1 - q_0)^2``.  The tangents apply the product rule to these; the adjoints
form the adjoint of each face quantity inline from the adjoints of the points that read
it (as in :mod:`adjoint.kernels.momentum`) and multiply by its partial derivatives.

The viscosity and drag fields are 2-d controls written from 3-d kernels: their adjoint
at column (j, i) is summed over the levels by the single thread of level
``k = j nz // NY`` (:func:`_owner_level`; for the drag, by the thread of the bottom
level).  Each k-slab of the CPU ``prange`` thus owns a band of consecutive rows (balanced
work, cache reuse of neighbouring rows) and GPU warps (consecutive i) stay uniform.

The implicit vertical friction solves ``A x = q`` per U/V column; its adjoint needs
``A^T lambda = x_bar``.  The forward matrix is ``A = D^-1 S`` with ``D = diag(dzt)`` and S
symmetric, so ``A^T = D A D^-1`` and ``lambda = D A^-1 (D^-1 x_bar)``: the transposed solve
is a second right-hand side of the same Thomas sweep.  Only the scratch column
``scr_cp`` of the forward kernel is used (see :func:`_vf_col_ad` for the storage scheme).
"""

from ocean_core.kernels import friction as F
from ocean_core.kernels.framework import helper
from ocean_core.kernels.momentum import in_interior

from .pairing import adjoint_of, tangent_of

# forward body reused by the tangent of the linear kernel dissipation_to_tgrid
_dissipation_to_tgrid = F.dissipation_to_tgrid.body


@helper
def _owner_level(j, nz, nj):
    """The level whose thread sums a 2-d adjoint over the column at row j: ``j nz // nj``, so that
    each k-slab owns a band of consecutive rows (balanced CPU ``prange`` chunks with cache reuse
    of the neighbouring rows; uniform GPU warps)."""
    return (j * nz) // nj


# ===========================================================================
# implicit vertical friction (column kernel)
# ===========================================================================

@helper
def _vf_delta(k, j, i, j2, i2, kappaM, mask, dzw, dt):
    """``delta[k] = dt/dzw 0.5 (kappaM[k, j, i] + kappaM[k, j2, i2]) m[k+1] m[k]`` (0 for k < 0 or
    k >= nz-1) of the U/V column (j, i) whose second T column is (j2, i2); linear in kappaM."""
    if k < 0 or k >= kappaM.shape[0] - 1:
        return 0.0
    return dt / dzw[k] * (0.5 * (kappaM[k, j, i] + kappaM[k, j2, i2])) * mask[k + 1, j, i] * mask[k, j, i]


@helper
def _vf_dd(k, j, i, j2, i2, kappaM, mask, dzw, dt):
    """``(delta[k], d delta[k] / d kappaM)`` (k < nz-1): the value as :func:`_vf_delta`, and the
    coefficient of each of the two kappaM values."""
    s = dt / dzw[k]
    return s * (0.5 * (kappaM[k, j, i] + kappaM[k, j2, i2])) * mask[k + 1, j, i] * mask[k, j, i], \
        s * 0.5 * mask[k + 1, j, i] * mask[k, j, i]


@helper
def _vf_row(k, k0, dl, dk, dzt):
    """Row k of the matrix from ``dl = delta[k-1]``, ``dk = delta[k]``: (a, b, c, 1/dzt[k]).
    The coupling to level k0-1 is absent (a = 0 at k0); ``delta[nz-1] = 0``."""
    if k == k0:
        dl = 0.0
    r = 1.0 / dzt[k]
    return -dl * r, 1.0 + (dl + dk) * r, -dk * r, r


@helper
def _vf_advance(k, k0, j, i, j2, i2, dl, cp, dp, dq, q, g, kappaM, mask, dzt, dzw, dt, rdt):
    """One step of the Thomas forward sweep with two right-hand sides, ``q`` and ``g / (dt dzt)``
    (``rdt = 1 / dt``): from the state (cp, dp, dq) of level k-1 (zeros at k0) and
    ``dl = delta[k-1]`` return the state of level k and ``delta[k]``."""
    dk = _vf_delta(k, j, i, j2, i2, kappaM, mask, dzw, dt)
    a, b, c, rz = _vf_row(k, k0, dl, dk, dzt)
    r = 1.0 / (b - a * cp)
    return c * r, (q[k, j, i] - a * dp) * r, (g[k, j, i] * rdt * rz - a * dq) * r, dk


@helper
def _vf_col_tl(j, i, j2, i2, d_out, scr, d_q, d_kappaM, q, kappaM, mask, kbot, dzt, dzw, dt):
    """Tangent of one U/V column.  With x = A^-1 q and y = dx - dq (so out = y / dt):
    ``A y = -(A - I) dq - dA x``, whose row k is ``-(Phi_k - Phi_{k-1}) / dzt_k`` with the interface
    terms ``Phi_m = delta_m (dq_m - dq_{m+1}) + ddelta_m (x_m - x_{m+1})`` (Phi_{k0-1} = Phi_{nz-1} = 0).
    Solving for y directly avoids the cancellation in dx - dq.

    Storage: the primal cp in ``scr``, the primal d' then x in ``d_out``, which the tangent
    sweep overwrites level by level (Phi_{k-1} is kept in a register).
    """
    nz = q.shape[0]
    k0 = max(kbot[j, i], kbot[j2, i2]) - 1
    if k0 < 0:
        return
    # primal solve
    dl = 0.0
    cp = 0.0
    dp = 0.0
    for k in range(k0, nz):
        dk = _vf_delta(k, j, i, j2, i2, kappaM, mask, dzw, dt)
        a, b, c, rz = _vf_row(k, k0, dl, dk, dzt)
        r = 1.0 / (b - a * cp)
        cp = c * r
        dp = (q[k, j, i] - a * dp) * r
        scr[k, j, i] = cp
        d_out[k, j, i] = dp
        dl = dk
    for k in range(nz - 2, k0 - 1, -1):
        d_out[k, j, i] = d_out[k, j, i] - scr[k, j, i] * d_out[k + 1, j, i]
    # tangent forward sweep, same matrix
    dl = 0.0
    phi0 = 0.0   # Phi_{k-1}
    dp = 0.0
    for k in range(k0, nz):
        dk = _vf_delta(k, j, i, j2, i2, kappaM, mask, dzw, dt)
        a, b, c, rz = _vf_row(k, k0, dl, dk, dzt)
        phi = 0.0
        if k < nz - 1:
            phi = (dk * (d_q[k, j, i] - d_q[k + 1, j, i])
                   + _vf_delta(k, j, i, j2, i2, d_kappaM, mask, dzw, dt) * (d_out[k, j, i] - d_out[k + 1, j, i]))
        cpm = scr[k - 1, j, i] if k > k0 else 0.0
        dp = (-(phi - phi0) * rz - a * dp) / (b - a * cpm)
        d_out[k, j, i] = dp
        phi0 = phi
        dl = dk
    # tangent back substitution and the tendency y / dt
    for k in range(nz - 2, k0 - 1, -1):
        d_out[k, j, i] = d_out[k, j, i] - scr[k, j, i] * d_out[k + 1, j, i]
    for k in range(k0, nz):
        d_out[k, j, i] = d_out[k, j, i] / dt


@tangent_of(F.implicit_vert_friction, space="column")
def implicit_vert_friction_tl(i, j, d_du_mix_v, d_dv_mix_v, scr_cp, d_u, d_v, d_kappaM, u, v, kappaM, maskU, maskV,
                              kbot, dzt, dzw, dt_mom):
    """Tangent of the implicit vertical friction: per U column (j, i) [T columns (j, i), (j, i+1)]
    and V column (j, i) [T columns (j, i), (j+1, i)], ``d_du_mix_v = (dx - du) / dt`` with
    ``dx = A^-1 (du - dA x)`` on the wet levels (x = A^-1 u recomputed; dx - du is solved for
    directly, see :func:`_vf_col_tl`), zero elsewhere."""
    nz = u.shape[0]
    NY = u.shape[1]
    NX = u.shape[2]
    for k in range(nz):
        d_du_mix_v[k, j, i] = 0.0
        d_dv_mix_v[k, j, i] = 0.0
    if i < 1 or i >= NX - 2 or j < 1 or j >= NY - 2:
        return
    _vf_col_tl(j, i, j, i + 1, d_du_mix_v, scr_cp, d_u, d_kappaM, u, kappaM, maskU, kbot, dzt, dzw, dt_mom)
    _vf_col_tl(j, i, j + 1, i, d_dv_mix_v, scr_cp, d_v, d_kappaM, v, kappaM, maskV, kbot, dzt, dzw, dt_mom)


@helper
def _vf_col_ad(j, i, j2, i2, jt, it, own, b_q, b_kappaM, scr, b_out, q, kappaM, mask, kbot, dzt, dzw, dt):
    """Adjoint of one U/V column (j, i) with T columns (j, i), (j2, i2), gathered at T column (jt, it).

    Transpose of :func:`_vf_col_tl`: with ``g = b_out / dt``, ``nu = A^-T g`` and
    ``mu = nu / dzt = A^-1 (g / dzt)`` (``A^T = D A D^-1``):

    * ``b_q[k, j, i] += Phi_{k-1} - Phi_k``, ``Phi_m = delta_m (mu_m - mu_{m+1})`` (i.e.
      ``-(A - I)^T nu``), on the wet levels (only if ``own``);
    * ``b_delta[k] = -(x_k - x_{k+1}) (mu_k - mu_{k+1})`` for k0 <= k < nz-1, and
      ``b_kappaM[k, jt, it] += b_delta[k] d delta[k] / d kappaM`` ((jt, it) is (j, i) or (j2, i2)).

    Storage: x and mu share the factorisation (cp); the forward sweep stores the state
    (cp, dp, dq) of every third level (counted from the top) in three consecutive slots of
    ``scr[:, jt, it]``; the back substitution rebuilds the two levels above each stored
    base (keeping the middle one in registers), about 2/3 of a sweep more.
    """
    nz = q.shape[0]
    k0 = max(kbot[j, i], kbot[j2, i2]) - 1
    if k0 < 0:
        return
    rdt = 1.0 / dt
    # forward sweep (levels k0 .. nz-1), storing the bases
    dl = 0.0
    cp = 0.0
    dp = 0.0
    dq = 0.0
    for k in range(k0, nz):
        cp, dp, dq, dl = _vf_advance(k, k0, j, i, j2, i2, dl, cp, dp, dq, q, b_out, kappaM, mask, dzt, dzw, dt, rdt)
        if (nz - 1 - k) % 3 == 2:
            scr[k, jt, it] = cp
            scr[k + 1, jt, it] = dp
            scr[k + 2, jt, it] = dq
    # back substitution from the top, rebuilding states between the bases
    x1 = 0.0      # x_{k+1}
    m1 = 0.0      # mu_{k+1}
    phi1 = 0.0    # Phi_{k+1}
    ccp = 0.0     # cached state of the middle level of a group
    cdp = 0.0
    cdq = 0.0
    for k in range(nz - 1, k0 - 1, -1):
        off = (nz - 1 - k) % 3
        if off == 2:  # stored base
            cp = scr[k, jt, it]
            dp = scr[k + 1, jt, it]
            dq = scr[k + 2, jt, it]
        elif off == 1:  # middle level, rebuilt with the level above
            cp = ccp
            dp = cdp
            dq = cdq
        else:  # top of a group: rebuild levels k-1 and k from the base k-2 (or from k0)
            if k - 2 >= k0:
                dl = _vf_delta(k - 2, j, i, j2, i2, kappaM, mask, dzw, dt)
                ccp, cdp, cdq, dl = _vf_advance(k - 1, k0, j, i, j2, i2, dl, scr[k - 2, jt, it], scr[k - 1, jt, it],
                                                scr[k, jt, it], q, b_out, kappaM, mask, dzt, dzw, dt, rdt)
            elif k - 1 >= k0:
                ccp, cdp, cdq, dl = _vf_advance(k0, k0, j, i, j2, i2, 0.0, 0.0, 0.0, 0.0, q, b_out, kappaM, mask,
                                                dzt, dzw, dt, rdt)
            else:
                ccp = 0.0
                cdp = 0.0
                cdq = 0.0
                dl = 0.0
            cp, dp, dq, dk = _vf_advance(k, k0, j, i, j2, i2, dl, ccp, cdp, cdq, q, b_out, kappaM, mask, dzt, dzw,
                                         dt, rdt)
        x = dp - cp * x1
        m = dq - cp * m1
        if k < nz - 1:
            dk, ck = _vf_dd(k, j, i, j2, i2, kappaM, mask, dzw, dt)
            phi = dk * (m - m1)
            if own:
                b_q[k + 1, j, i] += phi - phi1
            phi1 = phi
            b_kappaM[k, jt, it] += -(x - x1) * (m - m1) * ck
        x1 = x
        m1 = m
    if own:
        b_q[k0, j, i] -= phi1


@helper
def _vf_k0(ok, kb1, kb2, nz):
    """Bottom wet level ``max(kbot_1, kbot_2) - 1`` of a U/V column from the kbot values of its two
    T columns, or nz if the column is not solved (``ok`` false: outside the kernel's range, or land)."""
    k0 = max(kb1, kb2) - 1
    return k0 if ok and k0 >= 0 else nz


@adjoint_of(F.implicit_vert_friction, space="column")
def implicit_vert_friction_ad(i, j, b_u, b_v, b_kappaM, scr_cp, b_du_mix_v, b_dv_mix_v, u, v, kappaM, maskU, maskV,
                              kbot, dzt, dzw, dt_mom):
    """Adjoint of the implicit vertical friction at T column (j, i): b_u / b_v of the U / V column
    (j, i) and b_kappaM gathered from the four columns that average kappaM[:, j, i] --
    U columns (j, i) and (j, i-1), V columns (j, i) and (j-1, i); the two neighbouring columns
    are solved again by this thread (see :func:`_vf_col_ad`).

    Exact fast path (kappaM_0 = 0, the common case): if kappaM vanishes on the five T columns
    (j, i), (j, i+-1), (j+-1, i) at every level k < nz-1, every ``delta_k`` of the four columns is 0,
    A = I, x = q and ``mu = b_out / (dt dzt)``: the b_u, b_v contributions vanish exactly and
    ``b_kappaM[k] += -sum_columns 0.5 m_{k+1} m_k (q_k - q_{k+1}) (b_k / dzt_k - b_{k+1} / dzt_{k+1}) / dzw_k``
    (levels k0 <= k of each column), one pass over the levels with the metric reciprocals shared."""
    nz = u.shape[0]
    NY = u.shape[1]
    NX = u.shape[2]
    jok = j >= 1 and j < NY - 2
    iok = i >= 1 and i < NX - 2
    ie = min(i + 1, NX - 1)     # clamped neighbours (min/max keep the index type signed)
    iw = max(i - 1, 0)
    jn = min(j + 1, NY - 1)
    js = max(j - 1, 0)
    # bottom levels of the four columns (nz: column not solved)
    kb = kbot[j, i]
    ku = _vf_k0(iok and jok, kb, kbot[j, ie], nz)
    kv = _vf_k0(iok and jok, kb, kbot[jn, i], nz)
    kw = _vf_k0(jok and i - 1 >= 1 and i - 1 < NX - 2, kbot[j, iw], kb, nz)
    ks = _vf_k0(iok and j - 1 >= 1 and j - 1 < NY - 2, kbot[js, i], kb, nz)
    kmin = min(min(ku, kv), min(kw, ks))
    if kmin >= nz:
        return
    inviscid = True
    for k in range(kmin, nz - 1):
        if (kappaM[k, j, i] != 0.0 or kappaM[k, j, ie] != 0.0 or kappaM[k, j, iw] != 0.0
                or kappaM[k, jn, i] != 0.0 or kappaM[k, js, i] != 0.0):
            inviscid = False
            break
    if inviscid:
        rz1 = 1.0 / dzt[kmin]
        for k in range(kmin, nz - 1):
            rz0 = rz1
            rz1 = 1.0 / dzt[k + 1]
            acc = 0.0
            if k >= ku:
                acc += (maskU[k + 1, j, i] * maskU[k, j, i] * (u[k, j, i] - u[k + 1, j, i])
                        * (b_du_mix_v[k, j, i] * rz0 - b_du_mix_v[k + 1, j, i] * rz1))
            if k >= kw:
                acc += (maskU[k + 1, j, i - 1] * maskU[k, j, i - 1] * (u[k, j, i - 1] - u[k + 1, j, i - 1])
                        * (b_du_mix_v[k, j, i - 1] * rz0 - b_du_mix_v[k + 1, j, i - 1] * rz1))
            if k >= kv:
                acc += (maskV[k + 1, j, i] * maskV[k, j, i] * (v[k, j, i] - v[k + 1, j, i])
                        * (b_dv_mix_v[k, j, i] * rz0 - b_dv_mix_v[k + 1, j, i] * rz1))
            if k >= ks:
                acc += (maskV[k + 1, j - 1, i] * maskV[k, j - 1, i] * (v[k, j - 1, i] - v[k + 1, j - 1, i])
                        * (b_dv_mix_v[k, j - 1, i] * rz0 - b_dv_mix_v[k + 1, j - 1, i] * rz1))
            b_kappaM[k, j, i] -= 0.5 / dzw[k] * acc
        return
    if ku < nz:
        _vf_col_ad(j, i, j, i + 1, j, i, True, b_u, b_kappaM, scr_cp, b_du_mix_v, u, kappaM, maskU, kbot, dzt, dzw,
                   dt_mom)
    if kv < nz:
        _vf_col_ad(j, i, j + 1, i, j, i, True, b_v, b_kappaM, scr_cp, b_dv_mix_v, v, kappaM, maskV, kbot, dzt, dzw,
                   dt_mom)
    # neighbouring columns: their second T column is (j, i)
    if kw < nz:
        _vf_col_ad(j, i - 1, j, i, j, i, False, b_u, b_kappaM, scr_cp, b_du_mix_v, u, kappaM, maskU, kbot, dzt, dzw,
                   dt_mom)
    if ks < nz:
        _vf_col_ad(j - 1, i, j, i, j, i, False, b_v, b_kappaM, scr_cp, b_dv_mix_v, v, kappaM, maskV, kbot, dzt, dzw,
                   dt_mom)


# ===========================================================================
# harmonic lateral friction and bottom drag
# ===========================================================================

# flux coefficients K (fluxes are A K (q_1 - q_0)); 0 for faces the forward treats as absent

@helper
def _kfe_u(k, j, f, maskU, fric_ce_u):
    """u east flux at T point (j, f+1): ``c_e mU[f+1] mU[f]``; times A_h_t[j, f+1]."""
    if f < 0 or f >= maskU.shape[2] - 1:
        return 0.0
    return fric_ce_u[j, f] * maskU[k, j, f + 1] * maskU[k, j, f]


@helper
def _kfn_u(k, f, i, maskU, fric_cn_u):
    """u north flux at corner (f, i): ``c_n mU[f+1] mU[f]``; times A_h_z[f, i]."""
    if f < 0 or f >= maskU.shape[1] - 1:
        return 0.0
    return fric_cn_u[f] * maskU[k, f + 1, i] * maskU[k, f, i]


@helper
def _kfe_v(k, j, f, maskV, fric_ce_v):
    """v east flux at corner (j, f): ``c_e mV[f+1] mV[f]``; times A_h_z[j, f]."""
    if f < 0 or f >= maskV.shape[2] - 1:
        return 0.0
    return fric_ce_v[j, f] * maskV[k, j, f + 1] * maskV[k, j, f]


@helper
def _kfn_v(k, f, i, maskV, fric_cn_v):
    """v north flux at T point (f+1, i): ``c_n mV[f] mV[f+1]``; times A_h_t[f+1, i]."""
    if f < 0 or f >= maskV.shape[1] - 1:
        return 0.0
    return fric_cn_v[f] * maskV[k, f, i] * maskV[k, f + 1, i]


@helper
def _tl_flux(A, dA, K, dq, d_dq):
    """Tangent of the flux ``A K dq``."""
    return K * (dA * dq + A * d_dq)


# the adjoint of a face flux is the difference of the weighted adjoints ``m b / metric`` of
# the divergence at the two points it separates (flux f enters point f with +, f+1 with -)

@helper
def _wb(k, j, i, b, mask, r):
    """Weighted adjoint ``mask b r`` (r: reciprocal metric) of the friction divergence at (k, j, i):
    0 outside the interior."""
    if not in_interior(i, j, b.shape[2], b.shape[1]):
        return 0.0
    return mask[k, j, i] * b[k, j, i] * r


@helper
def _rw(i, j, ni, nj, r):
    """Weight r (a reciprocal metric) at interior points, 0 elsewhere."""
    if not in_interior(i, j, ni, nj):
        return 0.0
    return r


@tangent_of(F.lateral_friction)
def lateral_friction_tl(i, j, k, d_du_mix, d_dv_mix, d_du_mix_v, d_dv_mix_v, d_u, d_v, d_A_h_t, d_A_h_z, d_r_bot_u,
                        d_r_bot_v, u, v, A_h_t, A_h_z, r_bot_u, r_bot_v, maskU, maskV, kbot, fric_ce_u,
                        fric_cn_u, fric_ce_v, fric_cn_v, fric_rx_u, fric_ry_u, fric_rx_v, fric_ry_v):
    """Tangent of the friction tendency: ``d_du_mix = d_du_mix_v + mU [(dfe_i - dfe_{i-1}) / (cost dxu)
    + (dfn_j - dfn_{j-1}) / (cost dyt)] - mU (dr u + r du) [bottom cell]`` with ``dF = K (dA dq + A d(dq))``."""
    if not in_interior(i, j, u.shape[2], u.shape[1]):
        d_du_mix[k, j, i] = 0.0
        d_dv_mix[k, j, i] = 0.0
        return
    # u: east faces i, i-1 (A_h_t at T columns i+1, i); north faces j, j-1 (A_h_z at corners)
    fe1 = _tl_flux(A_h_t[j, i + 1], d_A_h_t[j, i + 1], _kfe_u(k, j, i, maskU, fric_ce_u),
                   u[k, j, i + 1] - u[k, j, i], d_u[k, j, i + 1] - d_u[k, j, i])
    fe0 = _tl_flux(A_h_t[j, i], d_A_h_t[j, i], _kfe_u(k, j, i - 1, maskU, fric_ce_u),
                   u[k, j, i] - u[k, j, i - 1], d_u[k, j, i] - d_u[k, j, i - 1])
    fn1 = _tl_flux(A_h_z[j, i], d_A_h_z[j, i], _kfn_u(k, j, i, maskU, fric_cn_u),
                   u[k, j + 1, i] - u[k, j, i], d_u[k, j + 1, i] - d_u[k, j, i])
    fn0 = _tl_flux(A_h_z[j - 1, i], d_A_h_z[j - 1, i], _kfn_u(k, j - 1, i, maskU, fric_cn_u),
                   u[k, j, i] - u[k, j - 1, i], d_u[k, j, i] - d_u[k, j - 1, i])
    a = d_du_mix_v[k, j, i] + maskU[k, j, i] * ((fe1 - fe0) * fric_rx_u[j, i] + (fn1 - fn0) * fric_ry_u[j])
    if k == F.bottom_level_u(j, i, kbot):
        a -= maskU[k, j, i] * (d_r_bot_u[j, i] * u[k, j, i] + r_bot_u[j, i] * d_u[k, j, i])
    d_du_mix[k, j, i] = a
    # v: east faces at corners (A_h_z), north faces at T rows j+1, j (A_h_t)
    fe1 = _tl_flux(A_h_z[j, i], d_A_h_z[j, i], _kfe_v(k, j, i, maskV, fric_ce_v),
                   v[k, j, i + 1] - v[k, j, i], d_v[k, j, i + 1] - d_v[k, j, i])
    fe0 = _tl_flux(A_h_z[j, i - 1], d_A_h_z[j, i - 1], _kfe_v(k, j, i - 1, maskV, fric_ce_v),
                   v[k, j, i] - v[k, j, i - 1], d_v[k, j, i] - d_v[k, j, i - 1])
    fn1 = _tl_flux(A_h_t[j + 1, i], d_A_h_t[j + 1, i], _kfn_v(k, j, i, maskV, fric_cn_v),
                   v[k, j + 1, i] - v[k, j, i], d_v[k, j + 1, i] - d_v[k, j, i])
    fn0 = _tl_flux(A_h_t[j, i], d_A_h_t[j, i], _kfn_v(k, j - 1, i, maskV, fric_cn_v),
                   v[k, j, i] - v[k, j - 1, i], d_v[k, j, i] - d_v[k, j - 1, i])
    b = d_dv_mix_v[k, j, i] + maskV[k, j, i] * ((fe1 - fe0) * fric_rx_v[j, i] + (fn1 - fn0) * fric_ry_v[j])
    if k == F.bottom_level_v(j, i, kbot):
        b -= maskV[k, j, i] * (d_r_bot_v[j, i] * v[k, j, i] + r_bot_v[j, i] * d_v[k, j, i])
    d_dv_mix[k, j, i] = b


@adjoint_of(F.lateral_friction)
def lateral_friction_ad(i, j, k, b_du_mix_v, b_dv_mix_v, b_u, b_v, b_A_h_t, b_A_h_z, b_r_bot_u, b_r_bot_v, b_du_mix,
                        b_dv_mix, u, v, A_h_t, A_h_z, r_bot_u, r_bot_v, maskU, maskV, kbot, fric_ce_u,
                        fric_cn_u, fric_ce_v, fric_cn_v, fric_rx_u, fric_ry_u, fric_rx_v, fric_ry_v):
    """Adjoint of the friction tendency, gathered at p = (k, j, i).  With the weighted adjoints
    ``ax_q = mU b_du_mix / (cost dxu)``, ``ay_q = mU b_du_mix / (cost dyt)`` at interior U points q
    (0 elsewhere), the east flux f has adjoint ``ax_f - ax_{f+1}`` and the north flux ``ay_f - ay_{f+1}``:

    * ``b_du_mix_v += b_du_mix`` (interior);
    * ``b_u += -A K (ax_i - ax_{i+1}) + A K (ax_{i-1} - ax_i)`` + the same for the north faces
      j, j-1, and ``- mU r b_du_mix`` at the bottom cell (b_v likewise, V metrics);
    * ``b_A_h_t[j, i] += sum_k K (q_1 - q_0) b_flux`` over the u east face i-1 and the v north
      face j-1, ``b_A_h_z[j, i]`` over the u north face and v east face at corner (j, i):
      summed over the column by the thread of level :func:`_owner_level`;
    * ``b_r_bot_u[j, i] += -mU u b_du_mix`` at the bottom level, by that level's thread.
    """
    nz, NY, NX = u.shape
    inner = in_interior(i, j, NX, NY)
    hasE = i + 1 < NX
    hasW = i >= 1
    hasN = j + 1 < NY
    hasS = j >= 1
    if inner:
        b_du_mix_v[k, j, i] += b_du_mix[k, j, i]
        b_dv_mix_v[k, j, i] += b_dv_mix[k, j, i]
    # --- u: d flux / d u_p = -A K for the faces east/north of p, +A K for west/south ---
    ax0 = _wb(k, j, i, b_du_mix, maskU, fric_rx_u[j, i])
    ay0 = _wb(k, j, i, b_du_mix, maskU, fric_ry_u[j])
    bu = 0.0
    if hasE:
        bu -= (A_h_t[j, i + 1] * _kfe_u(k, j, i, maskU, fric_ce_u)
               * (ax0 - _wb(k, j, i + 1, b_du_mix, maskU, fric_rx_u[j, i + 1])))
    if hasW:
        bu += (A_h_t[j, i] * _kfe_u(k, j, i - 1, maskU, fric_ce_u)
               * (_wb(k, j, i - 1, b_du_mix, maskU, fric_rx_u[j, i - 1]) - ax0))
    if hasN:
        bu -= (A_h_z[j, i] * _kfn_u(k, j, i, maskU, fric_cn_u)
               * (ay0 - _wb(k, j + 1, i, b_du_mix, maskU, fric_ry_u[j + 1])))
    if hasS:
        bu += (A_h_z[j - 1, i] * _kfn_u(k, j - 1, i, maskU, fric_cn_u)
               * (_wb(k, j - 1, i, b_du_mix, maskU, fric_ry_u[j - 1]) - ay0))
    # --- v: weights mV / (cosu dxt) and mV / (dyu cosu) ---
    ax0 = _wb(k, j, i, b_dv_mix, maskV, fric_rx_v[j, i])
    ay0 = _wb(k, j, i, b_dv_mix, maskV, fric_ry_v[j])
    bv = 0.0
    if hasE:
        bv -= (A_h_z[j, i] * _kfe_v(k, j, i, maskV, fric_ce_v)
               * (ax0 - _wb(k, j, i + 1, b_dv_mix, maskV, fric_rx_v[j, i + 1])))
    if hasW:
        bv += (A_h_z[j, i - 1] * _kfe_v(k, j, i - 1, maskV, fric_ce_v)
               * (_wb(k, j, i - 1, b_dv_mix, maskV, fric_rx_v[j, i - 1]) - ax0))
    if hasN:
        bv -= (A_h_t[j + 1, i] * _kfn_v(k, j, i, maskV, fric_cn_v)
               * (ay0 - _wb(k, j + 1, i, b_dv_mix, maskV, fric_ry_v[j + 1])))
    if hasS:
        bv += (A_h_t[j, i] * _kfn_v(k, j - 1, i, maskV, fric_cn_v)
               * (_wb(k, j - 1, i, b_dv_mix, maskV, fric_ry_v[j - 1]) - ay0))
    # --- bottom drag (bottom cell of interior columns; its thread also owns b_r_bot) ---
    if inner:
        if k == F.bottom_level_u(j, i, kbot):
            bu -= maskU[k, j, i] * r_bot_u[j, i] * b_du_mix[k, j, i]
            b_r_bot_u[j, i] += -maskU[k, j, i] * u[k, j, i] * b_du_mix[k, j, i]
        if k == F.bottom_level_v(j, i, kbot):
            bv -= maskV[k, j, i] * r_bot_v[j, i] * b_dv_mix[k, j, i]
            b_r_bot_v[j, i] += -maskV[k, j, i] * v[k, j, i] * b_dv_mix[k, j, i]
    b_u[k, j, i] += bu
    b_v[k, j, i] += bv
    # --- viscosity fields, one thread per column (one loop over the levels).  The metric factors
    #     of the fluxes and weights (0 at non-interior points) are formed outside the loop; a face
    #     the column does not have (array edge) gets zero factors and a clamped index ---
    if k == _owner_level(j, nz, NY):
        im = i - 1 if hasW else i
        ip = i + 1 if hasE else i
        jm = j - 1 if hasS else j
        jp = j + 1 if hasN else j
        # A_h_t[j, i]: u east face i-1 and v north face j-1; A_h_z[j, i]: u north face j, v east face i
        keu = fric_ce_u[j, i - 1] if hasW else 0.0
        knv = fric_cn_v[j - 1] if hasS else 0.0
        knu = fric_cn_u[j] if hasN else 0.0
        kev = fric_ce_v[j, i] if hasE else 0.0
        rxu0 = _rw(im, j, NX, NY, fric_rx_u[j, im])
        rxu1 = _rw(i, j, NX, NY, fric_rx_u[j, i])
        ryu0 = _rw(i, j, NX, NY, fric_ry_u[j])
        ryu1 = _rw(i, jp, NX, NY, fric_ry_u[jp])
        rxv0 = _rw(i, j, NX, NY, fric_rx_v[j, i])
        rxv1 = _rw(ip, j, NX, NY, fric_rx_v[j, ip])
        ryv0 = _rw(i, jm, NX, NY, fric_ry_v[jm])
        ryv1 = _rw(i, j, NX, NY, fric_ry_v[j])
        st = 0.0
        sz = 0.0
        for kk in range(nz):
            mu = maskU[kk, j, i]
            mv = maskV[kk, j, i]
            bu0 = mu * b_du_mix[kk, j, i]
            bv0 = mv * b_dv_mix[kk, j, i]
            mw = maskU[kk, j, im]
            st += keu * mu * mw * (u[kk, j, i] - u[kk, j, im]) * (rxu0 * mw * b_du_mix[kk, j, im] - rxu1 * bu0)
            ms = maskV[kk, jm, i]
            st += knv * ms * mv * (v[kk, j, i] - v[kk, jm, i]) * (ryv0 * ms * b_dv_mix[kk, jm, i] - ryv1 * bv0)
            mn = maskU[kk, jp, i]
            sz += knu * mn * mu * (u[kk, jp, i] - u[kk, j, i]) * (ryu0 * bu0 - ryu1 * mn * b_du_mix[kk, jp, i])
            me = maskV[kk, j, ip]
            sz += kev * me * mv * (v[kk, j, ip] - v[kk, j, i]) * (rxv0 * bv0 - rxv1 * me * b_dv_mix[kk, j, ip])
        b_A_h_t[j, i] += st
        b_A_h_z[j, i] += sz


# ===========================================================================
# dissipation of lateral friction
# ===========================================================================

# the adjoint of a face term T = A K dq^2 of diss_u / diss_v is the sum of the weighted adjoints
# ``0.5 b_diss / metric`` at the two points beside the face (0 outside the kernel's domain)

@helper
def _in_du(i, j, ni, nj):
    """The points where friction_dissipation computes diss_u."""
    return i >= 1 and i < ni - 2 and j >= 2 and j < nj - 2


@helper
def _in_dv(i, j, ni, nj):
    """The points where friction_dissipation computes diss_v."""
    return i >= 2 and i < ni - 2 and j >= 1 and j < nj - 2


@helper
def _wdu(k, j, i, b, r):
    """Weighted adjoint ``0.5 b_diss_u r`` at (k, j, i), 0 outside the diss_u domain."""
    if not _in_du(i, j, b.shape[2], b.shape[1]):
        return 0.0
    return 0.5 * b[k, j, i] * r


@helper
def _wdv(k, j, i, b, r):
    """Weighted adjoint ``0.5 b_diss_v r`` at (k, j, i), 0 outside the diss_v domain."""
    if not _in_dv(i, j, b.shape[2], b.shape[1]):
        return 0.0
    return 0.5 * b[k, j, i] * r


@helper
def _rdu(i, j, ni, nj, r):
    """Weight ``0.5 r`` inside the diss_u domain, 0 elsewhere."""
    if not _in_du(i, j, ni, nj):
        return 0.0
    return 0.5 * r


@helper
def _rdv(i, j, ni, nj, r):
    """Weight ``0.5 r`` inside the diss_v domain, 0 elsewhere."""
    if not _in_dv(i, j, ni, nj):
        return 0.0
    return 0.5 * r


@helper
def _tl_sq(A, dA, K, dq, d_dq):
    """Tangent of the face term ``dq (A K dq)``."""
    return K * dq * (dA * dq + 2.0 * A * d_dq)


@tangent_of(F.friction_dissipation)
def friction_dissipation_tl(i, j, k, d_diss_u, d_diss_v, d_u, d_v, d_A_h_t, d_A_h_z, u, v, A_h_t, A_h_z, maskU,
                            maskV, fric_ce_u, fric_cn_u, fric_ce_v, fric_cn_v, fric_rx_u, fric_ry_u, fric_rx_v,
                            fric_ry_v):
    """Tangent of ``diss_u = 0.5 (T_e,i + T_e,i-1) / (cost dxu) + 0.5 (T_n,j + T_n,j-1) / (cost dyt)``
    with face terms ``T = A K dq^2``: ``dT = K dq (dA dq + 2 A d(dq))``; diss_v likewise."""
    NY = u.shape[1]
    NX = u.shape[2]
    if i >= 1 and i < NX - 2 and j >= 2 and j < NY - 2:
        e1 = _tl_sq(A_h_t[j, i + 1], d_A_h_t[j, i + 1], _kfe_u(k, j, i, maskU, fric_ce_u),
                    u[k, j, i + 1] - u[k, j, i], d_u[k, j, i + 1] - d_u[k, j, i])
        e0 = _tl_sq(A_h_t[j, i], d_A_h_t[j, i], _kfe_u(k, j, i - 1, maskU, fric_ce_u),
                    u[k, j, i] - u[k, j, i - 1], d_u[k, j, i] - d_u[k, j, i - 1])
        n1 = _tl_sq(A_h_z[j, i], d_A_h_z[j, i], _kfn_u(k, j, i, maskU, fric_cn_u),
                    u[k, j + 1, i] - u[k, j, i], d_u[k, j + 1, i] - d_u[k, j, i])
        n0 = _tl_sq(A_h_z[j - 1, i], d_A_h_z[j - 1, i], _kfn_u(k, j - 1, i, maskU, fric_cn_u),
                    u[k, j, i] - u[k, j - 1, i], d_u[k, j, i] - d_u[k, j - 1, i])
        d_diss_u[k, j, i] = 0.5 * (e1 + e0) * fric_rx_u[j, i] + 0.5 * (n1 + n0) * fric_ry_u[j]
    else:
        d_diss_u[k, j, i] = 0.0
    if i >= 2 and i < NX - 2 and j >= 1 and j < NY - 2:
        e1 = _tl_sq(A_h_z[j, i], d_A_h_z[j, i], _kfe_v(k, j, i, maskV, fric_ce_v),
                    v[k, j, i + 1] - v[k, j, i], d_v[k, j, i + 1] - d_v[k, j, i])
        e0 = _tl_sq(A_h_z[j, i - 1], d_A_h_z[j, i - 1], _kfe_v(k, j, i - 1, maskV, fric_ce_v),
                    v[k, j, i] - v[k, j, i - 1], d_v[k, j, i] - d_v[k, j, i - 1])
        n1 = _tl_sq(A_h_t[j + 1, i], d_A_h_t[j + 1, i], _kfn_v(k, j, i, maskV, fric_cn_v),
                    v[k, j + 1, i] - v[k, j, i], d_v[k, j + 1, i] - d_v[k, j, i])
        n0 = _tl_sq(A_h_t[j, i], d_A_h_t[j, i], _kfn_v(k, j - 1, i, maskV, fric_cn_v),
                    v[k, j, i] - v[k, j - 1, i], d_v[k, j, i] - d_v[k, j - 1, i])
        d_diss_v[k, j, i] = 0.5 * (e1 + e0) * fric_rx_v[j, i] + 0.5 * (n1 + n0) * fric_ry_v[j]
    else:
        d_diss_v[k, j, i] = 0.0


@adjoint_of(F.friction_dissipation)
def friction_dissipation_ad(i, j, k, b_u, b_v, b_A_h_t, b_A_h_z, b_diss_u, b_diss_v, u, v, A_h_t, A_h_z, maskU,
                            maskV, fric_ce_u, fric_cn_u, fric_ce_v, fric_cn_v, fric_rx_u, fric_ry_u, fric_rx_v,
                            fric_ry_v):
    """Adjoint of the friction dissipation, gathered at p = (k, j, i).  The adjoint of a face term
    is ``b_T = wx_f + wx_{f+1}`` (east faces, ``wx_q = 0.5 b_diss_u[q] / (cost dxu_q)`` inside the
    diss_u domain) or ``wy_f + wy_{f+1}`` (north faces, ``0.5 b_diss_u / (cost dyt)``), V metrics
    for v; then ``b_u_p += -+ 2 A K dq b_T`` for the faces east/north and west/south of p, and
    ``b_A += K dq^2 b_T`` (summed over the column by the thread of level :func:`_owner_level`)."""
    nz, NY, NX = u.shape
    hasE = i + 1 < NX
    hasW = i >= 1
    hasN = j + 1 < NY
    hasS = j >= 1
    # --- u: east faces i (u_p is q_0) and i-1 (u_p is q_1); north faces at corners j, j-1 ---
    wx0 = _wdu(k, j, i, b_diss_u, fric_rx_u[j, i])
    wy0 = _wdu(k, j, i, b_diss_u, fric_ry_u[j])
    bu = 0.0
    if hasE:
        bu -= (2.0 * A_h_t[j, i + 1] * _kfe_u(k, j, i, maskU, fric_ce_u) * (u[k, j, i + 1] - u[k, j, i])
               * (wx0 + _wdu(k, j, i + 1, b_diss_u, fric_rx_u[j, i + 1])))
    if hasW:
        bu += (2.0 * A_h_t[j, i] * _kfe_u(k, j, i - 1, maskU, fric_ce_u) * (u[k, j, i] - u[k, j, i - 1])
               * (_wdu(k, j, i - 1, b_diss_u, fric_rx_u[j, i - 1]) + wx0))
    if hasN:
        bu -= (2.0 * A_h_z[j, i] * _kfn_u(k, j, i, maskU, fric_cn_u) * (u[k, j + 1, i] - u[k, j, i])
               * (wy0 + _wdu(k, j + 1, i, b_diss_u, fric_ry_u[j + 1])))
    if hasS:
        bu += (2.0 * A_h_z[j - 1, i] * _kfn_u(k, j - 1, i, maskU, fric_cn_u) * (u[k, j, i] - u[k, j - 1, i])
               * (_wdu(k, j - 1, i, b_diss_u, fric_ry_u[j - 1]) + wy0))
    # --- v: east faces at corners (j, i), (j, i-1); north faces at T rows j+1, j ---
    wx0 = _wdv(k, j, i, b_diss_v, fric_rx_v[j, i])
    wy0 = _wdv(k, j, i, b_diss_v, fric_ry_v[j])
    bv = 0.0
    if hasE:
        bv -= (2.0 * A_h_z[j, i] * _kfe_v(k, j, i, maskV, fric_ce_v) * (v[k, j, i + 1] - v[k, j, i])
               * (wx0 + _wdv(k, j, i + 1, b_diss_v, fric_rx_v[j, i + 1])))
    if hasW:
        bv += (2.0 * A_h_z[j, i - 1] * _kfe_v(k, j, i - 1, maskV, fric_ce_v) * (v[k, j, i] - v[k, j, i - 1])
               * (_wdv(k, j, i - 1, b_diss_v, fric_rx_v[j, i - 1]) + wx0))
    if hasN:
        bv -= (2.0 * A_h_t[j + 1, i] * _kfn_v(k, j, i, maskV, fric_cn_v) * (v[k, j + 1, i] - v[k, j, i])
               * (wy0 + _wdv(k, j + 1, i, b_diss_v, fric_ry_v[j + 1])))
    if hasS:
        bv += (2.0 * A_h_t[j, i] * _kfn_v(k, j - 1, i, maskV, fric_cn_v) * (v[k, j, i] - v[k, j - 1, i])
               * (_wdv(k, j - 1, i, b_diss_v, fric_ry_v[j - 1]) + wy0))
    b_u[k, j, i] += bu
    b_v[k, j, i] += bv
    # --- viscosity fields, one thread per column (one loop over the levels).  The metric factors
    #     are formed outside the loop; a face the column does not have (array edge) gets zero
    #     factors and a clamped index ---
    if k == _owner_level(j, nz, NY):
        im = i - 1 if hasW else i
        ip = i + 1 if hasE else i
        jm = j - 1 if hasS else j
        jp = j + 1 if hasN else j
        # A_h_t[j, i]: u east face i-1 and v north face j-1; A_h_z[j, i]: u north face j, v east face i
        keu = fric_ce_u[j, i - 1] if hasW else 0.0
        knv = fric_cn_v[j - 1] if hasS else 0.0
        knu = fric_cn_u[j] if hasN else 0.0
        kev = fric_ce_v[j, i] if hasE else 0.0
        rxu0 = _rdu(im, j, NX, NY, fric_rx_u[j, im])
        rxu1 = _rdu(i, j, NX, NY, fric_rx_u[j, i])
        ryu0 = _rdu(i, j, NX, NY, fric_ry_u[j])
        ryu1 = _rdu(i, jp, NX, NY, fric_ry_u[jp])
        rxv0 = _rdv(i, j, NX, NY, fric_rx_v[j, i])
        rxv1 = _rdv(ip, j, NX, NY, fric_rx_v[j, ip])
        ryv0 = _rdv(i, jm, NX, NY, fric_ry_v[jm])
        ryv1 = _rdv(i, j, NX, NY, fric_ry_v[j])
        st = 0.0
        sz = 0.0
        for kk in range(nz):
            mu = maskU[kk, j, i]
            mv = maskV[kk, j, i]
            bu0 = b_diss_u[kk, j, i]
            bv0 = b_diss_v[kk, j, i]
            d = u[kk, j, i] - u[kk, j, im]
            st += keu * mu * maskU[kk, j, im] * d * d * (rxu0 * b_diss_u[kk, j, im] + rxu1 * bu0)
            d = v[kk, j, i] - v[kk, jm, i]
            st += knv * maskV[kk, jm, i] * mv * d * d * (ryv0 * b_diss_v[kk, jm, i] + ryv1 * bv0)
            d = u[kk, jp, i] - u[kk, j, i]
            sz += knu * maskU[kk, jp, i] * mu * d * d * (ryu0 * bu0 + ryu1 * b_diss_u[kk, jp, i])
            d = v[kk, j, ip] - v[kk, j, i]
            sz += kev * maskV[kk, j, ip] * mv * d * d * (rxv0 * bv0 + rxv1 * b_diss_v[kk, j, ip])
        b_A_h_t[j, i] += st
        b_A_h_z[j, i] += sz


# ===========================================================================
# dissipation to the T/W grid (linear)
# ===========================================================================

@helper
def _wgrid_alpha(k, nz, ks, dzr):
    """Coefficient of d[k] in ``dissipation_on_wgrid`` at level k (``dzr = dzw[k-1] / dzw[k]``),
    branch by branch: land (ks <= 0): 0; top level: 1; bottom level ``ks-1``: ``1/2 + dzr / 2``;
    above it: 1/2; below: 0."""
    if ks <= 0:
        return 0.0
    if k == nz - 1:
        return 1.0
    if k == ks - 1:
        return 0.5 + 0.5 * dzr
    if k > ks - 1:
        return 0.5
    return 0.0


@helper
def _wgrid_beta(k, nz, ks):
    """Coefficient of d[k+1] in ``dissipation_on_wgrid`` at level k: 1/2 on wet levels below the top."""
    if ks <= 0 or k < 0 or k >= nz - 1 or k < ks - 1:
        return 0.0
    return 0.5


@tangent_of(F.dissipation_to_tgrid)
def dissipation_to_tgrid_tl(i, j, k, d_K_diss_h, d_diss_u, d_diss_v, kbot, diss_dzr, diss_wx0, diss_wx1, diss_wy0,
                            diss_wy1):
    """Tangent = the forward kernel applied to the tangent dissipation (linear)."""
    _dissipation_to_tgrid(i, j, k, d_K_diss_h, d_diss_u, d_diss_v, kbot, diss_dzr, diss_wx0, diss_wx1, diss_wy0,
                          diss_wy1)


@adjoint_of(F.dissipation_to_tgrid)
def dissipation_to_tgrid_ad(i, j, k, b_diss_u, b_diss_v, b_K_diss_h, kbot, diss_dzr, diss_wx0, diss_wx1, diss_wy0,
                            diss_wy1):
    """Adjoint of ``K[k, j, i] = wx1_i W_u[i] + wx0_i W_u[i-1] + wy1_ji W_v[j] + wy0_ji W_v[j-1]``
    (interior T points; weights of :func:`ocean_core.kernels.friction.dissipation_metrics`), with
    ``W[k] = alpha_k d[k] + beta_k d[k+1]``: diss_u at U point (j, i) is read by T points (j, i)
    (weight wx1_i) and (j, i+1) (wx0_{i+1}) at W levels k (alpha_k) and k-1 (beta_{k-1}); diss_v by
    (j, i) (wy1) and (j+1, i) (wy0).

    Branch-free so that the i loop vectorises: neighbour indices are clamped, terms are formed and
    then kept or dropped by a select, in the order of the guarded form."""
    nz, NY, NX = b_diss_u.shape
    km = max(k - 1, 0)              # W level k-1 (beta = 0 at k = 0)
    dzr = diss_dzr[k]
    ie = min(i + 1, NX - 1)
    jn = min(j + 1, NY - 1)
    hasE = i + 1 < NX
    hasN = j + 1 < NY
    in0 = (i >= 2) & (i < NX - 2) & (j >= 2) & (j < NY - 2)
    inE = (ie >= 2) & (ie < NX - 2) & (j >= 2) & (j < NY - 2)
    inN = (i >= 2) & (i < NX - 2) & (jn >= 2) & (jn < NY - 2)
    bu = 0.0
    bv = 0.0
    ks = max(kbot[j, i], kbot[j, ie])
    al = _wgrid_alpha(k, nz, ks, dzr)
    be = _wgrid_beta(k - 1, nz, ks)
    t = (al * b_K_diss_h[k, j, i] + be * b_K_diss_h[km, j, i]) * diss_wx1[i]
    bu = bu + t if hasE & in0 else bu
    t = (al * b_K_diss_h[k, j, ie] + be * b_K_diss_h[km, j, ie]) * diss_wx0[ie]
    bu = bu + t if hasE & inE else bu
    ks = max(kbot[j, i], kbot[jn, i])
    al = _wgrid_alpha(k, nz, ks, dzr)
    be = _wgrid_beta(k - 1, nz, ks)
    t = (al * b_K_diss_h[k, j, i] + be * b_K_diss_h[km, j, i]) * diss_wy1[j, i]
    bv = bv + t if hasN & in0 else bv
    t = (al * b_K_diss_h[k, jn, i] + be * b_K_diss_h[km, jn, i]) * diss_wy0[jn, i]
    bv = bv + t if hasN & inN else bv
    b_diss_u[k, j, i] += bu
    b_diss_v[k, j, i] += bv
