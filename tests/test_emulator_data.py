"""Data preparation: channels, normalisation over wet points, dropping constant channels,
splits by time, round trip to physical units, make-data output and its refusal to overwrite."""

import json
import os

import numpy as np
import pytest
from emulator_helpers import synthetic_dataset, synthetic_factory

from emulator.data import (DataSpec, build_spec, open_dataset, point_normalise, prepare, psi_mask,
                           rollout_starts, split_by_years, states_per_year, to_physical)
from emulator.make_data import generate


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    return synthetic_dataset(tmp_path_factory.mktemp("syn"), years=1.0, nx=16, ny=12, nz=3)


def test_make_data_layout(syn, tmp_path):
    assert syn.sizes["time"] == 73
    assert syn.attrs["average_days"] == 5.0 and syn.attrs["year_length_days"] == 365.0
    assert "salt" not in syn  # constant in the synthetic ACC, as in the real one
    assert syn.attrs["salt_constant"] == pytest.approx(35.0)
    assert syn["temp"].dims == ("time", "zt", "yt", "xt")
    assert syn["eke"].dims == ("time", "zw", "yt", "xt")
    assert syn["psi"].dims == ("time", "yu", "xu")
    assert syn["temp"].dtype == np.float32 and "maskU" in syn and "dzt" in syn
    assert np.all(np.diff(syn["time"].values) == 5 * 86400.0)
    assert states_per_year(syn) == pytest.approx(73.0)
    # refuses to overwrite, unless asked
    out = tmp_path / "d"
    generate(str(out), years=0.1, spinup_years=0, model_factory=synthetic_factory(), log=None)
    with pytest.raises(FileExistsError, match="--overwrite"):
        generate(str(out), years=0.1, spinup_years=0, model_factory=synthetic_factory(), log=None)
    meta = generate(str(out), years=0.1, spinup_years=0.05, model_factory=synthetic_factory(),
                    log=None, overwrite=True)
    assert meta["n_means"] == 7 and json.load(open(out / "meta.json"))["n_means"] == 7
    m2 = generate(str(tmp_path / "f"), years=0.1, spinup_years=0, dt=43200.0,
                  model_factory=synthetic_factory(), log=None)
    assert m2["steps_per_mean"] == 10 and m2["dt_tracer"] == 43200.0
    with pytest.raises(ValueError, match="dt=-1"):
        generate(str(tmp_path / "g"), years=1, dt=-1, model_factory=synthetic_factory(), log=None)
    with pytest.raises(ValueError, match="average_days=0.3"):
        generate(str(tmp_path / "e"), years=1, average_days=0.3,
                 model_factory=synthetic_factory(), log=None)


def test_make_data_resume_is_exact(tmp_path, monkeypatch):
    """An interrupted make-data run resumed from its restart file writes the same data."""
    import emulator.make_data as md

    kw = dict(years=2, spinup_years=0.3, model_factory=synthetic_factory(nz=2), log=None)
    generate(str(tmp_path / "a"), **kw)
    orig = md._time_average
    calls = {"n": 0}

    def interrupt(model, steps):
        calls["n"] += 1
        if calls["n"] == 80:  # in the second year
            raise KeyboardInterrupt
        return orig(model, steps)

    monkeypatch.setattr(md, "_time_average", interrupt)
    with pytest.raises(KeyboardInterrupt):
        generate(str(tmp_path / "b"), **kw)
    monkeypatch.setattr(md, "_time_average", orig)
    assert json.load(open(tmp_path / "b" / "progress.json"))["years_written"] == 1
    with pytest.raises(ValueError, match="cannot resume"):
        generate(str(tmp_path / "b"), resume=True, **{**kw, "years": 3})
    generate(str(tmp_path / "b"), resume=True, **kw)
    a, b = open_dataset(str(tmp_path / "a")), open_dataset(str(tmp_path / "b"))
    assert a.sizes["time"] == b.sizes["time"] == 146
    np.testing.assert_array_equal(a["temp"].values, b["temp"].values)
    np.testing.assert_array_equal(a["time"].values, b["time"].values)


