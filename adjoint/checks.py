"""Verification of tangent-linear and adjoint code (Devito / NEMOTAM / MITgcm style).

* :func:`kernel_dot_product` -- ``<TL dx, dy>`` against ``<dx, AD dy>`` for one kernel pair;
* :func:`kernel_tangent_fd` -- the tangent against central finite differences of the
  forward kernel over a sweep of step sizes;
* :func:`taylor_slopes` -- slopes of the Taylor remainders ``|J(x + h d) - J(x)|`` (1) and
  ``|J(x + h d) - J(x) - h dJ.d|`` (2) over halvings of h.

Arguments are given as a dict ``name -> array or scalar`` holding every argument of
the forward kernel (outputs included; they are overwritten).
"""

from __future__ import annotations

import numpy as np

__all__ = ["kernel_dot_product", "kernel_tangent_fd", "taylor_slopes", "relative_difference"]


def relative_difference(a, b):
    """``|a - b| / max(|a|, |b|)`` (0 when both are 0)."""
    d = max(abs(a), abs(b))
    return 0.0 if d == 0 else abs(a - b) / d


def _is_scalar(x):
    return np.ndim(x) == 0


def _outputs(fwd):
    return [o for o in fwd.outputs if not o.startswith("scr_")]


def _run_forward(fwd, args):
    fwd(*[args[a] for a in fwd.args])


def _call_pair(k, fwd, args, dmap, prefix):
    """Call a tangent/adjoint kernel: ``prefix + name`` arguments come from ``dmap``."""
    call = []
    for a in k.args:
        if a.startswith(prefix) and a[len(prefix):] in fwd.args:
            call.append(dmap[a[len(prefix):]])
        else:
            call.append(args[a])  # primal argument or option (opt_*)
    k(*call)


def kernel_dot_product(fwd, args, rng, directions=None, adjoints=None):
    """Dot-product test of ``fwd.tangent`` and ``fwd.adjoint`` at the point ``args``.

    Returns ``(lhs, rhs, rel)`` with ``lhs = <TL dx, dy>``, ``rhs = <dx, AD dy>``.
    Random directions dx (active inputs) and dy (outputs) are drawn from ``rng`` unless
    given.  The adjoint accumulates into zero-initialised arrays.
    """
    args = dict(args)
    _run_forward(fwd, args)
    dx = {}
    for a in fwd.active:
        if directions is not None and a in directions:
            dx[a] = directions[a]
        elif _is_scalar(args[a]):
            dx[a] = float(rng.standard_normal())
        else:
            dx[a] = rng.standard_normal(np.shape(args[a]))
    dy = {}
    for o in _outputs(fwd):
        dy[o] = adjoints[o] if adjoints is not None and o in adjoints else rng.standard_normal(np.shape(args[o]))
    # tangent
    tmap = dict(dx)
    for o in _outputs(fwd):
        tmap[o] = np.zeros_like(args[o])
    _call_pair(fwd.tangent, fwd, args, tmap, "d_")
    lhs = sum(float(np.vdot(tmap[o], dy[o])) for o in _outputs(fwd))
    # adjoint
    amap = {o: dy[o].copy() for o in _outputs(fwd)}
    shape_pt = args[fwd.outputs[0]].shape if fwd.adjoint.space == "3d" else np.shape(args[fwd.outputs[0]])[-2:]
    for a in fwd.active:
        amap[a] = np.zeros(shape_pt) if _is_scalar(args[a]) else np.zeros_like(args[a])
    _call_pair(fwd.adjoint, fwd, args, amap, "b_")
    rhs = 0.0
    for a in fwd.active:
        if _is_scalar(args[a]):
            rhs += dx[a] * float(amap[a].sum())
        else:
            rhs += float(np.vdot(dx[a], amap[a]))
    return lhs, rhs, relative_difference(lhs, rhs)


