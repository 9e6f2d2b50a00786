"""Tangent-linear and adjoint kernels of :mod:`ocean_core.kernels.external`.

Every kernel of the external mode is linear in its active inputs, so each tangent is
the forward body applied to the tangent fields.  The adjoints are in gather form:

* column kernels (depth sums, the depth-mean removal, the upward integration of w)
  own their column and accumulate into it; where a column also reads a neighbouring
  column (psi in ``velocity_update``, u and v in ``vertical_velocity``) the thread
  of column p gathers the neighbours' output adjoints instead of scattering its own;
* 2-d kernels gather from the (at most two) Z points whose stencil reads p.

The island part of the streamfunction step (the reduction over space in the
adjoint of the island rates ``dpsin``) is not a kernel: it is
:class:`ocean_core.ops.IslandPsiOp`, whose tangent and adjoint live there.
"""

from ocean_core import constants as C
from ocean_core.kernels import external as F
from ocean_core.kernels.momentum import in_interior

from .pairing import adjoint_of, tangent_of

# forward bodies reused by tangents of linear kernels (numba resolves module-level dispatchers)
_barotropic_forcing = F.barotropic_forcing.body
_streamfunction_rhs = F.streamfunction_rhs.body
_psi_update = F.psi_update.body
_velocity_update = F.velocity_update.body
_vertical_velocity = F.vertical_velocity.body


# ===========================================================================
# depth-mean forcing (column, linear)
# ===========================================================================

@tangent_of(F.barotropic_forcing)
def barotropic_forcing_tl(i, j, k, d_uloc, d_vloc, d_du, d_dv, d_du_mix, d_dv_mix, maskU, maskV, dzt, hur, hvr):
    """Tangent = the forward depth sum applied to the tangent tendencies (linear)."""
    _barotropic_forcing(i, j, k, d_uloc, d_vloc, d_du, d_dv, d_du_mix, d_dv_mix, maskU, maskV, dzt, hur, hvr)


@adjoint_of(F.barotropic_forcing, space="column")
def barotropic_forcing_ad(i, j, b_du, b_dv, b_du_mix, b_dv_mix, b_uloc, b_vloc, maskU, maskV, dzt, hur, hvr):
    """Adjoint of ``uloc = hur sum_k (du + du_mix) maskU dzt``:
    ``b_du[k] += hur maskU[k] dzt[k] b_uloc``, the same for du_mix, and likewise at V points."""
    nz = b_du.shape[0]
    bu = hur[j, i] * b_uloc[j, i]
    bv = hvr[j, i] * b_vloc[j, i]
    for k in range(nz):
        cu = maskU[k, j, i] * dzt[k] * bu
        cv = maskV[k, j, i] * dzt[k] * bv
        b_du[k, j, i] += cu
        b_du_mix[k, j, i] += cu
        b_dv[k, j, i] += cv
        b_dv_mix[k, j, i] += cv


# ===========================================================================
# curl of the depth-mean forcing (2-d, linear)
# ===========================================================================

@tangent_of(F.streamfunction_rhs)
def streamfunction_rhs_tl(i, j, d_forc, d_uloc, d_vloc, cost, rdx_z, fric_ry_v):
    """Tangent = the forward curl applied to the tangent depth means (linear)."""
    _streamfunction_rhs(i, j, d_forc, d_uloc, d_vloc, cost, rdx_z, fric_ry_v)


@adjoint_of(F.streamfunction_rhs)
def streamfunction_rhs_ad(i, j, b_uloc, b_vloc, b_forc, cost, rdx_z, fric_ry_v):
    """Adjoint of the curl, gathered from the interior Z points whose stencil reads p:
    ``b_vloc[j, i] += -b_forc[j, i] / (cosu_j dxu_i) + b_forc[j, i-1] / (cosu_j dxu_{i-1})``,
    ``b_uloc[j, i] += cost_j (b_forc[j, i] / (cosu_j dyu_j) - b_forc[j-1, i] / (cosu_{j-1} dyu_{j-1}))``,
    the reciprocals read from rdx_z = 1/(cosu dxu), fric_ry_v = 1/(cosu dyu) as the forward."""
    NY, NX = b_forc.shape
    bu = 0.0
    bv = 0.0
    if j >= 2 and j < NY - 2:
        # forc[j, i] reads vloc at i, i+1 and uloc at rows j, j+1
        if i >= 2 and i < NX - 2:
            c = b_forc[j, i]
            bv -= c * rdx_z[j, i]
            bu += cost[j] * c * fric_ry_v[j]
        # forc[j, i-1] reads vloc[j, i] as its east value
        if i >= 3 and i < NX - 1:
            bv += b_forc[j, i - 1] * rdx_z[j, i - 1]
    # forc[j-1, i] reads uloc[j, i] as its north value
    if j >= 3 and j < NY - 1 and i >= 2 and i < NX - 2:
        bu -= cost[j] * b_forc[j - 1, i] * fric_ry_v[j - 1]
    b_uloc[j, i] += bu
    b_vloc[j, i] += bv


