"""The CUDA backend, run where there is no GPU: the generated CUDA source compiled by the host
C++ compiler against csrc/symgrad_cuda_emulate.h (blocks and threads as fibers, real barriers and
warp shuffles), equal to the numpy backend.  Each emulated test runs its step in two thread
orders, so a missing barrier shows.  The same tests run on a real GPU where one exists (marker
`gpu`).  The nvcc compile check of every generated kernel is tests/test_cuda_nvcc.py."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import symgrad as sg
from symgrad import build
from symgrad.backends.c_backend import KernelError
from symgrad.backends.cuda_backend import CudaError

import cuda_cases
from test_c_backend import random_case, random_graph
from test_gemm import inference_chain

if not any(shutil.which(c) for c in (os.environ.get("CXX") or "c++", "g++", "clang++")):
    pytest.skip("the CUDA emulation needs a C++ compiler", allow_module_level=True)

ORDERS = ("forward", "reverse")


def gpu_present() -> bool:
    return shutil.which("nvcc") is not None and os.path.exists("/dev/nvidiactl")


@pytest.fixture(params=["emulated", pytest.param("gpu", marks=pytest.mark.gpu)])
def cuda(request, monkeypatch):
    """Where the CUDA steps run: the CPU emulation here, a real GPU where there is one.  Yields
    the thread orders to try (the emulation's visiting order; a GPU has its own)."""
    if request.param == "gpu":
        if not gpu_present():
            pytest.skip("no CUDA GPU on this machine")
        monkeypatch.delenv("SYMGRAD_CUDA_EMULATE", raising=False)
        return ("gpu",)
    monkeypatch.setenv("SYMGRAD_CUDA_EMULATE", "1")
    return ORDERS


def in_orders(orders, monkeypatch, call):
    """call() once per thread order; results keyed by order."""
    results = {}
    for order in orders:
        if order != "gpu":
            monkeypatch.setenv("SYMGRAD_CUDA_EMULATE_ORDER", order)
        results[order] = call()
    return results


def agrees(got, ref) -> bool:
    """The numpy backend's value within float tolerance: float64 to ~1e-12, float32 to ~1e-5
    relative, with an absolute floor scaled by the values' magnitude (the GPU sums in another
    order than numpy)."""
    got, ref = np.asarray(got), np.asarray(ref)
    if got.dtype != ref.dtype or got.shape != ref.shape:
        return False
    if ref.dtype.kind != "f":
        return np.array_equal(got, ref)
    finite = ref[np.isfinite(ref)]
    scale = max(1.0, float(np.max(np.abs(finite)))) if finite.size else 1.0
    rtol = 1e-12 if ref.dtype == np.float64 else 1e-5
    return np.allclose(got, ref, rtol=rtol, atol=rtol * scale, equal_nan=True)


# ---------------------------------------------------------------- the op registry, in chunks
CHUNKS = cuda_cases.CHUNKS_BY_NAME


@pytest.mark.parametrize("build_chunk", [b for _, b in CHUNKS], ids=[n for n, _ in CHUNKS])
def test_registry_values_and_gradients_match_numpy(build_chunk, cuda, monkeypatch):
    chunk = build_chunk()
    ref = sg.function(chunk.inputs, chunk.outputs, backend="numpy")(*chunk.arrays)
    fn = sg.function(chunk.inputs, chunk.outputs, backend="cuda")
    originals = [a.copy() for a in chunk.arrays]
    for order, got in in_orders(cuda, monkeypatch, lambda: fn(*chunk.arrays)).items():
        wrong = sorted({label for label, g, r in zip(chunk.labels, got, ref)
                        if not agrees(g, r)})
        assert not wrong, f"{order} thread order: {wrong}"
    for a, o in zip(chunk.arrays, originals):
        np.testing.assert_array_equal(a, o)


def test_rows_with_infinities_match_numpy(cuda, monkeypatch):
    """softmax / log_softmax / logsumexp / cross-entropy on rows holding +inf, -inf and NaN
    (warp-per-row kernels and the strided one) give the numpy backend's values."""
    x = sg.placeholder("x", (None, 3), "float32")
    t = sg.placeholder("t", (None,), "int64")
    ce = sg.cross_entropy(x, t)
    outputs = [sg.softmax(x, axis=1), sg.log_softmax(x, axis=1), sg.logsumexp(x, axis=1),
               sg.transpose(sg.softmax(sg.transpose(x), axis=0)), ce, sg.grad(ce, x)]
    rows = np.array([[100.0, np.inf, 0.0], [1.0, 2.0, 3.0], [-np.inf, -np.inf, -np.inf],
                     [np.inf, np.inf, 0.0], [np.nan, 1.0, 2.0], [np.nan, np.inf, 0.0]],
                    np.float32)
    labels = np.array([0, 1, 2, 2, 0, 2])
    ref = sg.function([x, t], outputs, backend="numpy")(rows, labels)
    fn = sg.function([x, t], outputs, backend="cuda")
    for order, got in in_orders(cuda, monkeypatch, lambda: fn(rows, labels)).items():
        assert all(agrees(g, r) for g, r in zip(got, ref)), order


# ---------------------------------------------------------------- a training step
def train(backend, batches):
    step, params = cuda_cases.mlp_step(backend)
    history = [step(x, t) for x, t in batches]
    return history, [p.get_value() for p in params]


def test_mlp_training_step_matches_numpy(cuda, monkeypatch):
    batches = cuda_cases.mlp_data()
    ref_history, ref_params = train("numpy", batches)
    for order, (history, params) in in_orders(
            cuda, monkeypatch, lambda: train("cuda", batches)).items():
        for (loss, correct), (ref_loss, ref_correct) in zip(history, ref_history):
            np.testing.assert_allclose(loss, ref_loss, rtol=1e-5, err_msg=order)
            assert int(correct) == int(ref_correct), order
        for p, r in zip(params, ref_params):
            np.testing.assert_allclose(p, r, rtol=1e-4, atol=1e-5, err_msg=order)
    assert ref_history[-1][0] < ref_history[0][0]  # it learns


def test_shared_values_live_on_the_device_and_come_back(cuda):
    x = sg.placeholder("x", (3,))
    w = sg.shared(np.ones(3, np.float32), name="w")
    step = sg.function([x], [sg.sum(w * x)], updates=[(w, w * 2)], backend="cuda")
    peek = sg.function([x], [sg.sum(w * x)], backend="c")
    ones = np.ones(3, np.float32)
    assert float(step(ones)[0]) == 3.0
    assert float(step(ones)[0]) == 6.0
    np.testing.assert_array_equal(w.get_value(), [4, 4, 4])   # fetched from the device
    assert float(peek(ones)[0]) == 12.0                        # the C backend sees it too
    w.set_value(np.full(3, 0.5, np.float32))                   # and the device sees this
    assert float(step(ones)[0]) == 1.5
    c_step = sg.function([x], [sg.sum(w * x)], updates=[(w, w + 1)], backend="c")
    c_step(ones)                                               # host-side update...
    assert float(step(ones)[0]) == 6.0                         # ...reaches the device


# ---------------------------------------------------------------- random graphs
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graph(), st.integers(0, 2 ** 31 - 1))
def test_random_graphs_and_gradients_match_numpy(spec, seed):
    inputs, outputs, arrays = random_case(spec, seed)
    ref = sg.function(inputs, outputs, backend="numpy")(*arrays)
    old = os.environ.get("SYMGRAD_CUDA_EMULATE")
    os.environ["SYMGRAD_CUDA_EMULATE"] = "1"  # hypothesis runs the body without fixtures
    try:
        fn = sg.function(inputs, outputs, backend="cuda")
        for order in ORDERS:
            os.environ["SYMGRAD_CUDA_EMULATE_ORDER"] = order
            for r, g in zip(ref, fn(*arrays)):
                scale = max(1.0, float(np.max(np.abs(r))))
                np.testing.assert_allclose(g, r, rtol=2e-5, atol=2e-5 * scale, err_msg=order)
    finally:
        os.environ.pop("SYMGRAD_CUDA_EMULATE_ORDER", None)
        if old is None:
            os.environ.pop("SYMGRAD_CUDA_EMULATE", None)
        else:
            os.environ["SYMGRAD_CUDA_EMULATE"] = old


