"""The primitive-equation model: state, parameters, the step as a flat list of
phases, running, checks and snapshots.

One step (Veros 1.7 ``VerosSetup.step`` in the paper configuration):

=====================  =========================================================
phase                  operations
=====================  =========================================================
parameters             A_h at corners, r_bot at faces (seasonal forcing if on)
forcing                surface relaxation flux from temp[tau]
closures               EKE diffusivities (K_gm, ...), convective kappaH
momentum               Coriolis/metric, advection, pressure, explicit tendency,
                       implicit vertical friction, lateral friction + bottom drag
external mode          depth means, curl, direct elliptic solve, island rates,
                       psi and velocity update (Adams-Bashforth 2, eps = 0.1)
tracers                advection, AB2, implicit vertical mixing, EOS, N^2
EKE                    lateral-friction dissipation, W-grid velocities, implicit
                       dissipation/diffusion, superbee advection, update
boundaries             periodic exchange of u, v, eke; w from continuity
=====================  =========================================================

Time levels rotate ``(taum1, tau, taup1) <- (tau, taup1, taum1)`` after each step.
A step only writes ``X[taup1]`` and the tendencies ``dX[tau]``, so when a step
blows up the state before it is still intact and is what gets written to disk.
"""

from __future__ import annotations

import math
import time as _time
from pathlib import Path

import numpy as np

from . import constants as C
from .backend import get_backend
from .grid import kernel_arrays
from .kernels import diagnostics as kdiag
from .kernels import eke as keke
from .kernels import external as kext
from .kernels import friction as kfric
from .kernels.metrics import derived_metrics
from .kernels import momentum as kmom
from .kernels import params as kpar
from .kernels import tracers as ktr
from .ops import ExchangeOp, Fields, FusedOp, IslandOp, IslandPsiOp, KernelOp, Op, SolveOp
from .settings import Settings
from .streamfunction import Streamfunction
from .variables import PROGNOSTIC, VARIABLES

__all__ = ["Model", "ModelBlowUpError"]


class ModelBlowUpError(RuntimeError):
    """The model produced NaN/Inf or exceeded the CFL limit; ``.restart_file`` holds the last good state."""

    def __init__(self, msg, restart_file=None, step=None):
        super().__init__(msg)
        self.restart_file = restart_file
        self.step = step


class RedNoise:
    """A unit-variance red-noise (AR(1)) series as a function of time: daily values
    ``x_0 ~ N(0, 1)``, ``x_{n+1} = phi x_n + sqrt(1 - phi^2) e_n`` with ``phi = exp(-1 / days)``,
    drawn from ``numpy.random.default_rng(seed)`` in order (so the value for a day never depends on
    when it was first asked for), linearly interpolated in time, constant before t = 0."""

    DAY = 86400.0

    def __init__(self, days, seed):
        self.phi = math.exp(-1.0 / float(days))
        self.rng = np.random.default_rng(int(seed))
        self.values = [float(self.rng.standard_normal())]

    def _extend(self, n):
        c = math.sqrt(1.0 - self.phi * self.phi)
        while len(self.values) <= n:
            self.values.append(self.phi * self.values[-1] + c * float(self.rng.standard_normal()))

    def __call__(self, t):
        d = max(float(t), 0.0) / self.DAY
        n = int(math.floor(d))
        self._extend(n + 1)
        w = d - n
        return (1.0 - w) * self.values[n] + w * self.values[n + 1]


