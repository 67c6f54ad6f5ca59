"""Bad input raises the documented exception with a message that says what is wrong and where:
at build time (sg.ShapeError naming the op, both shapes and the user's source line), at call time
(rank, dtype, static dims, symbolic dims that disagree), and in sg.grad."""
from __future__ import annotations

import re
import sys

import numpy as np
import pytest

import symgrad as sg

THIS_FILE = __file__


def next_line() -> int:
    """The line number of the caller's next line."""
    return sys._getframe(1).f_lineno + 1


def assert_built_here(exc: BaseException, line: int, code: str):
    """The message points at this test file, at `line`, and quotes the code written there."""
    message = str(exc)
    assert f"built at {THIS_FILE}:{line}: {code}" in message, message


# ------------------------------------------------------------------------------ build time
def test_broadcast_mismatch_names_op_shapes_and_source_line():
    a = sg.placeholder("a", (2, 3), "float64")
    b = sg.placeholder("b", (4, 5), "float64")
    with pytest.raises(sg.ShapeError) as info:
        line = next_line()
        a + b  # noqa: B018  (the offending line)
    message = str(info.value)
    assert message.startswith("add: ")
    assert "(2, 3)" in message and "(4, 5)" in message
    assert_built_here(info.value, line, "a + b  # noqa: B018  (the offending line)")


@pytest.mark.parametrize("build,op,shapes", [
    (lambda a, b: a * b, "mul", ["(2, 3)", "(3, 2)"]),
    (lambda a, b: sg.maximum(a, b), "maximum", ["(2, 3)", "(3, 2)"]),
    (lambda a, b: sg.where(a > 0, a, b), "where", ["(2, 3)", "(3, 2)"]),
    (lambda a, b: sg.mse(a, b), "mse", ["(2, 3)", "(3, 2)"]),
    (lambda a, b: sg.binary_cross_entropy(logits=a, targets=b), "binary_cross_entropy",
     ["(2, 3)", "(3, 2)"]),
    (lambda a, b: a @ b.T, "matmul", ["(2, 3)", "(2, 3)"]),
    (lambda a, b: sg.concatenate([a, b], axis=1), "concatenate", ["(2, 3)", "(3, 2)"]),
    (lambda a, b: sg.stack([a, b]), "stack", ["(2, 3)", "(3, 2)"]),
])
def test_build_time_mismatches(build, op, shapes):
    a = sg.placeholder("a", (2, 3), "float64")
    b = sg.placeholder("b", (3, 2), "float64")
    with pytest.raises(sg.ShapeError) as info:
        build(a, b)
    message = str(info.value)
    assert message.startswith(f"{op}: "), message
    for s in shapes:
        assert s in message, message
    # the site is the user's line (here: the lambda in the parametrize list of this file)
    assert f"built at {THIS_FILE}:" in message, message


def test_matmul_reports_the_users_shapes_for_vectors():
    m = sg.placeholder("m", (2, 3), "float64")
    v = sg.placeholder("v", (4,), "float64")
    with pytest.raises(sg.ShapeError) as info:
        line = next_line()
        v @ m
    assert str(info.value).startswith("matmul: inner dims differ: (4,) @ (2, 3) (4 vs 2)")
    assert_built_here(info.value, line, "v @ m")
    with pytest.raises(sg.ShapeError, match=re.escape("matmul: inner dims differ: (2, 3) @ (4,)")):
        m @ v
    with pytest.raises(sg.ShapeError, match="matmul: operands must not be scalars"):
        sg.matmul(m, sg.placeholder("s", (), "float64"))


def test_matmul_batch_dims_must_broadcast():
    a = sg.placeholder("a", (2, 3, 4), "float64")
    b = sg.placeholder("b", (5, 4, 2), "float64")
    with pytest.raises(sg.ShapeError, match=r"matmul: shapes \(2,\) and \(5,\) do not broadcast"):
        a @ b


def test_cross_entropy_label_shape_mismatch():
    logits = sg.placeholder("logits", (4, 3), "float64")
    with pytest.raises(sg.ShapeError) as info:
        line = next_line()
        sg.cross_entropy(logits, sg.placeholder("labels", (5,), "int64"))
    message = str(info.value)
    assert "cross_entropy" in message
    assert "labels of shape (5,)" in message and "logits of shape (4, 3)" in message
    assert "expected (4,)" in message
    assert_built_here(info.value, line,
                      'sg.cross_entropy(logits, sg.placeholder("labels", (5,), "int64"))')
    # float labels are probabilities and must match the logits' shape
    with pytest.raises(sg.ShapeError, match=re.escape(
            "cross_entropy: float labels are class probabilities and must have the logits' "
            "shape (4, 3), got (4,)")):
        sg.cross_entropy(logits, sg.placeholder("p", (4,), "float64"))


def test_a_symbolic_dim_that_meets_numbers_is_fixed_per_function(dim_name):
    """A named dim that meets 4 in one expression and 5 in another stays symbolic: each
    function fixes it to the number its own graph needs and checks it at call time; one graph
    that needs both numbers is an error when it compiles."""
    batch = dim_name()
    x = sg.placeholder("x", (batch, 3), "float64")
    y = sg.placeholder("y", (batch, 3), "float64")
    four = x + sg.constant(np.zeros((4, 3)))
    five = y + sg.constant(np.ones((5, 3)))
    assert str(x.shape[0]) == batch and four.shape == (4, 3) and five.shape == (5, 3)
    for backend in ("numpy", "c"):
        f4 = sg.function([x], four, backend=backend)
        np.testing.assert_array_equal(f4(np.full((4, 3), 2.0)), np.full((4, 3), 2.0))
        with pytest.raises(sg.ShapeError, match=re.escape(
                "(axis 0: 5 != 4; add, built at test_errors.py:") + r"\d+, " + re.escape(
                f"fixes {batch} to 4)")):
            f4(np.zeros((5, 3)))
        f5 = sg.function([y], five, backend=backend)
        np.testing.assert_array_equal(f5(np.zeros((5, 3))), np.ones((5, 3)))
    both = sg.function([x, y], [sg.sum(x), sg.sum(y)])  # neither number is in this graph
    assert both(np.ones((7, 3)), np.ones((7, 3))) == [21.0, 21.0]
    with pytest.raises(sg.ShapeError, match=re.escape(
            f"function: symbolic dim {batch} must be 4 for add (built at test_errors.py:")):
        sg.function([x, y], [four, five])


