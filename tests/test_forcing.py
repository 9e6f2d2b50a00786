"""Time-dependent forcing: the seasonal cycle and the red-noise wind-stress anomaly
(:class:`ocean_core.model.RedNoise`, settings ``wind_noise*``)."""

import math

import numpy as np

from ocean_core import setups
from ocean_core.model import RedNoise, SeasonalForcingOp

DAY = 86400.0


def test_red_noise_is_a_function_of_time_and_seed():
    a, b = RedNoise(30.0, 7), RedNoise(30.0, 7)
    times = [5.3 * DAY, 0.0, 100.25 * DAY, 2.0 * DAY, 99.0 * DAY]
    va = [a(t) for t in times]                 # asked out of order ...
    vb = [b(t) for t in sorted(times)]         # ... and in order: the same values
    assert va == [vb[sorted(times).index(t)] for t in times]
    assert RedNoise(30.0, 8)(5.3 * DAY) != va[0]
    # linear between the daily values, constant before t = 0
    x = RedNoise(30.0, 1)
    assert x(-DAY) == x(0.0) == x.values[0]
    assert math.isclose(x(2.25 * DAY), 0.75 * x.values[2] + 0.25 * x.values[3], rel_tol=0, abs_tol=1e-15)


def test_red_noise_statistics():
    # unit variance and lag-1 correlation exp(-1/days) of the daily values; 40000 days with an
    # e-folding time of 10 days: about 2000 independent samples, so the variance is within ~3 %
    days = 10.0
    x = RedNoise(days, 3)
    x(40000 * DAY)
    v = np.asarray(x.values)
    assert abs(v.var() - 1.0) < 0.12
    assert abs(v.mean()) < 0.1
    r1 = np.corrcoef(v[:-1], v[1:])[0, 1]
    assert abs(r1 - math.exp(-1.0 / days)) < 0.01


def test_wind_noise_scales_the_wind_stress():
    m = setups.acc(4.0, wind_noise=0.2, wind_noise_days=5.0, wind_noise_seed=11,
                   dt_mom=7200.0, dt_tracer=7200.0)
    op = [o for o in m.ops if isinstance(o, SeasonalForcingOp)]
    assert len(op) == 1 and op[0].a == 0.0 and op[0].b == 0.0  # seasonal cycle off
    base = np.asarray(m.fields["surface_taux_base"]).copy()
    assert np.abs(base).max() > 0
    ref = RedNoise(5.0, 11)
    seen = []
    for _ in range(30):  # 2.5 model days
        t = m.time
        m.step()
        fac = 1.0 + 0.2 * ref(t)
        np.testing.assert_array_equal(np.asarray(m.fields["surface_taux"]), fac * base)
        seen.append(fac)
    assert np.ptp(seen) > 0.01  # the wind changed
    # without the option the wind stays at its base value and no forcing op is built
    m0 = setups.acc(4.0)
    assert not any(isinstance(o, SeasonalForcingOp) for o in m0.ops)
