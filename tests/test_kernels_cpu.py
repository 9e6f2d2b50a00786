"""Every kernel's CPU launcher against its plain NumPy reference on random masked input.

The walk covers every kernel in ``REGISTRY`` that has a ``reference=`` (forward kernels of
``ocean_core.kernels`` and tangent/adjoint kernels of ``adjoint.kernels`` alike); kernels
without one are PTX-compiled and simulator-checked only (``test_kernels_ptx.py``,
``test_kernels_cudasim.py``).  Inputs: ``tests/kernel_cases.py`` (tiny grid with land,
full and partial-depth columns; random state zero on land; outputs NaN-filled so that
every point must be written).
"""

from __future__ import annotations

import numpy as np
import pytest

import kernel_cases as kc

ALL = kc.all_kernels()
WITH_REF = [k for k in ALL if k.reference is not None]

#: max|cpu - ref| <= TOL * max|ref| per output.  The kernels and references evaluate the
#: same expressions in the same order, so most agree exactly; 1e-13 leaves room for a
#: reference that sums or factors differently (a few ulps of the field maximum).
TOL = 1e-13
#: kernel name -> (tolerance, reason) where a kernel needs more
TOL_OVERRIDE: dict[str, tuple[float, str]] = {}


@pytest.fixture(scope="module")
def grid():
    return kc.tiny_grid()


def test_walk_finds_all_kernels():
    """The walk imports every kernel module; every registered kernel can get test inputs."""
    mods = kc.iter_kernel_modules()
    assert "ocean_core.kernels.momentum" in mods and "ocean_core.kernels.tracers" in mods
    names = {k.name for k in ALL}
    for expected in ("coriolis_metric", "momentum_advection", "lateral_friction", "vertical_mixing",
                     "eke_update", "velocity_update", "equation_of_state"):
        assert expected in names
    forward = [k for k in ALL if k.kind == "forward"]
    missing_ref = [k.name for k in forward if k.reference is None]
    assert not missing_ref, f"forward kernels without a NumPy reference: {missing_ref}"
    g = kc.tiny_grid()
    for k in ALL:
        case = kc.make_case(k, g)  # raises UnknownArgument for a name it cannot build
        assert set(case) == set(k.args)


@pytest.mark.parametrize("k", WITH_REF, ids=lambda k: k.name)
def test_cpu_matches_reference(k, grid):
    case = kc.make_case(k, grid)
    before = kc.copy_case(case)
    expected = kc.reference_result(k, case)
    k(*kc.args_of(k, case), backend="cpu")
    # inputs are read only (gather form: a kernel writes its outputs only)
    for a in k.inputs:
        if isinstance(case[a], np.ndarray):
            assert np.array_equal(case[a], before[a], equal_nan=True), f"{k.name} modified its input {a!r}"
    tol, _why = TOL_OVERRIDE.get(k.name, (TOL, ""))
    for o in kc.compared_outputs(k):
        got, exp = case[o], expected[o]
        assert got.shape == exp.shape, (o, got.shape, exp.shape)
        assert np.isfinite(exp).all(), f"{k.name}: reference output {o} is not finite (bad test input?)"
        nbad = int((~np.isfinite(got)).sum())
        assert nbad == 0, f"{k.name}.{o}: {nbad} points not written or not finite"
        scale = float(np.abs(exp).max())
        assert scale > 0.0, f"{k.name}.{o}: reference is identically zero on the test input (vacuous test)"
        err = np.abs(got - exp)
        idx = tuple(int(x) for x in np.unravel_index(int(np.argmax(err)), err.shape))
        assert err[idx] <= tol * scale, (
            f"{k.name}.{o}: max|cpu - ref| = {err[idx]:.3e} at {idx} (cpu={got[idx]!r}, ref={exp[idx]!r}) "
            f"> {tol:g} * max|ref| = {tol * scale:.3e}")


def test_cpu_bitwise_independent_of_thread_count(tmp_path):
    """Bitwise reproducible on the CPU at any thread count: every kernel (with or without a
    reference) gives the same bits here (NUMBA_NUM_THREADS=1 in CI) and in a child process
    with another thread count.  Gather-form kernels cannot differ; a scatter/accumulate race
    or a kernel reading its own outputs of other points can."""
    import numba
    here = int(numba.config.NUMBA_NUM_THREADS)
    other = 2 if here != 2 else 1
    cases, results, errors = kc.run_all_cpu(ALL)
    child = kc.run_in_subprocess(cases, tmp_path, "cpu", env={"NUMBA_NUM_THREADS": other,
                                                             "NUMBA_ENABLE_CUDASIM": None, "NUMBA_DISABLE_JIT": None})
    assert child["rc"] == 0, child["log"]
    assert child["info"]["num_threads"] == other and not child["info"]["enable_cudasim"]
    failures = [m for k in ALL if k.name not in errors and (m := kc.bitwise_mismatch(k, results[k.name], child))]
    assert not failures, f"{here} vs {other} threads:\n" + "\n".join(failures)
    assert len(results) >= len(WITH_REF)


FUSED = [k for k in ALL if k.kind == "fused"]


def test_fused_kernels_exist():
    names = {k.name for k in FUSED}
    assert {"momentum_tendency", "friction_with_dissipation", "tracer_advection_ab2"} <= names


