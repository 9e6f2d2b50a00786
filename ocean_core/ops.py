"""Operations of a model step and the named-field store they act on.

A step is a flat list of operations.  Each operation reads and writes *named*
fields; a name is resolved by a :class:`Fields` store:

* ``"u@tau"`` -- time level ``tau`` (``taum1``, ``tau``, ``taup1``) of a prognostic field,
* ``"A_h_t"`` -- a parameter / forcing field, a workspace field or a grid array,
* scalar settings (``"dt_mom"``, ``"kappaH_0"``, ...).

The same operation list drives the forward model, the tangent-linear model
(operations in order, on a store of tangent fields) and the adjoint model
(operations in reverse order, on a store of adjoint fields, accumulating into the
inputs).  Kernel operations get their tangent/adjoint kernels from the registry
(:mod:`adjoint.kernels`); the few non-kernel operations (halo exchange, the
elliptic solve, the island constraints) carry their derivatives here.
"""

from __future__ import annotations

import numpy as np

from .grid import cyclic_exchange
from .kernels.framework import Kernel
from .variables import VARIABLES, shape_of

LEVELS = ("taum1", "tau", "taup1")


class Fields:
    """Store of named arrays (halo-inclusive, backend arrays).

    ``levels`` maps level names to indices of the leading axis of prognostic arrays.
    Missing non-prognostic arrays are allocated (zero) on first use when ``lazy`` is set.
    """

    def __init__(self, grid, backend, nisle, levels=None, lazy=True, scalars=None):
        self.grid = grid
        self.backend = backend
        self.nisle = nisle
        self.levels = levels if levels is not None else {"taum1": 0, "tau": 1, "taup1": 2}
        self.arrays: dict = {}
        self.scalars: dict = dict(scalars or {})
        self.lazy = lazy

    def shape(self, var):
        s = shape_of(var, self.grid, self.nisle)
        if VARIABLES[var].time_levels:
            s = (3,) + s
        return s

    def alloc(self, var):
        a = self.backend.zeros(self.shape(var))
        self.arrays[var] = a
        return a

    def __contains__(self, name):
        var = name.split("@")[0]
        return var in self.arrays or var in self.scalars

    def __getitem__(self, name):
        if "@" in name:
            var, lev = name.split("@")
            a = self.arrays.get(var)
            if a is None:
                if not self.lazy:
                    raise KeyError(name)
                a = self.alloc(var)
            return a[self.levels[lev]]
        a = self.arrays.get(name)
        if a is not None:
            return a
        if name in self.scalars:
            return self.scalars[name]
        if self.lazy and name in VARIABLES:
            return self.alloc(name)
        raise KeyError(f"unknown field {name!r}")

    def __setitem__(self, name, value):
        """In-place assignment into an existing (or lazily allocated) array: ``F[name] = value``
        (also makes ``F[name] += x`` act in place)."""
        a = self[name]
        if isinstance(a, (int, float)):
            self.scalars[name] = value
        elif a is not value:
            a[...] = value

    def set_scalar(self, name, value):
        self.scalars[name] = value

    def rotate(self):
        """(taum1, tau, taup1) <- (tau, taup1, taum1)."""
        L = self.levels
        L["taum1"], L["tau"], L["taup1"] = L["tau"], L["taup1"], L["taum1"]

    def zero(self):
        for a in self.arrays.values():
            a[...] = 0.0
        for k in self.scalars:
            self.scalars[k] = 0.0


def _is_level(name):
    return "@" in name


class Op:
    """Base class: ``reads``/``writes`` are field names (after mapping)."""

    name = "op"
    reads: tuple = ()
    writes: tuple = ()
    active: tuple = ()

    def forward(self, F):
        raise NotImplementedError

    def tangent(self, F, T):
        raise NotImplementedError(f"{self.name}: no tangent")

    def adjoint(self, F, A):
        raise NotImplementedError(f"{self.name}: no adjoint")

    def __repr__(self):
        return f"<{type(self).__name__} {self.name}>"