# ===========================================================================
# streamfunction step (2-d, pointwise, linear)
# ===========================================================================

@tangent_of(F.psi_update)
def psi_update_tl(i, j, d_psi_new, d_dpsi_new, d_psi_old, d_dpsi_old, dt_mom):
    """Tangent = the forward AB2 step applied to the tangent fields (linear)."""
    _psi_update(i, j, d_psi_new, d_dpsi_new, d_psi_old, d_dpsi_old, dt_mom)


@adjoint_of(F.psi_update)
def psi_update_ad(i, j, b_dpsi_new, b_psi_old, b_dpsi_old, b_psi_new, dt_mom):
    """Adjoint of ``psi_new = psi_old + dt (ab1 dpsi_new - ab0 dpsi_old)``:
    ``b_psi_old += b``, ``b_dpsi_new += dt ab1 b``, ``b_dpsi_old -= dt ab0 b`` with ``b = b_psi_new``."""
    ab1 = 1.5 + C.AB_EPS
    ab0 = 0.5 + C.AB_EPS
    b = b_psi_new[j, i]
    b_psi_old[j, i] += b
    b_dpsi_new[j, i] += dt_mom * ab1 * b
    b_dpsi_old[j, i] -= dt_mom * ab0 * b


# ===========================================================================
# velocity update (column, linear)
# ===========================================================================

@tangent_of(F.velocity_update)
def velocity_update_tl(i, j, k, d_u_new, d_v_new, scr_col, scr_col2, d_u_old, d_v_old, d_du_now, d_dv_now, d_du_old,
                       d_dv_old, d_du_mix, d_dv_mix, d_psi, maskU, maskV, dzt, fric_rx_v, rdy_u, hur, hvr, dt_mom):
    """Tangent = the forward update applied to the tangent fields (linear)."""
    _velocity_update(i, j, k, d_u_new, d_v_new, scr_col, scr_col2, d_u_old, d_v_old, d_du_now, d_dv_now, d_du_old, d_dv_old, d_du_mix,
                     d_dv_mix, d_psi, maskU, maskV, dzt, fric_rx_v, rdy_u, hur, hvr, dt_mom)


@adjoint_of(F.velocity_update, space="column")
def velocity_update_ad(i, j, b_u_old, b_v_old, b_du_now, b_dv_now, b_du_old, b_dv_old, b_du_mix, b_dv_mix, b_psi,
                       b_u_new, b_v_new, maskU, maskV, dzt, fric_rx_v, rdy_u, hur, hvr, dt_mom):
    """Adjoint of the velocity update.  With ``a_k = u_old + dt (du_mix + ab1 du_now - ab0 du_old) maskU``
    and ``u_new_k = a_k - hur maskU_k sum_k' a_k' maskU dzt - maskU_k bu`` (interior):

    * ``b_a_k = b_u_new_k + maskU_k dzt_k S`` with ``S = -hur sum_k maskU b_u_new`` (depth-mean removal),
      then ``b_u_old += b_a``, ``b_du_mix += dt maskU b_a``, ``b_du_now += dt ab1 maskU b_a``,
      ``b_du_old -= dt ab0 maskU b_a``; the same at V points;
    * psi[j, i] is read by the U columns (j, i) and (j+1, i) and the V columns (j, i) and (j, i+1):
      ``b_psi += S(j, i) / dyt_j - S(j+1, i) / dyt_{j+1}
      - (T(j, i) / dxt_i - T(j, i+1) / dxt_{i+1}) / cosu_j`` with ``T = -hvr sum_k maskV b_v_new``
      (the reciprocals rdy_u = 1/dyt, fric_rx_v = 1/(cosu dxt) as in the forward)."""
    nz, NY, NX = b_u_old.shape
    ab1 = 1.5 + C.AB_EPS
    ab0 = 0.5 + C.AB_EPS
    # adjoints of the two depth sums
    su = 0.0
    sv = 0.0
    for k in range(nz):
        su += maskU[k, j, i] * b_u_new[k, j, i]
        sv += maskV[k, j, i] * b_v_new[k, j, i]
    su = -hur[j, i] * su
    sv = -hvr[j, i] * sv
    for k in range(nz):
        ba = b_u_new[k, j, i] + su * maskU[k, j, i] * dzt[k]
        bb = b_v_new[k, j, i] + sv * maskV[k, j, i] * dzt[k]
        b_u_old[k, j, i] += ba
        b_v_old[k, j, i] += bb
        ga = dt_mom * maskU[k, j, i] * ba
        gb = dt_mom * maskV[k, j, i] * bb
        b_du_mix[k, j, i] += ga
        b_du_now[k, j, i] += ab1 * ga
        b_du_old[k, j, i] -= ab0 * ga
        b_dv_mix[k, j, i] += gb
        b_dv_now[k, j, i] += ab1 * gb
        b_dv_old[k, j, i] -= ab0 * gb
    # barotropic velocity: gather the depth sums of the neighbouring columns that read psi[j, i]
    bp = 0.0
    if in_interior(i, j, NX, NY):
        bp += su * rdy_u[j] - sv * fric_rx_v[j, i]
    if j + 1 < NY and in_interior(i, j + 1, NX, NY):
        s = 0.0
        for k in range(nz):
            s += maskU[k, j + 1, i] * b_u_new[k, j + 1, i]
        bp += hur[j + 1, i] * s * rdy_u[j + 1]
    if i + 1 < NX and in_interior(i + 1, j, NX, NY):
        s = 0.0
        for k in range(nz):
            s += maskV[k, j, i + 1] * b_v_new[k, j, i + 1]
        bp -= hvr[j, i + 1] * s * fric_rx_v[j, i + 1]
    b_psi[j, i] += bp


