"""Training on a tiny synthetic data set: the loss goes down, resuming is exact, non-finite
gradients are handled, and the CLI runs make-data -> train -> rollout -> evaluate."""

import json
import os
import zlib

import numpy as np
import pytest
from emulator_helpers import synthetic_factory, tiny_case

from emulator import cli
from emulator.make_data import generate
from emulator.model import Emulator
from emulator.training import TrainConfig, Trainer
from emulator.unet import UNet, UNetConfig


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_case(tmp_path_factory.mktemp("tiny"))


def make_trainer(tiny, outdir, **kw):
    ds, split, spec, data, _ = tiny
    net = UNet(UNetConfig(spec.in_channels, spec.out_channels, widths=(8, 16), dilations=(1, 2),
                          stem=8), seed=0)
    emu = Emulator(net, spec, data.wet, data.static)
    cfg = dict(epochs=4, batch_size=2, rollout_steps=2, lr=2e-3, checkpoint_every=1000)
    cfg.update(kw)
    return Trainer(emu, data, split, TrainConfig(**cfg), str(outdir))


def raw_rollout_mse(tr, starts):
    w = np.ones(2 * tr.P)
    _, ells, _ = tr.rollout_loss(starts, train=False, backward=False, weights=w)
    return float(np.mean(ells))


def test_short_training_lowers_the_loss(tiny, tmp_path):
    tr = make_trainer(tiny, tmp_path, max_steps=60)
    probe = tr.train_starts[::7]
    before = raw_rollout_mse(tr, probe)
    res = tr.fit(progress=False)
    assert res["steps"] == 60 and res["finished"]
    # the live weights and the EMA weights both fit the training data better
    after = raw_rollout_mse(tr, probe)
    assert after < 0.6 * before, (before, after)
    tr.ema.copy_to(tr.params)
    assert raw_rollout_mse(tr, probe) < 0.8 * before
    # the dynamic weights moved away from 1 and respect the cap
    s = tr.dloss.scale
    assert not np.allclose(s, 1.0) and s.max() / s.min() <= 20.0 + 1e-9
    # logs and outputs; validation includes a free rollout through the validation period
    log = [json.loads(x) for x in open(tmp_path / Trainer.LOG)]
    assert sum("loss" in r for r in log) == 60 and any("val_mse" in r for r in log)
    vals = [r for r in log if "val_rollout_rmse" in r]
    assert vals and all(np.isfinite(r["val_rollout_rmse"]) and r["val_rollout_rmse_end"] > 0
                        for r in vals)
    assert os.path.exists(tmp_path / "emulator.npz")
    emu = Emulator.load(str(tmp_path / "emulator.npz"))
    for k, v in emu.unet.parameters().items():
        np.testing.assert_array_equal(v, tr.ema.shadow[k])


def test_resume_is_exact(tiny, tmp_path):
    a = make_trainer(tiny, tmp_path / "a", max_steps=6)
    a.fit(progress=False)
    b = make_trainer(tiny, tmp_path / "b", max_steps=3)
    b.fit(progress=False)
    # an interruption after the checkpoint leaves extra log lines: they are dropped
    with open(tmp_path / "b" / Trainer.LOG, "a") as f:
        f.write(json.dumps({"step": 3, "loss": 1.0}) + "\n" + '{"step": 4, "lo')
    c = make_trainer(tiny, tmp_path / "b", max_steps=6)
    c.fit(resume=True, progress=False)
    assert c.step == 6
    steps = [json.loads(x)["step"] for x in open(tmp_path / "b" / Trainer.LOG)
             if "loss" in json.loads(x)]
    assert steps == list(range(6))
    for k, v in a.params.items():
        np.testing.assert_array_equal(v, c.params[k], err_msg=k)
        np.testing.assert_array_equal(a.ema.shadow[k], c.ema.shadow[k])
    np.testing.assert_array_equal(a.dloss.scale, c.dloss.scale)
    with pytest.raises(ValueError, match="batch_size=2"):
        make_trainer(tiny, tmp_path / "b", batch_size=3).load_checkpoint()