class KernelOp(Op):
    """Run a registered kernel; ``mapping`` renames kernel arguments to field names.

    Arguments not in ``mapping`` resolve to the field of the same name.
    """

    def __init__(self, kernel: Kernel, **mapping):
        self.kernel = kernel
        self.name = kernel.name
        unknown = set(mapping) - set(kernel.args)
        if unknown:
            raise TypeError(f"{kernel.name}: unknown arguments {sorted(unknown)}")
        self.map = {a: mapping.get(a, a) for a in kernel.args}
        self.writes = tuple(self.map[a] for a in kernel.outputs)
        self.reads = tuple(self.map[a] for a in kernel.inputs)
        self.active = tuple(self.map[a] for a in kernel.active)
        self._backend = None

    def forward(self, F):
        args = [F[self.map[a]] for a in self.kernel.args]
        self.kernel(*args, backend=F.backend.name)

    # tangent/adjoint kernels follow the naming convention of adjoint.kernels:
    # tangent args: d_<out>..., then d_<active in>... and primal args (by name);
    # adjoint args: b_<active in>... (accumulated), then b_<out>... and primal args.
    def _resolve(self, k: Kernel, F, D, prefix):
        """Arguments of a tangent/adjoint kernel: ``prefix + name`` from D (tangent/adjoint store),
        everything else from F.  Active scalars: the tangent gets ``D.scalars[name]``; the
        adjoint gets a per-point array that is summed into ``D.scalars[name]`` afterwards."""
        args = []
        scalar_adj = []
        for a in k.args:
            if a.startswith(prefix) and a[len(prefix):] in self.map:
                name = self.map[a[len(prefix):]]
                if not isinstance(F[name], (int, float)):
                    args.append(D[name])
                elif prefix == "d_":
                    args.append(float(D.scalars.get(name, 0.0)))
                else:
                    shape = self._space_shape(F, k)
                    buf = F.backend.zeros(shape)
                    scalar_adj.append((name, buf))
                    args.append(buf)
            else:
                args.append(F[self.map.get(a, a)])
        return args, scalar_adj

    def _space_shape(self, F, k):
        """Shape of the points of kernel ``k`` (a tangent/adjoint of this op's kernel)."""
        first = F[self.map[self.kernel.outputs[0]]]
        return first.shape if k.space == "3d" else first.shape[-2:]

    def tangent(self, F, T):
        k = self.kernel.tangent
        if k is None:
            raise NotImplementedError(f"kernel {self.kernel.name} has no tangent kernel")
        args, _ = self._resolve(k, F, T, "d_")
        k(*args, backend=F.backend.name)

    def adjoint(self, F, A):
        k = self.kernel.adjoint
        if k is None:
            raise NotImplementedError(f"kernel {self.kernel.name} has no adjoint kernel")
        args, scalar_adj = self._resolve(k, F, A, "b_")
        k(*args, backend=F.backend.name)
        xp = F.backend.xp
        for name, buf in scalar_adj:
            A.scalars[name] = A.scalars.get(name, 0.0) + float(xp.sum(buf))
        # outputs are written (not accumulated) by the forward kernel: their adjoint is consumed
        for o in self.writes:
            if not o.startswith("scr_"):
                A[o][...] = 0.0


