"""Rollout training with backpropagation through the whole rollout.

One optimiser step on a batch of ``B`` samples starting at indices ``i``:

1. ``x = (x_i, x_{i+1})`` from the data; for ``k = 0..K-1``:
   ``y_k = net(x, f_{i+2k}, f_{i+2k+1}, static)`` (masked), loss
   ``L_k = mean_c s_c l_c(y_k, (x_{i+2k+2}, x_{i+2k+3}))`` (see
   :mod:`emulator.losses`), and ``x <- y_k`` (the model's own prediction).
2. Backward through time: ``g = 0``; for ``k = K-1..0``:
   ``dx = net.backward(dL_k/dy_k + g)``, ``g = dx[:2P]``.  Parameter
   gradients accumulate over the steps.  With ``recompute`` only the input of
   each top-level U-Net layer is kept per step and the layer is recomputed in
   the backward pass (memory ~ one extra forward pass of compute).
3. Gradient-norm clipping (a non-finite norm skips the update), Adam with a
   cosine learning rate, EMA of the weights, dynamic-loss weight update.

With ``loss="crps"`` (a stochastic emulator, ``noise_channels > 0``) every sample is
rolled out as an ensemble of ``M = ensemble`` members, stacked along the batch axis:
each member starts from the same two states and draws its own noise inputs at every
call (``default_rng([seed, step, 2])``, reproducible after a resume), and step ``k``
is scored by the fair CRPS of the members against the true states
(:func:`emulator.losses.crps_step_loss`), with dynamic weights from the per-channel
CRPS.  Backpropagation runs through all members' rollouts at once.  Validation scores
the deterministic member (zero noise) by its MSE, comparable with deterministic runs.

Training state is checkpointed (``checkpoint_last.npz``: weights, BatchNorm
buffers, Adam moments, EMA, dynamic-loss weights, step counters) so that an
interrupted run resumes exactly where it stopped: the sample order of epoch
``e`` is a permutation drawn from ``default_rng([seed, e])``, so a resumed run
sees the same batches as an uninterrupted one.  Progress goes to a JSON-lines
log (``train_log.jsonl``), one record per step and per validation; the EMA
weights are written to ``emulator.npz`` at the end and, whenever the
validation error reaches a new low, to ``emulator_best.npz``.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass

import numpy as np

from .data import EmulatorData, Split, rollout_starts
from .losses import DynamicLoss, crps_step_loss, masked_channel_mse, weighted_step_loss
from .model import Emulator, _atomic_savez, _json_array, _read_json
from .optim import EMA, Adam, clip_grad_norm, cosine_lr


LOSSES = ("dynamic", "mse", "crps")


@dataclass
class TrainConfig:
    """Training hyper-parameters (defaults: Samudra 2 where it applies).

    Parameters
    ----------
    epochs : int
    batch_size : int
    rollout_steps : int
        ``K`` model calls per sample (each predicts two states).
    lr, lr_min, warmup_steps :
        Peak and final learning rate of the per-step cosine schedule, linear warm-up.
    clip : float
        Gradient-norm clip.
    ema_decay : float
    loss : {"dynamic", "mse", "crps"}
        Dynamic-weighted MSE (Samudra 2), plain MSE, or the dynamic-weighted fair CRPS
        of an ensemble (needs an emulator with noise channels).
    ensemble : int
        Members per sample with ``loss="crps"`` (2; the cost of a step scales with it).
    loss_limit : float
        Dynamic-loss ratio cap (20).
    loss_window : int
        Dynamic-loss EMA window (25).
    loss_update : {"first_step", "extra_forward"}
        Source of the per-channel losses for the weight update: the first rollout
        step's losses of the batch (no extra cost), or an extra single-step
        forward pass after the optimiser step (Samudra's default).
    recompute : bool
        Keep only layer inputs and recompute activations in the backward pass.
    seed : int
    max_steps : int or None
        Stop after this many optimiser steps in total (None: all epochs).
    max_hours : float or None
        Stop (with a checkpoint) after this wall time; ``--resume`` continues.
    val_every : int
        Validate every this many steps (0: at the end of each epoch).
    val_max_samples : int
        Validation samples, evenly spaced over the validation period.
    best_by : {"val_mse", "val_rollout_rmse"}
        Which validation figure picks ``emulator_best.npz``: the mean MSE of the
        ``K``-step validation rollouts, or the RMSE of one free rollout through the
        whole validation period (a stability check: it grows when errors compound).
    checkpoint_every : int
        Save ``checkpoint_last.npz`` every this many steps (and at each epoch end).
    sample_stride : int
        Spacing of sample start indices.
    on_nonfinite : {"skip", "raise"}
        What to do with a non-finite gradient norm.
    input_noise : float
        Standard deviation (normalised units) of Gaussian noise added to the wet points
        of each training sample's two initial states (0: none).  The rollout loss still
        compares with the true states, so the network learns to pull perturbed states
        back towards the data rather than to carry errors forward; it is drawn from
        ``default_rng([seed, step, 1])`` (reproducible, also after a resume).
    """

    epochs: int = 10
    batch_size: int = 4
    rollout_steps: int = 4
    lr: float = 6e-4
    lr_min: float = 0.0
    warmup_steps: int = 0
    clip: float = 1.0
    ema_decay: float = 0.999
    loss: str = "dynamic"
    ensemble: int = 2
    loss_limit: float = 20.0
    loss_window: int = 25
    loss_update: str = "first_step"
    recompute: bool = True
    seed: int = 0
    max_steps: int | None = None
    max_hours: float | None = None
    val_every: int = 0
    val_max_samples: int = 32
    best_by: str = "val_mse"
    checkpoint_every: int = 50
    sample_stride: int = 1
    on_nonfinite: str = "skip"
    input_noise: float = 0.0

    def __post_init__(self):
        pos = ("epochs", "batch_size", "rollout_steps", "loss_window", "sample_stride",
               "val_max_samples", "checkpoint_every")
        for k in pos:
            if int(getattr(self, k)) < 1:
                raise ValueError(f"{k}={getattr(self, k)} must be >= 1")
        if self.lr <= 0 or self.lr_min < 0 or self.lr_min > self.lr:
            raise ValueError(f"need 0 <= lr_min <= lr and lr > 0, got lr={self.lr}, "
                             f"lr_min={self.lr_min}")
        if self.clip <= 0:
            raise ValueError(f"clip={self.clip} must be > 0")
        if self.loss not in LOSSES:
            raise ValueError(f"loss={self.loss!r} must be one of {LOSSES}")
        if int(self.ensemble) < 2 and self.loss == "crps":
            raise ValueError(f"ensemble={self.ensemble} must be >= 2 with loss='crps' "
                             "(the CRPS spread term needs two members)")
        if self.loss_update not in ("first_step", "extra_forward"):
            raise ValueError(f"loss_update={self.loss_update!r} must be 'first_step' or "
                             f"'extra_forward'")
        if self.best_by not in ("val_mse", "val_rollout_rmse"):
            raise ValueError(f"best_by={self.best_by!r} must be 'val_mse' or 'val_rollout_rmse'")
        if not (self.input_noise >= 0 and math.isfinite(self.input_noise)):
            raise ValueError(f"input_noise={self.input_noise} must be a finite number >= 0")
        if self.on_nonfinite not in ("skip", "raise"):
            raise ValueError(f"on_nonfinite={self.on_nonfinite!r} must be 'skip' or 'raise'")


class Trainer:
    """Rollout trainer (see the module docstring).

    Parameters
    ----------
    emulator : Emulator
        Network plus masks; trained in place.
    data : EmulatorData
    split : Split
    config : TrainConfig
    outdir : str
        Where checkpoints, logs and the final emulator go.
    """

    CKPT = "checkpoint_last.npz"
    LOG = "train_log.jsonl"

    def __init__(self, emulator: Emulator, data: EmulatorData, split: Split,
                 config: TrainConfig, outdir: str, meta=None):
        self.emu = emulator
        self.net = emulator.unet
        self.data = data
        self.split = split
        self.cfg = config
        self.outdir = outdir
        self.meta = dict(meta or {})
        bk = self.net.bk
        self.bk, self.xp = bk, bk.xp
        dt = self.net.dtype
        # the whole normalised data set lives on the compute device
        self.states = bk.asarray(data.states, dtype=dt)
        self.forcing = bk.asarray(data.forcing, dtype=dt)
        self.P = data.spec.n_prognostic
        self.params = self.net.parameters()
        self.grads = self.net.gradients()
        self.opt = Adam(self.params, lr=config.lr)
        self.ema = EMA(self.params, decay=config.ema_decay)
        self.dloss = DynamicLoss(self.P, limit=config.loss_limit, window=config.loss_window,
                                 enabled=config.loss in ("dynamic", "crps"))
        if config.loss == "crps" and emulator.noise_channels == 0:
            raise ValueError("loss='crps' needs a stochastic emulator (noise_channels > 0, "
                             "--noise-channels N): without noise inputs the members are identical")
        K = config.rollout_steps
        self.train_starts = rollout_starts(split.train, K, config.sample_stride)
        if len(self.train_starts) == 0:
            raise ValueError(f"the training period {split.train} is too short for "
                             f"rollout_steps={K} (needs {2 * K + 2} states)")
        vs = rollout_starts(split.val, K, 1)
        if len(vs) > config.val_max_samples:
            vs = vs[np.linspace(0, len(vs) - 1, config.val_max_samples).round().astype(int)]
        self.val_starts = vs
        # incomplete last batches are dropped (every step sees the same batch size)
        self.batches_per_epoch = max(1, len(self.train_starts) // config.batch_size)
        self.total_steps = config.epochs * self.batches_per_epoch
        self.step = 0
        self.history = []

    # ------------------------------------------------------------------ #
    # batches
    # ------------------------------------------------------------------ #
    def epoch_order(self, epoch):
        """Sample start indices of ``epoch`` in training order (reproducible)."""
        rng = np.random.default_rng([self.cfg.seed, epoch])
        return self.train_starts[rng.permutation(len(self.train_starts))]

    def batch(self, step):
        """Start indices of the batch of global step ``step``."""
        epoch, j = divmod(step, self.batches_per_epoch)
        order = self.epoch_order(epoch)
        B = min(self.cfg.batch_size, len(order))
        return order[j * B:(j + 1) * B]

    def _pair(self, idx):
        """``(x_t, x_{t+1})`` for start indices ``idx`` -> ``(2P, B, H, W)`` on the device."""
        xp = self.xp
        idx = xp.asarray(idx)
        st = xp.concatenate([self.states[idx], self.states[idx + 1]], axis=1)
        return xp.ascontiguousarray(st.transpose(1, 0, 2, 3))

    def _fpair(self, idx):
        xp = self.xp
        idx = xp.asarray(idx)
        f = xp.concatenate([self.forcing[idx], self.forcing[idx + 1]], axis=1)
        return xp.ascontiguousarray(f.transpose(1, 0, 2, 3))

    # ------------------------------------------------------------------ #
    # one step
    # ------------------------------------------------------------------ #
    def rollout_loss(self, starts, train=True, backward=True, weights=None, x0=None, ensemble=None):
        """Loss of a ``K``-step rollout from ``starts``, with its gradient if ``backward``.

        Parameters
        ----------
        starts : int array (B,)
            Index of the first initial state of each sample.
        train : bool
            Training mode of the network.
        backward : bool
            Accumulate parameter gradients (into ``net.grads``) and return ``dx0``.
        weights : array (2P,), optional
            Channel weights (default: the dynamic-loss weights).
        x0 : array (2P, B, H, W), optional
            Initial states to use instead of the data's.
        ensemble : bool, optional
            Score an ensemble of ``cfg.ensemble`` members by the fair CRPS (default: when
            ``cfg.loss == "crps"``); otherwise the deterministic member (zero noise) by the MSE.

        Returns
        -------
        loss : float
            ``sum_k L_k`` with the given weights.
        ells : list of numpy arrays (2P,)
            Unweighted per-channel losses (MSE or CRPS) of each step.
        dx0 : array (2P, B, H, W) or None
            Gradient of ``loss`` with respect to the initial states.
        """
        K = self.cfg.rollout_steps
        store = ("inputs" if self.cfg.recompute else "all") if backward else "none"
        w = self.dloss.weights() if weights is None else weights
        mask = self.emu.out_mask
        starts = np.asarray(starts)
        x = self._pair(starts) if x0 is None else x0
        ens = (self.cfg.loss == "crps") if ensemble is None else bool(ensemble)
        M = int(self.cfg.ensemble) if ens else 1
        xp = self.xp
        if M > 1:
            # members stacked along the batch axis, all from the same initial states
            x = xp.concatenate([x] * M, axis=1)
            rng = np.random.default_rng([self.cfg.seed, self.step, 2])
        tapes, dys, ells, total = [], [], [], 0.0
        # forward through the rollout: each call consumes its own previous prediction
        for k in range(K):
            f = self._fpair(starts + 2 * k)
            target = self._pair(starts + 2 * k + 2)
            if M > 1:
                f = xp.concatenate([f] * M, axis=1)
                noise = self.emu.draw_noise(rng, x.shape[1])
            else:
                noise = None  # deterministic member of a stochastic emulator: zeros
            y, tape = self.emu.step(x, f, train=train, store=store, noise=noise)
            if ens:
                loss_k, ell, dy = crps_step_loss(y, target, mask, w, M)
            else:
                loss_k, ell, dy = weighted_step_loss(y, target, mask, w)
            total += loss_k
            ells.append(ell)
            if backward:
                tapes.append(tape)
                dys.append(dy)
            x = y
        if backward:
            # backpropagation through time: the gradient reaching a call's prognostic
            # input (its first 2P channels) is added to the previous call's output gradient
            g = None
            for k in range(K - 1, -1, -1):
                dy = dys[k] if g is None else dys[k] + g
                g = self.emu.backward(dy, tapes[k])
                tapes[k] = dys[k] = None  # free this step's tape
            if M > 1:  # the members share their initial states
                B = g.shape[1] // M
                g = sum(g[:, m * B:(m + 1) * B] for m in range(M))
            return total, ells, g
        return total, ells, None

    def train_step(self):
        """One optimiser step; returns the log record."""
        t0 = time.perf_counter()
        cfg = self.cfg
        starts = self.batch(self.step)
        self.net.zero_grad()
        x0 = None
        if cfg.input_noise > 0:
            x0 = self._pair(starts)
            noise = np.random.default_rng([cfg.seed, self.step, 1]).standard_normal(x0.shape)
            x0 = x0 + self.xp.asarray(noise, dtype=x0.dtype) * (cfg.input_noise * self.emu.out_mask)
        loss, ells, _ = self.rollout_loss(starts, train=True, backward=True, x0=x0)
        norm = clip_grad_norm(self.grads, cfg.clip)  # norm before clipping, for the log
        lr = cosine_lr(self.step, self.total_steps, cfg.lr, cfg.lr_min, cfg.warmup_steps)
        skipped = not (math.isfinite(norm) and math.isfinite(loss))
        if skipped:
            if cfg.on_nonfinite == "raise":
                raise FloatingPointError(f"non-finite loss {loss} or gradient norm {norm} at "
                                         f"step {self.step}")
        else:
            self.opt.step(self.grads, lr=lr)
            self.ema.update(self.params)
            # dynamic-loss weights from this batch's unweighted per-channel losses
            if cfg.loss_update == "extra_forward" and cfg.loss != "crps":
                y, _ = self.emu.step(self._pair(starts), self._fpair(starts), train=True,
                                     store="none", update_stats=False)
                ell, _ = masked_channel_mse(y, self._pair(starts + 2), self.emu.out_mask)
            else:
                ell = ells[0]
            self.dloss.update(ell)
        rec = {"step": self.step, "epoch": self.step // self.batches_per_epoch,
               "loss": loss,
               ("crps" if cfg.loss == "crps" else "mse"): float(np.mean([e.mean() for e in ells])),
               "grad_norm": norm, "lr": lr, "skipped": skipped,
               "seconds": time.perf_counter() - t0}
        self.step += 1
        return rec

    # ------------------------------------------------------------------ #
    # validation with the EMA weights
    # ------------------------------------------------------------------ #
    def validate(self):
        """Mean unweighted MSE (normalised units) of ``K``-step rollouts on the
        validation period, with the EMA weights in evaluation mode."""
        if len(self.val_starts) == 0:
            return None
        # swap the EMA weights in for the validation, then restore the live ones
        backup = {k: v.copy() for k, v in self.params.items()}
        self.ema.copy_to(self.params)
        try:
            ells = []
            B = self.cfg.batch_size
            for j in range(0, len(self.val_starts), B):
                _, e, _ = self.rollout_loss(self.val_starts[j:j + B], train=False, backward=False,
                                            weights=np.ones(2 * self.P), ensemble=False)
                ells.append(np.stack(e))  # (K, 2P)
            e = np.concatenate([x[None] for x in ells]).mean(axis=0)
            free = self._free_rollout_rmse()
        finally:
            for k, v in backup.items():
                self.params[k][...] = v
        rec = {"val_mse": float(e.mean()), "val_mse_last_step": float(e[-1].mean()),
               "val_mse_first_step": float(e[0].mean())}
        rec.update(free)
        return rec

    def _free_rollout_rmse(self):
        """RMSE (normalised units, wet points, all channels) of one free rollout from the
        start of the validation period to its end, and over its last fifth."""
        from .rollout import rollout_normalized  # noqa: PLC0415 (rollout imports this module's users)

        a, b = self.split.val
        n = (b - a) // 2 * 2  # whole model calls only: the last needs forcing up to a + n - 1
        b = a + n
        if n < 4:
            return {}
        pred, _ = rollout_normalized(self.emu, self.data, a, n, latent=False)  # deterministic member
        wet = self.data.wet
        err = ((pred[2:] - self.data.states[a + 2:b]) ** 2 * wet).sum(axis=(-1, -2)) / \
            np.maximum(wet.sum(axis=(-1, -2)), 1)  # (n - 2, P)
        tail = max(1, len(err) // 5)
        return {"val_rollout_rmse": float(np.sqrt(err.mean())),
                "val_rollout_rmse_end": float(np.sqrt(err[-tail:].mean()))}

    # ------------------------------------------------------------------ #
    # checkpoints
    # ------------------------------------------------------------------ #
    def state_arrays(self):
        arrays = {f"model/{k}": v for k, v in self.net.state_dict().items()}
        opt = self.opt.state_dict()
        for k in self.params:
            arrays[f"adam_m/{k}"] = opt["m"][k]
            arrays[f"adam_v/{k}"] = opt["v"][k]
            arrays[f"ema/{k}"] = self.bk.to_numpy(self.ema.shadow[k])
        arrays["dloss_scale"] = self.dloss.scale
        info = {"step": self.step, "adam_t": opt["t"], "ema_n": self.ema.n,
                "dloss_updates": self.dloss.n_updates, "train_config": asdict(self.cfg),
                "total_steps": self.total_steps, "history": self.history}
        arrays["info"] = _json_array(info)
        return arrays

    def save_checkpoint(self, path=None):
        path = path or os.path.join(self.outdir, self.CKPT)
        _atomic_savez(path, self.state_arrays())
        return path

    def load_checkpoint(self, path=None):
        """Restore the full training state from a checkpoint.

        Raises
        ------
        ValueError
            If the checkpoint was written with a different training configuration
            in a way that changes the batch sequence (batch size, rollout steps,
            seed, sample stride).
        """
        path = path or os.path.join(self.outdir, self.CKPT)
        with np.load(path, allow_pickle=False) as z:
            info = _read_json(z["info"])
            old = info["train_config"]
            for k in ("batch_size", "rollout_steps", "seed", "sample_stride"):
                if old[k] != getattr(self.cfg, k):
                    raise ValueError(f"cannot resume: checkpoint has {k}={old[k]}, "
                                     f"the run asks for {k}={getattr(self.cfg, k)}")
            self.net.load_state_dict({k[6:]: z[k] for k in z.files if k.startswith("model/")})
            self.opt.load_state_dict({"t": info["adam_t"],
                                      "m": {k: z[f"adam_m/{k}"] for k in self.params},
                                      "v": {k: z[f"adam_v/{k}"] for k in self.params}})
            self.ema.load_state_dict({"n": info["ema_n"],
                                      "shadow": {k: z[f"ema/{k}"] for k in self.params}})
            self.dloss.load_state_dict({"scale": z["dloss_scale"],
                                        "n_updates": info["dloss_updates"]})
        self.step = int(info["step"])
        self.history = list(info.get("history", []))

    def save_emulator(self, path=None, use_ema=True):
        """Write the trained emulator (EMA weights by default) for rollouts."""
        path = path or os.path.join(self.outdir, "emulator.npz")
        meta = dict(self.meta)
        meta.update({"train_config": asdict(self.cfg), "split": self.split.to_json(),
                     "steps": self.step, "weights": "ema" if use_ema else "raw"})
        self.emu.save(path, params=self.ema.shadow if use_ema else None, meta=meta)
        return path

    # ------------------------------------------------------------------ #
    def fit(self, resume=False, progress=True):
        """Train until the configured number of steps (or time budget) is reached.

        Returns
        -------
        dict
            Summary: steps done, last training loss, last validation record,
            whether the run finished (False when stopped by ``max_hours``).
        """
        os.makedirs(self.outdir, exist_ok=True)
        ckpt = os.path.join(self.outdir, self.CKPT)
        log_path = os.path.join(self.outdir, self.LOG)
        if resume and os.path.exists(ckpt):
            self.load_checkpoint(ckpt)
            _truncate_log(log_path, self.step)
        cfg = self.cfg
        key = cfg.best_by
        best = min((h[key] for h in self.history if key in h), default=float("inf"))
        end = self.total_steps if cfg.max_steps is None else min(self.total_steps, cfg.max_steps)
        t_start = time.perf_counter()
        bar = None
        if progress:
            from tqdm import tqdm  # noqa: PLC0415

            bar = tqdm(total=end, initial=self.step, desc="train", unit="step", dynamic_ncols=True)
        last, val, finished = None, None, True
        # append: a resumed run continues the same log
        with open(log_path, "a") as log:
            while self.step < end:
                rec = self.train_step()
                last = rec
                log.write(json.dumps(rec) + "\n")
                epoch_end = self.step % self.batches_per_epoch == 0
                do_val = (cfg.val_every and self.step % cfg.val_every == 0) or \
                         (not cfg.val_every and epoch_end) or self.step == end
                if do_val:
                    val = self.validate()
                    if val is not None:
                        vrec = {"step": self.step, **val}
                        self.history.append(vrec)
                        log.write(json.dumps(vrec) + "\n")
                        # keep the EMA weights with the lowest validation error as well
                        if val.get(key, float("inf")) < best:
                            best = val[key]
                            self.save_emulator(os.path.join(self.outdir, "emulator_best.npz"))
                log.flush()
                if bar is not None:
                    bar.update(1)
                    post = {"loss": f"{rec['loss']:.4g}", "gn": f"{rec['grad_norm']:.3g}"}
                    if val:
                        post["val"] = f"{val['val_mse']:.4g}"
                    bar.set_postfix(post)
                if self.step % cfg.checkpoint_every == 0 or epoch_end:
                    self.save_checkpoint(ckpt)
                # a time budget ends the run cleanly; --resume continues it
                if cfg.max_hours is not None and \
                        time.perf_counter() - t_start > cfg.max_hours * 3600 and self.step < end:
                    finished = False
                    break
        if bar is not None:
            bar.close()
        self.save_checkpoint(ckpt)
        self.save_emulator()
        return {"steps": self.step, "total_steps": end, "finished": finished,
                "last": last, "val": val, f"best_{key}": best}


def _truncate_log(path, step):
    """Drop log records written after the checkpoint at ``step`` (they will be redone)."""
    if not os.path.exists(path):
        return
    keep = []
    with open(path) as f:
        for line in f:
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by the interruption
            if ("loss" in r and r["step"] < step) or ("val_mse" in r and r["step"] <= step):
                keep.append(line if line.endswith("\n") else line + "\n")
    with open(path, "w") as f:
        f.writelines(keep)