# ---------------------------------------------------------------- what the user sees
def test_source_is_readable_cuda(cuda):
    x = sg.placeholder("x", (None, 64))
    fn = sg.function([x], [sg.softmax(x) * 2, sg.sum(sg.tanh(x), axis=1)], backend="cuda")
    src = fn.source
    assert "__global__ void" in src and "__syncthreads()" in src and "SG_LAUNCH" in src
    assert "/* k0_softmax: %1 softmax (x.shape[0], 64) */" in src
    assert "sg_run(void **args" in src


def test_a_label_out_of_range_raises_naming_the_op(cuda):
    logits = sg.placeholder("logits", (None, 4))
    t = sg.placeholder("t", (None,), dtype="int64")
    loss = sg.cross_entropy(logits, t)
    fn = sg.function([logits, t], [loss, sg.grad(loss, logits)], backend="cuda")
    z = np.zeros((3, 4), np.float32)
    fn(z, np.array([0, 1, 3]))
    with pytest.raises(KernelError, match="softmax_cross_entropy .*outside \\[0, 4\\)"):
        fn(z, np.array([0, 4, 1]))
    fn(z, np.array([0, 1, 3]))  # the step still works afterwards


def test_gather_index_out_of_range_raises(cuda):
    table = sg.placeholder("table", (5, 3))
    idx = sg.placeholder("idx", (None,), dtype="int64")
    fn = sg.function([table, idx], sg.take(table, idx, axis=0), backend="cuda")
    tab = np.arange(15, dtype=np.float32).reshape(5, 3)
    np.testing.assert_array_equal(fn(tab, np.array([4, -1, 0])), tab[[4, -1, 0]])
    with pytest.raises(KernelError, match="take .*out of range"):
        fn(tab, np.array([0, 5]))


