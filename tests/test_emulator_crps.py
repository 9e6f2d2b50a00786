"""Stochastic emulator and ensemble (fair CRPS) training: the loss and its gradient, the noise
inputs, widening a deterministic emulator, the rollout gradient through an ensemble, a short
CRPS training run, and reproducible ensemble members in rollouts."""

import json

import numpy as np
import pytest
from emulator_helpers import fd_params, gradcheck, tiny_case

from emulator import cli
from emulator.losses import crps_step_loss
from emulator.model import Emulator
from emulator.rollout import rollout_normalized
from emulator.training import TrainConfig, Trainer
from emulator.unet import UNet, UNetConfig

TOL = 1e-6


def _crps_direct(ys, t):
    """Fair CRPS per point from its definition (ordered pairs), for comparison."""
    M = len(ys)
    skill = sum(np.abs(y - t) for y in ys) / M
    spread = sum(np.abs(a - b) for a in ys for b in ys) / (2 * M * (M - 1))
    return skill - spread


@pytest.mark.parametrize("M", [2, 3])
def test_crps_value_and_gradient(M):
    rng = np.random.default_rng(0)
    C, B, H, W = 4, 2, 5, 6
    target = rng.standard_normal((C, B, H, W))
    pred = rng.standard_normal((C, M * B, H, W))
    wet = (rng.random((C, 1, H, W)) > 0.3).astype(float)
    w = rng.uniform(0.5, 2.0, C)
    loss, ell, d = crps_step_loss(pred, target, wet, w, M)
    ys = [pred[:, m * B:(m + 1) * B] for m in range(M)]
    ref = (_crps_direct(ys, target) * wet).reshape(C, -1).sum(axis=1) / (B * H * W)
    np.testing.assert_allclose(ell, ref, rtol=1e-13)
    assert loss == pytest.approx(float(np.dot(w, ref) / C), rel=1e-13)
    # central differences (the CRPS is piecewise linear: steps well inside the pieces)
    v = rng.standard_normal(pred.shape)
    eps = 1e-7
    fd = (crps_step_loss(pred + eps * v, target, wet, w, M)[0]
          - crps_step_loss(pred - eps * v, target, wet, w, M)[0]) / (2 * eps)
    assert abs(fd - (d * v).sum()) <= TOL * abs(fd)
    # land gets no gradient; the ensemble spread lowers the loss of a perfect-mean ensemble
    assert np.all(d * (1 - wet) == 0)
    a = np.concatenate([target + 0.3, target - 0.3], axis=1)
    b = np.concatenate([target + 0.3, target + 0.3], axis=1)
    assert crps_step_loss(a, target, 1.0, np.ones(C), 2)[0] < crps_step_loss(b, target, 1.0, np.ones(C), 2)[0]


