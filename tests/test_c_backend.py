"""The C backend beyond the op registry: one build for every batch size, the disk cache across
processes, call-time validation, run-time errors, fused vs unfused, random graphs vs numpy."""
from __future__ import annotations

import os
import pathlib
import resource
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import symgrad as sg
from symgrad import build

pytest.importorskip("symgrad.backends.c_backend")
from symgrad.backends.c_backend import KernelError  # noqa: E402


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path / "cache"))


def mlp(backend, hidden=16, classes=5, features=12, opt_level=2, seed=0):
    x = sg.placeholder("x", ("batch", features))
    t = sg.placeholder("t", ("batch",), dtype="int64")
    W1 = sg.shared(sg.init.glorot_uniform((features, hidden), seed=seed), name="W1")
    b1 = sg.shared(np.full(hidden, 0.1, np.float32), name="b1")
    W2 = sg.shared(sg.init.glorot_uniform((hidden, classes), seed=seed + 1), name="W2")
    params = [W1, b1, W2]
    logits = sg.relu(x @ W1 + b1) @ W2
    loss = sg.cross_entropy(logits, t)
    grads = sg.grad(loss, params)
    updates = sg.optim.sgd(params, grads, lr=0.1, momentum=0.9)
    step = sg.function([x, t], [loss, sg.argmax(logits, axis=1)], updates=updates,
                       backend=backend, opt_level=opt_level)
    return step, params


def batch(rng, n, features=12, classes=5):
    return (rng.standard_normal((n, features)).astype(np.float32),
            rng.integers(0, classes, n).astype(np.int64))


# ---------------------------------------------------------------------------- training step
@pytest.mark.parametrize("opt_level", [0, 2])
def test_training_step_matches_numpy(opt_level):
    ref, ref_params = mlp("numpy")
    fast, fast_params = mlp("c", opt_level=opt_level)
    rng = np.random.default_rng(1)
    for n in (1, 7, 32, 7):
        xb, tb = batch(rng, n)
        (l_ref, p_ref), (l_c, p_c) = ref(xb, tb), fast(xb, tb)
        np.testing.assert_allclose(l_c, l_ref, rtol=1e-5)
        np.testing.assert_array_equal(p_c, p_ref)
    for a, b in zip(ref_params, fast_params):
        np.testing.assert_allclose(b.get_value(), a.get_value(), rtol=1e-5, atol=1e-6)


def test_one_build_serves_every_batch_size():
    runs = build.compiler_runs
    step, _ = mlp("c")
    assert build.compiler_runs == runs + 1
    rng = np.random.default_rng(0)
    for n in (1, 7, 256):
        loss, pred = step(*batch(rng, n))
        assert pred.shape == (n,) and np.isfinite(loss)
    assert build.compiler_runs == runs + 1


def test_profile_times_every_launch_and_leaves_the_parameters_alone():
    """profile() runs a timing build of the same kernels: one row per launch (in the step's
    order, fused kernels named with their launch), times that add up to no more than the call,
    and the parameters and optimizer state as they were before."""
    step, params = mlp("c")
    rng = np.random.default_rng(0)
    step(*batch(rng, 8))  # momentum state now nonzero
    state = [t for t, _ in step.updates]
    before = [t.get_value().copy() for t in state]
    xb, tb = batch(rng, 32)
    prof = step.profile(xb, tb, repeats=5, warmup=1)
    launches = [k.name for k in step.kernels if k.runs_in is None]
    assert [name for name, _, _ in prof.rows] == launches
    assert all(t >= 0 for _, t, _ in prof.rows)
    assert 0 < sum(t for _, t, _ in prof.rows) <= prof.wall * 1.05
    riders = [k for k in step.kernels if k.runs_in is not None]
    for k in riders:  # a fused kernel's nodes are listed on its launch's row
        row = next(r for r in prof.rows if r[0] == k.runs_in)
        assert all(step.graph.label(n) in row[2] for n in k.nodes)
    text = str(prof)
    assert f"{len(launches)} launches" in text and "batch=32" in text
    for t, value in zip(state, before):
        np.testing.assert_array_equal(t.get_value(), value)
    # the step itself still trains as before
    loss, _ = step(xb, tb)
    assert np.isfinite(loss)