# ===========================================================================
# vertical velocity from continuity (column, linear)
# ===========================================================================

@tangent_of(F.vertical_velocity)
def vertical_velocity_tl(i, j, k, d_w_new, d_u, d_v, maskW, cost, cosu, dxt, dyt, dzt):
    """Tangent = the forward upward integration applied to the tangent velocities (linear)."""
    _vertical_velocity(i, j, k, d_w_new, d_u, d_v, maskW, cost, cosu, dxt, dyt, dzt)


@adjoint_of(F.vertical_velocity, space="column")
def vertical_velocity_ad(i, j, b_u, b_v, b_w_new, maskW, cost, cosu, dxt, dyt, dzt):
    """Adjoint of ``w[k] = sum_{k'<=k} fxa[k']``: the adjoint of ``fxa[k]`` of column q is
    ``g_k(q) = -maskW[k] dzt[k] sum_{k'>=k} b_w[k']`` (a downward cumulative sum), and
    ``b_u[k, j, i] += g_k(j, i) / (cost_j dxt_i) - g_k(j, i+1) / (cost_j dxt_{i+1})``,
    ``b_v[k, j, i] += cosu_j (g_k(j, i) / (cost_j dyt_j) - g_k(j+1, i) / (cost_{j+1} dyt_{j+1}))``
    (columns with i < 1 or j < 1 have g = 0)."""
    nz, NY, NX = b_u.shape
    # the three columns whose fxa reads u or v at (j, i): own, east (i+1) and north (j+1); their
    # metric factors are constant in the column
    own = i >= 1 and j >= 1
    east = i + 1 < NX and j >= 1
    north = j + 1 < NY and i >= 1
    fu0 = 0.0
    fv0 = 0.0
    fu1 = 0.0
    fv1 = 0.0
    if own:
        fu0 = -1.0 / (cost[j] * dxt[i])
        fv0 = -cosu[j] / (cost[j] * dyt[j])
    if east:
        fu1 = 1.0 / (cost[j] * dxt[i + 1])
    if north:
        fv1 = cosu[j] / (cost[j + 1] * dyt[j + 1])
    B0 = 0.0
    Bx = 0.0
    By = 0.0
    for kk in range(nz):
        k = nz - 1 - kk
        B0 += b_w_new[k, j, i]
        g = maskW[k, j, i] * dzt[k] * B0
        bu = fu0 * g
        bv = fv0 * g
        if east:
            Bx += b_w_new[k, j, i + 1]
            bu += fu1 * maskW[k, j, i + 1] * dzt[k] * Bx
        if north:
            By += b_w_new[k, j + 1, i]
            bv += fv1 * maskW[k, j + 1, i] * dzt[k] * By
        b_u[k, j, i] += bu
        b_v[k, j, i] += bv