class SeasonalForcingOp(Op):
    """Time-dependent forcing (optional): ``taux = (1 + a sin(2 pi t / year) + s x(t)) taux_base`` (tauy
    likewise), ``t_star = t_star_base + b sin(2 pi t / year) pattern`` at the model time of the step
    start; ``x(t)`` is a :class:`RedNoise` series (settings ``wind_noise`` = s, ``wind_noise_days``,
    ``wind_noise_seed``; s = 0: none).  The factors depend on time only, so the op is linear in the
    base fields (tangent and adjoint below)."""

    name = "seasonal_forcing"

    def __init__(self, amp_wind, amp_tstar, year, noise=0.0, noise_days=30.0, noise_seed=0):
        self.a, self.b, self.year = amp_wind, amp_tstar, year
        self.noise = float(noise)
        self.series = RedNoise(noise_days, noise_seed) if self.noise > 0 else None
        self.reads = ("surface_taux_base", "surface_tauy_base", "t_star_base")
        self.writes = ("surface_taux", "surface_tauy", "t_star")
        self.active = self.reads

    def _factors(self, F):
        t = F.scalars["time"]
        s = math.sin(2.0 * math.pi * t / self.year)
        fw = 1.0 + self.a * s
        if self.series is not None:
            fw = fw + self.noise * self.series(t)
        return fw, self.b * s

    def forward(self, F):
        fw, ft = self._factors(F)
        F["surface_taux"][...] = fw * F["surface_taux_base"]
        F["surface_tauy"][...] = fw * F["surface_tauy_base"]
        F["t_star"][...] = F["t_star_base"] + ft * F["t_star_pattern"]

    def tangent(self, F, T):
        fw, _ = self._factors(F)
        T["surface_taux"][...] = fw * T["surface_taux_base"]
        T["surface_tauy"][...] = fw * T["surface_tauy_base"]
        T["t_star"][...] = T["t_star_base"]

    def adjoint(self, F, A):
        fw, _ = self._factors(F)
        A["surface_taux_base"] += fw * A["surface_taux"]
        A["surface_tauy_base"] += fw * A["surface_tauy"]
        A["t_star_base"] += A["t_star"]
        for n in self.writes:
            A[n][...] = 0.0


