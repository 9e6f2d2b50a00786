"""Tangent-linear and adjoint kernels of the EKE closure (``adjoint/kernels/eke.py``): the
branch-wise choices at the non-smooth points and inputs that the generic per-kernel
checks (``tests/test_adjoint_step.py``, random positive EKE) do not reach: eke = 0 and
eke < 0, every min/max branch of the diffusivities, the regularised square root, single
wet level and kappaM = 0 columns of the implicit step, the superbee limiter's kinks and
its 1e-20 guard (the ACC run starts from eke = 0)."""

import numpy as np
import pytest

import adjoint.kernels  # noqa: F401  (registers the pairs)
from adjoint.checks import kernel_dot_product, kernel_tangent_fd
from adjoint.kernels import eke as E
from ocean_core.kernels import eke as F
from ocean_core.kernels.framework import REGISTRY
from ocean_core.testing import kernel_args, tiny_grid

EKE_KERNELS = ("eke_diffusivities", "velocity_on_wgrid", "w_wgrid_continuity", "eke_implicit", "eke_fluxes",
               "eke_advection", "eke_update")


@pytest.fixture(scope="module")
def grid():
    return tiny_grid()


def _dot(name, args, seed=0):
    lhs, rhs, rel = kernel_dot_product(REGISTRY[name], args, np.random.default_rng(seed))
    assert np.isfinite(lhs) and np.isfinite(rhs), (lhs, rhs)
    return rel


def _tangent(name, args, directions):
    """Run the forward then the tangent kernel; returns the tangent outputs by output name."""
    k = REGISTRY[name]
    a = dict(args)
    k(*[a[x] for x in k.args])
    call = []
    out = {}
    for x in k.tangent.args:
        if x.startswith("d_") and x[2:] in k.outputs:
            out[x[2:]] = np.zeros_like(a[x[2:]])
            call.append(out[x[2:]])
        elif x.startswith("d_"):
            call.append(directions[x[2:]])
        else:
            call.append(a[x])
    k.tangent(*call)
    return out, a


# ---------------------------------------------------------------------------
# diffusivities: sqrt at 0, min/max chains, regularised sqrt
# ---------------------------------------------------------------------------

def _rhines(sqrteke, beta):
    """The Rhines scale ``sqrt(sqrteke / max(beta, 1e-16))`` as eke_diffusivities evaluates it (a local
    value of the kernel, not stored): bitwise the kernel's value given its sqrteke."""
    return np.sqrt(sqrteke / np.maximum(beta[None], 1e-16))


def _branchy_diffusivity_args(grid, seed):
    """EKE over 7 decades, a few near-equatorial columns (the sqrt branch of L_rossby), lmin and
    k_max inside the range of their arguments: every branch of the min/max chain is taken."""
    k = REGISTRY["eke_diffusivities"]
    a = kernel_args(k, grid, seed=seed)
    rng = np.random.default_rng(100 + seed)
    a["eke"] = 10 ** rng.uniform(-8, -1, grid.maskW.shape)
    a["coriolis_t"] = a["coriolis_t"].copy()
    a["coriolis_t"][::2, ::3] *= 1e-4
    a.update(eke_lmin=3e3, eke_k_max=200.0)
    return a, rng


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_diffusivities_every_branch_against_fd(grid, seed):
    a, rng = _branchy_diffusivity_args(grid, seed)
    k = REGISTRY["eke_diffusivities"]
    b = dict(a)
    k(*[b[x] for x in k.args])
    w = grid.maskW > 0
    lr = np.broadcast_to(b["L_rossby"], grid.maskW.shape)
    C = (np.sqrt(np.maximum(0.0, a["Nsqr"])) * grid.dzw[:, None, None] * grid.maskW / np.pi).sum(0)
    taken = {
        "eke_len = lmin": np.any(b["eke_len"][w] == a["eke_lmin"]),
        "eke_len = cross L_rossby": np.any(b["eke_len"][w] == a["eke_cross"] * lr[w]),
        "eke_len = crhin L_rhines": np.any(b["eke_len"][w] == a["eke_crhin"] * _rhines(b["sqrteke"], a["beta"])[w]),
        "K_gm = k_max": np.any(b["K_gm"][w] == a["eke_k_max"]),
        "K_gm < k_max": np.any(b["K_gm"][w] < a["eke_k_max"]),
        "L_rossby sqrt branch": np.any(b["L_rossby"] < C / np.maximum(np.abs(a["coriolis_t"]), 1e-16)),
        "N^2 < 0": np.any(a["Nsqr"][w] < 0),
    }
    assert all(taken.values()), taken
    assert _dot("eke_diffusivities", a, seed) <= 1e-13
    # relative perturbations (eke spans 7 decades)
    dirs = {"eke": rng.standard_normal(a["eke"].shape) * a["eke"] / a["eke"].max(),
            "Nsqr": rng.standard_normal(a["Nsqr"].shape) * np.abs(a["Nsqr"]) / np.abs(a["Nsqr"]).max()}
    best, errs = kernel_tangent_fd(k, a, np.random.default_rng(seed + 10), directions=dirs)
    assert best <= 1e-8, errs


