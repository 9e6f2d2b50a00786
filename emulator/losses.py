"""Masked per-channel MSE and Samudra 2's dynamic loss.

Per output channel ``c`` (a variable at a level and an output time)::

    l_c = mean_{b,h,w} ((pred_c - target_c) * wet_c)^2

(the mean runs over *all* points, so a level with few wet points gets a
smaller ``l_c``, as in Samudra).  The loss of one model step is

    L = (1 / 2P) * sum_{h=1,2} sum_{v=1..P} s_v * l_{h,v}

with per-variable weights ``s_v`` (1 for the plain MSE).  The dynamic loss
updates them after every batch from the unweighted per-channel losses::

    t_v = mean_h 1 / l_{h,v}            (l = 0 replaced by 1e-8)
    t_v <- clip(t_v, m, limit * m),     m = min_v t_v
    s_v <- ((N - 1) s_v + t_v) / N      (N = 25: s <- 24/25 s + t/25)

so that every channel contributes about equally, with the largest weight at
most ``limit`` (20) times the smallest target.

The ensemble loss (:func:`crps_step_loss`) replaces ``l_c`` by the *fair* CRPS of an
``M``-member ensemble ``y_1..y_M`` (members stacked along the batch axis)::

    l_c = mean_{b,h,w} wet_c [ (1/M) sum_m |y_m - t|  -  1/(2 M (M-1)) sum_{m != m'} |y_m - y_m'| ]

(for ``M = 2``: ``(|y_1 - t| + |y_2 - t|)/2 - |y_1 - y_2|/2``).  Its minimum over ensemble
distributions is the distribution of the target, so unlike the MSE it does not reward
damping the unpredictable part of the anomalies (the deterministic emulator's variance
collapse); the same dynamic weights apply, computed from the per-channel CRPS.
"""

from __future__ import annotations

import numpy as np


def masked_channel_mse(pred, target, wet):
    """Per-channel masked MSE and the pieces of its gradient.

    Parameters
    ----------
    pred, target : arrays (C, B, H, W)
    wet : array broadcastable to (C, B, H, W)

    Returns
    -------
    ell : numpy array (C,) float64
        ``l_c`` as defined in the module docstring.
    diff : array (C, B, H, W)
        ``(pred - target) * wet``; ``d l_c / d pred_c = 2 diff_c wet_c / n`` with
        ``n = B H W``.
    """
    diff = (pred - target) * wet
    C = diff.shape[0]
    # float64 sums of squares per channel (one value per channel to the host)
    d2 = diff.reshape(C, -1)
    n = d2.shape[1]
    ell = (d2.astype(np.float64) ** 2).sum(axis=1) / n
    if hasattr(ell, "get"):
        ell = ell.get()
    return np.asarray(ell), diff


def weighted_step_loss(pred, target, wet, weights):
    """Loss of one model step and its gradient with respect to ``pred``.

    Parameters
    ----------
    pred, target : arrays (2P, B, H, W)
    wet : array broadcastable to (2P, B, H, W)
    weights : numpy array (2P,)
        Per-channel weights (the dynamic weights tiled over the two times).

    Returns
    -------
    loss : float
        ``mean_c(weights_c * l_c)``.
    ell : numpy array (2P,)
        Unweighted per-channel losses.
    dpred : array (2P, B, H, W)
        ``dL/dpred = 2 weights_c diff_c wet_c / (n C)``.
    """
    ell, diff = masked_channel_mse(pred, target, wet)
    C = diff.shape[0]
    n = diff[0].size
    coef = (2.0 / (n * C)) * np.asarray(weights, dtype=np.float64)
    xp = _xp(diff)
    c = xp.asarray(coef.astype(diff.dtype))[:, None, None, None]
    dpred = diff * wet * c
    return float(np.dot(weights, ell) / C), ell, dpred


