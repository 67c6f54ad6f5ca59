"""Every CUDA kernel the test suite generates, compiled by nvcc for sm_80 and sm_90 with
`-Xptxas -v,-warn-spills` (symgrad/codegen/ptxas.py): no spills (but for the small frame of
CUDA's own double-precision math, see LIBRARY_SPILL), at most 128 registers (256-thread blocks;
128 registers keep two blocks on an SM; the GEMM is capped there with __maxnreg__) and at most
48 KiB of static shared memory.  No GPU is needed, only nvcc.

The sources are the op registry's chunks (tests/cuda_cases.py), the MLP step, and graphs chosen
to stress particular kernels (GEMMs with transposes and batches, row ops along either axis,
gathers and their scatters, random draws, conv2d, the non-finite checks).  All of them go
through one nvcc per arch, and ptxas's report is cached by content: a warm run compiles nothing.
`pytest -s` prints the heaviest kernels.
"""
from __future__ import annotations

import re

import pytest

import symgrad as sg
from symgrad import build
from symgrad.codegen import cuda, ptxas

try:
    build._find_nvcc()
except build.NoCompilerError:
    pytest.skip("nvcc not found (not on PATH, nor in $CUDA_HOME/bin): the nvcc kernel checks "
                "need the CUDA toolkit, not a GPU", allow_module_level=True)

import cuda_cases

ARCHES = ("sm_80", "sm_90")
MAX_REGISTERS = 128
MAX_SMEM = 48 * 1024
HEAVIEST = 8


# ---------------------------------------------------------------- the sources
def _checked_source(fn) -> str:
    """The CUDA source with check_finite=True (a check kernel after each float output), rendered
    as codegen.cuda.source_for does."""
    from symgrad.codegen.c import plan_workspace
    from symgrad.codegen.schedule import Schedule
    schedule = Schedule(fn, fn.opt_level)
    slots = plan_workspace(schedule.kernels, schedule.buffers)
    return cuda.render(schedule, slots, len(fn.sym_slots), check_finite=True)


def _fn(inputs, outputs):
    return sg.function(inputs, outputs, backend="numpy")


def _matmuls(dt):
    """Each GEMM variant: a.T @ b, a @ b.T, 3-D @ 2-D and 3-D @ 3-D, and their gradients (which
    transpose the other operand)."""
    n = f"nvcc_mm_{dt}_n"
    a, b = sg.placeholder("a", (6, n), dt), sg.placeholder("b", (6, 5), dt)
    c = sg.placeholder("c", (70, 5), dt)
    x3, w = sg.placeholder("x3", (n, 4, 6), dt), sg.placeholder("w", (6, 3), dt)
    z3 = sg.placeholder("z3", (n, 3, 2), dt)
    y1 = a.T @ b                          # (n, 5)
    y2 = y1 @ c.T                         # (n, 70)
    y3 = x3 @ w                           # (n, 4, 3)
    y4 = y3 @ z3                          # (n, 4, 2)
    loss = sg.sum(y2 * y2) + sg.sum(sg.tanh(y4))
    inputs = [a, b, c, x3, w, z3]
    return _fn(inputs, [y1, y2, y3, y4] + sg.grad(loss, inputs))


def _row_ops(dt):
    """softmax / log_softmax along axis 0 and -1, with gradients."""
    x = sg.placeholder("x", (5, f"nvcc_rows_{dt}_n"), dt)
    outs = [sg.softmax(x, axis=0), sg.softmax(x, axis=-1), sg.log_softmax(x, axis=0),
            sg.log_softmax(x, axis=-1)]
    loss = sum(sg.sum(o * (i + 1.0)) for i, o in enumerate(outs))
    return _fn([x], outs + [sg.grad(loss, x)])


def _cross_entropy():
    logits = sg.placeholder("logits", ("nvcc_ce_n", 7))
    labels = sg.placeholder("labels", ("nvcc_ce_n",), "int64")
    loss = sg.cross_entropy(logits, labels)
    return _fn([logits, labels], [loss, sg.grad(loss, logits)])


def _reductions():
    """Over a middle axis (short, long and symbolic), and argmax along each axis."""
    x = sg.placeholder("x", (4, "nvcc_red_n", 6), "float64")
    y = sg.placeholder("y", (3, 1000, 5))
    outs = [sg.sum(x, axis=1), sg.mean(x, axis=1), sg.max(x, axis=1), sg.sum(y, axis=1),
            sg.max(y, axis=1), sg.logsumexp(y, axis=1)]
    outs += [sg.argmax(x, axis=a) for a in (0, 1, 2)] + [sg.argmax(y, axis=1)]
    return _fn([x, y], outs + sg.grad(sg.sum(sg.max(x, axis=1)) + sg.sum(sg.sum(y, 1)), [x, y]))