def test_recompute_gives_the_same_training(tiny, tmp_path):
    a = make_trainer(tiny, tmp_path / "a", max_steps=2, recompute=True)
    b = make_trainer(tiny, tmp_path / "b", max_steps=2, recompute=False)
    a.fit(progress=False)
    b.fit(progress=False)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])


@pytest.mark.filterwarnings("ignore:invalid value encountered")
def test_nonfinite_batch_is_skipped(tiny, tmp_path):
    tr = make_trainer(tiny, tmp_path, max_steps=1)
    starts = tr.batch(0)
    tr.states = tr.states.copy()  # on the CPU it is the fixture's array: keep that clean
    tr.states[starts[0] + 3] = np.inf  # a target of the first batch
    before = {k: v.copy() for k, v in tr.params.items()}
    rec = tr.train_step()
    assert rec["skipped"]
    for k, v in before.items():
        np.testing.assert_array_equal(v, tr.params[k])
    tr2 = make_trainer(tiny, tmp_path / "r", max_steps=1, on_nonfinite="raise")
    tr2.states = tr2.states.copy()
    tr2.states[starts[0] + 3] = np.inf
    with pytest.raises(FloatingPointError, match="non-finite"):
        tr2.train_step()


def test_rollout_feeds_predictions_back(tiny, tmp_path):
    """A rollout equals the model applied by hand to its own predictions, forcing from data."""
    from emulator.rollout import rollout_normalized

    tr = make_trainer(tiny, tmp_path)
    data, emu = tr.data, tr.emu
    P = data.spec.n_prognostic
    out, _ = rollout_normalized(emu, data, 10, 7)
    assert out.shape == (7, P) + data.states.shape[2:]
    np.testing.assert_array_equal(out[:2], data.states[10:12])
    x = data.states[10:12].reshape(2 * P, 1, *out.shape[2:])
    for k in range(3):
        f = np.concatenate([data.forcing[10 + 2 * k], data.forcing[11 + 2 * k]])[:, None]
        x, _ = emu.step(x, f)
        got = x.reshape(2, P, *out.shape[2:])
        n = min(2, 7 - (2 + 2 * k))
        np.testing.assert_array_equal(out[2 + 2 * k:2 + 2 * k + n], got[:n])
    with pytest.raises(ValueError, match="needs forcing up to index"):
        rollout_normalized(emu, data, data.n_times - 4, 8)


