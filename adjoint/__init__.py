"""Hand-derived tangent-linear and adjoint model of stommel's ocean core.

>>> from ocean_core import setups
>>> import adjoint
>>> model = setups.acc(resolution=2.0)
>>> loss = adjoint.losses.FieldMSE("u", target=0.0, at_step=10)
>>> g = adjoint.gradient(model, loss, controls=["temp", "A_h", "r_bot"], steps=10)
>>> g["A_h"], g.value                                     # dJ/dA_h and J

Every forward kernel has a tangent and an adjoint kernel (``adjoint.kernels``) derived
from the discrete code; the step-level drivers are in :mod:`adjoint.core`, the losses in
:mod:`adjoint.losses`, verification tools in :mod:`adjoint.checks`.
"""

from . import losses
from .core import CONTROLS, Gradient, get_control, gradient, jvp, set_control

__all__ = ["gradient", "jvp", "losses", "CONTROLS", "Gradient", "set_control", "get_control"]
