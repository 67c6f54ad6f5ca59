"""Row groups (symgrad/codegen/rows.py): a row reduction and the element-wise work that reads
it along the row run as one C kernel per row block, whatever the user wrote the softmax or the
layer norm with; rows stay independent, and results equal the numpy backend's."""
from __future__ import annotations

import numpy as np
import pytest

import symgrad as sg

pytest.importorskip("symgrad.backends.c_backend")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path / "cache"))


def softmax_by_hand(x):
    e = sg.exp(x - sg.max(x, axis=-1, keepdims=True))
    return e / sg.sum(e, axis=-1, keepdims=True)


def log_softmax_by_hand(x):
    shifted = x - sg.max(x, axis=-1, keepdims=True)
    return shifted - sg.log(sg.sum(sg.exp(shifted), axis=-1, keepdims=True))


def layer_norm_by_hand(x):
    centred = x - sg.mean(x, axis=-1, keepdims=True)
    return centred / sg.sqrt(sg.mean(centred * centred, axis=-1, keepdims=True) + 1e-5)


def normalized(x):
    return x / sg.sqrt(sg.sum(x * x, axis=-1, keepdims=True))


def guarded_softmax(x):  # not rewritten to the softmax op: a row group of its own
    e = sg.exp(x - sg.max(x, axis=-1, keepdims=True))
    return e / (sg.sum(e, axis=-1, keepdims=True) + 1e-6)


PATTERNS = {"softmax": softmax_by_hand, "guarded_softmax": guarded_softmax,
            "log_softmax": log_softmax_by_hand,
            "layer_norm": layer_norm_by_hand, "normalized": normalized,
            "layer_norm_op_and_gradient": None}


def launches(fn) -> int:
    return sum(k.runs_in is None for k in fn.kernels)


@pytest.mark.parametrize("name", PATTERNS)
@pytest.mark.parametrize("rows, length", [(257, 1000), (40, 7), (1, 33), (0, 5)])
def test_row_patterns_run_in_one_row_loop_and_equal_numpy(name, rows, length):
    x = sg.placeholder("x", (None, length), "float64")
    if PATTERNS[name] is None:
        g = sg.placeholder("g", (None, length), "float64")
        inputs, outputs = [x, g], [sg.layer_norm(x), sg.grad(sg.sum(sg.layer_norm(x) * g), x)]
    else:
        inputs, outputs = [x], [PATTERNS[name](x)]
    rng = np.random.default_rng(rows + length)
    arrays = [rng.standard_normal((rows, length)) * 3 for _ in inputs]
    expected = sg.function(inputs, outputs, backend="numpy")(*arrays)
    fused = sg.function(inputs, outputs)
    assert launches(fused) <= 2
    for got, want in zip(fused(*arrays), expected):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    unfused = sg.function(inputs, outputs, opt_level=0)
    for got, want in zip(unfused(*arrays), expected):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_a_row_pattern_is_one_launch():
    """A softmax with a guard in its denominator is no softmax the rewrites know: its row
    kernels run as one group.  (The plain softmax by hand becomes the softmax op.)"""
    x = sg.placeholder("x", (None, 1000))
    report = sg.function([x], guarded_softmax(x)).report()
    assert "5 kernels in 1 launch," in report and "runs in k0_reduce_max's row loop" in report
    assert sg.function([x], softmax_by_hand(x)).report().startswith("1 kernel,")


def test_a_result_read_at_another_row_keeps_its_own_kernel():
    """x - m[::-1] reads row r's max while computing row n-1-r: the rows are not independent,
    so the subtraction keeps a kernel (and a parallel loop) of its own."""
    x = sg.placeholder("x", (64, 50), "float64")
    m = sg.max(x, axis=1, keepdims=True)
    y = sg.exp(x - m[::-1])
    fn = sg.function([x], [y, sg.sum(y, axis=1)])
    xv = np.random.default_rng(0).standard_normal((64, 50))
    m_np = xv.max(axis=1, keepdims=True)
    got_y, got_sum = fn(xv)
    np.testing.assert_allclose(got_y, np.exp(xv - m_np[::-1]), rtol=1e-12)
    np.testing.assert_allclose(got_sum, np.exp(xv - m_np[::-1]).sum(axis=1), rtol=1e-12)
    maxes = [k for k in fn.kernels if any(n.op == "max" for n in k.nodes)]
    exps = [k for k in fn.kernels if any(n.op == "exp" for n in k.nodes)]
    assert maxes[0].runs_in is None and all(k.runs_in != maxes[0].name for k in exps)


def test_check_finite_names_the_member_that_made_the_nan():
    x = sg.placeholder("x", (None, 40), "float64")
    centred = x - sg.mean(x, axis=1, keepdims=True)
    y = sg.log(centred) * 2            # log of a negative: NaN in the second member
    fn = sg.function([x], y, check_finite=True)
    assert fn.kernels[1].runs_in == fn.kernels[0].name
    with pytest.raises(FloatingPointError, match=f"kernel {fn.kernels[1].name}"):
        fn(np.random.default_rng(0).standard_normal((32, 40)))


def test_a_long_row_chain_is_split_into_bounded_groups():
    """opt_level 0 leaves every op a kernel; a chain of them along rows joins row groups of at
    most rows.MAX_MEMBERS members (checking each candidate against an unbounded group was
    quadratic), and the values stay the numpy backend's."""
    from symgrad.codegen.rows import MAX_MEMBERS
    x = sg.placeholder("x", (None, 50), "float64")
    y = x - sg.max(x, axis=1, keepdims=True)
    for _ in range(3 * MAX_MEMBERS):
        y = y * 0.99 + 0.01
    out = sg.sum(y, axis=1)
    fn = sg.function([x], out, opt_level=0)
    members = {}
    for k in fn.kernels:
        leader = k.runs_in or k.name
        members[leader] = members.get(leader, 0) + 1
    assert max(members.values()) <= MAX_MEMBERS and len(members) < len(fn.kernels)
    xv = np.random.default_rng(0).standard_normal((7, 50))
    np.testing.assert_allclose(fn(xv), sg.function([x], out, backend="numpy")(xv), rtol=1e-12)
