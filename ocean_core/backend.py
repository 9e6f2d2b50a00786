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
        return self.xp.zeros(shape, dtype=dtype)

    def asarray(self, a, dtype=None):
        if self.name == "cuda":
            return self.xp.asarray(a, dtype=dtype)
        return np.ascontiguousarray(a, dtype=dtype)

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
