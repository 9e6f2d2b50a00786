"""CuPy kernels for the GPU backend (imported only when a GPU is in use).

The kernels mirror :mod:`emulator.kernels_cpu` index for index:

* ``im2col``: ``cols[9c+3ky+kx, b, h, w] = x[c, b, h+(ky-1)d, (w+(kx-1)d) mod W]``
  (zero outside ``0 <= h < H``), one thread per column entry;
* ``col2im``: the adjoint as a *gather* (one thread per input entry sums its
  nine taps in a fixed order), so no atomics and a deterministic result;
* capped GELU forward and backward as element-wise kernels.

They are generic in the floating type ``T`` (float32 or float64).  The GEMMs
are plain ``cupy.matmul`` calls (cuBLAS; ``CUPY_TF32=1`` enables TF32).
"""

from __future__ import annotations

import cupy as cp  # noqa: F401  (this module is only imported on the GPU path)
import numpy as np

_IM2COL = cp.ElementwiseKernel(
    "raw T x, int32 C, int32 B, int32 H, int32 W, int32 dil",
    "T cols",
    r"""
    long long n = i;
    const int w = n % W; n /= W;
    const int h = n % H; n /= H;
    const int b = n % B; n /= B;
    const int k = n % 9;
    const int c = n / 9;
    const int hs = h + (k / 3 - 1) * dil;
    int ws = (w + (k % 3 - 1) * dil) % W;
    ws = ws < 0 ? ws + W : ws;
    cols = (hs >= 0 && hs < H) ? x[((long long)(c * B + b) * H + hs) * W + ws] : (T)0;
    """,
    "stommel_emulator_im2col",
)

_COL2IM = cp.ElementwiseKernel(
    "raw T dcols, int32 C, int32 B, int32 H, int32 W, int32 dil",
    "T dx",
    r"""
    long long n = i;
    const int w = n % W; n /= W;
    const int h = n % H; n /= H;
    const int b = n % B;
    const int c = n / B;
    T acc = 0;
    for (int ky = 0; ky < 3; ++ky) {
        const int hs = h - (ky - 1) * dil;
        if (hs < 0 || hs >= H) continue;
        for (int kx = 0; kx < 3; ++kx) {
            int ws = (w - (kx - 1) * dil) % W;
            ws = ws < 0 ? ws + W : ws;
            acc += dcols[((long long)((c * 9 + ky * 3 + kx) * B + b) * H + hs) * W + ws];
        }
    }
    dx = acc;
    """,
    "stommel_emulator_col2im",
)

_GELU_FWD = cp.ElementwiseKernel(
    "T x, T cap",
    "T y",
    r"""
    const T g = (T)0.5 * x * ((T)1 + erf(x * (T)0.70710678118654752440));
    y = g < cap ? g : cap;
    """,
    "stommel_emulator_gelu_fwd",
)

_GELU_BWD = cp.ElementwiseKernel(
    "T x, T dy, T cap",
    "T dx",
    r"""
    const T Phi = (T)0.5 * ((T)1 + erf(x * (T)0.70710678118654752440));
    const T phi = exp((T)-0.5 * x * x) * (T)0.39894228040143267794;
    dx = (x * Phi <= cap) ? dy * (Phi + x * phi) : (T)0;
    """,
    "stommel_emulator_gelu_bwd",
)


# The launchers pass sizes as int32 (the kernels index with 64-bit offsets).
def im2col(x, dil, out):
    """Fill ``out`` (9C, B*H*W) from ``x`` (C, B, H, W); see the module docstring."""
    C, B, H, W = x.shape
    _IM2COL(x, np.int32(C), np.int32(B), np.int32(H), np.int32(W), np.int32(dil), out)
    return out


def col2im(dcols, shape, dil, out):
    """Gather the adjoint of :func:`im2col` into ``out`` (C, B, H, W)."""
    C, B, H, W = shape
    _COL2IM(dcols, np.int32(C), np.int32(B), np.int32(H), np.int32(W), np.int32(dil), out)
    return out


def gelu_fwd(x, cap):
    """``min(x Phi(x), cap)``."""
    return _GELU_FWD(x, x.dtype.type(cap))


def gelu_bwd(x, dy, cap):
    """Gradient of :func:`gelu_fwd` times ``dy``."""
    return _GELU_BWD(x, dy, x.dtype.type(cap))
