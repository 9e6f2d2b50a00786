"""Rigid-lid barotropic streamfunction: island labelling, the elliptic operator,
its direct solution, island basis functions and line integrals.

Veros conventions (``core/external``):

* psi lives at Z points (NE corners), on the full halo-inclusive ``(NY, NX)`` grid.
* Land masses are labelled on T cells (8-connected, periodic in x); water T cells
  touching land are the *perimeter*.  Island n (0-based) is held at psi_n(t); its
  boundary is the set of Z points selected by the direction masks
  ``line_dir_{east,west,north,south}_mask``.
* Rows of the operator at island boundary points, halo points and land points are
  identity rows; their right-hand side is the boundary value.
* psi = dpsi-part (zero on all island boundaries) + sum_n psi_n(t) psin_n, where
  ``A psin_n = 0`` with psin_n = 1 on island n and 0 on the others.  Island 0 is fixed
  at 0; the others follow from the circulation (line-integral) constraints.

The operator is constant, so it is factorised once (SuperLU, ordered by grid-row
separators so that the triangular solves run in parallel and release the GIL:
:class:`ocean_core.sparse_direct.RowSeparatedLU`); the adjoint reuses the factorisation
for ``A^T``.  The line integrals are linear functionals and are
stored as weight fields: ``circ_m(u, v) = sum(Wu_m u + Wv_m v)``.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.ndimage
import scipy.sparse
import scipy.sparse.linalg

from .grid import cyclic_exchange
from .sparse_direct import RowSeparatedLU

__all__ = ["label_land_masses", "boundary_masks", "assemble_operator", "Streamfunction"]


def label_land_masses(kbot, cyclic_x=True):
    """Label land masses and their perimeter on T cells.

    Returns ``land_map`` (NY, NX) int: ``n >= 1`` for land mass n, ``-1`` for water
    cells adjacent (8-neighbourhood) to land, 0 elsewhere.  Labels are ordered by the
    first cell met scanning rows from north to south, each row west to east.
    """
    kmt = np.array(kbot)
    if cyclic_x:
        cyclic_exchange(kmt)
    structure = np.ones((3, 3))
    land = kmt == 0
    labelled, _ = scipy.ndimage.label(land, structure=structure)
    perimeter = np.logical_xor(scipy.ndimage.binary_dilation(land, structure=structure), land)
    labelled[perimeter] = -1
    if cyclic_x:
        # merge land masses that continue through the periodic boundary
        west, east = labelled[:, 2].copy(), labelled[:, -2].copy()
        for lab in np.unique(west[west > 0]):
            other = np.unique(east[west == lab])
            other = other[(other != lab) & (other != -1)]
            for o in other:
                labelled[labelled == o] = lab
        cyclic_exchange(labelled)
    labels = np.unique(labelled[labelled > 0])
    flipped = labelled[::-1, :]  # north first
    first = {lab: int(np.argmax(flipped.ravel() == lab)) for lab in labels}
    out = labelled.copy()
    for new, lab in enumerate(sorted(labels, key=lambda l: first[l]), 1):
        out[labelled == lab] = new
    return out


def boundary_masks(land_map, cyclic_x=True):
    """Direction masks of the island boundaries at Z points.

    Returns a dict with ``east, west, north, south`` (nisle, NY, NX) bool arrays and
    ``isle_boundary_mask`` (NY, NX) bool, False on island boundary points.
    """
    nisle = int(land_map.max())
    NY, NX = land_map.shape
    bm = land_map[None] == np.arange(1, nisle + 1)[:, None, None]  # (n, j, i)
    out = {d: np.zeros((nisle, NY, NX), dtype=bool) for d in ("east", "west", "north", "south")}
    i0, i1 = (2, NX - 2) if cyclic_x else (1, NX - 1)
    J = slice(1, NY - 1)
    I = slice(i0, i1)
    Ip = slice(i0 + 1, i1 + 1)
    Jp = slice(2, NY)
    out["east"][:, J, I] = bm[:, J, Ip] & ~bm[:, Jp, Ip]
    out["west"][:, J, I] = bm[:, Jp, I] & ~bm[:, J, I]
    out["south"][:, J, I] = bm[:, J, I] & ~bm[:, J, Ip]
    out["north"][:, J, I] = bm[:, Jp, Ip] & ~bm[:, Jp, I]
    any_b = out["east"] | out["west"] | out["north"] | out["south"]
    out["isle_boundary_mask"] = ~np.any(any_b, axis=0)
    out["nisle"] = nisle
    return out


def assemble_operator(grid, isle_boundary_mask):
    """The 5-point streamfunction operator on the full (NY, NX) Z grid as CSR.

    Interior row (j, i):
    ``[hvr_{i+1}(psi_{i+1} - psi_i)/dxt_{i+1} - hvr_i(psi_i - psi_{i-1})/dxt_i] / (dxu_i cosu_j^2)
    + [hur_{j+1} cost_{j+1}(psi_{j+1} - psi_j)/dyt_{j+1} - hur_j cost_j(psi_j - psi_{j-1})/dyt_j] / (dyu_j cosu_j)``
    with hvr/hur at V/U points of the psi cell; periodic in x.  Identity rows on island
    boundaries, halos and wherever the diagonal vanishes (land).
    """
    g = grid
    NY, NX = g.NY, g.NX
    hur, hvr = g.hur, g.hvr
    idx = np.arange(NY * NX).reshape(NY, NX)
    rows, cols, vals = [], [], []
    bmask = isle_boundary_mask
    J, I = np.meshgrid(np.arange(2, NY - 2), np.arange(2, NX - 2), indexing="ij")
    cu2 = g.cosu[J] ** 2
    east = hvr[J, I + 1] / g.dxu[I] / g.dxt[I + 1] / cu2
    west = hvr[J, I] / g.dxu[I] / g.dxt[I] / cu2
    north = hur[J + 1, I] / g.dyu[J] / g.dyt[J + 1] * g.cost[J + 1] / g.cosu[J]
    south = hur[J, I] / g.dyu[J] / g.dyt[J] * g.cost[J] / g.cosu[J]
    main = -east - west - south - north
    keep = bmask[J, I] & (main != 0.0)
    if g.cyclic_x:
        Ie = np.where(I + 1 > NX - 3, 2, I + 1)
        Iw = np.where(I - 1 < 2, NX - 3, I - 1)
    else:
        Ie, Iw = I + 1, I - 1
    for c, jj, ii in ((main, J, I), (east, J, Ie), (west, J, Iw), (north, J + 1, I), (south, J - 1, I)):
        rows.append(idx[J, I][keep])
        cols.append(idx[jj, ii][keep])
        vals.append(c[keep])
    ident = np.ones((NY, NX), dtype=bool)
    ident[J[keep], I[keep]] = False
    rows.append(idx[ident])
    cols.append(idx[ident])
    vals.append(np.ones(int(ident.sum())))
    A = scipy.sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                                shape=(NY * NX, NY * NX))
    A.sum_duplicates()
    return A, ~ident


class Streamfunction:
    """Operator, factorisation, island basis functions and circulation weights.

    Attributes
    ----------
    A : csr_matrix (NY*NX, NY*NX)
    solve_rows : (NY, NX) bool, rows with the 5-point stencil (others are identity)
    isle_boundary_mask : (NY, NX) bool (False on island boundaries)
    nisle : number of land masses
    psin : (nisle, NY, NX) island basis functions
    Wu, Wv : (nisle, NY, NX) weights of the circulation around each island:
        ``circ_m(u, v) = sum(Wu[m] u + Wv[m] v)`` (u at U points, v at V points)
    Wd : (nisle, NY, NX) weights of the circulation of the velocity induced by psi:
        ``circ_m(vel(psi)) = sum(Wd[m] psi)``
    line_psin : (nisle, nisle), ``line_psin[m, n] = circ_m(vel(psin_n))``
    """

    def __init__(self, grid):
        self.grid = grid
        self.land_map = label_land_masses(grid.kbot, grid.cyclic_x)
        bm = boundary_masks(self.land_map, grid.cyclic_x)
        self.nisle = bm["nisle"]
        self.masks = {d: bm[d] for d in ("east", "west", "north", "south")}
        self.isle_boundary_mask = bm["isle_boundary_mask"]
        self.A, self.solve_rows = assemble_operator(grid, self.isle_boundary_mask)
        try:
            # balance the parts by the number of stencil rows per grid row
            self.direct = RowSeparatedLU(self.A, grid.NY, grid.NX, weight=self.solve_rows.sum(axis=1))
            self.lu = None
        except RuntimeError as err:  # SuperLU needed pivoting: keep its own ordering and solve
            warnings.warn(f"streamfunction: {err}; using SuperLU's serial solve", RuntimeWarning, stacklevel=2)
            self.direct = None
            self.lu = scipy.sparse.linalg.splu(self.A.tocsc(), permc_spec="MMD_AT_PLUS_A")
        self._circulation_weights()
        self._island_basis()

    # --- solves ----------------------------------------------------------
    def solve(self, rhs, trans=False, backend=None):
        """Solve ``A x = rhs`` (or ``A^T x = rhs``) for a (NY, NX) right-hand side.

        On the CPU: forward and backward substitution with the factors computed once
        (:class:`~ocean_core.sparse_direct.RowSeparatedLU`: parallel over the parts of the
        grid, bitwise the same for any thread count).
        On the GPU (CuPy arrays): a host factorisation (``cupyx.scipy.sparse.linalg.splu``,
        SuperLU with its own MMD ordering) transferred once to the device and applied with
        cuSPARSE triangular solves, so no host round trip per step.
        """
        shape = rhs.shape
        if backend is not None and backend.name == "cuda":
            return self._gpu_solver(backend).solve(rhs.ravel(), trans="T" if trans else "N").reshape(shape)
        if self.direct is not None:
            return self.direct.solve(rhs, trans=trans).reshape(shape)
        x = self.lu.solve(np.ascontiguousarray(rhs, dtype=np.float64).ravel(), trans="T" if trans else "N")
        return x.reshape(shape)

    def _gpu_solver(self, backend):
        if getattr(self, "_gpu_lu", None) is None:
            import cupyx.scipy.sparse as csp
            import cupyx.scipy.sparse.linalg as cspl
            self._gpu_lu = cspl.splu(csp.csr_matrix(self.A).tocsc(), permc_spec="MMD_AT_PLUS_A")
        return self._gpu_lu

    def line_psin_inv_full(self):
        """(nisle, nisle) matrix M with ``dpsin = M line_forc``: row/column 0 zero (island 0 fixed),
        ``M[1:, 1:] = line_psin[1:, 1:]^{-1}``."""
        n = self.nisle
        M = np.zeros((n, n))
        if n > 1:
            M[1:, 1:] = np.linalg.inv(self.line_psin[1:, 1:])
        return M

    def rhs(self, forc, boundary_value):
        """``where(isle_boundary_mask, forc, boundary_value)`` (Veros's right-hand side)."""
        return np.where(self.isle_boundary_mask, forc, boundary_value)

    # --- circulation -----------------------------------------------------
    def _circulation_weights(self):
        g = self.grid
        NY, NX = g.NY, g.NX
        n = self.nisle
        Wu = np.zeros((n, NY, NX))
        Wv = np.zeros((n, NY, NX))
        # sums over i in [1, NX-3], j in [1, NY-3] (Veros line_integrals, single process)
        J = slice(1, NY - 2)
        I = slice(1, NX - 2)
        Jp = slice(2, NY - 1)
        Ip = slice(2, NX - 1)
        E = self.masks["east"][:, J, I].astype(float)
        W = self.masks["west"][:, J, I].astype(float)
        N = self.masks["north"][:, J, I].astype(float)
        S = self.masks["south"][:, J, I].astype(float)
        dyu = g.dyu[J][None, :, None]
        dxu = g.dxu[I][None, None, :]
        cj = g.cost[J][None, :, None]
        cjp = g.cost[Jp][None, :, None]
        Wv[:, J, I] += (E + N) * dyu
        Wv[:, J, Ip] -= (W + S) * dyu
        Wu[:, Jp, I] += (E + S) * dxu * cjp
        Wu[:, J, I] -= (W + N) * dxu * cj
        self.Wu, self.Wv = Wu, Wv
        # velocity induced by psi (i, j >= 1):
        # u = -maskU_top (psi_j - psi_{j-1}) / dyt_j hur ; v = maskV_top (psi_i - psi_{i-1}) / (cosu_j dxt_i) hvr
        cu = np.zeros((NY, NX))
        cv = np.zeros((NY, NX))
        cu[1:, 1:] = -g.maskU[-1, 1:, 1:] / g.dyt[1:, None] * g.hur[1:, 1:]
        cv[1:, 1:] = g.maskV[-1, 1:, 1:] / (g.cosu[1:, None] * g.dxt[None, 1:]) * g.hvr[1:, 1:]
        Wd = np.zeros((n, NY, NX))
        a = Wu[:, 1:, 1:] * cu[None, 1:, 1:]
        Wd[:, 1:, 1:] += a
        Wd[:, :-1, 1:] -= a
        b = Wv[:, 1:, 1:] * cv[None, 1:, 1:]
        Wd[:, 1:, 1:] += b
        Wd[:, 1:, :-1] -= b
        self.Wd = Wd

    def circulation(self, uloc, vloc):
        """Circulation around every island of the velocity (uloc at U, vloc at V), (nisle,)."""
        return np.einsum("nji,ji->n", self.Wu, uloc) + np.einsum("nji,ji->n", self.Wv, vloc)

    def induced_velocity(self, psi):
        """Depth-mean velocity of a streamfunction (Veros island_integrals / barotropic_velocity_update)."""
        g = self.grid
        u = np.zeros_like(psi)
        v = np.zeros_like(psi)
        u[1:, 1:] = -(psi[1:, 1:] - psi[:-1, 1:]) * g.maskU[-1, 1:, 1:] / g.dyt[1:, None] * g.hur[1:, 1:]
        v[1:, 1:] = (psi[1:, 1:] - psi[1:, :-1]) * g.maskV[-1, 1:, 1:] / (g.cosu[1:, None] * g.dxt[None, 1:]) * g.hvr[1:, 1:]
        return u, v

    def _island_basis(self):
        g = self.grid
        n = self.nisle
        psin = np.zeros((n, g.NY, g.NX))
        forc = np.zeros((g.NY, g.NX))
        for m in range(n):
            bval = (self.masks["east"][m] | self.masks["west"][m] | self.masks["north"][m]
                    | self.masks["south"][m]).astype(float)
            psin[m] = self.solve(self.rhs(forc, bval))
            if g.cyclic_x:
                cyclic_exchange(psin[m])
        self.psin = psin
        line = np.zeros((n, n))
        for k in range(n):
            u, v = self.induced_velocity(psin[k])
            line[:, k] = self.circulation(u, v)
        self.line_psin = line
        if n > 1:
            self.line_psin_inner = line[1:, 1:]
            self._line_lu = np.linalg.inv(self.line_psin_inner)
        else:
            self.line_psin_inner = np.zeros((0, 0))
            self._line_lu = np.zeros((0, 0))

    def island_rates(self, line_forc):
        """dpsin[1:] = line_psin[1:, 1:]^{-1} line_forc[1:] (island 0 fixed)."""
        out = np.zeros(self.nisle)
        if self.nisle > 1:
            out[1:] = np.linalg.solve(self.line_psin_inner, line_forc[1:])
        return out