def kernel_tangent_fd(fwd, args, rng, eps=(1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8), directions=None,
                      weights=None):
    """Tangent against central differences: returns ``(best_rel_error, errors)``.

    The scalar compared is ``<out(x + e dx) - out(x - e dx), w> / (2 e)`` against
    ``<TL dx, w>`` with random output weights w.  Perturbation sizes ``eps`` are relative to
    the maximum magnitude of each active input.
    """
    args = dict(args)
    _run_forward(fwd, args)
    base = {a: (args[a] if _is_scalar(args[a]) else args[a].copy()) for a in fwd.active}
    dx = {}
    for a in fwd.active:
        scale = max(abs(float(np.max(np.abs(base[a])))), 1e-30)
        d = directions[a] if directions is not None and a in directions else (
            float(rng.standard_normal()) if _is_scalar(base[a]) else rng.standard_normal(np.shape(base[a])))
        dx[a] = d * scale
    w = weights or {o: rng.standard_normal(np.shape(args[o])) for o in _outputs(fwd)}
    tmap = dict(dx)
    for o in _outputs(fwd):
        tmap[o] = np.zeros_like(args[o])
    _call_pair(fwd.tangent, fwd, args, tmap, "d_")
    tl = sum(float(np.vdot(tmap[o], w[o])) for o in _outputs(fwd))
    errs = []
    for e in eps:
        vals = []
        for sgn in (1.0, -1.0):
            a2 = dict(args)
            for o in fwd.outputs:
                a2[o] = np.zeros_like(args[o])
            for a in fwd.active:
                a2[a] = base[a] + sgn * e * dx[a]
            _run_forward(fwd, a2)
            vals.append(sum(float(np.vdot(a2[o], w[o])) for o in _outputs(fwd)))
        fd = (vals[0] - vals[1]) / (2 * e)
        errs.append(relative_difference(fd, tl) if tl != 0 or fd != 0 else 0.0)
    return min(errs), errs


def taylor_slopes(J, J0, dJd, hs):
    """Slopes of the Taylor remainders between successive step sizes.

    Parameters
    ----------
    J : callable(h) -> float, the loss at ``x + h d``
    J0 : float, the loss at x
    dJd : float, the directional derivative ``dJ.d`` (from the adjoint or tangent)
    hs : decreasing step sizes (typically halvings)

    Returns
    -------
    (r0, r1, s0, s1): remainders and their slopes ``log2(r(h_n)/r(h_{n+1}))`` (for halvings)
    """
    r0, r1 = [], []
    for h in hs:
        Jh = J(h)
        r0.append(abs(Jh - J0))
        r1.append(abs(Jh - J0 - h * dJd))
    hs = np.asarray(hs, dtype=float)
    lr = np.log(hs[:-1] / hs[1:])
    s0 = np.log(np.asarray(r0[:-1]) / np.asarray(r0[1:])) / lr
    s1 = np.log(np.asarray(r1[:-1]) / np.asarray(r1[1:])) / lr
    return np.asarray(r0), np.asarray(r1), s0, s1


def main(argv=None):
    """``python -m adjoint.checks [KERNEL ...]``: dot-product and tangent-FD check of kernel pairs
    on a tiny random grid (all registered pairs when no name is given)."""
    import argparse
    import time

    import adjoint.kernels  # noqa: F401  (registers the pairs)
    from ocean_core.kernels.framework import REGISTRY
    from ocean_core.testing import kernel_args, tiny_grid

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("kernels", nargs="*", help="forward kernel names")
    p.add_argument("--seed", type=int, default=3)
    a = p.parse_args(argv)
    names = a.kernels or [k.name for k in REGISTRY.values() if k.kind == "forward"]
    g = tiny_grid()
    worst = 0.0
    for n in names:
        if n not in REGISTRY:
            raise SystemExit(f"unknown kernel {n!r}")
        k = REGISTRY[n]
        if k.tangent is None or k.adjoint is None:
            print(f"{n:28s} MISSING tangent/adjoint pair")
            worst = max(worst, 1.0)
            continue
        t = time.time()
        lhs, rhs, rel = kernel_dot_product(k, kernel_args(k, g, seed=a.seed), np.random.default_rng(a.seed + 1))
        best, _ = kernel_tangent_fd(k, kernel_args(k, g, seed=a.seed), np.random.default_rng(a.seed + 2))
        worst = max(worst, rel)
        print(f"{n:28s} dot {rel:9.2e} (<TL dx,dy> = {lhs: .6e})  tangent vs FD {best:9.2e}  [{time.time() - t:.1f} s]")
    return 0 if worst <= 1e-13 else 1


if __name__ == "__main__":
    raise SystemExit(main())
