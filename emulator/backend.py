"""Array-module selection and the few primitive kernels the emulator needs.

One code path serves three backends:

``"cpu"``
    NumPy arrays; GEMMs through NumPy's BLAS, the memory-bound stencils
    (im2col / col2im, capped GELU, normalisation statistics) in Numba.
``"numpy"``
    NumPy arrays with every primitive written in plain array-module code.
    It is the readable reference against which the Numba kernels are tested,
    and it is the code that also runs on CuPy.
``"gpu"``
    CuPy arrays; GEMMs through cuBLAS, im2col / col2im and the capped GELU as
    raw CUDA kernels, everything else through the generic array-module code.

CuPy is imported lazily and the GPU backend is only offered when
``cupy.is_available()`` is true (CuPy may be installed on a machine without a
GPU or driver, where importing it succeeds but every allocation fails).

Arrays inside the network use the *channel-major* layout ``(C, B, H, W)``:
channel, batch, latitude (y), longitude (x, periodic, contiguous).  With this
layout every 1x1 convolution and every im2col convolution is a single GEMM
with the batch folded into the long dimension.
"""

from __future__ import annotations

import math

import numpy as np

from . import kernels_cpu

_BACKENDS: dict[str, "Backend"] = {}

#: Names accepted by :func:`get_backend`.
BACKEND_NAMES = ("cpu", "numpy", "gpu")


def gpu_available() -> bool:
    """Return True when CuPy is importable *and* sees a usable GPU.

    Never raises: a missing package, a missing driver or a broken CUDA
    installation all count as "no GPU".
    """
    try:
        import cupy  # noqa: PLC0415  (lazy on purpose)
    except Exception:  # pragma: no cover - depends on the machine
        return False
    try:
        return bool(cupy.is_available())
    except Exception:  # pragma: no cover
        return False


def get_backend(name: str = "cpu") -> "Backend":
    """Return the (cached) backend called ``name``.

    Parameters
    ----------
    name : {"cpu", "numpy", "gpu"}
        See the module docstring.

    Raises
    ------
    ValueError
        If ``name`` is unknown.
    RuntimeError
        If ``name == "gpu"`` and no GPU is usable.
    """
    if isinstance(name, Backend):
        return name
    if name not in BACKEND_NAMES:
        raise ValueError(f"backend={name!r} is not one of {BACKEND_NAMES}")
    if name not in _BACKENDS:
        if name == "gpu":
            if not gpu_available():
                raise RuntimeError(
                    "backend='gpu' requested but cupy.is_available() is False "
                    "(no CuPy, no GPU or no driver); use backend='cpu'"
                )
            _BACKENDS[name] = _CupyBackend()
        elif name == "numpy":
            _BACKENDS[name] = Backend()
        else:
            _BACKENDS[name] = _NumbaBackend()
    return _BACKENDS[name]


