"""Layers with a forward pass and a hand-written backward pass.

Every layer works on channel-major activations ``x`` of shape ``(C, B, H, W)``
(see :mod:`emulator.backend`) and follows one protocol::

    y, cache = layer.forward(x, train=True)
    dx = layer.backward(dy, cache)      # accumulates into layer.grads

``cache`` holds what the backward pass needs; dropping it and calling
``forward`` again on the same input rebuilds it (activation recomputation).
Parameter gradients are *accumulated* (``+=``) so that a rollout of several
steps sums its contributions; call :meth:`Module.zero_grad` between
optimiser steps.

Conventions match PyTorch so that weights can be exchanged with the reference
implementation in the benchmark: convolution weights are ``(C_out, C_in, k, k)``
with a bias, BatchNorm has an affine transform and running statistics
(momentum 0.1, unbiased running variance), InstanceNorm has neither, and the
default initialisation draws weights and biases from ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``.
"""

from __future__ import annotations

import numpy as np

from .backend import Backend, get_backend


class Module:
    """Minimal container of parameters, their gradients, buffers and child modules.

    Attributes
    ----------
    params, grads : dict[str, array]
        Trainable arrays and their accumulated gradients (same shapes).
    buffers : dict[str, array]
        Non-trainable state saved with the model (BatchNorm running statistics).
    children : dict[str, Module]
        Sub-modules, in registration order.
    """

    def __init__(self, backend: Backend | str = "cpu", dtype=np.float32):
        self.bk = get_backend(backend)
        self.xp = self.bk.xp
        self.dtype = np.dtype(dtype)
        self.params: dict = {}
        self.grads: dict = {}
        self.buffers: dict = {}
        self.children: dict[str, Module] = {}

    # -- registration ---------------------------------------------------- #
    def add_param(self, name, value):
        """Register a trainable array (moved to the backend, cast to the model dtype)."""
        arr = self.bk.asarray(np.asarray(value), dtype=self.dtype)
        self.params[name] = arr
        self.grads[name] = self.xp.zeros_like(arr)
        return arr

    def add_buffer(self, name, value):
        """Register a non-trainable array saved in the state dict."""
        arr = self.bk.asarray(np.asarray(value), dtype=self.dtype)
        self.buffers[name] = arr
        return arr

    def add_child(self, name, module):
        """Register a sub-module and return it."""
        self.children[name] = module
        return module

    # -- traversal ------------------------------------------------------- #
    def named_modules(self, prefix=""):
        """Yield ``(dotted_name, module)`` for this module and all descendants."""
        yield prefix, self
        for name, child in self.children.items():
            yield from child.named_modules(f"{prefix}{name}.")

    def parameters(self):
        """Dict ``{dotted name: parameter array}`` (the live arrays, not copies)."""
        return {f"{p}{k}": v for p, m in self.named_modules() for k, v in m.params.items()}

    def gradients(self):
        """Dict ``{dotted name: gradient array}`` matching :meth:`parameters`."""
        return {f"{p}{k}": v for p, m in self.named_modules() for k, v in m.grads.items()}

    def zero_grad(self):
        """Set every accumulated gradient to zero (in place)."""
        for _, m in self.named_modules():
            for g in m.grads.values():
                g[...] = 0

    def num_parameters(self) -> int:
        """Total number of trainable scalars."""
        return int(sum(int(np.prod(v.shape)) for v in self.parameters().values()))

    def state_dict(self):
        """Parameters and buffers as NumPy arrays, keyed by dotted name."""
        out = {}
        for p, m in self.named_modules():
            for k, v in m.params.items():
                out[f"{p}{k}"] = self.bk.to_numpy(v).copy()
            for k, v in m.buffers.items():
                out[f"{p}{k}"] = self.bk.to_numpy(v).copy()
        return out

    def load_state_dict(self, state, strict=True):
        """Copy arrays from ``state`` into the parameters and buffers (in place).

        Raises
        ------
        KeyError
            If ``strict`` and a name is missing or unexpected.
        ValueError
            If a shape differs.
        """
        seen = set()
        for p, m in self.named_modules():
            for store in (m.params, m.buffers):
                for k in store:
                    name = f"{p}{k}"
                    if name not in state:
                        if strict:
                            raise KeyError(f"state dict has no entry {name!r}")
                        continue
                    val = np.asarray(state[name])
                    if tuple(val.shape) != tuple(store[k].shape):
                        raise ValueError(
                            f"shape of {name!r} is {val.shape}, the model expects {store[k].shape}")
                    store[k][...] = self.bk.asarray(val, dtype=self.dtype)
                    seen.add(name)
        extra = set(state) - seen
        if strict and extra:
            raise KeyError(f"unexpected entries in state dict: {sorted(extra)[:5]}")


