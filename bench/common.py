"""Benchmark helpers: warm up, interleave the systems (A B A B ...), report medians and ratios
from the same run.  The machine is shared and noisy: only ratios from one run mean much."""
from __future__ import annotations

import statistics
import time


def interleaved(systems: dict, repeats=15, number=None, warmup=2, settle=0.25,
                sample=0.02) -> dict:
    """systems: name -> zero-argument callable.  Returns name -> median seconds per call.

    Between two systems the run pauses `settle` seconds (not timed): thread pools (OpenMP,
    OpenBLAS, XLA, torch) spin for a while after their work, and on 2 cores a spinning pool of
    the previous system would be charged to the next one.  OpenBLAS's workers (numpy's) spin
    for 2^28 cycles, about 0.1 s here, so the pause is longer than that.

    After the pause every thread pool is asleep, and waking it costs about 0.1-0.5 ms here: a
    lone call of a 0.5 ms op would be timed mostly waking threads, which a training loop pays
    once, not per batch.  So a sample is `number` calls back to back (by default, as many as
    fill `sample` seconds, counted per system from its warm-up) and the time per call is
    their mean."""
    counts = {}
    for name, fn in systems.items():
        once = sample  # no warm-up: one call a sample
        for _ in range(warmup):
            t0 = time.perf_counter()
            fn()
            once = time.perf_counter() - t0
        counts[name] = number or max(1, min(1000, round(sample / max(once, 1e-9))))
    samples = {name: [] for name in systems}
    for _ in range(repeats):
        for name, fn in systems.items():
            time.sleep(settle)
            t0 = time.perf_counter()
            for _ in range(counts[name]):
                fn()
            samples[name].append((time.perf_counter() - t0) / counts[name])
    return {name: statistics.median(s) for name, s in samples.items()}


def report(title, medians: dict, baseline: str, unit="ms", extra=None):
    scale = {"ms": 1e3, "us": 1e6, "s": 1.0}[unit]
    print(f"\n== {title}")
    base = medians[baseline]
    for name, t in medians.items():
        note = f"  ({extra[name]})" if extra and name in extra else ""
        print(f"  {name:28s} {t * scale:10.3f} {unit}   x{base / t:6.2f} vs {baseline}{note}")


def kernel_count(fn) -> str:
    """"24 kernels in 16 launches": kernels that run inside another's launch (a GEMM's epilogue,
    a row group's members) are counted as kernels but not as launches."""
    launches = sum(getattr(k, "runs_in", None) is None for k in fn.kernels)
    n = len(fn.kernels)
    return f"{n} kernels" + (f" in {launches} launches" if launches != n else "")


def optional(module):
    try:
        return __import__(module)
    except Exception:  # noqa: BLE001  (an optional peer that fails to import is just absent)
        return None
