"""A trained emulator: the U-Net with its data specification, masks and static fields.

:class:`Emulator` wraps one autoregressive step in normalised space,

    (x_{t-1}, x_t), (f_{t-1}, f_t) -> (x_{t+1}, x_{t+2}),

either as the network output itself (Samudra 2) or, with ``residual=True``
(Samudra's ``pred_residuals`` option), as an increment of the input pair:
``(x_{t+1}, x_{t+2}) = (x_{t-1}, x_t) + net(...)``, both masked to the ocean,

A *stochastic* emulator (``noise_channels = n > 0``) takes ``n`` further input channels of
standard Gaussian noise, drawn afresh for every call; different draws give different ensemble
members (trained with the fair CRPS, :func:`emulator.losses.crps_step_loss`).  The noise is white
in space, or with ``noise_length = L > 0`` Gaussian-smoothed over L grid cells (periodic in x,
reflecting in y) and rescaled to unit pointwise variance, so that its correlation between cells
d apart is ``exp(-d^2 / (4 L^2))``.  All-zero noise gives one deterministic member.

The class saves/loads everything a rollout needs in one ``.npz`` file (weights,
BatchNorm buffers, wet masks, static fields, the JSON of the network
configuration and the :class:`~emulator.data.DataSpec`).
"""

from __future__ import annotations

import json
import os
import zlib

import numpy as np

from .backend import get_backend
from .data import DataSpec
from .unet import UNet, UNetConfig


