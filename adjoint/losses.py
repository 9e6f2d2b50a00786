"""Loss functions with their own derivatives.

A loss is a sum over chosen steps n of a function of the model state *after* step n
(step counts are relative to the start of the :func:`adjoint.gradient` /
:func:`adjoint.jvp` call).  Fields are passed as NumPy arrays **without halos**, in
the layout of :meth:`ocean_core.model.Model.snapshot` (``[k, j, i]``, Veros names).

Interface (subclass :class:`Loss` for your own loss)::

    class MyLoss(Loss):
        fields = ("temp",)                       # state fields the loss reads
        def steps(self, nsteps): return {nsteps}  # when it is evaluated
        def value(self, fields, n): ...           # -> float
        def gradient(self, fields, n): ...        # -> {"temp": dJ/dtemp (same shape)}

or, without subclassing, ``Custom(fields=("temp",), value=f, gradient=g, at_step=10)``.
"""

from __future__ import annotations

import numpy as np

from ocean_core.variables import VARIABLES

__all__ = ["Loss", "FieldMSE", "ACCTransport", "Custom", "Sum"]

#: state fields a loss may read (``psi_full``: psi with halos, for the island values)
LOSS_FIELDS = ("u", "v", "w", "temp", "salt", "eke", "psi", "rho", "Nsqr", "psi_full")


def _wet_mask(grid, name):
    dims = VARIABLES[name].dims
    if len(dims) == 2:
        # psi: corner points that are not island boundaries or land are still meaningful;
        # default weight 1 everywhere in the interior
        return np.ones((grid.ny, grid.nx))
    m = {("zt", "yt", "xt"): grid.maskT, ("zt", "yt", "xu"): grid.maskU, ("zt", "yu", "xt"): grid.maskV,
         ("zw", "yt", "xt"): grid.maskW}[dims]
    return m[:, 2:-2, 2:-2].copy()


class Loss:
    """Base class: ``J = sum_{n in steps(N)} value(fields after step n, n)``."""

    fields: tuple = ()

    def steps(self, nsteps):
        """Set of steps (1..nsteps) at which the loss is evaluated."""
        return {nsteps}

    def setup(self, model):
        """Called once with the model before use (grid-dependent preparation)."""

    def bind(self, nsteps):
        """Called once with the number of steps of the run before use."""
        self._nsteps = nsteps

    def value(self, fields, n):
        raise NotImplementedError

    def gradient(self, fields, n):
        raise NotImplementedError

    def __add__(self, other):
        return Sum(self, other)


def _step_set(at_step, window, nsteps):
    if at_step is not None and window is not None:
        raise ValueError("give either at_step or window, not both")
    if window is not None:
        a, b = window
        if not (1 <= a <= b):
            raise ValueError(f"window={window!r} is invalid: need 1 <= start <= end")
        s = set(range(int(a), int(b) + 1))
    elif at_step is not None:
        if isinstance(at_step, (int, np.integer)):
            s = {int(at_step)}
        else:
            s = {int(x) for x in at_step}
    else:
        s = {int(nsteps)}
    bad = [x for x in s if x < 1 or x > nsteps]
    if bad:
        raise ValueError(f"loss evaluation step(s) {sorted(bad)} outside 1..{nsteps} (steps={nsteps})")
    return s


