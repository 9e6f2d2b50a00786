"""The ``stommel`` command line: run, plot, defaults, entry point, optional commands."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from stommel import cli as scli
from stommel.cli import main

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One short run with every kind of output (snapshot every 2 steps, 4-step averages)."""
    out = tmp_path_factory.mktemp("cli") / "run"
    argv = ["run", "acc", "--steps", "6", "--snapshot-days", str(2 * 1200 / 86400),
            "--average-days", str(4 * 1200 / 86400), "--out", str(out), "--threads", "1"]
    rc = main(argv)
    assert rc == 0
    return out


def test_run_writes_everything(run_dir):
    names = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file())
    assert names == sorted([
        "averages/average_itt00000001-00000004.nc", "averages/average_itt00000005-00000006.nc",
        "restart_itt00000006.nc", "run.json", "snapshots/snapshot_itt00000002.nc",
        "snapshots/snapshot_itt00000004.nc", "snapshots/snapshot_itt00000006.nc",
        "streamfunction.png", "temperature.png", "transport.csv", "transport.nc", "transport.png"])
    for png in ("streamfunction.png", "temperature.png", "transport.png"):
        data = (run_dir / png).read_bytes()
        assert data[:8] == PNG and len(data) > 10_000, png
    rec = json.loads((run_dir / "run.json").read_text())
    assert rec["status"] == "completed" and rec["steps"] == 6 and rec["end_itt"] == 6
    assert rec["command"][:3] == ["stommel", "run", "acc"] and rec["settings"]["dt_tracer"] == 1200.0
    assert rec["grid"] == {"nx": 30, "ny": 42, "nz": 15} and rec["versions"]["numba"]
    assert rec["ms_per_step"] > 0 and "restart_itt00000006.nc" in rec["files"]
    # the transport in run.json is that of the final snapshot and of the series
    with xr.open_dataset(run_dir / "snapshots" / "snapshot_itt00000006.nc") as s:
        assert rec["final_transport_Sv"] == s.attrs["acc_transport_Sv"]
    rows = np.loadtxt(run_dir / "transport.csv", delimiter=",", skiprows=1)
    assert rows.shape == (6, 4) and rows[-1, 3] == rec["final_transport_Sv"]
    with xr.open_dataset(run_dir / "averages" / "average_itt00000005-00000006.nc") as a:
        assert a.attrs["partial"] == 1 and a.attrs["averaging_samples"] == 2


def test_summary_is_printed(tmp_path, capsys):
    assert main(["run", "acc", "--steps", "3", "--out", str(tmp_path / "s"), "--no-plots",
                 "--dt-mom", "600", "--dt-tracer", "600", "--A-h", "2000", "--r-bot", "2e-5",
                 "--kappaM-0", "1e-4", "--kappaH-0", "1e-5"]) == 0
    out = capsys.readouterr().out
    assert "done: 3 steps" in out and "ms/step" in out and "ACC transport at the end" in out
    rec = json.loads((tmp_path / "s" / "run.json").read_text())
    assert rec["end_time_s"] == 1800.0 and rec["plots"] == []
    s = rec["settings"]
    assert (s["dt_mom"], s["A_h"], s["r_bot"], s["kappaM_0"], s["kappaH_0"]) == (600.0, 2000.0, 2e-5, 1e-4, 1e-5)
    with xr.open_dataset(tmp_path / "s" / "restart_itt00000003.nc") as r:
        assert json.loads(r.attrs["settings_json"])["A_h"] == 2000.0


def test_defaults_are_one_year_at_two_degrees():
    args = scli.build_parser().parse_args(["run", "acc"])
    resolution, settings = scli._resolve(args)
    assert resolution == 2.0 and args.config == "paper" and args.backend == "cpu"
    assert scli._duration_steps(args, settings) == 26280
    assert args.out == "stommel_acc_run"
    assert scli.steps_for_days(args.snapshot_days, settings.dt_tracer, "") == 720
    assert scli.steps_for_days(args.average_days, settings.dt_tracer, "") == 26280
    args = scli.build_parser().parse_args(["run", "acc", "--days", "2.5", "--dt-tracer", "600"])
    assert scli._duration_steps(args, scli._resolve(args)[1]) == 360


def test_plot_command_refuses_then_overwrites(run_dir, tmp_path, capsys):
    before = (run_dir / "transport.png").read_bytes()
    assert main(["plot", str(run_dir)]) == 2
    capsys.readouterr()
    assert (run_dir / "transport.png").read_bytes() == before
    assert main(["plot", str(run_dir), "--out", str(tmp_path / "p")]) == 0
    out = capsys.readouterr().out
    assert "average_itt00000001-00000004.nc" in out  # the last complete average
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["streamfunction.png", "temperature.png",
                                                                  "transport.png"]
    assert main(["plot", str(run_dir), "--overwrite"]) == 0
    assert main(["plot", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_plot_refusal_names_the_file(run_dir, capsys):
    assert main(["plot", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "exists; refusing to overwrite" in err and "--overwrite" in err and str(run_dir) in err


def test_module_entry_point_and_help():
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-m", "stommel", "--help"], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    for cmd in ("run", "plot", "emulator", "gradcheck"):
        assert cmd in r.stdout
    r = subprocess.run([sys.executable, "-m", "stommel", "run", "--help"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 0 and "--resolution" in r.stdout and "--overwrite" in r.stdout
    r = subprocess.run([sys.executable, "-m", "stommel"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and "COMMAND" in r.stderr


def test_emulator_command_is_wired_when_importable():
    try:
        import emulator.cli  # noqa: F401
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"emulator.cli not importable here: {exc}")
    parser = scli.build_parser()
    args = parser.parse_args(["emulator", "make-data", "--out", "x"])
    assert args.func.__module__ == "emulator.cli"
