"""Issue 6 figures: the CUDA backend, measured without a GPU (and with one where it exists).

  kernels   registers, static shared memory and spills of every kernel of the W4 MLP training
            step (784-512-512-10, SGD momentum), from ptxas for sm_80 and sm_90 (needs nvcc)
  suite     wall time of the emulated CUDA tests and of the nvcc check (tests/test_cuda.py,
            tests/test_cuda_nvcc.py), each in a fresh process, with the compile cache as it is
  gpu       where a CUDA device exists: the W4 step, CUDA against the C backend, interleaved
            (medians and their ratio from the same run)

    python bench/bench_cuda.py [--no-suite]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import symgrad as sg  # noqa: E402
from common import interleaved, report  # noqa: E402

import bench_training  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def w4_function(backend):
    return bench_training.symgrad_step(bench_training.init_params(), backend)


def kernels():
    from symgrad.codegen import cuda, ptxas
    try:
        source = cuda.source_for(w4_function("numpy"))
        report_ = ptxas.kernel_resources({"w4": source}, ("sm_80", "sm_90"), werror=False)
    except Exception as exc:  # noqa: BLE001  (no nvcc: say so and go on)
        print(f"\n== kernels: skipped ({type(exc).__name__}: {str(exc).splitlines()[0]})")
        return
    by_kernel = {}
    for r in report_:
        by_kernel.setdefault(r.kernel, {})[r.arch] = r
    print(f"\n== W4 step: {len(by_kernel)} CUDA kernels (registers, static shared memory, "
          "spill bytes; sm_80 / sm_90)")
    for kernel, arches in sorted(by_kernel.items(), key=lambda kv: -kv[1]["sm_90"].registers):
        a, b = arches["sm_80"], arches["sm_90"]
        print(f"  {a.registers:4d} / {b.registers:<4d} regs  {a.smem:6d} / {b.smem:<6d} B smem  "
              f"{a.spill_stores} / {b.spill_stores} B spills  {kernel}")


def suite():
    for name in ("tests/test_cuda.py", "tests/test_cuda_nvcc.py"):
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            name], cwd=ROOT, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - t0
        last = (r.stdout.strip().splitlines() or ["(no output)"])[-1]
        print(f"  {name:28s} {seconds:6.1f} s   {last}")


def gpu():
    if not os.path.exists("/dev/nvidiactl"):
        print("\n== gpu: no CUDA device here; the GPU figures need a machine with one")
        return
    os.environ.pop("SYMGRAD_CUDA_EMULATE", None)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 784)).astype(np.float32)
    t = rng.integers(0, 10, 256)
    steps = {"symgrad cuda": w4_function("cuda"), "symgrad c": w4_function("c")}
    med = interleaved({k: (lambda f=f: f(x, t)) for k, f in steps.items()}, repeats=30)
    report("W4 MLP training step, batch 256 (CUDA incl. copies in and out)", med, "symgrad c")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-suite", action="store_true")
    args = parser.parse_args()
    print(f"symgrad {sg.__version__}, numpy {np.__version__}")
    kernels()
    if not args.no_suite:
        print("\n== emulated CUDA tests and the nvcc check, wall time (2 cores here)")
        suite()
    gpu()


if __name__ == "__main__":
    main()