def crps_step_loss(pred, target, wet, weights, members):
    """Fair-CRPS loss of one model step of an ensemble and its gradient (module docstring).

    Parameters
    ----------
    pred : array (2P, M B, H, W)
        Ensemble predictions, member ``m`` in batch entries ``[m B, (m+1) B)``.
    target : array (2P, B, H, W)
    wet : array broadcastable to (2P, B, H, W)
    weights : numpy array (2P,)
    members : int
        Ensemble size ``M`` (>= 1; ``M = 1`` is the mean absolute error).

    Returns
    -------
    loss : float
        ``mean_c(weights_c * l_c)``.
    ell : numpy array (2P,)
        Unweighted per-channel CRPS ``l_c``.
    dpred : array (2P, M B, H, W)
        ``dL/dpred_m = weights_c wet [sign(y_m - t)/M - sum_{m'!=m} sign(y_m - y_m')/(M(M-1))] / (n C)``
        with ``n = B H W`` (``sign(0) = 0``).
    """
    M = int(members)
    if M < 1:
        raise ValueError(f"members={members} must be >= 1")
    C, MB = pred.shape[:2]
    B = target.shape[1]
    if MB != M * B:
        raise ValueError(f"pred has {MB} batch entries, expected members * batch = {M} * {B}")
    xp = _xp(pred)
    ys = [pred[:, m * B:(m + 1) * B] for m in range(M)]
    skill = [xp.sign(y - target) for y in ys]
    grads = [g / M for g in skill]
    pt = sum(xp.abs(y - target) for y in ys) / M
    if M > 1:
        c = 1.0 / (M * (M - 1))
        spread = 0.0
        for a in range(M):
            for b in range(a + 1, M):
                d = ys[a] - ys[b]
                spread = spread + xp.abs(d)
                sg = xp.sign(d) * c
                grads[a] = grads[a] - sg
                grads[b] = grads[b] + sg
        # sum over ordered pairs = 2 x sum over unordered pairs
        pt = pt - spread * (2.0 / (2 * M * (M - 1)))
    n = pt[0].size
    ell = (pt * wet).reshape(C, -1).astype(np.float64).sum(axis=1) / n
    if hasattr(ell, "get"):
        ell = ell.get()
    ell = np.asarray(ell)
    coef = (1.0 / (n * C)) * np.asarray(weights, dtype=np.float64)
    cw = xp.asarray(coef.astype(pred.dtype))[:, None, None, None] * wet
    dpred = xp.concatenate([g * cw for g in grads], axis=1).astype(pred.dtype, copy=False)
    return float(np.dot(weights, ell) / C), ell, dpred


def _xp(a):
    if type(a).__module__.startswith("cupy"):  # pragma: no cover - GPU only
        import cupy  # noqa: PLC0415

        return cupy
    return np


class DynamicLoss:
    """Per-variable loss weights updated from inverse per-channel MSE.

    Parameters
    ----------
    n_vars : int
        Number of variable-level channels ``P`` (weights are shared by the
        two output times).
    limit : float or None
        Ratio cap: targets are clamped to ``[m, limit * m]``; ``None`` disables it.
    window : int
        EMA window ``N``: ``s <- ((N - 1) s + t) / N``.
    enabled : bool
        If False the weights stay 1 (plain MSE) and :meth:`update` does nothing.
    """

    def __init__(self, n_vars, limit=20.0, window=25, enabled=True):
        if n_vars < 1:
            raise ValueError(f"n_vars={n_vars} must be >= 1")
        if limit is not None and limit < 1:
            raise ValueError(f"limit={limit} must be >= 1 (or None)")
        if window < 1:
            raise ValueError(f"window={window} must be >= 1")
        self.n_vars = int(n_vars)
        self.limit = None if limit is None else float(limit)
        self.window = int(window)
        self.enabled = bool(enabled)
        self.scale = np.ones(self.n_vars)
        self.n_updates = 0

    def weights(self, hist=2):
        """Weights of the ``hist * P`` output channels (time-major tiling of ``s``)."""
        return np.tile(self.scale, hist)

    def targets(self, ell):
        """Clamped target weights ``t_v`` from unweighted losses ``ell`` (hist * P,)."""
        ell = np.asarray(ell, dtype=np.float64)
        if ell.size % self.n_vars:
            raise ValueError(f"{ell.size} channel losses is not a multiple of n_vars={self.n_vars}")
        ell = np.where(ell == 0, 1e-8, ell)
        # channels are time-major (hist, var): average the inverse losses over times
        t = (1.0 / ell).reshape(-1, self.n_vars).mean(axis=0)
        if self.limit is not None:
            m = t.min()
            t = np.clip(t, m, self.limit * m)
        return t

    def update(self, ell):
        """EMA update of the weights from the unweighted per-channel losses."""
        if not self.enabled:
            return
        t = self.targets(ell)
        if not np.all(np.isfinite(t)):
            return  # a non-finite batch must not poison the weights
        n = self.window
        self.scale = ((n - 1) * self.scale + t) / n
        self.n_updates += 1

    def normalized(self):
        """Unit-mean copy of the weights (for logs)."""
        return self.scale / self.scale.mean()

    def state_dict(self):
        return {"scale": self.scale.copy(), "n_updates": self.n_updates}

    def load_state_dict(self, d):
        scale = np.asarray(d["scale"], dtype=np.float64)
        if scale.shape != self.scale.shape:
            raise ValueError(f"dynamic-loss scale has shape {scale.shape}, expected {self.scale.shape}")
        self.scale = scale.copy()
        self.n_updates = int(d["n_updates"])
