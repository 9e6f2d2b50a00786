"""Emulator benchmarks: our NumPy/Numba (or CuPy) U-Net against PyTorch, and the emulator
against the ocean model per simulated year.

1. **Forward + backward time per sample** of a U-Net configuration, ours against
   PyTorch's implementation of the same architecture (same weights, float32,
   InstanceNorm, periodic padding), measured alternately in the same run; reported
   as the ratio ``t_torch / t_ours`` (> 1: we are faster).
2. **Emulator against ocean_core**: wall time per simulated year on the ACC grid at
   1 degree: an emulator rollout (5-day states, two per model call) against
   ``ocean_core.setups.acc`` time steps (extrapolated from a measured number of steps).

Usage::

    OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/emulator.py [--quick]
        [--configs mid,small] [--batch 1] [--repeats 5] [--backend cpu|gpu] [--write]

``--write`` replaces the emulator section of ``benchmarks/RESULTS.md``.  Set the thread
variables before starting Python (they are read when NumPy and Numba load).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from emulator.backend import get_backend  # noqa: E402
from emulator.unet import UNet, UNetConfig  # noqa: E402

#: benchmark configurations: grid (H, W), channels in/out, widths, dilations, stem
CONFIGS = {
    # the reference's "mid" configuration (Samudra 2 block structure, 4 stages)
    "mid": dict(grid=(128, 80), cin=133, cout=122, widths=(96, 128, 192, 256),
                dilations=(1, 2, 4, 4), stem=0),
    # the configuration trained on the 1-degree ACC data (84 x 60, 2 stages)
    "small": dict(grid=(84, 60), cin=132, cout=122, widths=(32, 64), dilations=(1, 2), stem=32),
    # a tiny one for smoke runs
    "tiny": dict(grid=(32, 48), cin=16, cout=12, widths=(16, 32), dilations=(1, 2), stem=0),
}


# ---------------------------------------------------------------------- #
# PyTorch reference of the same architecture
# ---------------------------------------------------------------------- #
def torch_unet(net):
    """A ``torch.nn.Module`` with the architecture and weights of ``net`` (our UNet)."""
    import torch  # noqa: PLC0415
    import torch.nn as nn  # noqa: PLC0415
    import torch.nn.functional as F  # noqa: PLC0415

    cfg = net.config

    class PConv(nn.Conv2d):
        """3x3 dilated convolution, circular padding in x, zeros in y."""

        def __init__(self, cin, cout, d):
            super().__init__(cin, cout, 3, dilation=d, padding=(d, 0))
            self.d = d

        def forward(self, x):
            return super().forward(F.pad(x, (self.d, self.d, 0, 0), mode="circular"))

    class Act(nn.Module):
        def forward(self, x):
            return torch.clamp(F.gelu(x), max=cfg.cap)

    def norm(c):
        return nn.InstanceNorm2d(c) if cfg.norm == "instance" else nn.BatchNorm2d(c)

    class TBlock(nn.Module):
        def __init__(self, blk):
            super().__init__()
            c1 = blk.conv1
            inner = c1.cout
            self.body = nn.Sequential(PConv(c1.cin, inner, c1.dilation), norm(inner), Act(),
                                      PConv(inner, inner, c1.dilation), norm(inner), Act(),
                                      nn.Conv2d(inner, blk.proj.cout, 1))
            self.skip = nn.Conv2d(c1.cin, blk.proj.cout, 1) if blk.skip is not None else None

        def forward(self, x):
            s = x if self.skip is None else self.skip(x)
            return self.body(x) + s

    class Up(nn.Module):
        def forward(self, x):
            W = x.shape[-1]
            u = F.interpolate(F.pad(x, (1, 1, 0, 0), mode="circular"), scale_factor=2,
                              mode="bilinear", align_corners=False)
            return u[..., 2:2 + 2 * W]

    class TNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(cfg.in_channels, cfg.stem, 1) if cfg.stem else None
            self.down = nn.ModuleList(TBlock(b) for b in net.down)
            self.mid = TBlock(net.mid)
            self.up = nn.ModuleList(TBlock(b) for b in net.up)
            self.head = PConv(cfg.widths[0], cfg.out_channels, 1)
            self.pool = nn.AvgPool2d(2)
            self.upsample = Up()

        def forward(self, x, mask):
            h = x if self.stem is None else self.stem(x)
            skips = []
            for b in self.down:
                h = b(h)
                skips.append(h)
                h = self.pool(h)
            h = self.mid(h)
            for b in self.up:
                h = b(self.upsample(h) + skips.pop())
            return self.head(h) * mask

    tnet = TNet()
    # copy our weights (same names up to the Sequential indices)
    ours = {k: np.asarray(v) for k, v in net.parameters().items()}
    with torch.no_grad():
        for (tn, tm), (on, om) in zip(_torch_convs(tnet), _our_convs(net)):
            tm.weight.copy_(torch.from_numpy(ours[f"{on}.weight"]))
            tm.bias.copy_(torch.from_numpy(ours[f"{on}.bias"]))
    return tnet


def _torch_convs(tnet):
    out = []
    if tnet.stem is not None:
        out.append(("stem", tnet.stem))
    for b in list(tnet.down) + [tnet.mid] + list(tnet.up):
        out += [("c1", b.body[0]), ("c2", b.body[3]), ("p", b.body[6])]
        if b.skip is not None:
            out.append(("s", b.skip))
    out.append(("head", tnet.head))
    return out


def _our_convs(net):
    out = []
    if net.stem is not None:
        out.append(("stem", net.stem))
    names = [f"down{i}" for i in range(len(net.down))] + ["mid"] + [f"up{j}" for j in range(len(net.up))]
    for n, b in zip(names, list(net.down) + [net.mid] + list(net.up)):
        out += [(f"{n}.conv1", b.conv1), (f"{n}.conv2", b.conv2), (f"{n}.proj", b.proj)]
        if b.skip is not None:
            out.append((f"{n}.skip", b.skip))
    out.append(("head", net.head))
    return out


# ---------------------------------------------------------------------- #
# timing
# ---------------------------------------------------------------------- #
def time_ours(net, x, mask, dy, sync=None):
    """(wall, CPU) seconds of one forward + backward pass of our network."""
    t0, c0 = time.perf_counter(), time.process_time()
    net.zero_grad()
    y, tape = net.forward(x, mask=mask, train=True, store="all")
    net.backward(dy, tape)
    if sync:
        sync()
    return time.perf_counter() - t0, time.process_time() - c0


def time_torch(tnet, x, mask, dy, sync=None):
    """(wall, CPU) seconds of one forward + backward pass of the PyTorch network."""
    t0, c0 = time.perf_counter(), time.process_time()
    tnet.zero_grad(set_to_none=False)
    y = tnet(x, mask)
    y.backward(dy)
    if sync:
        sync()
    return time.perf_counter() - t0, time.process_time() - c0


def bench_config(name, batch=1, repeats=5, backend="cpu", with_torch=True, log=print):
    """Forward+backward seconds per sample, ours and PyTorch's (None if unavailable)."""
    c = CONFIGS[name]
    H, W = c["grid"]
    cfg = UNetConfig(c["cin"], c["cout"], widths=c["widths"], dilations=c["dilations"], stem=c["stem"])
    bk = get_backend(backend)
    net = UNet(cfg, backend=bk, dtype=np.float32, seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((c["cin"], batch, H, W)).astype(np.float32)
    mask = (rng.uniform(size=(c["cout"], 1, H, W)) > 0.1).astype(np.float32)
    dy = rng.standard_normal((c["cout"], batch, H, W)).astype(np.float32)
    xd, md, dyd = bk.asarray(x), bk.asarray(mask), bk.asarray(dy)
    sync = None
    if bk.is_gpu:  # pragma: no cover - GPU only
        sync = bk.xp.cuda.get_current_stream().synchronize
    tnet = tx = tm = tdy = None
    if with_torch:
        try:
            import torch  # noqa: PLC0415
        except ImportError:
            torch = None
        if torch is not None:
            dev = "cuda" if bk.is_gpu else "cpu"
            tnet = torch_unet(net).to(dev)
            tx = torch.from_numpy(x.transpose(1, 0, 2, 3).copy()).to(dev)
            tm = torch.from_numpy(mask.transpose(1, 0, 2, 3).copy()).to(dev)
            tdy = torch.from_numpy(dy.transpose(1, 0, 2, 3).copy()).to(dev)
            tsync = torch.cuda.synchronize if dev == "cuda" else None
            # correctness of the comparison: same outputs
            with torch.no_grad():
                yt = tnet(tx, tm).cpu().numpy().transpose(1, 0, 2, 3)
            yo, _ = net.forward(xd, mask=md, store="none")
            err = float(np.abs(bk.to_numpy(yo) - yt).max() / max(np.abs(yt).max(), 1e-30))
            log(f"  [{name}] max relative difference of the outputs ours vs torch: {err:.2e}")
    # warm-up (JIT compilation, allocator)
    time_ours(net, xd, md, dyd, sync)
    if tnet is not None:
        time_torch(tnet, tx, tm, tdy, tsync)
    ours, theirs = [], []
    for _ in range(repeats):
        ours.append(time_ours(net, xd, md, dyd, sync))
        if tnet is not None:
            theirs.append(time_torch(tnet, tx, tm, tdy, tsync))
    res = {"config": name, "grid": [H, W], "batch": batch, "params": net.num_parameters(),
           "widths": list(c["widths"]), "dilations": list(c["dilations"]),
           "in": c["cin"], "out": c["cout"], "stem": c["stem"], "repeats": repeats}
    for who, ts in (("ours", ours), ("torch", theirs)):
        if ts:
            res[f"{who}_wall_s"] = statistics.median(t[0] for t in ts) / batch
            res[f"{who}_cpu_s"] = statistics.median(t[1] for t in ts) / batch
    if theirs:
        res["ratio_wall"] = res["torch_wall_s"] / res["ours_wall_s"]
        res["ratio_cpu"] = res["torch_cpu_s"] / res["ours_cpu_s"]
    return res


def bench_vs_ocean(steps=200, backend="cpu", dts=(1200.0, 3600.0), log=print):
    """Seconds per simulated year: emulator rollout ("small", 1 degree) against ocean_core
    at each time step in ``dts`` (1200 s: the paper configuration; 3600 s: the step used
    to generate the training data)."""
    from emulator.unet import preset_config  # noqa: PLC0415

    out = {}
    c = CONFIGS["small"]
    H, W = c["grid"]
    cfg = preset_config("small", c["cin"], c["cout"])
    bk = get_backend(backend)
    net = UNet(cfg, backend=bk, dtype=np.float32, seed=0)
    rng = np.random.default_rng(0)
    x = bk.asarray(rng.standard_normal((c["cin"], 1, H, W)).astype(np.float32))
    net.forward(x, store="none", train=False)
    calls = 20
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(calls):
        net.forward(x, store="none", train=False)
    if bk.is_gpu:  # pragma: no cover
        bk.xp.cuda.get_current_stream().synchronize()
    per_call = (time.perf_counter() - t0) / calls
    per_call_cpu = (time.process_time() - c0) / calls
    # one call predicts two 5-day means: 36.5 calls per 365-day year
    out["emulator_s_per_year"] = per_call * 365.0 / 10.0
    out["emulator_cpu_s_per_year"] = per_call_cpu * 365.0 / 10.0
    out["emulator_s_per_call"] = per_call
    out["ocean"] = []
    try:
        from ocean_core import setups  # noqa: PLC0415
    except Exception as exc:  # pragma: no cover - depends on the checkout
        log(f"  ocean_core not measured: {exc}")
        return out
    for dt in dts:
        m = setups.acc(resolution=1.0, config="paper", backend="cpu", seasonal=True,
                       dt_mom=dt, dt_tracer=dt)
        m.run(steps=10, progress=False)
        t0, c0 = time.perf_counter(), time.process_time()
        m.run(steps=steps, progress=False)
        per_step = (time.perf_counter() - t0) / steps
        per_step_cpu = (time.process_time() - c0) / steps
        n_year = 365 * 86400 / dt
        r = {"dt": dt, "ocean_s_per_step": per_step, "ocean_s_per_year": per_step * n_year,
             "ocean_cpu_s_per_year": per_step_cpu * n_year}
        r["speedup_emulator_over_ocean"] = r["ocean_s_per_year"] / out["emulator_s_per_year"]
        r["speedup_cpu"] = r["ocean_cpu_s_per_year"] / out["emulator_cpu_s_per_year"]
        out["ocean"].append(r)
    return out


def machine():
    info = {"python": platform.python_version(), "numpy": np.__version__,
            "platform": platform.platform(), "processor": platform.processor()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        info["cores"] = os.cpu_count()
    except OSError:
        pass
    try:
        import torch  # noqa: PLC0415

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        info["torch"] = None
    for k in ("OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS", "OMP_NUM_THREADS"):
        info[k] = os.environ.get(k)
    try:
        info["load_average"] = os.getloadavg()
    except OSError:
        pass
    return info


def write_results(path, text):
    """Replace (or append) the '## Emulator' section of RESULTS.md."""
    head = "## Emulator"
    old = open(path).read() if os.path.exists(path) else "# Benchmark results\n\n"
    start = old.find(head)
    if start < 0:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        nxt = old.find("\n## ", start + len(head))
        new = old[:start] + text + (old[nxt + 1:] if nxt >= 0 else "")
    with open(path, "w") as f:
        f.write(new.rstrip("\n") + "\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", default="mid,small")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--backend", default="cpu", choices=("cpu", "gpu"))
    ap.add_argument("--ocean-steps", type=int, default=200)
    ap.add_argument("--no-ocean", action="store_true")
    ap.add_argument("--quick", action="store_true", help="tiny config, 2 repeats, no ocean")
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    ap.add_argument("--json", help="also write the raw results here")
    args = ap.parse_args(argv)
    try:
        import torch  # noqa: PLC0415

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1") or 1))
    except ImportError:
        pass
    configs = ["tiny"] if args.quick else args.configs.split(",")
    reps = 2 if args.quick else args.repeats
    results = {"machine": machine(), "unet": [], "vs_ocean": None,
               "git": _git_rev()}
    for name in configs:
        r = bench_config(name, batch=args.batch, repeats=reps, backend=args.backend)
        results["unet"].append(r)
        print(json.dumps(r))
    if not (args.quick or args.no_ocean):
        results["vs_ocean"] = bench_vs_ocean(args.ocean_steps, backend=args.backend)
        print(json.dumps(results["vs_ocean"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    text = markdown(results, args)
    print(text)
    if args.write:
        write_results(os.path.join(ROOT, "benchmarks", "RESULTS.md"), text)
    return 0


def _git_rev():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    except Exception:
        return None


def markdown(results, args):
    m = results["machine"]
    lines = ["## Emulator", "",
             f"`{' '.join(['python benchmarks/emulator.py'] + (sys.argv[1:] if args else []))}` "
             f"(commit {results['git']}), {m.get('cpu')}, {m.get('cores')} cores, "
             f"OPENBLAS_NUM_THREADS={m.get('OPENBLAS_NUM_THREADS')}, "
             f"NUMBA_NUM_THREADS={m.get('NUMBA_NUM_THREADS')}, torch {m.get('torch')} with "
             f"{m.get('torch_threads')} thread(s), NumPy {m.get('numpy')}, load average at the "
             f"start {tuple(round(v, 1) for v in m.get('load_average', ()))}.", "",
             "Forward + backward of one training sample (float32, InstanceNorm, batch "
             f"{args.batch if args else 1}, median of the repeats, ours and PyTorch measured "
             "alternately in one process).  The machine is shared: wall times include "
             "waiting for a core, so the CPU time of the process (`time.process_time`) is "
             "the fairer measure; both are given.", "",
             "| config | grid, channels | widths / dilations | params | ours wall (s) | "
             "PyTorch wall (s) | PyTorch / ours (wall) | ours CPU (s) | PyTorch CPU (s) | "
             "PyTorch / ours (CPU) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["unet"]:
        def f(k, fmt="{:.3f}"):
            return fmt.format(r[k]) if k in r else "n/a"
        lines.append(f"| {r['config']} | {r['grid'][0]}x{r['grid'][1]}, {r['in']} in, {r['out']} "
                     f"out | {r['widths']} / {r['dilations']} | {r['params']:,} | "
                     f"{f('ours_wall_s')} | {f('torch_wall_s')} | {f('ratio_wall', '{:.2f}')} | "
                     f"{f('ours_cpu_s')} | {f('torch_cpu_s')} | {f('ratio_cpu', '{:.2f}')} |")
    v = results.get("vs_ocean")
    if v:
        lines += ["", "Emulator against the ocean model, ACC at 1 degree (84 x 60 x 15), "
                  "wall time per simulated year:", ""]
        lines.append(f"- emulator (\"small\", inference, 36.5 calls of 2 five-day states): "
                     f"{v['emulator_s_per_year']:.2f} s wall, {v['emulator_cpu_s_per_year']:.2f} s CPU "
                     f"per year ({v['emulator_s_per_call'] * 1e3:.1f} ms wall per call)")
        for r in v.get("ocean", []):
            n = 365 * 86400 / r["dt"]
            lines.append(f"- ocean_core (paper configuration, dt = {r['dt']:.0f} s, {n:.0f} steps per "
                         f"year, one Numba thread): {r['ocean_s_per_year']:.0f} s wall, "
                         f"{r['ocean_cpu_s_per_year']:.0f} s CPU per year "
                         f"({r['ocean_s_per_step'] * 1e3:.1f} ms wall per step); the emulator is "
                         f"{r['speedup_emulator_over_ocean']:.0f} times (wall) and "
                         f"{r['speedup_cpu']:.0f} times (CPU) faster per simulated year")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