def test_profile_restores_the_parameters_when_the_step_fails():
    step, params = mlp("c")
    rng = np.random.default_rng(0)
    before = [p.get_value().copy() for p in params]
    xb, tb = batch(rng, 4)
    tb[2] = 99  # out of range: the loss kernel stops the step
    with pytest.raises(KernelError, match="cross_entropy|label"):
        step.profile(xb, tb, repeats=2)
    for p, value in zip(params, before):
        np.testing.assert_array_equal(p.get_value(), value)


def test_profile_is_for_the_c_backend():
    step, _ = mlp("numpy")
    with pytest.raises(NotImplementedError, match="backend='c'"):
        step.profile(*batch(np.random.default_rng(0), 4))
    step, _ = mlp("c")
    with pytest.raises(ValueError, match="repeats must be at least 1"):
        step.profile(*batch(np.random.default_rng(0), 4), repeats=0)


def test_fused_kernels_fewer_than_unfused_and_equal():
    x = sg.placeholder("x", (None, 33))
    y = sg.tanh(0.5 * x + 0.1) * sg.exp(-x * x) + sg.maximum(x, 0) * 2
    fused = sg.function([x], y, opt_level=2)
    plain = sg.function([x], y, opt_level=0)
    assert len(fused.kernels) == 1
    assert len(plain.kernels) > 5
    a = np.random.default_rng(0).standard_normal((9, 33)).astype(np.float32)
    np.testing.assert_allclose(fused(a), plain(a), rtol=1e-6)
    np.testing.assert_allclose(fused(a), sg.function([x], y, backend="numpy")(a), rtol=1e-5,
                               atol=1e-6)


def test_source_is_readable():
    step, _ = mlp("c")
    src = step.source
    assert "#pragma omp parallel for" in src
    for k in step.kernels:
        assert f"/* {k.name}: " in src
        assert k.nodes
    assert "sg_gemm_f32" in src and "int64_t d0" in src


# ---------------------------------------------------------------------------- the disk cache
CHILD = textwrap.dedent("""
    import numpy as np, symgrad as sg
    from symgrad import build
    import symgrad.backends.c_backend  # builds (or loads) the call trampoline first
    before = build.compiler_runs
    x = sg.placeholder("x", (None, 4))
    f = sg.function([x], sg.sum(sg.exp(x) * 3, axis=1))
    out = f(np.ones((2, 4), np.float32))
    print(build.compiler_runs - before, float(out[0]))
""")


def run_child(code=CHILD):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ), timeout=120)


def test_second_process_loads_without_compiling():
    first = run_child()
    assert first.returncode == 0, first.stderr
    second = run_child()
    assert second.returncode == 0, second.stderr
    assert first.stdout.split()[0] == "1"
    assert second.stdout.split()[0] == "0"
    assert float(second.stdout.split()[1]) == pytest.approx(3 * 4 * np.e, rel=1e-6)


def test_concurrent_processes_compile_one_library():
    procs = [subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=dict(os.environ))
             for _ in range(4)]
    results = [p.communicate(timeout=180) for p in procs]
    assert all(p.returncode == 0 for p in procs), [r[1] for r in results]
    sources = [f for _, _, files in os.walk(os.environ["SYMGRAD_CACHE_DIR"]) for f in files
               if f.endswith(".c")]
    libs = [f for _, _, files in os.walk(os.environ["SYMGRAD_CACHE_DIR"]) for f in files
            if f.endswith(".so")]
    assert len(sources) == len(libs) == 2  # the graph's library and the call trampoline
    assert sum(int(out.split()[0]) for out, _ in results) == 1


def test_corrupt_cached_library_is_rebuilt():
    assert run_child().returncode == 0
    libs = [os.path.join(d, f) for d, _, files in os.walk(os.environ["SYMGRAD_CACHE_DIR"])
            for f in files if f.endswith(".so")]
    for lib in libs:  # the graph's library and the trampoline
        with open(lib, "r+b") as f:
            f.truncate(100)
    again = run_child()
    assert again.returncode == 0, again.stderr
    assert again.stdout.split()[0] == "1"


