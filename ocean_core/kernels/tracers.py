"""Tracers: surface relaxation forcing, convective vertical diffusivity, central
advection, Adams-Bashforth step, implicit vertical mixing and the equation of state
(Veros ``eq_of_state_type = 3``: Vallis 2008 nonlinear EOS with thermobaric and
compressibility terms; ``rho`` is a density *anomaly*)."""

import numpy as np

from .framework import device, fuse, kernel
from .momentum import imax, imin, in_interior
from .. import constants as C

# Vallis (2008) EOS constants (Veros ``nonlinear_eq2``)
EOS_RHO0 = 1024.0
EOS_THETA0 = 283.0 - 273.15
EOS_S0 = 35.0
EOS_GRAV = 9.81
EOS_CS0 = 1490.0
EOS_BETAT = 1.67e-4
EOS_BETATS = 1e-5
EOS_BETAS = 0.78e-3
EOS_GAMMAS = 1.1e-8


@device
def eos_rho(s, t, p):
    """Density anomaly ``rho'(S, T, p)`` [kg/m^3], p = depth in metres (used as dbar)."""
    zz = -p
    th = t - EOS_THETA0
    return -(EOS_GRAV * zz / EOS_CS0 ** 2 + EOS_BETAT * (1 - EOS_GAMMAS * EOS_GRAV * zz * EOS_RHO0) * th
             + EOS_BETATS / 2 * th ** 2 - EOS_BETAS * (s - EOS_S0)) * EOS_RHO0


@device
def eos_drho_dt(s, t, p):
    """d rho' / dT."""
    zz = -p
    th = t - EOS_THETA0
    return -(EOS_BETAT * (1 - EOS_GAMMAS * EOS_GRAV * zz * EOS_RHO0) + EOS_BETATS * th) * EOS_RHO0


@device
def eos_drho_ds(s, t, p):
    """d rho' / dS."""
    return EOS_BETAS * EOS_RHO0


def eos_rho_np(s, t, p):
    zz = -p
    th = t - EOS_THETA0
    return -(EOS_GRAV * zz / EOS_CS0 ** 2 + EOS_BETAT * (1 - EOS_GAMMAS * EOS_GRAV * zz * EOS_RHO0) * th
             + EOS_BETATS / 2 * th ** 2 - EOS_BETAS * (s - EOS_S0)) * EOS_RHO0


# ---------------------------------------------------------------------------
# surface forcing and vertical diffusivities
# ---------------------------------------------------------------------------

def _ref_surface_forcing(temp, t_rest, t_star):
    return (t_rest * (t_star - temp[-1]),)


@kernel("2d", outputs=("forc_temp_surface",), reference=_ref_surface_forcing, active=("temp", "t_star"))
def surface_forcing(i, j, forc_temp_surface, temp, t_rest, t_star):
    """Surface heat flux of the ACC setup: relaxation of the top cell to t_star,
    ``forc_temp_surface = t_rest (t_star - temp[top])`` [K m/s] (T points, 2-d)."""
    nz = temp.shape[0]
    forc_temp_surface[j, i] = t_rest[j, i] * (t_star[j, i] - temp[nz - 1, j, i])


def _ref_vertical_diffusivity(Nsqr, kappaH_0):
    return (np.where(Nsqr < 0.0, 1.0, kappaH_0),)


@kernel("3d", outputs=("kappaH",), reference=_ref_vertical_diffusivity, active=("kappaH_0",))
def vertical_diffusivity(i, j, k, kappaH, Nsqr, kappaH_0):
    """Vertical tracer diffusivity with TKE off: 1 m^2/s where ``Nsqr < 0`` (convection),
    ``kappaH_0`` elsewhere (W points).  The switch is not differentiated (frozen in the adjoint)."""
    if Nsqr[k, j, i] < 0.0:
        kappaH[k, j, i] = 1.0
    else:
        kappaH[k, j, i] = kappaH_0


# ---------------------------------------------------------------------------
# advection (2nd-order central) and Adams-Bashforth step
# ---------------------------------------------------------------------------

@device
def adv2_fe(k, j, i, q, u, maskU):
    return 0.5 * (q[k, j, i] + q[k, j, i + 1]) * u[k, j, i] * maskU[k, j, i]


@device
def adv2_fn(k, j, i, q, v, maskV, cosu):
    return cosu[j] * 0.5 * (q[k, j, i] + q[k, j + 1, i]) * v[k, j, i] * maskV[k, j, i]


