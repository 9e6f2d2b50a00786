"""The whole U-Net and a 3-step rollout loss against central finite differences (float64),
activation recomputation against storing everything, and (when PyTorch is installed)
parity with a PyTorch implementation of the same architecture."""

import numpy as np
import pytest
from emulator_helpers import assert_zero_grads, fd_params, gradcheck, synthetic_dataset

from emulator.data import build_spec, prepare, split_by_years
from emulator.model import Emulator
from emulator.training import TrainConfig, Trainer
from emulator.unet import UNet, UNetConfig

TOL = 1e-6


def small_net(norm="instance", stem=0, widths=(3, 4), dilations=(1, 2), cin=3, cout=2, seed=0):
    cfg = UNetConfig(cin, cout, widths=widths, dilations=dilations, norm=norm, stem=stem)
    return UNet(cfg, dtype=np.float64, seed=seed)


def net_runner(net, r, mask=None, store="all", train=True):
    def run(x):
        net.zero_grad()
        y, tape = net.forward(x.copy(), mask=mask, train=train, store=store, update_stats=False)
        L = float((y * r).sum())
        dx = net.backward(r.copy(), tape)
        return L, dx, {k: v.copy() for k, v in net.gradients().items()}
    return run


@pytest.mark.parametrize("norm,stem,H", [("instance", 0, 8), ("batch", 2, 6)])
def test_unet_backward_fd(norm, stem, H):
    """All parameters and the input; H = 6 exercises the zero-row padding in y."""
    rng = np.random.default_rng(0)
    net = small_net(norm=norm, stem=stem)
    x = rng.standard_normal((3, 2, H, 16))
    r = rng.standard_normal((2, 2, H, 16))
    mask = (rng.uniform(size=(2, 1, H, 16)) > 0.2).astype(np.float64)
    fd, zero = fd_params(net)
    worst, rep = gradcheck(net_runner(net, r, mask), x, fd, rng, n_dirs=1, n_coords=2)
    assert worst <= TOL, sorted(rep.items(), key=lambda kv: -kv[1])[:5]
    assert_zero_grads(net, zero, np.abs(net.gradients()["head.bias"]).max())


def test_unet_structure_and_masking():
    net = UNet(UNetConfig(5, 4, widths=(8, 12, 16), dilations=(1, 2, 4)), dtype=np.float64)
    names = net.parameters()
    # Samudra's sequence: 3 down blocks, bottleneck, 3 up blocks (the last is the final block)
    for blk in ("down0", "down1", "down2", "mid", "up0", "up1", "up2"):
        assert f"{blk}.conv1.weight" in names
    assert names["down0.conv1.weight"].shape == (10, 5, 3, 3)   # expansion 2 of C_in
    assert names["up0.conv2.weight"].shape == (32, 32, 3, 3)
    assert names["up0.proj.weight"].shape == (12, 32, 1, 1)     # 16 -> 12
    assert net.up[2].conv1.dilation == 2                        # final block: d_1
    assert net.up[0].conv1.dilation == 4 and net.mid.conv1.dilation == 4
    assert "down0.skip.weight" in names and "mid.skip.weight" not in names
    rng = np.random.default_rng(1)
    mask = np.ones((4, 1, 8, 32))
    mask[:, :, :2] = 0
    y, _ = net.forward(rng.standard_normal((5, 3, 8, 32)), mask=mask, store="none")
    assert y.shape == (4, 3, 8, 32) and np.all(y[:, :, :2] == 0) and np.all(y[:, :, 2:] != 0)
    with pytest.raises(ValueError, match="divisible by 2\\*\\*depth=8"):
        net.forward(np.zeros((5, 1, 8, 12)))
    with pytest.raises(ValueError, match="input has 4 channels"):
        net.forward(np.zeros((4, 1, 8, 32)))


def test_recompute_equals_store_all():
    rng = np.random.default_rng(2)
    net = small_net(norm="batch")
    x = rng.standard_normal((3, 2, 8, 16))
    r = rng.standard_normal((2, 2, 8, 16))
    L1, dx1, g1 = net_runner(net, r, store="all")(x)
    L2, dx2, g2 = net_runner(net, r, store="inputs")(x)
    assert L1 == L2
    np.testing.assert_array_equal(dx1, dx2)
    for k in g1:
        np.testing.assert_array_equal(g1[k], g2[k])


