"""Command line: ``stommel emulator make-data | train | rollout | evaluate``.

``add_subparser(subparsers)`` registers the ``emulator`` command on an
argparse sub-parser collection (the top-level ``stommel`` CLI calls it);
``python -m emulator.cli ...`` runs the same commands stand-alone.
Every command refuses to overwrite existing outputs unless ``--overwrite``
is given.  See ``docs/emulator.md`` for a walk-through.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def _int_list(text):
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")


def _str_list(text):
    return tuple(v.strip() for v in text.split(",") if v.strip())


def _bands(text):
    out = []
    for part in text.split(","):
        try:
            lo, hi = part.split("-")
            out.append((float(lo), float(hi)))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"bands must look like '0-300,300-1000,1000-1e5', got {text!r}")
    return tuple(out)


def _positive(kind):
    def conv(text):
        v = kind(text)
        if not v > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return v
    return conv


def add_subparser(subparsers):
    """Register ``emulator`` and its sub-commands on ``subparsers``; returns the parser."""
    p = subparsers.add_parser("emulator", help="Samudra 2 emulator of the ACC model",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="emulator_command", metavar="COMMAND")
    sub.required = True
    _add_make_data(sub)
    _add_train(sub)
    _add_rollout(sub)
    _add_evaluate(sub)
    return p


def _add_common(q):
    q.add_argument("--backend", default="cpu", choices=("cpu", "numpy", "gpu"),
                   help="array backend (cpu: NumPy+Numba; gpu: CuPy)")
    q.add_argument("--overwrite", action="store_true", help="replace existing outputs")


def _add_make_data(sub):
    q = sub.add_parser("make-data", help="run the ACC model and write N-day means")
    q.add_argument("--out", required=True, help="output directory")
    q.add_argument("--resolution", type=_positive(float), default=1.0, help="degrees (default 1)")
    q.add_argument("--years", type=_positive(float), default=30.0, help="model years of means")
    q.add_argument("--spinup-years", type=float, default=10.0, help="years run first, discarded")
    q.add_argument("--average-days", type=_positive(float), default=5.0, help="averaging window")
    q.add_argument("--model-backend", default="cpu", help="ocean_core backend (cpu or cuda)")
    q.add_argument("--dt", type=_positive(float),
                   help="ocean time step in seconds, dt_mom = dt_tracer (default: the "
                        "configuration's, 1200 s)")
    q.add_argument("--wind-noise", type=float, default=0.0,
                   help="relative std of a red-noise wind-stress anomaly (default 0: seasonal cycle only)")
    q.add_argument("--wind-noise-days", type=_positive(float), default=30.0,
                   help="e-folding time of the wind anomaly in days (default 30)")
    q.add_argument("--wind-noise-seed", type=int, default=0, help="seed of the wind anomaly (default 0)")
    q.add_argument("--initial-state", metavar="RESTART",
                   help="start from this restart file (e.g. a spun-up state) instead of the initial state")
    q.add_argument("--train-years", type=float, default=20.0)
    q.add_argument("--val-years", type=float, default=2.0)
    q.add_argument("--test-years", type=float, default=8.0)
    q.add_argument("--overwrite", action="store_true", help="replace an existing output")
    q.add_argument("--resume", action="store_true",
                   help="continue an interrupted run in --out from its restart file")
    q.set_defaults(func=cmd_make_data)


def _add_train(sub):
    from .unet import PRESETS  # noqa: PLC0415

    q = sub.add_parser("train", help="train an emulator on make-data output")
    q.add_argument("--data", required=True, help="make-data directory or a NetCDF file")
    q.add_argument("--out", required=True, help="run directory (checkpoints, logs, emulator.npz)")
    q.add_argument("--config", default="small", choices=sorted(PRESETS), help="network preset")
    q.add_argument("--widths", type=_int_list, help="stage widths, e.g. 32,64")
    q.add_argument("--dilations", type=_int_list, help="stage dilations, e.g. 1,2")
    q.add_argument("--stem", type=int, help="1x1 stem width (0: none)")
    q.add_argument("--expansion", type=int, default=2)
    q.add_argument("--norm", default="instance", choices=("instance", "batch"))
    q.add_argument("--residual", action="store_true",
                   help="predict increments of the input states (Samudra's pred_residuals); "
                        "the output convolution starts at zero, i.e. as persistence")
    q.add_argument("--variables", type=_str_list, default=("temp", "salt", "u", "v", "eke", "psi"))
    q.add_argument("--forcing", type=_str_list, default=("surface_taux", "surface_tauy", "t_star"))
    q.add_argument("--eke-eps", type=_positive(float), default=1e-6)
    q.add_argument("--point-norm", type=_str_list, default=(), metavar="VAR,...",
                   help="variables z-scored per grid point instead of per channel (e.g. psi, whose "
                        "variability spans orders of magnitude); with --init, the fine-tuning "
                        "switches the initial emulator's channels to it (default: none)")
    q.add_argument("--point-norm-floor", type=_positive(float), default=0.01, metavar="FRAC",
                   help="smallest point std as a fraction of the channel's (default 0.01)")
    q.add_argument("--train-years", type=float, help="default: meta.json's suggestion or the rest")
    q.add_argument("--val-years", type=float)
    q.add_argument("--test-years", type=float)
    q.add_argument("--epochs", type=int, default=10)
    q.add_argument("--batch-size", type=int, default=4)
    q.add_argument("--rollout-steps", type=int, default=4)
    q.add_argument("--lr", type=float, default=6e-4)
    q.add_argument("--lr-min", type=float, default=0.0)
    q.add_argument("--warmup-steps", type=int, default=0)
    q.add_argument("--clip", type=float, default=1.0)
    q.add_argument("--ema-decay", type=float, default=0.999)
    q.add_argument("--loss", default="dynamic", choices=("dynamic", "mse", "crps"),
                   help="dynamic-weighted MSE (Samudra 2), plain MSE, or the dynamic-weighted fair "
                        "CRPS of an ensemble (needs --noise-channels)")
    q.add_argument("--ensemble", type=int, default=2, help="members per sample with --loss crps")
    q.add_argument("--noise-channels", type=int, default=0, metavar="N",
                   help="Gaussian noise input channels of a stochastic emulator (0: deterministic); "
                        "with --init, added to the initial emulator's first layer (it needs a stem)")
    q.add_argument("--noise-init", type=float, default=0.1, metavar="SCALE",
                   help="with --init and --noise-channels: scale of the new input weights "
                        "(0: the fine-tuning starts from the unchanged emulator)")
    q.add_argument("--noise-length", type=float, default=None, metavar="CELLS",
                   help="correlation length of a stochastic emulator's noise inputs in grid cells "
                        "(Gaussian smoothing, stored with the emulator and used by its rollouts); "
                        "default: 0 (white) for a new emulator, the initial emulator's with --init")
    q.add_argument("--loss-limit", type=float, default=20.0)
    q.add_argument("--loss-window", type=int, default=25)
    q.add_argument("--loss-update", default="first_step", choices=("first_step", "extra_forward"))
    q.add_argument("--no-recompute", action="store_true", help="store all activations")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--max-steps", type=int)
    q.add_argument("--max-hours", type=float)
    q.add_argument("--val-every", type=int, default=0)
    q.add_argument("--val-max-samples", type=int, default=32)
    q.add_argument("--best-by", default="val_mse", choices=("val_mse", "val_rollout_rmse"),
                   help="validation figure that picks emulator_best.npz: K-step rollout MSE, or "
                        "the RMSE of a free rollout through the whole validation period")
    q.add_argument("--checkpoint-every", type=int, default=50)
    q.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    q.add_argument("--input-noise", type=float, default=0.0,
                   help="std (normalised units) of Gaussian noise added to the initial states of "
                        "each training sample (0: none)")
    q.add_argument("--init", metavar="EMULATOR",
                   help="fine-tune: start from this emulator's weights (emulator.npz or a run "
                        "directory) with a fresh optimiser; its channels, normalisation and "
                        "network replace --variables/--forcing/--config/--residual")
    q.add_argument("--resume", action="store_true", help="continue from checkpoint_last.npz")
    q.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_common(q)
    q.set_defaults(func=cmd_train)


def _noise(text):
    """``0.05`` or ``temp=0.005,u=0.05`` (per prognostic variable)."""
    try:
        if "=" not in text:
            return float(text)
        out = {}
        for item in text.split(","):
            k, v = item.split("=")
            out[k.strip()] = float(v)
        return out
    except ValueError:
        raise argparse.ArgumentTypeError(f"noise {text!r}: give a number or var=value,... "
                                         "(e.g. temp=0.005,u=0.05)") from None


def _add_rollout(sub):
    q = sub.add_parser("rollout", help="autoregressive rollout of a trained emulator")
    q.add_argument("--emulator", required=True, help="emulator.npz or a training run directory")
    q.add_argument("--data", required=True, help="make-data directory or NetCDF file")
    q.add_argument("--out", required=True, help="output NetCDF file")
    q.add_argument("--start", type=int, help="index of the first initial state "
                                              "(default: start of the test period)")
    q.add_argument("--years", type=_positive(float), help="length (default: the test period)")
    q.add_argument("--clamp", type=float, default=None, metavar="MARGIN",
                   help="clip each predicted channel into its training range widened by MARGIN "
                        "times that range (e.g. 0.1); default: no clipping")
    q.add_argument("--noise", type=_noise, default=0.0, metavar="SIGMA",
                   help="stochastic rollout: Gaussian noise of this std (normalised units) added to "
                        "every predicted state, one number or per variable, e.g. "
                        "temp=0.005,u=0.05,v=0.05 (default 0: deterministic)")
    q.add_argument("--seed", type=int, default=0,
                   help="random seed of --noise and of a stochastic emulator's noise inputs "
                        "(one seed = one ensemble member)")
    q.add_argument("--latent-scale", type=float, default=1.0, metavar="S",
                   help="stochastic emulator: scale of its Gaussian noise inputs (1: as trained; "
                        "0: zeros, its deterministic member)")
    q.add_argument("--no-latent", action="store_true", help="same as --latent-scale 0")
    q.add_argument("--noise-length", type=float, default=0.0, metavar="CELLS",
                   help="correlation length of --noise in grid cells (Gaussian smoothing; "
                        "default 0: white)")
    q.add_argument("--quiet", action="store_true")
    _add_common(q)
    q.set_defaults(func=cmd_rollout)


def _add_evaluate(sub):
    q = sub.add_parser("evaluate", help="metrics and figures of a rollout against the model")
    q.add_argument("--data", required=True, help="make-data directory or NetCDF file")
    q.add_argument("--rollout", required=True, help="NetCDF file written by 'rollout'")
    q.add_argument("--out", required=True, help="directory for metrics.json, metrics.md, PNGs")
    q.add_argument("--bands", type=_bands, default=((0.0, 300.0), (300.0, 1000.0), (1000.0, 1e5)),
                   help="depth bands in metres, e.g. 0-300,300-1000,1000-1e5")
    q.add_argument("--baseline-years", type=_positive(float), default=None,
                   help="also score the model against itself this many years earlier (whole "
                        "years of the data, same season): the variance-ratio shares a perfect "
                        "emulator could expect from sampling noise alone")
    q.add_argument("--no-figures", action="store_true")
    q.add_argument("--overwrite", action="store_true")
    q.set_defaults(func=cmd_evaluate)


# ---------------------------------------------------------------------- #
# commands
# ---------------------------------------------------------------------- #
def _refuse_existing(path, overwrite, what="output"):
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{what} {path!r} exists; pass --overwrite to replace it")


def cmd_make_data(args):
    from .make_data import generate  # noqa: PLC0415

    meta = generate(args.out, resolution=args.resolution, years=args.years,
                    spinup_years=args.spinup_years, average_days=args.average_days,
                    backend=args.model_backend, overwrite=args.overwrite, resume=args.resume,
                    dt=args.dt, wind_noise=args.wind_noise, wind_noise_days=args.wind_noise_days,
                    wind_noise_seed=args.wind_noise_seed, initial_state=args.initial_state,
                    split=(args.train_years, args.val_years, args.test_years))
    print(json.dumps(meta, indent=1))
    return 0


def _split_for(ds, args, data_path):
    from .data import split_by_years, states_per_year  # noqa: PLC0415

    spy = states_per_year(ds)
    sug = {}
    meta = os.path.join(data_path, "meta.json") if os.path.isdir(data_path) else None
    if meta and os.path.exists(meta):
        with open(meta) as f:
            sug = json.load(f).get("suggested_split_years", {})
    total = ds.sizes["time"] / spy
    test = args.test_years if args.test_years is not None else sug.get("test", min(8.0, total / 4))
    val = args.val_years if args.val_years is not None else sug.get("val", 0.0)
    train = args.train_years if args.train_years is not None else \
        sug.get("train", total - test - val)
    return split_by_years(ds.sizes["time"], spy, train, val, test), spy


def cmd_train(args):
    import numpy as np  # noqa: PLC0415

    from .backend import get_backend  # noqa: PLC0415
    from .data import build_spec, open_dataset, point_normalise, prepare, save_spec  # noqa: PLC0415
    from .model import Emulator  # noqa: PLC0415
    from .plots import training_curve  # noqa: PLC0415
    from .training import TrainConfig, Trainer  # noqa: PLC0415
    from .unet import UNet, preset_config  # noqa: PLC0415

    out = args.out
    ckpt = os.path.join(out, Trainer.CKPT)
    if os.path.exists(out) and os.listdir(out) and not (args.resume or args.overwrite):
        raise FileExistsError(f"run directory {out!r} is not empty; pass --resume to continue "
                              f"or --overwrite to start again")
    if args.overwrite and not args.resume and os.path.exists(out):
        for f in (Trainer.CKPT, Trainer.LOG, "emulator.npz", "config.json"):
            if os.path.exists(os.path.join(out, f)):
                os.remove(os.path.join(out, f))
    ds = open_dataset(args.data)
    # split by time, channels and statistics from the training period, then normalise
    split, spy = _split_for(ds, args, args.data)
    bk = get_backend(args.backend)
    init = None
    if args.init:
        # fine-tuning keeps the initial emulator's channels and normalisation statistics
        init = Emulator.load(_emulator_path(args.init), backend=args.backend, dtype=args.dtype)
        spec = init.spec
        missing = [c.var for c in spec.prognostic + spec.forcing
                   if c.var not in ("season_sin", "season_cos") and c.var not in ds]
        if missing or tuple(spec.grid) != (ds.sizes["yt"], ds.sizes["xt"]):
            raise ValueError(f"--init {args.init!r}: its channels {sorted(set(missing))} or grid "
                             f"{tuple(spec.grid)} do not fit the data {args.data!r}")
    else:
        spec = build_spec(ds, split.train, variables=args.variables, forcing=args.forcing,
                          eke_eps=args.eke_eps)
    if args.point_norm:
        point_normalise(spec, ds, split.train, args.point_norm, floor=args.point_norm_floor)
    data = prepare(ds, spec)
    if args.noise_channels < 0:
        raise ValueError(f"--noise-channels {args.noise_channels}: must be >= 0")
    if init is not None:
        net, residual = init.unet, init.residual
        # a deterministic emulator becomes a stochastic one by more input columns of its stem
        init.add_noise_channels(max(0, args.noise_channels - init.noise_channels), scale=args.noise_init,
                                seed=args.seed)
        noise_channels = init.noise_channels
        cfg = net.config
    else:
        noise_channels = args.noise_channels
        cfg = preset_config(args.config, spec.in_channels + noise_channels, spec.out_channels,
                            widths=args.widths, dilations=args.dilations, stem=args.stem, expansion=args.expansion,
                            norm=args.norm)
        net = UNet(cfg, backend=bk, dtype=np.dtype(args.dtype), seed=args.seed)
        residual = args.residual
    net.check_grid(*spec.grid)
    if args.noise_length is not None:
        noise_length = args.noise_length
        if noise_length != 0 and noise_channels == 0:
            raise ValueError(f"--noise-length {noise_length}: needs an emulator with noise inputs "
                             "(--noise-channels N > 0)")
    else:
        noise_length = init.noise_length if init is not None else 0.0
    emu = Emulator(net, spec, data.wet, data.static, residual=residual, noise_channels=noise_channels,
                   noise_length=noise_length)
    if residual and init is None and not args.resume:
        emu.zero_head()
    tc = TrainConfig(epochs=args.epochs, batch_size=args.batch_size,
                     rollout_steps=args.rollout_steps, lr=args.lr, lr_min=args.lr_min,
                     warmup_steps=args.warmup_steps, clip=args.clip, ema_decay=args.ema_decay,
                     loss=args.loss, ensemble=args.ensemble, loss_limit=args.loss_limit, loss_window=args.loss_window,
                     loss_update=args.loss_update, recompute=not args.no_recompute,
                     seed=args.seed, max_steps=args.max_steps, max_hours=args.max_hours,
                     val_every=args.val_every, val_max_samples=args.val_max_samples,
                     best_by=args.best_by,
                     checkpoint_every=args.checkpoint_every, input_noise=args.input_noise)
    meta = {"data": os.path.abspath(args.data), "states_per_year": spy,
            "n_params": net.num_parameters(), "backend": bk.name, "residual": residual,
            "noise_channels": noise_channels, "noise_length": emu.noise_length}
    if init is not None:
        meta["init"] = os.path.abspath(_emulator_path(args.init))
    trainer = Trainer(emu, data, split, tc, out, meta=meta)
    if args.resume and not os.path.exists(ckpt):
        print(f"no checkpoint in {out!r}; starting from scratch", file=sys.stderr)
    os.makedirs(out, exist_ok=True)
    save_spec(os.path.join(out, "config.json"), spec, split,
              extra={"unet": cfg.to_dict(), "train": vars(tc), **meta})
    print(f"emulator: {net.num_parameters():,} parameters, {net.config.in_channels} channels in "
          f"({noise_channels} of them noise"
          f"{f', correlation length {emu.noise_length:g} cells' if emu.noise_length else ''}), "
          f"{spec.out_channels} out, grid {spec.grid}; {len(trainer.train_starts)} training "
          f"samples, {trainer.batches_per_epoch} steps per epoch, {trainer.total_steps} steps",
          file=sys.stderr)
    res = trainer.fit(resume=args.resume, progress=not args.quiet)
    training_curve(os.path.join(out, Trainer.LOG), os.path.join(out, "training_curve.png"))
    print(json.dumps(res, indent=1, default=float))
    return 0


def _emulator_path(path):
    """``emulator.npz`` inside a run directory, or ``path`` itself."""
    if os.path.isdir(path):
        path = os.path.join(path, "emulator.npz")
    return path


def cmd_rollout(args):
    from .data import open_dataset, prepare  # noqa: PLC0415
    from .model import Emulator  # noqa: PLC0415
    from .rollout import run_rollout, training_bounds  # noqa: PLC0415

    _refuse_existing(args.out, args.overwrite)
    emu = Emulator.load(_emulator_path(args.emulator), backend=args.backend)
    ds = open_dataset(args.data)
    data = prepare(ds, emu.spec)
    # default: the whole test period of the training run
    split = emu.meta.get("split", {})
    start = args.start if args.start is not None else split.get("test", [0])[0]
    spy = emu.meta.get("states_per_year") or (emu.spec.year_seconds /
                                               float(data.time[1] - data.time[0]))
    if args.years is not None:
        n = int(round(args.years * spy))
    else:
        n = split.get("test", [0, data.n_times])[1] - start
    n = min(n, data.n_times - start)
    clamp = None
    if args.clamp is not None:
        if "train" not in split:
            raise ValueError("--clamp needs the training split of the emulator's run "
                             "(config.json next to the weights)")
        clamp = training_bounds(data, split["train"], args.clamp)
    t0 = time.perf_counter()
    out_ds, timing = run_rollout(emu, data, ds, start, n, progress=not args.quiet, clamp=clamp,
                                 noise=args.noise, seed=args.seed, noise_length=args.noise_length,
                                 latent=0.0 if args.no_latent else args.latent_scale)
    if clamp is not None:
        out_ds.attrs["clamp_margin"] = float(args.clamp)
    if args.noise:
        out_ds.attrs["noise"] = (json.dumps(args.noise) if isinstance(args.noise, dict)
                                 else float(args.noise))
        out_ds.attrs["seed"] = int(args.seed)
        out_ds.attrs["noise_length"] = float(args.noise_length)
    d = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(d, exist_ok=True)
    tmp = args.out + ".part"
    out_ds.to_netcdf(tmp)
    os.replace(tmp, args.out)
    timing["total_seconds"] = time.perf_counter() - t0
    timing["start"] = int(start)
    timing["n_states"] = int(n)
    print(json.dumps(timing, indent=1))
    return 0


def cmd_evaluate(args):
    import xarray as xr  # noqa: PLC0415

    from .data import open_dataset  # noqa: PLC0415
    from .metrics import evaluate  # noqa: PLC0415
    from .plots import all_figures  # noqa: PLC0415

    mpath = os.path.join(args.out, "metrics.json")
    _refuse_existing(mpath, args.overwrite)
    with xr.open_dataset(args.rollout) as r:
        pred = r.load()
    truth_all = open_dataset(args.data)
    start = int(pred.attrs.get("start_index", 0))
    truth = truth_all.isel(time=slice(start, start + pred.sizes["time"]))
    year_s = float(truth_all.attrs.get("year_length_days", 365.0)) * 86400.0
    # the two initial states are copies of the truth: score the predictions only
    # (the rollout file records where it starts in the data and how many states are copied)
    ni = int(pred.attrs.get("n_initial_states", 0))
    truth_e = truth.isel(time=slice(ni, None))
    pred_e = pred.isel(time=slice(ni, None))
    for m in ("maskT", "maskU", "maskV", "maskW"):
        if m in truth_all and m not in truth_e:
            truth_e[m] = truth_all[m]
    summary, arrays = evaluate(truth_e, pred_e, bands=args.bands, year_seconds=year_s)
    summary["rollout"] = {k: pred.attrs[k] for k in pred.attrs if k != "source"}
    if args.baseline_years:
        summary["baseline"] = _baseline(truth_all, truth_e, start + ni, args.baseline_years,
                                        args.bands, year_s)
    os.makedirs(args.out, exist_ok=True)
    with open(mpath, "w") as f:
        json.dump(summary, f, indent=1, default=float)
    with open(os.path.join(args.out, "metrics.md"), "w") as f:
        f.write(markdown_summary(summary))
    if not args.no_figures:
        all_figures(arrays, truth_e, pred_e, args.out)
    print(markdown_summary(summary))
    return 0


def _baseline(truth_all, truth_e, first, years, bands, year_s):
    """Metrics of the model against its own states ``years`` earlier (same phase of the year).

    The "prediction" is the truth shifted back by a whole number of years, so both series see
    the same seasons; what it scores is the sampling noise of the metrics (and the drift between
    the two periods), the best shares an emulator of a chaotic flow can expect.
    """
    import numpy as np  # noqa: PLC0415

    from .data import time_seconds  # noqa: PLC0415
    from .metrics import evaluate  # noqa: PLC0415

    tsec = time_seconds(truth_all)
    per_year = int(round(year_s / float(np.median(np.diff(tsec)))))
    shift = int(round(years)) * per_year
    if shift < 1 or abs(years - round(years)) > 1e-9:
        raise ValueError(f"baseline-years={years:g}: must be a whole number of years >= 1")
    n = truth_e.sizes["time"]
    if first - shift < 0:
        raise ValueError(f"baseline-years={years:g}: the data holds {first / per_year:.2f} years "
                         f"before the rollout's first scored state; at most that many are allowed")
    base = truth_all.isel(time=slice(first - shift, first - shift + n)).load()
    base = base.assign_coords(time=truth_e["time"].values)
    for m in ("maskT", "maskU", "maskV", "maskW"):
        if m in truth_e and m not in base:
            base[m] = truth_e[m]
    s, _ = evaluate(truth_e, base, bands=bands, year_seconds=year_s)
    return {"years": float(years), "first_index": int(first - shift),
            "variance_ratio": s["variance_ratio"],
            "r2_detrended_mean_temp": s["r2_detrended_mean_temp"]}


def markdown_summary(s):
    """A short Markdown report of :func:`emulator.metrics.evaluate`'s summary."""
    lines = [f"Rollout of {s['n_times']} states ({s['years']:.2f} years).", "",
             "| depth band | detrended R^2 | raw R^2 | mean bias (degC) | truth detrended std |",
             "|---|---|---|---|---|"]
    for k, v in s["r2_detrended_mean_temp"].items():
        lines.append(f"| {k} | {v['r2']:.3f} | {v['r2_raw']:.3f} | {v['bias']:.3g} | "
                     f"{v['truth_detrended_std']:.3g} |")
    lines += ["", "Temporal variance ratio emulator / model at wet points: min / median / max "
              "(share of points in [0.5, 2]).", "",
              "| variable | band | raw | detrended | detrended and deseasoned | "
              "deseasoned: consistent with [0.5, 2] at 95 % (shown inside; interval width) |",
              "|---|---|---|---|---|---|"]

    def fmt(x):
        if not x.get("n"):
            return "n/a"
        am = f", area mean {x['area_mean_ratio']:.2f}" if "area_mean_ratio" in x else ""
        return (f"{x['min']:.2f} / {x['median']:.2f} / {x['max']:.2f} "
                f"({100 * x['frac_in_range']:.0f}%{am})")

    def fmt_ci(x):
        if not x or not x.get("n"):
            return "n/a"
        return (f"{100 * x['frac_consistent']:.0f}% ({100 * x['frac_shown_inside']:.0f}%; "
                f"x{x['median_width_factor']:.1f})")

    def table(vr):
        for var, d in vr.items():
            for band, r in d.items():
                lines.append(f"| {var} | {band} | {fmt(r['raw'])} | {fmt(r['detrended'])} | "
                             f"{fmt(r['deseasoned'])} | {fmt_ci(r.get('deseasoned_interval'))} |")
    table(s["variance_ratio"])
    b = s.get("baseline")
    if b:
        lines += ["", f"Baseline: the model against itself {b['years']:g} years earlier (same "
                  "seasons), scored the same way; its shares are what sampling noise alone "
                  "leaves to a perfect emulator.", "",
                  "| variable | band | raw | detrended | detrended and deseasoned | "
                  "deseasoned: consistent with [0.5, 2] at 95 % (shown inside; interval width) |",
                  "|---|---|---|---|---|---|"]
        table(b["variance_ratio"])
        lines += ["", "Baseline detrended band-mean temperature R^2: " + ", ".join(
            f"{k} {v['r2']:.3f}" for k, v in b["r2_detrended_mean_temp"].items())]
    lines += ["", "RMSE by level (level 0 = bottom), with the truth's temporal std:", ""]
    for var, d in s["rmse_by_level"].items():
        if d is None:
            lines.append(f"- {var}: NaN in the rollout")
            continue
        pairs = ", ".join(f"{r:.3g} ({sd:.3g})" for r, sd in zip(d["rmse"], d["truth_std"]))
        lines.append(f"- {var}: {pairs}")
    lines += ["", f"NaN counts: {s['nan_in_rollout']}", "",
              f"Spectra (emulator / model power): {json.dumps(s.get('spectra', {}))}", ""]
    return "\n".join(lines)


def main(argv=None):
    """Stand-alone entry point: ``python -m emulator.cli COMMAND ...``."""
    parser = argparse.ArgumentParser(prog="python -m emulator.cli")
    sub = parser.add_subparsers(dest="command")
    add_subparser(sub)
    argv = list(sys.argv[1:] if argv is None else argv)
    # accept both "python -m emulator.cli train ..." and "... emulator train ..."
    if not argv or argv[0] != "emulator":
        argv = ["emulator"] + argv
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (FileExistsError, FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