def test_window_max_index_out_of_range_raises(cuda):
    x = sg.placeholder("x", (2, 6))
    idx = sg.placeholder("idx", (2, None), dtype="int64")
    y = sg.apply("window_max", x, idx, axis=1)
    fn = sg.function([x, idx], [y, sg.grad(sg.sum(y), [x])[0]], backend="cuda")
    xv = np.arange(12, dtype=np.float32).reshape(2, 6)
    value, grad = fn(xv, np.array([[0, 2], [1, -1]]))
    np.testing.assert_array_equal(value, xv[:, [1, 5]])
    np.testing.assert_array_equal(grad, [[0, 1, 0, 0, 0, 1]] * 2)
    with pytest.raises(KernelError, match="window_max.*out of range"):
        fn(xv, np.array([[0, 6], [1, 2]]))


def test_check_finite_names_the_kernel(cuda):
    x = sg.placeholder("x", (None,))
    fn = sg.function([x], sg.log(x) * 2, backend="cuda", check_finite=True)
    np.testing.assert_allclose(fn(np.array([1.0, 2.0], np.float32)), 2 * np.log([1, 2]),
                               rtol=1e-6)
    with pytest.raises(FloatingPointError, match="kernel k0_loop.*log"):
        fn(np.array([1.0, -1.0], np.float32))


def test_batch_sizes_share_one_build(cuda):
    x = sg.placeholder("x", (None, 5))
    fn = sg.function([x], sg.mean(sg.relu(x) * 3, axis=0), backend="cuda")
    runs = build.compiler_runs
    for rows in (1, 7, 300):
        a = np.random.default_rng(rows).standard_normal((rows, 5)).astype(np.float32)
        np.testing.assert_allclose(fn(a), (np.maximum(a, 0) * 3).mean(0), rtol=1e-5,
                                   atol=1e-6)
    assert build.compiler_runs == runs


def test_a_product_of_symbolic_dims_runs_on_cuda(cuda):
    """x (n, 5, 3) flattened to (5*n, 3): the sizes the kernels get are the product."""
    x = sg.placeholder("x", (None, 5, 3))
    w = sg.shared(np.arange(6, dtype=np.float32).reshape(3, 2), name="w")
    flat = x.reshape(-1, 3)
    y = sg.relu(flat @ w)
    fn = sg.function([x], [y, sg.grad(sg.sum(y * y), x)], backend="cuda")
    for n in (1, 4):
        a = np.random.default_rng(n).standard_normal((n, 5, 3)).astype(np.float32)
        ref = np.maximum(a.reshape(-1, 3) @ w.get_value(), 0)
        got, g = fn(a)
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(g, (2 * ref @ w.get_value().T).reshape(n, 5, 3), rtol=1e-5,
                                   atol=1e-5)


