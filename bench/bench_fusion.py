"""Issue 4 figures: fused element-wise workloads as a fraction of this machine's memory
bandwidth, against numpy, numexpr, torch eager, torch.compile and jax.jit when installed.

  triad  a = b + s*c in C/OpenMP on all cores (STREAM-like) on arrays of the workload's size,
         timed inside each workload's interleaved loop: the bandwidth the others are measured
         against (this VM's bandwidth drifts up to 2x within a run, so a triad timed once at
         the start gave fractions above 1 once the machine sped up)
  W1     out = g*s*(1-s), s = sigmoid(x), 2^24 float32      one kernel; >= 0.55 (fresh) / 0.85 (out=)
  W2     tanh(0.5x+0.1)*exp(-x*x) + maximum(x,0)*g, 2^24    one kernel; >= 0.5 / 0.75
  hand-written C: W1 and W2 as one loop by hand, symgrad's flags, into a reused output
  W3     softmax cross-entropy fwd+bwd, logits 4096x1000   <= 2 passes; <= 0.4x torch.compile
  MLP    kernel count and workspace bytes of the 784-512-512-10 training step, opt_level 0 and 2

    python bench/bench_fusion.py [--quick] [--no-compile-peers]
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import symgrad  # noqa: E402,F401  (first: it sets GOMP_SPINCOUNT before torch loads libgomp)
from common import interleaved, kernel_count, optional, report  # noqa: E402

import symgrad as sg  # noqa: E402
from symgrad import build  # noqa: E402

torch = optional("torch")
jax = optional("jax")
numexpr = optional("numexpr")

TRIAD = r"""
#include <stdint.h>
void triad(int64_t n, float *restrict a, const float *restrict b, const float *restrict c,
           float s) {
    #pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) a[i] = b[i] + s * c[i];
}
"""


# The reference: the fused loop written by hand, compiled with symgrad's flags, writing
# into a reused output (as `out=` does).  symgrad's own loop should match it; the gap between
# it and the triad is the machine's (exp and tanh compete with the memory traffic).
HANDWRITTEN = r"""
#include "symgrad_runtime.h"
void w1(int64_t n, float *restrict out, const float *restrict x, const float *restrict g) {
    #pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        const float s = 1.0f / (1.0f + expf(-x[i]));
        out[i] = g[i] * s * (1.0f - s);
    }
}
void w2(int64_t n, float *restrict out, const float *restrict x, const float *restrict g) {
    #pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++)
        out[i] = tanhf(0.5f * x[i] + 0.1f) * expf(-x[i] * x[i]) + (x[i] > 0 ? x[i] : 0) * g[i];
}
"""


def c_call(lib, name, arrays, *extra):
    """`lib.name(n, <float pointers of arrays>, *extra)` as a zero-argument call, n the arrays'
    length.  The pointers are raw, so the call keeps the arrays alive."""
    pointers = [lib.ffi.cast("float *", a.ctypes.data) for a in arrays]
    fn, n = getattr(lib.lib, name), arrays[0].size

    def call(keep=arrays):
        return fn(n, *pointers, *extra)
    return call


def handwritten(name, out, x, g):
    """A call of the hand-written loop `name` (w1 or w2) on these arrays."""
    lib = build.load_library(HANDWRITTEN, "void w1(int64_t, float *, const float *, const float *);"
                                          "void w2(int64_t, float *, const float *, const float *);")
    return c_call(lib, name, (out, x, g))


def triad(n):
    """A call of the triad on three arrays of n float32 (it moves 3 * n * 4 bytes, as W1 and
    W2 on n elements do)."""
    lib = build.load_library(TRIAD, "void triad(int64_t, float *, const float *, const float *, "
                                    "float);")
    return c_call(lib, "triad", [np.ones(n, np.float32) for _ in range(3)], 3.0)


def fraction_report(title, med, nbytes, kernels=None):
    """Each system's bytes per second as a fraction of the triad's, timed in the same run."""
    bandwidth = nbytes / med["triad"]
    extra = {k: f"{med['triad'] / v:.2f} of triad bandwidth" for k, v in med.items()}
    report(title + f" [triad {bandwidth / 1e9:.1f} GB/s on {os.cpu_count()} cores]"
           + (f" [symgrad: {kernels}]" if kernels is not None else ""), med,
           "numpy", extra=extra)


def torch_compiled(fn, enabled):
    if torch is None or not enabled:
        return None
    try:
        compiled = torch.compile(fn)
        return compiled
    except Exception as exc:  # noqa: BLE001
        print(f"  (torch.compile unavailable: {exc})")
        return None


def w1(n, compile_peers):
    x, g = sg.placeholder("x", ("n",)), sg.placeholder("g", ("n",))
    s = sg.sigmoid(x)
    f = sg.function([x, g], g * s * (1 - s))
    rng = np.random.default_rng(0)
    xv, gv = rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32)
    out = np.empty(n, np.float32)

    def numpy_w1():
        s_ = 1 / (1 + np.exp(-xv))
        return gv * s_ * (1 - s_)

    systems = {"triad": triad(n), "symgrad c": lambda: f(xv, gv),
               "symgrad c out=": lambda: f(xv, gv, out=out),
               "hand-written C (out=)": handwritten("w1", np.empty_like(out), xv, gv),
               "numpy": numpy_w1}
    if numexpr is not None:
        systems["numexpr"] = lambda: numexpr.evaluate("g * (1/(1+exp(-x))) * (1 - 1/(1+exp(-x)))",
                                                      local_dict={"g": gv, "x": xv})
    add_torch(systems, compile_peers, (xv, gv),
              lambda tx, tg: tg * torch.sigmoid(tx) * (1 - torch.sigmoid(tx)))
    if jax is not None:
        jf = jax.jit(lambda a, b: b * jax.nn.sigmoid(a) * (1 - jax.nn.sigmoid(a)))
        ja, jb = jax.numpy.asarray(xv), jax.numpy.asarray(gv)
        systems["jax.jit"] = lambda: jf(ja, jb).block_until_ready()
    med = interleaved(systems, repeats=7)
    fraction_report(f"W1 g*s*(1-s) on {n} float32 (targets 0.55 fresh, 0.85 out=)", med,
                    3 * n * 4, kernel_count(f))


def add_torch(systems, compile_peers, arrays, fn):
    if torch is None:
        return
    tensors = [torch.from_numpy(a) for a in arrays]
    systems["torch eager"] = lambda: fn(*tensors)
    compiled = torch_compiled(fn, compile_peers)
    if compiled is not None:
        try:
            compiled(*tensors)
            systems["torch.compile"] = lambda: compiled(*tensors)
        except Exception as exc:  # noqa: BLE001
            print(f"  (torch.compile failed: {type(exc).__name__}: {exc})"[:200])


def w2(n, compile_peers):
    x, g = sg.placeholder("x", ("n",)), sg.placeholder("g", ("n",))
    f = sg.function([x, g], sg.tanh(0.5 * x + 0.1) * sg.exp(-x * x) + sg.maximum(x, 0) * g)
    rng = np.random.default_rng(1)
    xv, gv = rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32)
    out = np.empty(n, np.float32)
    systems = {"triad": triad(n), "symgrad c": lambda: f(xv, gv),
               "symgrad c out=": lambda: f(xv, gv, out=out),
               "hand-written C (out=)": handwritten("w2", np.empty_like(out), xv, gv),
               "numpy": lambda: np.tanh(0.5 * xv + 0.1) * np.exp(-xv * xv)
               + np.maximum(xv, 0) * gv}
    if numexpr is not None:
        systems["numexpr"] = lambda: numexpr.evaluate(
            "tanh(0.5*x+0.1)*exp(-x*x) + where(x > 0, x, 0)*g", local_dict={"x": xv, "g": gv})
    add_torch(systems, compile_peers, (xv, gv),
              lambda a, b: torch.tanh(0.5 * a + 0.1) * torch.exp(-a * a)
              + torch.clamp_min(a, 0) * b)
    med = interleaved(systems, repeats=7)
    fraction_report(f"W2 tanh(0.5x+0.1)*exp(-x*x) + maximum(x,0)*g on {n} float32 "
                    "(targets 0.5 fresh, 0.75 out=)", med, 3 * n * 4, kernel_count(f))


def w3(rows, classes, compile_peers):
    z = sg.placeholder("z", ("rows", classes))
    t = sg.placeholder("t", ("rows",), dtype="int64")
    loss = sg.cross_entropy(z, t)
    f = sg.function([z, t], [loss, sg.grad(loss, z)])
    rng = np.random.default_rng(2)
    zv = rng.standard_normal((rows, classes), dtype=np.float32)
    tv = rng.integers(0, classes, rows)
    outs = [np.empty((), np.float32), np.empty((rows, classes), np.float32)]

    def numpy_w3():
        m = zv.max(axis=1, keepdims=True)
        e = np.exp(zv - m)
        ssum = e.sum(axis=1, keepdims=True)
        loss_ = np.mean(np.log(ssum[:, 0]) + m[:, 0] - zv[np.arange(rows), tv])
        grad = e / ssum
        grad[np.arange(rows), tv] -= 1
        return loss_, grad / rows

    systems = {"symgrad c": lambda: f(zv, tv), "symgrad c out=": lambda: f(zv, tv, out=outs),
               "numpy": numpy_w3}
    if torch is not None:
        tz, tt = torch.from_numpy(zv), torch.from_numpy(tv)

        def torch_step(zz, labels):
            zz = zz.detach().requires_grad_(True)
            out = torch.nn.functional.cross_entropy(zz, labels)
            out.backward()
            return out, zz.grad
        systems["torch eager"] = lambda: torch_step(tz, tt)
        compiled = torch_compiled(torch_step, compile_peers)
        if compiled is not None:
            try:
                compiled(tz, tt)
                systems["torch.compile"] = lambda: compiled(tz, tt)
            except Exception as exc:  # noqa: BLE001
                print(f"  (torch.compile failed: {type(exc).__name__})")
    med = interleaved(systems, repeats=9)
    ref = numpy_w3()
    got = f(zv, tv)
    assert np.allclose(got[0], ref[0], rtol=1e-5) and np.allclose(got[1], ref[1], atol=1e-7)
    report(f"W3 softmax cross-entropy fwd+bwd, logits {rows}x{classes} "
           f"[symgrad: {kernel_count(f)}] (target <= 0.4x torch.compile)", med, "numpy")
    if "torch.compile" in med:
        print(f"  symgrad / torch.compile time: {med['symgrad c'] / med['torch.compile']:.2f} "
              f"(out=: {med['symgrad c out='] / med['torch.compile']:.2f})")


def mlp_plan():
    x = sg.placeholder("x", ("batch", 784))
    t = sg.placeholder("t", ("batch",), dtype="int64")
    shapes = [(784, 512), (512,), (512, 512), (512,), (512, 10), (10,)]
    ps = [sg.shared(np.zeros(s, np.float32), name=f"p{i}") for i, s in enumerate(shapes)]
    h = sg.relu(x @ ps[0] + ps[1])
    h = sg.relu(h @ ps[2] + ps[3])
    loss = sg.cross_entropy(h @ ps[4] + ps[5], t)
    updates = sg.optim.sgd(ps, sg.grad(loss, ps), lr=0.01, momentum=0.9)
    print("\n== MLP 784-512-512-10 training step, batch 256")
    for level in (0, 2):
        f = sg.function([x, t], loss, updates=updates, opt_level=level)
        ws = f._program.workspace_bytes([256])
        print(f"  opt_level={level}: {kernel_count(f)}, workspace {ws:,d} bytes")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-compile-peers", action="store_true",
                        help="skip torch.compile (slow to compile)")
    args = parser.parse_args()
    n = 2 ** 18 if args.quick else 2 ** 24
    print(f"symgrad {sg.__version__}, numpy {np.__version__}, numexpr "
          f"{getattr(numexpr, '__version__', 'absent')}, torch "
          f"{getattr(torch, '__version__', 'absent')}, jax {getattr(jax, '__version__', 'absent')}")
    w1(n, not args.no_compile_peers)
    w2(n, not args.no_compile_peers)
    w3(256 if args.quick else 4096, 1000, not args.no_compile_peers)
    mlp_plan()


if __name__ == "__main__":
    main()