class Backend:
    """Generic array-module implementation of the primitives (NumPy or CuPy).

    Attributes
    ----------
    name : str
        Backend name.
    xp : module
        The array module (``numpy`` or ``cupy``).
    """

    name = "numpy"
    is_gpu = False

    def __init__(self, xp=np):
        self.xp = xp
        self._ws = {}

    def workspace(self, shape, dtype, slot=0):
        """A scratch array of ``shape`` reused across calls (contents undefined).

        One flat buffer per (dtype, slot) grows to the largest size requested
        and is handed out as a view, so the large im2col / Winograd matrices of
        successive convolutions do not each allocate (and page-fault) fresh
        memory.  The view is valid until the next request of the same slot;
        callers must not keep it.
        """
        key = (np.dtype(dtype), slot)
        n = int(np.prod(shape))
        buf = self._ws.get(key)
        if buf is None or buf.size < n:
            buf = self.xp.empty(max(n, 1), dtype=key[0])
            self._ws[key] = buf
        return buf[:n].reshape(shape)

    # ------------------------------------------------------------------ #
    # transfers
    # ------------------------------------------------------------------ #
    def asarray(self, a, dtype=None):
        """Move ``a`` onto this backend's device (no copy when already there)."""
        return self.xp.asarray(a, dtype=dtype)

    @staticmethod
    def to_numpy(a):
        """Return ``a`` as a NumPy array (device-to-host copy for CuPy)."""
        if hasattr(a, "get"):
            return a.get()
        return np.asarray(a)

    # ------------------------------------------------------------------ #
    # dilated 3x3 stencils: periodic in x, zero in y
    # ------------------------------------------------------------------ #
    def im2col(self, x, dil, out=None):
        """Unfold a dilated 3x3 neighbourhood into columns.

        ``cols[c*9 + 3*ky + kx, b, h, w] = x[c, b, h + (ky-1)*dil, (w + (kx-1)*dil) mod W]``
        with zero where the row index leaves ``[0, H)``.

        Parameters
        ----------
        x : array (C, B, H, W)
        dil : int
            Dilation ``>= 1`` (x offsets wrap modulo ``W``, also when ``dil >= W``).
        out : array (9*C, B*H*W), optional
            Workspace to fill.

        Returns
        -------
        cols : array (9*C, B*H*W)
        """
        xp = self.xp
        C, B, H, W = x.shape
        if out is None:
            out = xp.empty((9 * C, B * H * W), dtype=x.dtype)
        cols = out.reshape(C, 3, 3, B, H, W)
        for ky in range(3):
            oy = (ky - 1) * dil
            h0, h1 = max(0, -oy), min(H, H - oy)
            for kx in range(3):
                ox = (kx - 1) * dil
                dst = cols[:, ky, kx]
                dst[:, :, :h0] = 0
                dst[:, :, max(h1, h0):] = 0
                if h1 > h0:
                    # roll(a, -ox)[w] = a[(w + ox) mod W]
                    dst[:, :, h0:h1] = xp.roll(x[:, :, h0 + oy:h1 + oy], -ox, axis=-1)
        return out

    def col2im(self, dcols, shape, dil, out=None):
        """Adjoint of :meth:`im2col` (a deterministic gather, no atomics).

        ``dx[c, b, h, w] = sum_{ky,kx} dcols[c*9+3ky+kx, b, h-(ky-1)dil, (w-(kx-1)dil) mod W]``
        over the terms whose row index lies in ``[0, H)``.

        Parameters
        ----------
        dcols : array (9*C, B*H*W)
        shape : tuple (C, B, H, W)
        dil : int

        Returns
        -------
        dx : array (C, B, H, W)
        """
        xp = self.xp
        C, B, H, W = shape
        d = dcols.reshape(C, 3, 3, B, H, W)
        dx = out if out is not None else xp.empty(shape, dtype=dcols.dtype)
        dx[...] = 0
        for ky in range(3):
            oy = (ky - 1) * dil
            h0, h1 = max(0, -oy), min(H, H - oy)
            if h1 <= h0:
                continue
            for kx in range(3):
                ox = (kx - 1) * dil
                dx[:, :, h0 + oy:h1 + oy] += xp.roll(d[:, ky, kx, :, h0:h1], ox, axis=-1)
        return dx

    # ------------------------------------------------------------------ #
    # capped GELU: y = min(x * Phi(x), cap)
    # ------------------------------------------------------------------ #
    def _erf(self, z):
        if self.xp is np:
            from scipy.special import erf  # noqa: PLC0415
        else:  # pragma: no cover - GPU only
            from cupyx.scipy.special import erf  # noqa: PLC0415
        return erf(z)

    def gelu(self, x, cap):
        """Capped exact GELU, ``min(x * Phi(x), cap)``, ``Phi`` the normal CDF."""
        xp = self.xp
        y = 0.5 * x * (1.0 + self._erf(x * (1.0 / math.sqrt(2.0))))
        return xp.minimum(y, cap).astype(x.dtype, copy=False)

    def gelu_backward(self, x, dy, cap):
        """Gradient of :meth:`gelu`: ``dy * (Phi(x) + x phi(x))`` where the cap is inactive.

        As in PyTorch's ``clamp``, the gradient passes where ``gelu(x) <= cap``.
        """
        xp = self.xp
        phi = xp.exp(-0.5 * x * x) * (1.0 / math.sqrt(2.0 * math.pi))
        Phi = 0.5 * (1.0 + self._erf(x * (1.0 / math.sqrt(2.0))))
        g = dy * (Phi + x * phi)
        return xp.where(x * Phi <= cap, g, 0).astype(x.dtype, copy=False)

    # ------------------------------------------------------------------ #
    # row normalisation (the core of Batch- and InstanceNorm)
    # ------------------------------------------------------------------ #
    def row_stats(self, x2, eps):
        """Mean and reciprocal standard deviation of each row (two-pass, float64 sums).

        Parameters
        ----------
        x2 : array (R, N)
        eps : float

        Returns
        -------
        mean, var, rstd : arrays (R,) in float64
            ``var`` is the biased variance, ``rstd = 1/sqrt(var + eps)``.
        """
        xp = self.xp
        x64 = x2.astype(np.float64, copy=False)
        mean = x64.mean(axis=1)
        var = ((x64 - mean[:, None]) ** 2).mean(axis=1)
        return mean, var, 1.0 / xp.sqrt(var + eps)

    def row_normalize(self, x2, mean, rstd):
        """``(x - mean) * rstd`` row-wise, in the dtype of ``x2``."""
        dt = x2.dtype
        return (x2 - mean[:, None].astype(dt)) * rstd[:, None].astype(dt)

    def row_normalize_backward(self, g2, xhat2, rstd):
        """Gradient through ``xhat = (x - mean(x)) * rstd(x)`` for each row.

        ``dx = rstd * (g - mean(g) - xhat * mean(g * xhat))``.

        Returns
        -------
        dx : array (R, N)
        sum_g, sum_gx : arrays (R,) float64
            ``sum(g)`` and ``sum(g * xhat)`` per row (the affine gradients).
        """
        dt = g2.dtype
        n = g2.shape[1]
        sum_g = g2.astype(np.float64, copy=False).sum(axis=1)
        sum_gx = (g2.astype(np.float64, copy=False) * xhat2).sum(axis=1)
        dx = (g2 - (sum_g / n)[:, None].astype(dt) - xhat2 * (sum_gx / n)[:, None].astype(dt))
        dx *= rstd[:, None].astype(dt)
        return dx, sum_g, sum_gx


    # ------------------------------------------------------------------ #
    # fused normalisation + capped GELU (generic composition)
    # ------------------------------------------------------------------ #
    def norm_gelu(self, x2, rows_per_ch, gamma, beta, cap, eps, stats=None):
        """``y = min(GELU(gamma_c (x - mean) rstd + beta_c), cap)`` for each row.

        Parameters
        ----------
        x2 : array (R, N)
            Row ``r`` belongs to channel ``c = r // rows_per_ch``.
        gamma, beta : arrays (C,)
        stats : (mean, rstd) float64 arrays (R,), optional
            Given statistics (BatchNorm evaluation); computed when None.

        Returns
        -------
        y : array (R, N)
        mean, rstd : float64 arrays (R,)
        """
        xp = self.xp
        if stats is None:
            mean, _, rstd = self.row_stats(x2, eps)
        else:
            mean, rstd = stats
        xhat = self.row_normalize(x2, mean, rstd)
        g = xp.repeat(gamma, rows_per_ch)[:, None].astype(x2.dtype)
        b = xp.repeat(beta, rows_per_ch)[:, None].astype(x2.dtype)
        return self.gelu(xhat * g + b, cap), mean, rstd

    def norm_gelu_backward(self, dy2, x2, rows_per_ch, gamma, beta, cap, mean, rstd, frozen):
        """Backward of :meth:`norm_gelu`.

        Returns
        -------
        dx : array (R, N)
        dgamma_rows, dbeta_rows : float64 arrays (R,)
            Per-row sums ``sum gz xhat`` and ``sum gz`` with ``gz = dL/dz``.
        """
        xp = self.xp
        xhat = self.row_normalize(x2, mean, rstd)
        g = xp.repeat(gamma, rows_per_ch)[:, None].astype(x2.dtype)
        b = xp.repeat(beta, rows_per_ch)[:, None].astype(x2.dtype)
        gz = self.gelu_backward(xhat * g + b, dy2, cap)
        dbeta = gz.astype(np.float64).sum(axis=1)
        dgamma = (gz.astype(np.float64) * xhat).sum(axis=1)
        gx = gz * g
        if frozen:
            dx = gx * rstd[:, None].astype(x2.dtype)
        else:
            dx, _, _ = self.row_normalize_backward(gx, xhat, rstd)
        return dx, dgamma, dbeta


