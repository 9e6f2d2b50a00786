"""stommel: a primitive-equation ocean model with Veros 1.7 numerics on Numba/CUDA
kernels (:mod:`ocean_core`), its hand-derived adjoint (:mod:`adjoint`) and a neural
emulator (:mod:`emulator`).

This package holds the ``stommel`` command line (:mod:`stommel.cli`); the Python API
is ``from ocean_core import setups; model = setups.acc(2.0); model.run(steps=100)``.
"""

try:  # the installed distribution's version; a plain checkout falls back
    from importlib.metadata import PackageNotFoundError, version as _version

    __version__ = _version("stommel")
except Exception:  # pragma: no cover - not installed
    __version__ = "0.1.0"

__all__ = ["__version__"]
