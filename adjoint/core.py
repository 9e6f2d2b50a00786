"""Tangent-linear and adjoint model of the whole step, controls, and the gradient
and Jacobian-vector-product drivers.

The step is the operation list of :class:`ocean_core.model.Model`.  Its tangent runs
the operations in order, each forward operation followed by its tangent (so the
linearisation point is the forward state of that operation).  Its adjoint runs
the operations of one step forward again from the stored state (recomputing all
intermediates), then their adjoints in reverse order.

Time levels.  A step reads ``X[tau]`` of the prognostic fields (u, v, w, temp, salt,
eke, psi, rho, Nsqr, dpsi) and the Adams-Bashforth histories ``D[taum1]`` (du, dv,
dtemp, dsalt, deke, dpsin, dpsi), and writes ``X[taup1]`` and ``D[tau]``; the levels
then rotate.  The adjoint store keeps the same level bookkeeping as the primal, so
the adjoint of "the state after step n" sits exactly where step n+1's reverse sweep
left the adjoint of its inputs; before a reverse step the input slots that are not
also outputs are zeroed.

Storage: this version stores the inputs of every step (store-all; about 2.8 MB per
step at 2 degrees) and recomputes one step's intermediates during the reverse sweep.
Checkpointing (binomial, memory and disk) plugs in at :class:`Trajectory`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ocean_core.ops import Fields
from ocean_core.variables import VARIABLES

from . import kernels as _kernels  # noqa: F401  (registers all tangent/adjoint kernels)

__all__ = ["gradient", "jvp", "Gradient", "CONTROLS", "STEP_INPUTS", "capture", "restore", "Trajectory",
           "set_control", "get_control"]

#: (field, level) pairs a step reads from the previous state
STEP_INPUTS = tuple((v, "tau") for v in ("u", "v", "w", "temp", "salt", "eke", "psi", "rho", "Nsqr", "dpsi")) + \
    tuple((v, "taum1") for v in ("du", "dv", "dtemp", "dsalt", "deke", "dpsin", "dpsi"))

#: controls: name -> (kind, where)
#:  state  : initial state field (level read by the first step); temp/salt carry rho and N^2
#:  field  : parameter or forcing field (same value every step)
#:  sum    : a scalar that multiplies a uniform field (gradient = sum of the field gradient)
#:  scalar : a scalar setting
CONTROLS = {
    "u": ("state", "u@tau"), "v": ("state", "v@tau"), "w": ("state", "w@tau"),
    "temp": ("state", "temp@tau"), "salt": ("state", "salt@tau"), "eke": ("state", "eke@tau"),
    "psi": ("state", "psi@tau"), "dpsi": ("state", "dpsi@tau"), "dpsi_old": ("state", "dpsi@taum1"),
    "du": ("state", "du@taum1"), "dv": ("state", "dv@taum1"), "dtemp": ("state", "dtemp@taum1"),
    "dsalt": ("state", "dsalt@taum1"), "deke": ("state", "deke@taum1"), "dpsin": ("state", "dpsin@taum1"),
    "A_h_field": ("field", "A_h_t"), "r_bot_field": ("field", "r_bot_t"), "kappaM_field": ("field", "kappaM"),
    "surface_taux": ("field", "surface_taux"), "surface_tauy": ("field", "surface_tauy"),
    "t_star": ("field", "t_star"), "t_rest": ("field", "t_rest"),
    "A_h": ("sum", "A_h_t"), "r_bot": ("sum", "r_bot_t"), "kappaM_0": ("sum", "kappaM"),
    "kappaH_0": ("scalar", "kappaH_0"),
}
_SEASONAL_BASE = {"surface_taux": "surface_taux_base", "surface_tauy": "surface_tauy_base", "t_star": "t_star_base"}


class Gradient(dict):
    """Gradient by control name (NumPy arrays without halos, floats for scalar controls);
    ``.value`` holds the loss, ``.info`` timings (s) and the trajectory size (bytes)."""

    value: float = math.nan
    info: dict = {}


# ---------------------------------------------------------------------------
# state capture / restore
# ---------------------------------------------------------------------------

def capture(model):
    """Copy of everything a step reads (on the model's backend) plus clock and levels."""
    F = model.fields
    snap = {(v, l): F[f"{v}@{l}"].copy() for v, l in STEP_INPUTS}
    snap["_clock"] = (model.itt, model.time)
    return snap


def restore(model, snap):
    """Write a :func:`capture` back into the current level slots of the model."""
    F = model.fields
    for (v, l), a in ((k, a) for k, a in snap.items() if k != "_clock"):
        F[f"{v}@{l}"][...] = a
    model.itt, model.time = snap["_clock"]


class Trajectory:
    """Store-all trajectory: the inputs of every step, kept on the model's backend."""

    def __init__(self):
        self.snaps = []

    def store(self, model):
        self.snaps.append(capture(model))

    def load(self, model, n):
        """Restore the inputs of step n (1-based) into the model."""
        restore(model, self.snaps[n - 1])

    def nbytes(self):
        return sum(a.nbytes for s in self.snaps for k, a in s.items() if k != "_clock")


# ---------------------------------------------------------------------------
# halos: controls are interior fields; x halos are periodic copies, y halos
# copy the nearest row for parameter fields and are land (zero) for the state
# ---------------------------------------------------------------------------

def _spatial(name):
    return VARIABLES[name].dims[-1][0] == "x"


def _embed(model, name, interior, yedge):
    g = model.grid
    dims = VARIABLES[name].dims
    if not _spatial(name):
        return np.array(interior, dtype=np.float64)
    full = np.zeros(tuple(g.NX if d[0] == "x" else g.NY if d[0] == "y" else g.nz for d in dims))
    full[..., 2:-2, 2:-2] = interior
    if g.cyclic_x:
        full[..., :, -2:] = full[..., :, 2:4]
        full[..., :, :2] = full[..., :, -4:-2]
    if yedge:
        full[..., :2, :] = full[..., 2:3, :]
        full[..., -2:, :] = full[..., -3:-2, :]
    return full


def _fold(model, name, full, yedge):
    """Adjoint of :func:`_embed`: the interior gradient."""
    g = model.grid
    if not _spatial(name):
        return np.array(full, dtype=np.float64)
    b = np.array(full, dtype=np.float64, copy=True)
    if yedge:
        b[..., 2, :] += b[..., 0, :] + b[..., 1, :]
        b[..., -3, :] += b[..., -2, :] + b[..., -1, :]
    if g.cyclic_x:
        b[..., :, 2:4] += b[..., :, -2:]
        b[..., :, -4:-2] += b[..., :, :2]
    return b[..., 2:-2, 2:-2].copy()


def _var_of(target):
    return target.split("@")[0]


def _check_controls(model, controls):
    out = []
    for c in controls:
        if c not in CONTROLS:
            raise ValueError(f"control {c!r} is unknown: allowed are {sorted(CONTROLS)}")
        out.append(c)
    return out


def _field_target(model, c):
    kind, target = CONTROLS[c]
    if kind == "field" and model.settings.seasonal and target in _SEASONAL_BASE:
        return _SEASONAL_BASE[target]
    return target


def set_control(model, name, value):
    """Set a control of the model: a no-halo array for state/field controls (halos are filled
    the way the model expects), a float for scalar controls (``A_h``, ``r_bot`` and ``kappaM_0``
    set a uniform field)."""
    _check_controls(model, [name])
    kind, _ = CONTROLS[name]
    target = _field_target(model, name)
    F = model.fields
    be = model.backend
    if kind == "state":
        F[target][...] = be.asarray(_embed(model, _var_of(target), np.asarray(value, dtype=float), False))
        if name in ("temp", "salt"):
            from ocean_core.kernels.tracers import equation_of_state as eos
            eos(F["rho@tau"], F["Nsqr@tau"], F["temp@tau"], F["salt@tau"], F["maskT"], F["maskW"], F["zt"],
                F["dzw"], backend=be.name)
    elif kind == "field":
        F[target][...] = be.asarray(_embed(model, target, np.asarray(value, dtype=float), True))
    elif kind == "sum":
        F[target][...] = float(value)
    else:
        F.scalars[target] = float(value)


def get_control(model, name):
    """Current value of a control (no-halo array or float)."""
    _check_controls(model, [name])
    kind, _ = CONTROLS[name]
    target = _field_target(model, name)
    F = model.fields
    a = F[target]
    if kind == "scalar":
        return float(a)
    a = model.backend.to_numpy(a)
    if kind == "sum":
        return float(a.flat[0])
    return a[..., 2:-2, 2:-2].copy() if _spatial(_var_of(target)) else a.copy()


# ---------------------------------------------------------------------------
# losses: no-halo fields after step n
# ---------------------------------------------------------------------------

def _loss_fields(model, loss, F):
    be = model.backend
    out = {}
    for f in loss.fields:
        if f == "psi_full":
            out[f] = be.to_numpy(F["psi@tau"]).copy()
        else:
            out[f] = be.to_numpy(F[f"{f}@tau"])[..., 2:-2, 2:-2].copy()
    return out


def _add_loss_adjoint(model, loss, n, A, fields):
    be = model.backend
    for f, g in loss.gradient(fields, n).items():
        if f == "psi_full":
            A["psi@tau"][...] += be.asarray(g)
        else:
            A[f"{f}@tau"][..., 2:-2, 2:-2] += be.asarray(g)


def _prepare(model, loss, steps):
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps={steps!r} is invalid: must be an integer >= 1")
    if loss is not None:
        loss.setup(model)
        loss.bind(int(steps))
        return loss.steps(int(steps))
    return set()


def _new_store(model):
    F = model.fields
    return Fields(model.grid, model.backend, model.solver.nisle, levels=dict(F.levels), lazy=True)


def _unrotate(levels):
    levels["taum1"], levels["tau"], levels["taup1"] = levels["taup1"], levels["taum1"], levels["tau"]


def _eos_op():
    from ocean_core.kernels.tracers import equation_of_state
    from ocean_core.ops import KernelOp
    return KernelOp(equation_of_state, rho="rho@tau", Nsqr="Nsqr@tau", temp="temp@tau", salt="salt@tau")


def _eos_state_tangent(model, T):
    """rho and N^2 of the initial state follow temp and salt (tangent of the EOS)."""
    _eos_op().tangent(model.fields, T)


def _eos_state_adjoint(model, A):
    """Adjoint of :func:`_eos_state_tangent`: rho and N^2 adjoints flow to temp and salt."""
    _eos_op().adjoint(model.fields, A)


# ---------------------------------------------------------------------------
# tangent-linear model
# ---------------------------------------------------------------------------

def jvp(model, controls, steps, loss=None, sqrt_eps=0.0, return_state=False):
    """Forward-mode derivative: the tangent of ``steps`` model steps in the direction ``controls``.

    Parameters
    ----------
    model : ocean_core.model.Model
        Linearisation point: its current state.  The model is left unchanged.
    controls : dict
        ``{control name: direction}`` (no-halo arrays for fields, floats for scalars); see
        :data:`CONTROLS`.
    steps : int
    loss : adjoint.losses.Loss, optional
        If given, returns ``(J, dJ)``: the loss and its directional derivative.
    sqrt_eps : float
        Regularisation of the sqrt derivative in the EKE closure (0 = exact branch-wise).
    return_state : bool
        Also return the tangent of the final state (no-halo arrays by field name).
    """
    names = _check_controls(model, controls)
    esteps = _prepare(model, loss, steps)
    F = model.fields
    start = capture(model)
    levels0 = dict(F.levels)
    T = _new_store(model)
    F.scalars["opt_sqrt_eps"] = float(sqrt_eps)
    be = model.backend
    for c in names:
        kind, _ = CONTROLS[c]
        d = controls[c]
        target = _field_target(model, c)
        if kind == "state":
            T[target][...] = be.asarray(_embed(model, _var_of(target), np.asarray(d, dtype=float), False))
        elif kind == "field":
            T.arrays[target] = be.asarray(_embed(model, target, np.asarray(d, dtype=float), True))
        elif kind == "sum":
            T.arrays[target] = be.zeros(T.shape(target)) + float(d)
        else:
            T.scalars[target] = float(d)
    if "temp" in names or "salt" in names:
        _eos_state_tangent(model, T)
    J = 0.0
    dJ = 0.0
    try:
        for n in range(1, int(steps) + 1):
            for op in model.ops:
                op.forward(F)
                op.tangent(F, T)
            model.check()
            model.finish_step()
            T.levels.update(F.levels)
            if n in esteps:
                fields = _loss_fields(model, loss, F)
                J += loss.value(fields, n)
                g = loss.gradient(fields, n)
                for f, gf in g.items():
                    t = be.to_numpy(T["psi@tau"]) if f == "psi_full" else be.to_numpy(T[f"{f}@tau"])[..., 2:-2, 2:-2]
                    dJ += float(np.vdot(gf, t))
        state = None
        if return_state:
            state = {v: be.to_numpy(T[f"{v}@tau"])[..., 2:-2, 2:-2].copy()
                     for v in ("u", "v", "w", "temp", "salt", "eke", "psi")}
    finally:
        F.levels.update(levels0)
        restore(model, start)
        F.scalars["opt_sqrt_eps"] = 0.0
    if loss is None:
        return state
    return (J, dJ, state) if return_state else (J, dJ)


# ---------------------------------------------------------------------------
# adjoint model
# ---------------------------------------------------------------------------

def gradient(model, loss, controls, steps, sqrt_eps=0.0, trajectory=None):
    """Gradient of ``loss`` over ``steps`` steps with respect to ``controls``.

    Parameters
    ----------
    model : ocean_core.model.Model
        Its current state is the initial state; the model is left unchanged.
    loss : adjoint.losses.Loss
    controls : iterable of str
        Names from :data:`CONTROLS` (state fields, parameter/forcing fields, scalars).
    steps : int
    sqrt_eps : float
        Regularisation of the sqrt derivative in the EKE closure (0 = exact branch-wise).

    Returns
    -------
    Gradient
        ``{control: dJ/dcontrol}`` (no-halo NumPy arrays, or floats) with ``.value = J``.
    """
    names = _check_controls(model, controls)
    esteps = _prepare(model, loss, steps)
    F = model.fields
    be = model.backend
    traj = trajectory or Trajectory()
    levels0 = dict(F.levels)
    start = capture(model)
    J = 0.0
    import time as _t
    t0 = _t.perf_counter()
    try:
        # ---- forward sweep: store the inputs of every step ----
        for n in range(1, int(steps) + 1):
            traj.store(model)
            model.step_ops()
            model.check()
            model.finish_step()
            if n in esteps:
                J += loss.value(_loss_fields(model, loss, F), n)
        be.synchronize()
        t1 = _t.perf_counter()
        # ---- reverse sweep ----
        F.scalars["opt_sqrt_eps"] = float(sqrt_eps)
        A = _new_store(model)
        for n in range(int(steps), 0, -1):
            # levels: "after step n"; the loss reads/writes X@tau
            if n in esteps:
                _add_loss_adjoint(model, loss, n, A, _loss_fields(model, loss, F))
            _unrotate(F.levels)
            A.levels.update(F.levels)
            # input slots start from zero, except dpsi[tau], which the next step also reads
            # (as its first guess dpsi[taum1]) and whose adjoint it has already put there
            for v, l in STEP_INPUTS:
                if (v, l) != ("dpsi", "tau"):
                    A[f"{v}@{l}"][...] = 0.0
            traj.load(model, n)
            for op in model.ops:
                op.forward(F)
            for op in reversed(model.ops):
                op.adjoint(F, A)
        be.synchronize()
        t2 = _t.perf_counter()
        # levels now "before step 1" = initial layout; F holds the initial state
        if "temp" in names or "salt" in names:
            _eos_state_adjoint(model, A)
        out = Gradient()
        for c in names:
            kind, _ = CONTROLS[c]
            target = _field_target(model, c)
            if kind == "state":
                out[c] = _fold(model, _var_of(target), be.to_numpy(A[target]), False)
            elif kind == "field":
                out[c] = _fold(model, target, be.to_numpy(A[target]), True)
            elif kind == "sum":
                out[c] = float(be.to_numpy(A[target]).sum())
            else:
                out[c] = float(A.scalars.get(target, 0.0))
        out.value = J
        out.info = {"forward_sweep_s": t1 - t0, "reverse_sweep_s": t2 - t1, "steps": int(steps),
                    "trajectory_bytes": traj.nbytes()}
        return out
    finally:
        F.levels.update(levels0)
        restore(model, start)
        F.scalars["opt_sqrt_eps"] = 0.0
