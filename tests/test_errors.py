"""Bad input gives an error naming the parameter, the value and what is allowed;
a blow-up stops with step, field and grid point and leaves the last good state;
existing output is never overwritten without --overwrite."""

import json
import math

import numpy as np
import pytest

from ocean_core import setups
from ocean_core.backend import cuda_available
from ocean_core.model import ModelBlowUpError
from ocean_core.settings import SettingsError
from ocean_core.variables import PROGNOSTIC
from stommel.cli import main


def cli(argv, capsys):
    """Run the CLI in-process: (exit status, stdout, stderr)."""
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse errors
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


# ---------------------------------------------------------------------------
# Python API
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, pieces", [
    ({"config": "nonsense"}, ["config='nonsense'", "unknown", "paper"]),
    ({"dt_mom": -1200.0}, ["dt_mom=-1200.0", "> 0"]),
    ({"dt_tracer": 0.0}, ["dt_tracer=0.0", "> 0"]),
    ({"dt_tracer": math.nan}, ["dt_tracer=nan", "finite"]),
    ({"A_h": -5.0}, ["A_h=-5.0", ">= 0"]),
    ({"r_bot": "fast"}, ["r_bot='fast'", "number"]),
    ({"resolution": "two"}, ["resolution='two'", "60 and 84"]),
    ({"resolution": 7.0}, ["resolution=7.0", "60/r and 84/r must be integers"]),
    ({"resolution": -2.0}, ["resolution=-2.0", "integers"]),
    ({"resolution": 30.0}, ["resolution=30.0", ">= 4"]),
    ({"dt_momentum": 600.0}, ["dt_momentum", "allowed are", "dt_mom"]),
    ({"wind_noise": 0.7}, ["wind_noise=0.7", "[0, 0.5)"]),
    ({"wind_noise": -0.1}, ["wind_noise=-0.1", "[0, 0.5)"]),
    ({"wind_noise_days": 0.0}, ["wind_noise_days=0.0", "> 0"]),
    ({"wind_noise_seed": -3}, ["wind_noise_seed=-3", "integer >= 0"]),
])
def test_bad_settings_name_parameter_value_and_allowed(kwargs, pieces):
    with pytest.raises(SettingsError) as info:
        setups.acc(**kwargs)
    for p in pieces:
        assert p in str(info.value), (p, str(info.value))


def test_bad_backend_and_steps():
    with pytest.raises(ValueError, match=r"backend='tpu' is invalid: allowed are \('cpu', 'cuda'\)"):
        setups.acc(2.0, backend="tpu")
    m = setups.acc(4.0)
    for bad in (-1, 2.5, "10"):
        with pytest.raises(ValueError, match=rf"steps={bad!r} is invalid: must be an integer >= 0"):
            m.run(bad)


@pytest.mark.skipif(cuda_available(), reason="a GPU is present: backend='cuda' is valid here")
def test_bad_fused_option(tmp_path):
    with pytest.raises(TypeError, match=r"fused='yes' is invalid: must be True .* or False"):
        setups.acc(2.0, fused="yes")
    # the fused step keeps du_cor in registers: asking to write it is refused, not answered with stale zeros
    from ocean_core.output import OutputWriter
    with pytest.raises(ValueError, match=r"variables=\['du_cor'\] are not stored by the fused step"):
        OutputWriter(setups.acc(4.0), tmp_path / "out", variables=["u", "du_cor"])


def test_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(RuntimeError, match="no usable CUDA device"):
        setups.acc(2.0, backend="cuda")


# ---------------------------------------------------------------------------
# blow-ups
# ---------------------------------------------------------------------------

def test_planted_nan_stops_with_step_field_point_and_last_good_state(tmp_path):
    m = setups.acc(2.0)
    m.output_dir = tmp_path
    m.run(3)
    before = {n: m.get(n) for n in ("u", "temp", "psi")}
    # a NaN relaxation target in one surface column poisons that column's temperature
    m.fields["t_star"][20, 10] = np.nan
    with pytest.raises(ModelBlowUpError) as info:
        m.run(2)
    msg = str(info.value)
    assert "non-finite temp at step 4" in msg and "j=20, i=10" in msg, msg
    assert info.value.step == 4 and m.itt == 3
    path = info.value.restart_file
    assert path is not None and path.parent == tmp_path and path.exists() and str(path) in msg

    # the file holds the state after step 3 and reloads
    fresh = setups.acc(2.0).load_restart(path)
    assert fresh.itt == 3 and fresh.time == 3 * 1200.0
    for n, a in before.items():
        np.testing.assert_array_equal(fresh.get(n), a, err_msg=n)
    for n in PROGNOSTIC:
        assert np.isfinite(fresh.get(n)).all(), n