def _uniform_init(rng, shape, fan_in):
    """PyTorch's default conv initialisation, ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``."""
    bound = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape)


#: Winograd F(2x2, 3x3) transform matrices (see :mod:`emulator.kernels_cpu`)
WINO_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
#: ``kron(G, G)`` (16 x 9): ``vec(G g G^T) = kron(G, G) vec(g)`` for a row-major 3x3 ``g``
WINO_GG = np.kron(WINO_G, WINO_G)
CONV_ALGOS = ("auto", "im2col", "winograd")


class Conv3x3(Module):
    """Dilated 3x3 convolution, periodic padding in x and zero padding in y.

    ``y[o] = b[o] + sum_{c,ky,kx} W[o,c,ky,kx] x[c, h+(ky-1)d, (w+(kx-1)d) mod W]``.

    Two algorithms give the same result to round-off:

    ``"im2col"`` (all backends)
        One GEMM ``W.reshape(C_out, 9 C_in) @ im2col(x)`` of shape
        ``(C_out, 9 C_in) x (9 C_in, B H W)``; backward ``dW = dY cols^T``,
        ``db = sum dY``, ``dx = col2im(W^T dY)``.  The column matrix lives in
        the backend's workspace and is rebuilt in the backward pass.
    ``"winograd"`` (CPU backend, ``d`` dividing ``W``)
        Winograd F(2x2, 3x3) on the ``d x d`` phase sub-grids: 16 GEMMs of
        ``(C_out, C_in) x (C_in, T)`` with ``T ~ B H W / 4`` tiles, 2.25 times
        fewer multiplications than im2col in the forward pass and in both
        gradients (``dx`` is the same convolution of ``dY`` with the flipped,
        transposed filter; ``dW = G^T (sum_t (A dY_t A^T) . V_t) G``).

    ``"auto"`` picks Winograd on the CPU backend when it applies, else im2col.

    Parameters
    ----------
    cin, cout : int
        Channels in and out.
    dilation : int
        Tap spacing ``d``; the padding is ``d`` on each side.
    rng : numpy.random.Generator
        Source of the initial weights.
    algo : {"auto", "im2col", "winograd"}
    """

    def __init__(self, cin, cout, dilation=1, *, rng, backend="cpu", dtype=np.float32, algo="auto"):
        super().__init__(backend, dtype)
        if algo not in CONV_ALGOS:
            raise ValueError(f"algo={algo!r} is not one of {CONV_ALGOS}")
        if algo == "winograd" and self.bk.name != "cpu":
            raise ValueError(f"algo='winograd' needs backend='cpu', not {self.bk.name!r}")
        self.cin, self.cout, self.dilation = int(cin), int(cout), int(dilation)
        if self.dilation < 1:
            raise ValueError(f"dilation={dilation} must be >= 1")
        self.algo = algo
        fan_in = 9 * cin
        self.add_param("weight", _uniform_init(rng, (cout, cin, 3, 3), fan_in))
        self.add_param("bias", _uniform_init(rng, (cout,), fan_in))

    def _use_winograd(self, W):
        if self.algo == "auto":
            return self.bk.name == "cpu" and W % self.dilation == 0
        if self.algo == "winograd" and W % self.dilation:
            raise ValueError(f"Winograd convolution needs the dilation {self.dilation} to divide "
                             f"the grid width W={W}")
        return self.algo == "winograd"

    def forward(self, x, train=True):
        """x (C_in, B, H, W) -> y (C_out, B, H, W); cache = x."""
        if self._use_winograd(x.shape[3]):
            return self._wino_conv(x, self.params["weight"], self.params["bias"]), x
        C, B, H, W = x.shape
        cols = self.bk.im2col(x, self.dilation, out=self.bk.workspace((9 * C, B * H * W), x.dtype))
        y = self.xp.matmul(self.params["weight"].reshape(self.cout, 9 * C), cols)
        y += self.params["bias"][:, None]
        return y.reshape(self.cout, B, H, W), x

    def backward(self, dy, cache):
        """Accumulate dW, db and return dx (C_in, B, H, W)."""
        x = cache
        C, B, H, W = x.shape
        xp = self.xp
        dy2 = dy.reshape(self.cout, -1)
        self.grads["bias"] += dy2.sum(axis=1)
        if self._use_winograd(W):
            self.grads["weight"] += self._wino_dw(x, dy)
            # the adjoint of a periodic/zero-padded convolution is the same convolution
            # with the filter flipped in both directions and its channels swapped
            wflip = self.params["weight"].transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]
            return self._wino_conv(dy, wflip, None)
        # rebuild the columns (cheaper than keeping a 9x copy of every input alive)
        cols = self.bk.im2col(x, self.dilation, out=self.bk.workspace((9 * C, B * H * W), x.dtype))
        wm = self.params["weight"].reshape(self.cout, -1)
        self.grads["weight"] += xp.matmul(dy2, cols.T).reshape(self.grads["weight"].shape)
        dcols = xp.matmul(wm.T, dy2, out=cols)  # reuse the workspace
        return self.bk.col2im(dcols, x.shape, self.dilation)

    # -- Winograd ---------------------------------------------------------- #
    def _wino_conv(self, x, w, bias):
        """Convolution of ``x`` (C, B, H, W) with filters ``w`` (O, C, 3, 3) by Winograd."""
        from . import kernels_cpu  # noqa: PLC0415

        C, B, H, W = x.shape
        O = w.shape[0]
        d = self.dilation
        T = kernels_cpu.wino_num_tiles(B, H, W, d)
        # U = G w G^T per (o, c), laid out (16, O, C): one (16 x 9) x (9 x O C) product
        U = (WINO_GG.astype(x.dtype) @ w.reshape(O * C, 9).T).reshape(16, O, C)
        V = _wino_buffer(self.bk, "wino_v", C, T, x.dtype)
        kernels_cpu.wino_input(np.ascontiguousarray(x), d, V)
        M = _wino_buffer(self.bk, "wino_m", O, T, x.dtype)
        np.matmul(U, V, out=M)
        y = np.empty((O, B, H, W), dtype=x.dtype)
        b = np.zeros(O, x.dtype) if bias is None else bias
        kernels_cpu.wino_output(M, d, b, y)
        return y

    def _wino_dw(self, x, dy):
        """``dL/dW`` (O, C, 3, 3) by Winograd: ``G^T (sum_t Yhat_t . V_t) G``."""
        from . import kernels_cpu  # noqa: PLC0415

        C, B, H, W = x.shape
        O = dy.shape[0]
        d = self.dilation
        T = kernels_cpu.wino_num_tiles(B, H, W, d)
        V = _wino_buffer(self.bk, "wino_v", C, T, x.dtype)
        kernels_cpu.wino_input(np.ascontiguousarray(x), d, V)
        Y = _wino_buffer(self.bk, "wino_m", O, T, x.dtype)
        kernels_cpu.wino_output_adjoint(np.ascontiguousarray(dy), d, Y)
        Z = np.matmul(Y, V.transpose(0, 2, 1))  # (16, O, C)
        # dW = G^T Z G per (o, c): one (9 x 16) x (16 x O C) product
        dw = WINO_GG.T.astype(x.dtype) @ Z.reshape(16, O * C)
        return dw.T.reshape(O, C, 3, 3)