def test_clamped_rollout(tiny, tmp_path):
    """Clamping clips each predicted channel into its bounds before it is fed back."""
    from emulator.rollout import rollout_normalized, training_bounds

    tr = make_trainer(tiny, tmp_path)
    data, emu = tr.data, tr.emu
    P = data.spec.n_prognostic
    lo, hi = training_bounds(data, (0, 40), 0.1)
    c = 1
    v = data.states[0:40, c][:, data.wet[c] > 0]
    assert lo[c] == pytest.approx(v.min() - 0.1 * (v.max() - v.min()))
    assert hi[c] == pytest.approx(v.max() + 0.1 * (v.max() - v.min()))
    # bounds tight enough to bite: the middle half of each channel's training range
    mid, half = (lo + hi) / 2, (hi - lo) / 8
    blo, bhi = mid - half, mid + half
    out, _ = rollout_normalized(emu, data, 10, 7, clamp=(blo, bhi))
    free, _ = rollout_normalized(emu, data, 10, 7)
    np.testing.assert_array_equal(out[:2], free[:2])
    assert not np.array_equal(out[2:], free[2:])
    for ch in range(P):
        w = out[2:, ch][:, data.wet[ch] > 0]
        assert w.min() >= np.float32(blo[ch]) and w.max() <= np.float32(bhi[ch])
        assert not out[2:, ch][:, data.wet[ch] == 0].any()
    # by hand: clip, feed back
    x = data.states[10:12].reshape(2 * P, 1, *out.shape[2:])
    bl, bh = np.tile(blo, 2).reshape(-1, 1, 1, 1), np.tile(bhi, 2).reshape(-1, 1, 1, 1)
    for k in range(2):
        f = np.concatenate([data.forcing[10 + 2 * k], data.forcing[11 + 2 * k]])[:, None]
        x, _ = emu.step(x, f)
        x = np.minimum(np.maximum(x, bl.astype(x.dtype)), bh.astype(x.dtype))
        x = x * np.concatenate([data.wet, data.wet])[:, None].astype(x.dtype)
        np.testing.assert_array_equal(out[2 + 2 * k:4 + 2 * k], x.reshape(2, P, *out.shape[2:]))
    with pytest.raises(ValueError, match="margin"):
        training_bounds(data, (0, 40), -1.0)
    # stochastic rollout: reproducible per seed, different across seeds, noise on wet points only
    n1, _ = rollout_normalized(emu, data, 10, 7, noise=0.1, seed=3)
    n2, _ = rollout_normalized(emu, data, 10, 7, noise=0.1, seed=3)
    n3, _ = rollout_normalized(emu, data, 10, 7, noise=0.1, seed=4)
    np.testing.assert_array_equal(n1, n2)
    assert not np.array_equal(n1[2:], n3[2:]) and not np.array_equal(n1[2:], free[2:])
    x = data.states[10:12].reshape(2 * P, 1, *out.shape[2:])
    f = np.concatenate([data.forcing[10], data.forcing[11]])[:, None]
    y, _ = emu.step(x, f)
    eps = np.random.default_rng(3).standard_normal(y.shape) * np.concatenate([data.wet, data.wet])[:, None]
    np.testing.assert_allclose(n1[2:4], (y + (0.1 * eps).astype(y.dtype)).reshape(2, P, *out.shape[2:]),
                               rtol=1e-6, atol=1e-6)
    assert not n1[2:][:, data.wet == 0].any()
    with pytest.raises(ValueError, match="noise"):
        rollout_normalized(emu, data, 10, 7, noise=-1.0)
    # per variable: only the named variables' channels are perturbed
    var0 = data.spec.prognostic[0].var
    n4, _ = rollout_normalized(emu, data, 10, 5, noise={var0: 0.1}, seed=3)
    sel = np.array([ch.var == var0 for ch in data.spec.prognostic])
    y0 = y.reshape(2, P, *out.shape[2:])
    np.testing.assert_array_equal(n4[2:4][:, ~sel], y0[:, ~sel])
    assert not np.array_equal(n4[2:4][:, sel], y0[:, sel])
    with pytest.raises(ValueError, match="not one of"):
        rollout_normalized(emu, data, 10, 5, noise={"nonsense": 0.1})
    # spatially correlated noise: reproducible, differs from white noise, land still 0
    c1, _ = rollout_normalized(emu, data, 10, 5, noise=0.1, seed=3, noise_length=2.0)
    c2, _ = rollout_normalized(emu, data, 10, 5, noise=0.1, seed=3, noise_length=2.0)
    np.testing.assert_array_equal(c1, c2)
    assert not np.array_equal(c1[2:], n1[2:5]) and not c1[2:][:, data.wet == 0].any()
    with pytest.raises(ValueError, match="noise_length"):
        rollout_normalized(emu, data, 10, 5, noise=0.1, noise_length=-1.0)
    with pytest.raises(ValueError, match="lo <= hi"):
        rollout_normalized(emu, data, 10, 7, clamp=(hi, lo))


def test_smooth_noise():
    """Smoothed noise: unit variance, periodic in x (shift-equivariant), correlated over ~length."""
    from emulator.rollout import smooth_noise

    e = np.random.default_rng(0).standard_normal((400, 40, 32))
    f = smooth_noise(e, 2.0)
    assert abs(f[:, 10:-10].var() - 1.0) < 0.05
    np.testing.assert_allclose(smooth_noise(np.roll(e, 5, axis=-1), 2.0), np.roll(f, 5, axis=-1),
                               atol=1e-12)
    lag = lambda a, d: np.mean(a[:, 10:-10] * np.roll(a, d, axis=-1)[:, 10:-10])  # noqa: E731
    assert lag(f, 1) > 0.8 and lag(f, 8) < 0.1 and abs(lag(e, 1)) < 0.02