class FusedOp(Op):
    """A fused launch (:func:`ocean_core.kernels.framework.fuse`) of consecutive kernel ops.

    ``forward`` runs the fused kernel once (memory streamed once, same bits as the parts
    one after another; fields in ``internal`` are then not written); ``tangent`` runs the
    parts' tangents in order and ``adjoint`` their adjoints in reverse order, so the
    derivatives are exactly those of the unfused ops.
    The fused kernel's arguments are mapped to the fields the part ops map them to; a
    fused argument that two parts map to different fields is an error.
    """

    def __init__(self, kernel: Kernel, *parts: KernelOp):
        if kernel.kind != "fused":
            raise TypeError(f"FusedOp needs a fused kernel, got {kernel.name} (kind={kernel.kind!r})")
        got = [p.kernel.name for p in parts]
        want = [k.name for k, _ in kernel.parts]
        if got != want:
            raise TypeError(f"FusedOp({kernel.name}): parts {got}, expected {want} in this order")
        mapping: dict = {}
        for op, (k, ren) in zip(parts, kernel.parts):
            for a in k.args:
                fa, field = ren.get(a, a), op.map[a]
                if mapping.setdefault(fa, field) != field:
                    raise ValueError(f"FusedOp({kernel.name}): argument {fa!r} maps to {mapping[fa]!r} in one "
                                     f"part and to {field!r} in {k.name}")
        # internal outputs (kept in registers by the fused launch) are not arguments of it
        self.internal = tuple(mapping[a] for a in kernel.internal)
        self.fused = KernelOp(kernel, **{a: f for a, f in mapping.items() if a in kernel.args})
        self.kernel = kernel
        self.parts = tuple(parts)
        self.name = kernel.name
        self.writes = self.fused.writes
        self.reads = self.fused.reads
        self.active = tuple(dict.fromkeys(a for p in parts for a in p.active if a not in self.writes))

    def forward(self, F):
        self.fused.forward(F)

    def tangent(self, F, T):
        for p in self.parts:
            p.tangent(F, T)

    def adjoint(self, F, A):
        for p in reversed(self.parts):
            p.adjoint(F, A)


class ExchangeOp(Op):
    """Periodic halo exchange in x, in place: ``a[..., -2:] = a[..., 2:4]; a[..., :2] = a[..., -4:-2]``
    (:func:`ocean_core.grid.cyclic_exchange`)."""

    def __init__(self, field, cyclic=True):
        self.field = field
        self.name = f"exchange({field})"
        self.reads = (field,)
        self.writes = (field,)
        self.active = (field,)
        self.cyclic = cyclic

    def forward(self, F):
        if not self.cyclic:
            return
        cyclic_exchange(F[self.field])

    def tangent(self, F, T):
        self.forward(T)

    def adjoint(self, F, A):
        if not self.cyclic:
            return
        a = A[self.field]
        a[..., 2:4] += a[..., -2:]
        a[..., -4:-2] += a[..., :2]
        a[..., -2:] = 0.0
        a[..., :2] = 0.0


class SolveOp(Op):
    """Streamfunction tendency: ``dpsi[taup1] = A^{-1} where(bmask, forc, 2 dpsi[tau] - dpsi[taum1])``,
    then the periodic exchange.  The first guess enters only on island-boundary rows
    (where it is the boundary value, zero for dpsi); the solve itself is direct."""

    name = "solve_streamfunction"

    def __init__(self, solver, forc="forc", out="dpsi@taup1", now="dpsi@tau", old="dpsi@taum1", cyclic=True):
        self.solver = solver
        self.forc, self.out, self.now, self.old = forc, out, now, old
        self.reads = (forc, now, old)
        self.writes = (out,)
        self.active = (forc, now, old)
        self.cyclic = cyclic
        self._bmask = None

    def _mask(self, be):
        if self._bmask is None or getattr(self, "_bmask_be", None) is not be:
            self._bmask = be.asarray(self.solver.isle_boundary_mask.astype(np.float64))
            self._bmask_be = be
        return self._bmask

    def _exchange(self, a):
        if self.cyclic:
            cyclic_exchange(a)

    def forward(self, F):
        be = F.backend
        m = self._mask(be)
        rhs = m * F[self.forc] + (1.0 - m) * (2.0 * F[self.now] - F[self.old])
        F[self.out][...] = self.solver.solve(rhs, backend=be)
        self._exchange(F[self.out])

    def tangent(self, F, T):
        be = F.backend
        m = self._mask(be)
        rhs = m * T[self.forc] + (1.0 - m) * (2.0 * T[self.now] - T[self.old])
        T[self.out][...] = self.solver.solve(rhs, backend=be)
        self._exchange(T[self.out])

    def adjoint(self, F, A):
        be = F.backend
        m = self._mask(be)
        b = A[self.out]
        if self.cyclic:  # adjoint of the exchange
            b[..., 2:4] += b[..., -2:]
            b[..., -4:-2] += b[..., :2]
            b[..., -2:] = 0.0
            b[..., :2] = 0.0
        lam = self.solver.solve(b, trans=True, backend=be)
        A[self.forc] += m * lam
        A[self.now] += 2.0 * (1.0 - m) * lam
        A[self.old] -= (1.0 - m) * lam
        b[...] = 0.0


