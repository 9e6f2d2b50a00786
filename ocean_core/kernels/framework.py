"""Single-source kernels for the CPU (Numba ``prange``) and NVIDIA GPUs (numba-cuda).

A *kernel* is a pointwise body ``body(i, j, k, out..., in...)`` compiled with
``numba.njit(inline="always")``.  It never allocates and never returns a value;
it writes the outputs of the point ``(k, j, i)`` only (gather form), so any
launch order gives the same result and no atomics are needed.

Launchers are *generated* Python source: for every module of bodies a file
``stommel_gen_<module>_<hash>.py`` is written to a cache directory and imported.
It holds, per kernel,

* ``<name>_cpu(nk, nj, ni, *arrays)``: a ``prange`` loop nest calling the body,
* ``<name>_cuda(nk, nj, ni, *arrays)``: a ``cuda.jit`` kernel calling the same body.

Generated files are used (instead of closures) because numba's on-disk cache only
works for module-level functions and because ``inline="always"`` cannot be used
through ``*args``.  The hash in the file name covers the body module and every
project module it depends on, so an edited body can never run stale cached code
(numba's cache only watches the launcher file).

Iteration spaces (``space=``):

``"3d"``      body(i, j, k, ...) for every (k, j, i) of the first argument's shape
              ``(nz, ny+4, nx+4)``;
``"2d"``      body(i, j, ...) for every (j, i) of the last two dimensions of the
              first argument;
``"column"``  body(i, j, ...) like ``"2d"``, the body loops over k itself
              (vertical solves, cumulative sums);
``"rows"``    body(i, j, k, ...) for every (j, i) of the last two dimensions of the
              first argument and ``k = 0 .. passes * nz - 1`` (nz: first dimension of
              the first 3-d argument), k increasing for each column: a body may read
              what it wrote at the same (j, i) for an earlier k (column recurrences
              through memory: cumulative sums, a sum used by a second pass).  On the
              CPU k is the outer and i the inner loop of a row j, so the i loop is
              contiguous and can vectorise (a ``"column"`` body walks k innermost,
              stride ny*nx); on the GPU one thread per (j, i) loops over k.

Arrays are C-ordered ``[k, j, i]`` (x fastest), with 2 halo cells in x and y.

*Fused launches* (:func:`fuse`, ``kind="fused"``): one loop nest calling the bodies of
several forward kernels of a module at every point, so arrays they share are streamed
once; a later part may read an earlier part's output at the same point only, so the
outputs are bitwise those of the parts launched in turn.  They are forward launches only
(tangent and adjoint come from the parts, :class:`ocean_core.ops.FusedOp`).  They need the
:data:`LLVM_OPTIONS` below: without them LICM gives up on loops with more than 250 memory
accesses and the fused loop is not vectorised (2x slower than the parts).

``split=True`` (``"3d"`` only, CPU launcher only): in the rows ``2 <= j < nj-2`` the i
loop runs over ``2 <= i < ni-2`` first and over the 4 halo points after it; other rows
run whole.  Every point is still computed by the same body, so results do not change;
LLVM sees the index ranges and can drop the bound tests and Numba's negative-index
wraparound of ``i-1``/``j-1`` from the interior loop and vectorise it.  It helps bodies
of the form ``if interior: stencil else: 0``; others it can slow down (the body is
inlined twice), so it is chosen per kernel by measurement.  ``same_shapes=True`` adds
a test that every 3-d argument has the launch shape to the interior-row condition:
bodies take their bounds from ``a.shape`` of an input, which LLVM then knows equals the
loop extents (faster for some kernels, slower for others: measured per kernel too).

``interior=`` (with ``split``): a second body, the same formula for interior points
(``2 <= i < ni-2``, ``2 <= j < nj-2``) without the interior test; the split launcher calls it
in the interior loop (the main body, which calls it after its test, everywhere else, and
on the GPU).  The i part of an interior test left in the loop (``i < u.shape[2] - 2``: LLVM
does not equate ``u.shape[2]`` with the loop bound) makes the vectorised loop predicated,
and every load of a j- or k-indexed array under the predicate becomes a masked gather of
one address; without it those loads are hoisted out of the i loop.  Same operations, same
bits (the CUDA simulator test compares the two bodies bit for bit).
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
import sys
import tempfile
import types
from pathlib import Path

import numba
import numba.extending

__all__ = ["device", "helper", "kernel", "fuse", "Kernel", "REGISTRY", "launcher_module", "kernel_dir"]

#: decorator for pointwise bodies and for large helpers with few call sites: inlined
#: into the caller at the Numba IR level (needed so that array arguments carry no
#: reference counting through the ``prange`` body; see the kernels notes).  Numba's IR
#: inliner re-types the caller at every inlined call, so compile time grows quickly
#: with the number of inlined call sites: keep them to a few dozen per kernel.
device = numba.njit(inline="always", error_model="numpy")

#: decorator for small helpers called many times (flux partial derivatives, guards):
#: compiled as ordinary functions that LLVM inlines; cheap to compile.
helper = numba.njit(error_model="numpy")

def same_extent(a, nk, nj, ni):
    """True unless ``a`` is a 3-d array whose shape is not ``(nk, nj, ni)`` (used in jit code)."""
    return getattr(a, "ndim", 0) != 3 or a.shape == (nk, nj, ni)


@numba.extending.overload(same_extent)
def _same_extent_jit(a, nk, nj, ni):
    if isinstance(a, numba.types.Array) and a.ndim == 3:
        return lambda a, nk, nj, ni: a.shape[0] == nk and a.shape[1] == nj and a.shape[2] == ni
    return lambda a, nk, nj, ni: True


#: LLVM options set once for the process before any kernel compiles.  LICM stops hoisting
#: and promoting in a loop with more than 250 memory accesses (its MemorySSA caps); the
#: array base pointers and shapes of a larger loop body (a fused kernel, or a big kernel)
#: are then reloaded per iteration, and the loop vectoriser gives up ("cannot identify
#: array bounds").  Measured at 0.25 deg, 1 thread: two lateral_friction bodies in one
#: loop 21 ms scalar -> 10.5 ms vectorised; the unfused kernels unchanged and bitwise the
#: same.  The options only lift analysis limits (no floating-point reassociation).  They
#: are written into every generated launcher, so cached code built without them is not
#: reused.  ``STOMMEL_LLVM_OPTIONS`` replaces them ("" for none).
LLVM_OPTIONS = tuple(os.environ.get(
    "STOMMEL_LLVM_OPTIONS",
    "-licm-mssa-max-acc-promotion=100000 -licm-mssa-optimization-cap=100000 -memssa-check-limit=100000",
).split())


def _set_llvm_options():
    import llvmlite.binding as llvm  # noqa: PLC0415

    if getattr(llvm, "_stommel_options_set", None) == LLVM_OPTIONS:
        return
    if LLVM_OPTIONS and llvm.llvm_version_info[0] < 11:
        # the LICM/MemorySSA caps exist from LLVM 11 on; an unknown option would end the process
        import warnings  # noqa: PLC0415
        warnings.warn(f"LLVM {llvm.llvm_version_info} is older than 11: fused kernels may not vectorise",
                      RuntimeWarning, stacklevel=2)
        return
    for opt in LLVM_OPTIONS:
        llvm.set_option("stommel", opt)
    llvm._stommel_options_set = LLVM_OPTIONS


_set_llvm_options()

#: every kernel, forward, tangent and adjoint, by name
REGISTRY: dict[str, "Kernel"] = {}

SPACES = ("3d", "2d", "column", "rows")


class Kernel:
    """A registered kernel: body, iteration space, argument roles.

    Parameters
    ----------
    body : numba dispatcher
        The ``inline="always"`` pointwise body.
    space : {"3d", "2d", "column", "rows"}
        Iteration space (see module docstring).
    passes : int
        ``"rows"`` only: the number of sweeps over k (k runs to ``passes * nz``).
    split : bool
        ``"3d"`` only: interior i range and halo points in separate loops (module docstring).
    same_shapes : bool
        With ``split``: the interior loop runs only where every 3-d argument has the launch
        shape (else the row runs whole), so LLVM may equate ``a.shape`` with the extents.
    outputs : tuple of str
        Names of the arguments the body writes (they come first in the signature).
    inputs : tuple of str
        Names of the remaining arguments, in order (arrays and scalars).
    reference : callable, optional
        Plain NumPy implementation ``reference(*inputs) -> tuple(outputs)`` used by
        the tests; it must not be the generated code.
    kind : {"forward", "tangent", "adjoint", "diagnostic"}
        Diagnostic kernels are not part of the differentiated step and need no pair.
    active : tuple of str
        For forward kernels: the inputs the outputs depend on differentiably.
    accumulate : bool
        Adjoint kernels accumulate (``+=``) into their outputs.
    parts : tuple of (Kernel, dict), optional
        ``kind="fused"`` only (see :func:`fuse`): the kernels whose bodies the launcher
        calls one after the other at every point, each with its argument renames
        ``{part argument: fused argument}``; ``body`` is then None.
    interior : numba dispatcher, optional
        ``"3d"`` only: the body for interior points, without the interior test (module
        docstring); same signature as ``body``.  Called by the interior loop of a split launch:
        the kernel's own, or that of a split fused launch it is a part of.
    """

    def __init__(self, body, name, module, space, outputs, inputs, reference=None,
                 kind="forward", active=(), doc="", passes=1, split=False, same_shapes=False,
                 parts=None, interior=None):
        if space not in SPACES:
            raise ValueError(f"kernel {name!r}: space={space!r}, allowed: {SPACES}")
        self.body = body
        self.name = name
        self.module = module
        self.space = space
        self.passes = int(passes)
        self.split = bool(split)
        self.same_shapes = bool(same_shapes)
        self.outputs = tuple(outputs)
        self.inputs = tuple(inputs)
        self.reference = reference
        self.kind = kind
        self.active = tuple(active)
        self.tangent: Kernel | None = None
        self.adjoint: Kernel | None = None
        self.parts = tuple(parts) if parts else ()
        if interior is not None and space != "3d":
            raise ValueError(f"kernel {name!r}: interior= needs space='3d' (it is used by split launches)")
        self.interior = interior
        self.internal: tuple = ()  # fused kernels: outputs of parts kept in registers (see fuse)
        self.__doc__ = doc

    @property
    def args(self):
        return self.outputs + self.inputs

    def __repr__(self):
        return f"<Kernel {self.module}.{self.name} space={self.space} out={self.outputs}>"

    # -- launching ---------------------------------------------------------
    def cpu(self):
        """The generated CPU launcher ``f(nk, nj, ni, *args)``."""
        return getattr(launcher_module(self.module), f"{self.name}_cpu")

    def cuda(self):
        """The generated CUDA kernel ``f[blocks, threads](nk, nj, ni, *args)``."""
        return getattr(launcher_module(self.module, cuda=True), f"{self.name}_cuda")

    def extents(self, first, args=()):
        """(nk, nj, ni) of the launch; ``"rows"`` kernels need ``args`` (nz of the first 3-d one)."""
        shape = first.shape
        if self.space == "3d":
            if len(shape) != 3:
                raise ValueError(f"kernel {self.name}: first argument must be 3-d, got shape {shape}")
            return shape[0], shape[1], shape[2]
        if self.space == "rows":
            nz = next(a.shape[0] for a in (first,) + tuple(args) if getattr(a, "ndim", 0) == 3)
            return nz * self.passes, shape[-2], shape[-1]
        return 1, shape[-2], shape[-1]

    def __call__(self, *args, backend=None):
        """Run on the backend of the arrays (``backend`` overrides: "cpu" or "cuda")."""
        if len(args) != len(self.args):
            raise TypeError(f"kernel {self.name} takes {len(self.args)} arguments {self.args}, got {len(args)}")
        nk, nj, ni = self.extents(args[0], args)
        if backend is None:
            backend = "cuda" if hasattr(args[0], "__cuda_array_interface__") else "cpu"
        if backend == "cpu":
            self.cpu()(nk, nj, ni, *args)
        elif backend == "cuda":
            launch_cuda(self, (nk, nj, ni), args)
        else:
            raise ValueError(f"backend={backend!r}, allowed: 'cpu', 'cuda'")


def kernel(space, outputs, reference=None, name=None, kind="forward", active=None, passes=1, split=False,
           same_shapes=False, interior=None):
    """Register a pointwise body as a kernel.

    The decorated function's signature must be ``(i, j, k, *outputs, *inputs)`` for
    ``space="3d"`` and ``"rows"``, ``(i, j, *outputs, *inputs)`` otherwise.  Returns the
    :class:`Kernel`; the compiled body is ``Kernel.body``.  ``interior`` (a :data:`device`
    function with the same parameters) is the body for interior points of a split launch.
    """
    outputs = tuple(outputs)

    def deco(pyfunc):
        kname = name or pyfunc.__name__
        params = list(inspect.signature(pyfunc).parameters)
        nidx = 3 if space in ("3d", "rows") else 2
        idx = params[:nidx]
        expected = ["i", "j", "k"][:nidx]
        if idx != expected:
            raise TypeError(f"kernel {kname}: first parameters must be {expected}, got {idx}")
        rest = params[nidx:]
        if tuple(rest[: len(outputs)]) != outputs:
            raise TypeError(f"kernel {kname}: outputs {outputs} must be the first arguments after the indices, got {rest}")
        inputs = tuple(rest[len(outputs):])
        if kname in REGISTRY and REGISTRY[kname].module != pyfunc.__module__:
            raise ValueError(f"kernel name {kname!r} registered twice ({REGISTRY[kname].module}, {pyfunc.__module__})")
        body = device(pyfunc)
        act = tuple(active) if active is not None else ()
        _check_interior(kname, interior, params)
        k = Kernel(body, kname, pyfunc.__module__, space, outputs, inputs, reference=reference,
                   kind=kind, active=act, doc=pyfunc.__doc__ or "", passes=passes, split=split,
                   same_shapes=same_shapes, interior=interior)
        REGISTRY[kname] = k
        return k

    return deco


def _check_interior(kname, interior, params):
    """An interior body must be a device function with the kernel's parameters."""
    if interior is None:
        return
    py = getattr(interior, "py_func", interior)  # a plain function under NUMBA_DISABLE_JIT
    if not callable(py):
        raise TypeError(f"kernel {kname}: interior={interior!r} must be a @device function")
    got = list(inspect.signature(py).parameters)
    if got != list(params):
        raise TypeError(f"kernel {kname}: interior body {py.__name__} has parameters {got}, expected {list(params)}")