def test_crps_bad_arguments():
    x = np.zeros((2, 4, 3, 3))
    with pytest.raises(ValueError, match="members=0"):
        crps_step_loss(x, x, 1.0, np.ones(2), 0)
    with pytest.raises(ValueError, match="expected members"):
        crps_step_loss(x, x[:, :1], 1.0, np.ones(2), 2)
    with pytest.raises(ValueError, match="ensemble=1"):
        TrainConfig(loss="crps", ensemble=1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_case(tmp_path_factory.mktemp("crps"))


def _emulator(tiny, noise_channels, dtype=np.float32, seed=0, widths=(8, 16), stem=8):
    _, _, spec, data, _ = tiny
    net = UNet(UNetConfig(spec.in_channels + noise_channels, spec.out_channels, widths=widths,
                          dilations=(1, 2), stem=stem), dtype=dtype, seed=seed)
    return Emulator(net, spec, data.wet, data.static, noise_channels=noise_channels)


def test_noise_inputs(tiny, tmp_path):
    _, _, spec, data, _ = tiny
    emu = _emulator(tiny, 2)
    x = emu.bk.asarray(np.concatenate([data.states[0], data.states[1]])[:, None], dtype=np.float32)
    f = emu.bk.asarray(np.concatenate([data.forcing[0], data.forcing[1]])[:, None], dtype=np.float32)
    z1 = emu.draw_noise(np.random.default_rng(1), 1)
    z2 = emu.draw_noise(np.random.default_rng(2), 1)
    assert z1.shape == (2, 1) + data.states.shape[2:]
    y1 = emu.step(x, f, noise=z1)[0]
    assert np.array_equal(y1, emu.step(x, f, noise=z1)[0])           # same noise, same member
    assert not np.allclose(y1, emu.step(x, f, noise=z2)[0])           # other noise, other member
    assert np.array_equal(emu.step(x, f)[0], emu.step(x, f, noise=0 * z1)[0])  # None = zeros
    with pytest.raises(ValueError, match="noise has shape"):
        emu.step(x, f, noise=z1[:1])
    with pytest.raises(ValueError, match="noise_channels=1"):
        Emulator(emu.unet, spec, data.wet, data.static, noise_channels=1)
    # the noise channels survive a save and load
    emu.save(str(tmp_path / "e.npz"))
    back = Emulator.load(str(tmp_path / "e.npz"))
    assert back.noise_channels == 2
    np.testing.assert_array_equal(back.step(x, f, noise=z1)[0], y1)
    with pytest.raises(ValueError, match="without noise channels"):
        _emulator(tiny, 0).step(x, f, noise=z1)


def test_add_noise_channels(tiny):
    _, _, spec, data, _ = tiny
    emu = _emulator(tiny, 0, dtype=np.float64)
    x = np.concatenate([data.states[3], data.states[4]])[:, None].astype(np.float64)
    f = np.concatenate([data.forcing[3], data.forcing[4]])[:, None].astype(np.float64)
    y0 = emu.step(x, f)[0]
    emu.add_noise_channels(3, scale=0.0)
    assert emu.noise_channels == 3 and emu.unet.config.in_channels == spec.in_channels + 3
    z = emu.draw_noise(np.random.default_rng(0), 1)
    # zero new weights: the same emulator whatever the noise
    np.testing.assert_allclose(emu.step(x, f, noise=z)[0], y0, rtol=1e-12, atol=1e-12)
    emu.add_noise_channels(1, scale=1.0, seed=3)
    z = emu.draw_noise(np.random.default_rng(0), 1)
    assert not np.allclose(emu.step(x, f, noise=z)[0], y0)
    nostem = _emulator(tiny, 0, stem=0)
    with pytest.raises(ValueError, match="needs a network with a stem"):
        nostem.add_noise_channels(2)


def _smooth_crps(pred, target, wet, weights, members, delta=0.3):
    """The fair CRPS with ``|a|`` replaced by ``sqrt(a^2 + delta^2)`` (smooth), same interface."""
    M = members
    C, B = pred.shape[0], target.shape[1]
    ys = [pred[:, m * B:(m + 1) * B] for m in range(M)]
    ab = lambda a: np.sqrt(a * a + delta * delta)  # noqa: E731
    sg = lambda a: a / np.sqrt(a * a + delta * delta)  # noqa: E731
    pt = sum(ab(y - target) for y in ys) / M
    g = [sg(y - target) / M for y in ys]
    for a in range(M):
        for b in range(M):
            if a != b:
                pt = pt - ab(ys[a] - ys[b]) / (2 * M * (M - 1))
                g[a] = g[a] - sg(ys[a] - ys[b]) / (M * (M - 1))
    n = pt[0].size
    ell = (pt * wet).reshape(C, -1).sum(axis=1) / n
    cw = (np.asarray(weights) / (n * C))[:, None, None, None] * wet
    return float(np.dot(weights, ell) / C), ell, np.concatenate([x * cw for x in g], axis=1)


@pytest.mark.parametrize("M", [2, 3])
def test_ensemble_rollout_loss_fd(tiny, tmp_path, monkeypatch, M):
    """3-step rollout of an M-member ensemble, float64: the gradient with respect to the
    parameters and the shared initial states against finite differences.  The loss is a smooth
    variant of the fair CRPS with the same interface (the CRPS itself is piecewise linear, and
    over thousands of points a finite-difference stencil always crosses some kink; its gradient
    is checked exactly above), so this checks the ensemble machinery: member stacking, noise
    inputs, backpropagation through all members and the sum over their shared initial states."""
    import emulator.training as training
    monkeypatch.setattr(training, "crps_step_loss", _smooth_crps)
    ds, split, spec, data, _ = tiny
    emu = _emulator(tiny, 2, dtype=np.float64, seed=1, widths=(3, 4), stem=4)
    tr = Trainer(emu, data, split, TrainConfig(rollout_steps=3, batch_size=2, loss="crps", ensemble=M),
                 str(tmp_path))
    rng = np.random.default_rng(4)
    tr.dloss.scale = rng.uniform(0.5, 3.0, spec.n_prognostic)
    starts = tr.train_starts[:2]
    x0 = tr._pair(starts)

    def run(x):
        emu.unet.zero_grad()
        L, _, dx = tr.rollout_loss(starts, train=True, backward=True, x0=x.copy())
        return L, dx, {k: v.copy() for k, v in emu.unet.gradients().items()}

    L, ells, dx = tr.rollout_loss(starts, train=False, backward=True, x0=x0.copy())
    assert dx.shape == x0.shape and len(ells) == 3
    params, _ = fd_params(emu.unet, every=2)
    worst, rep = gradcheck(run, x0, params, rng, n_dirs=1, n_coords=1)
    assert worst <= TOL, sorted(rep.items(), key=lambda kv: -kv[1])[:5]


def test_correlated_noise_inputs(tiny, tmp_path):
    """noise_length = L: unit-variance inputs with the Gaussian correlation exp(-d^2 / (4 L^2)),
    drawn from the same stream as white ones (a seed is still a member), saved and loaded."""
    emu = _emulator(tiny, 3)
    emu.noise_length = 1.5
    z = emu.draw_noise(np.random.default_rng(4), 2000)         # (3, 2000, 12, 16)
    zi = z[:, :, 4:-4]                                          # away from the reflecting y edges
    assert abs(zi.var() - 1.0) < 0.05
    for d in (1, 2, 3):  # periodic in x: every column has neighbours
        corr = np.mean(zi * np.roll(zi, d, axis=-1)) / zi.var()
        assert abs(corr - np.exp(-d ** 2 / (4 * 1.5 ** 2))) < 0.02, (d, corr)
    emu.noise_length = 0.0
    white = emu.draw_noise(np.random.default_rng(4), 2000)
    assert abs(np.mean(white * np.roll(white, 1, axis=-1))) < 0.01
    emu.noise_length = 1.5
    emu.save(str(tmp_path / "e.npz"))
    back = Emulator.load(str(tmp_path / "e.npz"))
    assert back.noise_length == 1.5
    np.testing.assert_array_equal(back.draw_noise(np.random.default_rng(4), 2000), z)
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="noise_length=.*must be a finite number >= 0"):
            emu.noise_length = bad


