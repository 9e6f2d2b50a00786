"""Run kernels on saved test inputs in a fresh process (CUDA simulator or CPU).

Used by ``tests/test_kernels_cudasim.py`` and ``tests/test_kernels_cpu.py``, which compare the
results with the CPU launchers of the test process bit for bit::

    NUMBA_ENABLE_CUDASIM=1 [NUMBA_DISABLE_JIT=1] python tests/run_kernel_cases.py CASES.npz OUT.npz --backend cuda
    NUMBA_NUM_THREADS=2 python tests/run_kernel_cases.py CASES.npz OUT.npz --backend cpu

``CASES.npz`` holds the inputs of every kernel (:func:`kernel_cases.save_cases`).  Each
kernel is launched as the model launches it (``Kernel.__call__``): with ``--backend cuda``
under the simulator that is ``launch_cuda``, its block/grid configuration and the generated
``<name>_cuda`` kernel with the simulator prelude.  ``OUT.npz`` gets the compared outputs
and a JSON status per kernel (``"ok"`` or the error), so one failing kernel does not hide
the others.  The simulator must be switched on before numba is imported, hence a separate
process.  With ``NUMBA_DISABLE_JIT=1`` the bodies (``njit`` functions) run as plain Python
inside the simulated threads; without it the simulator calls the bodies compiled for the
CPU (through the generated ``_dev`` prelude), which costs a cold compile of every body.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cases")
    ap.add_argument("out")
    ap.add_argument("--backend", choices=("cuda", "cpu"), required=True)
    args = ap.parse_args(argv)
    if args.backend == "cuda" and os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
        print("run_kernel_cases.py --backend cuda: NUMBA_ENABLE_CUDASIM=1 must be set (no GPU runs here)",
              file=sys.stderr)
        return 2
    import numba
    import numpy as np
    from numba import cuda

    import kernel_cases as kc
    from ocean_core.kernels import framework

    kc.iter_kernel_modules()
    cases = kc.load_cases(args.cases)
    status, results, timing = {}, {}, {}
    info = {"backend": args.backend, "enable_cudasim": bool(numba.config.ENABLE_CUDASIM),
            "disable_jit": bool(numba.config.DISABLE_JIT), "num_threads": int(numba.config.NUMBA_NUM_THREADS),
            "cuda_module": cuda.__name__, "registry": sorted(framework.REGISTRY),
            "launcher_types": {}, "body_types": {}}
    for kname in sorted(cases):
        case = cases[kname]
        t0 = time.perf_counter()
        try:
            k = framework.REGISTRY[kname]
            launcher = k.cuda() if args.backend == "cuda" else k.cpu()
            info["launcher_types"][kname] = f"{type(launcher).__module__}.{type(launcher).__name__}"
            # a fused kernel has no body of its own: its parts' bodies run
            for body in ([k.body] if k.body is not None else [p.body for p, _ in k.parts]):
                info["body_types"][kname] = type(body).__name__
            k(*[case[a] for a in k.args], backend=args.backend)
            for o in kc.compared_outputs(k):
                results[f"{kname}::{o}"] = np.asarray(case[o])
            status[kname] = "ok"
        except Exception:
            status[kname] = "error: " + traceback.format_exc(limit=4)[-3000:]
        timing[kname] = time.perf_counter() - t0
        print(f"{kname}: {status[kname].splitlines()[0]} ({timing[kname]:.2f} s)", flush=True)
    results["__status__"] = np.array(json.dumps(status))
    results["__timing__"] = np.array(json.dumps(timing))
    results["__info__"] = np.array(json.dumps(info))
    np.savez(args.out, **results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