def fuse(name, *parts, split=False, same_shapes=False, doc="", internal=(), body=None, interior=None):
    """Register a *fused launch* of forward kernels of one module: one loop nest that calls
    the bodies of ``parts`` one after the other at every point.

    Each part is a kernel or ``(kernel, {part argument: fused argument})`` (renames, so that
    an output of one part can be an input of a later part, e.g. tracer_advection's ``dtemp``
    is tracer_ab2's ``dtemp_now``).  A later part may read an earlier part's output **at
    the same point only** (the loop visits each point once, all parts in order); no part may
    write an argument an earlier part reads or writes.  Then every output is bitwise the
    same as launching the parts one after another (tested for every fused kernel), while
    memory is streamed once instead of once per part.

    A fused kernel (``kind="fused"``) is a forward launch only: its tangent and adjoint
    are those of its parts (:class:`ocean_core.ops.FusedOp` runs them in order / in
    reverse), so it needs no derivative code of its own.  Its reference applies the
    parts' references in order.

    ``internal`` names outputs of earlier parts that only later parts read (intermediate
    tendencies): a fused launch with internal outputs keeps them in registers and does not
    store them, so it needs a hand-written ``body`` (the parts' bodies write arrays) with
    the signature ``(i, j, k, *outputs, *inputs)`` of the fused kernel, internal outputs
    left out; it must compute the parts' formulas in the parts' order of operations (the
    tests require the stored outputs to be bitwise those of the parts).  The step then
    never writes the internal fields (``Model(fused=False)`` runs the parts and keeps them).

    With ``split``, the interior loop calls ``interior`` (a hand-written ``body``'s interior
    form, see :func:`kernel`) or, without a ``body``, each part's interior body where it has
    one.
    """
    norm = []
    for p in parts:
        k, ren = (p if isinstance(p, tuple) else (p, {}))
        norm.append((k, dict(ren)))
    if len(norm) < 2:
        raise ValueError(f"fused kernel {name!r}: needs at least 2 parts, got {len(norm)}")
    first = norm[0][0]
    for k, ren in norm:
        if k.kind != "forward":
            raise ValueError(f"fused kernel {name!r}: part {k.name} has kind={k.kind!r}, allowed: 'forward'")
        if k.module != first.module:
            raise ValueError(f"fused kernel {name!r}: part {k.name} is in {k.module}, not {first.module}")
        if (k.space, k.passes) != (first.space, first.passes) or k.space not in ("3d", "2d"):
            raise ValueError(f"fused kernel {name!r}: parts must share a '3d' or '2d' space, got "
                             f"{[(q.name, q.space) for q, _ in norm]}")
        bad = set(ren) - set(k.args)
        if bad:
            raise ValueError(f"fused kernel {name!r}: renames of unknown arguments of {k.name}: {sorted(bad)}")
    outputs, inputs = [], []
    for k, ren in norm:
        for a in k.outputs:
            fa = ren.get(a, a)
            if fa in outputs or fa in inputs:
                raise ValueError(f"fused kernel {name!r}: {k.name} writes {fa!r}, which an earlier part "
                                 "reads or writes (a later point could see the new value)")
            outputs.append(fa)
        for a in k.inputs:
            fa = ren.get(a, a)
            if fa not in outputs and fa not in inputs:
                inputs.append(fa)
    internal = tuple(internal)
    bad = [a for a in internal if a not in outputs]
    if bad:
        raise ValueError(f"fused kernel {name!r}: internal={bad} are not outputs of its parts {outputs}")
    if internal and body is None:
        raise ValueError(f"fused kernel {name!r}: internal outputs {internal} need a hand-written body")
    # an internal output must be read by a later part (else it would simply be lost)
    for a in internal:
        if not any(a in [ren.get(q, q) for q in k.inputs] for k, ren in norm):
            raise ValueError(f"fused kernel {name!r}: internal output {a!r} is read by no part")
    outputs = tuple(o for o in outputs if o not in internal)
    inputs = tuple(a for a in inputs if a not in internal)
    pybody = None
    if body is not None:
        pybody = getattr(body, "py_func", body)
        params = list(inspect.signature(pybody).parameters)
        idx = ["i", "j", "k"] if first.space == "3d" else ["i", "j"]
        want = idx + list(outputs) + list(inputs)
        if params != want:
            raise TypeError(f"fused kernel {name!r}: body {pybody.__name__} has parameters {params}, "
                            f"expected {want}")
        _check_interior(name, interior, params)
    elif interior is not None:
        raise ValueError(f"fused kernel {name!r}: interior= needs a hand-written body (else the parts' are used)")
    internal_set = set(internal)

    def reference(*args):
        vals = dict(zip(inputs, args))
        for k, ren in norm:
            res = k.reference(*[vals[ren.get(a, a)] for a in k.inputs])
            res = res if isinstance(res, (tuple, list)) else (res,)
            for a, r in zip(k.outputs, res):
                vals[ren.get(a, a)] = r
        return tuple(vals[o] for o in outputs if o not in internal_set)

    if name in REGISTRY:
        raise ValueError(f"kernel name {name!r} registered twice")
    doc = doc or (pybody.__doc__ if pybody is not None else "") or (
        "Fused launch of " + ", ".join(k.name for k, _ in norm) + ".")
    k = Kernel(device(pybody) if pybody is not None else None, name, first.module, first.space, outputs, inputs,
               reference=reference, kind="fused", doc=doc,
               passes=first.passes, split=split, same_shapes=same_shapes, parts=norm, interior=interior)
    k.internal = internal
    REGISTRY[name] = k
    return k


