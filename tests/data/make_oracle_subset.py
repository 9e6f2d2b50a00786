"""Trim the Veros 1.7.0 ACC reference states to what stommel's tests need.

Reads ``../shared/oracle/veros_acc/paper_coarse_jax_tight12_step{0000,0001,0010}.npz``
(beside the checkout; see the README there) and writes ``veros_acc_subset.npz`` next to
this script, in stommel's layout: ``[k, j, i]`` (z, y, x; the transpose of Veros's
``(x, y, z)``), halos kept, one time level per array.  Keys:

``grid__<name>``   grid, masks, forcing and island data (identical in every file);
``s0__<name>``     initial state (newest level of step 0);
``s1__<name>``     newest level after 1 step;
``s10__<name>``    newest level after 10 steps (level ``_tau``, called C below) and the
                   diagnostics of step 10 (no time level);
``s10B__<name>``   level ``_taum1`` of the step-10 file (B): the step-9 state (u, v, w, temp,
                   salt, eke, rho, Nsqr, psi, dpsi), i.e. the ``tau`` input of step 10, and
                   dpsin, which step 10 writes at ``tau``;
``s10A__<name>``   level ``_taup1`` (A): the ``taum1`` input of step 10 (tendencies of step 9).

Rotation during step 10: taum1 = A, tau = B, taup1 = C.  Usage::

    python tests/data/make_oracle_subset.py [--oracle-dir DIR]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_ORACLE = HERE.parents[2] / "shared" / "oracle" / "veros_acc"
STEM = "paper_coarse_jax_tight12_step{:04d}.npz"
OUT = HERE / "veros_acc_subset.npz"

GRID = ("dxt", "dxu", "dyt", "dyu", "dzt", "dzw", "zt", "zw", "xt", "xu", "yt", "yu", "cost", "cosu", "tantr",
        "coriolis_t", "beta", "area_t", "area_u", "area_v", "ht", "hu", "hv", "hur", "hvr", "kbot",
        "maskT", "maskU", "maskV", "maskW", "maskZ", "surface_taux", "surface_tauy", "t_star", "t_rest",
        "psin", "line_psin")
#: newest level after 1 and 10 steps (the acceptance fields)
STATE = ("u", "v", "w", "temp", "salt", "psi", "eke")
#: inputs of step 10 at level B (tau) and A (taum1), see model.py's operation list
REPLAY_B = ("u", "v", "w", "temp", "salt", "eke", "rho", "Nsqr", "psi", "dpsi", "dpsin")
REPLAY_A = ("du", "dv", "dtemp", "dsalt", "deke", "dpsi", "dpsin")
#: outputs of step 10 beyond STATE at level C
EXTRA_C = ("rho", "Nsqr", "dpsi")
#: diagnostics computed during step 10 from the step-9 state (no time level)
#: (the v components, sqrteke and L_rhines are left out to keep the file small: v, w, eke and K_gm
#: of the replayed step cover them)
DIAG = ("K_gm", "du_cor", "du_adv", "du_mix", "p_hydro", "K_diss_h", "kappaH", "L_rossby", "eke_len", "u_wgrid",
        "v_wgrid", "w_wgrid", "forc_temp_surface")


def to_stommel(a, dims):
    """Veros (x, y, z[, timesteps]) -> stommel [z, y, x] (the time axis must be gone)."""
    a = np.asarray(a)
    if a.dtype == bool:
        a = a.astype(np.float64)
    spatial = [d for d in dims if d != "timesteps"]
    if dims and dims[-1] == "isle" and a.ndim == 3:   # psin (x, y, isle) -> (isle, y, x)
        return np.ascontiguousarray(a.transpose(2, 1, 0))
    if len(spatial) >= 2 and spatial[0].startswith("x"):
        return np.ascontiguousarray(a.T)
    return np.ascontiguousarray(a)


def level(f, dims, name, lev):
    a = f[name]
    d = dims[name]
    if d and d[-1] == "timesteps":
        a = a[..., lev]
        d = d[:-1]
    return to_stommel(a, d)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--oracle-dir", type=Path, default=DEFAULT_ORACLE)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    out = {}
    meta = {}
    for step in (0, 1, 10):
        f = np.load(args.oracle_dir / STEM.format(step))
        dims = json.loads(str(f["_dims_json"]))
        tau, taum1, taup1 = int(f["_tau"]), int(f["_taum1"]), int(f["_taup1"])
        meta[f"s{step}"] = {"itt": int(f["_itt"]), "time": float(f["_time"]), "tau": tau, "taum1": taum1,
                            "taup1": taup1, "runtime": json.loads(str(f["_runtime_json"]))}
        if step == 0:
            for n in GRID:
                out[f"grid__{n}"] = to_stommel(f[n], dims[n])
            for n in ("temp", "salt", "rho", "Nsqr"):
                out[f"s0__{n}"] = level(f, dims, n, tau)
            continue
        for n in STATE:
            out[f"s{step}__{n}"] = level(f, dims, n, tau)
        out[f"s{step}__K_gm"] = level(f, dims, "K_gm", tau)
        if step == 10:
            for n in REPLAY_B:
                out[f"s10B__{n}"] = level(f, dims, n, taum1)
            for n in REPLAY_A:
                out[f"s10A__{n}"] = level(f, dims, n, taup1)
            for n in EXTRA_C:
                out[f"s10__{n}"] = level(f, dims, n, tau)
            for n in DIAG:
                out[f"s10__{n}"] = level(f, dims, n, tau)
    out["meta_json"] = np.array(json.dumps(meta))
    np.savez_compressed(args.out, **out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB, {len(out)} arrays)")


if __name__ == "__main__":
    main()
