"""Direct solver for the streamfunction operator with parallel, reproducible triangular solves.

The operator is a 5-point stencil on the (NY, NX) Z grid (periodic in x), so every
grid row ``j`` couples only to rows ``j - 1`` and ``j + 1``.  One grid row ``j_s``
therefore separates the grid into two independent *parts* (rows ``< j_s`` and
``> j_s``); ``nparts`` parts need ``nparts - 1`` separator rows.  The unknowns are ordered

    part 0 | part 1 | ... | part P-1 | separator rows,

each part by SuperLU's minimum-degree ordering (MMD on A^T + A) of its own block, and
``P A P^T = L U`` is factorised once by SuperLU without pivoting (the operator is
diagonally dominant, identity rows on land and boundaries).  Then:

* ``L`` restricted to a part has entries in that part's columns only, so the forward
  substitution runs the parts concurrently; a separator row's dot product with the
  (now known) part unknowns is computed for all separator rows concurrently, and only
  the small separator triangle is sequential;
* ``U`` restricted to the separator has separator columns only: the backward
  substitution does the separator first (sequential), then the parts concurrently.

The transposed system (the adjoint) uses ``U^T`` (lower) and ``L^T`` (upper) in the same
way.  Every unknown is computed by one fixed sequence of operations (each row's dot
product in storage order, 4 partial sums), whatever the number of threads, so the
solution is bitwise the same for any thread count.  The parts are a property of the
grid (``nparts``, default 2), not of the thread count.

Compared with SuperLU's own serial back substitution this is about as fast on one
thread and close to twice as fast on two; unlike SuperLU's solve it releases the GIL.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse
import scipy.sparse.linalg
from numba import prange

__all__ = ["RowSeparatedLU"]


@numba.njit(inline="always", error_model="numpy")
def _row_dot(v, ix, y, p, e):
    """``sum_{q in [p, e)} v[q] y[ix[q]]`` with 4 partial sums (in storage order)."""
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    while p + 3 < e:
        s0 += v[p] * y[ix[p]]
        s1 += v[p + 1] * y[ix[p + 1]]
        s2 += v[p + 2] * y[ix[p + 2]]
        s3 += v[p + 3] * y[ix[p + 3]]
        p += 4
    while p < e:
        s0 += v[p] * y[ix[p]]
        p += 1
    return (s0 + s1) + (s2 + s3)


@numba.njit(parallel=True, nogil=True, cache=True, error_model="numpy")
def _lower_solve(ip, ix, v, rd, y, bounds, split, acc):
    """In place ``y <- T^{-1} y`` for a lower-triangular ``T`` = strict part (CSR ip, ix, v,
    columns sorted) + diagonal ``1 / rd`` (its reciprocal is stored: a multiplication in the
    chain of dependent rows instead of a division, 7 % faster on one thread).  Rows ``[bounds[p], bounds[p+1])`` are part p (no
    columns outside it), rows ``[bounds[-2], n)`` the separator; ``split[r]`` is the first
    storage index of separator row ``bounds[-2] + r`` with a separator column."""
    nparts = bounds.size - 2
    for p in prange(nparts):
        for i in range(bounds[p], bounds[p + 1]):
            y[i] = (y[i] - _row_dot(v, ix, y, ip[i], ip[i + 1])) * rd[i]
    s0 = bounds[nparts]
    n = y.size
    for r in prange(n - s0):
        acc[r] = _row_dot(v, ix, y, ip[s0 + r], split[r])
    for i in range(s0, n):
        y[i] = (y[i] - acc[i - s0] - _row_dot(v, ix, y, split[i - s0], ip[i + 1])) * rd[i]


@numba.njit(parallel=True, nogil=True, cache=True, error_model="numpy")
def _upper_solve(ip, ix, v, rd, y, bounds):
    """In place ``y <- T^{-1} y`` for an upper-triangular ``T`` (strict part + diagonal
    ``1 / rd``), stored with its rows in *reverse* order (row i of T is storage row n-1-i, so the
    backward sweep streams memory forwards: 2.3x faster than descending storage, measured):
    the separator rows (separator columns only) backwards, then the parts concurrently,
    each backwards (columns in the part and the separator)."""
    nparts = bounds.size - 2
    n = y.size
    s0 = bounds[nparts]
    for i in range(n - 1, s0 - 1, -1):
        q = n - 1 - i
        y[i] = (y[i] - _row_dot(v, ix, y, ip[q], ip[q + 1])) * rd[i]
    for p in prange(nparts):
        for i in range(bounds[p + 1] - 1, bounds[p] - 1, -1):
            q = n - 1 - i
            y[i] = (y[i] - _row_dot(v, ix, y, ip[q], ip[q + 1])) * rd[i]


@numba.njit(nogil=True, cache=True)
def _permute_in(b, perm, y):
    for q in range(perm.size):
        y[q] = b[perm[q]]


@numba.njit(nogil=True, cache=True)
def _permute_out(y, perm, x):
    for q in range(perm.size):
        x[perm[q]] = y[q]


def _strict_and_diag(M, n, reverse_rows=False):
    """(strict part as sorted CSR, reciprocal of the diagonal) of a triangular sparse matrix; with
    ``reverse_rows`` row i of the CSR arrays is row n-1-i of ``M`` (the diagonal is not reversed)."""
    C = M.tocoo()
    on = C.row == C.col
    d = np.zeros(n)
    d[C.row[on]] = C.data[on]
    rows = (n - 1 - C.row[~on]) if reverse_rows else C.row[~on]
    S = scipy.sparse.csr_matrix((C.data[~on], (rows, C.col[~on])), shape=(n, n))
    S.sum_duplicates()
    S.sort_indices()
    return S.indptr.astype(np.int64), S.indices.astype(np.int32), S.data.astype(np.float64), 1.0 / d


class RowSeparatedLU:
    """LU factorisation of a grid operator ordered by grid-row separators (module docstring).

    Parameters
    ----------
    A : sparse matrix (NY*NX, NY*NX)
        Couples grid point (j, i) (index ``j*NX + i``) only to rows j-1, j, j+1.
    NY, NX : int
    weight : (NY,) array, optional
        Work per grid row (e.g. the number of stencil rows) used to balance the parts;
        default: all rows equal.
    nparts : int
        Number of parts (>= 1); fewer are used on grids too small to separate.

    Attributes
    ----------
    perm : (n,) int64, ``perm[q]`` is the grid index of unknown q of the ordered system
    bounds : (nparts + 2,) int64, first unknown of each part, of the separator, and n
    nnz : number of stored entries of L and U
    """

    def __init__(self, A, NY, NX, weight=None, nparts=2):
        nparts = int(nparts)
        if nparts < 1:
            raise ValueError(f"nparts={nparts!r} is invalid: must be an integer >= 1")
        A = scipy.sparse.csr_matrix(A)
        n = NY * NX
        if A.shape != (n, n):
            raise ValueError(f"A has shape {A.shape}, expected ({n}, {n}) for NY={NY}, NX={NX}")
        self._check_row_coupling(A, NX)
        w = np.ones(NY) if weight is None else np.asarray(weight, dtype=float)
        seps = self._separators(w, nparts)
        # parts: the row bands between separators, each ordered by minimum degree
        edges = [-1] + seps + [NY]
        order, bounds = [], []
        pos = 0
        for a, b in zip(edges[:-1], edges[1:]):
            nodes = np.arange((a + 1) * NX, b * NX)
            bounds.append(pos)
            if nodes.size:
                sub = A[nodes][:, nodes].tocsc()
                pc = scipy.sparse.linalg.splu(sub, permc_spec="MMD_AT_PLUS_A").perm_c
                o = np.empty_like(nodes)
                o[pc] = nodes  # column i of the block goes to position pc[i]
                order.append(o)
                pos += nodes.size
        bounds.append(pos)
        for js in seps:
            order.append(np.arange(js * NX, (js + 1) * NX))
        bounds.append(n)
        self.perm = np.concatenate(order).astype(np.int64)
        self.bounds = np.asarray(bounds, dtype=np.int64)
        self.separators = tuple(seps)
        B = A[self.perm][:, self.perm].tocsc()
        lu = scipy.sparse.linalg.splu(B, permc_spec="NATURAL", diag_pivot_thresh=0.0,
                                      options=dict(SymmetricMode=True))
        ident = np.arange(n)
        if not (np.array_equal(lu.perm_r, ident) and np.array_equal(lu.perm_c, ident)):
            raise RuntimeError("RowSeparatedLU: SuperLU pivoted (the operator is not diagonally dominant?)")
        self.nnz = int(lu.L.nnz + lu.U.nnz)
        L, U = lu.L, lu.U
        s0 = int(self.bounds[-2])
        # forward system: L (unit lower) then U; transposed: U^T (lower) then L^T
        self._fwd = (self._lower(L, n, s0), _strict_and_diag(U, n, reverse_rows=True))
        self._trans = (self._lower(U.T, n, s0), _strict_and_diag(L.T, n, reverse_rows=True))
        self._y = np.empty(n)
        self._acc = np.empty(n - s0)
        self.n = n

    @staticmethod
    def _check_row_coupling(A, NX):
        C = A.tocoo()
        dj = np.abs(C.row // NX - C.col // NX)
        if dj.size and dj.max() > 1:
            raise ValueError("RowSeparatedLU: the operator couples grid rows more than 1 apart")

    @staticmethod
    def _separators(w, nparts):
        """Separator rows splitting the cumulative weight into ``nparts`` near-equal bands
        (at least one row per band; fewer parts if the grid is too small)."""
        NY = w.size
        c = np.cumsum(w)
        seps = []
        lo = 0
        for p in range(1, nparts):
            js = int(np.searchsorted(c, c[-1] * p / nparts))
            js = max(js, lo + 1)
            if js >= NY - 1:
                break
            seps.append(js)
            lo = js + 1
        return seps

    @staticmethod
    def _lower(M, n, s0):
        ip, ix, v, rd = _strict_and_diag(M, n)
        # first storage index of each separator row with a column >= s0 (columns sorted)
        split = np.empty(n - s0, dtype=np.int64)
        for r in range(n - s0):
            a, b = ip[s0 + r], ip[s0 + r + 1]
            split[r] = a + int(np.searchsorted(ix[a:b], s0))
        return ip, ix, v, rd, split

    def solve(self, b, trans=False, out=None):
        """``A^{-1} b`` (``A^{-T} b`` with ``trans``) for a flat float64 vector ``b``.

        Not re-entrant: one work vector per factorisation (a model's step is sequential)."""
        b = np.ascontiguousarray(b, dtype=np.float64).ravel()
        if b.size != self.n:
            raise ValueError(f"b has {b.size} entries, expected {self.n}")
        (lip, lix, lv, lrd, lsplit), (uip, uix, uv, urd) = self._trans if trans else self._fwd
        y = self._y
        _permute_in(b, self.perm, y)
        _lower_solve(lip, lix, lv, lrd, y, self.bounds, lsplit, self._acc)
        _upper_solve(uip, uix, uv, urd, y, self.bounds)
        x = np.empty(self.n) if out is None else out
        _permute_out(y, self.perm, x)
        return x
