"""Validated model settings and named configurations.

The ``paper`` configuration is the reference setup of the differentiable-Veros paper:
Veros 1.7.0's ACC setup with EKE on, TKE off, neutral diffusion off,
``A_h = 3435.5036038313715`` m^2/s, ``r_bot = 1e-5`` 1/s, ``K_iso = K_gm = 62.5``,
``eke_c_k = 0.4``, ``eke_c_eps = 0.5``, ``eke_k_max = 625``, ``eke_lmin = 1``,
``dt_mom = dt_tracer = 1200`` s.  With TKE off Veros uses ``kappaM = kappaM_0`` and
``kappaH = kappaH_0`` (1 m^2/s where N^2 < 0); both default to 0.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

__all__ = ["Settings", "CONFIGS", "SettingsError", "make_settings"]


class SettingsError(ValueError):
    """Invalid setting: the message names the parameter, the value and what is allowed."""


def _positive(name, value):
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise SettingsError(f"{name}={value!r} is invalid: must be a finite number > 0")


def _nonneg(name, value):
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise SettingsError(f"{name}={value!r} is invalid: must be a finite number >= 0")


@dataclass
class Settings:
    """Model settings (SI units).  Use :func:`make_settings` to build a validated copy."""

    dt_mom: float = 1200.0            #: momentum time step [s]
    dt_tracer: float = 1200.0         #: tracer time step [s] (advances model time)
    A_h: float = 3435.5036038313715   #: lateral viscosity [m^2/s]
    hor_friction_cosPower: float = 1.0  #: exponent of the cos(latitude) scaling of A_h
    r_bot: float = 1e-5               #: linear bottom drag on the bottom cell [1/s]
    kappaM_0: float = 0.0             #: vertical viscosity [m^2/s]
    kappaH_0: float = 0.0             #: background vertical diffusivity [m^2/s]
    K_iso_0: float = 62.5             #: isopycnal diffusivity (inert with neutral diffusion off)
    K_gm_0: float = 62.5              #: GM diffusivity (inert: EKE computes K_gm)
    enable_eke: bool = True
    eke_c_k: float = 0.4
    eke_c_eps: float = 0.5
    eke_k_max: float = 625.0
    eke_lmin: float = 1.0
    eke_cross: float = 2.0
    eke_crhin: float = 1.0
    alpha_eke: float = 1.0
    #: seasonal cycle of wind stress and relaxation target (off by default)
    seasonal: bool = False
    seasonal_wind_amplitude: float = 0.2   #: relative amplitude of the wind-stress cycle
    seasonal_tstar_amplitude: float = 2.0  #: amplitude [K] of the relaxation-target cycle (antisymmetric in y)
    year_length: float = 365.0 * 86400.0   #: [s]
    #: stochastic wind-stress anomaly (off by default): ``taux, tauy *= 1 + wind_noise x(t)`` with x a
    #: unit-variance red-noise (AR(1)) series of e-folding time ``wind_noise_days``, drawn once per day
    #: from ``wind_noise_seed`` and interpolated linearly in time (a function of model time only, so
    #: restarts continue it bit for bit); gives the emulator forced interannual variability
    wind_noise: float = 0.0
    wind_noise_days: float = 30.0
    wind_noise_seed: int = 0
    #: stop when a CFL number exceeds this (checked every ``check_every`` steps)
    cfl_limit: float = 1.0
    check_every: int = 1

    def validate(self):
        for n in ("dt_mom", "dt_tracer", "year_length", "eke_lmin", "eke_k_max", "eke_cross", "eke_crhin",
                  "cfl_limit"):
            _positive(n, getattr(self, n))
        for n in ("A_h", "r_bot", "kappaM_0", "kappaH_0", "K_iso_0", "K_gm_0", "eke_c_k", "eke_c_eps",
                  "alpha_eke", "seasonal_wind_amplitude", "seasonal_tstar_amplitude", "hor_friction_cosPower"):
            _nonneg(n, getattr(self, n))
        if not isinstance(self.check_every, int) or self.check_every < 1:
            raise SettingsError(f"check_every={self.check_every!r} is invalid: must be an integer >= 1")
        if not self.enable_eke:
            raise SettingsError("enable_eke=False is not supported yet: allowed value is True")
        _positive("wind_noise_days", self.wind_noise_days)
        if not (isinstance(self.wind_noise, (int, float)) and 0.0 <= self.wind_noise < 0.5):
            raise SettingsError(f"wind_noise={self.wind_noise!r} is invalid: must be a number in [0, 0.5) "
                                "(relative standard deviation of the wind-stress anomaly)")
        if isinstance(self.wind_noise_seed, bool) or not isinstance(self.wind_noise_seed, int) \
                or self.wind_noise_seed < 0:
            raise SettingsError(f"wind_noise_seed={self.wind_noise_seed!r} is invalid: must be an integer >= 0")
        if self.seasonal_wind_amplitude >= 1:
            raise SettingsError(f"seasonal_wind_amplitude={self.seasonal_wind_amplitude!r} is invalid: must be in [0, 1)")
        return self

    @property
    def time_dependent_forcing(self):
        """Whether the forcing changes in time (seasonal cycle or wind noise): the model then keeps the
        ``*_base`` forcing fields and runs :class:`ocean_core.model.SeasonalForcingOp`."""
        return bool(self.seasonal) or self.wind_noise > 0

    def asdict(self):
        return dataclasses.asdict(self)


#: named configurations: overrides of the defaults above
CONFIGS = {
    "paper": {},
}


def make_settings(config="paper", **overrides):
    """Settings of a named configuration with overrides, validated.

    Raises :class:`SettingsError` for an unknown configuration or parameter name or an
    invalid value.
    """
    if config not in CONFIGS:
        raise SettingsError(f"config={config!r} is unknown: allowed are {sorted(CONFIGS)}")
    names = {f.name for f in dataclasses.fields(Settings)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise SettingsError(f"unknown setting(s) {unknown}: allowed are {sorted(names)}")
    values = dict(CONFIGS[config])
    values.update({k: v for k, v in overrides.items() if v is not None})
    s = Settings(**values)
    return s.validate()