class FieldMSE(Loss):
    """Weighted mean squared error of a field against a target.

    ``J = (1/|S|) sum_{n in S} sum_p w_p (x_p(n) - t_p(n))^2 / sum_p w_p``

    Parameters
    ----------
    field : str
        One of u, v, w, temp, salt, eke, psi, rho, Nsqr.
    target : float, array (no-halo shape) or callable(n) -> array, default 0
    at_step : int or iterable of int, optional
        Evaluation step(s); default: the last step.
    window : (start, end), optional
        Evaluate at every step start..end (inclusive) instead.
    mask : array of bool/0-1 (no-halo shape), optional
        Default: the wet points of the field's grid location.
    weights : array (no-halo shape), optional
        Multiplied with the mask (e.g. cell volumes).
    """

    def __init__(self, field, target=0.0, at_step=None, window=None, mask=None, weights=None):
        if field not in LOSS_FIELDS:
            raise ValueError(f"field={field!r} is invalid: allowed are {LOSS_FIELDS}")
        self.field = field
        self.fields = (field,)
        self.target = target
        self.at_step, self.window = at_step, window
        self.mask, self.weights = mask, weights
        self._w = None

    def setup(self, model):
        w = _wet_mask(model.grid, self.field) if self.mask is None else np.asarray(self.mask, dtype=float)
        if self.weights is not None:
            w = w * np.asarray(self.weights, dtype=float)
        if w.sum() <= 0:
            raise ValueError("FieldMSE: mask/weights select no point")
        self._w = w / w.sum()

    def steps(self, nsteps):
        return _step_set(self.at_step, self.window, nsteps)

    def _target(self, n):
        t = self.target(n) if callable(self.target) else self.target
        return np.asarray(t, dtype=float)

    def value(self, fields, n):
        r = fields[self.field] - self._target(n)
        return float(np.sum(self._w * r * r)) * self._norm

    def gradient(self, fields, n):
        r = fields[self.field] - self._target(n)
        return {self.field: 2.0 * self._w * r * self._norm}

    _norm = 1.0

    def bind(self, nsteps):
        self._norm = 1.0 / len(self.steps(nsteps))


class ACCTransport(Loss):
    """ACC transport T = psi(south wall) - psi(north wall) in Sv, or ``(T - target)^2`` with a target,
    averaged over the evaluation steps.  Reads ``psi_full``, the streamfunction *with* halos:
    the southern-wall (island) value lives in the first halo row."""

    fields = ("psi_full",)

    def __init__(self, target=None, at_step=None, window=None):
        self.target = target
        self.at_step, self.window = at_step, window
        self._norm = 1.0

    def setup(self, model):
        self._ny = model.grid.ny

    def steps(self, nsteps):
        return _step_set(self.at_step, self.window, nsteps)

    def bind(self, nsteps):
        self._norm = 1.0 / len(self.steps(nsteps))

    def transport(self, psi_full):
        return (psi_full[1, 2] - psi_full[self._ny + 1, 2]) / 1e6

    def value(self, fields, n):
        T = self.transport(fields["psi_full"])
        v = T if self.target is None else (T - self.target) ** 2
        return float(v) * self._norm

    def gradient(self, fields, n):
        T = self.transport(fields["psi_full"])
        g = 1.0 if self.target is None else 2.0 * (T - self.target)
        gp = np.zeros_like(fields["psi_full"])
        gp[1, 2] += g * 1e-6 * self._norm
        gp[self._ny + 1, 2] -= g * 1e-6 * self._norm
        return {"psi_full": gp}


class Custom(Loss):
    """A user loss from two callables on the no-halo fields: ``value(fields) -> float`` and
    ``gradient(fields) -> {name: array}``, evaluated at ``at_step`` (default last step)."""

    def __init__(self, fields, value, gradient, at_step=None, window=None):
        bad = [f for f in fields if f not in LOSS_FIELDS]
        if bad:
            raise ValueError(f"fields={bad} invalid: allowed are {LOSS_FIELDS}")
        self.fields = tuple(fields)
        self._value, self._gradient = value, gradient
        self.at_step, self.window = at_step, window

    def steps(self, nsteps):
        return _step_set(self.at_step, self.window, nsteps)

    def value(self, fields, n):
        return float(self._value(fields))

    def gradient(self, fields, n):
        return self._gradient(fields)


class Sum(Loss):
    """Sum of losses."""

    def __init__(self, *losses):
        self.losses = losses
        self.fields = tuple(sorted({f for l in losses for f in l.fields}))

    def setup(self, model):
        for l in self.losses:
            l.setup(model)

    def bind(self, nsteps):
        self._n = nsteps
        for l in self.losses:
            l.bind(nsteps)

    def steps(self, nsteps):
        s = set()
        for l in self.losses:
            s |= l.steps(nsteps)
        return s

    def value(self, fields, n):
        return sum(l.value(fields, n) for l in self.losses if n in l.steps(self._n))

    def gradient(self, fields, n):
        out = {}
        for l in self.losses:
            if n in l.steps(self._n):
                for k, g in l.gradient(fields, n).items():
                    out[k] = out[k] + g if k in out else g
        return out