# ---------------------------------------------------------------------------
# code generation
# ---------------------------------------------------------------------------

_PROJECT_PACKAGES = ("ocean_core", "adjoint")
_loaded: dict[tuple, types.ModuleType] = {}


def kernel_dir() -> Path:
    """Directory for generated launcher files (and numba's cache of them)."""
    env = os.environ.get("STOMMEL_KERNEL_DIR")
    if env:
        d = Path(env)
    elif os.environ.get("NUMBA_CACHE_DIR"):
        d = Path(os.environ["NUMBA_CACHE_DIR"]) / "stommel_gen"
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        d = Path(base) / "stommel" / "gen"
    try:
        d.mkdir(parents=True, exist_ok=True)
        probe = d / ".write_probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError:
        d = Path(tempfile.gettempdir()) / f"stommel_gen_{os.getuid() if hasattr(os, 'getuid') else 0}"
        d.mkdir(parents=True, exist_ok=True)
    return d


def _dependency_files(modname: str) -> list[str]:
    """Source files of ``modname`` and every project module its globals come from."""
    seen: dict[str, str] = {}

    def visit(name):
        if name in seen or not name.split(".")[0] in _PROJECT_PACKAGES:
            return
        mod = sys.modules.get(name) or importlib.import_module(name)
        f = getattr(mod, "__file__", None)
        if f is None:
            return
        seen[name] = f
        for val in vars(mod).values():
            owner = None
            if isinstance(val, types.ModuleType):
                owner = val.__name__
            elif isinstance(val, Kernel):
                owner = val.module
            else:
                pf = getattr(val, "py_func", None)
                owner = getattr(pf, "__module__", None) or getattr(val, "__module__", None)
            if owner and owner != name:
                visit(owner)

    visit(modname)
    return [seen[k] for k in sorted(seen)]


