"""Shared helpers of the benchmark scripts: machine description, timing, tables.

Kept small and generic (no stommel imports at module level) so any benchmark can
use it::

    from benchmarks.common import machine_info, timeit, format_table

* :func:`machine_info` -- dict of CPU model, cores, affinity, load, memory, versions
  (and GPU name when asked and present), to be printed with every result.
* :func:`timeit` -- run ``fn`` ``warmup`` times untimed and ``repeats`` times timed;
  returns min / median / mean / all times (seconds).
* :func:`format_table` -- plain-text (or Markdown) table of rows.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import time

__all__ = ["machine_info", "timeit", "format_table", "load_average", "peak_rss_mib", "format_machine"]


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mem_total_gib():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 ** 2, 1)
    except OSError:
        pass
    return None


def load_average():
    """(1, 5, 15)-minute load averages, or None where unavailable."""
    try:
        return tuple(round(x, 2) for x in os.getloadavg())
    except (OSError, AttributeError):
        return None


def peak_rss_mib():
    """Peak resident set size of this process [MiB] (Linux ru_maxrss is in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _gpu_info():
    try:
        from numba import cuda
        if not cuda.is_available():
            return None
        dev = cuda.get_current_device()
        name = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
        return {"name": name, "compute_capability": ".".join(map(str, dev.compute_capability))}
    except Exception:
        return None


def machine_info(gpu=False):
    """Description of the machine a benchmark runs on (call it at the start and at the end:
    ``load`` changes).  ``gpu=True`` adds the CUDA device name if one is usable."""
    info = {
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load": load_average(),
        "mem_gib": _mem_total_gib(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    for mod in ("numpy", "scipy", "numba"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception:
            info[mod] = None
    try:
        import numba
        info["numba_threads_max"] = numba.config.NUMBA_NUM_THREADS
    except Exception:
        pass
    if gpu:
        info["gpu"] = _gpu_info()
    return info


def format_machine(info):
    """One line describing ``info`` from :func:`machine_info`."""
    load = info.get("load")
    s = (f"{info['cpu']}, {info['logical_cores']} logical cores (affinity {info.get('affinity')}), "
         f"{info.get('mem_gib')} GiB, load {'/'.join(map(str, load)) if load else 'n/a'} (1/5/15 min), "
         f"Python {info['python']}, numpy {info.get('numpy')}, numba {info.get('numba')}")
    if info.get("gpu"):
        s += f", GPU {info['gpu']['name']}"
    return s


def timeit(fn, repeats=10, warmup=1, sync=None):
    """Time ``fn()``: ``warmup`` untimed calls, then ``repeats`` timed calls.

    ``sync`` (optional) is called after every call inside the timed region (e.g. a GPU
    synchronize).  Returns ``{"min", "median", "mean", "times", "warmup_times"}`` (wall clock) and
    ``{"cpu_min", "cpu_median", "cpu_times"}`` (CPU time of the whole process, all threads) in
    seconds; report min and median (min is the least disturbed by other load, median the typical).
    On a loaded machine the CPU time of a single-threaded run estimates its unloaded wall time
    (it still includes cache and memory-bandwidth contention).
    """
    def once():
        c0 = time.process_time()
        t0 = time.perf_counter()
        fn()
        if sync is not None:
            sync()
        return time.perf_counter() - t0, time.process_time() - c0

    warm = [once()[0] for _ in range(int(warmup))]
    pairs = [once() for _ in range(int(repeats))]
    if not pairs:
        raise ValueError("repeats must be >= 1")
    times = [p[0] for p in pairs]
    cpu = [p[1] for p in pairs]
    return {"min": min(times), "median": statistics.median(times), "mean": statistics.fmean(times),
            "times": times, "warmup_times": warm,
            "cpu_min": min(cpu), "cpu_median": statistics.median(cpu), "cpu_times": cpu}


def format_table(rows, headers, markdown=False, floatfmt="{:.4g}"):
    """Rows (sequences) under ``headers`` as aligned text, or a Markdown table."""
    def cell(v):
        if v is None:
            return "-"
        if isinstance(v, float):
            return floatfmt.format(v)
        return str(v)

    cells = [[cell(v) for v in r] for r in rows]
    heads = [str(h) for h in headers]
    if markdown:
        out = ["| " + " | ".join(heads) + " |", "|" + "|".join("---" for _ in heads) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in cells]
        return "\n".join(out)
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(heads)]
    line = "  ".join(h.ljust(w) for h, w in zip(heads, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    return "\n".join(out)