FORKED_CHILD = textwrap.dedent("""
    import multiprocessing as mp
    import numpy as np, symgrad as sg
    x = sg.placeholder("x", ("n", 256))
    W = sg.shared(np.full((256, 256), 0.01, np.float32), name="W")
    y = sg.sum(sg.tanh(x @ W) * 2.0, axis=1)
    f = sg.function([x], [y, sg.sum(y)])
    big = np.random.default_rng(0).random((4000, 256), dtype=np.float32)
    parent = f(big)  # the parent's OpenMP threads now exist

    def child(queue):
        queue.put(f(big))

    if __name__ == "__main__":
        ctx = mp.get_context("fork")
        queue = ctx.Queue()
        process = ctx.Process(target=child, args=(queue,), daemon=True)
        process.start()
        got = queue.get(timeout=60)
        np.testing.assert_array_equal(got[0], parent[0])
        print("ok", got[1] == parent[1])
""")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX")
def test_a_child_forked_after_a_step_runs_steps():
    # libgomp's pool does not survive fork(); without the guard the child hangs
    result = subprocess.run([sys.executable, "-c", FORKED_CHILD], capture_output=True,
                            text=True, env=dict(os.environ), timeout=150)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ok", "True"]


# ---------------------------------------------------------------------------- call-time input
@pytest.fixture
def two_inputs():
    x = sg.placeholder("x", ("batch", 3))
    y = sg.placeholder("y", ("batch",))
    return sg.function([x, y], sg.sum(x, axis=1) * y)


def test_bad_inputs_raise_and_leave_arrays_alone(two_inputs):
    f = two_inputs
    x = np.ones((4, 3), np.float32)
    y = np.ones(4, np.float32)
    snapshot = x.copy(), y.copy()
    with pytest.raises(sg.InputError, match=r"input 'x': expected dtype float32, got float64"):
        f(x.astype(np.float64), y)
    with pytest.raises(sg.ShapeError, match=r"input 'x': expected rank 2"):
        f(x[0], y)
    with pytest.raises(sg.ShapeError, match=r"axis 1: 4 != 3"):
        f(np.ones((4, 4), np.float32), y)
    with pytest.raises(sg.ShapeError, match=r"symbolic dim batch is 4"):
        f(x, np.ones(5, np.float32))
    with pytest.raises(TypeError, match="takes 2 arguments"):
        f(x)
    np.testing.assert_array_equal(x, snapshot[0])
    np.testing.assert_array_equal(y, snapshot[1])
    np.testing.assert_allclose(f(x, y), np.full(4, 3.0))


def test_non_contiguous_input_is_copied_not_modified(two_inputs):
    base = np.arange(24, dtype=np.float32).reshape(8, 3)
    view = base[::2]
    before = base.copy()
    np.testing.assert_allclose(two_inputs(view, np.ones(4, np.float32)), view.sum(axis=1))
    np.testing.assert_array_equal(base, before)


def test_out_arrays_are_filled_in_place():
    x = sg.placeholder("x", (None, 5))
    f = sg.function([x], [x * 2, sg.sum(x)])
    a = np.arange(10, dtype=np.float32).reshape(2, 5)
    outs = [np.empty((2, 5), np.float32), np.empty((), np.float32)]
    res = f(a, out=outs)
    assert res[0] is outs[0] and res[1] is outs[1]
    np.testing.assert_allclose(outs[0], a * 2)
    assert float(outs[1]) == 45.0
    with pytest.raises(sg.InputError, match="out\\[0\\]"):
        f(a, out=[np.empty((3, 5), np.float32), outs[1]])