@device
def adv2_ft(k, j, i, q, w, maskW):
    """Top flux of cell k (0 at the surface); the level above through a clamped index and
    a select, not a branch, so that the loads are unconditional (the i loop vectorises
    without masked loads)."""
    nz = q.shape[0]
    f = 0.5 * (q[k, j, i] + q[imin(k + 1, nz - 1), j, i]) * w[k, j, i] * maskW[k, j, i]
    return f if k < nz - 1 else 0.0


def tracer_metrics(grid):
    """Reciprocal divergence metrics of the T cell (grid only): ``rdx_t = 1 / (cost dxt)``
    (yt, xt) and ``rdy_t[j] = 1 / (cost_j dyt_j)`` (yt); with ``rdzt = 1 / dzt``
    (:func:`ocean_core.kernels.momentum.momentum_metrics`) the advective tendencies divide nowhere
    per grid point."""
    cost = np.asarray(grid.cost, float)
    return {"rdx_t": 1.0 / (cost[:, None] * np.asarray(grid.dxt, float)[None, :]),
            "rdy_t": 1.0 / (cost * np.asarray(grid.dyt, float))}


#: the tracer_metrics arrays
TRACER_METRICS = ("rdx_t", "rdy_t")


@device
def adv2_tendency(k, j, i, q, u, v, w, maskT, maskU, maskV, maskW, cosu, rdx_t, rdy_t, rdzt):
    """``-maskT [(fe_i - fe_{i-1}) / (cost dxt) + (fn_j - fn_{j-1}) / (cost dyt) + (ft_k - ft_{k-1}) / dzt]``
    at T point (k, j, i), the reciprocals read from rdx_t, rdy_t, rdzt."""
    r = maskT[k, j, i] * (-(adv2_fe(k, j, i, q, u, maskU) - adv2_fe(k, j, i - 1, q, u, maskU)) * rdx_t[j, i]
                          - (adv2_fn(k, j, i, q, v, maskV, cosu) - adv2_fn(k, j - 1, i, q, v, maskV, cosu)) * rdy_t[j])
    ft1 = adv2_ft(k, j, i, q, w, maskW)
    ft0 = adv2_ft(imax(k - 1, 0), j, i, q, w, maskW)
    r_top = r + (-maskT[k, j, i] * ft1 * rdzt[k])
    r_mid = r + (-maskT[k, j, i] * (ft1 - ft0) * rdzt[k])
    return r_top if k == 0 else r_mid


def _ref_adv2(q, u, v, w, maskT, maskU, maskV, maskW, cosu, rdx_t, rdy_t, rdzt):
    fe = np.zeros_like(q)
    fn = np.zeros_like(q)
    ft = np.zeros_like(q)
    fe[:, 2:-2, 1:-2] = 0.5 * (q[:, 2:-2, 1:-2] + q[:, 2:-2, 2:-1]) * u[:, 2:-2, 1:-2] * maskU[:, 2:-2, 1:-2]
    fn[:, 1:-2, 2:-2] = cosu[None, 1:-2, None] * 0.5 * (q[:, 1:-2, 2:-2] + q[:, 2:-1, 2:-2]) * v[:, 1:-2, 2:-2] * maskV[:, 1:-2, 2:-2]
    ft[:-1, 2:-2, 2:-2] = 0.5 * (q[:-1, 2:-2, 2:-2] + q[1:, 2:-2, 2:-2]) * w[:-1, 2:-2, 2:-2] * maskW[:-1, 2:-2, 2:-2]
    d = np.zeros_like(q)
    d[:, 2:-2, 2:-2] = maskT[:, 2:-2, 2:-2] * (
        -(fe[:, 2:-2, 2:-2] - fe[:, 2:-2, 1:-3]) * rdx_t[None, 2:-2, 2:-2]
        - (fn[:, 2:-2, 2:-2] - fn[:, 1:-3, 2:-2]) * rdy_t[None, 2:-2, None])
    d[0] += -maskT[0] * ft[0] * rdzt[0]
    d[1:] += -maskT[1:] * (ft[1:] - ft[:-1]) * rdzt[1:, None, None]
    return d


