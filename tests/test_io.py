"""Snapshots (dimensions, attributes, units), time averages, the transport series
and netCDF round trips."""

import numpy as np
import pytest
import xarray as xr

from ocean_core import io as oio
from ocean_core import setups
from ocean_core.output import OutputWriter, check_output_dir, run_with_output, steps_for


@pytest.fixture(scope="module")
def model3():
    m = setups.acc(2.0)
    m.run(3)
    return m


def test_snapshot_dims_attrs_units(model3):
    m = model3
    ds = m.snapshot()
    assert dict(ds.sizes) == {"xt": 30, "xu": 30, "yt": 42, "yu": 42, "zt": 15, "zw": 15}
    expect = {"u": (("zt", "yt", "xu"), "m/s"), "v": (("zt", "yu", "xt"), "m/s"), "w": (("zw", "yt", "xt"), "m/s"),
              "temp": (("zt", "yt", "xt"), "deg C"), "salt": (("zt", "yt", "xt"), "g/kg"),
              "psi": (("yu", "xu"), "m^3/s"), "eke": (("zw", "yt", "xt"), "m^2/s^2"),
              "surface_taux": (("yt", "xu"), "N/m^2")}
    for name, (dims, units) in expect.items():
        assert ds[name].dims == dims and ds[name].attrs["units"] == units, name
        assert ds[name].attrs["long_name"]
    assert ds["temp"].attrs["standard_name"] == "sea_water_potential_temperature"
    assert ds["xt"].attrs["units"] == "degrees_east" and ds["yu"].attrs["units"] == "degrees_north"
    assert ds["zt"].attrs["positive"] == "up" and float(ds["zw"][-1]) == 0.0 and float(ds["zt"][0]) < -1900
    # values are the newest state without halos; time and step are recorded
    np.testing.assert_array_equal(ds["temp"].values, m.get("temp")[:, 2:-2, 2:-2])
    np.testing.assert_array_equal(ds["psi"].values, m.get("psi")[2:-2, 2:-2])
    assert float(ds["time"]) == 3 * 1200.0 and int(ds["itt"]) == 3 and ds["time"].attrs["units"] == "s"
    assert ds.attrs["acc_transport_Sv"] == m.transport() and ds.attrs["Conventions"] == "CF-1.8"
    # 2 degrees: xt from -1 to 57, yt from -41 to 41
    assert float(ds["xt"][0]) == -1.0 and float(ds["xt"][-1]) == 57.0 and float(ds["yt"][-1]) == 41.0


def test_netcdf_round_trip_and_no_clobber(model3, tmp_path):
    ds = model3.snapshot()
    path = oio.safe_to_netcdf(ds, tmp_path / "snap.nc")
    with xr.open_dataset(path) as back:
        assert float(back["time"]) == 3600.0  # plain seconds, no calendar decoding needed
        for v in ds.variables:
            np.testing.assert_array_equal(back[v].values, ds[v].values, err_msg=v)
            assert back[v].attrs == ds[v].attrs, v
        assert back.attrs["acc_transport_Sv"] == ds.attrs["acc_transport_Sv"]
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        oio.safe_to_netcdf(ds.isel(zt=slice(0, 2)), path)
    assert path.read_bytes() == before and not list(tmp_path.glob("*.tmp*"))
    oio.safe_to_netcdf(ds[["temp"]], path, overwrite=True)
    with xr.open_dataset(path) as back:
        assert list(back.data_vars) == ["temp"]