def test_a_symbolic_dim_through_a_fixed_op_and_its_gradient(dim_name):
    x = sg.placeholder("x", (dim_name(), 4), "float64")
    scale = np.arange(20.0).reshape(5, 4)
    y = x * sg.constant(scale)
    g = sg.grad(sg.sum(y * y), x)
    xv = np.random.default_rng(0).standard_normal((5, 4))
    for backend in ("numpy", "c"):
        np.testing.assert_allclose(sg.function([x], g, backend=backend)(xv),
                                   2 * xv * scale ** 2, rtol=1e-12)


FIXED_BY_A_CONSTANT = {
    "conv2d": lambda x: sg.mse(sg.conv2d(x, sg.constant(np.linspace(-1, 1, 18).reshape(1, 2, 3, 3))),
                               sg.constant(np.ones((3, 1, 2, 2)))),
    "max_pool": lambda x: sg.mse(sg.max_pool2d(x, 2), sg.constant(np.ones((3, 2, 2, 2)))),
    "avg_pool": lambda x: sg.mse(sg.avg_pool2d(x, 2), sg.constant(np.ones((3, 2, 2, 2)))),
    "sum": lambda x: sg.sum(sg.sum(x, axis=(2, 3)) * sg.constant(np.arange(6.0).reshape(3, 2))),
    "index": lambda x: sg.sum(x[:, 0] * sg.constant(np.arange(48.0).reshape(3, 4, 4))),
    "layer_norm": lambda x: sg.sum(sg.layer_norm(x) * sg.constant(np.arange(96.0).reshape(
        3, 2, 4, 4))),
    "reshape": lambda x: sg.sum(sg.reshape(x, (x.shape[0], 8, 4)) * sg.constant(
        np.arange(96.0).reshape(3, 8, 4))),
}


@pytest.mark.parametrize("name", FIXED_BY_A_CONSTANT)
def test_gradients_through_a_symbolic_dim_fixed_by_a_constant(name):
    """The batch meets a constant's 3 in the forward graph; the adjoint's shapes carry the 3
    back to x's symbolic batch (reshape and broadcast_to accept it and record the check)."""
    build = FIXED_BY_A_CONSTANT[name]
    xv = np.random.default_rng(0).standard_normal((3, 2, 4, 4))
    static = sg.placeholder("static", (3, 2, 4, 4), "float64")
    expected = sg.function([static], sg.grad(build(static), static), backend="numpy")(xv)
    x = sg.placeholder("x", (None, 2, 4, 4), "float64")
    grad = sg.grad(build(x), x)
    for backend in ("numpy", "c"):
        np.testing.assert_allclose(sg.function([x], grad, backend=backend)(xv), expected,
                                   rtol=1e-12, atol=1e-12)


def test_a_failed_op_leaves_symbolic_dims_as_they_were(dim_name):
    batch = dim_name()
    a = sg.placeholder("a", (batch, 3))
    with pytest.raises(sg.ShapeError, match=r"add: shapes .* do not broadcast"):
        a + sg.placeholder("v", (4, 2))
    assert str(a.shape[0]) == batch and str(sg.placeholder("c", (batch, 3)).shape[0]) == batch
    assert sg.function([a], sg.sum(a))(np.ones((2, 3), np.float32)) == 6.0
    # a merge of two symbolic dims is undone too
    p, q = sg.placeholder("p", (None, 3)), sg.placeholder("q", (None, 2))
    with pytest.raises(sg.ShapeError):
        p + q
    f = sg.function([p, q], [sg.sum(p), sg.sum(q)])
    assert f(np.ones((2, 3), np.float32), np.ones((5, 2), np.float32)) == [6.0, 10.0]


@pytest.mark.parametrize("build,pattern", [
    (lambda x: sg.reshape(x, (4, 2)), r"^reshape: cannot reshape \(2, 3\) to \(4, 2\)"),
    (lambda x: sg.reshape(x, (-1, -1)), r"^reshape: only one dim may be -1"),
    (lambda x: sg.reshape(x, (4, -1)), r"^reshape: cannot infer -1 when reshaping \(2, 3\)"),
    (lambda x: sg.sum(x, axis=2), r"^sum: axis 2 is out of range for a tensor of shape \(2, 3\)"),
    (lambda x: sg.mean(x, axis=(0, -2)), r"^mean: repeated axis in \(0, -2\)"),
    (lambda x: sg.max(x, axis=-3), r"^max: axis -3 is out of range"),
    (lambda x: sg.argmax(x, axis=5), r"^argmax: axis 5 is out of range"),
    (lambda x: sg.softmax(x, axis=2), r"^softmax: axis 2 is out of range"),
    (lambda x: sg.log_softmax(x, axis=-3), r"^log_softmax: axis -3 is out of range"),
    (lambda x: sg.logsumexp(x, axis=7), r"^logsumexp: axis 7 is out of range"),
    (lambda x: sg.broadcast_to(x, (3, 3)), r"^broadcast_to: shapes \(2, 3\) and \(3, 3\)"),
    (lambda x: sg.broadcast_to(x, (3,)), r"^broadcast_to: cannot broadcast \(2, 3\) to \(3,\)"),
    (lambda x: sg.transpose(x, (0, 0)), r"^transpose: axes \(0, 0\) are not a permutation"),
    (lambda x: sg.concatenate([x, sg.placeholder("y", (2, 4, 1), "float64")]),
     r"^concatenate: operands must have the same rank, got \(2, 3\), \(2, 4, 1\)"),
    (lambda x: sg.take(x, sg.placeholder("f", (2,), "float64")),
     r"^take: indices must be int32 or int64, got float64"),
    (lambda x: sg.one_hot(x, 3), r"^one_hot: labels must be int32 or int64, got float64"),
    (lambda x: sg.dot(sg.placeholder("a3", (2, 2, 2), "float64"), x),
     r"^dot: use matmul for operands of rank above 2"),
    (lambda x: sg.placeholder("bad", (2, -1)),
     r"^placeholder 'bad': dim -1 must be a non-negative int, None or a name"),
])
def test_build_time_shape_errors(build, pattern):
    x = sg.placeholder("x", (2, 3), "float64")
    with pytest.raises(sg.ShapeError, match=pattern) as info:
        build(x)
    assert f"built at {THIS_FILE}:" in str(info.value)


