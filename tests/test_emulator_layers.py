"""Layers of the emulator: forward against direct formulas, backward against central
finite differences in float64 (relative error <= 1e-6), Numba kernels against the
plain array-module reference."""

import numpy as np
import pytest
from emulator_helpers import gradcheck, layer_runner

from emulator.backend import get_backend
from emulator.layers import AvgPool2, CappedGELU, Conv1x1, Conv3x3, Norm, NormGELU, PeriodicUpsample2

TOL = 1e-6
F64 = dict(dtype=np.float64)


def direct_conv3x3(x, w, b, d):
    """Reference: explicit padding (periodic x, zero y) and a loop over taps."""
    C, B, H, W = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (0, 0), (d, d)), mode="wrap")
    xp = np.pad(xp, ((0, 0), (0, 0), (d, d), (0, 0)))
    y = np.zeros((w.shape[0], B, H, W)) + b[:, None, None, None]
    for ky in range(3):
        for kx in range(3):
            patch = xp[:, :, ky * d:ky * d + H, kx * d:kx * d + W]
            y += np.einsum("oc,cbhw->obhw", w[:, :, ky, kx], patch)
    return y


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
@pytest.mark.parametrize("dil", [1, 2, 3, 9])
def test_conv3x3_forward_matches_direct(backend, dil):
    rng = np.random.default_rng(1)
    layer = Conv3x3(3, 4, dil, rng=rng, backend=backend, **F64)
    x = rng.standard_normal((3, 2, 5, 8))
    y, _ = layer.forward(x)
    ref = direct_conv3x3(x, layer.params["weight"], layer.params["bias"], dil)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("algo", ["im2col", "winograd"])
@pytest.mark.parametrize("dil", [1, 2, 4])
def test_conv3x3_backward_fd(dil, algo):
    rng = np.random.default_rng(2)
    layer = Conv3x3(3, 5, dil, rng=rng, algo=algo, **F64)
    x = rng.standard_normal((3, 2, 6, 8))
    r = rng.standard_normal((5, 2, 6, 8))
    worst, rep = gradcheck(layer_runner(layer, r), x, layer.params, rng)
    assert worst <= TOL, rep


