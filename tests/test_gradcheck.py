"""``stommel gradcheck``: the grdchk table agrees (FD vs adjoint vs tangent) on a short run."""

import io

import numpy as np

from adjoint.gradcheck import gradcheck, make_loss
from ocean_core import setups


def test_gradcheck_table():
    m = setups.acc(2.0)
    m.run(5)
    out = io.StringIO()
    rows = gradcheck(m, make_loss("u", 3), ["r_bot", "surface_taux", "kappaH_0"], 3, eps=1e-4, npoints=1, out=out)
    text = out.getvalue()
    assert "1-FD/AD" in text and "RMS of" in text
    for r in rows:
        # adjoint and tangent are the same number up to round-off; FD agrees to its truncation error
        assert abs(r["adjoint"] - r["tangent"]) <= 1e-12 * abs(r["adjoint"])
        assert abs(r["ratio"]) <= 1e-4, r
