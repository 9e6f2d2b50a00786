"""Evaluation metrics on fields with known answers."""

import numpy as np
import pytest

from emulator.metrics import (band_average, band_levels, band_mean_series, detrend,
                              detrended_r2, isotropic_spectrum, layer_thickness, r2_score,
                              ratio_summary, rmse_by_level, seasonal_anomaly,
                              variance_ratio_map)


def test_r2_and_detrending():
    t = np.arange(100.0)
    s = np.sin(t / 5)
    assert r2_score(s, s) == 1.0
    assert r2_score(s, np.full_like(s, s.mean())) == pytest.approx(0.0, abs=1e-15)
    # a trend in the prediction alone is removed by detrending; noise is not
    assert detrended_r2(s + 0.01 * t, s + 0.05 * t) == pytest.approx(1.0, abs=1e-3)
    assert r2_score(s + 0.01 * t, s + 0.05 * t) < 0.9
    rng = np.random.default_rng(0)
    noisy = s + 0.5 * rng.standard_normal(100)
    r2 = detrended_r2(s, noisy)
    ref = 1 - ((detrend(s) - detrend(noisy)) ** 2).sum() / ((detrend(s) - detrend(s).mean()) ** 2).sum()
    assert r2 == pytest.approx(ref) and r2 < 0.8
    np.testing.assert_allclose(detrend(3 + 2 * t), 0, atol=1e-10)


def test_layer_thickness_and_bands():
    # Veros ACC levels (zw top faces, bottom first)
    zw = -np.array([1804, 1548, 1312, 1096, 900, 724, 568, 432, 316, 220, 144, 88, 48, 20, 0.0])
    dzt_ref = np.array([276, 256, 236, 216, 196, 176, 156, 136, 116, 96, 76, 56, 40, 28, 20.0])
    zt = zw - dzt_ref / 2
    np.testing.assert_allclose(layer_thickness(zt, zw), dzt_ref)
    np.testing.assert_array_equal(band_levels(zt, (0, 300)), np.arange(9, 15))
    # volume-weighted mean of a field equal to the level index, over two levels
    T = np.broadcast_to(np.arange(15.0)[None, :, None, None], (2, 15, 2, 3))
    mask = np.ones((15, 2, 3))
    area = np.ones((2, 3))
    s = band_mean_series(T, mask, area, dzt_ref, np.array([13, 14]))
    np.testing.assert_allclose(s, (13 * 28 + 14 * 20) / 48)
    avg, wet = band_average(T, mask, dzt_ref, np.array([13, 14]))
    np.testing.assert_allclose(avg, (13 * 28 + 14 * 20) / 48)
    assert wet.all()


def test_rmse_and_variance_ratio():
    rng = np.random.default_rng(1)
    truth = rng.standard_normal((200, 2, 3, 4))
    pred = truth + 0.1
    mask = np.ones((2, 3, 4))
    mask[1, 0, 0] = 0
    rmse, sd = rmse_by_level(truth, pred, mask, np.ones((3, 4)))
    np.testing.assert_allclose(rmse, 0.1, rtol=1e-12)
    assert np.all(np.abs(sd - 1) < 0.15)
    wet = np.ones((3, 4), bool)
    wet[0, 0] = False
    r = variance_ratio_map(truth[:, 0], 0.5 * truth[:, 0], wet)
    np.testing.assert_allclose(r[wet], 0.25, rtol=1e-12)
    assert np.isnan(r[0, 0])
    summ = ratio_summary(r)
    assert summ["frac_in_range"] == 0.0 and summ["max"] == pytest.approx(0.25)
    # ratio of area means: weights by area, over the defined points only
    pred = truth[:, 0].copy()
    pred[:, 1, 1] *= 3.0
    area = np.arange(1.0, 13.0).reshape(3, 4)
    r2, am = variance_ratio_map(truth[:, 0], pred, wet, area=area)
    vt = truth[:, 0].var(axis=0)
    ref = ((area * vt)[wet].sum() + 8 * area[1, 1] * vt[1, 1]) / (area * vt)[wet].sum()
    assert am == pytest.approx(ref, rel=1e-12) and r2[1, 1] == pytest.approx(9.0)
    assert ratio_summary(r2, area_ratio=am)["area_mean_ratio"] == am
    # the seasonal cycle is removed before the deseasoned ratio
    t = np.arange(146)
    bins = t % 73
    season = np.sin(2 * np.pi * t / 73)[:, None, None] * np.ones((1, 3, 4))
    noise = rng.standard_normal((146, 3, 4))
    anom = seasonal_anomaly(season + 0.1 * noise, bins)
    assert np.abs(anom).max() < 1.0
    rd = variance_ratio_map(season + 0.1 * noise, season + 0.2 * noise, wet, phase_bins=bins)
    np.testing.assert_allclose(rd[wet], 4.0, rtol=1e-10)
    # a drift only in the prediction inflates the raw ratio but not the detrended one
    drift = 0.05 * t[:, None, None] * np.ones((1, 3, 4))
    raw = variance_ratio_map(noise, noise + drift, wet)
    det = variance_ratio_map(noise, noise + drift, wet, detrended=True)
    assert np.nanmin(raw[wet]) > 3
    np.testing.assert_allclose(det[wet], 1.0, atol=1e-3)