def test_residual_emulator_starts_as_persistence(tiny, tmp_path):
    """Residual prediction (Samudra's pred_residuals) with a zeroed head: (x_{t+1}, x_{t+2}) =
    (x_{t-1}, x_t); it is saved and loaded with the flag."""
    from emulator.rollout import rollout_normalized

    tr = make_trainer(tiny, tmp_path)
    tr.emu.residual = True
    tr.emu.zero_head()
    out, _ = rollout_normalized(tr.emu, tr.data, 5, 6)
    np.testing.assert_array_equal(out[2:4], out[0:2] * tr.data.wet)
    np.testing.assert_array_equal(out[4:6], out[0:2] * tr.data.wet)
    tr.emu.save(str(tmp_path / "e.npz"))
    assert Emulator.load(str(tmp_path / "e.npz")).residual


def test_emulator_file_metadata_is_compact_and_old_files_load(tiny, tmp_path):
    """The JSON metadata is stored as zlib-compressed UTF-8 bytes (with per-point normalisation
    maps it used to be UCS-4 text, 27 of an emulator file's 31 MB), and files in the older
    formats (a NumPy string scalar; plain UTF-8 bytes) still load to the same emulator."""
    tr = make_trainer(tiny, tmp_path)
    psi = next(ch for ch in tr.emu.spec.prognostic if ch.var == "psi")
    rng = np.random.default_rng(3)
    psi.mean_map = rng.standard_normal(tr.emu.spec.grid).tolist()
    psi.std_map = (1 + rng.random(tr.emu.spec.grid)).tolist()
    path = tmp_path / "new.npz"
    tr.emu.save(str(path), meta={"note": "é"})
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    assert arrays["info"].dtype == np.uint8
    # the same content in the old layout: UCS-4 string scalar, uncompressed
    old = dict(arrays)
    text = zlib.decompress(arrays["info"].tobytes()).decode("utf-8")
    old["info"] = np.array(text)
    np.savez(tmp_path / "old.npz", **old)
    utf8 = dict(arrays, info=np.frombuffer(text.encode("utf-8"), dtype=np.uint8))
    np.savez(tmp_path / "utf8.npz", **utf8)
    assert arrays["info"].nbytes < 0.25 * old["info"].nbytes
    assert os.path.getsize(path) < os.path.getsize(tmp_path / "old.npz")
    loaded = [Emulator.load(str(tmp_path / f)) for f in ("new.npz", "old.npz", "utf8.npz")]
    for e in loaded:
        assert e.spec.to_json() == tr.emu.spec.to_json() and e.meta == {"note": "é"}
        for k, v in tr.emu.unet.parameters().items():
            np.testing.assert_array_equal(e.unet.parameters()[k], v)