@pytest.mark.parametrize("eps", [0.0, 1e-3])
def test_diffusivities_sqrt_at_zero(grid, eps):
    """eke <= 0 (and exactly 0, as at the start of the ACC run): exact slope 0 (the max returns the
    constant), regularised slope 0.5/sqrt(eke + eps^2) at eke = 0; everything finite, dot test holds."""
    k = REGISTRY["eke_diffusivities"]
    a = kernel_args(k, grid, seed=4)
    e = a["eke"]
    e[::2] = 0.0
    e[1::3] *= -1.0
    a["opt_sqrt_eps"] = eps
    assert _dot("eke_diffusivities", a) <= 1e-13
    de = np.ones_like(e)
    out, _ = _tangent("eke_diffusivities", a, {"eke": de, "Nsqr": np.zeros_like(e)})
    for o, v in out.items():
        assert np.isfinite(v).all(), o
    ds = out["sqrteke"]
    # slope of the (unstored) Rhines scale per unit eke, from the kernel's own per-level Jacobian
    # at the Rhines scale recomputed from the forward sqrteke
    b = dict(a)
    k(*[b[x] for x in k.args])
    lrh = _rhines(b["sqrteke"], a["beta"])
    bb = np.broadcast_to(np.maximum(a["beta"][None], 1e-16), e.shape)
    lr = np.broadcast_to(b["L_rossby"][None], e.shape)
    dlrh = np.array([E._level_jacobian(e[p], b["sqrteke"][p], lrh[p], lr[p], bb[p], a["eke_lmin"], a["eke_cross"],
                                       a["eke_crhin"], a["eke_c_k"], a["eke_k_max"], eps)[1]
                     for p in np.ndindex(e.shape)]).reshape(e.shape)
    assert np.isfinite(dlrh).all()
    assert (ds[e < 0] == 0).all() and (dlrh[e < 0] == 0).all()
    if eps == 0.0:
        assert (ds[e == 0] == 0).all() and (dlrh[e == 0] == 0).all()
        assert np.allclose(ds[e > 0], 0.5 / np.sqrt(e[e > 0]), rtol=1e-15)
    else:
        assert np.allclose(ds[e == 0], 0.5 / eps, rtol=1e-15)
        assert np.allclose(ds[e > 0], 0.5 / np.sqrt(e[e > 0] + eps ** 2), rtol=1e-15)
    # the ACC start: eke = 0 everywhere
    a["eke"] = np.zeros_like(e)
    assert _dot("eke_diffusivities", a, 1) <= 1e-13


def test_diffusivities_regularised_sqrt_is_approximate(grid):
    """eps > 0 changes the slope near 0 only: FD agreement is lost there by construction, and it is
    recovered for eps^2 << eke."""
    k = REGISTRY["eke_diffusivities"]
    a = kernel_args(k, grid, seed=6)  # eke >= 1e-6
    m = grid.maskW
    rng = np.random.default_rng(0)
    dirs = {"eke": rng.standard_normal(m.shape), "Nsqr": rng.standard_normal(m.shape) * m}
    a["opt_sqrt_eps"] = 1e-2
    assert kernel_tangent_fd(k, a, np.random.default_rng(1), directions=dirs)[0] > 1e-3
    a["opt_sqrt_eps"] = 1e-12
    assert kernel_tangent_fd(k, a, np.random.default_rng(1), directions=dirs)[0] <= 1e-8


# ---------------------------------------------------------------------------
# implicit step: special columns
# ---------------------------------------------------------------------------

def test_implicit_single_level_and_no_diffusion_columns(grid):
    k = REGISTRY["eke_implicit"]
    a = kernel_args(k, grid, seed=2)
    nz = grid.nz
    a["kbot"] = a["kbot"].copy()
    a["kbot"][2:-2:2, 2:-2:3] = nz           # only the top level wet
    a["kappaM"][:, 3, :] = 0.0               # no vertical diffusion: c = 0, diagonal system
    assert (a["kbot"][2:-2, 2:-2] == nz).any() and (a["kbot"][2:-2, 2:-2] == 1).any()
    for seed in range(3):
        assert _dot("eke_implicit", a, seed) <= 1e-13
    best, errs = kernel_tangent_fd(k, a, np.random.default_rng(3))
    assert best <= 1e-8, errs


