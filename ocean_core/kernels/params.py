"""Parameter fields on the grid points where the operators need them.

The spatially varying viscosity ``A_h_t`` (T points) is averaged to the corner (Z)
points, the bottom drag ``r_bot_t`` (T points) to U and V points.  Pairwise averages
keep uniform fields exactly uniform (``0.5 (a + a) == a`` in floating point), so the
uniform case reproduces a scalar coefficient bit for bit.
"""

import numpy as np

from .framework import kernel


def _ref_viscosity_at_corners(A_h_t):
    z = A_h_t.copy()
    z[:-1, :-1] = 0.5 * (0.5 * (A_h_t[:-1, :-1] + A_h_t[:-1, 1:]) + 0.5 * (A_h_t[1:, :-1] + A_h_t[1:, 1:]))
    return (z,)


@kernel("2d", outputs=("A_h_z",), reference=_ref_viscosity_at_corners, active=("A_h_t",))
def viscosity_at_corners(i, j, A_h_z, A_h_t):
    """``A_z[j, i] = 0.5 (0.5 (A_{j,i} + A_{j,i+1}) + 0.5 (A_{j+1,i} + A_{j+1,i+1}))``; last row/column copy A_t."""
    if i < A_h_t.shape[1] - 1 and j < A_h_t.shape[0] - 1:
        A_h_z[j, i] = 0.5 * (0.5 * (A_h_t[j, i] + A_h_t[j, i + 1]) + 0.5 * (A_h_t[j + 1, i] + A_h_t[j + 1, i + 1]))
    else:
        A_h_z[j, i] = A_h_t[j, i]


def _ref_drag_at_faces(r_bot_t):
    ru = r_bot_t.copy()
    rv = r_bot_t.copy()
    ru[:, :-1] = 0.5 * (r_bot_t[:, :-1] + r_bot_t[:, 1:])
    rv[:-1, :] = 0.5 * (r_bot_t[:-1, :] + r_bot_t[1:, :])
    return ru, rv


@kernel("2d", outputs=("r_bot_u", "r_bot_v"), reference=_ref_drag_at_faces, active=("r_bot_t",))
def drag_at_faces(i, j, r_bot_u, r_bot_v, r_bot_t):
    """``r_u = 0.5 (r_{j,i} + r_{j,i+1})``, ``r_v = 0.5 (r_{j,i} + r_{j+1,i})``; last column/row copy r_t."""
    if i < r_bot_t.shape[1] - 1:
        r_bot_u[j, i] = 0.5 * (r_bot_t[j, i] + r_bot_t[j, i + 1])
    else:
        r_bot_u[j, i] = r_bot_t[j, i]
    if j < r_bot_t.shape[0] - 1:
        r_bot_v[j, i] = 0.5 * (r_bot_t[j, i] + r_bot_t[j + 1, i])
    else:
        r_bot_v[j, i] = r_bot_t[j, i]