def test_indexing_errors():
    x = sg.placeholder("x", (2, 3), "float64")
    with pytest.raises(IndexError, match="index 5 is out of bounds for axis 0 with size 2"):
        x[5]
    with pytest.raises(IndexError, match=r"too many indices for a tensor of shape \(2, 3\)"):
        x[1, 2, 0]
    with pytest.raises(IndexError, match="a single ellipsis"):
        x[..., ...]
    b = sg.placeholder("b", (None, 3), "float64")
    with pytest.raises(IndexError, match=r"only step-1 slices and the full reversal \[::-1\] "
                                         r".* symbolic dim b.shape\[0\] \(axis 0\), got "
                                         r"None:None:2"):
        b[::2]
    with pytest.raises(IndexError, match="got 3:None:-1"):
        b[3::-1]
    with pytest.raises(IndexError, match="slice -3:5 along symbolic dim .* cannot express"):
        b[-3:5]
    with pytest.raises(sg.ShapeError, match=r"cannot concatenate sizes b.shape\[0\] and "
                                            r"c.shape\[0\] along axis 0"):
        sg.concatenate([b, sg.placeholder("c", (None, 3), "float64")])


def test_dtype_errors_at_build_time():
    with pytest.raises(TypeError, match="dtype float16 is not supported; symgrad supports "
                                        "float32, float64, int32, int64, bool"):
        sg.placeholder("h", (2,), "float16")
    with pytest.raises(TypeError, match="unknown dtype"):
        sg.placeholder("h", (2,), "not-a-dtype")
    x = sg.placeholder("x", (2,), "float64")
    with pytest.raises(TypeError, match="truth value of a symbolic tensor is unknown"):
        bool(x > 0)
    with pytest.raises(TypeError, match="dtype str32 is not supported"):
        x + "a"


# ------------------------------------------------------------------------------ call time
@pytest.fixture
def fn():
    x = sg.placeholder("x", (None, 3), "float64")
    t = sg.placeholder("t", (None,), "int64")
    return sg.function([x, t], sg.cross_entropy(x, t), backend="numpy")


def test_wrong_dtype(fn):
    x32 = np.zeros((2, 3), np.float32)
    with pytest.raises(sg.InputError, match=re.escape(
            "input 'x': expected dtype float64, got float32 (convert with .astype(np.float64))")):
        fn(x32, np.zeros(2, np.int64))
    with pytest.raises(TypeError):  # InputError is a TypeError ...
        fn(x32, np.zeros(2, np.int64))
    with pytest.raises(ValueError):  # ... and a ValueError
        fn(x32, np.zeros(2, np.int64))
    with pytest.raises(sg.InputError, match="input 't': expected dtype int64, got int32"):
        fn(np.zeros((2, 3)), np.zeros(2, np.int32))
    with pytest.raises(sg.InputError, match="input 't': expected dtype int64, got float64"):
        fn(np.zeros((2, 3)), np.zeros(2))


def test_wrong_rank(fn):
    with pytest.raises(sg.ShapeError, match=re.escape(
            "input 'x': expected rank 2 (x.shape[0], 3), got shape (2, 3, 1)")):
        fn(np.zeros((2, 3, 1)), np.zeros(2, np.int64))
    with pytest.raises(sg.ShapeError, match=re.escape("input 't': expected rank 1")):
        fn(np.zeros((2, 3)), np.zeros((2, 1), np.int64))


def test_wrong_static_dim(fn):
    with pytest.raises(sg.ShapeError, match=re.escape(
            "input 'x': expected shape (x.shape[0], 3), got (2, 4) (axis 1: 4 != 3)")):
        fn(np.zeros((2, 4)), np.zeros(2, np.int64))


def test_inconsistent_symbolic_dim_from_an_op(fn):
    """The labels' batch was unified with the logits' batch by cross_entropy."""
    with pytest.raises(sg.ShapeError, match=re.escape(
            "input 't': axis 0 has size 3, but symbolic dim x.shape[0] is 2 from input 'x' (axis 0)")):
        fn(np.zeros((2, 3)), np.zeros(3, np.int64))


