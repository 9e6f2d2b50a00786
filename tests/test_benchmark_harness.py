"""The forward benchmark's interleaved timing (benchmarks/forward.py --interleave) against a
stand-in for the Veros server that speaks the same stdin/stdout protocol as
``veros_acc.py --serve`` (Veros itself is not installed in CI)."""

import sys
import textwrap

import pytest

from benchmarks.forward import time_interleaved

FAKE_SERVER = textwrap.dedent('''
    import json, sys, time
    if "--fail" in sys.argv:
        print("something broke", file=sys.stderr)
        sys.exit(3)
    print("VEROS_READY " + json.dumps({"setup_s": 0.0, "first_step_s": 0.0}), flush=True)
    times = []
    for line in sys.stdin:
        cmd = line.split()
        if cmd[0] == "QUIT":
            break
        n = int(cmd[1])
        tt = []
        for _ in range(n):
            t0 = time.perf_counter(); time.sleep(0.02); tt.append(time.perf_counter() - t0)
        times += tt
        print("VEROS_TIMES " + json.dumps({"times_s": tt, "cpu_times_s": [0.0] * n}), flush=True)
    times.sort()
    print("VEROS_RESULT " + json.dumps({"nx": 30, "ny": 42, "nz": 15, "affinity": [0],
          "times_s": times, "min_s": times[0], "median_s": times[len(times) // 2],
          "setup_s": 0.0, "first_step_s": 0.0, "compile_s": 0.0, "cpu_median_s": 0.0}), flush=True)
''')


def test_interleaved_rounds_with_a_stand_in_server(tmp_path):
    script = tmp_path / "fake_veros.py"
    script.write_text(FAKE_SERVER)
    r, v, rounds = time_interleaved(sys.executable, 2.0, 1, rounds=3, repeats=5, veros_steps=4, warmup=1,
                                    veros_warmup=0, timeout=120, pause=0.0, script=script)
    # ceil(5/3) = 2 stommel and ceil(4/3) = 2 server steps per round, all of them kept
    assert len(rounds) == 3 and r["repeats"] == 6 and len(v["times_s"]) == 6
    assert r["interleaved_rounds"] == 3 and v["threads"] == 1 and v["code"] == "veros"
    assert all(t >= 0.02 for t in v["times_s"]) and r["min_s"] > 0
    for x in rounds:
        assert x["ratio"] == pytest.approx(x["veros_median_s"] / x["stommel_median_s"])
    assert (r["nx"], r["ny"]) == (30, 42)


def test_interleaved_reports_a_server_that_dies_in_a_round(tmp_path):
    script = tmp_path / "fake_veros.py"
    dying = FAKE_SERVER.replace("    n = int(cmd[1])\n", "    n = int(cmd[1])\n    sys.exit(4)\n")
    assert dying != FAKE_SERVER
    script.write_text(dying)
    r, v, rounds = time_interleaved(sys.executable, 2.0, 1, rounds=2, repeats=2, veros_steps=2, warmup=1,
                                    timeout=120, pause=0.0, script=script)
    assert r is None and rounds == [] and "exited with code 4" in v["error"]


def test_interleaved_reports_a_failed_server(tmp_path):
    script = tmp_path / "fake_veros.py"
    script.write_text(FAKE_SERVER.replace('"--fail" in sys.argv', "True"))
    r, v, rounds = time_interleaved(sys.executable, 2.0, 1, rounds=2, repeats=2, veros_steps=2, warmup=1,
                                    timeout=120, pause=0.0, script=script)
    assert r is None and rounds == []
    assert "exited with code 3" in v["error"] and "something broke" in v["error"]