def _wino_buffer(bk, slot, C, T, dtype):
    """A (16, C, T) workspace view whose 16 planes start 256 bytes apart modulo 4 KiB.

    Plane ``k`` begins at element ``k (C T + 64)``: with a plain (16, C, T) array
    the 16 planes written together by the transforms are often a multiple of
    4 KiB apart and fall into the same cache sets, which slows the transform
    kernels several-fold.
    """
    isz = np.dtype(dtype).itemsize
    S = C * T + 64
    buf = bk.workspace((16 * S,), dtype, slot=slot)
    return np.lib.stride_tricks.as_strided(buf, (16, C, T), (S * isz, T * isz, isz))


class Conv1x1(Module):
    """Pointwise convolution ``y = W x + b``: one GEMM ``(C_out, C_in) x (C_in, B H W)``."""

    def __init__(self, cin, cout, *, rng, backend="cpu", dtype=np.float32):
        super().__init__(backend, dtype)
        self.cin, self.cout = int(cin), int(cout)
        self.add_param("weight", _uniform_init(rng, (cout, cin, 1, 1), cin))
        self.add_param("bias", _uniform_init(rng, (cout,), cin))

    def forward(self, x, train=True):
        C, B, H, W = x.shape
        y = self.xp.matmul(self.params["weight"].reshape(self.cout, self.cin), x.reshape(C, -1))
        y += self.params["bias"][:, None]
        return y.reshape(self.cout, B, H, W), x

    def backward(self, dy, cache):
        x = cache
        xp = self.xp
        dy2 = dy.reshape(self.cout, -1)
        x2 = x.reshape(self.cin, -1)
        self.grads["weight"] += xp.matmul(dy2, x2.T).reshape(self.grads["weight"].shape)
        self.grads["bias"] += dy2.sum(axis=1)
        wm = self.params["weight"].reshape(self.cout, self.cin)
        return xp.matmul(wm.T, dy2).reshape(x.shape)