def test_label_out_of_range_raises_instead_of_reading_out_of_bounds():
    logits = sg.placeholder("logits", (None, 4))
    labels = sg.placeholder("labels", (None,), dtype="int64")
    f = sg.function([logits, labels], sg.cross_entropy(logits, labels))
    z = np.zeros((3, 4), np.float32)
    assert f(z, np.array([0, 1, 3])) == pytest.approx(np.log(4), rel=1e-6)
    with pytest.raises(KernelError, match="label is outside"):
        f(z, np.array([0, 4, 1]))
    with pytest.raises(KernelError, match="label is outside"):
        f(z, np.array([0, -1, 1]))


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_index_errors_give_the_calls_sizes_of_symbolic_dims(backend):
    logits = sg.placeholder("logits", ("rows", "classes"))
    labels = sg.placeholder("labels", ("rows",), dtype="int64")
    loss = sg.cross_entropy(logits, labels)
    f = sg.function([logits, labels], [loss, sg.grad(loss, logits)], backend=backend)
    with pytest.raises(IndexError, match=r"\[0, 3\)"):
        f(np.zeros((2, 3), np.float32), np.array([0, 3]))
    with pytest.raises(IndexError, match=r"\[0, 7\)"):
        f(np.zeros((2, 7), np.float32), np.array([0, 9]))
    table = sg.placeholder("table", ("entries", 2))
    idx = sg.placeholder("idx", (3,), dtype="int64")
    g = sg.function([table, idx], sg.take(table, idx, axis=0), backend=backend)
    with pytest.raises(IndexError, match="axis 0 of size 5"):
        g(np.zeros((5, 2), np.float32), np.array([0, 5, 1]))


def test_take_index_out_of_range():
    table = sg.placeholder("table", (5, 3))
    idx = sg.placeholder("idx", (None,), dtype="int64")
    f = sg.function([table, idx], sg.take(table, idx, axis=0))
    t = np.arange(15, dtype=np.float32).reshape(5, 3)
    np.testing.assert_array_equal(f(t, np.array([4, 0, -1])), t[[4, 0, -1]])
    with pytest.raises(KernelError, match="out of range"):
        f(t, np.array([5]))


@pytest.mark.parametrize("backend", ["c", "numpy"])
def test_window_max_index_out_of_range(backend):
    x = sg.placeholder("x", (2, 6))
    idx = sg.placeholder("idx", (2, None), dtype="int64")
    y = sg.apply("window_max", x, idx, axis=1)
    f = sg.function([x, idx], [y, sg.grad(sg.sum(y), [x])[0]], backend=backend)
    xv = np.arange(12, dtype=np.float32).reshape(2, 6)
    value, grad = f(xv, np.array([[0, 2], [1, -1]]))
    np.testing.assert_array_equal(value, xv[:, [1, 5]])
    np.testing.assert_array_equal(grad, [[0, 1, 0, 0, 0, 1]] * 2)
    for bad in ([[0, 6], [1, 2]], [[0, 1], [-7, 2]]):
        with pytest.raises((KernelError, IndexError), match="window_max.*out of range"):
            f(xv, np.array(bad))


def test_check_finite_names_the_kernel():
    x = sg.placeholder("x", (None,))
    y = sg.log(x) * 2
    f = sg.function([x], y, check_finite=True)
    np.testing.assert_allclose(f(np.ones(3, np.float32)), 0)
    with pytest.raises(FloatingPointError, match="log"):
        f(np.array([1.0, -1.0], np.float32))
    assert np.isnan(sg.function([x], y)(np.array([-1.0], np.float32))[0])


def test_updates_are_simultaneous_and_in_place():
    a = sg.shared(np.array([1.0, 2.0], np.float32), name="a")
    b = sg.shared(np.array([10.0, 20.0], np.float32), name="b")
    f = sg.function([], a + b, updates=[(a, b), (b, a + b)])
    storage = a.attr["storage"].array
    np.testing.assert_allclose(f(), [11, 22])
    np.testing.assert_allclose(a.get_value(), [10, 20])
    np.testing.assert_allclose(b.get_value(), [11, 22])
    assert a.attr["storage"].array is storage


@pytest.mark.slow
def test_many_calls_keep_memory_flat():
    x = sg.placeholder("x", (None, 8))
    f = sg.function([x], sg.relu(x) * 2)
    a = np.ones((4, 8), np.float32)
    for _ in range(2000):
        f(a)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(100_000):
        f(a)
    growth_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert growth_kb < 2048, growth_kb


# ---------------------------------------------------------------------------- random graphs
UNARY = [sg.tanh, sg.sigmoid, sg.relu, sg.softplus, lambda v: v * v, sg.abs,
         lambda v: sg.exp(-v * v), lambda v: -v]
