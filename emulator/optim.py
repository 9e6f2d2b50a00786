"""Adam, the cosine learning-rate schedule, gradient-norm clipping and the weight EMA.

All operate on dicts ``{name: array}`` of live parameter and gradient arrays
(see :meth:`emulator.layers.Module.parameters`) and update them in place.
"""

from __future__ import annotations

import math

import numpy as np


class Adam:
    """Adam (Kingma and Ba) exactly as ``torch.optim.Adam`` without weight decay.

    ``m <- b1 m + (1 - b1) g``, ``v <- b2 v + (1 - b2) g^2``,
    ``p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``.

    Parameters
    ----------
    params : dict[str, array]
        Live parameter arrays.
    lr : float
    betas : (float, float)
    eps : float
    """

    def __init__(self, params, lr=6e-4, betas=(0.9, 0.999), eps=1e-8):
        if lr <= 0:
            raise ValueError(f"lr={lr} must be > 0")
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"betas={betas} must lie in [0, 1)")
        self.params = params
        self.lr = float(lr)
        self.b1, self.b2 = float(betas[0]), float(betas[1])
        self.eps = float(eps)
        self.t = 0
        self.m = {k: _zeros_like(v) for k, v in params.items()}
        self.v = {k: _zeros_like(v) for k, v in params.items()}

    def step(self, grads, lr=None):
        """One update with gradients ``grads`` (same keys as ``params``)."""
        lr = self.lr if lr is None else float(lr)
        self.t += 1
        bc1 = 1.0 - self.b1 ** self.t
        bc2 = 1.0 - self.b2 ** self.t
        step = lr / bc1
        # in-place updates: no new parameter arrays, so views held elsewhere stay valid
        for k, p in self.params.items():
            g = grads[k]
            m, v = self.m[k], self.v[k]
            m *= self.b1
            m += (1.0 - self.b1) * g
            v *= self.b2
            v += (1.0 - self.b2) * (g * g)
            denom = _sqrt(v) / math.sqrt(bc2) + self.eps
            p -= (step * m) / denom

    def state_dict(self):
        tn = _to_numpy
        return {"t": self.t, "m": {k: tn(v) for k, v in self.m.items()},
                "v": {k: tn(v) for k, v in self.v.items()}}

    def load_state_dict(self, d):
        self.t = int(d["t"])
        for store, key in ((self.m, "m"), (self.v, "v")):
            for k in store:
                store[k][...] = _like(store[k], d[key][k])


def cosine_lr(step, total_steps, lr_max, lr_min=0.0, warmup=0):
    """Cosine-annealed learning rate.

    ``lr = lr_min + (lr_max - lr_min) (1 + cos(pi s / S)) / 2`` for step ``s`` of
    ``S = total_steps`` (after an optional linear warm-up of ``warmup`` steps);
    ``lr_min`` after the end.
    """
    if total_steps <= 0:
        raise ValueError(f"total_steps={total_steps} must be > 0")
    if step < warmup:
        return lr_max * (step + 1) / warmup
    s = min(step - warmup, total_steps - warmup)
    span = max(total_steps - warmup, 1)
    return lr_min + 0.5 * (lr_max - lr_min) * (1.0 + math.cos(math.pi * s / span))


def grad_norm(grads):
    """Global 2-norm ``sqrt(sum_k ||g_k||^2)`` (float64 accumulation, fixed order)."""
    total = 0.0
    # sorted keys: the same summation order on every call (bitwise reproducible)
    for k in sorted(grads):
        g = grads[k]
        total += float((g.astype(np.float64) ** 2).sum())
    return math.sqrt(total)


def clip_grad_norm(grads, max_norm):
    """Scale the gradients in place so that their global norm is at most ``max_norm``.

    Same rule as ``torch.nn.utils.clip_grad_norm_``: multiply by
    ``min(1, max_norm / (norm + 1e-6))``.

    Returns
    -------
    norm : float
        The norm *before* clipping (``inf`` or ``nan`` if a gradient is not finite;
        the gradients are then left untouched).
    """
    norm = grad_norm(grads)
    if not math.isfinite(norm):
        return norm
    coef = max_norm / (norm + 1e-6)
    if coef < 1.0:
        for g in grads.values():
            g *= coef
    return norm


class EMA:
    """Exponential moving average of the weights with Samudra's warm-up.

    After the ``n``-th update (``n`` starting at 0) the decay is
    ``min(decay, (1 + n) / (10 + n))`` and ``e <- d e + (1 - d) p``.
    Buffers (BatchNorm running statistics) are not averaged.
    """

    def __init__(self, params, decay=0.999):
        if not 0 <= decay < 1:
            raise ValueError(f"ema decay={decay} must lie in [0, 1)")
        self.decay = float(decay)
        self.n = 0
        self.shadow = {k: v.copy() for k, v in params.items()}

    def update(self, params):
        d = min(self.decay, (1.0 + self.n) / (10.0 + self.n))
        for k, p in params.items():
            e = self.shadow[k]
            e *= d
            e += (1.0 - d) * p
        self.n += 1

    def copy_to(self, params):
        """Write the averaged weights into ``params`` (in place)."""
        for k, p in params.items():
            p[...] = self.shadow[k]

    def state_dict(self):
        return {"n": self.n, "shadow": {k: _to_numpy(v) for k, v in self.shadow.items()}}

    def load_state_dict(self, d):
        self.n = int(d["n"])
        for k in self.shadow:
            self.shadow[k][...] = _like(self.shadow[k], d["shadow"][k])


def _zeros_like(a):
    z = a.copy()
    z[...] = 0
    return z


def _sqrt(a):
    if type(a).__module__.startswith("cupy"):  # pragma: no cover - GPU only
        import cupy  # noqa: PLC0415

        return cupy.sqrt(a)
    return np.sqrt(a)


def _to_numpy(a):
    return a.get() if hasattr(a, "get") else np.array(a)


def _like(ref, val):
    if type(ref).__module__.startswith("cupy"):  # pragma: no cover - GPU only
        import cupy  # noqa: PLC0415

        return cupy.asarray(val, dtype=ref.dtype)
    return np.asarray(val, dtype=ref.dtype)
