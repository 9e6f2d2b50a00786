"""The CuPy path equals the NumPy path (float64, 1e-6 relative).

Skipped where ``cupy.is_available()`` is false (no CuPy, no GPU or no driver); never
faked on the CPU.
"""

import numpy as np
import pytest

from emulator.backend import get_backend, gpu_available
from emulator.unet import UNet, UNetConfig

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not gpu_available(), reason="no usable GPU (cupy.is_available())")]

RTOL = 1e-6


def check_close(a_gpu, b_cpu, rtol=RTOL):
    a = get_backend("gpu").to_numpy(a_gpu)
    scale = max(np.abs(b_cpu).max(), 1e-30)
    assert np.abs(a - b_cpu).max() <= rtol * scale


def test_primitives_match():
    gpu, cpu = get_backend("gpu"), get_backend("cpu")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 6, 8))
    xg = gpu.asarray(x)
    for d in (1, 2, 5, 9):
        c = cpu.im2col(x, d)
        check_close(gpu.im2col(xg, d), c)
        g = rng.standard_normal(c.shape)
        check_close(gpu.col2im(gpu.asarray(g), x.shape, d), cpu.col2im(g, x.shape, d))
    z = rng.standard_normal((4, 50)) * 6
    dy = rng.standard_normal(z.shape)
    check_close(gpu.gelu(gpu.asarray(z), 10.0), cpu.gelu(z, 10.0))
    check_close(gpu.gelu_backward(gpu.asarray(z), gpu.asarray(dy), 10.0), cpu.gelu_backward(z, dy, 10.0))


@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_unet_forward_backward_match(norm):
    cfg = UNetConfig(5, 4, widths=(6, 8), dilations=(1, 2), norm=norm, stem=4)
    a = UNet(cfg, dtype=np.float64, seed=1, backend="cpu")
    b = UNet(cfg, dtype=np.float64, seed=1, backend="gpu")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 2, 12, 16))
    mask = (rng.uniform(size=(4, 1, 12, 16)) > 0.2).astype(np.float64)
    bk = get_backend("gpu")
    ya, ta = a.forward(x, mask=mask, store="inputs")
    yb, tb = b.forward(bk.asarray(x), mask=bk.asarray(mask), store="inputs")
    check_close(yb, ya)
    r = rng.standard_normal(ya.shape)
    dxa = a.backward(r, ta)
    dxb = b.backward(bk.asarray(r), tb)
    check_close(dxb, dxa)
    ga = a.gradients()
    for k, g in b.gradients().items():
        check_close(g, ga[k])