@pytest.mark.parametrize("H,W,dil", [(6, 8, 1), (7, 9, 1), (5, 8, 2), (9, 12, 3), (3, 10, 5)])
def test_winograd_equals_im2col(H, W, dil):
    """Winograd F(2x2,3x3) on the phase sub-grids (odd sizes, partial tiles) = im2col."""
    rng = np.random.default_rng(12)
    a = Conv3x3(3, 4, dil, rng=np.random.default_rng(1), algo="im2col", **F64)
    b = Conv3x3(3, 4, dil, rng=np.random.default_rng(1), algo="winograd", **F64)
    x = rng.standard_normal((3, 2, H, W))
    dy = rng.standard_normal((4, 2, H, W))
    ya, ca = a.forward(x)
    yb, cb = b.forward(x)
    np.testing.assert_allclose(yb, ya, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(b.backward(dy, cb), a.backward(dy, ca), rtol=1e-13, atol=1e-13)
    for k in ("weight", "bias"):
        np.testing.assert_allclose(b.grads[k], a.grads[k], rtol=1e-13, atol=1e-12)
    # float32: same answer to single-precision round-off
    c = Conv3x3(3, 4, dil, rng=np.random.default_rng(1), algo="winograd")
    y32, _ = c.forward(x.astype(np.float32))
    np.testing.assert_allclose(y32, ya, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="dilation 2 to divide the grid width W=7"):
        Conv3x3(1, 1, 2, rng=rng, algo="winograd").forward(np.zeros((1, 1, 4, 7), np.float32))


def test_conv3x3_periodic_in_x_zero_in_y():
    """A shifted input in x gives a shifted output (periodicity); a shift in y does not."""
    rng = np.random.default_rng(3)
    layer = Conv3x3(2, 2, 2, rng=rng, **F64)
    x = rng.standard_normal((2, 1, 6, 8))
    y, _ = layer.forward(x)
    ys, _ = layer.forward(np.roll(x, 3, axis=-1))
    np.testing.assert_allclose(ys, np.roll(y, 3, axis=-1), atol=1e-13)
    yy, _ = layer.forward(np.roll(x, 1, axis=-2))
    assert np.abs(yy - np.roll(y, 1, axis=-2)).max() > 1e-3


def test_conv1x1_backward_fd():
    rng = np.random.default_rng(4)
    layer = Conv1x1(4, 3, rng=rng, **F64)
    x = rng.standard_normal((4, 2, 3, 4))
    r = rng.standard_normal((3, 2, 3, 4))
    y, _ = layer.forward(x)
    w = layer.params["weight"][:, :, 0, 0]
    np.testing.assert_allclose(y, np.einsum("oc,cbhw->obhw", w, x)
                               + layer.params["bias"][:, None, None, None], atol=1e-13)
    worst, rep = gradcheck(layer_runner(layer, r), x, layer.params, rng)
    assert worst <= TOL, rep


@pytest.mark.parametrize("kind,affine,train", [("instance", False, True), ("instance", True, True),
                                               ("batch", True, True), ("batch", True, False)])
def test_norm_backward_fd(kind, affine, train):
    rng = np.random.default_rng(5)
    layer = Norm(kind, 3, affine=affine, **F64)
    if affine:
        layer.params["weight"][...] = rng.uniform(0.5, 1.5, 3)
        layer.params["bias"][...] = rng.standard_normal(3)
    if kind == "batch":
        layer.buffers["running_mean"][...] = rng.standard_normal(3)
        layer.buffers["running_var"][...] = rng.uniform(0.5, 2, 3)
    x = rng.standard_normal((3, 2, 4, 5)) * 2 + 1
    r = rng.standard_normal((3, 2, 4, 5))
    worst, rep = gradcheck(layer_runner(layer, r, train=train, update_stats=False), x,
                           layer.params, rng)
    assert worst <= TOL, rep


@pytest.mark.parametrize("kind,affine,train", [("instance", False, True), ("batch", True, True),
                                               ("batch", True, False), ("instance", True, True)])
def test_norm_gelu_fused_equals_composition_and_fd(kind, affine, train):
    """The fused Norm + capped GELU equals Norm followed by CappedGELU, with exact gradients."""
    rng = np.random.default_rng(13)
    fused = NormGELU(kind, 3, cap=2.0, affine=affine, **F64)
    norm = Norm(kind, 3, affine=affine, **F64)
    act = CappedGELU(2.0, **F64)
    if affine:
        for m in (fused, norm):
            m.params["weight"][...] = [0.7, 1.3, 1.1]
            m.params["bias"][...] = [0.2, -0.4, 1.5]
    if kind == "batch":
        for m in (fused, norm):
            m.buffers["running_mean"][...] = [0.1, -0.2, 0.3]
            m.buffers["running_var"][...] = [1.5, 0.7, 2.0]
    x = rng.standard_normal((3, 2, 4, 5)) * 2 + 0.5  # a low cap (2) so that some values are capped
    r = rng.standard_normal(x.shape)
    y, cache = fused.forward(x, train=train)
    h, nc = norm.forward(x, train=train)
    z, ac = act.forward(h)
    np.testing.assert_allclose(y, z, rtol=1e-13, atol=1e-14)
    assert (z == 2.0).any()
    dx = fused.backward(r, cache)
    dref = norm.backward(act.backward(r, ac), nc)
    np.testing.assert_allclose(dx, dref, rtol=1e-11, atol=1e-13)
    if kind == "batch" and train:  # same running statistics
        np.testing.assert_allclose(fused.buffers["running_var"], norm.buffers["running_var"], rtol=1e-12)
    worst, rep = gradcheck(layer_runner(fused, r, train=train, update_stats=False), x, fused.params, rng)
    assert worst <= TOL, rep
    # float32 fast path (vectorised erf and Gaussian): close to float64
    f32 = NormGELU(kind, 3, cap=2.0, affine=affine)
    f32.load_state_dict(fused.state_dict())
    y32, c32 = f32.forward(x.astype(np.float32), train=train, update_stats=False)
    np.testing.assert_allclose(y32, y, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(f32.backward(r.astype(np.float32), c32), dx, rtol=1e-4, atol=1e-4)


def test_norm_statistics():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 2, 4, 5)) * 3 + 2
    inst = Norm("instance", 3, **F64)
    y, _ = inst.forward(x)
    np.testing.assert_allclose(y.mean(axis=(2, 3)), 0, atol=1e-13)
    np.testing.assert_allclose(y.var(axis=(2, 3)), 1 / (1 + 1e-5 / x.var(axis=(2, 3))), rtol=1e-10)
    bn = Norm("batch", 3, momentum=0.1, **F64)
    y, _ = bn.forward(x, train=True)
    np.testing.assert_allclose(y.mean(axis=(1, 2, 3)), 0, atol=1e-13)
    n = 2 * 4 * 5
    np.testing.assert_allclose(bn.buffers["running_mean"], 0.1 * x.mean(axis=(1, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(bn.buffers["running_var"],
                               0.9 + 0.1 * x.var(axis=(1, 2, 3)) * n / (n - 1), rtol=1e-12)
    ye, _ = bn.forward(x, train=False)
    ref = (x - bn.buffers["running_mean"][:, None, None, None]) / \
        np.sqrt(bn.buffers["running_var"][:, None, None, None] + 1e-5)
    np.testing.assert_allclose(ye, ref, rtol=1e-12)


def test_capped_gelu_values_and_fd():
    from scipy.special import erf
    rng = np.random.default_rng(7)
    layer = CappedGELU(10.0, **F64)
    x = np.concatenate([rng.standard_normal(40) * 3, [11.0, 12.5, 30.0, -8.0]]).reshape(4, 1, 1, 11)
    y, _ = layer.forward(x)
    ref = np.minimum(0.5 * x * (1 + erf(x / np.sqrt(2))), 10.0)
    np.testing.assert_allclose(y, ref, rtol=1e-14, atol=1e-15)
    r = rng.standard_normal(x.shape)
    worst, rep = gradcheck(layer_runner(layer, r), x, {}, rng)
    assert worst <= TOL, rep
    # above the cap the gradient is exactly zero
    _, cache = layer.forward(x)
    dx = layer.backward(np.ones_like(x), cache)
    assert np.all(dx[x > 10.5] == 0)


def test_avgpool_and_fd():
    rng = np.random.default_rng(8)
    layer = AvgPool2(**F64)
    x = rng.standard_normal((2, 2, 4, 6))
    y, _ = layer.forward(x)
    np.testing.assert_allclose(y[:, :, 1, 2], x[:, :, 2:4, 4:6].mean(axis=(2, 3)), rtol=1e-14)
    r = rng.standard_normal(y.shape)
    worst, rep = gradcheck(layer_runner(layer, r), x, {}, rng)
    assert worst <= TOL, rep
    with pytest.raises(ValueError, match="even"):
        layer.forward(rng.standard_normal((1, 1, 3, 4)))


def test_periodic_upsample_formula_and_fd():
    rng = np.random.default_rng(9)
    layer = PeriodicUpsample2(**F64)
    x = rng.standard_normal((2, 1, 3, 5))
    y, _ = layer.forward(x)
    H, W = 3, 5
    # explicit bilinear interpolation, align_corners=False, source = (o + 0.5)/2 - 0.5
    for o_h in range(2 * H):
        sh = max((o_h + 0.5) / 2 - 0.5, 0.0)
        h0 = int(np.floor(sh))
        fh = sh - h0
        h1 = min(h0 + 1, H - 1)
        for o_w in range(2 * W):
            sw = (o_w + 0.5) / 2 - 0.5  # periodic: no clamping
            w0 = int(np.floor(sw))
            fw = sw - w0
            v = ((1 - fh) * ((1 - fw) * x[..., h0, w0 % W] + fw * x[..., h0, (w0 + 1) % W])
                 + fh * ((1 - fw) * x[..., h1, w0 % W] + fw * x[..., h1, (w0 + 1) % W]))
            np.testing.assert_allclose(y[..., o_h, o_w], v, rtol=1e-13, atol=1e-14)
    r = rng.standard_normal(y.shape)
    worst, rep = gradcheck(layer_runner(layer, r), x, {}, rng)
    assert worst <= TOL, rep


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numba_kernels_match_reference(dtype):
    """The Numba primitives give the same numbers as the plain array-module code."""
    rng = np.random.default_rng(10)
    cpu, ref = get_backend("cpu"), get_backend("numpy")
    x = rng.standard_normal((3, 2, 5, 8)).astype(dtype)
    for d in (1, 2, 3, 7, 8, 11):
        c1, c2 = cpu.im2col(x, d), ref.im2col(x, d)
        np.testing.assert_array_equal(c1, c2)
        g = rng.standard_normal(c1.shape).astype(dtype)
        tol = 1e-6 if dtype == np.float32 else 1e-14
        np.testing.assert_allclose(cpu.col2im(g, x.shape, d), ref.col2im(g, x.shape, d),
                                   rtol=tol, atol=tol)
        # adjointness: <im2col(x), g> = <x, col2im(g)>
        lhs = float((c1.astype(np.float64) * g).sum())
        rhs = float((x.astype(np.float64) * cpu.col2im(g, x.shape, d)).sum())
        assert abs(lhs - rhs) <= 1e-5 * max(abs(lhs), 1)
    z = (rng.standard_normal((4, 50)) * 5).astype(dtype)
    tol = 2e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(cpu.gelu(z, 10.0), ref.gelu(z, 10.0), rtol=tol, atol=tol)
    dy = rng.standard_normal(z.shape).astype(dtype)
    np.testing.assert_allclose(cpu.gelu_backward(z, dy, 10.0), ref.gelu_backward(z, dy, 10.0),
                               rtol=tol, atol=tol)
    m1, v1, r1 = cpu.row_stats(z, 1e-5)
    m2, v2, r2 = ref.row_stats(z, 1e-5)
    np.testing.assert_allclose(m1, m2, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(v1, v2, rtol=1e-12)
    xh1 = cpu.row_normalize(z, m1, r1)
    np.testing.assert_allclose(xh1, ref.row_normalize(z, m2, r2), rtol=tol, atol=tol)
    a = cpu.row_normalize_backward(dy, xh1, r1)
    b = ref.row_normalize_backward(dy, xh1, r1)
    np.testing.assert_allclose(a[0], b[0], rtol=20 * tol, atol=20 * tol)
    np.testing.assert_allclose(a[1], b[1], rtol=1e-12, atol=1e-12)


def test_bad_dilation_and_backend_errors():
    rng = np.random.default_rng(11)
    with pytest.raises(ValueError, match="dilation=0"):
        Conv3x3(1, 1, 0, rng=rng, **F64)
    with pytest.raises(ValueError, match="dilation=0"):
        get_backend("cpu").im2col(np.zeros((1, 1, 4, 8)), 0)
    with pytest.raises(ValueError, match="algo='fft'"):
        Conv3x3(1, 1, 1, rng=rng, algo="fft")
    with pytest.raises(ValueError, match="backend='tpu'"):
        get_backend("tpu")
    with pytest.raises(ValueError, match="norm='group'"):
        Norm("group", 3)