class Model:
    """An ocean model instance (grid, settings, state, parameters, backend).

    Build it with a setup, e.g. :func:`ocean_core.setups.acc`.  Attributes of interest:
    ``grid``, ``settings``, ``fields`` (all arrays by name, see :mod:`ocean_core.variables`),
    ``itt`` (steps done), ``time`` (model time in seconds), ``ops`` (the step).
    """

    def __init__(self, grid, settings: Settings, backend="cpu", name="model", forcing=None, initial=None,
                 fused=True):
        if not isinstance(fused, bool):
            raise TypeError(f"fused={fused!r} is invalid: must be True (fused launches, the default) or False "
                            "(every kernel launched on its own, all intermediate fields stored)")
        self.fused = fused
        self.grid = grid
        self.settings = settings
        self.backend = get_backend(backend)
        self.name = name
        self.solver = Streamfunction(grid)
        be = self.backend
        scalars = {
            "dt_mom": float(settings.dt_mom), "dt_tracer": float(settings.dt_tracer),
            "kappaH_0": float(settings.kappaH_0), "eke_lmin": float(settings.eke_lmin),
            "eke_cross": float(settings.eke_cross), "eke_crhin": float(settings.eke_crhin),
            "eke_c_k": float(settings.eke_c_k), "eke_k_max": float(settings.eke_k_max),
            "eke_c_eps": float(settings.eke_c_eps), "alpha_eke": float(settings.alpha_eke),
            "time": 0.0,
            # options of the tangent/adjoint (0 = exact branch-wise derivative of sqrt at 0)
            "opt_sqrt_eps": 0.0,
        }
        F = Fields(grid, be, self.solver.nisle, scalars=scalars)
        self.fields = F
        for n, a in kernel_arrays(grid).items():
            F.arrays[n] = be.asarray(a)
        F.arrays["psin"] = be.asarray(self.solver.psin)
        p = settings.hor_friction_cosPower
        for n, a in derived_metrics(grid, p).items():  # ratios/reciprocals: kernels divide nowhere per point
            F.arrays[n] = be.asarray(a)
        shape2 = grid.shape2
        F.arrays["A_h_t"] = be.asarray(np.full(shape2, float(settings.A_h)))
        F.arrays["r_bot_t"] = be.asarray(np.full(shape2, float(settings.r_bot)))
        F.arrays["kappaM"] = be.asarray(np.full(grid.shape3, float(settings.kappaM_0)))
        F.arrays["forc_salt_surface"] = be.zeros(shape2)
        forcing = forcing or {}
        for n in ("surface_taux", "surface_tauy", "t_star", "t_rest", "t_star_pattern"):
            a = forcing.get(n)
            F.arrays[n] = be.asarray(np.zeros(shape2) if a is None else np.asarray(a, dtype=np.float64))
        if settings.time_dependent_forcing:
            for n in ("surface_taux", "surface_tauy", "t_star"):
                F.arrays[n + "_base"] = F.arrays[n].copy()
        for n in PROGNOSTIC:
            F.alloc(n)
        if initial:
            for n, a in initial.items():
                arr = F.arrays[n]
                arr[...] = be.asarray(np.asarray(a, dtype=np.float64))
        self.itt = 0
        self.ops = self.build_ops()
        self._check_ops = KernelOp(kdiag.column_cfl, u="u@taup1", v="v@taup1", w="w@taup1", temp="temp@taup1",
                                   salt="salt@taup1", eke="eke@taup1", dt="dt_tracer")
        self.output_dir = None  # where the last good state goes on a blow-up
        self.timers: dict[str, float] = {}

    # ------------------------------------------------------------------
    @property
    def time(self):
        return self.fields.scalars["time"]

    @time.setter
    def time(self, value):
        self.fields.scalars["time"] = float(value)

    def build_ops(self):
        """The step as a flat, readable list of operations."""
        K = KernelOp
        cyc = self.grid.cyclic_x
        ops = []
        # parameters and forcing
        ops += [K(kpar.viscosity_at_corners), K(kpar.drag_at_faces)]
        s = self.settings
        if s.time_dependent_forcing:
            ops.append(SeasonalForcingOp(s.seasonal_wind_amplitude if s.seasonal else 0.0,
                                         s.seasonal_tstar_amplitude if s.seasonal else 0.0, s.year_length,
                                         s.wind_noise, s.wind_noise_days, s.wind_noise_seed))
        ops += [
            K(ktr.surface_forcing, temp="temp@tau"),
            # closures
            K(keke.eke_diffusivities, eke="eke@tau", Nsqr="Nsqr@tau"),
            K(ktr.vertical_diffusivity, Nsqr="Nsqr@tau"),
            # momentum
            K(kmom.hydrostatic_pressure, rho="rho@tau"),
            FusedOp(kmom.momentum_tendency,
                    K(kmom.coriolis_metric, u="u@tau", v="v@tau"),
                    K(kmom.momentum_advection, u="u@tau", v="v@tau", w="w@tau"),
                    K(kmom.explicit_tendency, du="du@tau", dv="dv@tau")),
            K(kfric.implicit_vert_friction, u="u@tau", v="v@tau"),
            # lateral friction and its dissipation (an EKE source) in one pass
            FusedOp(kfric.friction_with_dissipation,
                    K(kfric.lateral_friction, u="u@tau", v="v@tau"),
                    K(kfric.friction_dissipation, u="u@tau", v="v@tau")),
            # external mode
            K(kext.barotropic_forcing, du="du@tau", dv="dv@tau"),
            ExchangeOp("uloc", cyc), ExchangeOp("vloc", cyc),
            K(kext.streamfunction_rhs),
            SolveOp(self.solver, cyclic=cyc),
            IslandOp(self.solver),
            K(kext.psi_update, psi_new="psi@taup1", dpsi_new="dpsi@taup1", psi_old="psi@tau", dpsi_old="dpsi@tau"),
            IslandPsiOp(),
            K(kext.velocity_update, u_new="u@taup1", v_new="v@taup1", u_old="u@tau", v_old="v@tau",
              du_now="du@tau", dv_now="dv@tau", du_old="du@taum1", dv_old="dv@taum1", psi="psi@taup1"),
            # tracers
            FusedOp(ktr.tracer_advection_ab2,
                    K(ktr.tracer_advection, dtemp="dtemp@tau", dsalt="dsalt@tau", temp="temp@tau",
                      salt="salt@tau", u="u@tau", v="v@tau", w="w@tau"),
                    K(ktr.tracer_ab2, temp_old="temp@tau", salt_old="salt@tau", dtemp_now="dtemp@tau",
                      dsalt_now="dsalt@tau", dtemp_old="dtemp@taum1", dsalt_old="dsalt@taum1")),
            K(ktr.vertical_mixing, temp_new="temp@taup1", salt_new="salt@taup1"),
            ExchangeOp("temp@taup1", cyc), ExchangeOp("salt@taup1", cyc),
            K(ktr.equation_of_state, rho="rho@taup1", Nsqr="Nsqr@taup1", temp="temp@taup1", salt="salt@taup1"),
            # EKE
            K(kfric.dissipation_to_tgrid),
            K(keke.velocity_on_wgrid, u="u@tau", v="v@tau"),
            K(keke.w_wgrid_continuity),
            K(keke.eke_implicit, eke="eke@tau"),
            K(keke.eke_fluxes, eke="eke@tau"),
            FusedOp(keke.eke_advection_update,
                    K(keke.eke_advection, deke="deke@tau"),
                    K(keke.eke_update, eke_new="eke@taup1", eke="eke@tau", deke_now="deke@tau",
                      deke_old="deke@taum1")),
            # boundary exchange and vertical velocity
            ExchangeOp("u@taup1", cyc), ExchangeOp("v@taup1", cyc), ExchangeOp("eke@taup1", cyc),
            K(kext.vertical_velocity, w_new="w@taup1", u="u@taup1", v="v@taup1"),
        ]
        if not self.fused:
            ops = [p for op in ops for p in getattr(op, "parts", (op,))]
        #: fields a fused launch keeps in registers (not stored; see Model.get)
        self.internal_fields = frozenset(f for op in ops for f in getattr(op, "internal", ()))
        return ops

    # ------------------------------------------------------------------
    def step_ops(self):
        """Run the operations of one step (no checks, no rotation)."""
        F = self.fields
        for op in self.ops:
            op.forward(F)

    def finish_step(self):
        self.fields.rotate()
        self.itt += 1
        self.time = self.time + self.settings.dt_tracer

    def check(self):
        """Largest CFL number of the new state; raises :class:`ModelBlowUpError` on NaN/Inf or CFL > limit."""
        F = self.fields
        self._check_ops.forward(F)
        cmax = float(F.backend.xp.max(F["cfl_col"]))
        if not math.isfinite(cmax) or cmax > self.settings.cfl_limit:
            raise self._blow_up(cmax)
        return cmax

    def _blow_up(self, cmax):
        F = self.fields
        be = F.backend
        g = self.grid
        step = self.itt + 1
        msg = None
        for var in ("u", "v", "w", "temp", "salt", "eke"):
            a = be.to_numpy(F[var + "@taup1"])
            bad = ~np.isfinite(a)
            if bad.any():
                k, j, i = np.argwhere(bad)[0]
                msg = (f"non-finite {var} at step {step} (model time {self.time + self.settings.dt_tracer:.0f} s) "
                       f"at grid point (k={k}, j={j}, i={i}) = ({_coord(g, var, k, j, i)})")
                break
        if msg is None:
            cfl = be.to_numpy(F["cfl_col"])
            j, i = np.unravel_index(int(np.argmax(cfl)), cfl.shape)
            msg = (f"CFL number {cmax:.3g} > cfl_limit={self.settings.cfl_limit} at step {step} in column "
                   f"(j={j}, i={i}) (x={g.xt[i]:.3f}, y={g.yt[j]:.3f}); fields u, v, w")
        path = None
        try:
            from . import io as oio
            out = Path(self.output_dir) if self.output_dir else Path.cwd()
            path = oio.unique_path(out / f"{self.name}_last_good_state_itt{self.itt:08d}.nc")
            oio.write_restart(self, path)
            msg += f"; the last good state (step {self.itt}) was written to {path}"
        except Exception as exc:  # still report the blow-up
            msg += f"; writing the last good state failed: {exc}"
        return ModelBlowUpError(msg, restart_file=path, step=step)

    def step(self, check=True):
        """Advance one time step."""
        self.step_ops()
        if check and (self.itt + 1) % self.settings.check_every == 0:
            self.check()
        self.finish_step()

    def run(self, steps, progress=None, callback=None):
        """Advance ``steps`` time steps.

        Parameters
        ----------
        steps : int
        progress : bool, optional
            Show a progress bar (default: for runs longer than 2000 steps).
        callback : callable(model), optional
            Called after every step (e.g. to accumulate averages or diagnostics).
        """
        if not isinstance(steps, (int, np.integer)) or steps < 0:
            raise ValueError(f"steps={steps!r} is invalid: must be an integer >= 0")
        show = (steps > 2000) if progress is None else bool(progress)
        bar = None
        if show:
            from tqdm.auto import tqdm
            bar = tqdm(total=int(steps), desc=f"{self.name} steps", unit="step", mininterval=1.0)
        t0 = _time.perf_counter()
        try:
            for _ in range(int(steps)):
                self.step()
                if callback is not None:
                    callback(self)
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
            self.backend.synchronize()
            self.timers["run"] = self.timers.get("run", 0.0) + _time.perf_counter() - t0
        return self

    # ------------------------------------------------------------------
    def get(self, name, level="tau"):
        """A field as a NumPy array with halos (newest level for prognostic fields)."""
        if name in self.internal_fields:
            raise ValueError(f"field {name!r} is not stored by the fused step (it stays in registers); build the "
                             "model with fused=False (e.g. setups.acc(..., fused=False)) to keep it")
        if VARIABLES.get(name) is not None and VARIABLES[name].time_levels:
            return self.backend.to_numpy(self.fields[f"{name}@{level}"]).copy()
        return self.backend.to_numpy(self.fields[name]).copy()

    def transport(self):
        """ACC transport [Sv]: psi on the southern wall minus psi on the northern wall (newest level)."""
        psi = self.backend.to_numpy(self.fields["psi@tau"])
        return float(psi[1, 2] - psi[self.grid.ny + 1, 2]) / 1e6

    def snapshot(self, variables=None):
        """xarray.Dataset of the newest state without halos (see :mod:`ocean_core.io`)."""
        from . import io as oio
        return oio.snapshot(self, variables)

    def time_average(self, steps, variables=None):
        """Run ``steps`` steps and return the mean over them of the snapshot variables (xarray.Dataset)."""
        from . import io as oio
        return oio.time_average(self, steps, variables)

    def save_restart(self, path):
        from . import io as oio
        return oio.write_restart(self, path)

    def load_restart(self, path):
        from . import io as oio
        oio.read_restart(self, path)
        return self

    def __repr__(self):
        return (f"<Model {self.name} {self.grid.nx}x{self.grid.ny}x{self.grid.nz} backend={self.backend.name} "
                f"itt={self.itt} time={self.time:.0f}s>")


def _coord(g, var, k, j, i):
    dims = VARIABLES[var].dims
    x = g.xu[i] if dims[2] == "xu" else g.xt[i]
    y = g.yu[j] if dims[1] == "yu" else g.yt[j]
    z = g.zw[k] if dims[0] == "zw" else g.zt[k]
    return f"x={x:.3f}, y={y:.3f}, z={z:.1f} m"
