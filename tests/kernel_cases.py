"""Random test inputs for every registered kernel, built from argument names.

The kernel tests (CPU vs NumPy reference, PTX compile, CUDA simulator vs CPU) walk
:data:`ocean_core.kernels.framework.REGISTRY` after :func:`iter_kernel_modules` has
imported every module of ``ocean_core.kernels`` and, when it is importable,
``adjoint.kernels``.  A new kernel is therefore covered as soon as it is registered;
an argument name this module cannot build raises :class:`UnknownArgument` (add it to
:data:`SCALARS`, :data:`VALUES` or :data:`SPECIAL` below).

Inputs live on a tiny spherical grid (:func:`tiny_grid`, 6 x 5 x 4 interior cells,
cyclic in x) with non-uniform spacings and random topography that has land
columns, full-depth columns and partial-depth columns.  An argument is resolved by
name, in this order:

1. ``d_<name>`` / ``b_<name>`` (tangent / adjoint variables) are built like ``<name>``;
2. ``scr_*`` are scratch outputs (excluded from every comparison), ``(nz, NY, NX)`` unless
   :mod:`ocean_core.variables` gives a shape;
3. grid arrays (``maskU``, ``dxt``, ``kbot``, ...) come from the grid;
4. scalars (``dt_mom``, ``kappaH_0``, ...) from :data:`SCALARS` (then, for a scalar added
   later, from ``ocean_core.testing.SCALARS`` if that module exists);
5. ``<var>_new|_old|_now`` and ``<var>`` for a variable of :mod:`ocean_core.variables`:
   an array of that variable's shape, random in the range of :data:`VALUES` (default
   ``U(-1, 1)``), multiplied by the mask of its grid location (U, V, W, T, Z; 2-d
   fields by the top level of the mask) unless :data:`VALUES` marks it unmasked;
6. :data:`SPECIAL` (``psin``).

Outputs of forward and tangent kernels are filled with NaN before the call so that a
point a kernel fails to write shows up; outputs of adjoint kernels (which accumulate)
start from random values.
"""

from __future__ import annotations

import importlib
import pkgutil
import zlib

import numpy as np

from ocean_core.grid import KERNEL_MASK_DTYPE, MASKS, Grid
from ocean_core.kernels import framework
from ocean_core.kernels.metrics import DERIVED_METRICS, derived_metrics
from ocean_core.variables import VARIABLES

__all__ = ["iter_kernel_modules", "all_kernels", "tiny_grid", "make_case", "compared_outputs",
           "UnknownArgument", "NISLE", "KERNEL_PACKAGES"]

#: packages whose modules define kernels (the second is optional)
KERNEL_PACKAGES = ("ocean_core.kernels", "adjoint.kernels")

#: number of islands of the tiny test cases (psin, dpsin)
NISLE = 3


class UnknownArgument(KeyError):
    """kernel_cases cannot build an argument (add the name to SCALARS, VALUES or SPECIAL)."""


# ---------------------------------------------------------------------------
# the walk over all kernels
# ---------------------------------------------------------------------------