@pytest.mark.parametrize("k", FUSED, ids=lambda k: k.name)
def test_fused_kernel_bitwise_equals_its_parts(k, grid):
    """A fused launch gives exactly the bits of its parts launched one after another
    (the parts read each other's outputs at the same point only)."""
    case = kc.make_case(k, grid)
    fused = kc.copy_case(case)
    k(*kc.args_of(k, fused), backend="cpu")
    seq = kc.copy_case(case)
    rng = np.random.default_rng(0)
    for a in k.internal:  # kept in registers by the fused launch; the parts store them
        seq[a] = kc.build_argument(a, grid, rng, k.name, None)
        seq[a][...] = np.nan
    for part, ren in k.parts:
        part(*[seq[ren.get(a, a)] for a in part.args], backend="cpu")
    for o in k.outputs:
        assert np.isfinite(fused[o]).all(), f"{k.name}.{o}: points not written"
        assert np.array_equal(fused[o], seq[o]), f"{k.name}.{o}: fused launch differs from its parts"


def test_fuse_rejects_bad_combinations():
    from ocean_core.kernels import eke, friction, tracers
    from ocean_core.kernels.framework import fuse
    with pytest.raises(ValueError, match="is in"):
        fuse("bad_modules", friction.lateral_friction, eke.velocity_on_wgrid)
    with pytest.raises(ValueError, match="share a '3d' or '2d' space"):
        fuse("bad_spaces", tracers.tracer_advection, tracers.vertical_mixing)
    # tracer_ab2 then tracer_advection: the second part writes dtemp, which the first reads
    with pytest.raises(ValueError, match="writes 'dtemp'"):
        fuse("bad_order", (tracers.tracer_ab2, {"dtemp_now": "dtemp"}), tracers.tracer_advection)
    with pytest.raises(ValueError, match="at least 2 parts"):
        fuse("bad_one", tracers.tracer_advection)
    # internal outputs: must be outputs, must be read by a later part, need a body of the right signature
    from ocean_core.kernels import momentum as mom
    parts = (mom.coriolis_metric, mom.momentum_advection, mom.explicit_tendency)
    with pytest.raises(ValueError, match=r"internal=\['u'\] are not outputs"):
        fuse("bad_internal", *parts, internal=("u",), body=mom._momentum_tendency)
    with pytest.raises(ValueError, match="need a hand-written body"):
        fuse("bad_nobody", *parts, internal=("du_cor",))
    with pytest.raises(ValueError, match="'du' is read by no part"):
        fuse("bad_unread", *parts, internal=("du",), body=mom._momentum_tendency)
    with pytest.raises(TypeError, match="expected"):
        fuse("bad_signature", *parts, internal=("du_cor", "dv_cor"), body=mom._momentum_tendency)
    from ocean_core.kernels.framework import REGISTRY
    assert not {"bad_internal", "bad_nobody", "bad_unread", "bad_signature"} & set(REGISTRY)


def test_fused_op_checks_its_parts():
    from ocean_core.kernels import friction, momentum
    from ocean_core.ops import FusedOp, KernelOp
    lf = KernelOp(friction.lateral_friction, u="u@tau", v="v@tau")
    fd = KernelOp(friction.friction_dissipation, u="u@tau", v="v@tau")
    with pytest.raises(TypeError, match="expected"):
        FusedOp(friction.friction_with_dissipation, fd, lf)
    with pytest.raises(ValueError, match="maps to"):
        FusedOp(friction.friction_with_dissipation, lf, KernelOp(friction.friction_dissipation, u="u@taum1", v="v@tau"))
    with pytest.raises(TypeError, match="needs a fused kernel"):
        FusedOp(momentum.coriolis_metric, lf)
    op = FusedOp(friction.friction_with_dissipation, lf, fd)
    assert set(op.writes) == set(lf.writes) | set(fd.writes)


def test_split_launchers_call_the_interior_bodies():
    """The interior loop of a split launch calls the interior body (no interior test), the
    halo loop and the GPU the full body; equality of the two is checked bit for bit by the
    CUDA simulator test (full body) against the CPU launcher (interior body)."""
    from ocean_core.kernels.framework import REGISTRY, generate_source
    with_interior = [k for k in REGISTRY.values()
                     if k.split and (k.interior is not None or any(p.interior is not None for p, _ in k.parts))]
    assert {"momentum_tendency", "friction_with_dissipation", "tracer_advection_ab2", "eke_advection_update",
            "eke_fluxes", "dissipation_to_tgrid"} <= {k.name for k in with_interior}
    src = generate_source("ocean_core.kernels.momentum", cuda=False)
    body = src[src.index("def momentum_tendency_cpu"):]
    body = body[:body.index("\n\n")]
    loop = body.index("for _i in range(2, _ni - 2):")
    halo = body.index("for _e in range(_ne):")
    assert "_bi_momentum_tendency(_i" in body[loop:halo] and "_b_momentum_tendency(" not in body[loop:halo]
    assert "_b_momentum_tendency(_i" in body[halo:]
    cuda_src = generate_source("ocean_core.kernels.momentum", cuda=True)
    assert "_bi_" not in cuda_src


def test_interior_body_is_validated():
    from ocean_core.kernels.framework import REGISTRY, device, kernel

    @device
    def wrong(i, j, k, a, c):
        a[k, j, i] = c[k, j, i]

    def body(i, j, k, a, b):
        a[k, j, i] = b[k, j, i]

    with pytest.raises(TypeError, match="interior body wrong has parameters"):
        kernel("3d", outputs=("a",), name="bad_interior_sig", split=True, interior=wrong)(body)

    @device
    def right(i, j, a, b):
        a[j, i] = b[j, i]

    def body2(i, j, a, b):
        a[j, i] = b[j, i]

    with pytest.raises(ValueError, match="interior= needs space='3d'"):
        kernel("2d", outputs=("a",), name="bad_interior_space", interior=right)(body2)
    assert not {"bad_interior_sig", "bad_interior_space"} & set(REGISTRY)