class _NumbaBackend(Backend):
    """NumPy arrays with the stencils and element-wise work in Numba."""

    name = "cpu"

    def __init__(self):
        super().__init__(np)

    def im2col(self, x, dil, out=None):
        C, B, H, W = x.shape
        _check_dil(dil, W)
        if out is None:
            out = np.empty((9 * C, B * H * W), dtype=x.dtype)
        kernels_cpu.im2col(np.ascontiguousarray(x), int(dil), out.reshape(9 * C, B, H, W))
        return out

    def col2im(self, dcols, shape, dil, out=None):
        C, B, H, W = shape
        _check_dil(dil, W)
        dx = out if out is not None else np.empty(shape, dtype=dcols.dtype)
        kernels_cpu.col2im(np.ascontiguousarray(dcols).reshape(9 * C, B, H, W), int(dil), dx)
        return dx

    def gelu(self, x, cap):
        y = np.empty_like(x)
        kernels_cpu.gelu_fwd(x.reshape(-1), x.dtype.type(cap), y.reshape(-1))
        return y

    def gelu_backward(self, x, dy, cap):
        dx = np.empty_like(x)
        kernels_cpu.gelu_bwd(x.reshape(-1), np.ascontiguousarray(dy).reshape(-1),
                             x.dtype.type(cap), dx.reshape(-1))
        return dx

    def row_stats(self, x2, eps):
        R = x2.shape[0]
        mean = np.empty(R)
        var = np.empty(R)
        kernels_cpu.row_stats(np.ascontiguousarray(x2), mean, var)
        return mean, var, 1.0 / np.sqrt(var + eps)

    def row_normalize(self, x2, mean, rstd):
        y = np.empty_like(x2)
        kernels_cpu.row_normalize(np.ascontiguousarray(x2), mean.astype(x2.dtype),
                                  rstd.astype(x2.dtype), y)
        return y

    def row_normalize_backward(self, g2, xhat2, rstd):
        dx = np.empty_like(g2)
        R = g2.shape[0]
        sum_g = np.empty(R)
        sum_gx = np.empty(R)
        kernels_cpu.row_normalize_bwd(np.ascontiguousarray(g2), np.ascontiguousarray(xhat2),
                                      rstd.astype(g2.dtype), dx, sum_g, sum_gx)
        return dx, sum_g, sum_gx


    def norm_gelu(self, x2, rows_per_ch, gamma, beta, cap, eps, stats=None):
        R = x2.shape[0]
        dt = x2.dtype
        y = np.empty_like(x2)
        if stats is None:
            mean, rstd = np.empty(R), np.empty(R)
        else:
            mean, rstd = (np.ascontiguousarray(a, dtype=np.float64) for a in stats)
        kernels_cpu.norm_gelu_fwd(np.ascontiguousarray(x2), int(rows_per_ch),
                                  np.ascontiguousarray(gamma, dtype=dt),
                                  np.ascontiguousarray(beta, dtype=dt), float(cap), float(eps),
                                  stats is not None, mean, rstd, y, dt == np.float32)
        return y, mean, rstd

    def norm_gelu_backward(self, dy2, x2, rows_per_ch, gamma, beta, cap, mean, rstd, frozen):
        R = x2.shape[0]
        dt = x2.dtype
        dx = np.empty_like(x2)
        dgamma, dbeta = np.empty(R), np.empty(R)
        kernels_cpu.norm_gelu_bwd(np.ascontiguousarray(dy2, dtype=dt), np.ascontiguousarray(x2),
                                  int(rows_per_ch), np.ascontiguousarray(gamma, dtype=dt),
                                  np.ascontiguousarray(beta, dtype=dt), float(cap),
                                  np.ascontiguousarray(mean, dtype=np.float64),
                                  np.ascontiguousarray(rstd, dtype=np.float64), bool(frozen),
                                  dx, dgamma, dbeta, dt == np.float32)
        return dx, dgamma, dbeta