def test_slices_and_concatenation_of_a_symbolic_dim_run_on_cuda(cuda):
    """x[1:] - x[:-1], x[-2:], a roll and a reversal along a (None, 3) batch: offsets that
    depend on the batch size reach the kernels; the gradient equals numpy's."""
    x = sg.placeholder("x", (None, 3), "float64")
    diff = x[1:] - x[:-1]
    rolled = sg.concatenate([x[1:], x[:1]])
    cost = sg.sum(diff * diff) + sg.sum(x[-2:] * rolled[-2:])
    fn = sg.function([x], [diff, rolled, sg.grad(cost, x), x[::-1]], backend="cuda")
    for n in (2, 5):
        a = np.random.default_rng(n).standard_normal((n, 3))
        got_diff, got_rolled, got_grad, got_reversed = fn(a)
        np.testing.assert_array_equal(got_reversed, a[::-1])
        np.testing.assert_array_equal(got_diff, np.diff(a, axis=0))
        np.testing.assert_array_equal(got_rolled, np.roll(a, -1, axis=0))
        want = np.zeros_like(a)
        d = np.diff(a, axis=0)
        want[1:] += 2 * d
        want[:-1] -= 2 * d
        r = np.roll(a, -1, axis=0)
        want[-2:] += r[-2:]
        want[np.arange(n - 2, n) + 1 - n] += a[-2:]  # rolled[-2:] is x[-1] and x[0]
        np.testing.assert_allclose(got_grad, want, rtol=1e-13, atol=1e-13)


def test_causal_attention_over_a_symbolic_length_runs_on_cuda(cuda):
    """The causal mask of a symbolic sequence length comes from arange kernels."""
    q = sg.placeholder("q", (None, "T", 4), "float64")
    y = sg.scaled_dot_product_attention(q, q, q, causal=True)
    outputs = [y, sg.grad(sg.sum(sg.sin(y)), q)]
    on_cuda = sg.function([q], outputs, backend="cuda")
    reference = sg.function([q], outputs, backend="numpy")
    for b, t in ((2, 5), (1, 1)):
        a = np.random.default_rng(t).standard_normal((b, t, 4))
        for got, want in zip(on_cuda(a), reference(a)):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)


def test_out_arrays_are_filled(cuda):
    x = sg.placeholder("x", (None, 3))
    fn = sg.function([x], [x * 2, sg.sum(x)], backend="cuda")
    outs = [np.empty((2, 3), np.float32), np.empty((), np.float32)]
    got = fn(np.ones((2, 3), np.float32), out=outs)
    assert got[0] is outs[0]
    np.testing.assert_array_equal(outs[0], 2)
    assert float(outs[1]) == 6


# ---------------------------------------------------------------- without nvcc, without a GPU
def test_without_nvcc_sg_function_says_so(monkeypatch, tmp_path):
    monkeypatch.delenv("SYMGRAD_CUDA_EMULATE", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CUDA_HOME", str(tmp_path / "no-cuda"))
    x = sg.placeholder("x", (3,))
    with pytest.raises(build.NoCompilerError, match="nvcc"):
        sg.function([x], x * 2 + 1, backend="cuda")


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="needs nvcc")
@pytest.mark.skipif(gpu_present(), reason="this machine has a GPU")
def test_without_a_gpu_the_first_call_says_so(monkeypatch):
    monkeypatch.delenv("SYMGRAD_CUDA_EMULATE", raising=False)
    x = sg.placeholder("x", (3,))
    fn = sg.function([x], x * 2 + 1, backend="cuda")   # nvcc builds it; the source is there
    assert "__global__" in fn.source
    with pytest.raises(CudaError, match="no CUDA device.*SYMGRAD_CUDA_EMULATE=1"):
        fn(np.ones(3, np.float32))


# ---------------------------------------------------------------- under AddressSanitizer
def _libasan():
    cxx = shutil.which("g++")
    if cxx is None:
        return None
    path = subprocess.run([cxx, "-print-file-name=libasan.so"], capture_output=True,
                          text=True).stdout.strip()
    return path if os.path.isabs(path) and os.path.exists(path) else None