def _source_hash(modname: str, extra: str) -> str:
    h = hashlib.sha256(extra.encode())
    for f in _dependency_files(modname):
        h.update(Path(f).read_bytes())
    return h.hexdigest()[:16]


def _kernels_of(modname: str) -> list[Kernel]:
    ks = [k for k in REGISTRY.values() if k.module == modname]
    if not ks:
        raise ValueError(f"module {modname} defines no kernels")
    return ks


def generate_source(modname: str, cuda: bool) -> str:
    """Source text of the launcher module for the kernels of ``modname``."""
    sim = bool(numba.config.ENABLE_CUDASIM)
    lines = [
        f"# Generated by ocean_core.kernels.framework for {modname}; do not edit.",
        f"# cuda={cuda} simulator={sim}",
        f"# llvm options: {' '.join(LLVM_OPTIONS)}",
        "import numba",
        "from numba import prange",
    ]
    if cuda:
        lines.append("from numba import cuda")
    lines += [f"import {modname} as _m", "from ocean_core.kernels.framework import same_extent as _same", ""]
    if cuda and sim:
        # The simulator passes fake device arrays; njit bodies need the numpy array behind them.
        lines += [
            "def _dev(a):",
            "    return getattr(getattr(a, '_item', None), '_ary', a)",
            "",
        ]
    for k in _kernels_of(modname):
        args = ", ".join(k.args)
        if k.parts and k.body is None:
            # fused launch: every part's body at each point, in order
            calls, icalls = [], []
            for p, ren in k.parts:
                pa = ", ".join(ren.get(a, a) for a in p.args)
                lines.append(f"_b_{p.name} = _m.{p.name}.body")
                calls.append((f"_b_{p.name}", pa))
                if p.interior is not None and not cuda:
                    lines.append(f"_bi_{p.name} = _m.{p.name}.interior")
                    icalls.append((f"_bi_{p.name}", pa))
                else:
                    icalls.append((f"_b_{p.name}", pa))
        else:
            lines.append(f"_b_{k.name} = _m.{k.name}.body")
            calls = icalls = [(f"_b_{k.name}", args)]
            if k.interior is not None and not cuda:
                lines.append(f"_bi_{k.name} = _m.{k.name}.interior")
                icalls = [(f"_bi_{k.name}", args)]

        def call(indent, idx, calls=calls):
            return [f"{' ' * indent}{b}({idx}, {a})" for b, a in calls]

        if not cuda:
            lines.append("@numba.njit(parallel=True, cache=True, fastmath=False, error_model='numpy', nogil=True)")
            lines.append(f"def {k.name}_cpu(_nk, _nj, _ni, {args}):")
            if k.space == "3d":
                lines += [
                    "    for _kj in prange(_nk * _nj):",
                    "        _k = _kj // _nj",
                    "        _j = _kj - _k * _nj",
                ]
            if k.space == "3d" and k.split:
                # halo rows: one loop over all i; interior rows: the interior i range
                # (every neighbour exists), then the 4 halo points in a second loop
                lines += [
                    "        if (_j >= 2 and _j < _nj - 2 and _ni >= 4"
                    + "".join(f" and _same({a}, _nk, _nj, _ni)" for a in k.args if k.same_shapes) + "):",
                    "            for _i in range(2, _ni - 2):",
                    *call(16, "_i, _j, _k", icalls),
                    "            _ne = 4",
                    "        else:",
                    "            _ne = _ni",
                    "        for _e in range(_ne):",
                    "            _i = _e if _e < 2 else _e + (_ni - _ne)",
                    *call(12, "_i, _j, _k"),
                ]
            elif k.space == "3d":
                lines += [
                    "        for _i in range(_ni):",
                    *call(12, "_i, _j, _k"),
                ]
            elif k.space == "rows":
                lines += [
                    "    for _j in prange(_nj):",
                    "        for _k in range(_nk):",
                    "            for _i in range(_ni):",
                    *call(16, "_i, _j, _k"),
                ]
            else:
                lines += [
                    "    for _j in prange(_nj):",
                    "        for _i in range(_ni):",
                    *call(12, "_i, _j"),
                ]
        else:
            lines.append("@cuda.jit(cache=True)" if not sim else "@cuda.jit")
            lines.append(f"def {k.name}_cuda(_nk, _nj, _ni, {args}):")
            if sim:
                for a in k.args:
                    lines.append(f"    {a} = _dev({a})")
            lines += [
                "    _i, _j, _k = cuda.grid(3)",
                "    if _i < _ni and _j < _nj and _k < _nk:",
            ]
            if k.space == "3d":
                lines += call(8, "_i, _j, _k")
            elif k.space == "rows":
                lines += ["        for _kk in range(_nk):", *call(12, "_i, _j, _kk")]
            else:
                lines += call(8, "_i, _j")
        lines.append("")
    return "\n".join(lines) + "\n"