def test_cfl_blow_up_from_the_cli(tmp_path, capsys):
    out = tmp_path / "run"
    rc, _, err = cli(["run", "acc", "--steps", 20, "--dt-mom", 5e4, "--dt-tracer", 5e4, "--out", out], capsys)
    assert rc == 3
    assert "CFL number" in err and "at step 3" in err and "fields u, v, w" in err and "(j=" in err, err
    files = sorted(out.glob("acc2_last_good_state_itt*.nc"))
    assert [f.name for f in files] == ["acc2_last_good_state_itt00000002.nc"]
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "blew_up" and record["last_good_state"] == str(files[0])
    # the series up to the last good step was kept
    assert len((out / "transport.csv").read_text().splitlines()) == 1 + 2
    m = setups.acc(2.0, dt_mom=5e4, dt_tracer=5e4).load_restart(files[0])
    assert m.itt == 2 and all(np.isfinite(m.get(n)).all() for n in PROGNOSTIC)


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("args, pieces", [
    (["--resolution", "abc"], ["--resolution", "'abc'", "60/r and 84/r"]),
    (["--resolution", "7"], ["--resolution", "'7'", "60/r and 84/r"]),
    (["--config", "fancy"], ["--config", "'fancy'", "paper"]),
    (["--steps", "-5"], ["--steps", "'-5'", "integer >= 0"]),
    (["--steps", "ten"], ["--steps", "'ten'", "integer >= 0"]),
    (["--days", "0"], ["--days", "'0'", "> 0"]),
    (["--years", "inf"], ["--years", "'inf'", "finite"]),
    (["--steps", "3", "--days", "1"], ["--days", "not allowed with argument --steps"]),
    (["--backend", "tpu"], ["--backend", "'tpu'", "cpu", "cuda"]),
    (["--dt-mom", "-1"], ["--dt-mom", "dt_mom=-1.0", "> 0"]),
    (["--kappaH-0=-1e-4"], ["--kappaH-0", "kappaH_0=-0.0001", ">= 0"]),
    (["--snapshot-days", "-1"], ["--snapshot-days", "'-1'", ">= 0"]),
    (["--threads", "0"], ["--threads", "'0'", "integer >= 1"]),
    (["--restart", "no_such_restart.nc"], ["--restart", "no_such_restart.nc", "no such file"]),
    (["--frobnicate"], ["unrecognized arguments: --frobnicate"]),
])
def test_cli_bad_arguments(tmp_path, capsys, args, pieces):
    out = tmp_path / "out"
    rc, _, err = cli(["run", "acc", "--out", out] + args, capsys)
    assert rc == 2
    for p in pieces:
        assert p in err, (p, err)
    assert not out.exists()  # nothing was created


def test_cli_unknown_setup(capsys):
    rc, _, err = cli(["run", "pacific"], capsys)
    assert rc == 2 and "'pacific'" in err and "acc" in err


def test_refuses_non_empty_output_dir(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    notes = out / "notes.txt"
    notes.write_text("my notes")
    rc, _, err = cli(["run", "acc", "--steps", 2, "--out", out, "--no-plots"], capsys)
    assert rc == 2 and "not empty" in err and "--overwrite" in err and str(out) in err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"] and notes.read_text() == "my notes"
    # a file as --out is refused too
    rc, _, err = cli(["run", "acc", "--steps", 2, "--out", notes, "--no-plots"], capsys)
    assert rc == 2 and "is a file" in err and notes.read_text() == "my notes"
    # --overwrite writes into it and leaves unrelated files alone
    rc, _, _ = cli(["run", "acc", "--steps", 2, "--out", out, "--no-plots", "--overwrite"], capsys)
    assert rc == 0 and notes.read_text() == "my notes" and (out / "restart_itt00000002.nc").exists()


def test_unavailable_optional_command(monkeypatch, capsys):
    import sys
    monkeypatch.setitem(sys.modules, "adjoint.gradcheck", None)  # makes the import fail
    rc, _, err = cli(["gradcheck", "--anything"], capsys)
    assert rc == 2 and "'gradcheck' command is not available" in err and "adjoint.gradcheck" in err