def _gather():
    """take (gather) along two axes, and its gradient (scatter_add)."""
    x = sg.placeholder("x", ("nvcc_take_n", 6), "float64")
    idx = sg.placeholder("idx", ("nvcc_take_m",), "int64")
    rows, cols = sg.take(x, idx, axis=0), sg.take(x, idx, axis=1)
    loss = sg.sum(rows * rows) + sg.sum(cols)
    return _fn([x, idx], [rows, cols, sg.grad(loss, x)])


def _random():
    x = sg.placeholder("x", ("nvcc_rand_n", 9))
    outs = [sg.random.dropout(x, 0.3, seed=11), sg.random.normal((4, 5), seed=12),
            sg.random.uniform(x, seed=13, dtype="float64"), sg.random.bernoulli((3, 3), 0.2)]
    return _fn([x], outs + [sg.grad(sg.sum(outs[0]), x)])


def _conv():
    x = sg.placeholder("x", ("nvcc_conv_n", 3, 9, 9))
    w, b = sg.placeholder("w", (4, 3, 3, 3)), sg.placeholder("b", (4,))
    y1 = sg.layers.conv2d(x, w, b, padding=1)
    y2 = sg.layers.conv2d(x, w, stride=2, dilation=2)
    p = sg.layers.max_pool2d(y1, 2)
    loss = sg.sum(p * p) + sg.sum(y2)
    return _fn([x, w, b], [y1, y2, p] + sg.grad(loss, [x, w, b]))


def _layers():
    """layer_norm and attention: reductions, broadcasts and batched GEMMs in one step."""
    q = sg.placeholder("q", ("nvcc_attn_n", 6, 8))
    k = sg.placeholder("k", ("nvcc_attn_n", 5, 8))
    v = sg.placeholder("v", ("nvcc_attn_n", 5, 4))
    att = sg.layers.scaled_dot_product_attention(q, k, v)
    ln = sg.layers.layer_norm(q, axis=-1)
    causal = sg.layers.scaled_dot_product_attention(q, q, q, causal=True)
    loss = sg.sum(att * att) + sg.sum(ln * ln) + sg.sum(causal)
    return _fn([q, k, v], [att, ln, causal] + sg.grad(loss, [q, k, v]))


def _symbolic_slices():
    """Slices, a roll, a reversal and arange along symbolic axes (offsets that are polynomials
    of the call's dims), and causal attention over a symbolic length."""
    x = sg.placeholder("x", ("nvcc_slice_n", 3), "float64")
    q = sg.placeholder("q", ("nvcc_slice_b", "nvcc_slice_t", 4))
    diff = x[1:] - x[:-1]
    rolled = sg.concatenate([x[1:], x[:1]])
    positions = sg.arange(x.shape[0], dtype="float64")
    causal = sg.layers.scaled_dot_product_attention(q, q, q, causal=True)
    loss = (sg.sum(diff * diff) + sg.sum(rolled * x[::-1])
            + sg.sum(x[-1]) * sg.sum(positions[-2:]))
    return _fn([x, q], [diff, rolled, positions, causal] + sg.grad(loss, [x])
               + sg.grad(sg.sum(causal * causal), [q]))


def _sources() -> dict[str, str]:
    sources = {}
    for name, builder in cuda_cases.value_chunks() + cuda_cases.gradient_chunks():
        chunk = builder()
        sources[name] = cuda.source_for(_fn(chunk.inputs, chunk.outputs))
    mlp = cuda_cases.mlp_step("numpy")[0]
    sources["mlp"] = cuda.source_for(mlp)
    sources["mlp_checked"] = _checked_source(mlp)  # the float32 finite checks
    for dt in ("float32", "float64"):
        sources[f"matmul_{dt}"] = cuda.source_for(_matmuls(dt))
        sources[f"row_ops_{dt}"] = cuda.source_for(_row_ops(dt))
    for name, make in [("cross_entropy", _cross_entropy), ("reductions", _reductions),
                       ("random", _random), ("conv", _conv), ("layers", _layers),
                       ("symbolic_slices", _symbolic_slices)]:
        sources[name] = cuda.source_for(make())
    gather = _gather()
    sources["gather"] = cuda.source_for(gather)
    sources["gather_checked"] = _checked_source(gather)  # the float64 finite checks
    return sources