class IslandOp(Op):
    """Rates of the island streamfunction values (island 0 held fixed):
    ``line_forc = circ(uloc, vloc) - circ(vel(dpsi[taup1]))``,
    ``dpsin[1:, tau] = line_psin[1:, 1:]^{-1} line_forc[1:]``; ``dpsin[0, tau] = 0``."""

    name = "island_rates"

    def __init__(self, solver, uloc="uloc", vloc="vloc", dpsi="dpsi@taup1", out="dpsin@tau"):
        self.solver = solver
        self.uloc, self.vloc, self.dpsi, self.out = uloc, vloc, dpsi, out
        self.reads = (uloc, vloc, dpsi)
        self.writes = (out,)
        self.active = (uloc, vloc, dpsi)
        self._w = None

    def _weights(self, be):
        if self._w is None or self._w[0] is not be:
            s = self.solver
            self._w = (be, be.asarray(s.Wu), be.asarray(s.Wv), be.asarray(s.Wd), be.asarray(s.line_psin_inv_full()))
        return self._w[1:]

    def _apply(self, F, D):
        Wu, Wv, Wd, Minv = self._weights(F.backend)
        xp = F.backend.xp
        lf = (xp.einsum("nji,ji->n", Wu, D[self.uloc]) + xp.einsum("nji,ji->n", Wv, D[self.vloc])
              - xp.einsum("nji,ji->n", Wd, D[self.dpsi]))
        D[self.out][...] = Minv @ lf

    def forward(self, F):
        self._apply(F, F)

    def tangent(self, F, T):
        self._apply(F, T)

    def adjoint(self, F, A):
        Wu, Wv, Wd, Minv = self._weights(F.backend)
        xp = F.backend.xp
        g = Minv.T @ A[self.out]
        A[self.uloc] += xp.einsum("n,nji->ji", g, Wu)
        A[self.vloc] += xp.einsum("n,nji->ji", g, Wv)
        A[self.dpsi] -= xp.einsum("n,nji->ji", g, Wd)
        A[self.out][...] = 0.0


class IslandPsiOp(Op):
    """Island part of the streamfunction step (island 0 held fixed):
    ``psi[taup1] += dt sum_{n>=1} (1.6 dpsin[n, tau] - 0.6 dpsin[n, taum1]) psin[n]``."""

    name = "island_psi"

    def __init__(self, psi="psi@taup1", now="dpsin@tau", old="dpsin@taum1", dt="dt_mom"):
        self.psi, self.now, self.old, self.dt = psi, now, old, dt
        self.reads = (psi, now, old)
        self.writes = (psi,)
        self.active = (psi, now, old)

    @staticmethod
    def _coef(F, D, now, old):
        from .constants import AB_EPS
        c = (1.5 + AB_EPS) * D[now] - (0.5 + AB_EPS) * D[old]
        c[0] = 0.0
        return c

    def forward(self, F):
        c = self._coef(F, F, self.now, self.old)
        xp = F.backend.xp
        F[self.psi][...] = F[self.psi] + F.scalars[self.dt] * xp.einsum("n,nji->ji", c, F["psin"])

    def tangent(self, F, T):
        c = self._coef(F, T, self.now, self.old)
        xp = F.backend.xp
        T[self.psi][...] = T[self.psi] + F.scalars[self.dt] * xp.einsum("n,nji->ji", c, F["psin"])

    def adjoint(self, F, A):
        from .constants import AB_EPS
        xp = F.backend.xp
        g = F.scalars[self.dt] * xp.einsum("nji,ji->n", F["psin"], A[self.psi])
        g[0] = 0.0
        A[self.now] += (1.5 + AB_EPS) * g
        A[self.old] -= (0.5 + AB_EPS) * g
        # psi is updated in place: its adjoint passes through unchanged
