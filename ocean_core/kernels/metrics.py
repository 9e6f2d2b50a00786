"""Static arrays derived from the grid (ratios and reciprocals of metric factors) that the
kernels read instead of dividing per grid point.

A vector division costs several times a multiplication on current CPUs, and the kernels are
compute-bound on one core (measured at 0.25 deg: 8-13 GB/s against ~20 GB/s that a core
streams), so every per-point quotient of grid metrics is precomputed once here.  Each family
lives beside the kernels that use it (:func:`ocean_core.kernels.friction.friction_metrics`,
:func:`ocean_core.kernels.momentum.momentum_metrics`, ...); this module collects them for the
model and the tests.
"""

from __future__ import annotations

from . import eke, external, friction, momentum, tracers

#: names of every derived array, in a fixed order
DERIVED_METRICS = (friction.FRICTION_METRICS + friction.DISSIPATION_METRICS + momentum.MOMENTUM_METRICS + tracers.TRACER_METRICS
                   + eke.EKE_METRICS + eke.WGRID_METRICS + external.EXTERNAL_METRICS)


def derived_metrics(grid, cos_power=1.0):
    """All derived metric arrays of ``grid`` (NumPy, halo-inclusive), keyed by kernel argument name.

    ``cos_power`` is ``hor_friction_cosPower`` (the harmonic friction's cos scaling).
    """
    out = {}
    out.update(friction.friction_metrics(grid, cos_power))
    out.update(friction.dissipation_metrics(grid))
    out.update(momentum.momentum_metrics(grid))
    out.update(tracers.tracer_metrics(grid))
    out.update(eke.eke_metrics(grid))
    out.update(eke.wgrid_metrics(grid))
    out.update(external.external_metrics(grid))
    assert tuple(out) == DERIVED_METRICS
    return out