def test_spec_and_normalisation(syn):
    split = split_by_years(syn.sizes["time"], 73, 0.6, 0.1, 0.3)
    spec = build_spec(syn, split.train)
    names = [c.name for c in spec.prognostic]
    nz = 3
    assert names[:nz] == [f"temp[{k}]" for k in range(nz)]
    assert "psi" in names and not any(n.startswith("salt") for n in names)
    assert [c.var for c in spec.forcing] == ["surface_taux", "t_star", "season_sin", "season_cos"]
    assert spec.in_channels == 2 * len(names) + 2 * 4 + 2
    data = prepare(syn, spec)
    a, b = split.train
    for c, ch in enumerate(spec.prognostic):
        wet = data.wet[c] > 0
        vals = data.states[a:b, c][:, wet]
        assert abs(vals.mean()) < 1e-4 and vals.std() == pytest.approx(1.0, rel=1e-4), ch.name
        assert np.all(data.states[:, c][:, ~wet] == 0)
    # eke enters as log(eke + eps)
    c = names.index("eke[1]")
    raw = np.log(syn["eke"].values[:, 1].astype(np.float64) + spec.eke_eps)
    wet = data.wet[c] > 0
    np.testing.assert_allclose(data.states[:, c][:, wet] * spec.prognostic[c].std
                               + spec.prognostic[c].mean, raw[:, wet], rtol=1e-5)
    # round trip to physical units
    phys = to_physical(data.states, spec, wet=data.wet)
    m = syn["maskU"].values > 0
    np.testing.assert_allclose(phys["u"][:, m[None].any(0)][:, :5],
                               syn["u"].values[:, m[None].any(0)][:, :5], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(phys["eke"][:, syn["maskW"].values > 0],
                               syn["eke"].values[:, syn["maskW"].values > 0], rtol=1e-4)


def test_point_normalisation(syn):
    """A point-normalised channel has mean 0 and std 1 at every wet point with a std above the
    floor (and std below 1 where the floor applies), survives the spec's JSON round trip, and
    maps back to physical units; the other channels keep their per-channel statistics."""
    split = split_by_years(syn.sizes["time"], 73, 0.6, 0.1, 0.3)
    spec = build_spec(syn, split.train)
    std_c = {ch.name: ch.std for ch in spec.prognostic}
    floor = 0.3
    point_normalise(spec, syn, split.train, ["psi", "u"], floor=floor)
    spec = DataSpec.from_json(json.loads(json.dumps(spec.to_json())))
    data = prepare(syn, spec)
    a, b = split.train
    names = [c.name for c in spec.prognostic]
    n_floor = 0
    for c, ch in enumerate(spec.prognostic):
        wet = data.wet[c] > 0
        vals = data.states[a:b, c][:, wet].astype(np.float64)
        if ch.var in ("psi", "u"):
            assert ch.std == std_c[ch.name]  # the channel std stays (the floor's reference)
            raw_sd = np.asarray(syn[ch.var].values, np.float64)[a:b]
            raw_sd = (raw_sd if ch.level is None else raw_sd[:, ch.level]).std(axis=0)[wet]
            free = raw_sd > floor * ch.std
            n_floor += int((~free).sum())
            np.testing.assert_allclose(vals.mean(axis=0), 0.0, atol=1e-4)
            np.testing.assert_allclose(vals.std(axis=0)[free], 1.0, rtol=1e-4)
            assert np.all(vals.std(axis=0)[~free] < 1.0 + 1e-6)
        else:
            assert ch.mean_map is None and ch.std_map is None
            assert abs(vals.mean()) < 1e-4 and vals.std() == pytest.approx(1.0, rel=1e-4), ch.name
        assert np.all(data.states[:, c][:, ~wet] == 0)
    assert n_floor > 0  # the floor (0.3 of the channel std) is exercised
    phys = to_physical(data.states, spec, wet=data.wet)
    m = psi_mask(syn["maskT"].values[-1]) > 0
    np.testing.assert_allclose(phys["psi"][:, 0][:, m], syn["psi"].values[:, m], rtol=1e-5,
                               atol=1e-5 * np.abs(syn["psi"].values).max())
    c = names.index("u[1]")
    m = data.wet[c] > 0
    np.testing.assert_allclose(phys["u"][:, 1][:, m], syn["u"].values[:, 1][:, m], rtol=1e-4,
                               atol=1e-5 * np.abs(syn["u"].values).max())
    with pytest.raises(ValueError, match="floor=0"):
        point_normalise(spec, syn, split.train, ["psi"], floor=0.0)
    with pytest.raises(ValueError, match="'salt' has no channel"):
        point_normalise(spec, syn, split.train, ["salt"])
    with pytest.raises(ValueError, match="'rho' is not one of"):
        point_normalise(spec, syn, split.train, ["rho"])


def test_salt_variable_dropped_when_constant(syn):
    ds = syn.copy()
    ds["salt"] = ds["temp"] * 0 + 35.0
    split = split_by_years(ds.sizes["time"], 73, 0.6, 0.1, 0.3)
    spec = build_spec(ds, split.train)
    assert spec.dropped["salt[0]"] == pytest.approx(35.0)
    assert "salt" not in spec.variables
    ds["salt"] = ds["temp"] * 0.01 + 35.0
    spec2 = build_spec(ds, split.train)
    assert "salt" in spec2.variables


def test_splits_and_sample_starts():
    s = split_by_years(30 * 73, 73, 20, 2, 8)
    assert s.test == (22 * 73, 30 * 73) and s.val == (20 * 73, 22 * 73) and s.train == (0, 20 * 73)
    with pytest.raises(ValueError, match="but the data hold only 100 states"):
        split_by_years(100, 73, 1, 0, 1)
    with pytest.raises(ValueError, match="val_years=-1"):
        split_by_years(1000, 73, 1, -1, 1)
    st = rollout_starts((10, 30), 4)
    assert st[0] == 10 and st[-1] == 30 - 10 and len(st) == 11
    assert len(rollout_starts((0, 5), 4)) == 0


def test_psi_mask_and_open_errors(tmp_path):
    m = np.ones((4, 6))
    m[2:, 0] = 0
    pm = psi_mask(m)
    assert pm.shape == (4, 6) and pm.min() == 1.0  # every corner touches a wet cell
    m2 = np.zeros((4, 6))
    m2[1, 2] = 1
    pm2 = psi_mask(m2)
    assert pm2.sum() == 4 and pm2[1, 2] == pm2[0, 1] == pm2[1, 1] == pm2[0, 2] == 1
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_dataset(str(tmp_path / "nope"))
    os.makedirs(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no means_\\*.nc files"):
        open_dataset(str(tmp_path / "empty"))


def test_make_data_with_wind_noise_on_the_real_model(tmp_path):
    # the ocean model at 4 deg, 1-hour steps, 7 five-day means: with --wind-noise the wind-stress
    # forcing written for the emulator carries the red-noise anomaly (relative size ~ wind_noise)
    kw = dict(resolution=4.0, years=0.1, spinup_years=0, dt=3600.0, log=None)
    meta = generate(str(tmp_path / "n"), wind_noise=0.2, wind_noise_days=5.0, wind_noise_seed=4, **kw)
    generate(str(tmp_path / "s"), **kw)
    assert meta["wind_noise"] == 0.2 and meta["wind_noise_days"] == 5.0 and meta["wind_noise_seed"] == 4
    noisy, plain = open_dataset(str(tmp_path / "n")), open_dataset(str(tmp_path / "s"))
    assert noisy.attrs["wind_noise"] == 0.2
    a = noisy["surface_taux"].values.astype(float)
    b = plain["surface_taux"].values.astype(float)
    wet = np.abs(b).min(axis=0) > 1e-3 * np.abs(b).max()
    rel = (a[:, wet] / b[:, wet]).mean(axis=1) - 1.0   # one factor per 5-day mean
    assert np.all(np.abs(rel) < 1.0) and np.ptp(rel) > 0.01
    # the same factor at every wet point of a mean (the anomaly scales the whole wind field)
    assert np.allclose(a[:, wet] / b[:, wet], (1.0 + rel)[:, None], rtol=0, atol=1e-5)


def test_make_data_from_an_initial_state(tmp_path):
    """``initial_state``: the run starts from a restart file (time continues from it); a missing file is
    a clear error."""
    kw = dict(years=0.2, spinup_years=0, model_factory=synthetic_factory(nz=2), log=None)
    first = tmp_path / "first"
    generate(str(first), **kw)
    restart = first / "restart.nc"
    assert restart.exists()
    generate(str(tmp_path / "cont"), initial_state=str(restart), **kw)
    a, b = open_dataset(str(first)), open_dataset(str(tmp_path / "cont"))
    # the second run's first mean follows the first run's last one
    assert b["time"].values[0] == a["time"].values[-1] + 5 * 86400.0
    assert json.load(open(tmp_path / "cont" / "progress.json"))["args"]["initial_state"] == str(restart)
    with pytest.raises(FileNotFoundError, match="initial_state="):
        generate(str(tmp_path / "x"), initial_state=str(tmp_path / "missing.nc"), **kw)