NORM_KINDS = ("instance", "batch")


class Norm(Module):
    """BatchNorm or InstanceNorm over a ``(C, B, H, W)`` activation.

    ``xhat = (x - mean) / sqrt(var + eps)`` with statistics over ``(B, H, W)``
    per channel (batch) or over ``(H, W)`` per channel and sample (instance);
    then ``y = gamma * xhat + beta`` when ``affine``.

    BatchNorm in evaluation mode uses running statistics updated in training
    mode as ``r <- (1 - m) r + m s`` (momentum ``m``; unbiased variance),
    exactly as ``torch.nn.BatchNorm2d``.  InstanceNorm (the
    ``torch.nn.InstanceNorm2d`` default) keeps no running statistics and
    behaves identically in both modes.

    Backward (per row of ``N`` values): ``dx = rstd (g - mean(g) - xhat mean(g xhat))``
    with ``g = gamma dy``.
    """

    def __init__(self, kind, channels, *, eps=1e-5, momentum=0.1, affine=None,
                 backend="cpu", dtype=np.float32):
        super().__init__(backend, dtype)
        if kind not in NORM_KINDS:
            raise ValueError(f"norm={kind!r} is not one of {NORM_KINDS}")
        self.kind = kind
        self.channels = int(channels)
        self.eps = float(eps)
        self.momentum = float(momentum)
        self.affine = (kind == "batch") if affine is None else bool(affine)
        if self.affine:
            self.add_param("weight", np.ones(channels))
            self.add_param("bias", np.zeros(channels))
        if kind == "batch":
            self.add_buffer("running_mean", np.zeros(channels))
            self.add_buffer("running_var", np.ones(channels))

    def forward(self, x, train=True, update_stats=True):
        """Normalise ``x``; ``update_stats=False`` leaves the running statistics alone
        (used when a forward pass is recomputed for the backward pass)."""
        C, B, H, W = x.shape
        bk, xp = self.bk, self.xp
        rows = x.reshape(C, -1) if self.kind == "batch" else x.reshape(C * B, -1)
        if self.kind == "batch" and not train:
            mean = self.buffers["running_mean"].astype(np.float64)
            rstd = 1.0 / xp.sqrt(self.buffers["running_var"].astype(np.float64) + self.eps)
        else:
            mean, var, rstd = bk.row_stats(rows, self.eps)
            if self.kind == "batch" and update_stats:
                n = rows.shape[1]
                m = self.momentum
                rm, rv = self.buffers["running_mean"], self.buffers["running_var"]
                rm[...] = (1 - m) * rm + m * mean
                rv[...] = (1 - m) * rv + m * var * (n / max(n - 1, 1))
        xhat = bk.row_normalize(rows, mean, rstd)
        y = xhat
        if self.affine:
            g, b = self.params["weight"], self.params["bias"]
            y4 = xhat.reshape(C, B, H, W) * g[:, None, None, None] + b[:, None, None, None]
            y = y4
        stats_frozen = self.kind == "batch" and not train
        return y.reshape(C, B, H, W), (xhat, rstd, stats_frozen)

    def backward(self, dy, cache):
        xhat, rstd, stats_frozen = cache
        C, B, H, W = dy.shape
        xp = self.xp
        g = dy
        if self.affine:
            dy2 = dy.reshape(C, -1) if self.kind == "batch" else dy.reshape(C, B * H * W)
            xh2 = xhat.reshape(C, -1)
            self.grads["weight"] += (dy2 * xh2).sum(axis=1)
            self.grads["bias"] += dy2.sum(axis=1)
            g = dy * self.params["weight"][:, None, None, None]
        rows_shape = (C, -1) if self.kind == "batch" else (C * B, -1)
        g2 = xp.ascontiguousarray(g).reshape(rows_shape)
        if stats_frozen:
            dx = g2 * rstd[:, None].astype(g2.dtype)
        else:
            dx, _, _ = self.bk.row_normalize_backward(g2, xhat, rstd)
        return dx.reshape(C, B, H, W)