def test_time_average_equals_mean_of_snapshots(tmp_path):
    n = 5
    m = setups.acc(2.0)
    m.run(2)
    t0 = m.time
    w = OutputWriter(m, tmp_path, snapshot_every=1, average_every=n, transport_every=1)
    m.run(n + 1, callback=w)  # steps 3..8: window 6..10 gets 3 samples by the end
    w.close()
    snaps = [xr.open_dataset(tmp_path / "snapshots" / f"snapshot_itt{k:08d}.nc") for k in range(3, 9)]
    avg_a = xr.open_dataset(tmp_path / "averages" / "average_itt00000003-00000005.nc")
    avg_b = xr.open_dataset(tmp_path / "averages" / "average_itt00000006-00000008.nc")
    try:
        # windows are aligned to multiples of n steps: 3..5 (cut by the start) and 6..8 (cut by the end)
        for avg, group in ((avg_a, snaps[:3]), (avg_b, snaps[3:])):
            assert avg.attrs["partial"] == 1 and avg.attrs["averaging_samples"] == 3
            for v in ("u", "temp", "psi", "eke", "kappaH", "forc_temp_surface"):
                mean = sum(s[v].values for s in group) / 3
                np.testing.assert_allclose(avg[v].values, mean, rtol=1e-13, atol=1e-13 * abs(mean).max(),
                                           err_msg=v)
            # transport is linear in psi: mean of the snapshot transports
            tr = sum(s.attrs["acc_transport_Sv"] for s in group) / 3
            assert avg.attrs["acc_transport_Sv"] == pytest.approx(tr, rel=1e-12)
        assert float(avg_a["time"]) == pytest.approx(t0 + 1.5 * 1200.0)
        assert avg_b.attrs["averaging_start_s"] == t0 + 3 * 1200.0 and avg_b.attrs["averaging_end_s"] == m.time
        # the averaged field is not trivially one of the snapshots
        assert not np.array_equal(avg_b["u"].values, snaps[-1]["u"].values)
    finally:
        for s in snaps + [avg_a, avg_b]:
            s.close()


def test_writer_average_matches_io_time_average(tmp_path):
    a, b = setups.acc(2.0), setups.acc(2.0)
    ref = oio.time_average(a, 4)
    w = OutputWriter(b, tmp_path, average_every=4, transport_every=0)
    b.run(4, callback=w)
    w.close(restart=False)
    with xr.open_dataset(tmp_path / "averages" / "average_itt00000001-00000004.nc") as got:
        assert got.attrs["partial"] == 0
        for v in ref.data_vars:
            np.testing.assert_array_equal(got[v].values, ref[v].values, err_msg=v)
        assert float(got["time"]) == float(ref["time"]) and got.attrs["acc_transport_Sv"] == ref.attrs["acc_transport_Sv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["averages"]  # transport off, no restart asked


def test_transport_series(tmp_path):
    m = setups.acc(2.0)
    w = OutputWriter(m, tmp_path, transport_every=2)
    info = run_with_output(m, 9, w, progress=False)
    assert info["steps_done"] == 9 and info["restart"] == tmp_path / "restart_itt00000009.nc"
    rows = np.loadtxt(tmp_path / "transport.csv", delimiter=",", skiprows=1)
    assert rows[:, 0].tolist() == [2, 4, 6, 8]
    np.testing.assert_array_equal(rows[:, 1], rows[:, 0] * 1200.0)
    with xr.open_dataset(tmp_path / "transport.nc") as ts:
        assert ts["transport"].attrs["units"] == "Sv"
        np.testing.assert_array_equal(ts["transport"].values, rows[:, 3])
        np.testing.assert_array_equal(ts["itt"].values, rows[:, 0])
    # the last entry is step 8; step 9 continues to grow the spun-up transport
    m8 = setups.acc(2.0)
    m8.run(8)
    assert rows[-1, 3] == m8.transport() and 0 < rows[0, 3] < rows[-1, 3] < info["transport_Sv"]


def test_writer_and_steps_validation(tmp_path):
    m = setups.acc(4.0)
    with pytest.raises(ValueError, match=r"snapshot_every=-1 is invalid"):
        OutputWriter(m, tmp_path / "a", snapshot_every=-1)
    with pytest.raises(ValueError, match=r"variables=\['tmp'\] unknown"):
        OutputWriter(m, tmp_path / "b", variables=["temp", "tmp"])
    assert steps_for(365 * 86400.0, 1200.0) == 26280 and steps_for(10 * 86400.0, 1200.0) == 720
    with pytest.raises(ValueError, match="shorter than one time step"):
        steps_for(100.0, 1200.0, "--snapshot-days")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(FileExistsError, match="not empty"):
        check_output_dir(tmp_path / "full")
    assert check_output_dir(tmp_path / "full", overwrite=True) == tmp_path / "full"
    assert check_output_dir(tmp_path / "new") == tmp_path / "new" and not (tmp_path / "new").exists()
