"""Shared test configuration.

Environment for reproducible, CI-friendly runs is set *before* numba is imported:
a Numba cache inside the clone (shared by all pytest processes of a run), one Numba
thread and one BLAS thread (2-core CI machines stall with more).
"""

import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".numba_cache"))
os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

#: the Veros reference states (shared material beside the checkout)
ORACLE_DIR = ROOT.parent / "shared" / "oracle" / "veros_acc"


def _gpu_available():
    try:
        from ocean_core.backend import cuda_available
        return cuda_available()
    except Exception:
        return False


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="no usable CUDA device (cupy.is_available() and numba.cuda.is_available())")
    gpu = None
    for item in items:
        if "gpu" in item.keywords:
            if gpu is None:
                gpu = _gpu_available()
            if not gpu:
                item.add_marker(skip_gpu)


@pytest.fixture(autouse=True)
def _seed():
    np.random.seed(1234)