def test_crps_training_lowers_the_loss_and_keeps_spread(tiny, tmp_path):
    ds, split, spec, data, _ = tiny
    emu = _emulator(tiny, 2)
    with pytest.raises(ValueError, match="needs a stochastic emulator"):
        Trainer(_emulator(tiny, 0), data, split, TrainConfig(loss="crps"), str(tmp_path / "x"))
    tr = Trainer(emu, data, split, TrainConfig(epochs=4, batch_size=2, rollout_steps=2, lr=2e-3,
                                               loss="crps", max_steps=60, checkpoint_every=1000),
                 str(tmp_path))
    probe = tr.train_starts[::7]

    def crps():
        return float(np.mean(tr.rollout_loss(probe, train=False, backward=False,
                                             weights=np.ones(2 * tr.P))[1]))
    before = crps()
    res = tr.fit(progress=False)
    assert res["finished"] and res["steps"] == 60
    after = crps()
    assert after < 0.7 * before, (before, after)
    log = [json.loads(x) for x in open(tmp_path / Trainer.LOG)]
    assert all("crps" in r for r in log if "loss" in r)
    assert any("val_mse" in r for r in log)
    # two members of the trained emulator differ: it is an ensemble, not one trajectory
    e = Emulator.load(str(tmp_path / "emulator.npz"))
    assert e.noise_channels == 2
    a, _ = rollout_normalized(e, data, 10, 8, seed=1)
    b, _ = rollout_normalized(e, data, 10, 8, seed=2)
    a2, _ = rollout_normalized(e, data, 10, 8, seed=1)
    d, _ = rollout_normalized(e, data, 10, 8, seed=1, latent=False)
    d2, _ = rollout_normalized(e, data, 10, 8, seed=2, latent=False)
    assert np.array_equal(a, a2) and np.array_equal(d, d2)
    assert np.abs(a[2:] - b[2:]).max() > 1e-4 and not np.array_equal(a, d)
    # a narrower member lies between the deterministic one and the full one (first prediction)
    h, _ = rollout_normalized(e, data, 10, 3, seed=1, latent=0.5)
    assert 0 < np.abs(h[2] - d[2]).max() < np.abs(a[2] - d[2]).max()
    with pytest.raises(ValueError, match="latent=-1.0"):
        rollout_normalized(e, data, 10, 8, latent=-1)


