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

_JIT = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")
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


# ---------------------------------------------------------------------- #
# fused normalisation + capped GELU
# ---------------------------------------------------------------------- #
# Fast float32 special functions (vectorisable, no libm calls).  erf: the odd/even
# rational minimax approximation on [-4, 4] used by Eigen and XLA for float32
# (|error| < 4e-7); beyond |x| = 4, erf(x) = +-1 to float32 precision.
@nb.njit(**_JIT)
def _erf_f32(v):
    v = min(max(v, np.float32(-4.0)), np.float32(4.0))
    x2 = v * v
    p = x2 * np.float32(-2.72614225801306e-10) + np.float32(2.77068142495902e-08)
    p = x2 * p + np.float32(-2.10102402082508e-06)
    p = x2 * p + np.float32(-5.69250639462346e-05)
    p = x2 * p + np.float32(-7.34990630326855e-04)
    p = x2 * p + np.float32(-2.95459980854025e-03)
    p = x2 * p + np.float32(-1.60960333262415e-02)
    q = x2 * np.float32(-1.45660718464996e-05) + np.float32(-2.13374055278905e-04)
    q = x2 * q + np.float32(-1.68282697438203e-03)
    q = x2 * q + np.float32(-7.37332916720468e-03)
    q = x2 * q + np.float32(-1.42647390514189e-02)
    return v * p / q


@nb.njit(**_JIT)
def _gauss_f32(v):
    """``exp(-v^2 / 2)`` in float32 as ``exp(u)^32``, ``u = -v^2/64`` in [-0.5625, 0]
    (degree-7 Taylor polynomial, five squarings; relative error ~1e-7), |v| clamped at 6."""
    v = min(max(v, np.float32(-6.0)), np.float32(6.0))
    u = v * v * np.float32(-1.0 / 64.0)
    e = np.float32(1.0 / 5040.0)
    e = e * u + np.float32(1.0 / 720.0)
    e = e * u + np.float32(1.0 / 120.0)
    e = e * u + np.float32(1.0 / 24.0)
    e = e * u + np.float32(1.0 / 6.0)
    e = e * u + np.float32(0.5)
    e = e * u + np.float32(1.0)
    e = e * u + np.float32(1.0)
    e = e * e
    e = e * e
    e = e * e
    e = e * e
    return e * e


# Row sums in float64 with reassociation allowed (vectorised, still deterministic:
# the same code sums in the same order on every call).  Only 'reassoc' and
# 'contract' are enabled, so NaN and Inf propagate as usual.
_SUMS = dict(cache=True, nogil=True, fastmath={"reassoc", "contract"}, error_model="numpy")


@nb.njit(**_SUMS)
def _row_mean_var(xr):
    """Two-pass mean and biased variance of a 1-D array (float64 sums)."""
    n = xr.size
    s = 0.0
    for i in range(n):
        s += xr[i]
    m = s / n
    q = 0.0
    for i in range(n):
        dd = xr[i] - m
        q += dd * dd
    return m, q / n


@nb.njit(**_SUMS)
def _row_sums_g_gx(dr, xr, m, sc):
    """``sum d`` and ``sum d * (x - m) * sc`` over a row (float64)."""
    s1 = 0.0
    s2 = 0.0
    for i in range(dr.size):
        s1 += dr[i]
        s2 += dr[i] * ((xr[i] - m) * sc)
    return s1, s2


@nb.njit(**_JIT)
def norm_gelu_fwd(x, rows_per_ch, gamma, beta, cap, eps, use_stats, mean, rstd, y, f32):
    """``y = min(GELU(gamma * (x - mean) * rstd + beta), cap)`` row by row.

    Parameters
    ----------
    x : (R, N) pre-normalisation activations; row ``r`` belongs to channel
        ``r // rows_per_ch`` (InstanceNorm: rows = (channel, sample); BatchNorm:
        one row per channel).
    gamma, beta : (C,) affine parameters in the dtype of ``x`` (1 and 0 if none).
    use_stats : bool
        If True, ``mean`` and ``rstd`` (float64, (R,)) are given (BatchNorm in
        evaluation mode); otherwise they are computed (two passes, float64
        sums) and written.
    y : (R, N) output.
    f32 : bool
        True for float32 data: the fast erf above; otherwise libm's erf.
    """
    R, N = x.shape
    for r in range(R):
        if not use_stats:
            m, v = _row_mean_var(x[r])
            mean[r] = m
            rstd[r] = 1.0 / math.sqrt(v + eps)
        c = r // rows_per_ch
        if f32:
            a32 = np.float32(rstd[r] * gamma[c])
            b32 = np.float32(beta[c] - mean[r] * rstd[r] * gamma[c])
            cap32 = np.float32(cap)
            for i in range(N):
                z = x[r, i] * a32 + b32
                g = np.float32(0.5) * z * (np.float32(1.0) + _erf_f32(z * np.float32(_INV_SQRT2)))
                y[r, i] = min(g, cap32)
        else:
            a = rstd[r] * gamma[c]
            b = beta[c] - mean[r] * a
            for i in range(N):
                z = x[r, i] * a + b
                g = 0.5 * z * (1.0 + math.erf(z * _INV_SQRT2))
                y[r, i] = g if g < cap else cap