class NormGELU(Norm):
    """Normalisation followed by the capped GELU, fused: ``y = min(GELU(Norm(x)), cap)``.

    Same parameters, buffers and statistics as :class:`Norm` (so state dicts
    are interchangeable) but one kernel for the forward pass and one for the
    backward pass, and only the pre-normalisation input plus two numbers per
    row are kept for the backward pass (the normalised values are recomputed).
    With ``g = dL/dz`` for ``z = gamma xhat + beta``::

        dgamma = sum g xhat,  dbeta = sum g,
        dx = rstd (gamma g - mean(gamma g) - xhat mean(gamma g xhat))
    """

    def __init__(self, kind, channels, cap=10.0, **kw):
        super().__init__(kind, channels, **kw)
        self.cap = float(cap)

    def _affine(self):
        if self.affine:
            return self.params["weight"], self.params["bias"]
        xp = self.xp
        return xp.ones(self.channels, self.dtype), xp.zeros(self.channels, self.dtype)

    def forward(self, x, train=True, update_stats=True):
        C, B, H, W = x.shape
        xp = self.xp
        # rows of the statistics: one per channel (batch) or per channel and sample (instance)
        per = 1 if self.kind == "batch" else B
        rows = x.reshape(C * per, -1)
        gamma, beta = self._affine()
        frozen = self.kind == "batch" and not train
        stats = None
        if frozen:
            mean = self.buffers["running_mean"].astype(np.float64)
            rstd = 1.0 / xp.sqrt(self.buffers["running_var"].astype(np.float64) + self.eps)
            stats = (mean, rstd)
        y, mean, rstd = self.bk.norm_gelu(rows, per, gamma, beta, self.cap, self.eps, stats)
        if self.kind == "batch" and train and update_stats:
            # running statistics as torch: unbiased variance, momentum m
            n = rows.shape[1]
            m = self.momentum
            var = 1.0 / rstd ** 2 - self.eps
            rm, rv = self.buffers["running_mean"], self.buffers["running_var"]
            rm[...] = (1 - m) * rm + m * mean
            rv[...] = (1 - m) * rv + m * var * (n / max(n - 1, 1))
        return y.reshape(C, B, H, W), (x, mean, rstd, frozen)

    def backward(self, dy, cache):
        x, mean, rstd, frozen = cache
        C, B, H, W = x.shape
        per = 1 if self.kind == "batch" else B
        gamma, beta = self._affine()
        dx, dg, db = self.bk.norm_gelu_backward(dy.reshape(C * per, -1), x.reshape(C * per, -1), per,
                                                gamma, beta, self.cap, mean, rstd, frozen)
        if self.affine:
            # per-row sums -> per-channel affine gradients
            self.grads["weight"] += dg.reshape(C, per).sum(axis=1).astype(self.dtype)
            self.grads["bias"] += db.reshape(C, per).sum(axis=1).astype(self.dtype)
        return dx.reshape(C, B, H, W)


class CappedGELU(Module):
    """``y = min(GELU(x), cap)`` with the exact (erf) GELU ``x Phi(x)``.

    Backward: ``dx = dy (Phi(x) + x phi(x))`` where ``GELU(x) <= cap``, else 0.
    """

    def __init__(self, cap=10.0, *, backend="cpu", dtype=np.float32):
        super().__init__(backend, dtype)
        self.cap = float(cap)

    def forward(self, x, train=True):
        return self.bk.gelu(x, self.cap), x

    def backward(self, dy, cache):
        return self.bk.gelu_backward(cache, dy, self.cap)