def launcher_module(modname: str, cuda: bool = False) -> types.ModuleType:
    """Import (generating if needed) the launcher module of ``modname``."""
    key = (modname, cuda, bool(numba.config.ENABLE_CUDASIM))
    mod = _loaded.get(key)
    if mod is not None:
        return mod
    importlib.import_module(modname)
    src = generate_source(modname, cuda)
    h = _source_hash(modname, src)
    genname = f"stommel_gen_{modname.replace('.', '_')}_{'cuda' if cuda else 'cpu'}_{h}"
    path = kernel_dir() / f"{genname}.py"
    if not path.exists() or path.read_text() != src:
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(src)
        os.replace(tmp, path)
    spec = importlib.util.spec_from_file_location(genname, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[genname] = mod
    spec.loader.exec_module(mod)
    _loaded[key] = mod
    return mod


# ---------------------------------------------------------------------------
# CUDA launch configuration
# ---------------------------------------------------------------------------

_BLOCK_3D = (64, 2, 2)
_BLOCK_2D = (64, 4, 1)


def launch_cuda(k: Kernel, extents, args, stream=0):
    nk, nj, ni = extents
    bx, by, bz = _BLOCK_3D if k.space == "3d" else _BLOCK_2D
    nz = nk if k.space == "3d" else 1  # "rows": one thread per (j, i) loops over nk
    grid = ((ni + bx - 1) // bx, (nj + by - 1) // by, (nz + bz - 1) // bz)
    k.cuda()[grid, (bx, by, bz), stream](nk, nj, ni, *args)