def _ref_tracer_advection(temp, salt, u, v, w, maskT, maskU, maskV, maskW, cosu, rdx_t, rdy_t, rdzt):
    a = (u, v, w, maskT, maskU, maskV, maskW, cosu, rdx_t, rdy_t, rdzt)
    return _ref_adv2(temp, *a), _ref_adv2(salt, *a)


@device
def tracer_advection_interior(i, j, k, dtemp, dsalt, temp, salt, u, v, w, maskT, maskU, maskV, maskW, cosu, rdx_t,
                              rdy_t, rdzt):
    """:func:`tracer_advection` at an interior point (no interior test)."""
    dtemp[k, j, i] = adv2_tendency(k, j, i, temp, u, v, w, maskT, maskU, maskV, maskW, cosu, rdx_t, rdy_t, rdzt)
    dsalt[k, j, i] = adv2_tendency(k, j, i, salt, u, v, w, maskT, maskU, maskV, maskW, cosu, rdx_t, rdy_t, rdzt)


@kernel("3d", outputs=("dtemp", "dsalt"), reference=_ref_tracer_advection, active=("temp", "salt", "u", "v", "w"),
        split=True, same_shapes=True, interior=tracer_advection_interior)
def tracer_advection(i, j, k, dtemp, dsalt, temp, salt, u, v, w, maskT, maskU, maskV, maskW, cosu, rdx_t,
                     rdy_t, rdzt):
    """Second-order central advection tendency of temp and salt (T points; interior, zero halos):
    ``dT = -maskT [d_x(fe)/(cost dxt) + d_y(fn)/(cost dyt) + d_z(ft)/dzt]`` with
    ``fe = 0.5 (T_i + T_{i+1}) u maskU``, ``fn = cosu 0.5 (T_j + T_{j+1}) v maskV``,
    ``ft = 0.5 (T_k + T_{k+1}) w maskW`` (0 at the surface); the reciprocal metrics from
    :func:`tracer_metrics` (rdx_t, rdy_t) and ``rdzt = 1 / dzt``."""
    if in_interior(i, j, temp.shape[2], temp.shape[1]):
        tracer_advection_interior(i, j, k, dtemp, dsalt, temp, salt, u, v, w, maskT, maskU, maskV, maskW, cosu, rdx_t,
                                  rdy_t, rdzt)
    else:
        dtemp[k, j, i] = 0.0
        dsalt[k, j, i] = 0.0


def _ref_tracer_ab2(temp_old, salt_old, dtemp_now, dsalt_now, dtemp_old, dsalt_old, maskT, dt_tracer):
    ab1, ab0 = 1.5 + C.AB_EPS, 0.5 + C.AB_EPS
    return (temp_old + dt_tracer * (ab1 * dtemp_now - ab0 * dtemp_old) * maskT,
            salt_old + dt_tracer * (ab1 * dsalt_now - ab0 * dsalt_old) * maskT)


@kernel("3d", outputs=("temp_ab", "salt_ab"), reference=_ref_tracer_ab2,
        active=("temp_old", "salt_old", "dtemp_now", "dsalt_now", "dtemp_old", "dsalt_old"))
def tracer_ab2(i, j, k, temp_ab, salt_ab, temp_old, salt_old, dtemp_now, dsalt_now, dtemp_old, dsalt_old, maskT,
               dt_tracer):
    """Adams-Bashforth step of the advective tendency:
    ``T* = T[tau] + dt (1.6 dT[tau] - 0.6 dT[taum1]) maskT`` (T points, whole array)."""
    ab1 = 1.5 + C.AB_EPS
    ab0 = 0.5 + C.AB_EPS
    temp_ab[k, j, i] = temp_old[k, j, i] + dt_tracer * (ab1 * dtemp_now[k, j, i] - ab0 * dtemp_old[k, j, i]) * maskT[k, j, i]
    salt_ab[k, j, i] = salt_old[k, j, i] + dt_tracer * (ab1 * dsalt_now[k, j, i] - ab0 * dsalt_old[k, j, i]) * maskT[k, j, i]


# ---------------------------------------------------------------------------
# implicit vertical mixing (backward Euler) with surface flux
# ---------------------------------------------------------------------------

