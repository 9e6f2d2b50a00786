"""The Samudra 2 U-Net with a hand-written backward pass.

Architecture (Samudra 2, ``m2lines/Samudra`` configuration ``samudra_om4_v2``)
for stage widths ``w_0..w_{n-1}`` and dilations ``d_0..d_{n-1}``::

    x -> Block(C_in -> w_0, d_0) -> [skip 0] -> AvgPool2
      -> Block(w_0 -> w_1, d_1)  -> [skip 1] -> AvgPool2 ...
      -> Block(w_{n-2} -> w_{n-1}, d_{n-1}) -> [skip n-1] -> AvgPool2
      -> Block(w_{n-1} -> w_{n-1}, d_{n-1})                        (bottleneck)
      -> Up2 -> + skip n-1 -> Block(w_{n-1} -> w_{n-2}, d_{n-1})
      -> Up2 -> + skip n-2 -> Block(w_{n-2} -> w_{n-3}, d_{n-2}) ...
      -> Up2 -> + skip 0   -> Block(w_0 -> w_0, d_final)           (final block)
      -> Conv3x3(w_0 -> C_out) -> output * wet mask

with ``d_final = d_1`` (Samudra's loop leaves that value; ``d_0`` when
``n = 1``).  Each ``Block(a -> b, d)`` is::

    h = GELU10(Norm(Conv3x3_d(a -> e a)))
    h = GELU10(Norm(Conv3x3_d(e a -> e a)))
    y = Conv1x1(e a -> b)(h) + (x if a == b else Conv1x1(a -> b)(x))

with expansion ``e`` (2 in Samudra 2), ``GELU10(z) = min(GELU(z), 10)``, the
3x3 convolutions padded periodically in x and with zeros in y, ``AvgPool2``
a 2x2 mean and ``Up2`` the zonally periodic bilinear x2 upsampling.

Shapes: activations are channel-major ``(C, B, H, W)``.  ``W`` (periodic x)
must be divisible by ``2**n``; ``H`` is padded with zero rows (as land) up to
a multiple of ``2**n`` and cropped back at the end.

Memory: ``forward(..., store="all")`` keeps every layer's cache;
``store="inputs"`` keeps only the input of each top-level layer and recomputes
the layer (without touching BatchNorm running statistics) during the backward
pass, Samudra's ``checkpointing: all``; ``store="none"`` keeps nothing
(inference).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .layers import AvgPool2, Conv1x1, Conv3x3, Module, NormGELU, PeriodicUpsample2

STORE_MODES = ("all", "inputs", "none")


@dataclass
class UNetConfig:
    """Hyper-parameters of :class:`UNet`.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the network input and output.
    widths : tuple of int
        Stage widths ``w_0..w_{n-1}`` (Samudra 2: 280, 380, 480, 520).
    dilations : tuple of int
        Dilation of each stage (Samudra 2: 1, 2, 4, 8); same length as ``widths``.
    expansion : int
        Inner width factor of a block relative to its *input* width (2).
    norm : {"instance", "batch"}
        Normalisation in the blocks.
    cap : float
        Upper cap of the GELU (10).
    final_dilation : int or None
        Dilation of the final block; ``None`` gives Samudra's ``d_1``.
    stem : int
        If positive, a 1x1 convolution ``in_channels -> stem`` precedes the first
        block (an extension for small CPU models, whose cost is otherwise
        dominated by the first block's ``e * in_channels`` inner width).
    """

    in_channels: int
    out_channels: int
    widths: tuple = (280, 380, 480, 520)
    dilations: tuple = (1, 2, 4, 8)
    expansion: int = 2
    norm: str = "instance"
    cap: float = 10.0
    final_dilation: int | None = None
    stem: int = 0

    def __post_init__(self):
        self.widths = tuple(int(w) for w in self.widths)
        self.dilations = tuple(int(d) for d in self.dilations)
        for name in ("in_channels", "out_channels", "expansion"):
            v = getattr(self, name)
            if int(v) < 1:
                raise ValueError(f"{name}={v} must be a positive integer")
        if not self.widths or any(w < 1 for w in self.widths):
            raise ValueError(f"widths={self.widths} must be a non-empty list of positive integers")
        if len(self.dilations) != len(self.widths):
            raise ValueError(f"dilations={self.dilations} must have one entry per width "
                             f"(widths={self.widths})")
        if any(d < 1 for d in self.dilations):
            raise ValueError(f"dilations={self.dilations} must be positive")
        if self.norm not in ("instance", "batch"):
            raise ValueError(f"norm={self.norm!r} must be 'instance' or 'batch'")
        if self.stem < 0:
            raise ValueError(f"stem={self.stem} must be >= 0")

    @property
    def depth(self) -> int:
        """Number of poolings ``n``; the grid is divided by ``2**n`` at the bottleneck."""
        return len(self.widths)

    @property
    def final_dil(self) -> int:
        if self.final_dilation is not None:
            return int(self.final_dilation)
        return self.dilations[1] if len(self.dilations) > 1 else self.dilations[0]

    def to_dict(self):
        return asdict(self)


#: Named presets: (widths, dilations, stem).  ``samudra2`` is the published model.
PRESETS = {
    "unit": dict(widths=(4, 8), dilations=(1, 2), stem=0),
    "tiny": dict(widths=(16, 32), dilations=(1, 2), stem=16),
    "small": dict(widths=(32, 64), dilations=(1, 2), stem=32),
    "mid": dict(widths=(64, 96, 128), dilations=(1, 2, 4), stem=0),
    "samudra2": dict(widths=(280, 380, 480, 520), dilations=(1, 2, 4, 8), stem=0),
}


def preset_config(name, in_channels, out_channels, **overrides) -> UNetConfig:
    """Build a :class:`UNetConfig` from a preset name (see :data:`PRESETS`)."""
    if name not in PRESETS:
        raise ValueError(f"config={name!r} is not one of {sorted(PRESETS)}")
    kw = dict(PRESETS[name])
    kw.update({k: v for k, v in overrides.items() if v is not None})
    return UNetConfig(in_channels=in_channels, out_channels=out_channels, **kw)


class Block(Module):
    """Samudra's (misnamed) ConvNeXt block; see the module docstring."""

    def __init__(self, cin, cout, dilation, expansion, norm, cap, *, rng, backend, dtype):
        super().__init__(backend, dtype)
        inner = expansion * cin
        kw = dict(backend=backend, dtype=dtype)
        self.conv1 = self.add_child("conv1", Conv3x3(cin, inner, dilation, rng=rng, **kw))
        self.norm1 = self.add_child("norm1", NormGELU(norm, inner, cap, **kw))
        self.conv2 = self.add_child("conv2", Conv3x3(inner, inner, dilation, rng=rng, **kw))
        self.norm2 = self.add_child("norm2", NormGELU(norm, inner, cap, **kw))
        self.proj = self.add_child("proj", Conv1x1(inner, cout, rng=rng, **kw))
        self.skip = self.add_child("skip", Conv1x1(cin, cout, rng=rng, **kw)) if cin != cout else None

    def forward(self, x, train=True, update_stats=True):
        """x (C_in, B, H, W) -> y (C_out, B, H, W); cache = per-layer caches."""
        h, c1 = self.conv1.forward(x)
        h, n1 = self.norm1.forward(h, train, update_stats)  # norm and capped GELU, fused
        h, c2 = self.conv2.forward(h)
        h, n2 = self.norm2.forward(h, train, update_stats)
        y, p = self.proj.forward(h)
        # residual branch: identity, or a 1x1 convolution when the width changes
        if self.skip is None:
            y += x
            s = None
        else:
            ys, s = self.skip.forward(x)
            y += ys
        return y, (c1, n1, c2, n2, p, s)

    def backward(self, dy, cache):
        c1, n1, c2, n2, p, s = cache
        g = self.proj.backward(dy, p)
        g = self.norm2.backward(g, n2)
        g = self.conv2.backward(g, c2)
        g = self.norm1.backward(g, n1)
        dx = self.conv1.backward(g, c1)
        if self.skip is None:
            dx += dy
        else:
            dx += self.skip.backward(dy, s)
        return dx


class UNet(Module):
    """Samudra 2 U-Net (see the module docstring).

    Parameters
    ----------
    config : UNetConfig
    backend : {"cpu", "numpy", "gpu"}
    dtype : numpy dtype
        float32 for training, float64 for gradient checks.
    seed : int
        Seed of the weight initialisation.
    """

    def __init__(self, config: UNetConfig, *, backend="cpu", dtype=np.float32, seed=0):
        super().__init__(backend, dtype)
        self.config = config
        c = config
        rng = np.random.default_rng(seed)
        kw = dict(backend=backend, dtype=dtype)
        bkw = dict(expansion=c.expansion, norm=c.norm, cap=c.cap, rng=rng, **kw)
        n = c.depth
        cin = c.in_channels
        self.stem = None
        if c.stem:
            self.stem = self.add_child("stem", Conv1x1(cin, c.stem, rng=rng, **kw))
            cin = c.stem
        self.down = []
        prev = cin
        for i, (w, d) in enumerate(zip(c.widths, c.dilations)):
            self.down.append(self.add_child(f"down{i}", Block(prev, w, d, **bkw)))
            prev = w
        self.mid = self.add_child("mid", Block(prev, prev, c.dilations[-1], **bkw))
        # decoder: block j follows the j-th upsampling and the skip of stage n-1-j;
        # the last one is Samudra's "final block" (w_0 -> w_0)
        self.up = []
        for j in range(n):
            i = n - 1 - j  # stage whose skip is added before this block
            if j < n - 1:
                blk = Block(c.widths[i], c.widths[i - 1], c.dilations[i], **bkw)
            else:
                blk = Block(c.widths[0], c.widths[0], c.final_dil, **bkw)
            self.up.append(self.add_child(f"up{j}", blk))
        self.head = self.add_child("head", Conv3x3(c.widths[0], c.out_channels, 1, rng=rng, **kw))
        self.pool = AvgPool2(**kw)
        self.upsample = PeriodicUpsample2(**kw)
        # the program executed by forward / reversed by backward
        prog = [("layer", self.stem)] if self.stem is not None else []
        for i, blk in enumerate(self.down):
            prog += [("layer", blk), ("save", i), ("pool", None)]
        prog.append(("layer", self.mid))
        for j, blk in enumerate(self.up):
            prog += [("up", None), ("add", n - 1 - j), ("layer", blk)]
        prog.append(("layer", self.head))
        self._program = prog

    # ------------------------------------------------------------------ #
    def check_grid(self, H, W):
        """Validate a grid for this network and return the padded height.

        A dilation may exceed a stage's width: the x offsets wrap around the
        periodic axis (meaningful or not, as in Samudra, whose 8 at an 11x22
        bottleneck is mostly padding).

        Raises
        ------
        ValueError
            If ``W`` is not divisible by ``2**depth``.
        """
        n = self.config.depth
        f = 2 ** n
        if W % f:
            raise ValueError(f"grid width W={W} must be divisible by 2**depth={f} "
                             f"(depth={n} stages, periodic x cannot be padded)")
        Hp = -(-H // f) * f
        return Hp

    def forward(self, x, mask=None, train=True, store="all", update_stats=True):
        """Apply the network.

        Parameters
        ----------
        x : array (C_in, B, H, W)
        mask : array broadcastable to (C_out, B, H, W), optional
            Output wet mask (1 ocean, 0 land); the output is multiplied by it.
        train : bool
            Training mode (BatchNorm batch statistics and running-stat updates).
        store : {"all", "inputs", "none"}
            What to keep for :meth:`backward` (see the module docstring).
        update_stats : bool
            Whether a training-mode pass updates BatchNorm running statistics.

        Returns
        -------
        y : array (C_out, B, H, W)
        tape : object
            Pass to :meth:`backward` (``None`` when ``store="none"``).
        """
        if store not in STORE_MODES:
            raise ValueError(f"store={store!r} is not one of {STORE_MODES}")
        C, B, H, W = x.shape
        if C != self.config.in_channels:
            raise ValueError(f"input has {C} channels, the network expects "
                             f"{self.config.in_channels}")
        Hp = self.check_grid(H, W)
        # pad y with zero (land) rows so that every pooling level divides evenly
        top = (Hp - H) // 2
        if Hp != H:
            xp_ = self.xp.zeros((C, B, Hp, W), dtype=x.dtype)
            xp_[:, :, top:top + H] = x
            x = xp_
        entries = []  # per top-level layer: its cache ("all") or its input ("inputs")
        skips = {}    # encoder outputs waiting for their decoder stage
        h = x
        for op, arg in self._program:
            if op == "layer":
                if isinstance(arg, Block):
                    y, cache = arg.forward(h, train, update_stats)
                else:
                    y, cache = arg.forward(h, train)
                if store == "all":
                    entries.append(cache)
                elif store == "inputs":
                    entries.append(h)
                h = y
            elif op == "save":
                skips[arg] = h
            elif op == "pool":
                h, _ = self.pool.forward(h)
            elif op == "up":
                h, _ = self.upsample.forward(h)
            elif op == "add":
                h = h + skips.pop(arg)
        if Hp != H:
            h = self.xp.ascontiguousarray(h[:, :, top:top + H])
        if mask is not None:
            h = h * mask
        tape = None if store == "none" else dict(entries=entries, store=store, mask=mask,
                                                   train=train, top=top, H=H, Hp=Hp)
        return h, tape

    def backward(self, dy, tape):
        """Backward pass: accumulate parameter gradients, return dL/dx (C_in, B, H, W)."""
        if tape is None:
            raise ValueError("forward was run with store='none'; no backward possible")
        xp = self.xp
        if tape["mask"] is not None:
            dy = dy * tape["mask"]
        H, Hp, top = tape["H"], tape["Hp"], tape["top"]
        if Hp != H:
            g = xp.zeros(dy.shape[:2] + (Hp, dy.shape[3]), dtype=dy.dtype)
            g[:, :, top:top + H] = dy
        else:
            g = dy
        entries = list(tape["entries"])
        dskips = {}  # gradients reaching the skip connections, added at their encoder stage
        # walk the program backwards: the gradient of an addition goes to both operands,
        # so "add" stores it for the skip and "save" adds it to the encoder branch
        for op, arg in reversed(self._program):
            if op == "layer":
                entry = entries.pop()
                if tape["store"] == "inputs":
                    # recompute this layer from its stored input to rebuild its cache
                    _, entry = arg.forward(entry, tape["train"], **_no_stats(arg))
                g = arg.backward(g, entry)
            elif op == "add":
                dskips[arg] = g
            elif op == "up":
                g = self.upsample.backward(g, None)
            elif op == "pool":
                shape = g.shape[:2] + (2 * g.shape[2], 2 * g.shape[3])
                g = self.pool.backward(g, shape)
            elif op == "save":
                g = g + dskips.pop(arg)
        if Hp != H:
            g = xp.ascontiguousarray(g[:, :, top:top + H])
        return g


def _no_stats(layer):
    """Keyword that stops a recomputed Block from updating BatchNorm statistics."""
    return {"update_stats": False} if isinstance(layer, Block) else {}


__all__ = ["UNet", "UNetConfig", "Block", "PRESETS", "preset_config", "STORE_MODES"]
