"""Gradient check in the style of MITgcm's ``grdchk``: for chosen control elements,
the central finite-difference gradient, the adjoint gradient, the tangent-linear
gradient and ``1 - FD/AD``.

Command line: ``stommel gradcheck --resolution 2 --steps 10 --loss u --controls temp,A_h,r_bot``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

from . import core, losses

__all__ = ["gradcheck", "add_subparser", "main"]

LOSSES = ("u", "v", "temp", "psi", "eke", "transport")

#: perturbation scale of controls whose default value is 0: large enough that the loss
#: change stays far above its round-off for eps ~ 1e-4 (the loss is ~1e-4 and smooth here)
ZERO_SCALE = {"kappaH_0": 1e-2, "kappaM_0": 1e-2, "kappaM_field": 1e-2}


def make_loss(name, steps):
    """The loss used by the check: ``transport`` (ACC transport in Sv) or the mean square of a field."""
    if name == "transport":
        return losses.ACCTransport(at_step=steps)
    if name not in LOSSES:
        raise ValueError(f"loss={name!r} is invalid: allowed are {LOSSES}")
    return losses.FieldMSE(name, target=0.0, at_step=steps)


def _loss_value(model, loss, steps):
    """Run ``steps`` steps from the model's state and return the loss; the model is restored."""
    start = core.capture(model)
    levels = dict(model.fields.levels)
    loss.setup(model)
    loss.bind(steps)
    ev = loss.steps(steps)
    J = 0.0
    try:
        for n in range(1, steps + 1):
            model.step()
            if n in ev:
                J += loss.value(core._loss_fields(model, loss, model.fields), n)
    finally:
        model.fields.levels.update(levels)
        core.restore(model, start)
    return J


def _points(model, control, npoints, rng):
    """Indices (no-halo layout) of ``npoints`` wet elements of an array control."""
    val = core.get_control(model, control)
    if np.ndim(val) == 0:
        return [None]
    g = model.grid
    target = core.CONTROLS[control][1].split("@")[0]
    mask = None
    if np.ndim(val) == 3:
        dims = core.VARIABLES[target].dims
        m = g.maskW if dims[0] == "zw" else {"xu": g.maskU, "xt": g.maskT}[dims[2]] if dims[1] == "yt" else g.maskV
        mask = m[:, 2:-2, 2:-2] > 0
    elif np.ndim(val) == 2:
        mask = g.maskT[-1, 2:-2, 2:-2] > 0
    else:
        mask = np.ones(np.shape(val), dtype=bool)
    idx = np.argwhere(mask)
    pick = rng.choice(len(idx), size=min(npoints, len(idx)), replace=False)
    return [tuple(int(x) for x in idx[p]) for p in sorted(pick)]


def gradcheck(model, loss, controls, steps, eps=1e-4, npoints=2, seed=0, out=sys.stdout):
    """Print a grdchk table and return its rows.

    ``eps`` is relative: the perturbation of a control element is ``eps * max(|value|, scale)``
    where ``scale`` is the RMS of the control field (so zero-valued elements are perturbed too).
    """
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    g = core.gradient(model, loss, controls, steps)
    t_ad = time.perf_counter() - t0
    J0 = g.value
    rows = []
    print(f"grdchk: loss J = {J0:.15e} after {steps} steps; adjoint in {t_ad:.1f} s", file=out)
    print(f"{'control':>14s} {'element':>18s} {'FD gradient':>22s} {'adjoint gradient':>22s} "
          f"{'tangent gradient':>22s} {'1-FD/AD':>10s}", file=out)
    for c in controls:
        val = core.get_control(model, c)
        scale = float(np.sqrt(np.mean(np.square(val)))) if np.ndim(val) else abs(float(val))
        scale = scale or ZERO_SCALE.get(c, 1.0)
        for pt in _points(model, c, npoints, rng):
            if pt is None:
                x0 = float(val)
                h = eps * max(abs(x0), scale)
                ad = float(g[c])
                d = 1.0
            else:
                x0 = float(val[pt])
                h = eps * max(abs(x0), scale, 1e-30)
                ad = float(g[c][pt])
                d = np.zeros_like(val)
                d[pt] = 1.0
            Jp = _perturbed(model, loss, steps, c, val, pt, +h)
            Jm = _perturbed(model, loss, steps, c, val, pt, -h)
            fd = (Jp - Jm) / (2 * h)
            _, tl = core.jvp(model, {c: d}, steps, loss=loss)
            ratio = (1 - fd / ad) if ad != 0 else (fd - ad)
            el = "-" if pt is None else ",".join(str(x) for x in pt)
            print(f"{c:>14s} {el:>18s} {fd:22.14e} {ad:22.14e} {tl:22.14e} {ratio:10.2e}", file=out)
            rows.append({"control": c, "element": pt, "fd": fd, "adjoint": ad, "tangent": tl, "ratio": ratio})
    r = np.array([row["ratio"] for row in rows if math.isfinite(row["ratio"])])
    if r.size:
        print(f"RMS of {r.size} ratios: {float(np.sqrt(np.mean(r ** 2))):.3e}", file=out)
    return rows


def _perturbed(model, loss, steps, c, val, pt, h):
    orig = val.copy() if np.ndim(val) else float(val)
    try:
        if pt is None:
            core.set_control(model, c, orig + h)
        else:
            v = orig.copy()
            v[pt] += h
            core.set_control(model, c, v)
        return _loss_value(model, loss, steps)
    finally:
        core.set_control(model, c, orig)


def add_subparser(subparsers):
    """Register ``stommel gradcheck``."""
    p = subparsers.add_parser("gradcheck", help="finite-difference check of adjoint and tangent gradients",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--resolution", type=float, default=2.0, help="ACC grid spacing in degrees (default 2)")
    p.add_argument("--config", default="paper")
    p.add_argument("--steps", type=int, default=10, help="time steps (default 10)")
    p.add_argument("--spinup", type=int, default=0, help="steps run before the check (default 0)")
    p.add_argument("--loss", default="u", choices=LOSSES, help="loss (mean square of a field, or the ACC transport)")
    p.add_argument("--controls", default="temp,A_h,r_bot",
                   help=f"comma-separated controls (default temp,A_h,r_bot); allowed: {','.join(core.CONTROLS)}")
    p.add_argument("--eps", type=float, default=1e-4, help="relative finite-difference step (default 1e-4)")
    p.add_argument("--points", type=int, default=2, help="elements checked per array control (default 2)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_run)
    return p


def _run(args):
    from ocean_core import setups

    if args.steps < 1:
        raise SystemExit(f"--steps={args.steps} is invalid: must be >= 1")
    if args.eps <= 0:
        raise SystemExit(f"--eps={args.eps} is invalid: must be > 0")
    controls = [c.strip() for c in args.controls.split(",") if c.strip()]
    bad = [c for c in controls if c not in core.CONTROLS]
    if bad:
        raise SystemExit(f"--controls: unknown {bad}; allowed are {sorted(core.CONTROLS)}")
    model = setups.acc(resolution=args.resolution, config=args.config)
    if args.spinup:
        model.run(args.spinup)
    gradcheck(model, make_loss(args.loss, args.steps), controls, args.steps, eps=args.eps, npoints=args.points,
              seed=args.seed)
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(prog="stommel")
    sub = p.add_subparsers(dest="cmd", required=True)
    add_subparser(sub)
    a = p.parse_args(["gradcheck"] + list(argv if argv is not None else sys.argv[1:]))
    return a.func(a)


if __name__ == "__main__":
    raise SystemExit(main())