# ---------------------------------------------------------------- the report
_GLOBAL = re.compile(r"__global__\s+void\s+(?:__launch_bounds__\s*\([^)]*\)\s*|SG_\w+\s+)?(\w+)\s*\(")


@pytest.fixture(scope="module")
def sources():
    return _sources()


# Spills are errors for our own code: the GEMM and every generated kernel.  The exception is
# CUDA's double-precision math library, whose slow paths keep a small local frame even in a
# kernel that only computes exp(x) (60 bytes on sm_90 with CUDA 13, at 40 registers; IEEE
# double division does the same): a kernel that calls a double transcendental or divides in
# double may spill up to LIBRARY_SPILL bytes.  So ptxas's warnings
# stay warnings, and test_no_spills applies the rule.
LIBRARY_SPILL = 64
DOUBLE_MATH = re.compile(r"\b(exp|expm1|log|log1p|pow|tanh|sin|cos|sqrt|sg_sigmoid|sg_softplus)\(| / ")


def calls_double_math(source: str, kernel: str) -> bool:
    """Whether the generated kernel's body computes in double and calls a math function."""
    start = source.find(f" {kernel}(")
    if start < 0:
        return False
    body = source[start:source.find("static cudaError_t launch_", start)]
    return "double" in body and bool(DOUBLE_MATH.search(body))


@pytest.fixture(scope="module")
def report(sources):
    # SG_MAX(SG_MAX(a, b), c) nested d deep expands to 2^d copies: gigabytes of preprocessor
    # output from d ~ 20.  The generator avoids it; fail fast rather than exhaust the runner.
    deep = [n for n, s in sources.items() if any(ln.count("SG_MAX(") > 2 for ln in s.split("\n"))]
    assert not deep, f"nested SG_MAX (exponential macro expansion) in {deep}"
    return ptxas.kernel_resources(sources, ARCHES, werror=False)


def _where(r):
    return f"{r.source}: {r.kernel} on {r.arch}"


def test_every_kernel_is_reported(sources, report):
    """Each source's __global__ kernels, on each arch, and the runtime header's templates (the
    GEMM, the finite check) as instantiated: a parser that finds nothing, or a kernel ptxas
    never saw, fails here rather than passing the budgets."""
    header = set(_GLOBAL.findall((build._csrc_dir() / "symgrad_cuda.h").read_text()))
    assert header >= {"sg_gemm_kernel", "sg_check_finite"}
    instances = {arch: set() for arch in ARCHES}
    for r in report:
        if r.kernel.split("<")[0] in header:  # a header template, instantiated here
            instances[r.arch].add((r.source, r.kernel))
    for name, text in sources.items():
        expected = set(_GLOBAL.findall(text))
        assert expected, f"{name}: no __global__ kernels in the source"
        for arch in ARCHES:
            found = {r.kernel for r in report if r.source == name and r.arch == arch
                     and (name, r.kernel) not in instances[arch]}
            assert found == expected, (name, arch, expected ^ found)
    for arch in ARCHES:
        for t in ("float", "double"):  # from the float32/float64 matmuls and finite checks
            assert any(k.startswith(f"sg_gemm_kernel<{t}, ") for _, k in instances[arch])
            assert (ptxas.HEADER, f"sg_check_finite<{t}>") in instances[arch]
    kernels = sum(len(set(_GLOBAL.findall(t))) for t in sources.values())
    assert len(report) == kernels * len(ARCHES) + sum(map(len, instances.values()))
    assert len({(r.source, r.kernel, r.arch) for r in report}) == len(report)


def test_no_spills(sources, report):
    # spills include those of the non-inlined functions a kernel calls (CUDA's pow)
    def allowed(r):
        return r.source in sources and calls_double_math(sources[r.source], r.kernel) and \
            max(r.spill_stores, r.spill_loads) <= LIBRARY_SPILL
    bad = [f"{_where(r)}: {r.spill_stores} B spill stores, {r.spill_loads} B loads, "
           f"{r.stack} B stack" for r in report
           if (r.spill_stores or r.spill_loads) and not allowed(r)]
    assert not bad, "\n".join(bad)


def test_registers_in_budget(report):
    bad = [f"{_where(r)}: {r.registers} registers" for r in report
           if r.registers > MAX_REGISTERS]
    assert not bad, "\n".join(bad)


def test_shared_memory_in_budget(report):
    bad = [f"{_where(r)}: {r.smem} B static shared memory" for r in report if r.smem > MAX_SMEM]
    assert not bad, "\n".join(bad)


