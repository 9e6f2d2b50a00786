"""Dynamic loss update rule, masked MSE, Adam, cosine schedule, clipping and EMA."""

import math

import numpy as np
import pytest

from emulator.losses import DynamicLoss, masked_channel_mse, weighted_step_loss
from emulator.optim import EMA, Adam, clip_grad_norm, cosine_lr, grad_norm


def test_masked_channel_mse_and_gradient():
    rng = np.random.default_rng(0)
    pred = rng.standard_normal((4, 2, 3, 5))
    target = rng.standard_normal((4, 2, 3, 5))
    wet = (rng.uniform(size=(4, 1, 3, 5)) > 0.3).astype(float)
    ell, _ = masked_channel_mse(pred, target, wet)
    ref = (((pred - target) * wet) ** 2).mean(axis=(1, 2, 3))  # mean over ALL points
    np.testing.assert_allclose(ell, ref, rtol=1e-14)
    w = np.array([1.0, 2.0, 0.5, 3.0])
    loss, ell2, dpred = weighted_step_loss(pred, target, wet, w)
    assert loss == pytest.approx((w * ref).mean(), rel=1e-14)
    # gradient against central differences of the scalar loss
    for idx in [(0, 0, 1, 2), (3, 1, 2, 4), (1, 1, 0, 0)]:
        e = np.zeros_like(pred)
        e[idx] = 1e-6
        fd = (weighted_step_loss(pred + e, target, wet, w)[0]
              - weighted_step_loss(pred - e, target, wet, w)[0]) / 2e-6
        assert fd == pytest.approx(dpred[idx], rel=1e-7, abs=1e-12)


def test_dynamic_loss_update_rule():
    """t_v = mean_h 1/l, clamped to [m, limit m], then s <- (24 s + t)/25."""
    dl = DynamicLoss(3, limit=20.0, window=25)
    ell = np.array([0.5, 0.01, 0.0,    # output time 1 (channel 2 has zero loss)
                    0.25, 0.02, 4.0])  # output time 2
    t_raw = np.array([(2 + 4) / 2, (100 + 50) / 2, (1e8 + 0.25) / 2])
    m = t_raw.min()
    t = np.clip(t_raw, m, 20 * m)
    np.testing.assert_allclose(dl.targets(ell), t, rtol=1e-15)
    np.testing.assert_allclose(t, [3.0, 60.0, 60.0])
    dl.update(ell)
    np.testing.assert_allclose(dl.scale, (24 * 1.0 + t) / 25, rtol=1e-15)
    s1 = dl.scale.copy()
    ell2 = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    dl.update(ell2)
    np.testing.assert_allclose(dl.scale, (24 * s1 + 1.0) / 25, rtol=1e-15)
    # weights of the 2P output channels: time-major tiling
    np.testing.assert_allclose(dl.weights(), np.tile(dl.scale, 2))
    # converges to the clamped targets under a stationary loss
    for _ in range(2000):
        dl.update(ell)
    np.testing.assert_allclose(dl.scale, t, rtol=1e-12)
    assert dl.scale.max() / dl.scale.min() <= 20 + 1e-9
    # disabled: plain MSE, the weights never move
    off = DynamicLoss(3, enabled=False)
    off.update(ell)
    np.testing.assert_array_equal(off.scale, 1.0)
    # a non-finite loss leaves the weights alone
    before = dl.scale.copy()
    dl.update(np.array([np.nan, 1, 1, 1, 1, 1.0]))
    np.testing.assert_array_equal(dl.scale, before)
    with pytest.raises(ValueError, match="limit=0.5"):
        DynamicLoss(3, limit=0.5)
    with pytest.raises(ValueError, match="not a multiple of n_vars=3"):
        dl.targets(np.ones(4))


def test_adam_matches_reference_formula():
    p = {"a": np.array([1.0, -2.0, 0.5])}
    opt = Adam(p, lr=0.1, betas=(0.9, 0.999), eps=1e-8)
    g1, g2 = np.array([0.3, -1.0, 2.0]), np.array([-0.1, 0.5, 1.0])
    x = np.array([1.0, -2.0, 0.5])
    m = v = 0
    for t, g in enumerate((g1, g2), start=1):
        opt.step({"a": g})
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        x = x - 0.1 / (1 - 0.9 ** t) * m / (np.sqrt(v) / math.sqrt(1 - 0.999 ** t) + 1e-8)
        np.testing.assert_allclose(p["a"], x, rtol=1e-14)


def test_adam_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x0 = rng.standard_normal(5)
    p = {"a": x0.copy()}
    opt = Adam(p, lr=0.01)
    tp = torch.tensor(x0.copy(), requires_grad=True)
    topt = torch.optim.Adam([tp], lr=0.01)
    for _ in range(5):
        g = rng.standard_normal(5)
        opt.step({"a": g})
        tp.grad = torch.tensor(g)
        topt.step()
    np.testing.assert_allclose(p["a"], tp.detach().numpy(), rtol=1e-13)


def test_cosine_schedule():
    assert cosine_lr(0, 100, 1.0) == pytest.approx(1.0)
    assert cosine_lr(50, 100, 1.0, 0.1) == pytest.approx(0.55)
    assert cosine_lr(100, 100, 1.0, 0.1) == pytest.approx(0.1)
    assert cosine_lr(250, 100, 1.0, 0.1) == pytest.approx(0.1)
    assert cosine_lr(0, 100, 1.0, warmup=4) == pytest.approx(0.25)
    assert cosine_lr(4, 100, 1.0, warmup=4) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="total_steps=0"):
        cosine_lr(0, 0, 1.0)


def test_clip_grad_norm():
    g = {"a": np.array([3.0, 0.0]), "b": np.array([[4.0]])}
    assert grad_norm(g) == pytest.approx(5.0)
    n = clip_grad_norm(g, 1.0)
    assert n == pytest.approx(5.0)
    assert grad_norm(g) == pytest.approx(1.0, rel=1e-6)
    g2 = {"a": np.array([0.3, 0.4])}
    clip_grad_norm(g2, 1.0)
    np.testing.assert_array_equal(g2["a"], [0.3, 0.4])  # below the threshold: untouched
    g3 = {"a": np.array([np.inf, 1.0])}
    assert not math.isfinite(clip_grad_norm(g3, 1.0))
    np.testing.assert_array_equal(g3["a"], [np.inf, 1.0])


def test_ema_warmup_and_decay():
    p = {"w": np.array([0.0])}
    ema = EMA(p, decay=0.999)
    values = [1.0, 2.0, 3.0]
    e = 0.0
    for n, v in enumerate(values):
        p["w"][...] = v
        ema.update(p)
        d = min(0.999, (1 + n) / (10 + n))
        e = d * e + (1 - d) * v
        assert ema.shadow["w"][0] == pytest.approx(e, rel=1e-14)
    q = {"w": np.array([9.0])}
    ema.copy_to(q)
    assert q["w"][0] == pytest.approx(e)