def test_inconsistent_named_dim(dim_name):
    batch = dim_name()
    a = sg.placeholder("a", (batch, 2), "float32")
    b = sg.placeholder("b", (3, batch), "float32")
    f = sg.function([a, b], [sg.sum(a), sg.sum(b)], backend="numpy")
    f(np.zeros((4, 2), np.float32), np.zeros((3, 4), np.float32))  # consistent: fine
    with pytest.raises(sg.ShapeError, match=re.escape(
            f"input 'b': axis 1 has size 5, but symbolic dim {batch} is 4 from input 'a' "
            "(axis 0)")):
        f(np.zeros((4, 2), np.float32), np.zeros((3, 5), np.float32))
    n = dim_name()
    square = sg.placeholder("square", (n, n))
    g = sg.function([square], square + 1, backend="numpy")
    with pytest.raises(sg.ShapeError, match=re.escape(
            f"input 'square': axis 1 has size 4, but symbolic dim {n} is 3 from its axis 0")):
        g(np.ones((3, 4), np.float32))


def test_wrong_argument_count_and_kind(fn):
    with pytest.raises(TypeError, match=re.escape("function takes 2 arguments (x, t), got 1")):
        fn(np.zeros((2, 3)))
    with pytest.raises(sg.InputError, match="input 'x': cannot convert str to a float64 array"):
        fn("abc", np.zeros(2, np.int64))
    with pytest.raises(sg.InputError, match="pass numpy arrays to a compiled function, not "
                                            "symbolic tensors"):
        fn(sg.placeholder("p", (2, 3), "float64"), np.zeros(2, np.int64))


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_call_arguments_convert_only_where_no_value_changes(backend):
    x = sg.placeholder("x", (2,), "float32")
    t = sg.placeholder("t", (2,), "int64")
    f = sg.function([x, t], [x * 2, t + 1], backend=backend)
    doubled, labels = f(np.array([1.0, 2.0], ">f4"), [0, 1])  # big-endian: the same numbers
    np.testing.assert_array_equal(doubled, [2.0, 4.0])
    np.testing.assert_array_equal(labels, [1, 2])
    refusals = [
        (([1.0, 2.0], [0.9, 3.7]), "input 't': expected int64, got float64 values"),
        (([1.0, 2.0], [2 ** 70, 1]), "input 't': Python ints beyond int64 (numpy keeps them "
                                     "as objects) are not converted to int64"),
        (([None, 1.0], [0, 1]), "input 'x': cannot convert list"),
        (([1e40, 1.0], [0, 1]), "input 'x': finite values overflow float32"),
        ((np.ma.array(np.zeros(2, np.float32), mask=[0, 1]), [0, 1]), "input 'x': a masked array"),
        ((np.zeros(2, np.float64).view(np.recarray), [0, 1]),
         "input 'x': expected dtype float32, got float64"),
    ]
    for args, message in refusals:  # an InputError is a TypeError and a ValueError
        with pytest.raises(sg.InputError, match=re.escape(message)):
            f(*args)
    empty = sg.placeholder("empty", (None,), "int64")  # [] is float64 to numpy: no values, though
    assert sg.function([empty], sg.sum(empty) + 1, backend=backend)([]) == 1


def test_set_value_refuses_values_its_dtype_cannot_hold():
    counts = sg.shared(np.zeros(2, np.int32), name="counts")
    with pytest.raises(OverflowError, match=re.escape(
            "set_value of counts: values from 1 to 4294967301 do not fit int32")):
        counts.set_value(np.array([2 ** 32 + 5, 1]))
    with pytest.raises(TypeError, match="set_value of counts: expected int32, got float64"):
        counts.set_value(np.array([1.5, 2.0]))
    with pytest.raises(TypeError, match=re.escape("set_value of counts: an object array (of "
                                                  "Python ints); pass a numeric array")):
        counts.set_value(np.zeros(2, object))
    counts.set_value(np.array([7, -3], np.int64))  # fits: taken
    np.testing.assert_array_equal(counts.get_value(), [7, -3])
    w = sg.shared(np.zeros(2, np.float32), name="w")
    with pytest.raises(OverflowError, match="set_value of w: finite values overflow float32"):
        w.set_value(np.array([1e300, 1.0]))
    w.set_value([np.inf, 0.5])  # inf stays inf: only finite values that overflow are refused
    np.testing.assert_array_equal(w.get_value(), [np.inf, 0.5])
    np.testing.assert_array_equal(counts.get_value(), [7, -3])  # refusals left values alone


def test_label_out_of_range_is_an_error(fn):
    with pytest.raises(IndexError, match=re.escape("label out of range [0, 3)")):
        fn(np.zeros((2, 3)), np.array([0, 3]))


def test_a_bad_label_is_an_index_error_on_every_backend():
    """One `except IndexError` serves both: the C backend's KernelError is an IndexError too."""
    x = sg.placeholder("x", (None, 3), "float64")
    t = sg.placeholder("t", (None,), "int64")
    for backend in ("numpy", "c"):
        step = sg.function([x, t], sg.cross_entropy(x, t), backend=backend)
        with pytest.raises(IndexError, match=r"softmax_cross_entropy.*\[0, 3\)"):
            step(np.zeros((2, 3)), np.array([0, 3]))


def test_numpy_refusals_are_refused_at_build_time_too():
    empty = sg.placeholder("empty", (0, 3))
    for reduce in (sg.max, sg.min, sg.argmax):
        with pytest.raises(sg.ShapeError, match=rf"{reduce.__name__}: axis 0 of \(0, 3\) is "
                                                "empty"):
            reduce(empty, axis=0)
    assert sg.max(empty, axis=1).shape == (0,)      # an empty result is fine
    flags = sg.placeholder("flags", (3,), "bool")
    with pytest.raises(TypeError, match="neg: not supported for bool tensors .*logical_not"):
        -flags
    with pytest.raises(TypeError, match="sub: not supported for bool tensors .*a != b"):
        flags - flags
    with pytest.raises(TypeError, match="sign: not supported for bool tensors"):
        sg.sign(flags)
    assert (flags - 1).dtype == np.int64  # a bool with an int is arithmetic, as in numpy
    with pytest.raises(ValueError, match="integers to negative integer powers"):
        sg.placeholder("counts", (3,), "int64") ** -2