BINARY = [sg.add, sg.subtract, sg.multiply, sg.maximum, sg.minimum,
          lambda a, b: a / (1 + b * b)]


@st.composite
def random_graph(draw):
    rows = draw(st.integers(1, 5))
    cols = draw(st.integers(1, 6))
    program = draw(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 7), st.integers(0, 5),
                                       st.integers(0, 20), st.integers(0, 20)),
                            min_size=1, max_size=8))
    final = draw(st.integers(0, 3))
    return rows, cols, program, final


def build_random(rows, cols, program, final):
    x = sg.placeholder("x", (None, cols))
    bias = sg.placeholder("bias", (cols,))
    col = sg.placeholder("col", (None, 1))
    W = sg.placeholder("W", (cols, cols))
    pool = [x, bias, col]
    for kind, u, b, i, j in program:
        a, c = pool[i % len(pool)], pool[j % len(pool)]
        if kind == 0:
            pool.append(UNARY[u](a))
        elif kind == 1:
            pool.append(BINARY[b](a, c))
        elif kind == 2:
            axis = -1 if a.ndim and u % 2 else 0
            pool.append(sg.sum(a, axis=axis, keepdims=True) if a.ndim else a * 2)
        else:
            pool.append(sg.tanh(x @ W) + a)
    out = pool[-1]
    cost = [sg.sum, sg.mean, sg.max, lambda v: sg.sum(v * v)][final](out)
    grads = sg.grad(cost, [x, bias, col, W])
    return [x, bias, col, W], [cost, *grads]


def random_case(spec, seed):
    """The graph of a drawn spec, and float32 sample inputs for it."""
    rows, cols, program, final = spec
    inputs, outputs = build_random(rows, cols, program, final)
    rng = np.random.default_rng(seed)
    arrays = [rng.uniform(-1.5, 1.5, (rows, cols)), rng.uniform(-1.5, 1.5, cols),
              rng.uniform(-1.5, 1.5, (rows, 1)), rng.uniform(-0.5, 0.5, (cols, cols))]
    return inputs, outputs, [a.astype(np.float32) for a in arrays]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graph(), st.integers(0, 2 ** 31 - 1))
def test_random_graphs_and_gradients_match_numpy(spec, seed):
    inputs, outputs, arrays = random_case(spec, seed)
    ref = sg.function(inputs, outputs, backend="numpy")(*arrays)
    got = sg.function(inputs, outputs, backend="c")(*arrays)
    for r, g in zip(ref, got):
        scale = max(1.0, float(np.max(np.abs(r))))
        np.testing.assert_allclose(g, r, rtol=2e-5, atol=2e-5 * scale)


@pytest.mark.parametrize("dtype", ["float64", "float32", "int32"])
def test_small_slices_of_a_computed_value_are_copied_exactly(dtype):
    """gcc 12.2 with 512-bit vectors miscompiled the two small loops of (x * 2)[:, :k] once
    inlined together (3x3 float64, k = 2: one element read from the wrong place), and so the
    adjoint of a concatenate; symgrad turns gcc's straight-line vectorizer off."""
    shapes = [(rows, cols) for rows in range(2, 6) for cols in range(2, 6)]
    xs = [sg.placeholder(f"x{i}", shape, dtype) for i, shape in enumerate(shapes)]
    values = [np.arange(r * c).reshape(r, c).astype(dtype) for r, c in shapes]
    # one function (one compile) for all the shapes: each pair of loops is inlined into sg_run
    fn = sg.function(xs, [(x * 2)[:, :k] for x in xs for k in range(1, x.shape[1])])
    expected = [(v * 2)[:, :k] for v in values for k in range(1, v.shape[1])]
    for got, want in zip(fn(*values), expected):
        np.testing.assert_array_equal(got, want)
    a = sg.placeholder("a", (1, 3, 2), "float64")
    c = sg.placeholder("c", (1, 3, 1), "float64")
    W = np.arange(9.0).reshape(3, 3)
    y = sg.max(sg.concatenate([a, c], axis=2), axis=0)
    ga = sg.function([a, c], sg.grad(sg.sum(y * W), a))(np.arange(6.0).reshape(1, 3, 2),
                                                          -np.ones((1, 3, 1)))
    np.testing.assert_array_equal(ga, W[None, :, :2])