# ---------------------------------------------------------------------------
# superbee fluxes: limiter kinks, guard, |v| at 0
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("r, slope", [(-1.0, 0.0), (0.0, 2.0), (0.25, 2.0), (0.5, 2.0), (0.75, 0.0), (1.0, 0.0),
                                      (1.5, 1.0), (2.0, 1.0), (3.0, 0.0)])
def test_limiter_branch_slopes(r, slope):
    val, g = E._limiter(r)
    assert val == F.superbee_limiter(r)
    assert g == slope


def _branch(args):
    """(upwind, guarded, limiter slope, sign of the velocity) of one face: the pieces on which the flux
    is smooth."""
    vel, velc, qm1, q0, qp1, qp2, mm1, m0, mp1 = args[:9]
    rj = (qp1 - q0) * m0
    up = (q0 - qm1) * mm1 if vel > 0.0 else (qp2 - qp1) * mp1
    guard = abs(rj) < 1e-20
    return vel > 0.0, guard, E._limiter(up / (1e-20 if guard else rj))[1], velc > 0.0


def test_superbee_partials_against_fd():
    """Partials of one face flux (w.r.t. its 4 cells and the carried velocity) against central differences
    of the forward formula, on samples whose perturbations stay on one branch (the flux is piecewise
    linear in q and quadratic in the velocity there, so central differences are exact up to rounding)."""
    rng = np.random.default_rng(0)
    flux = F.superbee_flux.py_func
    checked = 0
    for _ in range(400):
        q = rng.standard_normal(4) * 1e-3
        if rng.random() < 0.2:
            q[2] = q[1] + rng.standard_normal() * 1e-22          # the |rj| < 1e-20 guard
        masks = (rng.random(3) > 0.15).astype(float)
        vel = rng.standard_normal() * 0.2
        args = (vel, rng.uniform(0.5, 1.0) * vel, *q, *masks, 1.0 / rng.uniform(2e3, 2e5), 1200.0)
        g = E._sb_partials(*args)
        for s, (pos, h) in enumerate([(2, 1e-9), (3, 1e-9), (4, 1e-9), (5, 1e-9), (1, 1e-7)]):
            ap, am = list(args), list(args)
            ap[pos] += h
            am[pos] -= h
            if not (_branch(ap) == _branch(am) == _branch(args)):
                continue
            fd = (flux(*ap) - flux(*am)) / (2 * h)
            assert abs(fd - g[s]) <= 1e-6 * max(abs(g[s]), 1e-3), (s, fd, g[s], args)
            checked += 1
    assert checked > 1500


def test_fluxes_at_rest_and_zero_eke(grid):
    """The ACC start: eke = 0 everywhere (every rj is guarded, every ratio 0) and velocities that are
    exactly 0 in places (sign(0) = 0): finite tangents and an exact dot product."""
    k = REGISTRY["eke_fluxes"]
    a = kernel_args(k, grid, seed=1)
    a["eke"] = np.zeros_like(a["eke"])
    for v in ("u_wgrid", "v_wgrid", "w_wgrid"):
        a[v][:, ::2, :] = 0.0
    for seed in range(3):
        assert _dot("eke_fluxes", a, seed) <= 1e-13


# ---------------------------------------------------------------------------
# all EKE pairs: adjoints accumulate, tangents are linear in the direction
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", EKE_KERNELS)
def test_adjoint_accumulates(name, grid):
    k = REGISTRY[name]
    a = kernel_args(k, grid, seed=9)
    k(*[a[x] for x in k.args])
    rng = np.random.default_rng(2)
    ad = k.adjoint
    bo = {o: rng.standard_normal(np.shape(a[o])) for o in k.outputs if not o.startswith("scr_")}

    def run(init):
        acc = {x: init[x].copy() for x in init}
        call = []
        for x in ad.args:
            if x.startswith("b_") and x[2:] in k.active:
                call.append(acc[x[2:]])
            elif x.startswith("b_"):
                call.append(bo[x[2:]].copy())
            else:
                call.append(a[x])
        ad(*call)
        return acc

    zero = {x: np.zeros(np.shape(a[x])) for x in k.active}
    start = {x: rng.standard_normal(np.shape(a[x])) for x in k.active}
    inc = run(zero)
    tot = run(start)
    for x in k.active:
        assert np.allclose(tot[x], start[x] + inc[x], rtol=1e-14, atol=1e-14 * np.abs(inc[x]).max()), x
