"""Tangent-linear and adjoint model of the full step (issue #3 acceptance).

* every forward kernel has a tangent and an adjoint kernel; per-kernel dot-product tests
  at <= 1e-13 (float64, random masked inputs on a tiny irregular grid);
* dot-product test of the full step and of a 10-step composite at 2 degrees <= 1e-12;
* tangent against central finite differences with a sweep of step sizes (best
  |1 - FD/TLM| <= 1e-6) for a loss with respect to the initial temperature (random
  direction), A_h and r_bot over 1, 10 and 100 steps at 2 degrees in the paper
  configuration; the adjoint gradient equals the tangent to 1e-12; Taylor remainders
  with slopes 1 +- 0.1 and >= 1.9 over at least four halvings.
"""

import numpy as np
import pytest

import adjoint
from adjoint import core
from adjoint.checks import kernel_dot_product, kernel_tangent_fd, relative_difference, taylor_slopes
from ocean_core import setups
from ocean_core.kernels.framework import REGISTRY
from ocean_core.testing import kernel_args, tiny_grid

FORWARD = sorted(k.name for k in REGISTRY.values() if k.kind == "forward")


def test_every_forward_kernel_has_a_pair():
    missing = [n for n in FORWARD if REGISTRY[n].tangent is None or REGISTRY[n].adjoint is None]
    assert not missing, f"forward kernels without tangent/adjoint: {missing}"


@pytest.fixture(scope="module")
def grid():
    return tiny_grid()


@pytest.mark.parametrize("name", FORWARD)
@pytest.mark.parametrize("seed", [3, 11])
def test_kernel_dot_product(name, seed, grid):
    k = REGISTRY[name]
    lhs, rhs, rel = kernel_dot_product(k, kernel_args(k, grid, seed=seed), np.random.default_rng(seed + 1))
    assert lhs != 0.0, "degenerate test: <TL dx, dy> is exactly 0"
    assert rel <= 1e-13, f"{name}: <TL dx,dy> = {lhs!r}, <dx,AD dy> = {rhs!r}, relative difference {rel:.2e}"


# kernels whose forward code is non-smooth in the sampled region (min/max/sqrt/limiter
# branches): finite differences may cross a branch, so only the dot-product test is exact
NON_SMOOTH = {"eke_fluxes": 1e-2, "eke_diffusivities": 1e-2}


@pytest.mark.parametrize("name", FORWARD)
def test_kernel_tangent_against_fd(name, grid):
    k = REGISTRY[name]
    best, errs = kernel_tangent_fd(k, kernel_args(k, grid, seed=5), np.random.default_rng(6))
    tol = NON_SMOOTH.get(name, 1e-8)
    assert best <= tol, f"{name}: best |1 - FD/TL| = {best:.2e} over eps sweep {errs}"


# ---------------------------------------------------------------------------
# full step at 2 degrees
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def spun_up():
    """The paper configuration at 2 degrees after 30 steps (nonzero velocities and EKE)."""
    m = setups.acc(2.0)
    m.run(30)
    return m


STATE_CONTROLS = ("u", "v", "w", "temp", "salt", "eke", "psi", "dpsi", "du", "dv", "dtemp", "dsalt", "deke", "dpsin")
PARAM_CONTROLS = ("A_h_field", "r_bot_field", "kappaM_field", "surface_taux", "t_star", "kappaH_0")


def _random_direction(model, controls, rng):
    d = {}
    for c in controls:
        v = core.get_control(model, c)
        if np.ndim(v) == 0:
            d[c] = float(rng.standard_normal())
        else:
            scale = float(np.sqrt(np.mean(np.square(v)))) or 1.0
            d[c] = rng.standard_normal(np.shape(v)) * scale
    return d


class Linear(adjoint.losses.Loss):
    """J = sum_f <w_f, X_f(N)>: a linear functional of the final state (for dot-product tests)."""

    def __init__(self, weights):
        self.w = weights
        self.fields = tuple(weights)

    def value(self, fields, n):
        return float(sum(np.vdot(self.w[f], fields[f]) for f in self.fields))

    def gradient(self, fields, n):
        return dict(self.w)


DOT_FIELDS = ("u", "v", "w", "temp", "salt", "eke", "psi")


@pytest.mark.parametrize("steps", [1, 10])
def test_full_step_dot_product(spun_up, steps):
    """<TLM dx, W TLM dx> = <dx, ADJ (W TLM dx)> for a random dx in every control.

    dy = W TLM dx with W = 1 / mean((TLM dx)_f^2) per field (the NEMOTAM form of the test):
    the left side is then a sum of positive terms of equal size, so the relative difference
    measures the adjoint and not cancellation in a random inner product (with a random dy,
    fields whose exact tangent vanishes -- e.g. psi's response to a temperature perturbation
    over a flat bottom -- contribute pure round-off with large weights)."""
    m = spun_up
    rng = np.random.default_rng(42 + steps)
    controls = STATE_CONTROLS + PARAM_CONTROLS
    dx = _random_direction(m, controls, rng)
    tl = adjoint.jvp(m, dx, steps, return_state=True)
    w = {f: tl[f] / np.mean(tl[f] ** 2) for f in DOT_FIELDS}
    lhs = sum(float(np.vdot(w[f], tl[f])) for f in DOT_FIELDS)
    g = adjoint.gradient(m, Linear(w), controls, steps)
    rhs = sum(float(np.vdot(dx[c], g[c])) if np.ndim(dx[c]) else dx[c] * g[c] for c in controls)
    rel = relative_difference(lhs, rhs)
    assert rel <= 1e-12, f"{steps} steps: <TLM dx, dy> = {lhs!r}, <dx, ADJ dy> = {rhs!r}, rel {rel:.2e}"


