"""Tangent-linear and adjoint kernels of :mod:`ocean_core.kernels.params`.

Both forward kernels are linear averages of a T-point parameter field, so their
tangents are the forward bodies applied to the tangent fields.  The adjoints gather,
at T point p, the averaging weights of every output point that reads p: 1/4 from the
(up to) four corner points around p for ``A_h_z``, 1/2 from the two faces beside p
for ``r_bot_u`` / ``r_bot_v``, and weight 1 where the last row or column copies p.
"""

from ocean_core.kernels import params as F

from .pairing import adjoint_of, tangent_of

# forward bodies reused by the tangents (linear kernels)
_viscosity_at_corners = F.viscosity_at_corners.body
_drag_at_faces = F.drag_at_faces.body


# ===========================================================================
# A_h at corner points
# ===========================================================================

@tangent_of(F.viscosity_at_corners)
def viscosity_at_corners_tl(i, j, d_A_h_z, d_A_h_t):
    """Tangent = the forward average applied to d_A_h_t (linear)."""
    _viscosity_at_corners(i, j, d_A_h_z, d_A_h_t)


@adjoint_of(F.viscosity_at_corners)
def viscosity_at_corners_ad(i, j, b_A_h_t, b_A_h_z):
    """Adjoint of ``A_z[q] = 1/4 (A_t[q] + A_t[q+(0,1)] + A_t[q+(1,0)] + A_t[q+(1,1)])`` for
    ``q_i < NX-1, q_j < NY-1`` (else ``A_z[q] = A_t[q]``):
    ``b_A_t[j, i] += sum_{q in (j|j-1, i|i-1), averaged} b_A_z[q] / 4 + b_A_z[j, i] [copied]``."""
    NY = b_A_h_t.shape[0]
    NX = b_A_h_t.shape[1]
    inner_i = i < NX - 1
    inner_j = j < NY - 1
    # the corner point (j, i) itself: averaged (weight 1/4) or copied (weight 1)
    if inner_i and inner_j:
        b = 0.25 * b_A_h_z[j, i]
    else:
        b = b_A_h_z[j, i]
    # corners to the west / south of p (always averaged when they exist)
    if i >= 1 and inner_j:
        b += 0.25 * b_A_h_z[j, i - 1]
    if j >= 1 and inner_i:
        b += 0.25 * b_A_h_z[j - 1, i]
    if i >= 1 and j >= 1:
        b += 0.25 * b_A_h_z[j - 1, i - 1]
    b_A_h_t[j, i] += b


# ===========================================================================
# bottom drag at U and V points
# ===========================================================================

@tangent_of(F.drag_at_faces)
def drag_at_faces_tl(i, j, d_r_bot_u, d_r_bot_v, d_r_bot_t):
    """Tangent = the forward average applied to d_r_bot_t (linear)."""
    _drag_at_faces(i, j, d_r_bot_u, d_r_bot_v, d_r_bot_t)


@adjoint_of(F.drag_at_faces)
def drag_at_faces_ad(i, j, b_r_bot_t, b_r_bot_u, b_r_bot_v):
    """Adjoint of ``r_u[j, i] = (r[j, i] + r[j, i+1]) / 2`` (``i < NX-1``, else copy) and
    ``r_v[j, i] = (r[j, i] + r[j+1, i]) / 2`` (``j < NY-1``, else copy):
    ``b_r[j, i] += w b_r_u[j, i] + b_r_u[j, i-1] / 2 + w' b_r_v[j, i] + b_r_v[j-1, i] / 2``
    with w, w' = 1/2 (averaged) or 1 (copied)."""
    NY = b_r_bot_t.shape[0]
    NX = b_r_bot_t.shape[1]
    # U faces (j, i) and (j, i-1)
    b = 0.5 * b_r_bot_u[j, i] if i < NX - 1 else b_r_bot_u[j, i]
    if i >= 1:
        b += 0.5 * b_r_bot_u[j, i - 1]
    # V faces (j, i) and (j-1, i)
    b += 0.5 * b_r_bot_v[j, i] if j < NY - 1 else b_r_bot_v[j, i]
    if j >= 1:
        b += 0.5 * b_r_bot_v[j - 1, i]
    b_r_bot_t[j, i] += b