def test_cpu_and_numpy_backends_agree():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 2, 8, 16))
    a = small_net()
    b = UNet(a.config, dtype=np.float64, seed=0, backend="numpy")
    ya, ta = a.forward(x)
    yb, tb = b.forward(x)
    np.testing.assert_allclose(ya, yb, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(a.backward(ya, ta), b.backward(yb, tb), rtol=1e-10, atol=1e-12)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    ds = synthetic_dataset(tmp_path_factory.mktemp("syn"), years=1.0, nx=16, ny=6, nz=2)
    split = split_by_years(ds.sizes["time"], 73, 0.6, 0.1, 0.3)
    spec = build_spec(ds, split.train)
    return ds, split, spec, prepare(ds, spec)


@pytest.mark.parametrize("residual", [False, True])
def test_rollout_loss_fd(tiny_data, tmp_path, residual):
    """3-step rollout with backpropagation through time and dynamic weights, float64."""
    ds, split, spec, data = tiny_data
    net = UNet(UNetConfig(spec.in_channels, spec.out_channels, widths=(3, 4), dilations=(1, 2)),
               dtype=np.float64, seed=1)
    emu = Emulator(net, spec, data.wet, data.static, residual=residual)
    tr = Trainer(emu, data, split, TrainConfig(rollout_steps=3, batch_size=2), str(tmp_path))
    rng = np.random.default_rng(4)
    tr.dloss.scale = rng.uniform(0.5, 3.0, spec.n_prognostic)
    starts = tr.train_starts[:2]
    x0 = tr._pair(starts)

    def run(x):
        net.zero_grad()
        L, _, dx = tr.rollout_loss(starts, train=True, backward=True, x0=x.copy())
        return L, dx, {k: v.copy() for k, v in net.gradients().items()}

    # check every other parameter array to bound the run time; the input covers the rest
    params, zero = fd_params(net, every=2)
    worst, rep = gradcheck(run, x0, params, rng, n_dirs=1, n_coords=1)
    assert worst <= TOL, sorted(rep.items(), key=lambda kv: -kv[1])[:5]
    assert len(params) >= 10
    assert_zero_grads(net, zero, np.abs(net.gradients()["head.bias"]).max())


def _torch_reference(net, x, mask):
    """The same architecture in PyTorch with the same weights; returns (y, dx, grads)."""
    import torch
    import torch.nn.functional as F

    torch.set_default_dtype(torch.float64)
    P = {k: torch.tensor(v, requires_grad=True) for k, v in net.parameters().items()}
    cfg = net.config

    def conv3(h, pre, d):
        h = F.pad(h, (d, d, 0, 0), mode="circular")
        h = F.pad(h, (0, 0, d, d))
        return F.conv2d(h, P[pre + ".weight"], P[pre + ".bias"], dilation=d)

    def conv1(h, pre):
        return F.conv2d(h, P[pre + ".weight"], P[pre + ".bias"])

    def act(h):
        return torch.clamp(F.gelu(h), max=cfg.cap)

    def block(h, pre, blk):
        d = blk.conv1.dilation
        z = act(F.instance_norm(conv3(h, pre + ".conv1", d)))
        z = act(F.instance_norm(conv3(z, pre + ".conv2", d)))
        s = h if blk.skip is None else conv1(h, pre + ".skip")
        return conv1(z, pre + ".proj") + s

    def up(h):
        W = h.shape[-1]
        p = F.pad(h, (1, 1, 0, 0), mode="circular")
        u = F.interpolate(p, scale_factor=2, mode="bilinear", align_corners=False)
        return u[..., 2:2 + 2 * W]

    xt = torch.tensor(x.transpose(1, 0, 2, 3).copy(), requires_grad=True)
    h = xt
    skips = []
    for i, blk in enumerate(net.down):
        h = block(h, f"down{i}", blk)
        skips.append(h)
        h = F.avg_pool2d(h, 2)
    h = block(h, "mid", net.mid)
    for j, blk in enumerate(net.up):
        h = up(h) + skips.pop()
        h = block(h, f"up{j}", blk)
    y = conv3(h, "head", 1) * torch.tensor(mask.transpose(1, 0, 2, 3))
    r = torch.tensor(np.random.default_rng(5).standard_normal(tuple(y.shape)))
    (y * r).sum().backward()
    torch.set_default_dtype(torch.float32)
    return (y.detach().numpy().transpose(1, 0, 2, 3), r.numpy().transpose(1, 0, 2, 3),
            xt.grad.numpy().transpose(1, 0, 2, 3), {k: v.grad.numpy() for k, v in P.items()})


def test_unet_matches_pytorch():
    pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    net = UNet(UNetConfig(4, 3, widths=(5, 6, 7), dilations=(1, 2, 4)), dtype=np.float64, seed=3)
    x = rng.standard_normal((4, 2, 16, 32))
    mask = (rng.uniform(size=(3, 1, 16, 32)) > 0.1).astype(np.float64)
    yt, r, dxt, gt = _torch_reference(net, x, mask)
    y, tape = net.forward(x, mask=mask)
    np.testing.assert_allclose(y, yt, rtol=1e-11, atol=1e-12)
    net.zero_grad()
    dx = net.backward(r, tape)
    np.testing.assert_allclose(dx, dxt, rtol=1e-10, atol=1e-12)
    for k, g in net.gradients().items():
        np.testing.assert_allclose(g, gt[k], rtol=1e-9, atol=1e-11, err_msg=k)