@nb.njit(**_JIT)
def norm_gelu_bwd(dy, x, rows_per_ch, gamma, beta, cap, mean, rstd, stats_frozen, dx, dgamma, dbeta,
                  f32):
    """Backward of :func:`norm_gelu_fwd`.

    Pass 1 per row: ``xhat = (x - mean) rstd``, ``z = gamma xhat + beta``,
    ``gz = dy GELU'(z)`` (0 where capped), stored in ``dx``.  Pass 2: the sums
    ``sum gz`` and ``sum gz xhat`` (float64), written per row to ``dbeta`` and
    ``dgamma`` (shape (R,)).  Pass 3 with ``g = gamma gz``:
    ``dx = rstd (g - mean(g) - xhat mean(g xhat))`` (batch statistics) or
    ``dx = rstd g`` (frozen statistics).  ``f32`` as in :func:`norm_gelu_fwd`.
    """
    R, N = x.shape
    for r in range(R):
        c = r // rows_per_ch
        m = mean[r]
        s = rstd[r]
        if f32:
            m32 = np.float32(m)
            sc32 = np.float32(s)
            g32 = np.float32(gamma[c])
            b32 = np.float32(beta[c])
            cap32 = np.float32(cap)
            for i in range(N):
                z = ((x[r, i] - m32) * sc32) * g32 + b32
                Phi = np.float32(0.5) * (np.float32(1.0) + _erf_f32(z * np.float32(_INV_SQRT2)))
                d = dy[r, i] * (Phi + z * _gauss_f32(z) * np.float32(_INV_SQRT2PI))
                dx[r, i] = d if z * Phi <= cap32 else np.float32(0.0)
            s1, s2 = _row_sums_g_gx(dx[r], x[r], m32, sc32)
        else:
            for i in range(N):
                z = ((x[r, i] - m) * s) * gamma[c] + beta[c]
                Phi = 0.5 * (1.0 + math.erf(z * _INV_SQRT2))
                d = 0.0
                if z * Phi <= cap:
                    d = dy[r, i] * (Phi + z * math.exp(-0.5 * z * z) * _INV_SQRT2PI)
                dx[r, i] = d
            s1, s2 = _row_sums_g_gx(dx[r], x[r], m, s)
        dbeta[r] = s1
        dgamma[r] = s2
        if stats_frozen:
            gs = gamma[c] * s
            for i in range(N):
                dx[r, i] = dx[r, i] * gs
        else:
            a = gamma[c] * s1 / N
            bb = gamma[c] * s2 / N
            if f32:
                g32 = np.float32(gamma[c])
                a32 = np.float32(a)
                bb32 = np.float32(bb)
                m32 = np.float32(m)
                sc32 = np.float32(s)
                for i in range(N):
                    dx[r, i] = (dx[r, i] * g32 - a32 - ((x[r, i] - m32) * sc32) * bb32) * sc32
            else:
                for i in range(N):
                    dx[r, i] = (dx[r, i] * gamma[c] - a - ((x[r, i] - m) * s) * bb) * s


