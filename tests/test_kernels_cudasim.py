"""Every CUDA kernel run under the numba CUDA simulator equals the CPU launcher bit for bit.

The simulator has to be enabled before numba is imported, so the kernels run in child
processes (``tests/run_kernel_cases.py``).  This module builds the inputs of every registered
kernel (``tests/kernel_cases.py``: tiny 6 x 5 x 4 grid with land and partial columns), runs
the CPU launchers here, hands the same inputs to the children and compares the outputs bit
for bit, including points a kernel leaves untouched (they start as NaN).  Kernels without a
NumPy reference are included.  Each kernel is launched as the model launches it on a GPU
(``Kernel.__call__(..., backend="cuda")``: ``launch_cuda``'s grid/block configuration and
the generated ``<name>_cuda`` kernel).

Two children:

* all kernels with ``NUMBA_DISABLE_JIT=1``: the bodies run as plain Python in the simulated
  threads (an independent execution of the same source: the interpreter against the
  LLVM-compiled CPU launcher);
* a few kernels (one per iteration space) with the bodies compiled by numba for the CPU and
  called through the generated simulator prelude (``_dev``), the way a developer runs the
  simulator.  Doing this for every kernel would cost a second cold compile of every body
  (minutes on the 2-core CI machine), so it checks the mechanism, not each body.

A failure in a child fails the tests of the kernels concerned (all of them if it dies).
"""

from __future__ import annotations

import pytest

import kernel_cases as kc

pytestmark = pytest.mark.cudasim

KERNELS = kc.all_kernels()
#: kernels also run with numba-compiled bodies in the simulator (3d with a scalar, 2d, column)
JIT_KERNELS = [k for k in KERNELS if k.name in ("vertical_diffusivity", "viscosity_at_corners",
                                                "hydrostatic_pressure", "surface_forcing")]


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory):
    cases, cpu, cpu_err = kc.run_all_cpu(KERNELS)
    python = kc.run_in_subprocess(cases, tmp_path_factory.mktemp("cudasim_python"), "cuda",
                                  env={"NUMBA_ENABLE_CUDASIM": "1", "NUMBA_DISABLE_JIT": "1"})
    jit = kc.run_in_subprocess({k.name: cases[k.name] for k in JIT_KERNELS if k.name in cases},
                               tmp_path_factory.mktemp("cudasim_jit"), "cuda",
                               env={"NUMBA_ENABLE_CUDASIM": "1", "NUMBA_DISABLE_JIT": None})
    return {"cpu": cpu, "cpu_err": cpu_err, "python": python, "jit": jit}


def _check_info(child, disable_jit, names):
    assert child["rc"] == 0, f"simulator child failed (rc={child['rc']}):\n{child['log']}"
    info = child["info"]
    assert info["enable_cudasim"] is True and info["disable_jit"] is disable_jit
    # the generated launchers must be simulator kernels, not real CUDA dispatchers
    kinds = set(info["launcher_types"].values())
    assert kinds and all("simulator" in t for t in kinds), kinds
    bodies = set(info["body_types"].values())
    assert bodies == ({"function"} if disable_jit else {"CPUDispatcher"}), bodies
    assert sorted(child["status"]) == sorted(names)


def test_children_ran_in_the_simulator(sim_run):
    names = sorted(k.name for k in KERNELS if k.name not in sim_run["cpu_err"])
    _check_info(sim_run["python"], True, names)
    # the child saw the same kernels as this process (the walk imports the same modules)
    assert sim_run["python"]["info"]["registry"] == sorted(k.name for k in KERNELS)
    assert len(JIT_KERNELS) >= 3
    _check_info(sim_run["jit"], False, [k.name for k in JIT_KERNELS if k.name in names])


def _assert_bitwise(k, sim_run, child):
    assert k.name not in sim_run["cpu_err"], f"{k.name} on the CPU: {sim_run['cpu_err'][k.name]}"
    msg = kc.bitwise_mismatch(k, sim_run["cpu"][k.name], child)
    assert msg is None, f"CUDA simulator vs CPU: {msg}"


@pytest.mark.parametrize("k", KERNELS, ids=lambda k: k.name)
def test_cudasim_equals_cpu(k, sim_run):
    _assert_bitwise(k, sim_run, sim_run["python"])


@pytest.mark.parametrize("k", JIT_KERNELS, ids=lambda k: k.name)
def test_cudasim_compiled_bodies_equal_cpu(k, sim_run):
    _assert_bitwise(k, sim_run, sim_run["jit"])