def test_isotropic_spectrum_peak():
    H, W = 64, 64
    y, x = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    k0 = 8
    f = np.cos(2 * np.pi * k0 * x / W) + np.cos(2 * np.pi * k0 * y / H)
    k, kP = isotropic_spectrum(f, dx=1000.0, dy=1000.0)
    peak = k[np.nanargmax(kP)]
    assert peak == pytest.approx(2 * np.pi * k0 / (W * 1000.0), rel=0.1)
    # white noise has more small-scale power than a smooth field
    rng = np.random.default_rng(2)
    _, kp_noise = isotropic_spectrum(rng.standard_normal((H, W)), 1000.0, 1000.0)
    _, kp_smooth = isotropic_spectrum(f, 1000.0, 1000.0)
    n = len(k)
    assert np.nansum(kp_noise[2 * n // 3:]) / np.nansum(kp_noise) > \
        10 * np.nansum(kp_smooth[2 * n // 3:]) / np.nansum(kp_smooth)


def _ar1(rng, r, shape, n):
    """``n`` steps of unit-variance AR(1) noise with lag-1 correlation ``r`` at each point."""
    x = np.empty((n,) + shape)
    x[0] = rng.standard_normal(shape)
    for t in range(1, n):
        x[t] = r * x[t - 1] + np.sqrt(1 - r * r) * rng.standard_normal(shape)
    return x


def test_effective_dof_of_red_noise():
    from emulator.metrics import effective_dof, lag1_autocorrelation
    rng = np.random.default_rng(3)
    x = _ar1(rng, 0.8, (40, 40), 2000)
    assert np.median(lag1_autocorrelation(x)) == pytest.approx(0.8, abs=0.02)
    # T (1 - r^2) / (1 + r^2) - 1 = 2000 * 0.36 / 1.64 - 1 = 438
    assert np.median(effective_dof(x)) == pytest.approx(438, rel=0.08)
    white = rng.standard_normal((500, 10, 10))
    assert np.all(effective_dof(white) > 450)


@pytest.mark.parametrize("r", [0.0, 0.9])
def test_variance_ratio_interval_coverage(r):
    """Two independent series of the same red noise: the 95 % interval covers the true ratio 1
    at about 95 % of points, and a 4x too large variance is shown outside [0.5, 2] once the
    record is long enough for the interval to be narrow."""
    from emulator.metrics import interval_summary, variance_ratio_interval
    rng = np.random.default_rng(11)
    shape, n = (30, 40), 400
    wet = np.ones(shape, bool)
    truth = _ar1(rng, r, shape, n)
    pred = _ar1(rng, r, shape, n)
    ratio, lo, hi = variance_ratio_interval(truth, pred, wet)
    cover = ((lo <= 1.0) & (hi >= 1.0)).mean()
    assert 0.92 <= cover <= 0.98, cover
    s = interval_summary(lo, hi)
    assert s["frac_covering_1"] == cover
    assert s["frac_consistent"] >= 0.99
    # the interval widens with the autocorrelation (fewer independent samples)
    assert (s["median_width_factor"] > 2.0) == (r > 0.5)
    ratio4, lo4, hi4 = variance_ratio_interval(truth, 2.0 * pred, wet)
    np.testing.assert_allclose(ratio4, 4.0 * ratio, rtol=1e-12)
    s4 = interval_summary(lo4, hi4)
    if r == 0.0:   # 400 independent samples: a ratio of 4 is seen to be outside [0.5, 2]
        assert s4["frac_consistent"] < 0.02
    else:          # ~70 effective samples: still mostly outside
        assert s4["frac_consistent"] < 0.5