# ---------------------------------------------------------------------- #
# Winograd F(2x2, 3x3) for dilated convolutions (periodic x, zero y)
# ---------------------------------------------------------------------- #
# A dilated 3x3 convolution with dilation d splits into d*d independent
# undilated convolutions on the phase sub-grids h = a + d i, w = b + d j
# (periodic in j when d divides W).  Each sub-grid is cut into tiles of 2x2
# outputs; a tile's 4x4 input patch d is transformed as V = B^T d B, the
# filter as U = G g G^T, and the output is Y = A^T (U . V) A, with
#   B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]],
#   G   = [[1,0,0],[1/2,1/2,1/2],[1/2,-1/2,1/2],[0,0,1]],
#   A^T = [[1,1,1,0],[0,1,-1,-1]].
# Tiles are numbered in the order (b, phase a, phase b, tile row, tile col);
# arrays in the transformed domain are (16, channels, tiles).
@nb.njit(**_JIT)
def wino_num_tiles(B, H, W, d):
    """Number of 2x2 output tiles over all phases and samples (``W % d == 0``)."""
    Wb = W // d
    n = 0
    for a in range(d):
        Ha = (H - a + d - 1) // d
        n += ((Ha + 1) // 2) * ((Wb + 1) // 2) * d
    return n * B


@nb.njit(**_JIT)
def wino_input(x, d, V):
    """``V[:, c, t] = B^T patch_t(x[c]) B`` (16 values per channel and tile).

    x : (C, B, H, W); V : (16, C, T).  Rows outside ``[0, H)`` of a sub-grid are
    zero; columns wrap periodically.  One row of tiles at a time: the four
    input rows are gathered, periodically extended, into a small buffer and the
    transform then runs as straight-line code over the tiles of that row.
    """
    C, B, H, W = x.shape
    Wb = W // d
    nj = (Wb + 1) // 2
    L = 2 * nj + 2
    rows = np.zeros((4, L), dtype=x.dtype)
    # column index of buffer position k for phase bb: bb + d ((k - 1) mod Wb)
    col = np.empty((d, L), dtype=np.int64)
    for bb in range(d):
        for k in range(L):
            col[bb, k] = bb + d * ((k - 1 + Wb) % Wb)
    for c in range(C):
        t0 = 0
        for b in range(B):
            for a in range(d):
                Ha = (H - a + d - 1) // d
                for ti in range((Ha + 1) // 2):
                    for bb in range(d):
                        for r in range(4):
                            i = 2 * ti - 1 + r
                            if i < 0 or i >= Ha:
                                for k in range(L):
                                    rows[r, k] = 0.0
                            else:
                                src = x[c, b, a + d * i]
                                for k in range(L):
                                    rows[r, k] = src[col[bb, k]]
                        for tj in range(nj):
                            k = 2 * tj
                            t = t0 + tj
                            # q = B^T p, column by column (s = 0..3)
                            q00 = rows[0, k] - rows[2, k]
                            q10 = rows[1, k] + rows[2, k]
                            q20 = rows[2, k] - rows[1, k]
                            q30 = rows[1, k] - rows[3, k]
                            q01 = rows[0, k + 1] - rows[2, k + 1]
                            q11 = rows[1, k + 1] + rows[2, k + 1]
                            q21 = rows[2, k + 1] - rows[1, k + 1]
                            q31 = rows[1, k + 1] - rows[3, k + 1]
                            q02 = rows[0, k + 2] - rows[2, k + 2]
                            q12 = rows[1, k + 2] + rows[2, k + 2]
                            q22 = rows[2, k + 2] - rows[1, k + 2]
                            q32 = rows[1, k + 2] - rows[3, k + 2]
                            q03 = rows[0, k + 3] - rows[2, k + 3]
                            q13 = rows[1, k + 3] + rows[2, k + 3]
                            q23 = rows[2, k + 3] - rows[1, k + 3]
                            q33 = rows[1, k + 3] - rows[3, k + 3]
                            # V = q B, row by row
                            V[0, c, t] = q00 - q02
                            V[1, c, t] = q01 + q02
                            V[2, c, t] = q02 - q01
                            V[3, c, t] = q01 - q03
                            V[4, c, t] = q10 - q12
                            V[5, c, t] = q11 + q12
                            V[6, c, t] = q12 - q11
                            V[7, c, t] = q11 - q13
                            V[8, c, t] = q20 - q22
                            V[9, c, t] = q21 + q22
                            V[10, c, t] = q22 - q21
                            V[11, c, t] = q21 - q23
                            V[12, c, t] = q30 - q32
                            V[13, c, t] = q31 + q32
                            V[14, c, t] = q32 - q31
                            V[15, c, t] = q31 - q33
                        t0 += nj


@nb.njit(**_JIT)
def wino_output(M, d, bias, y):
    """``y[o, tile] = A^T M[:, o, t] A + bias[o]`` for the valid outputs of each tile.

    M : (16, O, T); y : (O, B, H, W), written.
    """
    O, B, H, W = y.shape
    Wb = W // d
    nj = (Wb + 1) // 2
    out = np.empty((2, 2 * nj), dtype=y.dtype)
    for o in range(O):
        t0 = 0
        bo = bias[o]
        for b in range(B):
            for a in range(d):
                Ha = (H - a + d - 1) // d
                for ti in range((Ha + 1) // 2):
                    for bb in range(d):
                        for tj in range(nj):
                            t = t0 + tj
                            # u = A^T m, rows 0 and 1, for the four columns of m
                            u00 = M[0, o, t] + M[4, o, t] + M[8, o, t]
                            u01 = M[1, o, t] + M[5, o, t] + M[9, o, t]
                            u02 = M[2, o, t] + M[6, o, t] + M[10, o, t]
                            u03 = M[3, o, t] + M[7, o, t] + M[11, o, t]
                            u10 = M[4, o, t] - M[8, o, t] - M[12, o, t]
                            u11 = M[5, o, t] - M[9, o, t] - M[13, o, t]
                            u12 = M[6, o, t] - M[10, o, t] - M[14, o, t]
                            u13 = M[7, o, t] - M[11, o, t] - M[15, o, t]
                            out[0, 2 * tj] = u00 + u01 + u02 + bo
                            out[0, 2 * tj + 1] = u01 - u02 - u03 + bo
                            out[1, 2 * tj] = u10 + u11 + u12 + bo
                            out[1, 2 * tj + 1] = u11 - u12 - u13 + bo
                        for r in range(2):
                            i = 2 * ti + r
                            if i < Ha:
                                dst = y[o, b, a + d * i]
                                for j in range(Wb):
                                    dst[bb + d * j] = out[r, j]
                        t0 += nj


@nb.njit(**_JIT)
def wino_output_adjoint(dy, d, G):
    """Adjoint of :func:`wino_output` (without bias): ``G[:, o, t] = A dy_tile A^T``.

    dy : (O, B, H, W); G : (16, O, T).  Outputs outside the grid count as zero.
    """
    O, B, H, W = dy.shape
    Wb = W // d
    nj = (Wb + 1) // 2
    g = np.zeros((2, 2 * nj), dtype=dy.dtype)
    for o in range(O):
        t0 = 0
        for b in range(B):
            for a in range(d):
                Ha = (H - a + d - 1) // d
                for ti in range((Ha + 1) // 2):
                    for bb in range(d):
                        for r in range(2):
                            i = 2 * ti + r
                            if i < Ha:
                                src = dy[o, b, a + d * i]
                                for j in range(Wb):
                                    g[r, j] = src[bb + d * j]
                                for j in range(Wb, 2 * nj):
                                    g[r, j] = 0.0
                            else:
                                for j in range(2 * nj):
                                    g[r, j] = 0.0
                        for tj in range(nj):
                            t = t0 + tj
                            g00 = g[0, 2 * tj]
                            g01 = g[0, 2 * tj + 1]
                            g10 = g[1, 2 * tj]
                            g11 = g[1, 2 * tj + 1]
                            # u = A g (4 x 2), A = [[1,0],[1,1],[1,-1],[0,-1]]
                            u00, u01 = g00, g01
                            u10, u11 = g00 + g10, g01 + g11
                            u20, u21 = g00 - g10, g01 - g11
                            u30, u31 = -g10, -g11
                            # G = u A^T (4 x 4)
                            G[0, o, t] = u00
                            G[1, o, t] = u00 + u01
                            G[2, o, t] = u00 - u01
                            G[3, o, t] = -u01
                            G[4, o, t] = u10
                            G[5, o, t] = u10 + u11
                            G[6, o, t] = u10 - u11
                            G[7, o, t] = -u11
                            G[8, o, t] = u20
                            G[9, o, t] = u20 + u21
                            G[10, o, t] = u20 - u21
                            G[11, o, t] = -u21
                            G[12, o, t] = u30
                            G[13, o, t] = u30 + u31
                            G[14, o, t] = u30 - u31
                            G[15, o, t] = -u31
                        t0 += nj
