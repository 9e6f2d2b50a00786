"""Spherical Arakawa C-grid with Veros / pyOM2 conventions.

Layout of every array: C order ``[k, j, i]`` (x fastest) with **2 halo cells** on
each side in x and y and none in z, i.e. 3-d arrays have shape
``(nz, ny + 4, nx + 4)`` and the interior is ``[:, 2:-2, 2:-2]``.

Staggering for cell ``(i, j, k)`` (pyOM2 / Veros):

============  =========================  =================================
location      point                      arrays
============  =========================  =================================
T             (xt[i], yt[j], zt[k])      temp, salt, rho, p_hydro
U             (xu[i], yt[j], zt[k])      u (east face of T cell i)
V             (xt[i], yu[j], zt[k])      v (north face of T cell j)
W             (xt[i], yt[j], zw[k])      w, Nsqr, kappaH, eke (top face of T cell k)
Z             (xu[i], yu[j])             psi (north-east corner)
============  =========================  =================================

**k = 0 is the bottom level**, ``k = nz - 1`` the surface (``zw[nz-1] = 0``).

1-d coordinates follow Veros's ``u_centered_grid``: U/W points lie exactly midway
between T points, while T points are reflections of the previous T point about
the U point (not cell centres on a non-uniform grid).  The x/y origin is placed
on the east/north *face* of the first interior cell (``xu[2] = x_origin``).
Grid spacings are given in degrees and converted with
``degtom = radius * pi / 180``; the ``cos(latitude)`` factors enter the operators
explicitly.
"""

from __future__ import annotations

import numba
import numpy as np

from . import constants as C

__all__ = ["Grid", "u_centered_grid", "cyclic_exchange"]


def u_centered_grid(dt):
    """Veros's staggered 1-d grid from the T-cell widths ``dt`` (length n).

    Returns ``(du, t, u)``: ``u[0] = 0``, ``u[i] = sum(dt[1:i+1])``;
    ``t[0] = u[0] - dt[0]/2`` and ``t[i] = 2 u[i-1] - t[i-1]`` (reflection);
    ``du[i] = t[i+1] - t[i]`` and ``du[-1] = 2 dt[-1] - du[-2]``.
    """
    dt = np.asarray(dt, dtype=np.float64)
    n = dt.size
    u = np.zeros(n)
    u[1:] = np.cumsum(dt[1:])
    t = np.zeros(n)
    t[0] = u[0] - 0.5 * dt[0]
    for i in range(1, n):
        t[i] = 2.0 * u[i - 1] - t[i - 1]
    du = np.zeros(n)
    du[:-1] = t[1:] - t[:-1]
    du[-1] = 2.0 * dt[-1] - du[-2]
    return du, t, u


@numba.njit(cache=True, nogil=True)
def _exchange_rows(a):
    """``a[:, -2:] = a[:, 2:4]; a[:, :2] = a[:, -4:-2]`` for a 2-d (rows, NX) array (exact copies)."""
    n = a.shape[1]
    for r in range(a.shape[0]):
        a[r, n - 2] = a[r, 2]
        a[r, n - 1] = a[r, 3]
        a[r, 0] = a[r, n - 4]
        a[r, 1] = a[r, n - 3]


def cyclic_exchange(a, axis=-1):
    """Periodic halo fill along ``axis`` in place: ``a[-2:] = a[2:4]; a[:2] = a[-4:-2]``.

    Along the last axis of a C-contiguous NumPy array (the model's x exchange every step) a
    compiled loop over the rows: 10 us instead of NumPy's 96 us for the strided slice copy of a
    3-d field at 0.25 deg (5100 rows of 4 halo points).  Device arrays: x only, slice copies."""
    if axis in (-1, a.ndim - 1):
        if isinstance(a, np.ndarray) and a.flags.c_contiguous and a.shape[-1] >= 4:
            _exchange_rows(a.reshape(-1, a.shape[-1]))
            return a
    else:
        a = np.moveaxis(a, axis, -1)
    a[..., -2:] = a[..., 2:4]
    a[..., :2] = a[..., -4:-2]
    return a


#: names of the land/sea masks among the grid arrays
MASKS = ("maskT", "maskU", "maskV", "maskW", "maskZ")

#: dtype of the masks that kernels read.  The grid keeps float64 masks (Python-side
#: arithmetic); the model's field store and the kernel tests hold int8 copies: 1 byte per
#: point instead of 8, and the step is memory-bound (measured at 0.25 deg, two models
#: alternating steps in one process, median of the per-pair ratios: 5-6 % less time per
#: step on 1 thread, 6.5-10.5 % on 2).  Every product with a mask value (0 or 1) is exact,
#: so results are bitwise unchanged.
KERNEL_MASK_DTYPE = np.int8


