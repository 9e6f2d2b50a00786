"""Array backends: ``cpu`` (NumPy arrays, Numba ``prange`` launchers) and ``cuda``
(CuPy arrays, numba-cuda kernels, the whole step on the device).

GPU availability is decided by ``cupy.is_available()`` and numba's
``cuda.is_available()``, never by whether the imports succeed (CuPy imports fine on
machines without a driver).
"""

from __future__ import annotations

import numpy as np

__all__ = ["Backend", "get_backend", "cuda_available", "BACKENDS"]

BACKENDS = ("cpu", "cuda")


def cuda_available() -> bool:
    """True when a CUDA device can actually be used by both CuPy and numba-cuda."""
    try:
        import cupy
        if not cupy.is_available():
            return False
    except Exception:
        return False
    try:
        from numba import cuda
        return bool(cuda.is_available())
    except Exception:
        return False


class Backend:
    """Allocation and transfer helpers for one backend."""

    def __init__(self, name):
        if name not in BACKENDS:
            raise ValueError(f"backend={name!r} is invalid: allowed are {BACKENDS}")
        self.name = name
        if name == "cuda":
            if not cuda_available():
                raise RuntimeError("backend='cuda' requested but no usable CUDA device was found "
                                   "(cupy.is_available() and numba.cuda.is_available() must both be True); "
                                   "use backend='cpu'")
            import cupy
            self.xp = cupy
        else:
            self.xp = np

    def zeros(self, shape, dtype=np.float64):
        if self.name == "cuda":
            return self.xp.zeros(shape, dtype=dtype)
        return self._staggered(shape, dtype)

    def asarray(self, a, dtype=None):
        if self.name == "cuda":
            return self.xp.asarray(a, dtype=dtype)
        a = np.asarray(a, dtype=dtype)
        out = self._staggered(a.shape, a.dtype)
        out[...] = a
        return out

    # Large CPU arrays start at staggered offsets (a different 64-byte line within a 4 KiB
    # page for each allocation).  Unstaggered, all fields start at the same offset within a
    # page (or a 2 MiB huge page), so the points (k, j, i) of the ~10-30 arrays a kernel
    # streams through map to the same L1 (and, with huge pages, L2) cache sets and evict each
    # other: e.g. tracer_advection at 0.25 deg took 22 ms instead of 14 ms.
    _STAGGER_MIN_BYTES = 1 << 16
    _STAGGER_LINES = 64   # 64 lines of 64 bytes: one 4 KiB page
    _STAGGER_STEP = 5     # lines between consecutive allocations (odd: visits all 64)

    def _staggered(self, shape, dtype):
        dtype = np.dtype(dtype)
        n = int(np.prod(shape, dtype=np.int64))
        if n * dtype.itemsize < self._STAGGER_MIN_BYTES:
            return np.zeros(shape, dtype=dtype)
        count = getattr(self, "_nalloc", 0)
        self._nalloc = count + 1
        pad = 4096 + 64
        buf = np.zeros(n * dtype.itemsize + pad, dtype=np.uint8)
        want = 64 * ((count * self._STAGGER_STEP) % self._STAGGER_LINES)
        off = (want - buf.ctypes.data) % 4096
        return buf[off: off + n * dtype.itemsize].view(dtype).reshape(shape)

    def to_numpy(self, a):
        if self.name == "cuda" and not isinstance(a, np.ndarray):
            return a.get()
        return np.asarray(a)

    def synchronize(self):
        if self.name == "cuda":
            self.xp.cuda.get_current_stream().synchronize()

    def __repr__(self):
        return f"<Backend {self.name}>"


def get_backend(name_or_backend) -> Backend:
    if isinstance(name_or_backend, Backend):
        return name_or_backend
    return Backend(name_or_backend)