def test_print_heaviest_kernels(report):
    """For the notes (pytest -s): the kernels closest to each budget, both arches side by side."""
    kernels = {}
    for r in report:
        kernels.setdefault((r.source, r.kernel), {})[r.arch] = r
    for field, budget in (("registers", MAX_REGISTERS), ("smem", MAX_SMEM)):
        print(f"\n{HEAVIEST} heaviest kernels by {field} (budget {budget}):")
        print(f"  {'registers':>15} {'smem (B)':>15}  " + "/".join(ARCHES) + "  kernel")
        heavy = sorted(kernels.items(), key=lambda kv: (
            -max(getattr(r, field) for r in kv[1].values()), kv[0]))[:HEAVIEST]
        for (source, kernel), by_arch in heavy:
            regs = "/".join(str(by_arch[a].registers) for a in ARCHES)
            smem = "/".join(str(by_arch[a].smem) for a in ARCHES)
            print(f"  {regs:>15} {smem:>15}  {source}: {kernel}")


def test_second_call_is_a_cache_hit(sources, report):
    runs = ptxas.nvcc_runs
    again = ptxas.kernel_resources(sources, ARCHES, werror=False)
    assert again == report and ptxas.nvcc_runs == runs


# ---------------------------------------------------------------- the check can fail
PROBES = r"""
#include "symgrad_cuda.h"
/* 64 live accumulators with at most 32 registers (1024 threads, 2 blocks per SM): spills */
__global__ void __launch_bounds__(1024, 2) spills(const float *a, float *c, int k) {
    float acc[64];
#pragma unroll
    for (int i = 0; i < 64; i++) acc[i] = a[threadIdx.x + i * 1024];
    for (int p = 0; p < k; p++) {
#pragma unroll
        for (int i = 0; i < 64; i++) acc[i] = acc[i] * acc[(i + 7) & 63] + a[p * 64 + i];
    }
#pragma unroll
    for (int i = 0; i < 64; i++) c[threadIdx.x + i * 1024] = acc[i];
}
"""
HUNGRY = r"""
#include "symgrad_cuda.h"
/* 160 live accumulators, 256 threads: far above 128 registers, under the 255 that spill */
__global__ void __launch_bounds__(256) hungry(const float *a, float *c, int k) {
    float acc[160];
#pragma unroll
    for (int i = 0; i < 160; i++) acc[i] = a[threadIdx.x + i * 256];
    for (int p = 0; p < k; p++) {
#pragma unroll
        for (int i = 0; i < 160; i++) acc[i] = acc[i] * acc[(i + 3) % 160] + a[p * 160 + i];
    }
#pragma unroll
    for (int i = 0; i < 160; i++) c[threadIdx.x + i * 256] = acc[i];
}
/* 40 KiB of static shared memory and a barrier; a template, for the demangling */
template <typename T, bool B>
__global__ void staged(const T *a, T *c) {
    __shared__ T tile[40 * 1024 / sizeof(T)];
    for (int i = threadIdx.x; i < 40 * 1024 / (int)sizeof(T); i += blockDim.x) tile[i] = a[i];
    __syncthreads();
    c[threadIdx.x] = B ? tile[(threadIdx.x * 7) % 1024] : tile[0];
}
template __global__ void staged<double, true>(const double *, double *);
"""


def test_spills_fail_the_compile():
    with pytest.raises(build.CompileError, match="spill"):
        ptxas.kernel_resources({"probe": PROBES}, ("sm_80",))


def test_the_report_reads_the_numbers():
    """Without warnings as errors the spilling kernel compiles, and the report shows what each
    budget test looks for."""
    report = ptxas.kernel_resources({"probe": PROBES, "hungry": HUNGRY}, ("sm_80",),
                                    werror=False)
    by_name = {r.kernel: r for r in report}
    assert set(by_name) == {"spills", "hungry", "staged<double, true>"}
    assert by_name["spills"].source == "probe" and by_name["hungry"].source == "hungry"
    assert by_name["spills"].spill_stores > 0 and by_name["spills"].spill_loads > 0
    assert by_name["spills"].registers <= 32
    assert by_name["hungry"].registers > MAX_REGISTERS and by_name["hungry"].spill_stores == 0
    assert by_name["staged<double, true>"].smem == 40 * 1024
    assert by_name["staged<double, true>"].barriers >= 1
    assert by_name["spills"].mangled.startswith("_ZN15sg_source_probe")
