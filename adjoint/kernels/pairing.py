"""Registration of tangent-linear and adjoint kernels beside their forward kernel.

Naming convention (checked when a kernel is registered), for a forward kernel ``F``
with outputs ``O``, inputs ``I`` and active (differentiable) inputs ``A``:

tangent ``F.name + "_tl"``
    ``body(i, j[, k], d_o... [, scr_...], d_a..., <primal args>)``: writes ``d_o`` for every
    non-scratch output ``o`` from the directions ``d_a``; primal args are any of ``F.args``
    (the linearisation point).
adjoint ``F.name + "_ad"``
    ``body(i, j[, k], b_a... [, scr_...], b_o..., <primal args>)``: **accumulates**
    ``b_a += (dO/da)^T b_o`` for every active input, in gather form (the thread of point p
    writes only ``b_a[p]``).  For an active *scalar* input ``s`` the kernel writes the
    per-point contribution into the array ``b_s`` (shape of the iteration space), which the
    caller sums.

Options of the derivative (e.g. a regularised square root) are scalar arguments named
``opt_*`` read from the model's scalars (``Model.fields.scalars``).

The derivative is that of the discrete forward code, branch by branch (max/min/abs/where
take the derivative of the branch taken; the convective switch is frozen).
"""

from __future__ import annotations

import inspect

from ocean_core.kernels.framework import Kernel, kernel

__all__ = ["tangent_of", "adjoint_of"]


def _params(pyfunc, space):
    p = list(inspect.signature(pyfunc).parameters)
    return p[3:] if space in ("3d", "rows") else p[2:]


def _split(params, prefix, allowed_out):
    outs = []
    for a in params:
        if (a.startswith(prefix) and a[len(prefix):] in allowed_out) or a.startswith("scr_"):
            outs.append(a)
        else:
            break
    return tuple(outs)


def _check_primals(fwd, rest, prefix, kname):
    for a in rest:
        if a.startswith(prefix) or a.startswith("opt_"):
            continue
        if a not in fwd.args:
            raise TypeError(f"{kname}: argument {a!r} is neither {prefix}<name> nor an argument of {fwd.name}")


def tangent_of(fwd: Kernel, reference=None, space=None):
    """Register the decorated body as the tangent-linear kernel of ``fwd`` (``space`` overrides
    the forward's iteration space, as for :func:`adjoint_of`)."""
    space = space or fwd.space

    def deco(pyfunc):
        name = fwd.name + "_tl"
        params = _params(pyfunc, space)
        real_out = [o for o in fwd.outputs if not o.startswith("scr_")]
        outs = _split(params, "d_", set(real_out))
        missing = [o for o in real_out if "d_" + o not in outs]
        if missing:
            raise TypeError(f"{name}: must write d_{missing[0]} (outputs first)")
        rest = params[len(outs):]
        miss_in = [a for a in fwd.active if "d_" + a not in rest]
        if miss_in:
            raise TypeError(f"{name}: missing tangent input d_{miss_in[0]}")
        _check_primals(fwd, rest, "d_", name)
        k = kernel(space, outputs=outs, reference=reference, name=name, kind="tangent",
                   passes=fwd.passes if space == fwd.space else 1)(pyfunc)
        k.of = fwd
        fwd.tangent = k
        return k
    return deco


def adjoint_of(fwd: Kernel, reference=None, space=None):
    """Register the decorated body as the adjoint kernel of ``fwd`` (gather form, accumulating).
    ``space`` overrides the forward's iteration space (a ``"rows"`` forward recurrence whose
    adjoint is written as a ``"column"`` body)."""
    space = space or fwd.space

    def deco(pyfunc):
        name = fwd.name + "_ad"
        params = _params(pyfunc, space)
        outs = _split(params, "b_", set(fwd.active))
        missing = [a for a in fwd.active if "b_" + a not in outs]
        if missing:
            raise TypeError(f"{name}: must accumulate b_{missing[0]} (outputs first)")
        rest = params[len(outs):]
        real_out = [o for o in fwd.outputs if not o.startswith("scr_")]
        miss = [o for o in real_out if "b_" + o not in rest]
        if miss:
            raise TypeError(f"{name}: missing adjoint input b_{miss[0]}")
        _check_primals(fwd, rest, "b_", name)
        k = kernel(space, outputs=outs, reference=reference, name=name, kind="adjoint")(pyfunc)
        k.of = fwd
        fwd.adjoint = k
        return k
    return deco