def test_cli_end_to_end(tmp_path):
    data = tmp_path / "data"
    generate(str(data), years=2.0, spinup_years=0.1, model_factory=synthetic_factory(nz=2),
             log=None, split=(1, 0.2, 0.5))
    run = tmp_path / "run"
    args = ["train", "--data", str(data), "--out", str(run), "--config", "unit",
            "--epochs", "1", "--max-steps", "4", "--batch-size", "2", "--rollout-steps", "2",
            "--quiet"]
    assert cli.main(args) == 0
    cfg = json.load(open(run / "config.json"))
    assert cfg["split"]["test"][1] - cfg["split"]["test"][0] == round(0.5 * 73)
    assert cli.main(args) == 2  # refuses a non-empty run directory
    assert cli.main(args + ["--resume", "--max-steps", "6"]) == 0
    assert sum("loss" in json.loads(x) for x in open(run / "train_log.jsonl")) == 6
    # fine-tuning: starts from the run's weights (and spec), fresh optimiser, longer rollouts
    ft = tmp_path / "finetune"
    assert cli.main(["train", "--data", str(data), "--out", str(ft), "--init", str(run),
                     "--epochs", "1", "--max-steps", "0", "--batch-size", "2",
                     "--rollout-steps", "3", "--input-noise", "0.05", "--quiet"]) == 0
    a, b = Emulator.load(str(run / "emulator.npz")), Emulator.load(str(ft / "emulator.npz"))
    assert a.spec.to_json() == b.spec.to_json() and a.unet.config == b.unet.config
    for k, v in a.unet.parameters().items():
        np.testing.assert_array_equal(v, b.unet.parameters()[k])
    cfg = json.load(open(ft / "config.json"))
    assert cfg["init"].endswith("emulator.npz") and cfg["train"]["input_noise"] == 0.05
    # fine-tuning into per-point psi statistics: stored with the emulator, used by its rollout
    pn = tmp_path / "pointnorm"
    assert cli.main(["train", "--data", str(data), "--out", str(pn), "--init", str(run),
                     "--epochs", "1", "--max-steps", "1", "--batch-size", "2", "--rollout-steps", "2",
                     "--point-norm", "psi", "--quiet"]) == 0
    c = Emulator.load(str(pn / "emulator.npz"))
    psi_ch = [ch for ch in c.spec.prognostic if ch.var == "psi"]
    assert len(psi_ch) == 1 and np.asarray(psi_ch[0].std_map).shape == c.spec.grid
    assert all(ch.std_map is None for ch in c.spec.prognostic if ch.var != "psi")
    rp = tmp_path / "roll_pn.nc"
    assert cli.main(["rollout", "--emulator", str(pn), "--data", str(data), "--out", str(rp),
                     "--quiet"]) == 0
    import xarray as xr
    with xr.open_dataset(rp) as r, xr.open_dataset(data / "means_0000.nc") as d0:
        assert np.isfinite(r["psi"].values).all()
        # the copied initial states come back in physical units through the point statistics
        t0 = int(r.attrs["start_index"])
        truth = xr.concat([xr.open_dataset(data / f) for f in sorted(os.listdir(data))
                           if f.startswith("means_")], dim="time")["psi"].values[t0]
        np.testing.assert_allclose(r["psi"].values[0], truth, rtol=1e-4,
                                   atol=1e-5 * np.abs(d0["psi"].values).max())
    assert cli.main(["train", "--data", str(data), "--out", str(tmp_path / "pnbad"), "--init", str(run),
                     "--point-norm", "rho", "--quiet"]) == 2
    roll = tmp_path / "roll.nc"
    assert cli.main(["rollout", "--emulator", str(run), "--data", str(data), "--out", str(roll),
                     "--quiet"]) == 0
    assert cli.main(["rollout", "--emulator", str(run), "--data", str(data), "--out", str(roll),
                     "--quiet"]) == 2
    with xr.open_dataset(roll) as r:
        assert r.sizes["time"] == round(0.5 * 73) and r.attrs["n_initial_states"] == 2
        assert np.isfinite(r["temp"].values).all()
        assert "salt" not in r or np.allclose(r["salt"].values, 35.0)
    rn = tmp_path / "roll_noise.nc"
    assert cli.main(["rollout", "--emulator", str(run), "--data", str(data), "--out", str(rn),
                     "--noise", "temp=0.1,u=0.05", "--seed", "2", "--clamp", "0.1", "--quiet"]) == 0
    with xr.open_dataset(rn) as r:
        assert json.loads(r.attrs["noise"]) == {"temp": 0.1, "u": 0.05}
        assert r.attrs["seed"] == 2 and r.attrs["clamp_margin"] == 0.1
        assert np.isfinite(r["temp"].values).all()
    ev = tmp_path / "eval"
    assert cli.main(["evaluate", "--data", str(data), "--rollout", str(roll),
                     "--out", str(ev), "--bands", "0-800,800-3000", "--baseline-years", "1"]) == 0
    m = json.load(open(ev / "metrics.json"))
    # the baseline: the model's own states one year earlier, scored like the rollout
    b = m["baseline"]
    assert b["years"] == 1.0 and b["first_index"] == m["rollout"]["start_index"] + 2 - 73
    vr = b["variance_ratio"]["temp"]["0-800m"]["raw"]
    assert vr["n"] > 0 and 0 < vr["min"] <= vr["median"] <= vr["max"]
    assert "area_mean_ratio" in m["variance_ratio"]["temp"]["0-800m"]["raw"]
    # the sampling interval of the deseasoned ratio (its numbers: test_emulator_metrics.py); a
    # half-year rollout has one state per phase of the year, so nothing is left after deseasoning
    for tab in (m["variance_ratio"], b["variance_ratio"]):
        assert tab["temp"]["0-800m"]["deseasoned"]["n"] == 0
        assert tab["temp"]["0-800m"]["deseasoned_interval"] == {"n": 0}
    assert "Baseline" in open(ev / "metrics.md").read()
    assert "consistent with [0.5, 2] at 95 %" in open(ev / "metrics.md").read()
    for bad in ("2", "1.5"):  # more years than precede the rollout; not whole years
        assert cli.main(["evaluate", "--data", str(data), "--rollout", str(roll), "--out",
                         str(tmp_path / f"ev{bad}"), "--baseline-years", bad]) == 2
    assert set(m["r2_detrended_mean_temp"]) == {"0-800m", "800-3000m"}
    assert all(np.isfinite(v["r2"]) for v in m["r2_detrended_mean_temp"].values())
    assert len(m["rmse_by_level"]["temp"]["rmse"]) == 2
    for f in ("band_mean_temp.png", "spectra.png", "variance_ratio_raw.png", "metrics.md"):
        assert os.path.getsize(ev / f) > 1000
    assert cli.main(["evaluate", "--data", str(data), "--rollout", str(roll),
                     "--out", str(ev)]) == 2


