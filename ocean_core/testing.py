"""Random test inputs for kernels: a tiny grid with irregular topography and
random masked fields, by argument name.

Used by the kernel test-suite (CPU against NumPy references, PTX, simulator) and
by the dot-product / finite-difference tests of the tangent and adjoint kernels.
"""

from __future__ import annotations

import numpy as np

from .grid import Grid, kernel_arrays
from .kernels.metrics import DERIVED_METRICS, derived_metrics
from .variables import VARIABLES, shape_of

__all__ = ["tiny_grid", "kernel_args", "SCALARS"]

#: values of scalar kernel arguments (positive, of realistic size)
SCALARS = {
    "dt_mom": 1200.0, "dt_tracer": 1200.0, "dt": 1200.0, "kappaH_0": 1e-4, "eke_lmin": 1.0, "eke_cross": 2.0,
    "eke_crhin": 1.0, "eke_c_k": 0.4, "eke_k_max": 625.0, "eke_c_eps": 0.5, "alpha_eke": 1.0,
    "opt_sqrt_eps": 0.0,
}

# location of kernel arguments that are not in ocean_core.variables (by name)
_EXTRA = {
    "u_old": "u", "u_new": "u", "du_now": "du", "du_old": "du", "v_old": "v", "v_new": "v", "dv_now": "dv",
    "dv_old": "dv", "temp_old": "temp", "temp_new": "temp", "salt_old": "salt", "salt_new": "salt",
    "dtemp_now": "dtemp", "dtemp_old": "dtemp", "dsalt_now": "dsalt", "dsalt_old": "dsalt", "eke_new": "eke",
    "deke_now": "deke", "deke_old": "deke", "w_new": "w", "psi_new": "psi", "psi_old": "psi", "dpsi_new": "dpsi",
    "dpsi_old": "dpsi", "dpsin_now": "dpsin", "dpsin_old": "dpsin",
}

_MASK_OF = {"xt": {"yt": "maskT", "yu": "maskV"}, "xu": {"yt": "maskU", "yu": "maskZ"}}


def tiny_grid(nx=6, ny=5, nz=4, seed=0, cyclic_x=True):
    """A small spherical grid (2 degree cells near 30S..) with random, partly shallow topography."""
    rng = np.random.default_rng(seed)
    # slowly thinning layers towards the surface (bottom first); Veros's grid generator needs a
    # smooth profile for positive dzw
    dzt = np.linspace(120.0, 80.0, nz) * (1.0 + 0.03 * rng.uniform(-1, 1, nz))

    def kbot(x, y):
        k = rng.integers(1, min(nz, 3) + 1, size=x.shape).astype(np.int32)
        land = rng.random(x.shape) < 0.15
        k[land] = 0
        return k

    g = Grid(np.full(nx, 2.0), np.full(ny, 2.0), dzt, 0.0, -35.0, kbot, cyclic_x=cyclic_x, coord_degree=True)
    assert np.all(g.dzw > 0), "test grid with non-positive dzw"
    return g


def _field(name, grid, rng, nisle):
    base = _EXTRA.get(name, name)
    if base not in VARIABLES:
        raise KeyError(f"no test data rule for kernel argument {name!r}")
    meta = VARIABLES[base]
    sizes = {"zt": grid.nz, "zw": grid.nz, "yt": grid.NY, "yu": grid.NY, "xt": grid.NX, "xu": grid.NX, "isle": nisle}
    shape = tuple(sizes[d] for d in meta.dims)
    a = rng.standard_normal(shape)
    # masks of the field's grid location (W fields use maskW)
    if len(meta.dims) == 3:
        if meta.dims[0] == "zw":
            a *= grid.maskW
        else:
            a *= getattr(grid, _MASK_OF[meta.dims[2]][meta.dims[1]])
    return base, a


_SCALE = {"u": 0.1, "v": 0.1, "w": 1e-4, "temp": 5.0, "salt": 0.5, "eke": 1e-3, "psi": 1e6, "dpsi": 10.0,
          "du": 1e-6, "dv": 1e-6, "dtemp": 1e-6, "dsalt": 1e-7, "deke": 1e-9, "rho": 1.0, "Nsqr": 1e-5,
          "kappaH": 0.5, "kappaM": 1e-2, "K_gm": 50.0, "A_h_t": 3000.0, "A_h_z": 3000.0, "r_bot_t": 1e-5,
          "r_bot_u": 1e-5, "r_bot_v": 1e-5, "surface_taux": 0.1, "surface_tauy": 0.05, "t_star": 10.0,
          "t_rest": 1e-5, "K_diss_h": 1e-10, "sqrteke": 0.03, "eke_len": 1e4, "u_wgrid": 0.1, "v_wgrid": 0.1,
          "w_wgrid": 1e-4, "p_hydro": 10.0, "uloc": 1e-6, "vloc": 1e-6, "forc": 1e-12, "dpsin": 10.0}


def kernel_args(kern, grid=None, seed=0, nisle=2, positive=()):
    """Random arguments for kernel ``kern`` on ``grid`` (default: :func:`tiny_grid`).

    Grid arrays come from the grid; fields are random normal of a realistic scale,
    zero on land (by the mask of their grid location); positive-definite quantities
    (eke, diffusivities, lengths, coefficients) are made positive; scalars from
    :data:`SCALARS`; outputs are zero-filled.
    """
    grid = grid or tiny_grid()
    rng = np.random.default_rng(seed)
    garr = kernel_arrays(grid)  # masks as the model's kernels get them (int8)
    out = {}
    names = list(kern.args)
    for extra in ("tangent", "adjoint"):  # options of the derivative kernels
        pair = getattr(kern, extra, None)
        if pair is not None:
            names += [a for a in pair.args if a.startswith(("opt_", "scr_")) and a not in names]
    for a in names:
        if a in garr:
            out[a] = np.ascontiguousarray(garr[a])
        elif a in SCALARS:
            out[a] = SCALARS[a]
        elif a in DERIVED_METRICS:
            out[a] = derived_metrics(grid, 1.0)[a]
        elif a == "psin":
            out[a] = rng.standard_normal((nisle, grid.NY, grid.NX))
        elif a.startswith("scr_"):
            # column scratch (nz, NY, NX), or the variable's own shape (per-column scratch)
            out[a] = np.zeros(shape_of(a, grid, nisle) if a in VARIABLES else grid.shape3)
        else:
            base, v = _field(a, grid, rng, nisle)
            v = v * _SCALE.get(base, 1.0)
            if base in ("eke", "sqrteke", "eke_len", "kappaH", "kappaM", "K_gm", "A_h_t", "A_h_z", "r_bot_t",
                        "r_bot_u", "r_bot_v", "t_rest", "K_diss_h") or a in positive:
                v = np.abs(v)
            if base in ("eke_len",):
                v = v + 1.0
            if base == "eke":
                # strictly positive, also on land: the EKE closure's sqrt(max(0, eke)) is not masked
                # and not differentiable at 0 (finite differences there blow up like 1/sqrt(eps))
                v = v + 1e-6
            out[a] = np.ascontiguousarray(v)
    for o in kern.outputs:
        out[o] = np.zeros_like(out[o])
    return out
