"""Tangent-linear and adjoint kernels, one module per forward kernel module of
:mod:`ocean_core.kernels`.  Importing this package registers every pair."""

import importlib

MODULES = ("params", "momentum", "friction", "external", "tracers", "eke")

for _m in MODULES:
    try:
        importlib.import_module(f"{__name__}.{_m}")
    except ModuleNotFoundError as exc:  # module not written yet
        if exc.name != f"{__name__}.{_m}":
            raise
