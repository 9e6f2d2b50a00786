"""Numba kernels for the CPU backend (memory-bound stencils and element-wise maps).

All loops are serial with a fixed summation order, so results are bitwise
reproducible.  The GEMMs are not here: they go through NumPy's BLAS.

Index conventions follow :mod:`emulator.backend`: activations are
``(C, B, H, W)`` with x (longitude, periodic) contiguous; im2col rows are
ordered ``c*9 + 3*ky + kx`` to match a weight reshaped from
``(C_out, C_in, 3, 3)`` to ``(C_out, 9*C_in)``.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

_JIT = dict(cache=True, nogil=True, fastmath=False)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)


@nb.njit(**_JIT)
def _shift_copy(src, dst, ox, W):
    """``dst[w] = src[(w + ox) mod W]`` without a modulo in the loop."""
    ox = ox % W  # Python semantics: 0 <= ox < W
    n1 = W - ox
    for w in range(n1):
        dst[w] = src[w + ox]
    for w in range(n1, W):
        dst[w] = src[w + ox - W]


@nb.njit(**_JIT)
def _shift_add(src, dst, ox, W):
    """``dst[w] += src[(w + ox) mod W]``."""
    ox = ox % W
    n1 = W - ox
    for w in range(n1):
        dst[w] += src[w + ox]
    for w in range(n1, W):
        dst[w] += src[w + ox - W]


@nb.njit(**_JIT)
def im2col(x, dil, cols):
    """Dilated 3x3 unfold, periodic in x, zero in y.

    Parameters
    ----------
    x : float array (C, B, H, W)
    dil : int
    cols : float array (9*C, B, H, W), written
        ``cols[9c+3ky+kx, b, h, w] = x[c, b, h+(ky-1)dil, (w+(kx-1)dil) mod W]``.
    """
    C, B, H, W = x.shape
    for c in range(C):
        for ky in range(3):
            oy = (ky - 1) * dil
            for kx in range(3):
                ox = (kx - 1) * dil
                r = c * 9 + ky * 3 + kx
                for b in range(B):
                    for h in range(H):
                        hs = h + oy
                        row = cols[r, b, h]
                        if hs < 0 or hs >= H:
                            for w in range(W):
                                row[w] = 0.0
                        else:
                            _shift_copy(x[c, b, hs], row, ox, W)


@nb.njit(**_JIT)
def col2im(dcols, dil, dx):
    """Adjoint of :func:`im2col` as a gather into ``dx`` (C, B, H, W).

    ``dx[c, b, h, w] = sum_{ky,kx} dcols[9c+3ky+kx, b, h-oy, (w-ox) mod W]``,
    the taps summed in the fixed order (ky, kx).
    """
    C, B, H, W = dx.shape
    for c in range(C):
        for b in range(B):
            for h in range(H):
                row = dx[c, b, h]
                for w in range(W):
                    row[w] = 0.0
                for ky in range(3):
                    oy = (ky - 1) * dil
                    hs = h - oy
                    if hs < 0 or hs >= H:
                        continue
                    for kx in range(3):
                        ox = (kx - 1) * dil
                        _shift_add(dcols[c * 9 + ky * 3 + kx, b, hs], row, -ox, W)


@nb.njit(**_JIT)
def gelu_fwd(x, cap, y):
    """``y = min(x * Phi(x), cap)`` element-wise on flat arrays."""
    for i in range(x.size):
        v = x[i]
        g = 0.5 * v * (1.0 + math.erf(v * _INV_SQRT2))
        y[i] = g if g < cap else cap


@nb.njit(**_JIT)
def gelu_bwd(x, dy, cap, dx):
    """``dx = dy * (Phi(x) + x phi(x))`` where ``x Phi(x) <= cap``, else 0."""
    for i in range(x.size):
        v = x[i]
        Phi = 0.5 * (1.0 + math.erf(v * _INV_SQRT2))
        if v * Phi <= cap:
            dx[i] = dy[i] * (Phi + v * math.exp(-0.5 * v * v) * _INV_SQRT2PI)
        else:
            dx[i] = 0.0


@nb.njit(**_JIT)
def row_stats(x, mean, var):
    """Two-pass mean and biased variance of each row of ``x`` (R, N), float64 sums."""
    R, N = x.shape
    for r in range(R):
        s = 0.0
        for i in range(N):
            s += x[r, i]
        m = s / N
        q = 0.0
        for i in range(N):
            d = x[r, i] - m
            q += d * d
        mean[r] = m
        var[r] = q / N


@nb.njit(**_JIT)
def row_normalize(x, mean, rstd, y):
    """``y[r] = (x[r] - mean[r]) * rstd[r]``; ``mean`` and ``rstd`` in the dtype of ``x``."""
    R, N = x.shape
    for r in range(R):
        m = mean[r]
        s = rstd[r]
        for i in range(N):
            y[r, i] = (x[r, i] - m) * s


@nb.njit(**_JIT)
def row_normalize_bwd(g, xhat, rstd, dx, sum_g, sum_gx):
    """Backward of the row normalisation.

    ``dx = rstd * (g - mean(g) - xhat * mean(g * xhat))``; also returns the
    row sums of ``g`` and ``g * xhat`` (float64) for the affine parameters.
    ``rstd`` is in the dtype of ``g``.
    """
    R, N = g.shape
    tmp = np.empty(2, dtype=g.dtype)
    for r in range(R):
        s1 = 0.0
        s2 = 0.0
        for i in range(N):
            s1 += g[r, i]
            s2 += g[r, i] * xhat[r, i]
        sum_g[r] = s1
        sum_gx[r] = s2
        tmp[0] = s1 / N  # rounded to the working dtype
        tmp[1] = s2 / N
        a = tmp[0]
        bb = tmp[1]
        s = rstd[r]
        for i in range(N):
            dx[r, i] = (g[r, i] - a - xhat[r, i] * bb) * s