def _check_dil(dil, W):
    if dil < 1:
        raise ValueError(f"dilation={dil} must be >= 1")


class _CupyBackend(Backend):  # pragma: no cover - needs a GPU
    """CuPy arrays: cuBLAS GEMMs, raw kernels for the stencils and the GELU."""

    name = "gpu"
    is_gpu = True

    def __init__(self):
        import cupy  # noqa: PLC0415

        super().__init__(cupy)
        from . import kernels_gpu  # noqa: PLC0415

        self._k = kernels_gpu

    def im2col(self, x, dil, out=None):
        C, B, H, W = x.shape
        _check_dil(dil, W)
        if out is None:
            out = self.xp.empty((9 * C, B * H * W), dtype=x.dtype)
        self._k.im2col(self.xp.ascontiguousarray(x), int(dil), out)
        return out

    def col2im(self, dcols, shape, dil, out=None):
        C, B, H, W = shape
        _check_dil(dil, W)
        dx = out if out is not None else self.xp.empty(shape, dtype=dcols.dtype)
        self._k.col2im(self.xp.ascontiguousarray(dcols), shape, int(dil), dx)
        return dx

    def gelu(self, x, cap):
        return self._k.gelu_fwd(x, cap)

    def gelu_backward(self, x, dy, cap):
        return self._k.gelu_bwd(x, dy, cap)
