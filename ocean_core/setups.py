"""Model setups.

:func:`acc` builds Veros's idealised ACC configuration: a re-entrant channel south of
20S connected to a closed basin, 15 levels over 2080 m, flat bottom, zonal wind
stress and a 30-day relaxation of the top cell (20 m) to a meridional temperature
profile.  Resolution r degrees gives nx = 60/r, ny = 84/r exactly as Veros builds it
(the origin is on the first U/V face, so the wet domain is x in [-2, 58] at 2 degrees).
"""

from __future__ import annotations

import numpy as np

from . import constants as C
from .grid import Grid
from .model import Model
from .settings import SettingsError, make_settings

__all__ = ["acc", "ACC_DZT", "acc_grid"]

#: layer thicknesses of the ACC setup [m], bottom first (Veros: ddz[::-1] / 2.5)
ACC_DZT = np.array([50.0, 70.0, 100.0, 140.0, 190.0, 240.0, 290.0, 340.0, 390.0, 440.0, 490.0, 540.0, 590.0,
                    640.0, 690.0])[::-1] / 2.5

RESOLUTIONS = (4.0, 2.0, 1.0, 0.5, 0.25)


def acc_grid(resolution=2.0):
    """The ACC grid at ``resolution`` degrees (60/r x 84/r x 15, periodic in x)."""
    try:
        r = float(resolution)
    except (TypeError, ValueError):
        raise SettingsError(f"resolution={resolution!r} is invalid: must be a number of degrees dividing 60 and 84 "
                            f"(e.g. {RESOLUTIONS})") from None
    nx, ny = 60.0 / r if r > 0 else 0, 84.0 / r if r > 0 else 0
    if not (r > 0 and abs(nx - round(nx)) < 1e-9 and abs(ny - round(ny)) < 1e-9 and round(nx) >= 4):
        raise SettingsError(f"resolution={resolution!r} is invalid: 60/r and 84/r must be integers >= 4 "
                            f"(e.g. {RESOLUTIONS})")
    nx, ny = int(round(nx)), int(round(ny))

    def kbot(x, y):
        return ((x > 1.0) | (y < -20.0)).astype(np.int32)

    return Grid(np.full(nx, r), np.full(ny, r), ACC_DZT, 0.0, -40.0, kbot, cyclic_x=True, coord_degree=True)


def _acc_forcing(grid):
    """Wind stress, relaxation target and restoring velocity of Veros's ACC setup.

    Uses the halo-inclusive extrema of yt/yu as Veros does (so the profiles depend
    slightly on resolution), ``yt`` in the conditions and ``yu`` in the wind formula.
    """
    yt, yu = grid.yt, grid.yu
    yt_min, yt_max = yt.min(), yt.max()
    yu_min, yu_max = yu.min(), yu.max()
    taux = np.zeros_like(yt)
    taux = np.where(yt < -20, 0.1 * np.sin(C.PI * (yu - yu_min) / (-20.0 - yt_min)), taux)
    taux = np.where(yt > 10, 0.1 * (1 - np.cos(2 * C.PI * (yu - 10.0) / (yu_max - 10.0))), taux)
    surface_taux = taux[:, None] * grid.maskU[-1]
    t_star = np.full_like(yt, 15.0)
    t_star = np.where(yt < -20, 15 * (yt - yt_min) / (-20 - yt_min), t_star)
    t_star = np.where(yt > 20, 15 * (1 - (yt - 20) / (yt_max - 20)), t_star)
    t_rest = grid.dzt[-1] / (30.0 * 86400.0) * grid.maskT[-1]
    pattern = np.clip(yt / 42.0, -1.0, 1.0)
    return {
        "surface_taux": surface_taux,
        "surface_tauy": np.zeros(grid.shape2),
        "t_star": np.broadcast_to(t_star[:, None], grid.shape2).copy(),
        "t_rest": t_rest,
        "t_star_pattern": np.broadcast_to(pattern[:, None], grid.shape2).copy(),
    }


def acc(resolution=2.0, config="paper", backend="cpu", seasonal=False, fused=True, **overrides):
    """The idealised ACC channel-plus-basin of Veros at ``resolution`` degrees.

    Parameters
    ----------
    resolution : float
        Grid spacing in degrees (2, 1, 0.5, 0.25, ...; 60/r and 84/r must be integers).
    config : str
        Named configuration (``"paper"``).
    backend : {"cpu", "cuda"}
    seasonal : bool
        Seasonal cycle of wind stress and relaxation target (off by default).
    fused : bool
        Fused kernel launches (default; bitwise the same results).  ``False`` launches every
        kernel on its own and stores every intermediate field (du_cor, du_adv, ...).
    **overrides
        Any :class:`ocean_core.settings.Settings` field, e.g. ``dt_mom``, ``dt_tracer``,
        ``A_h``, ``r_bot``, ``kappaM_0``, ``kappaH_0``.

    Returns
    -------
    Model
        At rest, ``temp = 15 (1 - zt / zw[0])``, ``salt = 35`` on all three time levels.
    """
    settings = make_settings(config, seasonal=seasonal, **overrides)
    grid = acc_grid(resolution)
    forcing = _acc_forcing(grid)
    temp = (1 - grid.zt[:, None, None] / grid.zw[0]) * 15 * grid.maskT
    salt = 35.0 * grid.maskT
    initial = {"temp": np.broadcast_to(temp, (3,) + temp.shape), "salt": np.broadcast_to(salt, (3,) + salt.shape)}
    model = Model(grid, settings, backend=backend, name=f"acc{resolution:g}", forcing=forcing, initial=initial,
                  fused=fused)
    model.resolution = float(resolution)
    model.config = config
    initial_density(model)
    return model


def initial_density(model):
    """rho and N^2 of every time level from temp and salt (Veros ``calc_initial_conditions``)."""
    from .kernels.tracers import equation_of_state
    F = model.fields
    for lev in ("taum1", "tau", "taup1"):
        equation_of_state(F[f"rho@{lev}"], F[f"Nsqr@{lev}"], F[f"temp@{lev}"], F[f"salt@{lev}"], F["maskT"],
                          F["maskW"], F["zt"], F["dzw"], backend=model.backend.name)