def test_constant_tables_with_nans_are_copied_exactly():
    """gcc 12.2 folded the copy of a float64 table {1, 2, 3, 4, NAN, NAN, NAN, 0.0} into four
    NaNs for the last four lanes (also a folded `c * 0.0`); the kernels now load tables through
    a pointer gcc cannot follow."""
    nan = np.nan
    tables = [[1, 2, 3, 4, nan, nan, nan, 0.0], [1, 2, 3, 4, nan, nan, 0.0, 0.0],
              [nan, nan, nan, 0.0, nan, nan, nan, 0.0, 1, nan, 0.0, -0.0, nan, 5, nan, 0.0]]
    folded = np.array([0.0, -0.0, 1, -1, np.inf, -np.inf, nan, 1e-310])
    for dtype in ("float64", "float32"):
        arrays = [np.array(t, dtype) for t in tables]
        c = sg.constant(folded.astype(dtype))
        got = sg.function([], [sg.constant(a) for a in arrays] + [c * 0.0], opt_level=2)()
        with np.errstate(invalid="ignore"):  # inf * 0
            expected = arrays + [folded.astype(dtype) * 0.0]
        for value, want in zip(got, expected):
            np.testing.assert_array_equal(value, want)
            numbers = ~np.isnan(want)  # zeros keep their sign; a NaN's sign means nothing
            np.testing.assert_array_equal(np.signbit(value[numbers]), np.signbit(want[numbers]))


def test_the_same_graph_built_twice_compiles_once():
    def build_fn():
        x = sg.placeholder("x", (None, 6))
        w = sg.shared(np.ones((6, 2), np.float32), name="w")
        return sg.function([x], sg.sigmoid(x @ w) * 2)

    build_fn()
    runs = build.compiler_runs
    f = build_fn()
    assert build.compiler_runs == runs
    np.testing.assert_allclose(f(np.zeros((3, 6), np.float32)), np.ones((3, 2)))


def test_cffi_call_path_without_the_trampoline(monkeypatch):
    from symgrad.backends import c_backend
    monkeypatch.setattr(c_backend, "_trampoline", None)
    x = sg.placeholder("x", (None, 3))
    labels = sg.placeholder("labels", (None,), dtype="int64")
    f = sg.function([x, labels], [sg.cross_entropy(x, labels), x * 2])
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    loss, doubled = f(a, np.array([0, 2]))
    ref = sg.function([x, labels], sg.cross_entropy(x, labels), backend="numpy")(a, np.array([0, 2]))
    assert loss == pytest.approx(float(ref), rel=1e-6)
    np.testing.assert_array_equal(doubled, a * 2)
    with pytest.raises(KernelError):
        f(a, np.array([0, 3]))


def test_check_finite_on_the_numpy_backend_too():
    x = sg.placeholder("x", (None,))
    f = sg.function([x], sg.log(x) * 2, backend="numpy", check_finite=True)
    with pytest.raises(FloatingPointError, match="log"):
        f(np.array([1.0, -1.0], np.float32))


def test_an_unknown_backend_says_so():
    x = sg.placeholder("x", (3,))
    with pytest.raises(ValueError, match="unknown backend 'tpu'"):
        sg.function([x], x * 2, backend="tpu")


WARM_CHILD = textwrap.dedent("""
    import sys
    import numpy as np, symgrad as sg
    from symgrad import build
    x = sg.placeholder("x", (None, 4))
    w = sg.shared(np.full((4, 3), 0.5, np.float32), name="w")
    f = sg.function([x], sg.relu(x @ w))
    out = f(np.ones((2, 4), np.float32))
    rendered = "jinja2" in sys.modules
    source_ok = "sg_run" in f.source
    print(build.compiler_runs, rendered, source_ok, float(out[0, 0]))
""")


def test_warm_start_loads_a_remembered_library_without_rendering():
    cold = run_child(WARM_CHILD)
    assert cold.returncode == 0, cold.stderr
    warm = run_child(WARM_CHILD)
    assert warm.returncode == 0, warm.stderr
    runs, rendered, source_ok, value = warm.stdout.split()
    assert runs == "0" and rendered == "False" and source_ok == "True"
    assert float(value) == 2.0