class Emulator:
    """One U-Net step with its masks.

    Parameters
    ----------
    unet : UNet
    spec : DataSpec
    wet : array (P, H, W)
        Wet masks of the prognostic channels.
    static : array (S, H, W)
        Static input channels.
    residual : bool
        Predict increments of the input states instead of the states.
    noise_channels : int
        Number of Gaussian noise input channels (0: deterministic emulator).  The network's
        ``in_channels`` must equal ``spec.in_channels + noise_channels``.
    noise_length : float
        Correlation length of the noise inputs in grid cells (0: white noise).
    """

    def __init__(self, unet: UNet, spec: DataSpec, wet, static, residual=False, noise_channels=0,
                 noise_length=0.0):
        self.unet = unet
        self.spec = spec
        self.residual = bool(residual)
        n = int(noise_channels)
        if n < 0:
            raise ValueError(f"noise_channels={noise_channels} must be >= 0")
        if unet.config.in_channels != spec.in_channels + n:
            raise ValueError(f"the network takes {unet.config.in_channels} input channels, but the data "
                             f"give {spec.in_channels} plus noise_channels={n}")
        self.noise_channels = n
        self.noise_length = noise_length
        bk = unet.bk
        self.bk = bk
        self.xp = bk.xp
        dt = unet.dtype
        self.wet_np = np.asarray(wet, np.float32)
        self.static_np = np.asarray(static, np.float32)
        self.out_mask = bk.asarray(np.concatenate([self.wet_np, self.wet_np])[:, None], dtype=dt)
        self.static = bk.asarray(self.static_np, dtype=dt)

    @property
    def n_prognostic(self):
        return self.spec.n_prognostic

    @property
    def noise_length(self):
        """Correlation length of the noise inputs in grid cells (0: white)."""
        return self._noise_length

    @noise_length.setter
    def noise_length(self, value):
        v = float(value)
        if not (np.isfinite(v) and v >= 0):
            raise ValueError(f"noise_length={value}: must be a finite number >= 0 (grid cells; "
                             "0 for white noise inputs)")
        self._noise_length = v

    def draw_noise(self, rng, batch):
        """Noise input of one call, ``(noise_channels, batch, H, W)`` standard normal values
        drawn on the host from ``rng`` (a seed means the same member on CPU and GPU), smoothed
        over ``noise_length`` cells when that is positive (:func:`smooth_noise`)."""
        H, W = self.static.shape[-2:]
        e = rng.standard_normal((self.noise_channels, int(batch), H, W))
        if self._noise_length > 0:
            e = smooth_noise(e, self._noise_length)
        return self.bk.asarray(e, dtype=self.unet.dtype)

    def inputs(self, x_prog, f_pair, noise=None):
        """Concatenate ``(2P, B, H, W)`` states, ``(2F, B, H, W)`` forcing, the static fields and,
        for a stochastic emulator, the ``(n, B, H, W)`` noise (``None``: zeros)."""
        xp = self.xp
        B = x_prog.shape[1]
        s = xp.broadcast_to(self.static[:, None], (self.static.shape[0], B) + self.static.shape[1:])
        parts = [x_prog, f_pair.astype(x_prog.dtype, copy=False), s]
        if self.noise_channels:
            shape = (self.noise_channels, B) + x_prog.shape[2:]
            if noise is None:
                noise = xp.zeros(shape, dtype=x_prog.dtype)
            elif tuple(noise.shape) != shape:
                raise ValueError(f"noise has shape {tuple(noise.shape)}, expected {shape}")
            parts.append(noise.astype(x_prog.dtype, copy=False))
        elif noise is not None:
            raise ValueError("noise given to an emulator without noise channels")
        return xp.concatenate(parts, axis=0)

    def step(self, x_prog, f_pair, train=False, store="none", update_stats=True, noise=None):
        """One model call; returns ``(y (2P, B, H, W), tape)``; ``noise``: see :meth:`inputs`."""
        y, tape = self.unet.forward(self.inputs(x_prog, f_pair, noise), self.out_mask, train=train,
                                    store=store, update_stats=update_stats)
        if self.residual:
            y += x_prog * self.out_mask
        return y, tape

    def backward(self, dy, tape):
        """Gradient of a step with respect to its prognostic input ``x_prog`` (2P, B, H, W).

        Parameter gradients accumulate in the network; the forcing and static
        inputs get none.
        """
        g = self.unet.backward(dy, tape)[:2 * self.n_prognostic]
        if self.residual:
            g = g + dy * self.out_mask
        return g

    def add_noise_channels(self, n, scale=0.0, seed=0):
        """Make the emulator stochastic by ``n`` more noise input channels (fine-tuning a
        deterministic emulator into an ensemble one).

        The new input columns of the first layer get weights ``scale * N(0, 1) / sqrt(fan_in)``
        (``scale = 0``: the emulator is unchanged for any noise).  Needs a network with a stem
        (a 1x1 first layer): without one the first block's inner width depends on the input width.
        """
        n = int(n)
        if n < 0:
            raise ValueError(f"noise channels n={n} must be >= 0")
        if n == 0:
            return
        stem = self.unet.stem
        if stem is None:
            raise ValueError("add_noise_channels needs a network with a stem (a 1x1 input layer); "
                             "train a new emulator with --noise-channels instead")
        w = self.bk.to_numpy(stem.params["weight"])  # (cout, cin, 1, 1)
        rng = np.random.default_rng(seed)
        extra = scale * rng.standard_normal((w.shape[0], n, 1, 1)) / np.sqrt(w.shape[1] + n)
        w2 = np.concatenate([w, extra.astype(w.dtype)], axis=1)
        stem.params["weight"] = self.bk.asarray(w2, dtype=self.unet.dtype)
        stem.grads["weight"] = self.xp.zeros_like(stem.params["weight"])
        stem.cin += n
        self.unet.config.in_channels += n
        self.noise_channels += n

    def zero_head(self):
        """Set the output convolution to zero, so that a residual emulator starts as persistence."""
        for v in self.unet.head.params.values():
            v[...] = 0

    # ------------------------------------------------------------------ #
    def save(self, path, params=None, meta=None):
        """Write the emulator to ``path`` (``.npz``).

        Parameters
        ----------
        params : dict, optional
            Weights to save instead of the live ones (e.g. the EMA weights).
        meta : dict, optional
            Extra JSON-serialisable metadata (training configuration, split, ...).
        """
        state = self.unet.state_dict()
        # e.g. the EMA weights replace the live ones; BatchNorm buffers stay as they are
        if params is not None:
            for k, v in params.items():
                state[k] = self.bk.to_numpy(v)
        arrays = {f"param/{k}": v for k, v in state.items()}
        info = {"unet": self.unet.config.to_dict(), "spec": self.spec.to_json(),
                "dtype": str(self.unet.dtype), "residual": self.residual,
                "noise_channels": self.noise_channels, "noise_length": self.noise_length,
                "meta": meta or {}}
        arrays["wet"] = self.wet_np
        arrays["static"] = self.static_np
        arrays["info"] = _json_array(info)
        _atomic_savez(path, arrays)

    @classmethod
    def load(cls, path, backend="cpu", dtype=None):
        """Read an emulator written by :meth:`save`.

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        """
        if not os.path.exists(path):
            raise FileNotFoundError(f"emulator file {path!r} does not exist")
        with np.load(path, allow_pickle=False) as z:
            info = _read_json(z["info"])
            state = {k[len("param/"):]: z[k] for k in z.files if k.startswith("param/")}
            wet, static = z["wet"], z["static"]
        cfg = dict(info["unet"])
        unet = UNet(UNetConfig(**cfg), backend=get_backend(backend),
                    dtype=np.dtype(dtype or info["dtype"]), seed=0)
        unet.load_state_dict(state)
        emu = cls(unet, DataSpec.from_json(info["spec"]), wet, static,
                  residual=info.get("residual", False), noise_channels=info.get("noise_channels", 0),
                  noise_length=info.get("noise_length", 0.0))
        emu.meta = info.get("meta", {})
        return emu


