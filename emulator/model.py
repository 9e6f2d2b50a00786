"""A trained emulator: the U-Net with its data specification, masks and static fields.

:class:`Emulator` wraps one autoregressive step in normalised space,

    (x_{t-1}, x_t), (f_{t-1}, f_t) -> (x_{t+1}, x_{t+2}),

either as the network output itself (Samudra 2) or, with ``residual=True``
(Samudra's ``pred_residuals`` option), as an increment of the input pair:
``(x_{t+1}, x_{t+2}) = (x_{t-1}, x_t) + net(...)``, both masked to the ocean,

and saves/loads everything a rollout needs in one ``.npz`` file (weights,
BatchNorm buffers, wet masks, static fields, the JSON of the network
configuration and the :class:`~emulator.data.DataSpec`).
"""

from __future__ import annotations

import json
import os

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
    """

    def __init__(self, unet: UNet, spec: DataSpec, wet, static, residual=False):
        self.unet = unet
        self.spec = spec
        self.residual = bool(residual)
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

    def inputs(self, x_prog, f_pair):
        """Concatenate ``(2P, B, H, W)`` states, ``(2F, B, H, W)`` forcing and the static fields."""
        B = x_prog.shape[1]
        s = self.xp.broadcast_to(self.static[:, None], (self.static.shape[0], B) + self.static.shape[1:])
        return self.xp.concatenate([x_prog, f_pair.astype(x_prog.dtype, copy=False), s], axis=0)

    def step(self, x_prog, f_pair, train=False, store="none", update_stats=True):
        """One model call; returns ``(y (2P, B, H, W), tape)``."""
        y, tape = self.unet.forward(self.inputs(x_prog, f_pair), self.out_mask, train=train,
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
                "dtype": str(self.unet.dtype), "residual": self.residual, "meta": meta or {}}
        arrays["wet"] = self.wet_np
        arrays["static"] = self.static_np
        arrays["info"] = np.array(json.dumps(info, default=float))
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
            info = json.loads(str(z["info"]))
            state = {k[len("param/"):]: z[k] for k in z.files if k.startswith("param/")}
            wet, static = z["wet"], z["static"]
        cfg = dict(info["unet"])
        unet = UNet(UNetConfig(**cfg), backend=get_backend(backend),
                    dtype=np.dtype(dtype or info["dtype"]), seed=0)
        unet.load_state_dict(state)
        emu = cls(unet, DataSpec.from_json(info["spec"]), wet, static,
                  residual=info.get("residual", False))
        emu.meta = info.get("meta", {})
        return emu


def _atomic_savez(path, arrays):
    """``np.savez`` to a temporary name, then rename (never leaves a half-written file)."""
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = os.path.join(d, f".tmp_{os.getpid()}_{os.path.basename(path)}")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)