def kernel_arrays(grid):
    """``grid.arrays()`` as kernels take them: masks as :data:`KERNEL_MASK_DTYPE`."""
    return {n: (a.astype(KERNEL_MASK_DTYPE) if n in MASKS else a) for n, a in grid.arrays().items()}


class Grid:
    """Grid, metric factors, Coriolis parameter, topography and masks.

    Parameters
    ----------
    dxt, dyt : array (nx,), (ny,)
        Interior T-cell widths in degrees (``coord_degree=True``) or metres.
    dzt : array (nz,)
        T-cell thicknesses in metres, bottom first.
    x_origin, y_origin : float
        Position of the east/north face of the first interior cell.
    kbot_fn : callable(xt2d, yt2d) -> int array
        1-based index of the deepest wet T cell per column (0 = land), evaluated on
        the full (halo-inclusive) 2-d T coordinates ``[j, i]``.
    cyclic_x : bool
        Periodic in x.

    Attributes (all NumPy, float64 unless stated)
    ----------
    nx, ny, nz : interior sizes; ``NX = nx + 4``, ``NY = ny + 4``.
    xt, xu, dxt, dxu : (NX,) ; yt, yu, dyt, dyu, cost, cosu, tantr : (NY,)
    zt, zw, dzt, dzw : (nz,)
    area_t, area_u, area_v, coriolis_t, beta, ht, hu, hv, hur, hvr : (NY, NX)
    kbot : (NY, NX) int32
    maskT, maskU, maskV, maskW, maskZ : (nz, NY, NX) float64 in {0, 1}
    """

    def __init__(self, dxt, dyt, dzt, x_origin, y_origin, kbot_fn, cyclic_x=True, coord_degree=True):
        dxt = np.asarray(dxt, dtype=np.float64)
        dyt = np.asarray(dyt, dtype=np.float64)
        dzt = np.asarray(dzt, dtype=np.float64)
        self.nx, self.ny, self.nz = dxt.size, dyt.size, dzt.size
        self.NX, self.NY = self.nx + 4, self.ny + 4
        self.cyclic_x = bool(cyclic_x)
        self.coord_degree = bool(coord_degree)

        # --- 1-d spacings with halos (Veros calc_grid_spacings) ---
        dx = np.zeros(self.NX)
        dx[2:-2] = dxt
        if cyclic_x:
            dx[-2:] = dx[2:4]
            dx[:2] = dx[-4:-2]
        else:
            dx[-2:] = dx[-3]
            dx[:2] = dx[2]
        dy = np.zeros(self.NY)
        dy[2:-2] = dyt
        dy[-2:] = dy[-3]
        dy[:2] = dy[2]

        dxu, xt, xu = u_centered_grid(dx)
        shift = x_origin - xu[2]
        xt, xu = xt + shift, xu + shift
        if cyclic_x:
            cyclic_exchange(xt)
            cyclic_exchange(xu)
            cyclic_exchange(dxu)
        dyu, yt, yu = u_centered_grid(dy)
        shift = y_origin - yu[2]
        yt, yu = yt + shift, yu + shift

        self.xt, self.xu, self.yt, self.yu = xt, xu, yt, yu
        fac = C.DEGTOM if coord_degree else 1.0
        self.dxt, self.dxu = dx * fac, dxu * fac
        self.dyt, self.dyu = dy * fac, dyu * fac

        dzw, zt, zw = u_centered_grid(dzt)
        self.zt = zt - zw[-1]
        self.zw = zw - zw[-1]
        self.dzt, self.dzw = dzt.copy(), dzw

        # --- metric factors (Veros calc_grid_metrics) ---
        if coord_degree:
            self.cost = np.cos(self.yt * C.PI / 180.0)
            self.cosu = np.cos(self.yu * C.PI / 180.0)
            self.tantr = np.tan(self.yt * C.PI / 180.0) / C.RADIUS
        else:
            self.cost = np.ones(self.NY)
            self.cosu = np.ones(self.NY)
            self.tantr = np.zeros(self.NY)
        self.area_t = self.cost[:, None] * self.dyt[:, None] * self.dxt[None, :]
        self.area_u = self.cost[:, None] * self.dyt[:, None] * self.dxu[None, :]
        self.area_v = self.cosu[:, None] * self.dyu[:, None] * self.dxt[None, :]

        # --- Coriolis (ACC setup: f = 2 omega sin(lat)) and beta ---
        f = 2.0 * C.OMEGA * np.sin(self.yt / 180.0 * C.PI)
        self.coriolis_t = np.broadcast_to(f[:, None], (self.NY, self.NX)).copy()
        beta = np.zeros((self.NY, self.NX))
        ft = self.coriolis_t
        beta[2:-2, :] = 0.5 * ((ft[3:-1, :] - ft[2:-2, :]) / self.dyu[2:-2, None]
                               + (ft[2:-2, :] - ft[1:-3, :]) / self.dyu[1:-3, None])
        if cyclic_x:
            cyclic_exchange(beta)
        self.beta = beta

        # --- topography and masks (Veros calc_topo) ---
        X, Y = np.meshgrid(self.xt, self.yt, indexing="xy")  # [j, i]
        kbot = np.asarray(kbot_fn(X, Y), dtype=np.int32)
        if kbot.shape != (self.NY, self.NX):
            raise ValueError(f"kbot_fn returned shape {kbot.shape}, expected {(self.NY, self.NX)}")
        if np.any((kbot < 0) | (kbot > self.nz)):
            raise ValueError(f"kbot values must lie in [0, nz={self.nz}], got [{kbot.min()}, {kbot.max()}]")
        self.set_kbot(kbot)

    # ------------------------------------------------------------------
    def set_kbot(self, kbot):
        """Set the topography (1-based deepest wet level, 0 = land) and rebuild masks."""
        nz, NY, NX = self.nz, self.NY, self.NX
        kbot = np.array(kbot, dtype=np.int32)
        kbot[:2, :] = 0
        kbot[-2:, :] = 0
        if self.cyclic_x:
            cyclic_exchange(kbot)
        else:
            kbot[:, :2] = 0
            kbot[:, -2:] = 0
        self.kbot = kbot
        ks = np.arange(nz)[:, None, None]
        maskT = ((kbot[None] > 0) & (kbot[None] - 1 <= ks)).astype(np.float64)
        maskU = maskT.copy()
        maskU[:, :, :-1] = np.minimum(maskT[:, :, :-1], maskT[:, :, 1:])
        maskV = maskT.copy()
        maskV[:, :-1, :] = np.minimum(maskT[:, :-1, :], maskT[:, 1:, :])
        maskZ = maskT.copy()
        maskZ[:, :-1, :-1] = np.minimum(np.minimum(maskT[:, :-1, :-1], maskT[:, 1:, :-1]), maskT[:, :-1, 1:])
        if self.cyclic_x:
            for m in (maskT, maskU, maskV, maskZ):
                cyclic_exchange(m)
        maskW = maskT.copy()
        maskW[:-1] = np.minimum(maskT[:-1], maskT[1:])
        self.maskT, self.maskU, self.maskV, self.maskW, self.maskZ = maskT, maskU, maskV, maskW, maskZ

        dz = self.dzt[:, None, None]
        self.ht = (maskT * dz).sum(axis=0)
        self.hu = (maskU * dz).sum(axis=0)
        self.hv = (maskV * dz).sum(axis=0)
        with np.errstate(divide="ignore"):
            self.hur = np.where(self.hu != 0, 1.0 / (self.hu + 1e-22), 0.0)
            self.hvr = np.where(self.hv != 0, 1.0 / (self.hv + 1e-22), 0.0)

    # ------------------------------------------------------------------
    @property
    def shape3(self):
        return (self.nz, self.NY, self.NX)

    @property
    def shape2(self):
        return (self.NY, self.NX)

    def interior(self, a):
        """View of the interior (halos removed) of a 2-d or 3-d array."""
        return a[..., 2:-2, 2:-2]

    #: names of the arrays a kernel may take straight from the grid
    ARRAYS = ("dxt", "dxu", "dyt", "dyu", "dzt", "dzw", "cost", "cosu", "tantr", "area_t", "area_u",
              "area_v", "coriolis_t", "beta", "kbot", "maskT", "maskU", "maskV", "maskW", "maskZ",
              "ht", "hu", "hv", "hur", "hvr", "xt", "xu", "yt", "yu", "zt", "zw")

    def arrays(self):
        return {n: getattr(self, n) for n in self.ARRAYS}

    def __repr__(self):
        return f"<Grid nx={self.nx} ny={self.ny} nz={self.nz} cyclic_x={self.cyclic_x}>"