def smooth_noise(e, length):
    """Gaussian-smoothed white noise over the last two axes (y reflecting, x periodic), rescaled
    so that its pointwise variance is 1 away from the y boundaries.

    The filter has standard deviation ``length`` cells; smoothed white noise then has the
    correlation ``exp(-d^2 / (4 length^2))`` between points ``d`` cells apart.
    """
    from scipy.ndimage import gaussian_filter  # noqa: PLC0415

    sig = (0,) * (e.ndim - 2) + (length, length)
    mode = ("reflect",) * (e.ndim - 1) + ("wrap",)
    # variance of the filtered white noise = sum of the squared filter weights
    delta = np.zeros((int(8 * length) + 1, int(8 * length) + 1))
    delta[delta.shape[0] // 2, delta.shape[1] // 2] = 1.0
    w = gaussian_filter(delta, length, mode="constant")
    return gaussian_filter(e, sig, mode=mode) / np.sqrt((w ** 2).sum())


def _json_array(obj):
    """JSON metadata as a zlib-compressed UTF-8 byte array for ``.npz`` files.

    A NumPy string scalar stores 4 bytes per character (UCS-4); with per-point
    normalisation maps in the metadata that made 27 of an emulator file's 31 MB.
    Compressed UTF-8 bytes take about a tenth of the UTF-8 text.  Only the metadata is
    compressed: the weights barely compress, and compressing them would slow every
    checkpoint of a large network.
    """
    return np.frombuffer(zlib.compress(json.dumps(obj, default=float).encode("utf-8")), dtype=np.uint8)


def _read_json(arr):
    """Inverse of :func:`_json_array`; also reads uncompressed UTF-8 bytes and the older
    UCS-4 string scalars."""
    if arr.dtype == np.uint8:
        raw = arr.tobytes()
        # JSON text starts with "{"; a zlib stream never does (its first byte is 0x?8)
        return json.loads((raw if raw[:1] == b"{" else zlib.decompress(raw)).decode("utf-8"))
    return json.loads(str(arr))


def _atomic_savez(path, arrays):
    """``np.savez`` to a temporary name, then rename (never leaves a half-written file)."""
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = os.path.join(d, f".tmp_{os.getpid()}_{os.path.basename(path)}")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)