def test_input_noise(tiny, tmp_path):
    """Noise perturbs the initial states of a training step (wet points only), reproducibly,
    and leaves validation untouched."""
    seen = []

    def run(noise):
        tr = make_trainer(tiny, tmp_path / f"n{noise}", input_noise=noise, max_steps=2)
        orig = tr.rollout_loss

        def spy(starts, x0=None, **kw):
            seen.append(None if x0 is None else tr.bk.to_numpy(x0 - tr._pair(starts)))
            return orig(starts, x0=x0, **kw)

        tr.rollout_loss = spy
        tr.train_step()
        return tr

    tr = run(0.0)
    assert seen.pop() is None
    run(0.1)
    run(0.1)
    d1, d2 = seen
    np.testing.assert_array_equal(d1, d2)
    mask = tr.bk.to_numpy(tr.emu.out_mask)
    assert np.all(d1[np.broadcast_to(mask, d1.shape) == 0] == 0)
    wet = d1[np.broadcast_to(mask, d1.shape) > 0]
    assert abs(wet.std() - 0.1) < 0.01 and abs(wet.mean()) < 0.01
    with pytest.raises(ValueError, match="input_noise=-1"):
        TrainConfig(input_noise=-1.0)


def test_cli_bad_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--data", "x", "--out", str(tmp_path), "--config", "huge"])
    assert "invalid choice: 'huge'" in capsys.readouterr().err
    assert cli.main(["train", "--data", str(tmp_path / "missing"), "--out",
                     str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(ValueError, match="epochs=0"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="best_by='loss'"):
        TrainConfig(best_by="loss")


def test_best_by_free_rollout(tiny, tmp_path):
    """``best_by="val_rollout_rmse"`` keeps the EMA weights of the smallest free-rollout RMSE."""
    from emulator.rollout import rollout_normalized

    tr = make_trainer(tiny, tmp_path, max_steps=6, val_every=2, best_by="val_rollout_rmse")
    tr.fit(progress=False)
    log = [json.loads(x) for x in open(tmp_path / Trainer.LOG) if "val_mse" in x]
    assert [r["step"] for r in log] == [2, 4, 6]
    best = Emulator.load(str(tmp_path / "emulator_best.npz"))
    a, b = tr.split.val
    n = (b - a) // 2 * 2
    pred, _ = rollout_normalized(best, tr.data, a, n)
    w = tr.data.wet
    err = ((pred[2:] - tr.data.states[a + 2:a + n]) ** 2 * w).sum(axis=(-1, -2)) / w.sum(axis=(-1, -2))
    assert np.sqrt(err.mean()) == pytest.approx(min(r["val_rollout_rmse"] for r in log), rel=1e-5)
    with pytest.raises(ValueError, match="loss='l1'"):
        TrainConfig(loss="l1")