def test_gradient_value_and_restore(spun_up):
    """gradient() returns the loss of the forward sweep and leaves the model unchanged."""
    m = spun_up
    u0 = m.get("u").copy()
    itt = m.itt
    loss = adjoint.losses.FieldMSE("u", target=0.0, at_step=3)
    g = adjoint.gradient(m, loss, ["A_h"], 3)
    assert m.itt == itt and np.array_equal(m.get("u"), u0)
    from adjoint.gradcheck import _loss_value
    assert g.value == pytest.approx(_loss_value(m, loss, 3), rel=1e-14)


def _fd_sweep(model, loss, control, direction, steps, eps):
    """Central differences of J along ``direction`` for each eps (relative to the control's size)."""
    base = core.get_control(model, control)
    out = []
    for e in eps:
        vals = []
        for s in (1, -1):
            core.set_control(model, control, base + s * e * direction)
            try:
                vals.append(_loss(model, loss, steps))
            finally:
                core.set_control(model, control, base)
        out.append((vals[0] - vals[1]) / (2 * e))
    return np.array(out)


def _loss(model, loss, steps):
    from adjoint.gradcheck import _loss_value
    return _loss_value(model, loss, steps)


@pytest.mark.parametrize("steps", [1, 10, 100])
@pytest.mark.parametrize("control", ["temp", "A_h", "r_bot"])
def test_tangent_fd_adjoint(control, steps):
    """Tangent vs central FD (eps sweep), adjoint vs tangent, Taylor slopes; paper config at 2 deg."""
    m = setups.acc(2.0)
    m.run(5)  # leave the state of rest (u, v nonzero)
    rng = np.random.default_rng(7)
    loss = adjoint.losses.FieldMSE("u", target=0.0, at_step=steps)
    base = core.get_control(m, control)
    if control == "temp":
        d = rng.standard_normal(base.shape) * m.grid.maskT[:, 2:-2, 2:-2]
        eps = np.array([1e-2, 1e-3, 1e-4, 1e-5, 1e-6])
    else:
        d = 1.0
        eps = base * np.array([1e-2, 1e-3, 1e-4, 1e-5, 1e-6])
    J0, tl = adjoint.jvp(m, {control: d}, steps, loss=loss)
    g = adjoint.gradient(m, loss, [control], steps)
    ad = float(np.vdot(g[control], d)) if np.ndim(d) else g[control] * d
    # adjoint == tangent
    assert relative_difference(ad, tl) <= 1e-12, f"adjoint {ad!r} vs tangent {tl!r}"
    # tangent vs finite differences over a sweep of step sizes
    fd = _fd_sweep(m, loss, control, d, steps, eps)
    err = np.abs(1 - fd / tl)
    assert err.min() <= 1e-6, f"best |1 - FD/TLM| = {err.min():.2e}; sweep {err}"
    # Taylor remainders: slope 1 for |J(x+hd)-J(x)|, >= 1.9 for |J(x+hd)-J(x)-h dJ.d|
    base_c = core.get_control(m, control)

    def J(h):
        core.set_control(m, control, base_c + h * d)
        try:
            return _loss(m, loss, steps)
        finally:
            core.set_control(m, control, base_c)

    # start where the first-order term dominates the remainder by ~10x: estimate the
    # curvature c2 = R1(h)/h^2 at a large step and take h0 = 0.1 |dJ.d| / c2
    # ... but also where R1 stays far above the round-off floor of J (~1e-16 |J0|, amplified by
    # the cancellation) for 5 halvings: R1(h0) >= 4^5 * 1e2 * 2.2e-16 |J0|
    # (J is nearly linear in A_h over one step, so that can take h up to 100 eps[0], a
    # doubling of A_h; below that floor the window depended on round-off: with one
    # elliptic-solve ordering the 4th halving sat at R1 ~ 3e-19, |J0| ~ 2e-5, slope 1.70)
    h = float(eps[0]) * 10
    c2 = abs(J(h) - J0 - h * tl) / h ** 2
    floor = 4.0 ** 5 * 1e2 * 2.2e-16 * abs(J0)
    h0 = min(10 * h, max(min(h, 0.1 * abs(tl) / c2), np.sqrt(floor / c2))) if c2 > 0 else h
    # 8 halvings: at the larger steps of long runs a cell may cross the convective switch
    # (a discontinuity of the forward map), so require 4 consecutive slopes >= 1.9
    hs = h0 / 2.0 ** np.arange(9)
    r0, r1, s0, s1 = taylor_slopes(J, J0, tl, hs)
    assert np.all(np.abs(s0[-4:] - 1) <= 0.1), f"first-order slopes {s0}"
    ok = s1 >= 1.9
    run = max((len(x) for x in "".join("1" if o else "0" for o in ok).split("0")), default=0)
    assert run >= 4, f"second-order slopes {s1} (remainders {r1})"
