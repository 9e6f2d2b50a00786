"""The row-separated direct solver of the streamfunction operator (ocean_core.sparse_direct).

* solves ``A x = b`` and ``A^T x = b`` for the ACC operator to a residual of a few ulps
  and agrees with SuperLU's own solve (a different ordering) to 1e-12;
* the solution is bitwise the same with 1 and 2 Numba threads (child processes);
* the parts are independent: no entry of L couples two parts (the property that makes the
  parallel sweep exact);
* bad input gives errors that name the problem.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.linalg

from ocean_core.sparse_direct import RowSeparatedLU
from ocean_core.streamfunction import Streamfunction


@pytest.fixture(scope="module")
def sf():
    from ocean_core import setups
    return setups.acc(resolution=2.0, config="paper").solver


def _poisson(NY, NX, seed=0):
    """A random diagonally dominant 5-point operator, periodic in x, identity on the edge rows."""
    rng = np.random.default_rng(seed)
    n = NY * NX
    idx = np.arange(n).reshape(NY, NX)
    rows, cols, vals = [], [], []
    for j in range(NY):
        for i in range(NX):
            r = idx[j, i]
            if j in (0, NY - 1):
                rows.append(r), cols.append(r), vals.append(1.0)
                continue
            nb = [idx[j, (i + 1) % NX], idx[j, (i - 1) % NX], idx[j + 1, i], idx[j - 1, i]]
            w = rng.uniform(0.5, 2.0, 4)
            for c, wc in zip(nb, w):
                rows.append(r), cols.append(c), vals.append(wc)
            rows.append(r), cols.append(r), vals.append(-w.sum() * 1.01)
    return scipy.sparse.csr_matrix((vals, (rows, cols)), shape=(n, n))


@pytest.mark.parametrize("trans", [False, True])
def test_acc_operator_solve(sf, trans):
    g = sf.grid
    A = sf.A
    assert sf.direct is not None, "the ACC operator must not need pivoting"
    b = np.random.default_rng(3).standard_normal(A.shape[0])
    x = sf.direct.solve(b, trans=trans)
    M = A.T if trans else A
    resid = np.abs(M @ x - b).max() / np.abs(b).max()
    assert resid <= 1e-12, f"residual {resid:.2e}"
    ref = scipy.sparse.linalg.splu(A.tocsc(), permc_spec="MMD_AT_PLUS_A").solve(b, trans="T" if trans else "N")
    err = np.abs(x - ref).max() / np.abs(ref).max()
    assert err <= 1e-12, f"differs from SuperLU's solve by {err:.2e}"
    assert len(sf.direct.separators) == 1 and 2 <= sf.direct.separators[0] < g.NY - 2


@pytest.mark.parametrize("nparts", [1, 2, 3, 5])
def test_random_operator_any_number_of_parts(nparts):
    A = _poisson(23, 11, seed=nparts)
    R = RowSeparatedLU(A, 23, 11, nparts=nparts)
    assert len(R.separators) == nparts - 1
    b = np.random.default_rng(1).standard_normal(A.shape[0])
    for trans in (False, True):
        x = R.solve(b, trans=trans)
        M = A.T if trans else A
        assert np.abs(M @ x - b).max() <= 1e-12 * np.abs(b).max() * 10


def test_parts_are_independent(sf):
    """L has no entry coupling two different parts, and U no entry from the separator to a part:
    the forward and backward sweeps over the parts may run concurrently."""
    R = sf.direct
    A = sf.A
    B = A[R.perm][:, R.perm].tocsc()
    lu = scipy.sparse.linalg.splu(B, permc_spec="NATURAL", diag_pivot_thresh=0.0,
                                  options=dict(SymmetricMode=True))
    part = np.full(R.n, -1)
    for p in range(len(R.bounds) - 2):
        part[R.bounds[p]:R.bounds[p + 1]] = p
    L = lu.L.tocoo()
    inside = (part[L.row] >= 0) & (part[L.col] >= 0)
    assert np.all(part[L.row][inside] == part[L.col][inside])
    U = lu.U.tocoo()
    assert not np.any((part[U.row] < 0) & (part[U.col] >= 0))


_CHILD = r"""
import sys, numpy as np, numba
numba.set_num_threads(int(sys.argv[1]))
from ocean_core import setups
sf = setups.acc(resolution=2.0, config="paper").solver
b = np.random.default_rng(7).standard_normal(sf.A.shape[0])
x = sf.direct.solve(b)
xt = sf.direct.solve(b, trans=True)
import hashlib
print(hashlib.sha256(x.tobytes() + xt.tobytes()).hexdigest())
"""


def test_bitwise_independent_of_thread_count():
    out = {}
    env = dict(os.environ, NUMBA_NUM_THREADS="2")
    for th in (1, 2):
        r = subprocess.run([sys.executable, "-c", _CHILD, str(th)], capture_output=True, text=True, env=env,
                           timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        out[th] = r.stdout.strip().splitlines()[-1]
    assert out[1] == out[2], "solution differs between 1 and 2 threads"


def test_errors():
    A = _poisson(9, 5)
    with pytest.raises(ValueError, match="nparts=0"):
        RowSeparatedLU(A, 9, 5, nparts=0)
    with pytest.raises(ValueError, match="expected"):
        RowSeparatedLU(A, 9, 6)
    R = RowSeparatedLU(A, 9, 5)
    with pytest.raises(ValueError, match="entries, expected 45"):
        R.solve(np.zeros(44))
    far = A.tolil()
    far[0, 3 * 5] = 0.1  # couples grid rows 0 and 3
    with pytest.raises(ValueError, match="more than 1 apart"):
        RowSeparatedLU(far.tocsr(), 9, 5)
    # an operator that needs pivoting (a zero diagonal) is refused (Streamfunction then uses SuperLU)
    Z = A.tolil()
    Z[0, 0] = Z[1, 1] = 0.0  # two identity rows of the edge swapped: needs a row exchange
    Z[0, 1] = Z[1, 0] = 1.0
    with pytest.raises(RuntimeError, match="pivoted|singular"):
        RowSeparatedLU(Z.tocsr(), 9, 5)


def test_streamfunction_uses_it(sf):
    assert isinstance(sf, Streamfunction) and sf.lu is None and isinstance(sf.direct, RowSeparatedLU)


def test_streamfunction_falls_back_to_superlu(monkeypatch):
    """If the row-separated factorisation refuses the operator (it would need pivoting),
    Streamfunction warns and uses SuperLU's own ordering and solve, with the same solution."""
    from ocean_core import setups, streamfunction

    grid = setups.acc(resolution=2.0, config="paper").grid
    ref = Streamfunction(grid)

    def refuse(*args, **kwargs):
        raise RuntimeError("RowSeparatedLU: SuperLU pivoted (test)")

    monkeypatch.setattr(streamfunction, "RowSeparatedLU", refuse)
    with pytest.warns(RuntimeWarning, match="using SuperLU's serial solve"):
        sf = Streamfunction(grid)
    assert sf.direct is None and sf.lu is not None
    b = np.random.default_rng(5).standard_normal((grid.NY, grid.NX))
    for trans in (False, True):
        x, x_ref = sf.solve(b, trans=trans), ref.solve(b, trans=trans)
        assert np.abs(x - x_ref).max() <= 1e-12 * np.abs(x_ref).max()
