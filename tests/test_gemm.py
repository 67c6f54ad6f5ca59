"""The C backend's products: how the runtime shares a GEMM out among threads, the short-k loop,
the fold of a batch-summed product into one GEMM, and the element-wise epilogue that runs on
each thread's block of a product right after computing it."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import symgrad as sg

pytest.importorskip("symgrad.backends.c_backend")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path / "cache"))


# shapes that take each way the runtime shares a product out among threads: split by rows
# (m >= n), split by columns, batches (one product a thread; a batch shorter than the team is
# test_a_batch_smaller_than_the_team_splits_each_product's), odd extents that leave the last thread a short or empty chunk, and both transposes
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("batch, m, n, k", [((), 200, 37, 50), ((), 37, 200, 50),
                                            ((), 17, 300, 64), ((16,), 20, 21, 22),
                                            ((3,), 100, 90, 80), ((2, 3), 33, 70, 129),
                                            # a short k (a plain loop, not BLAS), wide rows
                                            ((), 300, 600, 10), ((), 20, 700, 1),
                                            ((5,), 7, 9, 3),
                                            # a column or a row of c: gemv
                                            ((), 300, 1, 70), ((), 1, 300, 70),
                                            ((4,), 50, 1, 40), ((), 1, 1, 64)])
@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (True, False), (False, True),
                                              (True, True)])
def test_threaded_gemm_matches_numpy(dtype, batch, m, n, k, trans_a, trans_b):
    rng = np.random.default_rng(m * n + k)
    a_shape = batch + ((k, m) if trans_a else (m, k))
    b_shape = batch + ((n, k) if trans_b else (k, n))
    av, bv = rng.standard_normal(a_shape).astype(dtype), rng.standard_normal(b_shape).astype(dtype)
    a, b = sg.placeholder("a", a_shape, dtype), sg.placeholder("b", b_shape, dtype)
    swap = (len(batch) + 1, len(batch))
    a_op = sg.transpose(a, tuple(range(len(batch))) + swap) if trans_a else a
    b_op = sg.transpose(b, tuple(range(len(batch))) + swap) if trans_b else b
    f = sg.function([a, b], sg.matmul(a_op, b_op) * 2)
    a_np = np.swapaxes(av, -1, -2) if trans_a else av
    b_np = np.swapaxes(bv, -1, -2) if trans_b else bv
    tol = 1e-4 if dtype == "float32" else 1e-11
    np.testing.assert_allclose(f(av, bv), 2 * (a_np @ b_np), rtol=tol, atol=tol * k)


def test_a_batch_smaller_than_the_team_splits_each_product(tmp_path):
    """One product a thread once the batch fills the team; with fewer products than threads
    (2 and 3 on 4 threads, each past the small-product bound) each product is split instead."""
    script = """
import numpy as np, symgrad as sg
rng = np.random.default_rng(0)
for batch in [(2,), (3,), (5,)]:
    a = sg.placeholder("a", batch + (160, 100)); b = sg.placeholder("b", batch + (100, 170))
    av = rng.standard_normal(batch + (160, 100)).astype(np.float32)
    bv = rng.standard_normal(batch + (100, 170)).astype(np.float32)
    got = sg.function([a, b], a @ b)(av, bv)
    np.testing.assert_allclose(got, av @ bv, rtol=1e-4, atol=1e-3)
