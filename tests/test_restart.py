"""A run continued from a restart file equals the uninterrupted run bit for bit
(Python API and ``stommel run --restart``)."""

import numpy as np
import pytest
import xarray as xr

from ocean_core import setups
from ocean_core.variables import PROGNOSTIC
from stommel.cli import main

LEVELS = ("taum1", "tau", "taup1")


def _state(model):
    """Every prognostic array by (name, level name), as NumPy copies."""
    be = model.backend
    return {(n, lev): be.to_numpy(model.fields[f"{n}@{lev}"]).copy() for n in PROGNOSTIC for lev in LEVELS}


def _assert_bitwise_equal(a, b):
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=f"{key} differs", strict=True)


@pytest.mark.parametrize("forcing", [{}, {"seasonal": True}, {"seasonal": True, "wind_noise": 0.2, "dt_mom": 7200.0,
                                                               "dt_tracer": 7200.0}],
                         ids=["steady", "seasonal", "seasonal+wind_noise"])
def test_restart_continues_bit_for_bit(tmp_path, forcing):
    # (the wind-noise case with 2-hour steps, so that the restart falls between two daily values
    # of the red-noise series and the run crosses a day boundary after it)
    n1, n2 = 7, 6
    ref = setups.acc(2.0, **forcing)
    ref.run(n1 + n2)

    first = setups.acc(2.0, **forcing)
    first.run(n1)
    path = first.save_restart(tmp_path / "restart.nc")
    mid = _state(first)

    cont = setups.acc(2.0, **forcing)
    cont.load_restart(path)
    assert cont.itt == n1 and cont.time == first.time
    cont.run(n2)

    assert cont.itt == ref.itt and cont.time == ref.time
    _assert_bitwise_equal(_state(ref), _state(cont))
    # the comparison is not vacuous: the state moved between the restart and the end
    assert not np.array_equal(mid[("u", "tau")], _state(cont)[("u", "tau")])
    assert cont.transport() == ref.transport() and abs(ref.transport()) > 1.0
    # diagnosed fields of the last step agree too
    a, b = ref.snapshot(), cont.snapshot()
    for v in a.data_vars:
        np.testing.assert_array_equal(a[v].values, b[v].values, err_msg=v)


def test_restart_for_another_grid_is_refused(tmp_path):
    m = setups.acc(2.0)
    path = m.save_restart(tmp_path / "r.nc")
    other = setups.acc(4.0)
    with pytest.raises(ValueError, match=r"30x42x15 grid, the model is 15x21x15"):
        other.load_restart(path)


def test_cli_restart_equals_uninterrupted_run(tmp_path, capsys):
    snap = ["--snapshot-days", str(2 * 1200 / 86400), "--average-days", str(4 * 1200 / 86400), "--no-plots"]
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert main(["run", "acc", "--steps", "8", "--out", str(a)] + snap) == 0
    assert main(["run", "acc", "--steps", "4", "--out", str(b)] + snap) == 0
    assert main(["run", "acc", "--restart", str(b / "restart_itt00000004.nc"), "--steps", "4", "--out", str(c)]
                + snap) == 0
    capsys.readouterr()

    with xr.open_dataset(a / "restart_itt00000008.nc") as ra, xr.open_dataset(c / "restart_itt00000008.nc") as rc:
        assert set(ra.data_vars) == set(rc.data_vars)
        for v in ra.data_vars:
            np.testing.assert_array_equal(ra[v].values, rc[v].values, err_msg=v)
        assert ra.attrs["itt"] == rc.attrs["itt"] == 8 and ra.attrs["time"] == rc.attrs["time"]
    # the snapshot schedule follows the absolute step count: step 6 exists in both
    for name in ("snapshot_itt00000006.nc", "snapshot_itt00000008.nc"):
        with xr.open_dataset(a / "snapshots" / name) as sa, xr.open_dataset(c / "snapshots" / name) as sc:
            for v in sa.data_vars:
                np.testing.assert_array_equal(sa[v].values, sc[v].values, err_msg=f"{name}: {v}")
    # and so does the averaging window 5..8
    name = "average_itt00000005-00000008.nc"
    with xr.open_dataset(a / "averages" / name) as sa, xr.open_dataset(c / "averages" / name) as sc:
        assert sc.attrs["partial"] == 0 and sc.attrs["averaging_samples"] == 4
        np.testing.assert_array_equal(sa["temp"].values, sc["temp"].values)
    # transport series of the continuation = the last 4 entries of the whole run, digit for digit
    rows_a = (a / "transport.csv").read_text().splitlines()
    rows_c = (c / "transport.csv").read_text().splitlines()
    assert rows_c[0] == rows_a[0] and len(rows_a) == 9 and len(rows_c) == 5
    assert rows_c[1:] == rows_a[5:]