def iter_kernel_modules():
    """Import every module of ``ocean_core.kernels`` and (if importable) ``adjoint.kernels``.

    Returns the list of module names that were imported.  A package that does not exist
    is skipped; a module that exists but fails to import raises (a broken kernel module
    must fail the tests, not silently drop its kernels).
    """
    names = []
    for pkg_name in KERNEL_PACKAGES:
        try:
            pkg = importlib.import_module(pkg_name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and pkg_name.startswith(exc.name):
                continue  # package absent (e.g. adjoint not written yet)
            raise
        path = getattr(pkg, "__path__", None)
        if path is None:
            continue
        for info in sorted(pkgutil.walk_packages(path, prefix=pkg_name + "."), key=lambda m: m.name):
            if info.name.rsplit(".", 1)[-1].startswith("_"):
                continue
            importlib.import_module(info.name)
            names.append(info.name)
    return names


def all_kernels(with_reference=None):
    """Every registered kernel (sorted by name) after importing all kernel modules.

    ``with_reference=True`` keeps kernels that have a NumPy reference, ``False`` those without.
    """
    iter_kernel_modules()
    ks = sorted(framework.REGISTRY.values(), key=lambda k: k.name)
    if with_reference is not None:
        ks = [k for k in ks if (k.reference is not None) == with_reference]
    return ks


# ---------------------------------------------------------------------------
# tiny grid with land, full and partial columns
# ---------------------------------------------------------------------------

def tiny_grid(nx=6, ny=5, nz=4, seed=20261121):
    """A small cyclic spherical grid with non-uniform spacings and random topography.

    The interior has land columns (kbot = 0), full-depth columns (kbot = 1) and
    partial-depth columns (1 < kbot <= nz), checked on return.
    """
    rng = np.random.default_rng(seed)
    # non-uniform but smooth spacings (Veros's reflected T points need smooth widths for
    # positive dxu, dyu, dzw), degrees in x / y, metres bottom first in z
    dxt = 2.0 + 0.2 * np.sin(1.3 * np.arange(nx))
    dyt = 1.8 + 0.1 * np.arange(ny)
    dzt = 40.0 * 1.3 ** np.arange(nz)[::-1]
    kb = rng.choice(np.arange(nz + 1), size=(ny + 4, nx + 4), p=_kbot_probs(nz))
    # make sure every kind of column is there, also away from the boundaries
    kb[3, 3] = 0
    kb[4, 4] = nz                            # only the top cell wet
    kb[4, 5] = 2                             # partial depth
    kb[5, 4] = 1
    kb[3, 5] = 1

    def kbot_fn(X, Y):
        return kb

    g = Grid(dxt, dyt, dzt, x_origin=10.0, y_origin=-35.0, kbot_fn=kbot_fn, cyclic_x=True, coord_degree=True)
    for n in ("dxt", "dxu", "dyt", "dyu", "dzt", "dzw"):
        assert (getattr(g, n) > 0).all(), (n, getattr(g, n))
    inner = g.kbot[2:-2, 2:-2]
    assert (inner == 0).any() and (inner == 1).any() and ((inner > 1) & (inner <= nz)).any(), inner
    return g


def _kbot_probs(nz):
    p = np.full(nz + 1, 0.4 / (nz - 1))
    p[0] = 0.2
    p[1] = 0.4
    return p / p.sum()


# ---------------------------------------------------------------------------
# argument tables
# ---------------------------------------------------------------------------

#: scalar arguments: (low, high) of a uniform draw, or a fixed value
SCALARS = {
    "dt_mom": 1200.0,
    "dt_tracer": 1500.0,
    "dt": 900.0,
    "kappaH_0": (1e-5, 1e-3),
    "eke_lmin": (2e3, 5e3),        # inside the range of min(cross L_rossby, crhin L_rhines): both branches
    "eke_cross": (1.5, 2.5),
    "eke_crhin": (0.5, 1.5),
    "eke_c_k": (0.3, 0.5),
    "eke_k_max": (150.0, 250.0),  # inside the range of c_k eke_len sqrteke: cap active at some points
    "eke_c_eps": (0.4, 0.8),
    "alpha_eke": (0.5, 1.5),
    "opt_sqrt_eps": 0.0,          # model default: exact derivative of sqrt(max(0, x))
}

#: value ranges of fields: name -> (low, high[, masked]); default (-1, 1, masked).
#: Ranges follow the physical magnitudes so that every term of a kernel matters and the
#: branches (N^2 < 0, max(0, eke), max(500, K_gm + K_gm), superbee limiter) are all taken.
VALUES = {
    "u": (-0.2, 0.2), "v": (-0.2, 0.2), "w": (-2e-4, 2e-4),
    "temp": (0.0, 20.0), "salt": (34.0, 36.0),
    "eke": (-2e-4, 1e-3),                 # a few negative values: sqrt(max(0, eke))
    "Nsqr": (-2e-6, 2e-5),                # some convective (N^2 < 0) points
    "rho": (-5.0, 5.0),
    "psi": (-2e6, 2e6, False), "dpsi": (-50.0, 50.0, False), "dpsin": (-50.0, 50.0, False),
    "forc": (-1e-10, 1e-10),
    "du": (-1e-5, 1e-5), "dv": (-1e-5, 1e-5), "du_cor": (-1e-5, 1e-5), "dv_cor": (-1e-5, 1e-5),
    "du_adv": (-1e-5, 1e-5), "dv_adv": (-1e-5, 1e-5), "du_mix": (-1e-5, 1e-5), "dv_mix": (-1e-5, 1e-5),
    "du_mix_v": (-1e-5, 1e-5), "dv_mix_v": (-1e-5, 1e-5),
    "dtemp": (-1e-5, 1e-5), "dsalt": (-1e-6, 1e-6), "deke": (-1e-9, 1e-9),
    "p_hydro": (-20.0, 20.0),
    "uloc": (-1e-5, 1e-5), "vloc": (-1e-5, 1e-5),
    "diss_u": (-1e-9, 1e-8), "diss_v": (-1e-9, 1e-8), "K_diss_h": (0.0, 1e-8),
    "kappaH": (1e-5, 1.0, False), "kappaM": (1e-4, 1e-2, False),
    "sqrteke": (0.0, 0.03), "eke_len": (1e3, 8e4, False), "L_rossby": (1e3, 1e5, False),
    "K_gm": (0.0, 600.0),                 # 0.5 max(500, K_i + K_i+1): both branches
    "eke_imp": (0.0, 1e-3),
    "u_wgrid": (-0.2, 0.2), "v_wgrid": (-0.2, 0.2), "w_wgrid": (-2e-4, 2e-4),
    "eke_fe": (-1e3, 1e3), "eke_fn": (-1e3, 1e3), "eke_ft": (-1e-3, 1e-3),
    "temp_ab": (0.0, 20.0), "salt_ab": (34.0, 36.0),
    "forc_temp_surface": (-1e-4, 1e-4), "forc_salt_surface": (-1e-5, 1e-5),
    # parameters / forcing: positive where physical, defined on land too
    "A_h_t": (1e3, 6e3, False), "A_h_z": (1e3, 6e3, False),
    "r_bot_t": (5e-6, 2e-5, False), "r_bot_u": (5e-6, 2e-5, False), "r_bot_v": (5e-6, 2e-5, False),
    "surface_taux": (-0.1, 0.1), "surface_tauy": (-0.1, 0.1),
    "surface_taux_base": (-0.1, 0.1), "surface_tauy_base": (-0.1, 0.1),
    "t_star": (0.0, 20.0, False), "t_star_base": (0.0, 20.0, False), "t_star_pattern": (-1.0, 1.0, False),
    "t_rest": (1e-6, 1e-5),
    "cfl_col": (0.0, 1.0),
    "ht": (0.0, 1.0),
}

#: arguments that are not model variables: name -> builder(grid, rng)
SPECIAL = {
    "psin": lambda g, rng: rng.uniform(-1.0, 1.0, (NISLE, g.NY, g.NX)),
}
# derived metric arrays (ratios and reciprocals): the grid's, friction with the paper's cos power (1)
for _n in DERIVED_METRICS:
    SPECIAL[_n] = (lambda n: lambda g, rng: derived_metrics(g, 1.0)[n])(_n)

_SUFFIXES = ("_new", "_old", "_now")

_MASK_OF_DIMS = {
    ("zt", "yt", "xt"): "maskT", ("zt", "yt", "xu"): "maskU", ("zt", "yu", "xt"): "maskV",
    ("zw", "yt", "xt"): "maskW", ("zt", "yu", "xu"): "maskZ",
    ("yt", "xt"): "maskT", ("yt", "xu"): "maskU", ("yu", "xt"): "maskV", ("yu", "xu"): "maskZ",
}


def base_name(arg):
    """Name of the model variable / grid array / scalar behind a kernel argument name."""
    name = arg
    if name[:2] in ("d_", "b_"):
        name = name[2:]
    if name in VARIABLES or name in Grid.ARRAYS or name in SCALARS or name in SPECIAL:
        return name
    for s in _SUFFIXES:
        if name.endswith(s) and name[: -len(s)] in VARIABLES:
            return name[: -len(s)]
    return name


def _mask_for(var, grid):
    m = _MASK_OF_DIMS.get(VARIABLES[var].dims)
    if m is None:
        return None
    mask = getattr(grid, m)
    return mask if len(VARIABLES[var].dims) == 3 else mask[-1]


def _shape(var, grid):
    sizes = {"zt": grid.nz, "zw": grid.nz, "yt": grid.NY, "yu": grid.NY, "xt": grid.NX, "xu": grid.NX,
             "isle": NISLE}
    return tuple(sizes[d] for d in VARIABLES[var].dims)


def build_argument(arg, grid, rng, kernel_name="?", space=None):
    """A fresh value for the kernel argument ``arg`` (array or Python scalar).

    ``space`` is given for the outputs of adjoint kernels: the adjoint ``b_s`` of an active
    scalar ``s`` is an array over the iteration space (``adjoint.kernels.pairing``).
    """
    name = base_name(arg)
    if name in SPECIAL:
        return np.ascontiguousarray(SPECIAL[name](grid, rng))
    if name.startswith("scr_") and name not in VARIABLES:
        return np.zeros(grid.shape3)  # column scratch (tridiagonal solvers): (nz, NY, NX)
    if name in Grid.ARRAYS and not arg.startswith(("d_", "b_")):
        a = np.ascontiguousarray(getattr(grid, name)).copy()
        # masks as the model's kernels get them (int8, ocean_core.grid.KERNEL_MASK_DTYPE)
        return a.astype(KERNEL_MASK_DTYPE) if name in MASKS else a
    if name in SCALARS:
        v = SCALARS[name]
        if arg.startswith("b_") and space is not None:
            # adjoint of an active scalar: per-point contributions over the iteration space
            shape = grid.shape3 if space == "3d" else grid.shape2
            return rng.uniform(-1.0, 1.0, shape)
        if arg.startswith(("d_", "b_")):
            return float(rng.uniform(-1.0, 1.0))
        return float(v) if not isinstance(v, tuple) else float(rng.uniform(*v))
    if name in VARIABLES:
        lo, hi, *rest = VALUES.get(name, (-1.0, 1.0))
        masked = rest[0] if rest else True
        if arg.startswith(("d_", "b_")):
            lo, hi = -1.0, 1.0  # perturbations / adjoint variables: any sign
        a = rng.uniform(lo, hi, _shape(name, grid))
        if masked:
            m = _mask_for(name, grid)
            if m is not None:
                a = a * m
        return np.ascontiguousarray(a)
    fallback = _fallback_scalars()
    if name in fallback:  # a model scalar added after this table (ocean_core.testing.SCALARS)
        if arg.startswith(("d_", "b_")):
            return float(rng.uniform(-1.0, 1.0))
        return float(fallback[name])
    raise UnknownArgument(f"kernel {kernel_name}: cannot build argument {arg!r} (base name {name!r}); "
                          f"add it to tests/kernel_cases.py (SCALARS, VALUES or SPECIAL)")


def _fallback_scalars():
    try:
        from ocean_core.testing import SCALARS as model_scalars
    except ImportError:
        return {}
    return {n: v for n, v in model_scalars.items() if isinstance(v, (int, float))}


def is_scratch(arg):
    return base_name(arg).startswith("scr_")


def compared_outputs(k):
    """Outputs of kernel ``k`` that the tests compare (scratch ``scr_*`` excluded)."""
    return tuple(o for o in k.outputs if not is_scratch(o))


def kernel_seed(k, salt=0):
    """Per-kernel seed, independent of the order in which kernels are tested."""
    return zlib.crc32(f"{k.name}:{salt}".encode()) & 0x7FFFFFFF


def make_case(k, grid=None, seed=None):
    """All arguments of kernel ``k`` as a dict ``name -> value`` (fresh arrays).

    Outputs of forward and tangent kernels are NaN-filled (every point must be written);
    outputs of adjoint kernels (``+=``) start from random values.
    """
    grid = grid if grid is not None else tiny_grid()
    rng = np.random.default_rng(kernel_seed(k) if seed is None else seed)
    case = {}
    for a in k.args:
        space = k.space if (k.kind == "adjoint" and a in k.outputs) else None
        v = build_argument(a, grid, rng, k.name, space)
        if a in k.outputs and k.kind != "adjoint":
            v = np.full_like(v, np.nan)
        case[a] = v
    return case


def copy_case(case):
    return {n: (v.copy() if isinstance(v, np.ndarray) else v) for n, v in case.items()}


def args_of(k, case):
    return [case[a] for a in k.args]


def reference_result(k, case):
    """Expected outputs (dict) from the NumPy reference: ``reference(*inputs)``; for adjoint
    kernels the reference returns the increments, added to the initial outputs."""
    inputs = [case[a].copy() if isinstance(case[a], np.ndarray) else case[a] for a in k.inputs]
    res = k.reference(*inputs)
    if not isinstance(res, (tuple, list)):
        res = (res,)
    if len(res) != len(k.outputs):
        raise AssertionError(f"kernel {k.name}: reference returned {len(res)} arrays for outputs {k.outputs}")
    out = {}
    for o, r in zip(k.outputs, res):
        r = np.asarray(r, dtype=np.float64)
        if k.kind == "adjoint":
            r = case[o] + r
        out[o] = r
    return out


# ---------------------------------------------------------------------------
# cases on disk (for the simulator subprocess)
# ---------------------------------------------------------------------------

def save_cases(path, cases):
    """Write ``{kernel name: case}`` to one ``.npz`` (scalars kept exact in a JSON entry)."""
    import json
    arrays, scalars = {}, {}
    for kname, case in cases.items():
        for a, v in case.items():
            if isinstance(v, np.ndarray):
                arrays[f"{kname}::{a}"] = v
            else:
                scalars.setdefault(kname, {})[a] = v
    arrays["__scalars__"] = np.array(json.dumps(scalars))
    arrays["__kernels__"] = np.array(json.dumps(sorted(cases)))
    np.savez(path, **arrays)


def load_cases(path):
    """Inverse of :func:`save_cases`: ``{kernel name: {arg: value}}``."""
    import json
    with np.load(path) as f:
        scalars = json.loads(str(f["__scalars__"]))
        cases = {n: dict(scalars.get(n, {})) for n in json.loads(str(f["__kernels__"]))}
        for key in f.files:
            if "::" in key:
                kname, a = key.split("::", 1)
                cases[kname][a] = f[key].copy()
    return cases


def run_in_subprocess(cases, workdir, backend, env=None, timeout=900):
    """Run ``cases`` (``{kernel name: case}``) in a fresh process (``tests/run_kernel_cases.py``).

    ``env`` entries override the environment (``None`` removes a variable).  Returns a dict
    with ``rc``, ``log`` (tail), ``wall``, ``status`` / ``info`` / ``timing`` from the child and
    ``out`` (``"<kernel>::<output>" -> array``).
    """
    import json
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    here = Path(__file__).resolve().parent
    root = here.parent
    workdir = Path(workdir)
    save_cases(workdir / "cases.npz", cases)
    e = dict(os.environ)
    for n, v in (env or {}).items():
        if v is None:
            e.pop(n, None)
        else:
            e[n] = str(v)
    e["PYTHONPATH"] = os.pathsep.join([str(root), str(here)] + ([e["PYTHONPATH"]] if e.get("PYTHONPATH") else []))
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, str(here / "run_kernel_cases.py"), str(workdir / "cases.npz"),
                               str(workdir / "out.npz"), "--backend", backend], cwd=root, env=e,
                              capture_output=True, text=True, timeout=timeout)
        rc, log = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        rc, log = None, f"child exceeded {timeout} s\n{exc.stdout or ''}{exc.stderr or ''}"
    res = {"rc": rc, "log": str(log)[-6000:], "wall": time.perf_counter() - t0, "out": {}, "status": {},
           "info": {}, "timing": {}}
    if rc == 0:
        with np.load(workdir / "out.npz") as f:
            res["status"] = json.loads(str(f["__status__"]))
            res["info"] = json.loads(str(f["__info__"]))
            res["timing"] = json.loads(str(f["__timing__"]))
            res["out"] = {key: f[key].copy() for key in f.files if "::" in key}
    return res