print("ok")
"""
    env = dict(os.environ, OMP_NUM_THREADS="4", SYMGRAD_CACHE_DIR=str(tmp_path / "cache"))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert done.stdout.strip() == "ok", done.stderr[-2000:]


@pytest.mark.parametrize("b_transposed", [False, True])
@pytest.mark.parametrize("keepdims", [False, True])
def test_a_batch_summed_product_is_one_gemm(b_transposed, keepdims):
    """sum_b X_b^T G_b (a shared weight's gradient over a batch of sequences) runs as one GEMM
    over batch*rows, also when G arrives transposed (then copied once)."""
    x = sg.placeholder("x", ("batch", 7, 5), "float64")
    g = sg.placeholder("g", ("batch", 3, 7) if b_transposed else ("batch", 7, 3), "float64")
    g_rows = sg.transpose(g, (0, 2, 1)) if b_transposed else g
    dw = sg.sum(sg.matmul(sg.transpose(x, (0, 2, 1)), g_rows), axis=0, keepdims=keepdims)
    rng = np.random.default_rng(3)
    xv = rng.standard_normal((4, 7, 5))
    gv = rng.standard_normal((4, 3, 7) if b_transposed else (4, 7, 3))
    g_np = np.swapaxes(gv, 1, 2) if b_transposed else gv
    expected = np.einsum("bkm,bkn->mn", xv, g_np)
    for opt_level in (0, 2):
        f = sg.function([x, g], dw, opt_level=opt_level)
        np.testing.assert_allclose(f(xv, gv).reshape(5, 3), expected, rtol=1e-12, atol=1e-12)
    gemms = [k for k in f.kernels if "gemm" in k.name]
    assert len(gemms) == 1 and "sum" in str(gemms[0])
    assert not any("reduce" in k.name for k in f.kernels)


def test_a_batch_summed_product_that_does_not_stack_still_sums_right():
    """Operands that cannot be seen as one (batch*k)-long product keep the batched GEMM and the
    sum: here every other image of x is skipped, so A's blocks are not back to back, and G
    arrives transposed."""
    x = sg.placeholder("x", (8, 7, 5), "float64")                      # (2*batch, k, m)
    g = sg.placeholder("g", (4, 3, 7), "float64")                      # (batch, n, k)
    a_t = sg.transpose(x[::2], (0, 2, 1))                              # (batch, m, k)
    dw = sg.sum(sg.matmul(a_t, sg.transpose(g, (0, 2, 1))), axis=0)
    rng = np.random.default_rng(4)
    xv, gv = rng.standard_normal((8, 7, 5)), rng.standard_normal((4, 3, 7))
    expected = np.einsum("bkm,bnk->mn", xv[::2], gv)
    f = sg.function([x, g], dw)
    np.testing.assert_allclose(f(xv, gv), expected, rtol=1e-12, atol=1e-12)
    assert any("reduce" in k.name for k in f.kernels)


# ---------------------------------------------------------------- epilogues
def test_bias_and_relu_run_in_the_gemms_store():
    x = sg.placeholder("x", (None, 5))
    w = sg.shared(np.linspace(-1, 1, 15, dtype=np.float32).reshape(5, 3), name="w")
    b = sg.shared(np.array([0.1, -0.5, 0.2], np.float32), name="b")
    fn = sg.function([x], sg.relu(x @ w + b))
    report = fn.report()
    assert "2 kernels in 1 launch," in report and "runs in k0_gemm_matmul's store" in report
    step = fn.source[fn.source.index("int sg_run("):]
    assert "k0_gemm_matmul(" in step and "k1_" not in step
    rng = np.random.default_rng(1)
    for rows in (0, 1, 70, 300):
        a = rng.standard_normal((rows, 5)).astype(np.float32)
        np.testing.assert_allclose(fn(a), np.maximum(a @ w.get_value() + b.get_value(), 0),
                                   rtol=1e-5, atol=1e-6)


# split by rows, by columns, the short-k loop by rows and by columns, one row, an empty inner dim
@pytest.mark.parametrize("m, n, k", [(300, 40, 33), (40, 300, 33), (600, 70, 8), (50, 900, 8),
                                     (1, 64, 40), (50, 60, 0)])
def test_an_epilogue_computes_each_element_once_whatever_the_split(m, n, k):
    """An epilogue that reads the product twice, a per-row and a per-column operand: every
    element of every thread's block, and nothing twice (a second pass would add `col` again)."""
    a, b = sg.placeholder("a", (m, k), "float64"), sg.placeholder("b", (k, n), "float64")
    row, col = sg.placeholder("row", (m, 1), "float64"), sg.placeholder("col", (n,), "float64")
    product = a @ b
    y = sg.tanh(product * row + col) - product
    rng = np.random.default_rng(m + n + k)
    values = [rng.standard_normal(t.shape) for t in (a, b, row, col)]
    av, bv, rv, cv = values
    expected = np.tanh(av @ bv * rv + cv) - av @ bv
    fused = sg.function([a, b, row, col], y)
    assert any(info.runs_in for info in fused.kernels)
    np.testing.assert_allclose(fused(*values), expected, rtol=1e-12, atol=1e-12)
    unfused = sg.function([a, b, row, col], y, opt_level=0)
    np.testing.assert_allclose(unfused(*values), expected, rtol=1e-12, atol=1e-12)


def test_a_per_image_bias_after_a_stacked_product_stays_a_loop_of_its_own():
    """(B, m, k) @ (k, n) runs as one product of B*m rows, but a (B, 1, n) bias does not walk
    those rows as one run: the add keeps its own kernel and is still right."""
    x = sg.placeholder("x", (4, 60, 5), "float64")
    w = sg.placeholder("w", (5, 70), "float64")
    bias = sg.placeholder("bias", (4, 1, 70), "float64")
    fn = sg.function([x, w, bias], x @ w + bias)
    assert not any(info.runs_in for info in fn.kernels)
    rng = np.random.default_rng(5)
    values = [rng.standard_normal(t.shape) for t in (x, w, bias)]
    np.testing.assert_allclose(fn(*values), values[0] @ values[1] + values[2], rtol=1e-12)


def inference_chain(rows=400, k=128):
    """relu(relu(x @ W0) @ W1) @ W2 and an input: relu(h1 @ W1)'s output may take h1's
    workspace slot right after the GEMM; a fused epilogue writing there would overwrite rows
    other threads (or tiles) still read."""
    rng = np.random.default_rng(0)
    x = sg.placeholder("x", (None, k))
    ws = [sg.shared((rng.standard_normal(s) * 0.1).astype(np.float32), name=f"w{i}")
          for i, s in enumerate([(k, k), (k, k), (k, 4)])]
    out = sg.relu(sg.relu(x @ ws[0]) @ ws[1]) @ ws[2]
    return x, out, rng.standard_normal((rows, k)).astype(np.float32)


def test_an_epilogue_never_writes_memory_its_gemm_reads():
    x, out, xv = inference_chain()
    ref = sg.function([x], out, backend="numpy")(xv)
    np.testing.assert_allclose(sg.function([x], out)(xv), ref, rtol=1e-4, atol=1e-5)


def test_check_finite_names_the_epilogue_not_its_gemm():
    x = sg.placeholder("x", (None, 3))
    w = sg.shared(np.ones((3, 3), np.float32), name="w")
    fn = sg.function([x], sg.log(x @ w - 1.0), check_finite=True)
    assert fn.kernels[1].runs_in == "k0_gemm_matmul"
    with pytest.raises(FloatingPointError, match="kernel k1_loop_log"):
        fn(np.full((2, 3), 0.1, np.float32))
