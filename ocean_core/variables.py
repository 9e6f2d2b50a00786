"""Metadata of every model array: grid dimensions (named after their grid points, as
Veros names them), units, long names and CF standard names.

Dimension names: ``xt``/``xu`` (T / U columns in x), ``yt``/``yu``, ``zt``/``zw``
(T levels / W levels), ``isle`` (land masses).  In memory the order is always
``(z, y, x)`` and x/y carry 2 halo cells; output drops the halos.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Var:
    dims: tuple
    units: str
    long_name: str
    standard_name: str = ""
    time_levels: bool = False  # prognostic: 3 time levels (taum1, tau, taup1)


T3 = ("zt", "yt", "xt")
U3 = ("zt", "yt", "xu")
V3 = ("zt", "yu", "xt")
W3 = ("zw", "yt", "xt")
T2 = ("yt", "xt")
U2 = ("yt", "xu")
V2 = ("yu", "xt")
Z2 = ("yu", "xu")

VARIABLES = {
    # --- prognostic state (3 time levels) ---
    "u": Var(U3, "m/s", "Zonal velocity", "sea_water_x_velocity", True),
    "v": Var(V3, "m/s", "Meridional velocity", "sea_water_y_velocity", True),
    "w": Var(W3, "m/s", "Vertical velocity", "upward_sea_water_velocity", True),
    "temp": Var(T3, "deg C", "Potential temperature", "sea_water_potential_temperature", True),
    "salt": Var(T3, "g/kg", "Salinity", "sea_water_salinity", True),
    "eke": Var(W3, "m^2/s^2", "Meso-scale eddy energy", "", True),
    "psi": Var(Z2, "m^3/s", "Barotropic streamfunction", "ocean_barotropic_streamfunction", True),
    "dpsi": Var(Z2, "m^3/s^2", "Streamfunction tendency", "", True),
    "du": Var(U3, "m/s^2", "Zonal velocity tendency (AB2 part)", "", True),
    "dv": Var(V3, "m/s^2", "Meridional velocity tendency (AB2 part)", "", True),
    "dtemp": Var(T3, "deg C/s", "Temperature tendency (advection)", "", True),
    "dsalt": Var(T3, "g/(kg s)", "Salinity tendency (advection)", "", True),
    "deke": Var(W3, "m^2/s^3", "EKE tendency (advection)", "", True),
    "rho": Var(T3, "kg/m^3", "In-situ density anomaly", "", True),
    "Nsqr": Var(W3, "1/s^2", "Square of stability frequency", "square_of_brunt_vaisala_frequency_in_sea_water", True),
    "dpsin": Var(("isle",), "m^3/s^2", "Boundary streamfunction tendency", "", True),
    # --- diagnosed each step ---
    "du_cor": Var(U3, "m/s^2", "Coriolis and metric tendency of u"),
    "dv_cor": Var(V3, "m/s^2", "Coriolis and metric tendency of v"),
    "du_adv": Var(U3, "m/s^2", "Advective tendency of u"),
    "dv_adv": Var(V3, "m/s^2", "Advective tendency of v"),
    "p_hydro": Var(T3, "m^2/s^2", "Hydrostatic pressure / rho_0"),
    "du_mix_v": Var(U3, "m/s^2", "Vertical friction tendency of u"),
    "dv_mix_v": Var(V3, "m/s^2", "Vertical friction tendency of v"),
    "du_mix": Var(U3, "m/s^2", "Friction tendency of u"),
    "dv_mix": Var(V3, "m/s^2", "Friction tendency of v"),
    "diss_u": Var(U3, "m^2/s^3", "Lateral friction dissipation at U points"),
    "diss_v": Var(V3, "m^2/s^3", "Lateral friction dissipation at V points"),
    "K_diss_h": Var(W3, "m^2/s^3", "Dissipation by lateral friction"),
    "uloc": Var(U2, "m/s^2", "Depth-mean zonal tendency"),
    "vloc": Var(V2, "m/s^2", "Depth-mean meridional tendency"),
    "forc": Var(Z2, "1/s^2", "Streamfunction forcing (curl of depth-mean tendency)"),
    "forc_temp_surface": Var(T2, "K m/s", "Surface temperature flux"),
    "kappaH": Var(W3, "m^2/s", "Vertical diffusivity"),
    "temp_ab": Var(T3, "deg C", "Temperature after advection"),
    "salt_ab": Var(T3, "g/kg", "Salinity after advection"),
    "L_rossby": Var(T2, "m", "Rossby radius"),
    "sqrteke": Var(W3, "m/s", "Square root of EKE"),
    "eke_len": Var(W3, "m", "Eddy length scale"),
    "K_gm": Var(W3, "m^2/s", "Skewness diffusivity (= isopycnal diffusivity K_iso)"),
    "u_wgrid": Var(W3, "m/s", "Zonal velocity on W grid"),
    "v_wgrid": Var(W3, "m/s", "Meridional velocity on W grid"),
    "w_wgrid": Var(W3, "m/s", "Vertical velocity on W grid"),
    "eke_fe": Var(W3, "m^3/s^3", "Advective EKE flux through east faces"),
    "eke_fn": Var(W3, "m^3/s^3", "Advective EKE flux through north faces"),
    "eke_ft": Var(W3, "m^3/s^3", "Advective EKE flux through top faces"),
    "eke_imp": Var(W3, "m^2/s^2", "EKE after implicit vertical step"),
    "scr_cp": Var(W3, "1", "Scratch (tridiagonal solver)"),
    "scr_col": Var(T2, "1", "Scratch (per column: flags and depth sums of row-wise kernels)"),
    "scr_col2": Var(T2, "1", "Scratch (per column: depth sums of row-wise kernels)"),
    "scr_dp": Var(W3, "1", "Scratch (tridiagonal solver, adjoint)"),
    "scr_y": Var(W3, "1", "Scratch (tridiagonal solver, adjoint)"),
    "cfl_col": Var(T2, "1", "Largest CFL number of the column"),
    # --- parameters and forcing (controls of the adjoint) ---
    "A_h_t": Var(T2, "m^2/s", "Lateral viscosity at T points"),
    "r_bot_t": Var(T2, "1/s", "Bottom drag coefficient at T points"),
    "surface_taux_base": Var(U2, "N/m^2", "Zonal wind stress (annual mean)"),
    "surface_tauy_base": Var(V2, "N/m^2", "Meridional wind stress (annual mean)"),
    "t_star_base": Var(T2, "deg C", "Relaxation target (annual mean)"),
    "t_star_pattern": Var(T2, "1", "Spatial pattern of the seasonal relaxation-target cycle"),
    "A_h_z": Var(Z2, "m^2/s", "Lateral viscosity at corner points"),
    "r_bot_u": Var(U2, "1/s", "Bottom drag coefficient at U points"),
    "r_bot_v": Var(V2, "1/s", "Bottom drag coefficient at V points"),
    "kappaM": Var(W3, "m^2/s", "Vertical viscosity"),
    "surface_taux": Var(U2, "N/m^2", "Zonal wind stress", "surface_downward_x_stress"),
    "surface_tauy": Var(V2, "N/m^2", "Meridional wind stress", "surface_downward_y_stress"),
    "t_star": Var(T2, "deg C", "Surface temperature relaxation target"),
    "t_rest": Var(T2, "m/s", "Surface temperature relaxation velocity (dzt_top / 30 d)"),
    "forc_salt_surface": Var(T2, "g/kg m/s", "Surface salinity flux"),
    # harmonic friction coefficients (ocean_core.kernels.friction.friction_metrics), cT = cost**p
    "fric_ce_u": Var(("yt", "xu"), "1/m", "u east-flux coefficient cT / (cost dxt[i+1]) at T points i+1"),
    "fric_cn_u": Var(("yu",), "1/m", "u north-flux coefficient cU cosu / dyu at corners"),
    "fric_ce_v": Var(("yu", "xu"), "1/m", "v east-flux coefficient cU / (cosu dxu) at corners"),
    "fric_cn_v": Var(("yt",), "1/m", "v north-flux coefficient cT cost / dyt at T rows j+1"),
    "fric_rx_u": Var(("yt", "xu"), "1/m", "1 / (cost dxu) at U points"),
    "fric_ry_u": Var(("yt",), "1/m", "1 / (cost dyt) at U points"),
    "fric_rx_v": Var(("yu", "xt"), "1/m", "1 / (cosu dxt) at V points"),
    "fric_ry_v": Var(("yu",), "1/m", "1 / (dyu cosu) at V points"),
    # momentum and tracer metric ratios/reciprocals (momentum_metrics, tracer_metrics)
    "cor_rx0": Var(("xu",), "1", "dxt[i] / dxu[i] (Coriolis/metric weight of T point i at U point i)"),
    "cor_rx1": Var(("xu",), "1", "dxt[i+1] / dxu[i] (weight of T point i+1 at U point i; 0 on the last column)"),
    "cor_ry0": Var(("yu",), "1", "dyt[j] cost[j] / (dyu[j] cosu[j]) (weight of T row j at V row j)"),
    "cor_ry1": Var(("yu",), "1", "dyt[j+1] cost[j+1] / (dyu[j] cosu[j]) (weight of T row j+1; 0 on the last row)"),
    "rdzt": Var(("zt",), "1/m", "1 / dzt"),
    "rarea_u": Var(("yt", "xu"), "1/m2", "1 / area_u"),
    "rarea_v": Var(("yu", "xt"), "1/m2", "1 / area_v"),
    "rdx_u": Var(("yt", "xu"), "1/m", "1 / (cost dxu) at U points"),
    "rdy_v": Var(("yu",), "1/m", "1 / dyu at V points"),
    "rdx_t": Var(("yt", "xt"), "1/m", "1 / (cost dxt) at T points"),
    "rdy_t": Var(("yt",), "1/m", "1 / (cost dyt) at T points"),
    "eke_rdz": Var(("zw",), "1/m", "1 / dzw (1 / (0.5 dzw) at the top: half a W cell)"),
    # external-mode reciprocals (ocean_core.kernels.external.external_metrics)
    "rdx_z": Var(("yu", "xu"), "1/m", "1 / (cosu dxu) at Z points (curl of the depth-mean forcing)"),
    "rdy_u": Var(("yt",), "1/m", "1 / dyt (meridional psi difference across a U point)"),
    "diss_dzr": Var(("zw",), "1", "dzw[k-1] / dzw[k] (1 at k = 0): dissipation on the W grid, bottom cell"),
    "diss_wx0": Var(("xt",), "1", "dxu[i-1] / (2 dxt[i]): U dissipation to T, west face"),
    "diss_wx1": Var(("xt",), "1", "dxu[i] / (2 dxt[i]): U dissipation to T, east face"),
    "diss_wy0": Var(("yt", "xt"), "1", "area_v[j-1] / (2 area_t): V dissipation to T, south face"),
    "diss_wy1": Var(("yt", "xt"), "1", "area_v[j] / (2 area_t): V dissipation to T, north face"),
    "wint_up": Var(("zw",), "1", "0.5 dzt[k+1] / dzw[k] (0 at the top): U/V to W levels, upper cell"),
    "wint_dn": Var(("zw",), "1", "0.5 dzt[k] / dzw[k]: U/V to W levels, lower cell"),
    "wint_mv": Var(("zw",), "1", "dzw[k-1] / dzw[k] (0 at the bottom): W-grid velocity moved up"),
    "wface_x": Var(("zw", "yt", "xu"), "1", "W-grid east-face mask maskW_i maskW_i+1 (1 at the top and last column)"),
    "wface_y": Var(("zw", "yu", "xt"), "1", "W-grid north-face mask maskW_j maskW_j+1 (1 at the top and last row)"),
    # --- grid (static) ---
    "maskT": Var(T3, "1", "Mask at T points"),
    "maskU": Var(U3, "1", "Mask at U points"),
    "maskV": Var(V3, "1", "Mask at V points"),
    "maskW": Var(W3, "1", "Mask at W points"),
    "maskZ": Var(("zt", "yu", "xu"), "1", "Mask at Z points"),
    "kbot": Var(T2, "1", "Index (1-based) of deepest wet T cell, 0 = land"),
    "ht": Var(T2, "m", "Depth at T points", "sea_floor_depth_below_geoid"),
    "coriolis_t": Var(T2, "1/s", "Coriolis parameter", "coriolis_parameter"),
}

COORDS = {
    "xt": ("degrees_east", "Zonal coordinate (T)", "longitude"),
    "xu": ("degrees_east", "Zonal coordinate (U)", "longitude"),
    "yt": ("degrees_north", "Meridional coordinate (T)", "latitude"),
    "yu": ("degrees_north", "Meridional coordinate (U)", "latitude"),
    "zt": ("m", "Vertical coordinate (T)", "depth"),
    "zw": ("m", "Vertical coordinate (W)", "depth"),
}

#: variables that hold the model state between steps (with their time levels)
PROGNOSTIC = tuple(n for n, v in VARIABLES.items() if v.time_levels)


def shape_of(name, grid, nisle=1):
    """Halo-inclusive in-memory shape of a variable."""
    sizes = {"zt": grid.nz, "zw": grid.nz, "yt": grid.NY, "yu": grid.NY, "xt": grid.NX, "xu": grid.NX,
             "isle": nisle}
    return tuple(sizes[d] for d in VARIABLES[name].dims)