@device
def vmix_coeffs(k, k0, nz, kappaH, j, i, dzw, dzt, dt_tracer):
    """(a, b, c) of the implicit tracer-mixing matrix at level k (k0 = bottom wet level).
    ``delta[k] = dt kappaH[k] / dzw[k]`` (k < nz-1), 0 at the top."""
    dk = dt_tracer / dzw[k] * kappaH[k, j, i] if k < nz - 1 else 0.0
    dkm1 = dt_tracer / dzw[k - 1] * kappaH[k - 1, j, i] if k > 0 else 0.0
    a = -dkm1 / dzt[k]
    c = -dk / dzt[k]
    if k == k0:
        b = 1.0 + dk / dzt[k]
    else:
        b = 1.0 + (dk + dkm1) / dzt[k]
    return a, b, c


def _ref_vertical_mixing(temp_ab, salt_ab, kappaH, forc_temp_surface, forc_salt_surface, kbot, dzt, dzw, dt_tracer):
    nz, NY, NX = temp_ab.shape
    from .friction import thomas_ref
    out_t = temp_ab.copy()
    out_s = salt_ab.copy()
    for j in range(2, NY - 2):
        for i in range(2, NX - 2):
            if kbot[j, i] == 0:
                continue
            k0 = kbot[j, i] - 1
            delta = np.zeros(nz)
            delta[:-1] = dt_tracer / dzw[:-1] * kappaH[:-1, j, i]
            n = nz - k0
            a, b, c = np.zeros(n), np.zeros(n), np.zeros(n)
            for kk in range(n):
                k = k0 + kk
                dkm1 = delta[k - 1] if k > 0 else 0.0
                a[kk] = -dkm1 / dzt[k]
                c[kk] = -delta[k] / dzt[k]
                b[kk] = 1 + delta[k] / dzt[k] if k == k0 else 1 + (delta[k] + dkm1) / dzt[k]
            for q, out, fs in ((temp_ab, out_t, forc_temp_surface), (salt_ab, out_s, forc_salt_surface)):
                d = q[k0:, j, i].copy()
                d[-1] += dt_tracer * fs[j, i] / dzt[-1]
                out[k0:, j, i] = thomas_ref(a, b, c, d)
    # (scratch outputs: not compared)
    return out_t, out_s, np.zeros_like(temp_ab), np.zeros_like(temp_ab[0])


@device
def _vmix_solve(j, i, k0, nz, temp_new, salt_new, scr_cp, temp_ab, salt_ab, kappaH, forc_temp_surface,
                forc_salt_surface, dzt, dzw, dt_tracer):
    """Thomas algorithm for temp and salt on column (j, i), wet levels k0 .. nz-1 (strided in k)."""
    for k in range(k0, nz):
        a, b, c = vmix_coeffs(k, k0, nz, kappaH, j, i, dzw, dzt, dt_tracer)
        dt_ = temp_ab[k, j, i]
        ds_ = salt_ab[k, j, i]
        if k == nz - 1:
            dt_ = dt_ + dt_tracer * forc_temp_surface[j, i] / dzt[nz - 1]
            ds_ = ds_ + dt_tracer * forc_salt_surface[j, i] / dzt[nz - 1]
        if k == k0:
            den = b
            scr_cp[k, j, i] = c / den
            temp_new[k, j, i] = dt_ / den
            salt_new[k, j, i] = ds_ / den
        else:
            den = b - a * scr_cp[k - 1, j, i]
            scr_cp[k, j, i] = c / den
            temp_new[k, j, i] = (dt_ - a * temp_new[k - 1, j, i]) / den
            salt_new[k, j, i] = (ds_ - a * salt_new[k - 1, j, i]) / den
    for kk in range(nz - 1 - k0):
        k = nz - 2 - kk
        temp_new[k, j, i] = temp_new[k, j, i] - scr_cp[k, j, i] * temp_new[k + 1, j, i]
        salt_new[k, j, i] = salt_new[k, j, i] - scr_cp[k, j, i] * salt_new[k + 1, j, i]


@kernel("rows", outputs=("temp_new", "salt_new", "scr_cp", "scr_col"), reference=_ref_vertical_mixing,
        active=("temp_ab", "salt_ab", "forc_temp_surface", "forc_salt_surface", "kappaH"), passes=2)