class AvgPool2(Module):
    """2x2 average pooling with stride 2 (``H`` and ``W`` must be even).

    ``y[i, j] = (x[2i,2j] + x[2i,2j+1] + x[2i+1,2j] + x[2i+1,2j+1]) / 4``;
    backward spreads ``dy / 4`` to the four inputs.
    """

    def forward(self, x, train=True):
        C, B, H, W = x.shape
        if H % 2 or W % 2:
            raise ValueError(f"AvgPool2 needs even H and W, got H={H}, W={W}")
        y = x.reshape(C, B, H // 2, 2, W // 2, 2).sum(axis=(3, 5))
        y *= 0.25
        return y, x.shape

    def backward(self, dy, cache):
        C, B, H, W = cache
        dx = self.xp.empty(cache, dtype=dy.dtype).reshape(C, B, H // 2, 2, W // 2, 2)
        q = 0.25 * dy
        for a in range(2):
            for b in range(2):
                dx[:, :, :, a, :, b] = q
        return dx.reshape(cache)


class PeriodicUpsample2(Module):
    """Bilinear x2 upsampling (``align_corners=False``), periodic in x, clamped in y.

    Along a periodic axis, ``out[2j] = x[j-1]/4 + 3x[j]/4`` and
    ``out[2j+1] = 3x[j]/4 + x[j+1]/4`` (indices mod W); along y the
    neighbour index is clamped to ``[0, H-1]``.  This is PyTorch's bilinear
    interpolation after a one-column circular pad in x, cropped back
    (Samudra 2's ``ZonallyPeriodicBilinearUpsample``).  The backward pass is
    the transpose of the two separable 1-D operators.
    """

    def forward(self, x, train=True):
        return self._up_y(self._up_x(x)), x.shape

    def backward(self, dy, cache):
        return self._up_x_T(self._up_y_T(dy))

    # x direction (periodic, last axis)
    def _up_x(self, x):
        xp = self.xp
        left = xp.roll(x, 1, axis=-1)    # x[j-1]
        right = xp.roll(x, -1, axis=-1)  # x[j+1]
        out = xp.empty(x.shape[:-1] + (2 * x.shape[-1],), dtype=x.dtype)
        out[..., 0::2] = 0.25 * left + 0.75 * x
        out[..., 1::2] = 0.75 * x + 0.25 * right
        return out

    def _up_x_T(self, g):
        xp = self.xp
        ge, go = g[..., 0::2], g[..., 1::2]
        # dx[j] = 3/4 (ge[j] + go[j]) + 1/4 ge[j+1] + 1/4 go[j-1]
        return 0.75 * (ge + go) + 0.25 * xp.roll(ge, -1, axis=-1) + 0.25 * xp.roll(go, 1, axis=-1)

    # y direction (clamped, axis -2)
    def _up_y(self, x):
        xp = self.xp
        H = x.shape[-2]
        up = xp.concatenate([x[..., :1, :], x[..., :-1, :]], axis=-2)    # x[max(i-1,0)]
        down = xp.concatenate([x[..., 1:, :], x[..., -1:, :]], axis=-2)  # x[min(i+1,H-1)]
        out = xp.empty(x.shape[:-2] + (2 * H, x.shape[-1]), dtype=x.dtype)
        out[..., 0::2, :] = 0.25 * up + 0.75 * x
        out[..., 1::2, :] = 0.75 * x + 0.25 * down
        return out

    def _up_y_T(self, g):
        ge, go = g[..., 0::2, :], g[..., 1::2, :]
        dx = 0.75 * (ge + go)
        # ge[i] took x[i-1] (x[0] for i = 0); go[i] took x[i+1] (x[H-1] for i = H-1)
        dx[..., :-1, :] += 0.25 * ge[..., 1:, :]
        dx[..., :1, :] += 0.25 * ge[..., :1, :]
        dx[..., 1:, :] += 0.25 * go[..., :-1, :]
        dx[..., -1:, :] += 0.25 * go[..., -1:, :]
        return dx