def test_cli_crps_fine_tune(tiny, tmp_path, capsys):
    """--init a deterministic emulator, --noise-channels widens it, --loss crps trains it,
    rollout --seed gives members; resume keeps the widened network."""
    _, _, _, _, d = tiny
    base = tmp_path / "base"
    assert cli.main(["train", "--data", d, "--out", str(base), "--config", "unit", "--stem", "4",
                     "--max-steps", "2", "--quiet", "--train-years", "1", "--val-years", "0.2",
                     "--test-years", "0.3"]) == 0
    ft = tmp_path / "ft"
    args = ["train", "--data", d, "--out", str(ft), "--init", str(base), "--noise-channels", "2",
            "--loss", "crps", "--max-steps", "3", "--quiet", "--train-years", "1", "--val-years", "0.2",
            "--test-years", "0.3", "--batch-size", "2", "--rollout-steps", "2"]
    assert cli.main(args) == 0
    assert Emulator.load(str(ft / "emulator.npz")).noise_channels == 2
    assert cli.main([a if a != "3" else "5" for a in args] + ["--resume"]) == 0
    e = Emulator.load(str(ft / "emulator.npz"))
    assert e.noise_channels == 2 and e.meta["steps"] == 5
    for s in (1, 2):
        assert cli.main(["rollout", "--emulator", str(ft), "--data", d, "--out", str(tmp_path / f"r{s}.nc"),
                         "--seed", str(s), "--quiet"]) == 0
    import xarray as xr
    with xr.open_dataset(tmp_path / "r1.nc") as r1, xr.open_dataset(tmp_path / "r2.nc") as r2:
        assert r1.attrs["noise_channels"] == 2 and r1.attrs["seed"] == 1 and r1.attrs["latent_scale"] == 1.0
        assert not np.array_equal(r1["temp"].values, r2["temp"].values)
    capsys.readouterr()
    split = ["--train-years", "1", "--val-years", "0.2", "--test-years", "0.3", "--quiet"]
    assert cli.main(["train", "--data", d, "--out", str(tmp_path / "bad"), "--noise-channels", "-1"]
                    + split) == 2
    assert "--noise-channels -1: must be >= 0" in capsys.readouterr().err
    assert cli.main(["train", "--data", d, "--out", str(tmp_path / "bad2"), "--loss", "crps"] + split) == 2
    assert "needs a stochastic emulator" in capsys.readouterr().err
    assert cli.main(["train", "--data", d, "--out", str(tmp_path / "bad3"), "--noise-length", "2"]
                    + split) == 2
    assert "--noise-length 2.0: needs an emulator with noise inputs" in capsys.readouterr().err
    # a correlation length set on fine-tuning is kept by the emulator, a further fine-tune and rollouts
    nl = tmp_path / "nl"
    assert cli.main(["train", "--data", d, "--out", str(nl), "--init", str(ft), "--noise-length", "1.5",
                     "--loss", "crps", "--max-steps", "1", "--batch-size", "2", "--rollout-steps", "2"]
                    + split) == 0
    assert Emulator.load(str(nl / "emulator.npz")).noise_length == 1.5
    nl2 = tmp_path / "nl2"
    assert cli.main(["train", "--data", d, "--out", str(nl2), "--init", str(nl), "--loss", "crps",
                     "--max-steps", "1", "--batch-size", "2", "--rollout-steps", "2"] + split) == 0
    assert Emulator.load(str(nl2 / "emulator.npz")).noise_length == 1.5
    assert cli.main(["rollout", "--emulator", str(nl2), "--data", d, "--out", str(tmp_path / "rn.nc"),
                     "--seed", "1", "--quiet"]) == 0
    with xr.open_dataset(tmp_path / "rn.nc") as r:
        assert r.attrs["noise_length"] == 1.5