def test_failed_calls_leave_arrays_and_state_untouched():
    x = sg.placeholder("x", (None, 2), "float64")
    t = sg.placeholder("t", (None,), "int64")
    w = sg.shared(np.array([[1.0, 2.0], [3.0, 4.0]]), name="w")
    loss = sg.cross_entropy(x @ w, t)
    step = sg.function([x, t], loss, updates=[(w, w - 0.1 * sg.grad(loss, w))],
                       backend="numpy")
    xa, ta = np.ones((3, 2)), np.array([0, 1, 5])  # label 5 is out of range
    with pytest.raises(IndexError):
        step(xa, ta)
    np.testing.assert_array_equal(w.get_value(), [[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(xa, np.ones((3, 2)))
    np.testing.assert_array_equal(ta, [0, 1, 5])


@pytest.mark.parametrize("backend, opt_level", [("numpy", 2), ("c", 0), ("c", 2)])
def test_a_step_that_stops_has_updated_nothing(backend, opt_level):
    """Updates apply after everything else: a kernel that stops the step on a bad index, or a
    check_finite failure, must find every parameter as it was (an in-place update that ran
    earlier in the step would already have written W)."""
    idx = sg.placeholder("idx", (None,), "int64")
    w = sg.shared(np.zeros(4), name="w")
    table = sg.shared(np.ones((10, 4)), name="table")
    rows = sg.take(table, idx, axis=0)
    step = sg.function([idx], [], updates=[(w, w + 1), (table, table + sg.sum(rows))],
                       backend=backend, opt_level=opt_level)
    with pytest.raises(IndexError):
        step(np.array([1, 99]))
    np.testing.assert_array_equal(w.get_value(), np.zeros(4))
    np.testing.assert_array_equal(table.get_value(), np.ones((10, 4)))
    x = sg.placeholder("x", (4,), "float64")
    v = sg.shared(np.zeros(4), name="v")
    checked = sg.function([x], [], updates=[(w, w + x), (v, sg.sqrt(v - x))],
                          backend=backend, opt_level=opt_level, check_finite=True)
    with pytest.raises(FloatingPointError, match="sqrt"):
        checked(np.ones(4))
    np.testing.assert_array_equal(w.get_value(), np.zeros(4))
    np.testing.assert_array_equal(v.get_value(), np.zeros(4))


@pytest.mark.parametrize("opt_level", [0, 2])
def test_updates_of_state_the_step_never_reads(opt_level):
    """A shared tensor only written (the last batch's activations), and one value written to
    two shared tensors."""
    x = sg.placeholder("x", (4, 3), "float64")
    last, a, b = (sg.shared(np.zeros((4, 3)), name=n) for n in ("last", "a", "b"))
    y = sg.tanh(x)
    doubled = x * 2 + 1
    step = sg.function([x], y, updates=[(last, y), (a, doubled), (b, doubled)],
                       opt_level=opt_level)
    xv = np.arange(12.0).reshape(4, 3) / 10
    np.testing.assert_allclose(step(xv), np.tanh(xv))
    np.testing.assert_allclose(last.get_value(), np.tanh(xv))
    np.testing.assert_allclose(a.get_value(), xv * 2 + 1)
    np.testing.assert_allclose(b.get_value(), xv * 2 + 1)


def test_function_construction_errors():
    x = sg.placeholder("x", (2,), "float64")
    other = sg.placeholder("other", (2,), "float64")
    with pytest.raises(ValueError, match="the outputs depend on placeholder 'other', which is not "
                                         "among the inputs"):
        sg.function([x], x + other, backend="numpy")
    with pytest.raises(TypeError, match=r"inputs\[0\] must be a placeholder, got shared"):
        sg.function([sg.shared(np.zeros(2))], x, backend="numpy")
    with pytest.raises(ValueError, match="a placeholder appears twice"):
        sg.function([x, x], x, backend="numpy")
    with pytest.raises(TypeError, match=r"outputs\[1\] must be a symgrad tensor, got ndarray"):
        sg.function([x], [x, np.zeros(2)], backend="numpy")
    with pytest.raises(ValueError, match="unknown backend 'nope'"):
        sg.function([x], x, backend="nope")


# ------------------------------------------------------------------------------ sg.grad
def test_grad_of_a_non_scalar():
    x = sg.placeholder("x", (2, 3), "float64")
    with pytest.raises(sg.ShapeError) as info:
        line = next_line()
        sg.grad(x * 2, x)
    message = str(info.value)
    assert message.startswith("grad: cost must be a scalar, got shape (2, 3); reduce it first")
    assert_built_here(info.value, line, "sg.grad(x * 2, x)")


def test_grad_wrt_a_non_tensor():
    x = sg.placeholder("x", (2,), "float64")
    cost = sg.sum(x)
    with pytest.raises(TypeError, match=r"grad: wrt\[0\] must be a symgrad tensor of the graph, "
                                        r"got ndarray"):
        sg.grad(cost, np.zeros(2))
    with pytest.raises(TypeError, match=r"grad: wrt\[1\] must be a symgrad tensor of the graph, "
                                        r"got float"):
        sg.grad(cost, [x, 3.0])
    with pytest.raises(TypeError, match=r"grad: wrt\[0\] must be a symgrad tensor of the graph, "
                                        r"got float"):
        sg.grad(cost, 3.0)


def test_grad_wrt_an_integer_tensor():
    x = sg.placeholder("x", (2,), "float64")
    i = sg.placeholder("i", (2,), "int64")
    with pytest.raises(TypeError, match=r"cannot differentiate with respect to wrt\[1\] \(i\), "
                                        r"of dtype int64: only float tensors have gradients"):
        sg.grad(sg.sum(x * i), [x, i])


def test_grad_of_a_non_tensor_or_integer_cost():
    x = sg.placeholder("x", (2,), "float64")
    with pytest.raises(TypeError, match="grad: cost must be a symgrad tensor, got float"):
        sg.grad(1.0, x)
    with pytest.raises(TypeError, match="grad: cost must be float32 or float64, got int64"):
        sg.grad(sg.sum(x > 0), x)


def test_axes_out_of_range_are_refused_not_wrapped():
    z = sg.placeholder("z", (2, 3))
    for build, message in [
            (lambda: z.transpose((1, 2)), "transpose: axis 2 is out of range"),
            (lambda: z.transpose((5, 0)), "transpose: axis 5 is out of range"),
            (lambda: z.transpose((0,)), "transpose: axes (0,) are not a permutation"),
            (lambda: z.transpose((1, 1)), "transpose: axes (1, 1) are not a permutation"),
            (lambda: sg.stack([z, z], axis=4), "stack: axis 4 is out of range"),
            (lambda: sg.expand_dims(z, -4), "expand_dims: axis -4 is out of range")]:
        with pytest.raises(sg.ShapeError, match=re.escape(message)):
            build()
    for empty in (sg.concatenate, sg.stack):
        with pytest.raises(ValueError, match=f"{empty.__name__}: needs at least one tensor"):
            empty([])
    for mask in (True, False, np.array([True, False])):
        with pytest.raises(IndexError, match="boolean indexing"):
            z[mask]


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_axis_forms_numpy_accepts(backend):
    z = sg.placeholder("z", (2, 3))
    zv = np.arange(6, dtype=np.float32).reshape(2, 3)
    fn = sg.function([z], [sg.concatenate([z, z], axis=None), z.transpose((-1, 0)),
                           sg.stack([z, z], axis=-1), sg.expand_dims(z, -3)], backend=backend)
    expected = [np.concatenate([zv, zv], axis=None), zv.transpose((-1, 0)),
                np.stack([zv, zv], axis=-1), np.expand_dims(zv, -3)]
    for got, want in zip(fn(zv), expected):
        np.testing.assert_array_equal(got, want)


def test_argument_mistakes_get_clear_errors(tmp_path):
    with pytest.raises(TypeError, match=re.escape("placeholder 'q': shape must be a tuple of "
                                                  "dims, got 3 (for one axis write (3,))")):
        sg.placeholder("q", 3)
    x = sg.placeholder("x", (3,))
    for level in ("2", 3, -1, True):
        with pytest.raises(ValueError, match="opt_level must be 0, 1 or 2"):
            sg.function([x], x * 2, opt_level=level)
    with pytest.raises(TypeError, match="backend 'c' has no option bogus; its options: "
                                        "check_finite"):
        sg.function([x], x * 2, bogus=1)
    w = sg.shared(np.zeros(2, np.float32), name="w")
    with pytest.raises(FileNotFoundError, match="save_params: no directory"):
        sg.save_params(tmp_path / "missing" / "w", [w])
    np.save(tmp_path / "w.npy", np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="is a single .npy array, not an .npz"):
        sg.load_params(tmp_path / "w.npy", [w])
    assert sg.mse(x, 0.0).dtype == np.float32  # a Python number takes the tensor's dtype


def test_shared_follows_the_conversion_rules_of_set_value():
    with pytest.raises(TypeError, match="shared c: expected int32, got float64"):
        sg.shared([1.7, 2.9], name="c", dtype="int32")
    with pytest.raises(OverflowError, match="shared c: values from 1099511627776"):
        sg.shared([2 ** 40], name="c", dtype="int32")
    with pytest.raises(OverflowError, match="shared: finite values overflow float32"):
        sg.shared(1e300)  # a Python float is float32, like a placeholder
    for value in ("abc", None, [[1, 2], [3]]):
        with pytest.raises(TypeError, match="shared s: cannot"):
            sg.shared(value, name="s")
    for value in (2 ** 70, [2 ** 70, 1]):
        with pytest.raises(OverflowError, match="shared s: Python ints beyond int64"):
            sg.shared(value, name="s")
    assert sg.shared(1.5).dtype == np.float32 and sg.shared(3).dtype == np.int64
    assert sg.shared(np.float64(2)).dtype == np.float64 and sg.shared([True]).dtype == np.bool_


def test_an_integer_update_that_would_wrap_is_refused():
    counts = sg.shared(np.zeros(2, np.int32), name="counts")
    k = sg.placeholder("k", (2,), "int64")
    with pytest.raises(TypeError, match=re.escape("updates[0]: int64 values into int32 shared "
                                                  "counts would wrap")):
        sg.function([k], [], updates=[(counts, k)])
    step = sg.function([k], [], updates=[(counts, (counts + 1) * 2)])  # int32 arithmetic: fine
    step(np.zeros(2, np.int64))
    np.testing.assert_array_equal(counts.get_value(), [2, 2])


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_single_axis_ops_refuse_tuples_and_bools(backend):
    x = sg.placeholder("x", (3, 4))
    for build in (lambda: sg.softmax(x, axis=(0, 1)), lambda: sg.log_softmax(x, axis=(1,)),
                  lambda: sg.argmax(x, axis=(1, 0)), lambda: sg.concatenate([x, x], axis=(1,)),
                  lambda: sg.take(x, np.array([0]), axis=(1, 0)),
                  lambda: sg.sum(x, axis=True), lambda: x.max(axis=(0, False))):
        with pytest.raises(TypeError, match="axis must be an int, got"):
            build()
    xv = np.arange(12, dtype=np.float32).reshape(3, 4)
    got = sg.function([x], [sg.sum(x, axis=np.int64(1)), sg.argmax(x, axis=np.int32(0))],
                      backend=backend)(xv)
    np.testing.assert_array_equal(got[0], xv.sum(axis=1))
    np.testing.assert_array_equal(got[1], xv.argmax(axis=0))


def test_shape_arguments_refuse_floats_and_negative_dims(backend):
    """As numpy: a float dim is a TypeError (reshape(2.2, 3.9) once gave (2, 3)), a negative one
    a ShapeError when the graph is built (broadcast_to (-3, 3) once sized a buffer that no kernel
    wrote, and (b.T @ b).sum() returned whatever memory held)."""
    y = sg.placeholder("y", (2, 3))
    labels = sg.placeholder("labels", (3,), "int64")
    for build, error, message in [
            (lambda: y.reshape(2.2, 3.9), TypeError, r"reshape: dims must be ints, got 2.2"),
            (lambda: y.reshape(None), TypeError, r"reshape: shape must be an int or a tuple"),
            (lambda: y.reshape(-2, -3), sg.ShapeError, r"reshape: dim -2 in \(-2, -3\) is "
                                                       r"negative \(only -1, once"),
            (lambda: y.reshape(-1, -1), sg.ShapeError, r"only one dim may be -1"),
            (lambda: sg.broadcast_to(y[0], (-3, 3)), sg.ShapeError,
             r"broadcast_to: dim -3 in \(-3, 3\) is negative"),
            (lambda: sg.broadcast_to(y[0], (2.0, 3)), TypeError, r"broadcast_to: dims must be"),
            (lambda: sg.one_hot(labels, -3), sg.ShapeError, r"one_hot: depth -3 is negative"),
            (lambda: sg.one_hot(labels, 2.5), TypeError, r"one_hot: depth must be an int"),
            (lambda: y.sum(axis=1.0), TypeError, r"sum: axis must be an int, got 1.0"),
            (lambda: y.max(axis=0.0), TypeError, r"max: axis must be an int, got 0.0")]:
        with pytest.raises(error, match=message):
            build()
    yv = np.arange(6, dtype=np.float32).reshape(2, 3)
    got = sg.function([y], [y.reshape(np.array([3, 2])), y.reshape(np.int64(6)),
                            sg.broadcast_to(y, [np.int32(4), 2, 3])], backend=backend)(yv)
    np.testing.assert_array_equal(got[0], yv.reshape(3, 2))
    np.testing.assert_array_equal(got[1], yv.reshape(6))
    np.testing.assert_array_equal(got[2], np.broadcast_to(yv, (4, 2, 3)))


def test_a_numpy_integer_exponent_promotes_as_in_numpy(backend):
    x = sg.placeholder("x", (2,), "int32")
    xv = np.array([3, 7], np.int32)
    got = sg.function([x], [x ** np.int64(20), x ** 3], backend=backend)(xv)
    for value, want in zip(got, [xv ** np.int64(20), xv ** 3]):
        assert value.dtype == want.dtype
        np.testing.assert_array_equal(value, want)


def test_out_takes_an_ndarray_subclass_and_inputs_any_iterable(tmp_path):
    x = sg.placeholder("x", (3, 4))
    fn = sg.function((t for t in [x]), x * 2)
    target = np.memmap(tmp_path / "out.bin", dtype=np.float32, mode="w+", shape=(3, 4))
    result = fn(np.ones((3, 4), np.float32), out=target)
    assert result is target and float(target.sum()) == 24.0


def test_comparing_with_a_python_int_outside_the_dtype_is_exact(backend):
    """numpy 2 compares an int32 array with 2**40 exactly; arithmetic with it is refused, and
    so it is here, naming the op."""
    x = sg.placeholder("x", (3,), "int32")
    xv = np.array([1, -2, 3], np.int32)
    got = sg.function([x], [x < 2 ** 40, x == 2 ** 40, 2 ** 40 > x, x > -2 ** 35],
                      backend=backend)(xv)
    for value, want in zip(got, [xv < 2 ** 40, xv == 2 ** 40, 2 ** 40 > xv, xv > -2 ** 35]):
        np.testing.assert_array_equal(value, want)
    with pytest.raises(OverflowError, match=r"add: Python integer 1099511627776 out of bounds "
                                            r"for int32; cast the tensor first"):
        x + 2 ** 40
    # past int64 every element is on one side: decided, as numpy 2 does
    y = sg.placeholder("y", (3,), "int64")
    yv = np.array([2 ** 62, -1, -2 ** 63], np.int64)
    beyond = [y < 2 ** 63, 2 ** 63 > y, y >= -2 ** 64, y == 2 ** 70, y != -2 ** 70, x > 2 ** 64]
    want = [[True] * 3, [True] * 3, [True] * 3, [False] * 3, [True] * 3, [False] * 3]
    for value, expected in zip(sg.function([x, y], beyond, backend=backend)(xv, yv), want):
        np.testing.assert_array_equal(value, expected)
    with pytest.raises(OverflowError, match=r"mul: .*it is beyond int64 too: compute in float64"):
        y * 2 ** 63
    flags = sg.placeholder("flags", (3,), "bool")  # numpy raises for bools, and so do we
    with pytest.raises(OverflowError, match=r"less: .*it is beyond int64 too"):
        flags < 2 ** 70
    batch = sg.placeholder("batch", (None, 2), "int64")  # a symbolic shape for the answer
    decided = sg.function([batch], [batch < 2 ** 63, batch == -2 ** 64], backend=backend)
    below, equal = decided(np.zeros((3, 2), np.int64))
    assert below.shape == (3, 2) and below.all() and not equal.any()


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_bool_arrays_holding_other_bytes_read_as_numpy_reads_them(backend):
    """A bool view of bytes 2 or 255 is True to numpy; the C kernels would use the byte."""
    raw = np.array([2, 0, 255, 1], np.uint8).view(bool)
    b = sg.placeholder("b", (None,), "bool")
    kept = sg.shared(raw, name="kept")
    f = sg.function([b], [b.astype("int64"), sg.sum(b.astype("float32")), b != True,  # noqa: E712
                          b & sg.constant(raw), kept.astype("int32")], backend=backend)
    counts, total, negated, both, stored = f(raw)
    np.testing.assert_array_equal(counts, [1, 0, 1, 1])
    assert total == 3
    np.testing.assert_array_equal(negated, [False, True, False, False])
    np.testing.assert_array_equal(both, [True, False, True, True])
    np.testing.assert_array_equal(stored, [1, 0, 1, 1])
    np.testing.assert_array_equal(raw.view(np.uint8), [2, 0, 255, 1])  # the caller's bytes


def test_unsigned_constants_promote_as_numpy_and_refuse_what_int64_cannot_hold():
    x = sg.placeholder("x", (2,), "int32")
    assert (x + np.array([3, 1], np.uint8)).dtype == np.int32  # numpy: int32
    assert (x + np.array([3, 1], np.uint32)).dtype == np.int64
    with pytest.raises(OverflowError, match=re.escape("constant: values from 1 to "
                                                      "9223372036854775808 do not fit int64")):
        x + np.array([2 ** 63, 1], np.uint64)
    # a big-endian float64 (network-order data) or a long double stays float64
    wide = np.array([0.1, 1e-300, 1e300, 1 + 2 ** -40])
    for a in (wide.astype(">f8"), wide.astype(np.longdouble)):
        assert sg.constant(a).dtype == np.float64
        np.testing.assert_array_equal(sg.function([], sg.constant(a) * 1.0, backend="numpy")(),
                                      wide)
    assert sg.constant(np.array([1.5], ">f4")).dtype == np.float32


def test_attention_names_itself_and_the_users_shapes():
    q, v = sg.placeholder("q", (3, 4)), sg.placeholder("v", (5, 2))
    with pytest.raises(sg.ShapeError, match=re.escape(
            "scaled_dot_product_attention: q and k must share the feature dim d")):
        sg.scaled_dot_product_attention(q, sg.placeholder("k", (5, 6)), v)
    with pytest.raises(sg.ShapeError, match=re.escape(
            "scaled_dot_product_attention: k and v must share the key length Tk")):
        sg.scaled_dot_product_attention(q, sg.placeholder("k", (6, 4)), v)
    with pytest.raises(sg.ShapeError, match=re.escape(
            "scaled_dot_product_attention: q (2, 3, 4), k (3, 5, 4), v (3, 5, 2) do not "
            "broadcast")):
        sg.scaled_dot_product_attention(sg.placeholder("q", (2, 3, 4)),
                                        sg.placeholder("k", (3, 5, 4)),
                                        sg.placeholder("v", (3, 5, 2)))


@pytest.mark.parametrize("label_dtype", ["int64", "int32", "bool"])
def test_binary_cross_entropy_with_integer_labels_keeps_float32(label_dtype, backend):
    z = sg.placeholder("z", (4,))
    t = sg.placeholder("t", (4,), label_dtype)
    losses = [sg.binary_cross_entropy(logits=z, targets=t),
              sg.binary_cross_entropy(sg.sigmoid(z), t)]
    zv = np.array([0.5, -1.0, 2.0, 0.0], np.float32)
    tv = np.array([1, 0, 1, 1]).astype(label_dtype)
    want = np.mean(np.logaddexp(0, zv.astype(np.float64)) - zv * tv)
    for value in sg.function([z, t], losses, backend=backend)(zv, tv):
        assert value.dtype == np.float32
        np.testing.assert_allclose(value, want, rtol=1e-6)


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_a_shifted_dim_that_a_call_makes_negative_is_refused(backend):
    """arange(n - 3) at n = 0 once sized C buffers and loops with (-3)*(-3) elements (garbage
    values, a segfault); the numpy backend raised numpy's bare error."""
    x = sg.placeholder("x", (None, 3))
    n = x.shape[0]
    a = sg.arange(n - 3)
    ones = sg.broadcast_to(sg.constant(np.float32(1)), (n - 3, n - 3))
    fn = sg.function([x], [sg.sum(a[:, None] * a[None, :]), sg.sum(ones)], backend=backend)
    got = fn(np.zeros((5, 3), np.float32))
    assert got[0] == 1 and got[1] == 4  # n - 3 = 2: arange is [0, 1]
    with pytest.raises(sg.ShapeError, match=r"arange \(built at .*\) has a dim x.shape\[0\] - 3 "
                                            r"that is -3 in this call"):
        fn(np.zeros((0, 3), np.float32))


def test_a_broadcast_error_names_each_operands_own_dims_and_report_takes_sizes():
    x, y = sg.placeholder("x", (None, 4)), sg.placeholder("y", (None, 5))
    with pytest.raises(sg.ShapeError, match=re.escape("shapes (x.shape[0], 4) and "
                                                      "(y.shape[0], 5) do not broadcast")):
        x + y
    fn = sg.function([x], x * 2)
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="must be a size"):
            fn.report(**{"x.shape[0]": bad})


def test_a_length_that_no_shifted_product_can_have_is_named_with_the_smallest_k():
    a = sg.placeholder("a", (None, 3))
    lab = sg.placeholder("lab", (None,))
    _ = a[1:].reshape(-1) + lab  # lab's length is 3*(n - 1), n >= 1
    fn = sg.function([lab], lab * 2)
    with pytest.raises(sg.ShapeError, match=re.escape("3*k - 3 for some k >= 1")):
        fn(np.ones(7, np.float32))
    np.testing.assert_array_equal(fn(np.ones(6, np.float32)), np.full(6, 2.0))