@pytest.mark.skipif(_libasan() is None, reason="needs g++ with libasan")
def test_the_training_step_and_a_registry_chunk_run_clean_under_asan(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        import numpy as np
        import symgrad as sg
        import cuda_cases
        from test_cuda import agrees
        batches = cuda_cases.mlp_data(batches=2)
        ref, _ = cuda_cases.mlp_step("numpy")
        got, _ = cuda_cases.mlp_step("cuda")
        for x, t in batches:
            assert abs(float(got(x, t)[0]) - float(ref(x, t)[0])) < 1e-4
        chunk = dict(cuda_cases.CHUNKS_BY_NAME)["grads0"]()
        want = sg.function(chunk.inputs, chunk.outputs, backend="numpy")(*chunk.arrays)
        have = sg.function(chunk.inputs, chunk.outputs, backend="cuda")(*chunk.arrays)
        assert all(agrees(g, r) for g, r in zip(have, want))
        print("asan-ok")
    """)
    env = dict(os.environ, SYMGRAD_CUDA_EMULATE="asan", LD_PRELOAD=_libasan(),
               ASAN_OPTIONS="detect_leaks=0:abort_on_error=0")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                       timeout=600)
    assert r.returncode == 0 and "asan-ok" in r.stdout, r.stderr[-4000:]
    assert "AddressSanitizer" not in r.stderr, r.stderr[-4000:]


def test_the_gemm_epilogue_runs_in_the_gemm(cuda):
    x = sg.placeholder("x", (None, 5))
    w = sg.shared(np.linspace(-1, 1, 15, dtype=np.float32).reshape(5, 3), name="w")
    b = sg.shared(np.array([0.1, -0.5, 0.2], np.float32), name="b")
    fn = sg.function([x], sg.relu(x @ w + b), backend="cuda")
    src = fn.source
    # one launch computes the product, the bias and the relu: no kernel of its own for them
    assert "struct k0_gemm_matmul_epilogue" in src and "sg_relu" in src
    assert src.count("__global__") == 0 and "launch_k1" not in src
    assert "2 kernels in 1 launch," in fn.report() and "runs in k0_gemm_matmul's store" in \
        fn.report()
    a = np.random.default_rng(1).standard_normal((70, 5)).astype(np.float32)
    np.testing.assert_allclose(fn(a), np.maximum(a @ w.get_value() + b.get_value(), 0),
                               rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- layers
def layer_graph():
    """Conv, pools, layer norm and causal attention with their gradients, in one step."""
    rng = np.random.default_rng(3)
    x = sg.placeholder("x", (2, 2, 7, 7), "float64")
    k = sg.placeholder("k", (3, 2, 3, 3), "float64")
    seq = sg.placeholder("seq", (2, 5, 4), "float64")
    h = sg.relu(sg.conv2d(x, k, stride=2, padding=2))
    pooled = sg.max_pool2d(h, 2, padding=1) + sg.avg_pool2d(h, 3, stride=1, padding=1)[..., :3, :3]
    normed = sg.layer_norm(seq)
    att = sg.scaled_dot_product_attention(normed, normed, seq, causal=True)
    cost = sg.sum(pooled * pooled) + sg.sum(att * sg.constant(rng.standard_normal((2, 5, 4))))
    inputs = [x, k, seq]
    arrays = [rng.standard_normal(t.shape) for t in inputs]
    return inputs, [pooled, att, *sg.grad(cost, inputs)], arrays


def test_conv_pool_layer_norm_attention_and_gradients_match_numpy(cuda, monkeypatch):
    inputs, outputs, arrays = layer_graph()
    ref = sg.function(inputs, outputs, backend="numpy")(*arrays)
    fn = sg.function(inputs, outputs, backend="cuda")
    for order, got in in_orders(cuda, monkeypatch, lambda: fn(*arrays)).items():
        for i, (g, r) in enumerate(zip(got, ref)):
            assert agrees(g, r), f"{order}: output {i}"


def test_debug_mode_waits_for_each_kernel_and_still_agrees(cuda):
    inputs, outputs, arrays = layer_graph()
    ref = sg.function(inputs, outputs, backend="numpy")(*arrays)
    got = sg.function(inputs, outputs, backend="cuda", debug=True)(*arrays)
    assert all(agrees(g, r) for g, r in zip(got, ref))


# ---------------------------------------------------------------- regressions from review
def test_a_fused_epilogue_never_writes_memory_its_gemm_reads(cuda):
    x, out, xv = inference_chain(rows=200)
    ref = sg.function([x], out, backend="numpy")(xv)
    assert agrees(sg.function([x], out, backend="cuda")(xv), ref)


def test_a_failed_step_stops_and_leaves_host_and_device_in_step(cuda):
    rng = np.random.default_rng(1)
    x = sg.placeholder("x", (None, 40))
    t = sg.placeholder("t", (None,), dtype="int64")
    w = sg.shared((rng.standard_normal((40, 10)) * 0.1).astype(np.float32), name="w")
    loss = sg.mean(sg.cross_entropy(sg.relu(x @ w), t))
    step = sg.function([x, t], [loss], updates=[(w, w - 0.1 * sg.grad(loss, w))],
                       backend="cuda")
    forward = sg.function([x], x @ w, backend="cuda")
    xv = rng.standard_normal((8, 40)).astype(np.float32)
    labels = np.arange(8) % 10
    step(xv, labels)
    before = w.get_value()
    labels[3] = 99
    with pytest.raises(KernelError, match="outside"):
        step(xv, labels)
    np.testing.assert_array_equal(w.get_value(), before)  # nothing after the failure ran
    np.testing.assert_allclose(forward(xv), xv @ before, rtol=1e-5, atol=1e-5)


def test_check_finite_names_a_fused_epilogue_kernel_like_the_c_backend(cuda):
    x = sg.placeholder("x", (None, 3))
    w = sg.shared(np.ones((3, 3), np.float32), name="w")
    y = sg.relu(sg.log(x @ w - 1.0)) * 2
    xv = np.full((2, 3), 0.1, np.float32)
    messages = []
    for backend in ("c", "cuda"):
        with pytest.raises(FloatingPointError) as info:
            sg.function([x], y, backend=backend, check_finite=True)(xv)
        messages.append(str(info.value))
    assert messages[0] == messages[1]


@pytest.mark.parametrize("name", ["epilogue", "class", "threadIdx", "log_total", "new"])
def test_names_that_are_cuda_or_cpp_words_still_compile(name, cuda):
    x = sg.placeholder(name, (None, 4))
    w = sg.shared(np.ones((4, 2), np.float32), name=name + "w")
    fn = sg.function([x], sg.relu(x @ w + 1), backend="cuda")
    np.testing.assert_allclose(fn(np.ones((3, 4), np.float32)), np.full((3, 2), 5.0))


def test_a_collected_device_only_value_is_no_longer_counted(cuda):
    import gc
    from symgrad.graph import SharedValue
    gc.collect()  # earlier tests' storages go first
    before = SharedValue.device_only
    x = sg.placeholder("x", (2,))
    w = sg.shared(np.ones(2, np.float32), name="w")
    sg.function([x], [sg.sum(w * x)], updates=[(w, w + 1)], backend="cuda")(np.ones(2, np.float32))
    assert SharedValue.device_only == before + 1  # the newest value is on the device only
    del w
    gc.collect()
    assert SharedValue.device_only == before


def test_an_unknown_emulation_mode_says_what_is_accepted(monkeypatch):
    monkeypatch.setenv("SYMGRAD_CUDA_EMULATE", "fast")
    x = sg.placeholder("x", (3,))
    with pytest.raises(ValueError, match="SYMGRAD_CUDA_EMULATE='fast'.*expected 1"):
        sg.function([x], x * 2, backend="cuda")


def test_a_device_buffer_collected_inside_cffis_lock_is_freed_without_deadlock(cuda):
    """A finalizer may run inside any allocation, even inside cffi's dlopen of the next step,
    which holds the FFI's lock: freeing must not take that lock again (it once hung the suite)."""
    import gc
    import threading

    from symgrad.backends.cuda_backend import DeviceBuffer

    x = sg.placeholder("x", (4,))
    fn = sg.function([x], x * 2, backend="cuda")
    fn(np.ones(4, np.float32))
    device = fn._program.device
    buffer = DeviceBuffer(device, 64)
    finalized = threading.Event()

    def collect_under_the_lock():
        nonlocal buffer
        with device.ffi._lock:
            buffer = None
            gc.collect()
        finalized.set()

    worker = threading.Thread(target=collect_under_the_lock, daemon=True)
    worker.start()
    assert finalized.wait(30), "freeing a device buffer waited for cffi's lock"


def test_large_constants_are_arguments_uploaded_once(cuda):
    """As in the C backend: a large constant is not written into the CUDA source (megabytes of
    it for nvcc to parse), but uploaded with the step and passed by pointer."""
    rng = np.random.default_rng(0)
    x = sg.placeholder("x", (None, 300), "float64")
    for seed in range(2):  # same graph, other values: each step its own data
        table = np.random.default_rng(seed).standard_normal((300, 200))
        fn = sg.function([x], sg.relu(x @ table + 1.0) * table[0] + sg.take(table, 5, axis=0),
                         backend="cuda")
        assert len(fn.source) < 30_000 and "/* const_arg */" in fn.source
        xv = rng.standard_normal((4, 300))
        for _ in range(2):
            np.testing.assert_allclose(
                fn(xv), np.maximum(xv @ table + 1.0, 0) * table[0] + table[5], rtol=1e-12)