_CPU_RUNS: dict = {}


def run_all_cpu(kernels):
    """Inputs and in-process CPU results of ``kernels`` on :func:`tiny_grid`:
    ``(cases, results, errors)`` with ``cases[name]`` the inputs before the call,
    ``results[name][output]`` the compared outputs and ``errors[name]`` a message for kernels
    whose inputs or CPU launcher failed.  Memoised per process (the simulator and the
    thread-count tests share one run; treat the arrays as read-only)."""
    key = tuple(k.name for k in kernels)
    if key not in _CPU_RUNS:
        _CPU_RUNS[key] = _run_all_cpu(kernels, tiny_grid())
    return _CPU_RUNS[key]


def _run_all_cpu(kernels, grid):
    cases, results, errors = {}, {}, {}
    for k in kernels:
        try:
            case = make_case(k, grid)
            before = copy_case(case)
            k(*args_of(k, case), backend="cpu")
            cases[k.name] = before
            results[k.name] = {o: case[o] for o in compared_outputs(k)}
        except Exception as exc:  # reported by the kernel's own test
            errors[k.name] = f"{type(exc).__name__}: {exc}"
    return cases, results, errors


def bitwise_mismatch(k, expected, child):
    """None if the child's outputs of kernel ``k`` equal ``expected`` bit for bit, else a message."""
    if child["rc"] != 0:
        return f"child process failed (rc={child['rc']}):\n{child['log']}"
    status = child["status"].get(k.name)
    if status != "ok":
        return f"{k.name} in the child process: {status}"
    outs = compared_outputs(k)
    if not outs:
        return f"{k.name} has no compared outputs"
    for o in outs:
        a = expected[o]
        b = child["out"][f"{k.name}::{o}"]
        if a.shape != b.shape or a.dtype != b.dtype:
            return f"{k.name}.{o}: shape/dtype {a.shape}/{a.dtype} != {b.shape}/{b.dtype}"
        bad = (a.view(np.uint8).reshape(a.size, -1) != b.view(np.uint8).reshape(b.size, -1)).any(axis=1)
        bad = bad.reshape(a.shape)
        if bad.any():
            idx = tuple(int(x) for x in np.argwhere(bad)[0])
            return (f"{k.name}.{o}: differs at {int(bad.sum())} of {bad.size} points, first at {idx}: "
                    f"here={a[idx]!r} child={b[idx]!r}")
    return None