def vertical_mixing(i, j, k, temp_new, salt_new, scr_cp, scr_col, temp_ab, salt_ab, kappaH, forc_temp_surface,
                    forc_salt_surface, kbot, dzt, dzw, dt_tracer):
    """Implicit vertical diffusion of temp and salt (Veros ``vertmix_tempsalt``) on the wet levels of
    interior columns: ``(I - dt d_z(kappaH d_z)) T = T* + dt forc_surface / dzt[top] [k = top]``;
    elsewhere (land, halos) ``T = T*``.  kappaH at W points; ``scr_cp``, ``scr_col`` are scratch.

    Where kappaH vanishes at every interface of a column (no convection, kappaH_0 = 0) the matrix
    is the identity and the Thomas sweep returns the right-hand side exactly, so only the surface
    flux is applied.  Row-wise in 2 passes: pass 0 (levels ascending, i contiguous) copies T*,
    flags the columns with mixing in ``scr_col`` and, at the top level, applies the surface flux to
    the unflagged ones; pass 1, at its first level, solves the flagged columns (:func:`_vmix_solve`)."""
    nz = temp_ab.shape[0]
    if k > nz:
        return  # pass 1 works at its first level only
    live = in_interior(i, j, temp_ab.shape[2], temp_ab.shape[1]) & (kbot[j, i] > 0)
    k0 = kbot[j, i] - 1
    if k < nz:
        f = scr_col[j, i] if k > 0 else 0.0
        f = 1.0 if (k >= k0) & (k < nz - 1) & (kappaH[k, j, i] != 0.0) else f
        scr_col[j, i] = f
        # (scr_cp is not cleared: a solve writes c'[k] before it reads it, from k0 up)
        ta = temp_ab[k, j, i]
        sa = salt_ab[k, j, i]
        # the flag is complete at the top level (it covers k0 .. nz-2)
        flux = live & (k == nz - 1) & (f == 0.0)
        temp_new[k, j, i] = ta + dt_tracer * forc_temp_surface[j, i] / dzt[nz - 1] if flux else ta
        salt_new[k, j, i] = sa + dt_tracer * forc_salt_surface[j, i] / dzt[nz - 1] if flux else sa
    elif live & (scr_col[j, i] != 0.0):
        _vmix_solve(j, i, k0, nz, temp_new, salt_new, scr_cp, temp_ab, salt_ab, kappaH, forc_temp_surface,
                    forc_salt_surface, dzt, dzw, dt_tracer)


# ---------------------------------------------------------------------------
# equation of state and stratification
# ---------------------------------------------------------------------------

def _ref_equation_of_state(temp, salt, maskT, maskW, zt, dzw):
    p = np.abs(zt)[:, None, None]
    rho = eos_rho_np(salt, temp, p) * maskT
    nsq = np.zeros_like(rho)
    fxa = -C.GRAV / C.RHO_0 / dzw[:-1, None, None] * maskW[:-1]
    nsq[:-1] = fxa * (eos_rho_np(salt[1:], temp[1:], p[:-1]) - rho[:-1])
    nsq[-1] = nsq[-2]
    return rho, nsq


@kernel("3d", outputs=("rho", "Nsqr"), reference=_ref_equation_of_state, active=("temp", "salt"))
def equation_of_state(i, j, k, rho, Nsqr, temp, salt, maskT, maskW, zt, dzw):
    """Density anomaly at T points, ``rho = rho'(S, T, |zt|) maskT``, and the squared buoyancy
    frequency at W points, ``Nsqr[k] = -g/rho_0/dzw[k] maskW[k] (rho'(S_{k+1}, T_{k+1}, |zt_k|) - rho[k])``,
    ``Nsqr[top] = Nsqr[top-1]``."""
    nz = temp.shape[0]
    rho[k, j, i] = eos_rho(salt[k, j, i], temp[k, j, i], abs(zt[k])) * maskT[k, j, i]
    kk = k if k < nz - 1 else nz - 2
    r0 = eos_rho(salt[kk, j, i], temp[kk, j, i], abs(zt[kk])) * maskT[kk, j, i]
    r1 = eos_rho(salt[kk + 1, j, i], temp[kk + 1, j, i], abs(zt[kk]))
    Nsqr[k, j, i] = -C.GRAV / C.RHO_0 / dzw[kk] * maskW[kk, j, i] * (r1 - r0)


#: Tracer advection and the Adams-Bashforth extrapolation in one pass over memory:
#: tracer_ab2 reads the new tendency at its own point only.
tracer_advection_ab2 = fuse("tracer_advection_ab2", tracer_advection,
                            (tracer_ab2, {"temp_old": "temp", "salt_old": "salt",
                                          "dtemp_now": "dtemp", "dsalt_now": "dsalt"}),
                            split=True, same_shapes=True)