def test_damaged_or_misplaced_cache_entries_read_as_misses():
    cache = pathlib.Path(os.environ["SYMGRAD_CACHE_DIR"])
    assert run_child(WARM_CHILD).returncode == 0
    warm_entry, = (cache / "graphs").iterdir()
    assert run_child().returncode == 0
    other_entry, = set((cache / "graphs").iterdir()) - {warm_entry}
    # another graph's entry under this graph's name names a library with other arguments
    warm_entry.write_bytes(other_entry.read_bytes())
    moved = run_child(WARM_CHILD)
    assert moved.returncode == 0, moved.stderr
    assert float(moved.stdout.split()[-1]) == 2.0
    for entry in [*(cache / "graphs").iterdir(), *(cache / "probes").iterdir()]:
        entry.write_bytes(b"\xff\xfe not text")
    damaged = run_child(WARM_CHILD)
    assert damaged.returncode == 0, damaged.stderr
    assert float(damaged.stdout.split()[-1]) == 2.0


def test_large_outputs_are_recycled_only_when_the_caller_let_go():
    x = sg.placeholder("x", (None,))
    f = sg.function([x], x * 2)
    a = np.arange(1 << 19, dtype=np.float32)
    kept = f(a)
    view = f(a + 1)[::2]       # only a view survives: its base must not be reused
    again = f(a + 2)
    assert again is not kept and again.base is None and view.base is not again
    np.testing.assert_array_equal(kept, a * 2)
    np.testing.assert_array_equal(view, ((a + 1) * 2)[::2])
    ident = id(again)
    del again
    recycled = f(a + 3)         # nobody holds the last result: its memory is used again
    assert id(recycled) == ident
    np.testing.assert_array_equal(recycled, (a + 3) * 2)


def test_window_max_rejects_a_bad_index_at_build_time():
    x = sg.placeholder("x", (2, 6))
    for index, message in [(sg.constant(np.zeros((2, 3), np.float32)), "int32 or int64"),
                           (sg.constant(np.zeros(3, np.int64)), "2-D"),
                           (sg.constant(np.zeros((0, 3), np.int64)), "at least one tap")]:
        with pytest.raises(sg.ShapeError, match=f"window_max: .*{message}"):
            sg.apply("window_max", x, index, axis=1)
    with pytest.raises(sg.ShapeError, match="window_max: axis 2 is out of range"):
        sg.apply("window_max", x, sg.constant(np.zeros((1, 3), np.int64)), axis=2)
    with pytest.raises(sg.ShapeError, match="window_max: expects a float tensor"):
        sg.apply("window_max", sg.placeholder("i", (2, 6), "int64"),
                 sg.constant(np.zeros((1, 3), np.int64)), axis=1)


def test_large_constants_are_passed_in_not_written_into_the_source():
    rng = np.random.default_rng(0)
    x = sg.placeholder("x", (None, 300), "float64")
    for seed in range(2):  # same graph, other values: the same library, each its own data
        table = np.random.default_rng(seed).standard_normal((300, 200))
        fn = sg.function([x], sg.relu(x @ table + 1.0) * table[0])
        assert len(fn.source) < 20_000 and "/* const_arg */" in fn.source
        xv = rng.standard_normal((4, 300))
        np.testing.assert_allclose(fn(xv), np.maximum(xv @ table + 1.0, 0) * table[0],
                                   rtol=1e-12)
    small = sg.function([x], x * np.arange(300.0))
    assert "const_arg" not in small.source and "static const double" in small.source


# ------------------------------------------------------------------ one function per distinct code
def test_identical_blocks_share_one_function_and_keep_their_values():
    """Eight identical layers, stacked: each layer's GEMM with its fused epilogue and each
    copy into the stack (at its own offset) is one C function; the values are numpy's."""
    rng = np.random.default_rng(0)
    x = sg.placeholder("x", (None, 8))
    W = sg.shared((0.3 * rng.standard_normal((8, 8))).astype(np.float32), name="W")
    h, parts = x, []
    for _ in range(8):
        h = sg.tanh(h @ W + 0.5)
        parts.append(h)
    y = sg.stack(parts)
    outputs = [y[::-1] * 2.0, sg.grad(sg.sum(y * y), W)]
    fn = sg.function([x], outputs)
    src = fn.source
    assert src.count("(the same code) on its own buffers") >= 14  # 7 GEMMs + 7 copies
    defined = [k.name for k in fn.kernels if f"static int {k.name}(" in src]
    assert len(defined) < len(fn.kernels) // 2
    xv = rng.standard_normal((5, 8)).astype(np.float32)
    for got, want in zip(fn(xv), sg.function([x], outputs, backend="numpy")(xv)):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)


