"""Every CUDA kernel compiles to PTX for sm_90 on a machine without a GPU.

``numba.cuda.compile_ptx`` on the generated ``<name>_cuda`` launcher (its ``py_func``), typed
with ``numba.typeof`` of the tiny test inputs (``tests/kernel_cases.py``): this is the check
that catches CUDA-illegal code in a body (allocation, unsupported calls, Python objects),
which the simulator does not type-check.  Needs the NVVM and NVRTC libraries (the ``test``
extra of ``setup.cfg``: ``nvidia-nvvm==13.*``, ``nvidia-cuda-nvrtc==13.*``); skipped with the
reason if they are genuinely missing.
"""

from __future__ import annotations

import re

import numba
import pytest

import kernel_cases as kc

pytestmark = pytest.mark.ptx

KERNELS = kc.all_kernels()
CC = (9, 0)

_MISSING_LIB = re.compile(r"libnvrtc|libnvvm|nvvm.*not found|NVVM.*(unavailable|cannot be found)|"
                          r"DynamicLibNotFound|NvvmSupportError|NvrtcSupportError", re.IGNORECASE)


class _FakeDevice:
    """Stands in for ``get_current_device()``: device functions (the njit bodies) are
    compiled for the current device's compute capability even by ``compile_ptx``."""

    compute_capability = CC
    name = b"fake sm_90 (PTX compile test)"


@pytest.fixture(scope="module")
def toolchain():
    """Skip (with the reason) only if NVVM/NVRTC cannot be loaded; other errors fail."""
    from numba import cuda

    def probe(a):
        a[0] = 1.0

    try:
        ptx, _ = cuda.compile_ptx(probe, (numba.float64[::1],), cc=CC)
    except Exception as exc:  # noqa: BLE001 - classified below
        msg = f"{type(exc).__name__}: {exc}"
        if _MISSING_LIB.search(msg):
            pytest.skip(f"NVVM/NVRTC libraries not found ({msg[:200]}); install the test extra "
                        f"(nvidia-nvvm==13.*, nvidia-cuda-nvrtc==13.*)")
        raise
    assert ".target sm_90" in ptx
    return cuda


@pytest.fixture
def fake_device(monkeypatch):
    import numba.cuda.dispatcher as dispatcher
    monkeypatch.setattr(dispatcher, "get_current_device", lambda: _FakeDevice())


@pytest.mark.parametrize("k", KERNELS, ids=lambda k: k.name)
def test_compiles_to_ptx_sm90(k, toolchain, fake_device):
    case = kc.make_case(k, kc.tiny_grid())
    args = kc.args_of(k, case)
    nk, nj, ni = k.extents(args[0], args)
    sig = tuple(numba.typeof(a) for a in (nk, nj, ni, *args))
    launcher = k.cuda()
    ptx, resty = toolchain.compile_ptx(launcher.py_func, sig, cc=CC)
    assert resty == numba.types.void, f"{k.name}_cuda returns {resty}"
    assert ".target sm_90" in ptx
    assert re.search(rf"\.entry\s+\S*{k.name}_cuda", ptx), f"no .entry for {k.name}_cuda in the PTX"
