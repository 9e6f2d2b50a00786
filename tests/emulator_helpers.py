"""Shared helpers of the emulator tests: finite-difference checks and a synthetic ACC model.

The synthetic model mimics the interface of ``ocean_core.setups.acc`` (``settings.dt_tracer``,
``run``, ``time_average``, ``snapshot``) and the layout of its ``xarray.Dataset`` (Veros names,
C-grid dimensions, level 0 at the bottom, a periodic channel in the south and a continent wall
at x = 0 in the north).  Its fields are damped, advected random anomalies on top of a
seasonal cycle driven by a seasonal wind stress and relaxation temperature, so that an
emulator has something learnable and the evaluation metrics have variability to measure.
It is a test fixture only; ``make-data`` always uses the real model.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np


def tiny_case(d):
    """The small synthetic training case of the emulator tests, written into directory ``d``:
    1.5 years of 5-day means on a 16 x 12 x 2 grid split 1 / 0.2 / 0.3 years.
    Returns ``(dataset, split, spec, prepared data, str(d))``."""
    from emulator.data import build_spec, prepare, split_by_years  # noqa: PLC0415

    ds = synthetic_dataset(d, years=1.5, nx=16, ny=12, nz=2)
    split = split_by_years(ds.sizes["time"], 73, 1.0, 0.2, 0.3)
    spec = build_spec(ds, split.train)
    return ds, split, spec, prepare(ds, spec), str(d)


# ---------------------------------------------------------------------- #
# finite differences
# ---------------------------------------------------------------------- #
def fd_params(net, every=1):
    """Parameters for the finite-difference check, and the rest.

    Under InstanceNorm, and BatchNorm in training mode, the bias of a convolution feeding
    the norm has an exactly zero gradient (the norm removes any per-channel constant): a relative
    finite-difference error is meaningless there, so those biases are returned
    separately and their analytic gradient is checked to vanish instead.
    """
    fd, zero = {}, {}
    for i, (k, v) in enumerate(net.parameters().items()):
        if k.endswith(("conv1.bias", "conv2.bias")):
            zero[k] = v
        elif i % every == 0:
            fd[k] = v
    return fd, zero


def assert_zero_grads(net, zero, scale):
    g = net.gradients()
    for k in zero:
        assert np.abs(g[k]).max() <= 1e-12 * scale, k


def gradcheck(run, x, params, rng, eps=1e-4, n_dirs=2, n_coords=3):
    """Compare analytic gradients with central differences (float64).

    The derivative along a perturbation ``d`` uses the fourth-order central stencil
    ``(8 (f(d) - f(-d)) - (f(2d) - f(-2d))) / 12``, whose truncation error
    (``O(eps^4)``) and round-off error (``~1e-16 |L| / eps``) both stay far below
    the tolerance.

    Parameters
    ----------
    run : callable
        ``run(x) -> (L, dx, grads)``: the scalar loss at ``x`` with the current
        parameter values, its gradient with respect to ``x`` and a dict of
        parameter gradients (computed fresh at every call).
    x : array
        Input (not modified).
    params : dict[str, array]
        Live parameter arrays, perturbed in place and restored.
    rng : numpy.random.Generator

    Returns
    -------
    worst : float
        Largest relative error over random directional derivatives
        ``|fd - <g, v>| / max(|<g, v>|, 1e-12 ||g|| ||v||)`` and over single
        coordinates (relative to the largest gradient entry of that array).
    report : dict
        The worst error per array.
    """
    _, dx, grads = run(x)
    report = {}

    def check(name, g, perturb):
        worst = 0.0
        g = np.asarray(g, np.float64)
        gn = np.linalg.norm(g)
        def deriv(d):
            return (8 * (perturb(d) - perturb(-d)) - (perturb(2 * d) - perturb(-2 * d))) / (12 * eps)

        for _ in range(n_dirs):
            v = rng.standard_normal(g.shape)
            v /= np.linalg.norm(v)  # a perturbation of norm eps whatever the array size
            fd = deriv(eps * v)
            an = float((g * v).sum())
            denom = max(abs(an), 1e-12 * gn * np.linalg.norm(v), 1e-300)
            worst = max(worst, abs(fd - an) / denom)
        scale = max(np.abs(g).max(), 1e-300)
        for _ in range(n_coords):
            idx = tuple(rng.integers(0, s) for s in g.shape)
            e = np.zeros(g.shape)
            e[idx] = eps
            fd = deriv(e)
            worst = max(worst, abs(fd - g[idx]) / scale)
        report[name] = worst

    def perturb_x(d):
        return run(x + d)[0]

    check("x", dx, perturb_x)
    for name, p in params.items():
        if name not in grads:
            continue
        orig = p.copy()

        def perturb_p(d, p=p, orig=orig):
            p[...] = orig + d
            try:
                return run(x)[0]
            finally:
                p[...] = orig

        check(name, grads[name], perturb_p)
    return max(report.values()), report


def layer_runner(layer, r, **fwd_kwargs):
    """``run`` for :func:`gradcheck` of one layer with the loss ``L = sum(y * r)``."""
    def run(x):
        for g in layer.grads.values():
            g[...] = 0
        y, cache = layer.forward(x.copy(), **fwd_kwargs)
        L = float((y * r).sum())
        dx = layer.backward(r.copy(), cache)
        return L, dx, {k: v.copy() for k, v in layer.grads.items()}
    return run


# ---------------------------------------------------------------------- #
# synthetic ACC model
# ---------------------------------------------------------------------- #
def _smooth(a, passes=2):
    """Cheap smoothing: repeated 1-2-1 filter, periodic in x, clamped in y."""
    for _ in range(passes):
        a = 0.25 * np.roll(a, 1, -1) + 0.5 * a + 0.25 * np.roll(a, -1, -1)
        up = np.concatenate([a[..., :1, :], a[..., :-1, :]], axis=-2)
        dn = np.concatenate([a[..., 1:, :], a[..., -1:, :]], axis=-2)
        a = 0.25 * up + 0.5 * a + 0.25 * dn
    return a


class SyntheticACC:
    """A cheap stand-in with the ocean model's interface and Dataset layout (tests only).

    Parameters
    ----------
    nx, ny, nz : int
        Grid size (x periodic in the channel).
    dt : float
        Step in seconds (one day by default, so a 5-day mean is 5 steps).
    year_days : float
        Length of the seasonal cycle.
    seed : int
    """

    def __init__(self, nx=16, ny=12, nz=3, dt=86400.0, year_days=365.0, seed=0):
        self.nx, self.ny, self.nz = nx, ny, nz
        self.settings = SimpleNamespace(dt_tracer=float(dt), year_length_days=float(year_days))
        self.rng = np.random.default_rng(seed)
        self.t = 0.0
        dx = 60.0 / nx
        dy = 84.0 / ny
        self.xt = dx * (np.arange(nx) + 0.5)
        self.xu = dx * (np.arange(nx) + 1.0)
        self.yt = -70.0 + dy * (np.arange(ny) + 0.5)
        self.yu = -70.0 + dy * (np.arange(ny) + 1.0)
        depth = np.linspace(0, 2000, nz + 1)[::-1]  # top faces, bottom level first
        self.zw = -depth[1:]
        self.zt = 0.5 * (-depth[1:] - depth[:-1])
        self.dzt = depth[:-1] - depth[1:]
        # masks: continent wall at x = 0 north of 20S, a ridge at the bottom level
        wall = np.zeros((ny, nx), bool)
        wall[self.yt > -20.0, 0] = True
        m = np.broadcast_to(~wall, (nz, ny, nx)).copy()
        m[0, ny // 3:ny // 2, nx // 2] = False
        self.maskT = m.astype(np.float64)
        self.maskU = (m & np.roll(m, -1, axis=-1)).astype(np.float64)
        mv = m.copy()
        mv[:, :-1] &= m[:, 1:]
        mv[:, -1] = False
        self.maskV = mv.astype(np.float64)
        self.maskW = self.maskT.copy()
        self.anom = {k: _smooth(self.rng.standard_normal((nz, ny, nx)))
                     for k in ("temp", "u", "v", "eke", "psi")}

    @property
    def phase(self):
        return 2 * np.pi * self.t / (self.settings.year_length_days * 86400.0)

    def _step(self):
        """Advect anomalies eastward (upwind, Courant 0.2), damp them and add smooth noise."""
        c, damp = 0.2, 0.97
        for k, a in self.anom.items():
            adv = (1 - c) * a + c * np.roll(a, 1, axis=-1)
            noise = _smooth(self.rng.standard_normal(a.shape))
            self.anom[k] = damp * adv + np.sqrt(1 - damp ** 2) * noise
        self.t += self.settings.dt_tracer

    def run(self, steps, progress=None):
        for _ in range(int(steps)):
            self._step()

    def save_restart(self, path):
        import pickle
        with open(path, "wb") as f:
            pickle.dump({"t": self.t, "anom": self.anom, "rng": self.rng.bit_generator.state}, f)

    def load_restart(self, path):
        import pickle
        with open(path, "rb") as f:
            st = pickle.load(f)
        self.t, self.anom = st["t"], st["anom"]
        self.rng.bit_generator.state = st["rng"]
        return self

    def _fields(self):
        ph = self.phase
        nz = self.nz
        y = (self.yt - self.yt.min()) / np.ptp(self.yt)
        lev = np.arange(nz)[:, None, None] / max(nz - 1, 1)  # 0 bottom .. 1 top
        season = np.sin(ph - 1.5 * (1 - lev)) * lev ** 2
        tclim = (2.0 + 12.0 * y[None, :, None]) * (0.3 + 0.7 * lev)
        temp = tclim + 2.0 * season + 0.5 * self.anom["temp"] * (0.3 + lev)
        u = 0.1 * np.sin(np.pi * y)[None, :, None] * (1 + 0.3 * np.sin(ph)) * (0.5 + lev) \
            + 0.03 * self.anom["u"]
        v = 0.02 * self.anom["v"]
        eke = 1e-3 * np.exp(0.6 * self.anom["eke"]) * (0.2 + lev)
        psi = 1e8 * np.sin(np.pi * y)[:, None] * (1 + 0.2 * np.sin(ph)) + 5e6 * self.anom["psi"][-1]
        taux = 0.1 * np.sin(np.pi * y)[:, None] * (1 + 0.3 * np.sin(ph)) * np.ones(self.nx)
        t_star = (2.0 + 12.0 * y)[:, None] + 2.0 * np.sin(ph) * np.ones(self.nx)
        flux = (t_star - temp[-1]) * 20.0 / (30 * 86400)
        return {"temp": temp * self.maskT, "salt": 35.0 * np.ones_like(temp),
                "u": u * self.maskU, "v": v * self.maskV, "eke": eke * self.maskW,
                "psi": psi, "surface_taux": taux * self.maskU[-1],
                "surface_tauy": np.zeros((self.ny, self.nx)),
                "t_star": t_star, "forc_temp_surface": flux * self.maskT[-1]}

    def _dataset(self, fields, time):
        import xarray as xr

        d3 = {"temp": ("zt", "yt", "xt"), "salt": ("zt", "yt", "xt"), "u": ("zt", "yt", "xu"),
              "v": ("zt", "yu", "xt"), "eke": ("zw", "yt", "xt")}
        d2 = {"psi": ("yu", "xu"), "surface_taux": ("yt", "xu"), "surface_tauy": ("yu", "xt"),
              "t_star": ("yt", "xt"), "forc_temp_surface": ("yt", "xt")}
        data = {k: (d3.get(k) or d2[k], v) for k, v in fields.items()}
        data.update({"maskT": (("zt", "yt", "xt"), self.maskT),
                     "maskU": (("zt", "yt", "xu"), self.maskU),
                     "maskV": (("zt", "yu", "xt"), self.maskV),
                     "maskW": (("zw", "yt", "xt"), self.maskW)})
        coords = {"xt": self.xt, "xu": self.xu, "yt": self.yt, "yu": self.yu, "zt": self.zt,
                  "zw": self.zw, "time": float(time)}
        return xr.Dataset(data, coords=coords)

    def time_average(self, steps):
        acc = None
        t0 = self.t
        for _ in range(int(steps)):
            self._step()
            f = self._fields()
            acc = f if acc is None else {k: acc[k] + f[k] for k in f}
        mean = {k: v / steps for k, v in acc.items()}
        return self._dataset(mean, 0.5 * (t0 + self.t))

    def snapshot(self):
        return self._dataset(self._fields(), self.t)


def synthetic_factory(nx=16, ny=12, nz=3, seed=0):
    """A ``model_factory`` for :func:`emulator.make_data.generate` building :class:`SyntheticACC`."""
    def factory(resolution, backend, seasonal=True, config="paper", dt_mom=None, dt_tracer=86400.0):
        return SyntheticACC(nx=nx, ny=ny, nz=nz, seed=seed, dt=dt_tracer)
    return factory


def synthetic_dataset(tmpdir, years=2.0, nx=16, ny=12, nz=3, seed=0, spinup_years=0.0):
    """Write synthetic make-data output into ``tmpdir`` and return the opened data set."""
    from emulator.data import open_dataset
    from emulator.make_data import generate

    generate(str(tmpdir), years=years, spinup_years=spinup_years, average_days=5.0,
             model_factory=synthetic_factory(nx, ny, nz, seed), log=None, split=(1, 0, 1))
    return open_dataset(str(tmpdir))