def test_kernels_that_differ_in_a_constant_or_an_offset_pattern_stay_apart():
    x = sg.placeholder("x", (None, 6))
    a, b = sg.tanh(x + 0.5), sg.tanh(x + 1.5)  # the same loop but for one literal
    shifted = x[:, 1:] + x[:, :-1]             # one buffer at two offsets: not moved
    fn = sg.function([x], [a * 3.0, b * 3.0, shifted], opt_level=0)
    xv = np.random.default_rng(1).standard_normal((4, 6)).astype(np.float32)
    got = fn(xv)
    np.testing.assert_allclose(got[0], np.tanh(xv + 0.5) * 3, rtol=1e-6)
    np.testing.assert_allclose(got[1], np.tanh(xv + 1.5) * 3, rtol=1e-6)
    np.testing.assert_allclose(got[2], xv[:, 1:] + xv[:, :-1], rtol=1e-6)
    assert "(v0 + 0.5f)" in fn.source and "(v0 + 1.5f)" in fn.source


def test_a_directory_in_place_of_a_cache_file_is_a_cache_error(tmp_path):
    env = dict(os.environ, SYMGRAD_CACHE_DIR=str(tmp_path))
    first = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                           env=env, timeout=120)
    assert first.returncode == 0, first.stderr
    for sidecar in tmp_path.glob("*/*.sha256"):
        if "PyInit" not in sidecar.with_suffix(".c").read_text():  # not the call trampoline's
            sidecar.unlink()
            sidecar.mkdir()
    again = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                           env=env, timeout=120)
    assert again.returncode != 0 and "CacheError: symgrad's compile cache" in again.stderr, \
        again.stderr[-2000:]


@pytest.mark.parametrize("name", ["I", "complex", "NULL", "HUGE_VAL", "INT64_MAX", "expf",
                                  "FP_NAN", "SG_EXPORT", "omp_get_thread_num", "errno"])
def test_names_that_are_c_macros_or_functions_compile(name):
    """<complex.h> (through <tgmath.h>) defines I; a buffer named after a macro or a math
    function the kernel calls would not compile."""
    x = sg.placeholder(name, (None, 4))
    w = sg.shared(np.ones(4, np.float32), name=name)
    fn = sg.function([x], sg.exp(x) * w, updates=[(w, w * 2)])
    xv = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.testing.assert_allclose(fn(xv), np.exp(xv), rtol=1e-6)


def test_names_of_template_locals_and_constant_tables_compile_and_keep_their_values():
    """Graph names become C names: one equal to a kernel's local (argmax's `first`, `block`,
    `start`, ...) or to a constant table's global would shadow it (a compile error, or an input
    read where the constant was meant)."""
    names = ["first", "last", "blocks", "block", "start", "end", "top", "saw_nan", "tile", "i"]
    xs = [sg.placeholder(n, (None,)) for n in names]
    fn = sg.function(xs, [f(x) for x in xs for f in (sg.argmax, sg.max)])
    values = [(np.arange(70000, dtype=np.float32) * (k + 7)) % 977 for k in range(len(xs))]
    got = fn(*values)
    for k, v in enumerate(values):
        assert got[2 * k] == v.argmax() and got[2 * k + 1] == v.max()
    table = np.array([1, 2, 3, 4], np.float32)
    for name in ("const1_table", "sg_table_const1"):  # %0 the input, %1 the constant
        x = sg.placeholder(name, (4,))
        product = sg.function([x], x * sg.constant(table))
        assert "const1" in product.source
        np.testing.assert_array_equal(product(np.ones(4, np.float32)), table)
