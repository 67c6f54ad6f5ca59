"""`sg.function` semantics (output structure, updates, out=, shared state, symbolic dims) and
`sg.grad` semantics (fan-out, unrelated wrt, integer paths, gradients of gradients)."""
from __future__ import annotations

import inspect

import re

import numpy as np
import pytest

import symgrad as sg


# ------------------------------------------------------------------------------ output structure
def test_single_tensor_gives_an_array(backend):
    x = sg.placeholder("x", (3,), "float64")
    out = sg.function([x], x * 2, backend=backend)(np.array([1.0, 2.0, 3.0]))
    assert type(out) is np.ndarray
    np.testing.assert_array_equal(out, [2.0, 4.0, 6.0])


def test_list_gives_a_list_and_tuple_a_tuple(backend):
    x = sg.placeholder("x", (3,), "float64")
    a = np.array([1.0, -2.0, 3.0])
    as_list = sg.function([x], [x + 1, sg.sum(x)], backend=backend)(a)
    as_tuple = sg.function([x], (x + 1, sg.sum(x)), backend=backend)(a)
    one = sg.function([x], [sg.abs(x)], backend=backend)(a)
    assert type(as_list) is list and len(as_list) == 2
    assert type(as_tuple) is tuple and len(as_tuple) == 2
    assert type(one) is list and len(one) == 1
    for out in (as_list, as_tuple):
        np.testing.assert_array_equal(out[0], a + 1)
        assert out[1].shape == () and out[1] == 2.0
    np.testing.assert_array_equal(one[0], np.abs(a))


def test_scalar_output_is_a_0d_array(backend):
    x = sg.placeholder("x", (4,), "float32")
    out = sg.function([x], sg.mean(x), backend=backend)(np.arange(4, dtype=np.float32))
    assert isinstance(out, np.ndarray) and out.shape == () and out.dtype == np.float32
    assert out == 1.5


def test_outputs_are_fresh_arrays_the_caller_owns(backend):
    """An output that is an input (or a shared value) is a copy: writing into it changes
    neither the caller's array nor the shared state."""
    x = sg.placeholder("x", (3,), "float64")
    s = sg.shared(np.array([1.0, 2.0]), name="s")
    fn = sg.function([x], [x, s], backend=backend)
    a = np.array([1.0, 2.0, 3.0])
    out_x, out_s = fn(a)
    out_x[:] = -1
    out_s[:] = -1
    np.testing.assert_array_equal(a, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(s.get_value(), [1.0, 2.0])
    np.testing.assert_array_equal(fn(a)[0], [1.0, 2.0, 3.0])


def test_inputs_are_never_modified(backend):
    """Not even when non-contiguous or when an update reads them."""
    x = sg.placeholder("x", (None, 3), "float64")
    w = sg.shared(np.ones(3), name="w")
    fn = sg.function([x], sg.sum(x * w), updates=[(w, w + sg.sum(x, axis=0))],
                     backend=backend)
    base = np.arange(12.0).reshape(3, 4)
    view = base[:, 1:]           # (3, 3), not C-contiguous
    before = base.copy()
    out = fn(view)
    np.testing.assert_array_equal(base, before)
    np.testing.assert_allclose(out, np.sum(view))
    np.testing.assert_allclose(w.get_value(), 1 + view.sum(axis=0))
    frozen = np.ones((2, 3))
    frozen.setflags(write=False)
    fn(frozen)  # would raise if the call tried to write into it
    np.testing.assert_array_equal(frozen, np.ones((2, 3)))


def test_python_lists_and_scalars_are_converted(backend):
    x = sg.placeholder("x", (2,), "float64")
    y = sg.placeholder("y", (), "float64")
    fn = sg.function([x, y], x * y, backend=backend)
    np.testing.assert_array_equal(fn([1.0, 2.0], 3.0), [3.0, 6.0])
    np.testing.assert_array_equal(fn(np.array([1.0, 2.0]), np.float64(0.5)), [0.5, 1.0])


# ------------------------------------------------------------------------------ updates
def test_updates_apply_after_outputs_from_old_values(backend):
    a = sg.shared(np.array([1.0, 2.0]), name="a")
    fn = sg.function([], [a, a * 10], updates=[(a, a + 1)], backend=backend)
    out, out10 = fn()
    np.testing.assert_array_equal(out, [1.0, 2.0])
    np.testing.assert_array_equal(out10, [10.0, 20.0])
    np.testing.assert_array_equal(a.get_value(), [2.0, 3.0])
    out, _ = fn()
    np.testing.assert_array_equal(out, [2.0, 3.0])
    np.testing.assert_array_equal(a.get_value(), [3.0, 4.0])


def test_updates_are_simultaneous_swap(backend):
    a = sg.shared(np.array([1.0, 2.0, 3.0]), name="a")
    b = sg.shared(np.array([-1.0, -2.0, -3.0]), name="b")
    fn = sg.function([], [], updates=[(a, b), (b, a)], backend=backend)
    assert fn() == []
    np.testing.assert_array_equal(a.get_value(), [-1.0, -2.0, -3.0])
    np.testing.assert_array_equal(b.get_value(), [1.0, 2.0, 3.0])
    fn()
    np.testing.assert_array_equal(a.get_value(), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(b.get_value(), [-1.0, -2.0, -3.0])


def test_updates_read_old_values_of_each_other(backend):
    """Fibonacci: (a, b) <- (b, a + b) needs both old values."""
    a = sg.shared(np.array(0.0), name="a")
    b = sg.shared(np.array(1.0), name="b")
    fn = sg.function([], a, updates=[(a, b), (b, a + b)], backend=backend)
    seen = [float(fn()) for _ in range(8)]
    assert seen == [0.0, 1.0, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0]
    assert float(a.get_value()) == 21.0 and float(b.get_value()) == 34.0


def test_update_with_inputs_and_dict_form(backend):
    x = sg.placeholder("x", (2,), "float64")
    acc = sg.shared(np.zeros(2), name="acc")
    count = sg.shared(np.array(0, np.int64), name="count")
    fn = sg.function([x], sg.sum(acc), updates={acc: acc + x, count: count + 1},
                     backend=backend)
    assert float(fn(np.array([1.0, 2.0]))) == 0.0
    assert float(fn(np.array([3.0, 4.0]))) == 3.0
    np.testing.assert_array_equal(acc.get_value(), [4.0, 6.0])
    assert int(count.get_value()) == 2 and count.get_value().dtype == np.int64


def test_update_broadcasts_and_casts_to_the_shared_tensor(backend):
    s = sg.shared(np.ones((2, 3), np.float32), name="s")
    fn = sg.function([], [], updates=[(s, sg.constant(np.array([1.0, 2.0, 3.0])))],
                     backend=backend)
    fn()
    value = s.get_value()
    assert value.dtype == np.float32
    np.testing.assert_array_equal(value, np.tile([1.0, 2.0, 3.0], (2, 1)))


def test_update_errors():
    s = sg.shared(np.zeros(3), name="s")
    x = sg.placeholder("x", (3,), "float64")
    with pytest.raises(TypeError, match=r"updates\[0\]: the target must be a shared tensor"):
        sg.function([x], x, updates=[(x, x + 1)], backend="numpy")
    with pytest.raises(ValueError, match=r"updates\[1\]: shared tensor s is updated twice"):
        sg.function([], [], updates=[(s, s + 1), (s, s * 2)], backend="numpy")
    with pytest.raises(sg.ShapeError, match=r"new value of shape \(2, 3\) does not match s \(3,\)"):
        sg.function([], [], updates=[(s, sg.constant(np.zeros((2, 3))))], backend="numpy")
    with pytest.raises(sg.ShapeError, match=r"updates\[0\]: new value of shape \(4,\) does not "
                                            r"match s \(3,\)"):
        sg.function([], [], updates=[(s, sg.constant(np.zeros(4)))], backend="numpy")
    with pytest.raises(TypeError, match=r"cannot update int64 shared"):
        n = sg.shared(np.array(0, np.int64), name="n")
        sg.function([], [], updates=[(n, n + 0.5)], backend="numpy")


# ------------------------------------------------------------------------------ out=
def test_out_writes_into_the_given_arrays(backend):
    x = sg.placeholder("x", (None, 3), "float64")
    fn = sg.function([x], [x * 2, sg.sum(x, axis=1)], backend=backend)
    a = np.arange(6.0).reshape(2, 3)
    o1, o2 = np.empty((2, 3)), np.empty(2)
    result = fn(a, out=[o1, o2])
    assert result[0] is o1 and result[1] is o2
    np.testing.assert_array_equal(o1, a * 2)
    np.testing.assert_array_equal(o2, a.sum(axis=1))
    # the same buffers serve the next batch
    fn(a + 1, out=[o1, o2])
    np.testing.assert_array_equal(o1, (a + 1) * 2)


def test_out_single_output(backend):
    x = sg.placeholder("x", (3,), "float32")
    fn = sg.function([x], sg.exp(x), backend=backend)
    o = np.zeros(3, np.float32)
    r = fn(np.zeros(3, np.float32), out=o)
    assert r is o
    np.testing.assert_array_equal(o, np.ones(3, np.float32))


def test_out_rejects_wrong_arrays():
    x = sg.placeholder("x", (None, 3), "float64")
    fn = sg.function([x], [x * 2], backend="numpy")
    a = np.zeros((2, 3))
    with pytest.raises(sg.InputError, match=r"out\[0\]: expected a writable C-contiguous "
                                            r"\(2, 3\) float64 array, but its shape is \(3, 3\)"):
        fn(a, out=[np.empty((3, 3))])
    with pytest.raises(sg.InputError, match=r"but its dtype is float32"):
        fn(a, out=[np.empty((2, 3), np.float32)])
    with pytest.raises(sg.InputError, match="but it is not C-contiguous"):
        fn(a, out=[np.empty((3, 2)).T])
    read_only = np.empty((2, 3))
    read_only.flags.writeable = False
    with pytest.raises(sg.InputError, match="but it is read-only"):
        fn(a, out=[read_only])
    with pytest.raises(TypeError, match=r"out= takes 1 arrays, got 2"):
        fn(a, out=[np.empty((2, 3)), np.empty((2, 3))])
    two = sg.function([x], [x * 2, x + 1], backend="numpy")
    shared_memory = np.empty((2, 3))
    with pytest.raises(sg.InputError, match=r"out\[0\] and out\[1\] share memory"):
        two(a, out=[shared_memory, shared_memory])


def test_out_may_be_an_input(backend):
    """The step writes the output while it still reads the input in another order (reversed
    rows): the input is read from a copy, as numpy's ufuncs do."""
    x = sg.placeholder("x", (2, 64), "float32")
    fn = sg.function([x], x[:, ::-1] * 2 + 1, backend=backend)
    a = np.random.default_rng(0).standard_normal((2, 64)).astype(np.float32)
    expected = a[:, ::-1] * 2 + 1
    assert fn(a, out=a) is a
    np.testing.assert_allclose(a, expected, rtol=1e-6)
    # an output overlapping part of an input: rows 1-2 of a buffer whose rows 0-1 are read
    buffer = np.random.default_rng(1).standard_normal((3, 64)).astype(np.float32)
    expected = buffer[0:2, ::-1] * 2 + 1
    fn(buffer[0:2], out=buffer[1:3])
    np.testing.assert_allclose(buffer[1:3], expected, rtol=1e-6)


# ------------------------------------------------------------------------------ shared
def test_shared_get_and_set_value():
    init = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    w = sg.shared(init, name="w")
    init[0, 0] = 100.0  # the shared tensor owns a copy
    v = w.get_value()
    assert v.dtype == np.float32 and v[0, 0] == 1.0
    v[:] = 0  # get_value is a copy too
    assert w.get_value()[1, 1] == 4.0
    w.set_value(np.full((2, 2), 7.0))  # float64 -> float32, same kind
    np.testing.assert_array_equal(w.get_value(), np.full((2, 2), 7.0, np.float32))
    assert w.get_value().dtype == np.float32
    with pytest.raises(sg.ShapeError, match=r"set_value of w: expected shape \(2, 2\), got \(3,\)"):
        w.set_value(np.zeros(3))
    with pytest.raises(TypeError, match="only shared tensors have a value"):
        sg.placeholder("p", (2,)).get_value()
    assert sg.shared(1.5).dtype == np.float32  # Python floats default to float32
    assert sg.shared(np.float64(1.5)).dtype == np.float64  # a numpy scalar keeps its dtype
    scalar = sg.shared(np.array(2.0), name="scalar")
    assert scalar.shape == () and scalar.get_value().shape == ()
    scalar.set_value(3.0)
    assert scalar.get_value().shape == () and float(scalar.get_value()) == 3.0


def test_shared_is_seen_by_every_function_sharing_it(backend):
    w = sg.shared(np.array([1.0, 2.0]), name="w")
    read = sg.function([], w * 1.0, backend=backend)
    bump = sg.function([], [], updates=[(w, w * 3)], backend=backend)
    np.testing.assert_array_equal(read(), [1.0, 2.0])
    bump()
    np.testing.assert_array_equal(read(), [3.0, 6.0])
    w.set_value(np.array([-1.0, 0.5]))
    np.testing.assert_array_equal(read(), [-1.0, 0.5])
    bump()
    np.testing.assert_array_equal(w.get_value(), [-3.0, 1.5])


# ------------------------------------------------------------------------------ symbolic dims
def test_one_function_serves_batch_sizes_1_7_256(backend):
    x = sg.placeholder("x", (None, 5), "float64")
    t = sg.placeholder("t", (None,), "int64")
    w = sg.shared(np.random.default_rng(0).standard_normal((5, 3)), name="w")
    logits = x @ w
    loss = sg.cross_entropy(logits, t)
    fn = sg.function([x, t], [loss, sg.softmax(logits), sg.mean(x, axis=0), sg.grad(loss, w)],
                     backend=backend)
    rng = np.random.default_rng(1)
    for n in (1, 7, 256, 7, 1):
        xb, tb = rng.standard_normal((n, 5)), rng.integers(0, 3, n)
        l, p, m, g = fn(xb, tb)
        z = xb @ w.get_value()
        lse = np.logaddexp.reduce(z, axis=1)
        probs = np.exp(z - lse[:, None])
        assert p.shape == (n, 3) and m.shape == (5,) and g.shape == (5, 3)
        np.testing.assert_allclose(l, np.mean(lse - z[np.arange(n), tb]), rtol=1e-12)
        np.testing.assert_allclose(p, probs, rtol=1e-12)
        np.testing.assert_allclose(m, xb.mean(axis=0), rtol=1e-12, atol=1e-15)
        onehot = np.eye(3)[tb]
        np.testing.assert_allclose(g, xb.T @ (probs - onehot) / n, rtol=1e-10, atol=1e-14)


def test_named_dim_is_shared_between_placeholders(backend, dim_name):
    batch = dim_name()
    x = sg.placeholder("x", (batch, 3), "float64")
    y = sg.placeholder("y", (batch,), "float64")
    assert x.shape[0] is y.shape[0]
    fn = sg.function([x, y], x * y[:, None], backend=backend)
    for n in (1, 4):
        a, b = np.ones((n, 3)), np.arange(n, dtype=np.float64)
        np.testing.assert_array_equal(fn(a, b), a * b[:, None])
    with pytest.raises(sg.ShapeError, match=re.escape(f"input 'y': axis 0 has size 5, but "
                                                      f"symbolic dim {batch} is 4 from input "
                                                      "'x' (axis 0)")):
        fn(np.ones((4, 3)), np.ones(5))


def test_dims_unified_by_an_op_are_checked_at_call_time(backend):
    """cross_entropy ties the labels' batch to the logits' batch: a call that disagrees fails
    before running, naming the input."""
    x = sg.placeholder("logits", (None, 4), "float64")
    t = sg.placeholder("labels", (None,), "int64")
    fn = sg.function([x, t], sg.cross_entropy(x, t), backend=backend)
    assert np.isfinite(fn(np.zeros((3, 4)), np.array([0, 1, 2])))
    with pytest.raises(sg.ShapeError, match=r"input 'labels': axis 0 has size 2, but symbolic "
                                            r"dim .* is 3 from input 'logits' \(axis 0\)"):
        fn(np.zeros((3, 4)), np.array([0, 1]))


def test_symbolic_dim_never_broadcasts_as_1(backend):
    """A batch of 1 is still a batch: the sum over it has the batch's shape semantics."""
    x = sg.placeholder("x", (None, 2), "float64")
    fn = sg.function([x], [sg.sum(x, axis=0), x - sg.mean(x, axis=0, keepdims=True)],
                     backend=backend)
    s, centered = fn(np.array([[1.0, 2.0]]))
    np.testing.assert_array_equal(s, [1.0, 2.0])
    np.testing.assert_array_equal(centered, [[0.0, 0.0]])
    s, centered = fn(np.array([[1.0, 2.0], [3.0, 6.0]]))
    np.testing.assert_array_equal(s, [4.0, 8.0])
    np.testing.assert_array_equal(centered, [[-1.0, -2.0], [1.0, 2.0]])


def test_symbolic_reshape_and_empty_batch(backend):
    x = sg.placeholder("x", (None, 2, 3), "float64")
    flat = sg.reshape(x, (-1, 6))
    assert flat.shape[0] is x.shape[0]
    fn = sg.function([x], [flat, sg.sum(flat)], backend=backend)
    for n in (0, 1, 3):
        a = np.arange(n * 6, dtype=np.float64).reshape(n, 2, 3)
        f, s = fn(a)
        np.testing.assert_array_equal(f, a.reshape(n, 6))
        assert float(s) == a.sum()


def test_reshape_merges_a_symbolic_dim_with_numbers(backend):
    """(n, 5, 8) to (-1, 8) has 5*n rows, and back; a product dim keeps its value per call."""
    x = sg.placeholder("x", (None, 5, 8), "float64")
    flat = x.reshape(-1, 8)
    assert repr(flat.shape[0]) == f"5*{x.shape[0]!r}"
    assert flat.shape[0] is (x.shape[0] * 5)  # equal products are one dim
    back = flat.reshape(-1, 5, 8)
    assert back.shape[0] is x.shape[0]
    fn = sg.function([x], [flat, back * 2, x.reshape(-1)], backend=backend)
    mean = sg.function([x], sg.mean(flat, axis=0), backend=backend)
    for n in (0, 1, 3):
        a = np.arange(n * 40, dtype=np.float64).reshape(n, 5, 8)
        f, b2, v = fn(a)
        np.testing.assert_array_equal(f, a.reshape(-1, 8))
        np.testing.assert_array_equal(b2, 2 * a)
        np.testing.assert_array_equal(v, a.reshape(-1))
        if n:
            np.testing.assert_allclose(mean(a), a.reshape(-1, 8).mean(0), rtol=1e-15)


def test_a_product_of_symbolic_dims_flattens_tokens(backend, dim_name):
    """A token classifier: (B, T, d) flattened to (B*T, d), labels (B, T) to (B*T,), and the
    gradient reshaped back to (B, T, d); equal to numpy for several B and T."""
    B, T = dim_name("B"), dim_name("T")
    x = sg.placeholder("x", (B, T, 4), "float64")
    t = sg.placeholder("t", (B, T), "int64")
    rng = np.random.default_rng(0)
    wv = rng.standard_normal((4, 3))
    w = sg.shared(wv, name="w")
    rows = x.shape[0] * x.shape[1]
    logits = x.reshape(rows, 4) @ w
    loss = sg.cross_entropy(logits, t.reshape(-1))
    gx, gw = sg.grad(loss, [x, w])
    assert gx.shape == x.shape
    fn = sg.function([x, t], [logits, loss, gx, gw], backend=backend)
    for b, tt in ((2, 3), (1, 5), (4, 1)):
        xv, tv = rng.standard_normal((b, tt, 4)), rng.integers(0, 3, (b, tt))
        z = xv.reshape(-1, 4) @ wv
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        onehot = np.eye(3)[tv.reshape(-1)]
        got_z, got_loss, got_gx, got_gw = fn(xv, tv)
        np.testing.assert_allclose(got_z, z, rtol=1e-12)
        np.testing.assert_allclose(got_loss, -np.log(p[onehot == 1]).mean(), rtol=1e-12)
        dz = (p - onehot) / (b * tt)
        np.testing.assert_allclose(got_gw, xv.reshape(-1, 4).T @ dz, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(got_gx, (dz @ wv.T).reshape(b, tt, 4), rtol=1e-10,
                                   atol=1e-14)


def test_a_plain_dim_meeting_a_product_is_checked_per_call(backend, dim_name):
    """Labels (m,) meeting logits reshaped to (5*n, classes): m stands for 5*n, and a call whose
    labels disagree is refused, naming the input."""
    x = sg.placeholder("x", (dim_name("n"), 5, 3), "float64")
    t = sg.placeholder("t", (dim_name("m"),), "int64")
    loss = sg.cross_entropy(x.reshape(-1, 3), t)
    fn = sg.function([x, t], loss, backend=backend)
    xv = np.zeros((2, 5, 3))
    np.testing.assert_allclose(fn(xv, np.zeros(10, np.int64)), np.log(3))
    with pytest.raises(sg.ShapeError, match=r"input 't': axis 0 has size 9, but it is "
                                            r"5\*.* = 10 from the other inputs"):
        fn(xv, np.zeros(9, np.int64))
    # a function of the labels alone recovers n from them
    only = sg.function([t], t * 2, backend=backend)
    np.testing.assert_array_equal(only(np.arange(10)), np.arange(10) * 2)


def test_a_product_dim_meets_numbers_only_where_they_divide(dim_name):
    x = sg.placeholder("x", (dim_name("n"), 5, 2), "float64")
    flat = x.reshape(-1, 2)
    fixed = flat + np.ones((15, 2))
    assert fixed.shape == (15, 2)
    fn = sg.function([x], fixed)
    np.testing.assert_array_equal(fn(np.zeros((3, 5, 2))), np.ones((15, 2)))
    with pytest.raises(sg.ShapeError, match=r"expected shape \(3, 5, 2\)"):
        fn(np.zeros((2, 5, 2)))
    with pytest.raises(sg.ShapeError, match="do not broadcast"):
        flat + np.ones((14, 2))
    with pytest.raises(sg.ShapeError, match="do not broadcast"):
        flat[:, 0] + x[:, 0, 0]  # 5*n is never n
    tokens = sg.placeholder("y", (dim_name("B"), dim_name("T"), 2), "float64").reshape(-1, 2)
    with pytest.raises(sg.ShapeError, match="do not broadcast"):
        flat + tokens  # 5*n against B*T: not provable when the graph is built


def test_two_batches_flattened_alike_are_unified(backend):
    """Logits (None, 4, 6) and labels (None, 4), each flattened: 4*a meets 4*b, so a and b are
    one dim; a call whose batches differ is refused."""
    x = sg.placeholder("x", (None, 4, 6), "float64")
    lab = sg.placeholder("lab", (None, 4), "int64")
    loss = sg.cross_entropy(x.reshape(-1, 6), lab.reshape(-1))
    assert x.shape[0] is lab.shape[0]
    fn = sg.function([x, lab], loss, backend=backend)
    np.testing.assert_allclose(fn(np.zeros((2, 4, 6)), np.zeros((2, 4), np.int64)), np.log(6))
    with pytest.raises(sg.ShapeError, match="input 'lab'"):
        fn(np.zeros((2, 4, 6)), np.zeros((3, 4), np.int64))


def test_a_dim_found_only_inside_a_product_is_recovered(backend, dim_name):
    """l (None,) stands for 4*n after meeting y (n, 4, 3) flattened: a function of l alone gets
    n = len(l) / 4, and refuses a length 4 does not divide."""
    y = sg.placeholder("y", (dim_name("n"), 4, 3), "float64")
    lab = sg.placeholder("l", (dim_name("m"),), "float64")
    _ = y.reshape(-1, 3).sum(axis=1) + lab
    rows = lab.reshape(-1, 4)
    fn = sg.function([lab], [rows, sg.max(rows, axis=1)], backend=backend)
    got_rows, got_max = fn(np.arange(8.0))
    np.testing.assert_array_equal(got_rows, np.arange(8.0).reshape(2, 4))
    np.testing.assert_array_equal(got_max, [3.0, 7.0])
    assert fn(np.arange(0.0))[0].shape == (0, 4)
    with pytest.raises(sg.ShapeError, match=r"input 'l': axis 0 has size 5, .*multiple of 4"):
        fn(np.arange(5.0))


def test_a_dim_no_input_determines_is_refused_at_build(backend, dim_name):
    x = sg.placeholder("x", (dim_name("B"), dim_name("T"), 3))
    lab = sg.placeholder("lab", (None,), "int64")
    sg.cross_entropy(x.reshape(-1, 3), lab)  # lab now stands for B*T
    np.testing.assert_array_equal(sg.function([lab], lab * 2, backend=backend)(np.arange(3)),
                                  [0, 2, 4])  # B*T bound as a whole
    with pytest.raises(ValueError, match=r"dim .*B.* of reshape .* is not bound by any input"):
        sg.function([lab], lab.reshape(-1, x.shape[1]), backend=backend)


# ---------------------------------------------------------------- slices of symbolic dims
def _numeric_grad(f, v, eps=1e-6):
    grad = np.zeros_like(v)
    for i in np.ndindex(v.shape):
        e = np.zeros_like(v)
        e[i] = eps
        grad[i] = (f(v + e) - f(v - e)) / (2 * eps)
    return grad


def test_slices_of_a_symbolic_dim(backend, dim_name):
    """Differences, ends and windows of a signal of any length (x[1:] - x[:-1], x[-1], x[-3:],
    x[1:-1], x[:2]): values and the gradient equal numpy's for several lengths."""
    x = sg.placeholder("x", (dim_name("n"),), "float64")
    diff = x[1:] - x[:-1]
    assert str(diff.shape) == f"({x.shape[0]} - 1,)"
    inner = x[1:-1]
    cost = (sg.sum(diff * diff) + 2.0 * x[-1] + x[0] + sg.sum(sg.exp(x[-3:]))
            + sg.sum(sg.sin(inner)) + sg.sum(x[:2] * x[-2:]))
    (grad,) = sg.grad(cost, [x])

    def reference(v):
        return (np.sum(np.diff(v) ** 2) + 2 * v[-1] + v[0] + np.exp(v[-3:]).sum()
                + np.sin(v[1:-1]).sum() + np.sum(v[:2] * v[-2:]))

    fn = sg.function([x], [diff, inner, cost, grad], backend=backend)
    rng = np.random.default_rng(0)
    for n in (3, 4, 9, 40):
        v = rng.standard_normal(n)
        got_diff, got_inner, got_cost, got_grad = fn(v)
        np.testing.assert_array_equal(got_diff, np.diff(v))
        np.testing.assert_array_equal(got_inner, v[1:-1])
        np.testing.assert_allclose(got_cost, reference(v), rtol=1e-13)
        np.testing.assert_allclose(got_grad, _numeric_grad(reference, v), rtol=1e-7, atol=1e-7)


def test_a_dim_known_as_n_plus_3_is_recovered_or_refused(backend):
    """z (None,) added to v padded by 3 stands for len(v) + 3: a function of z alone gets
    len(v) = len(z) - 3 and refuses a z shorter than 3; sums of two symbolic dims are refused
    when built."""
    v = sg.placeholder("v", (None,), "float64")
    z = sg.placeholder("z", (None,), "float64")
    padded = sg.concatenate([v, sg.constant(np.zeros(3))]) + z
    assert str(padded.shape) == f"({v.shape[0]} + 3,)"
    fn = sg.function([z], z[:-3] * 2, backend=backend)
    np.testing.assert_array_equal(fn(np.arange(5.0)), [0.0, 2.0])
    with pytest.raises(sg.ShapeError, match=r"input 'z': axis 0 has size 2, but it is "
                                            r"v.shape\[0\] \+ 3, at least 3"):
        fn(np.arange(2.0))
    w = sg.placeholder("w", (None,), "float64")
    with pytest.raises(sg.ShapeError, match=r"v.shape\[0\] \+ w.shape\[0\] is not a dim "
                                            r"symgrad can represent"):
        v.shape[0] + w.shape[0]


def test_reversing_a_symbolic_axis(backend):
    """x[::-1] along a symbolic axis (a backward sequence), at lengths 0, 1 and 6, with the
    gradient of a cost that mixes the reversed and the plain order."""
    x = sg.placeholder("x", (None, 3), "float64")
    weights = np.array([1.0, -2.0, 0.5])
    reversed_x = x[::-1]
    assert reversed_x.shape[0] is x.shape[0]
    cost = sg.sum(sg.sin(reversed_x) * weights) + sg.sum(sg.exp(reversed_x) * x)
    (grad,) = sg.grad(cost, [x])
    fn = sg.function([x], [reversed_x, grad], backend=backend)

    for n in (0, 1, 6):
        v = np.random.default_rng(n).standard_normal((n, 3))
        got_reversed, got_grad = fn(v)
        np.testing.assert_array_equal(got_reversed, v[::-1])
        # d/dx_j of sum_i exp(x_{n-1-i}) x_i is exp(x_{n-1-j}) + x_{n-1-j} exp(x_j)
        want = np.cos(v) * weights + np.exp(v[::-1]) + v[::-1] * np.exp(v)
        np.testing.assert_allclose(got_grad, want, rtol=1e-13)


def test_a_slice_longer_than_the_call_is_refused(backend):
    """numpy clamps x[-3:] of 2 elements to 2; a graph's shapes are exact, so the call is
    refused, naming the slice and where it was built, on every backend."""
    x = sg.placeholder("x", (None,), "float64")
    fn = sg.function([x], sg.sum(x[-3:]), backend=backend)
    np.testing.assert_allclose(fn(np.arange(3.0)), 3.0)
    tail = sg.function([x], x[2:], backend=backend)
    assert tail(np.arange(2.0)).shape == (0,)  # x[2:] of two elements is empty, as in numpy
    with pytest.raises(sg.ShapeError, match=r"slice \[x.shape\[0\] - 3:\] along axis 0 "
                                            r"\(built at .*test_function.py:\d+\) needs "
                                            r"0 <= -1 <= 2 <= 2"):
        fn(np.arange(2.0))
    with pytest.raises(sg.ShapeError, match=r"slice \[2:\]"):
        tail(np.arange(1.0))


def test_an_optimized_slice_keeps_the_users_line_in_errors(backend):
    """CSE rebuilds x[::-1][1:] over the one x[::-1] it keeps: the rebuilt slice's error still
    names the user's line, not the sg.function call's."""
    x = sg.placeholder("x", (None, 3), "float64")
    outs = [x[::-1], x[::-1][1:]]
    line = inspect.currentframe().f_lineno - 1
    fn = sg.function([x], outs, backend=backend)
    with pytest.raises(sg.ShapeError, match=rf"slice \[1:\] along axis 0 \(built at "
                                            rf"test_function.py:{line}\)"):
        fn(np.zeros((0, 3)))


def test_next_token_loss_over_symbolic_batch_and_length(backend):
    """The language-model loss: inputs x[:, :-1], targets t[:, 1:], flattened to B*(T - 1)
    rows; loss and weight gradient equal numpy's closed form for several (B, T)."""
    x = sg.placeholder("x", ("B", "T", 4), "float64")
    t = sg.placeholder("t", ("B", "T"), "int64")
    rng = np.random.default_rng(1)
    wv = rng.standard_normal((4, 3))
    w = sg.shared(wv, name="w")
    logits = (x[:, :-1] @ w).reshape(-1, 3)
    targets = t[:, 1:].reshape(-1)
    assert str(logits.shape[0]) == "B*(T - 1)" and targets.shape[0] is logits.shape[0]
    loss = sg.cross_entropy(logits, targets)
    (gw,) = sg.grad(loss, [w])
    fn = sg.function([x, t], [loss, gw], backend=backend)
    for b, tt in ((2, 5), (3, 2), (1, 7)):
        xv, tv = rng.standard_normal((b, tt, 4)), rng.integers(0, 3, (b, tt))
        z = xv[:, :-1].reshape(-1, 4) @ wv
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        onehot = np.eye(3)[tv[:, 1:].reshape(-1)]
        got_loss, got_gw = fn(xv, tv)
        np.testing.assert_allclose(got_loss, -np.log(p[onehot == 1]).mean(), rtol=1e-12)
        np.testing.assert_allclose(got_gw, xv[:, :-1].reshape(-1, 4).T @ (p - onehot) / len(z),
                                   rtol=1e-10, atol=1e-14)


def test_concatenate_along_a_symbolic_dim(backend):
    """n + n = 2n, n + 3, and (n - 1) + 1 = n (a roll): values and gradients; n + m is not a
    dim and is refused when the graph is built."""
    v = sg.placeholder("v", (None,), "float64")
    rolled = sg.concatenate([v[1:], v[:1]])
    twice = sg.concatenate([v, v])
    padded = sg.concatenate([v, sg.constant(np.zeros(3))])
    assert rolled.shape[0] is v.shape[0]
    assert str(twice.shape) == "(2*v.shape[0],)" and str(padded.shape) == "(v.shape[0] + 3,)"
    cost = sg.sum(rolled * sg.exp(rolled)) + sg.sum(twice ** 2) + sg.sum(sg.sin(padded))
    (grad,) = sg.grad(cost, [v])
    fn = sg.function([v], [rolled, twice, padded, grad], backend=backend)
    for n in (1, 6):
        x = np.random.default_rng(n).standard_normal(n)
        got = fn(x)
        np.testing.assert_array_equal(got[0], np.roll(x, -1))
        np.testing.assert_array_equal(got[1], np.r_[x, x])
        np.testing.assert_array_equal(got[2], np.r_[x, np.zeros(3)])
        np.testing.assert_allclose(got[3], np.exp(x) * (1 + x) + 4 * x + np.cos(x), rtol=1e-13)


def test_a_plain_dim_meeting_a_shifted_one(backend):
    """z (None,) added to w[1:] stands for len(w) - 1: checked per call, and a function of z
    alone with w's slice recovers len(w) = len(z) + 1."""
    w = sg.placeholder("w", (None,), "float64")
    z = sg.placeholder("z", (None,), "float64")
    total = w[1:] + z
    assert str(total.shape) == f"({w.shape[0]} - 1,)"
    fn = sg.function([w, z], total, backend=backend)
    np.testing.assert_array_equal(fn(np.arange(4.0), np.ones(3)), [2.0, 3.0, 4.0])
    with pytest.raises(sg.ShapeError, match=r"input 'z': axis 0 has size 4, but it is "
                                            r"w.shape\[0\] - 1 = 3"):
        fn(np.arange(4.0), np.ones(4))
    only_z = sg.function([z], sg.concatenate([z, z[:1]]) * 2, backend=backend)
    np.testing.assert_array_equal(only_z(np.arange(3.0)), [0.0, 2.0, 4.0, 0.0])


# ------------------------------------------------------------------------------ gradients
def _run(inputs, outputs, *arrays, backend="numpy"):
    return sg.function(inputs, outputs, backend=backend)(*arrays)


def test_gradients_accumulate_on_fan_out(backend):
    x = sg.placeholder("x", (5,), "float64")
    y = sg.exp(x)
    cost = sg.sum(x * x + sg.sin(x) * x + y * y + y)  # x used 4 times, y twice
    a = np.linspace(-1, 1, 5)
    g = _run([x], sg.grad(cost, x), a, backend=backend)
    expected = 2 * a + np.cos(a) * a + np.sin(a) + 2 * np.exp(2 * a) + np.exp(a)
    np.testing.assert_allclose(g, expected, rtol=1e-12)


def test_fan_out_through_broadcast_and_reuse(backend):
    b = sg.placeholder("b", (3,), "float64")
    x = sg.placeholder("x", (4, 3), "float64")
    cost = sg.sum((x + b) * b) + sg.sum(b)
    gb, gx = _run([b, x], sg.grad(cost, [b, x]), np.array([1.0, 2.0, 3.0]),
                  np.arange(12.0).reshape(4, 3), backend=backend)
    xa, ba = np.arange(12.0).reshape(4, 3), np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(gb, (xa + 2 * ba).sum(axis=0) + 1, rtol=1e-12)
    np.testing.assert_allclose(gx, np.broadcast_to(ba, (4, 3)), rtol=1e-12)


def test_unrelated_wrt_gets_zeros(backend):
    x = sg.placeholder("x", (3,), "float64")
    z = sg.placeholder("z", (2, 2), "float32")
    s = sg.shared(np.ones(4), name="s")
    cost = sg.sum(x * x)
    grads = sg.grad(cost, [x, z, s])
    gx, gz, gs = _run([x, z], grads, np.array([1.0, 2.0, 3.0]), np.ones((2, 2), np.float32),
                      backend=backend)
    np.testing.assert_array_equal(gx, [2.0, 4.0, 6.0])
    assert gz.shape == (2, 2) and gz.dtype == np.float32 and not gz.any()
    assert gs.shape == (4,) and gs.dtype == np.float64 and not gs.any()


def test_single_wrt_in_single_out_and_list_in_list_out():
    x = sg.placeholder("x", (3,), "float64")
    cost = sg.sum(x)
    assert isinstance(sg.grad(cost, x), sg.Tensor)
    out = sg.grad(cost, [x])
    assert isinstance(out, list) and len(out) == 1


def test_integer_paths_carry_no_gradient(backend):
    x = sg.placeholder("x", (4,), "float64")
    a = np.array([0.3, 1.7, -2.2, 2.9])
    # the rounded copy of x goes through int64 and back: only the direct factor is seen
    through_int = x.astype("int64").astype("float64")
    cost = sg.sum(through_int * x)
    np.testing.assert_array_equal(_run([x], sg.grad(cost, x), a, backend=backend),
                                  a.astype(np.int64).astype(np.float64))
    # the argmax / comparison paths give nothing; take routes the gradient to the chosen element
    cost2 = sg.sum(sg.take(x, sg.argmax(x))) + sg.sum(sg.where(x > 0, 1.0, 0.0))
    np.testing.assert_array_equal(_run([x], sg.grad(cost2, x), a, backend=backend),
                                  [0.0, 0.0, 0.0, 1.0])
    # a boolean mask used as a float factor carries no gradient either
    cost3 = sg.sum((x > 1.0).astype("float64") * x)
    np.testing.assert_array_equal(_run([x], sg.grad(cost3, x), a, backend=backend),
                                  [0.0, 1.0, 0.0, 1.0])


def test_cast_gradient_comes_back_in_the_input_dtype(backend):
    x = sg.placeholder("x", (3,), "float64")
    w = np.array([0.1, 1.0 / 3.0, 7.0])
    cost = sg.sum(x.astype("float32") * sg.constant(w.astype(np.float32)))
    g = _run([x], sg.grad(cost, x), np.ones(3), backend=backend)
    assert g.dtype == np.float64
    np.testing.assert_array_equal(g, w.astype(np.float32).astype(np.float64))


def test_grad_of_a_shared_tensor(backend):
    w = sg.shared(np.array([1.0, -2.0, 0.5]), name="w")
    cost = sg.sum(w ** 3)
    g = _run([], sg.grad(cost, w), backend=backend)
    np.testing.assert_allclose(g, 3 * w.get_value() ** 2, rtol=1e-12)


def _smooth_cost(x, w):
    """A smooth cost of W (for the Hessian-vector product)."""
    cost = sg.sum(sg.tanh(x @ w) * sg.constant(C)) + 0.1 * sg.sum(w ** 4)
    return cost


C = np.random.default_rng(3).standard_normal((5, 2))


def test_hessian_vector_product_matches_finite_differences(backend):
    rng = np.random.default_rng(4)
    xa, wa, va = rng.standard_normal((5, 3)), rng.standard_normal((3, 2)), \
        rng.standard_normal((3, 2))
    x = sg.placeholder("x", (5, 3), "float64")
    w = sg.placeholder("w", (3, 2), "float64")
    v = sg.placeholder("v", (3, 2), "float64")
    cost = _smooth_cost(x, w)
    g = sg.grad(cost, w)
    hvp = sg.grad(sg.sum(g * v), w)
    fn_g = sg.function([x, w], g, backend=backend)
    fn_hvp = sg.function([x, w, v], hvp, backend=backend)

    # the gradient itself against the hand derivation
    t = np.tanh(xa @ wa)
    np.testing.assert_allclose(fn_g(xa, wa), xa.T @ (C * (1 - t * t)) + 0.4 * wa ** 3,
                               rtol=1e-12)
    # H v ~ (g(w + eps v) - g(w - eps v)) / (2 eps)
    eps = 1e-5
    numeric = (fn_g(xa, wa + eps * va) - fn_g(xa, wa - eps * va)) / (2 * eps)
    np.testing.assert_allclose(fn_hvp(xa, wa, va), numeric, rtol=1e-6, atol=1e-8)


def test_grad_of_grad_of_a_simple_function(backend):
    """d/dx of (d/dx x^3) summed with v: 6 x v, exactly."""
    x = sg.placeholder("x", (4,), "float64")
    gx = sg.grad(sg.sum(x ** 3), x)
    h = sg.grad(sg.sum(gx * np.array([1.0, 2.0, 3.0, 4.0])), x)
    a = np.array([0.5, -1.0, 2.0, 3.0])
    g1, g2 = _run([x], [gx, h], a, backend=backend)
    np.testing.assert_allclose(g1, 3 * a ** 2, rtol=1e-13)
    np.testing.assert_allclose(g2, 6 * a * np.array([1.0, 2.0, 3.0, 4.0]), rtol=1e-13)


def test_gradient_graph_runs_with_symbolic_batch(backend):
    x = sg.placeholder("x", (None, 3), "float64")
    w = sg.shared(np.array([[1.0], [2.0], [-1.0]]), name="w")
    cost = sg.mean(sg.square(x @ w))
    fn = sg.function([x], sg.grad(cost, w), backend=backend)
    for n in (1, 6):
        xa = np.random.default_rng(n).standard_normal((n, 3))
        np.testing.assert_allclose(fn(xa), 2 * xa.T @ (xa @ w.get_value()) / n, rtol=1e-12)


def test_threads_calling_one_function_each_get_their_own_results(backend):
    """The step runs with the GIL released: calls from several threads must not share the
    program's workspace or argument table while one of them runs."""
    import threading
    x = sg.placeholder("x", (None, 128))
    w = sg.shared(np.random.default_rng(0).standard_normal((128, 128)).astype(np.float32) * 0.1)
    fn = sg.function([x], sg.sum(sg.tanh(sg.relu(x @ w) @ w), axis=1), backend=backend)
    wv = w.get_value()
    wrong = []

    def work(seed):
        rng = np.random.default_rng(seed)
        for _ in range(60):
            xv = rng.standard_normal((64, 128)).astype(np.float32)
            expected = np.sum(np.tanh(np.maximum(xv @ wv, 0) @ wv), axis=1)
            if not np.allclose(fn(xv), expected, rtol=1e-3, atol=1e-3):
                wrong.append(seed)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not wrong


def test_gradients_of_take_and_pooling_at_batch_zero(backend):
    """The adjoints of take (scatter_add) and max pooling on an empty batch: zero-size
    gradients on every backend (numpy's reshape(-1) is ambiguous there)."""
    p = sg.placeholder("p", (None, 3), "float64")
    g = sg.grad(sg.sum(sg.take(p, sg.constant(np.array([0, 2])), axis=1)), p)
    assert sg.function([p], g, backend=backend)(np.ones((0, 3))).shape == (0, 3)
    x = sg.placeholder("x", (None, 2, 4, 4), "float64")
    gx = sg.grad(sg.sum(sg.max_pool2d(x, 2)) + sg.sum(sg.avg_pool2d(x, 2)), x)
    assert sg.function([x], gx, backend=backend)(np.ones((0, 2, 4, 4))).shape == (0, 2, 4, 4)


def test_report_returns_its_text_without_printing_it(capsys):
    x = sg.placeholder("x", ("rows_for_report", 3))
    report = sg.function([x], sg.exp(x) * 2).report(rows_for_report=5)
    assert capsys.readouterr().out == ""
    assert isinstance(report, str) and repr(report) == str(report)
    assert report.startswith("1 kernel, backend=c") and "%1 exp" in report


def test_report_refuses_a_dim_name_it_does_not_have():
    x = sg.placeholder("x", ("rows_for_report", 3))
    fn = sg.function([x], x * 2)
    assert "rows_for_report=7" in fn.report(rows_for_report=7)
    with pytest.raises(TypeError, match="no symbolic dim named batch; this function's are: "
                                        "rows_for_report"):
        fn.report(batch=7)


def test_report_takes_sizes_in_order_for_unnamed_dims():
    """A None dim's name (x.shape[0]) is no keyword: its size may be given in order."""
    x = sg.placeholder("x", (None, 3))
    y = sg.placeholder("y", (None,))
    fn = sg.function([x, y], [x * 2, y + 1])
    assert "(x.shape[0]=256, y.shape[0]=1)" in fn.report(256)
    assert "(x.shape[0]=256, y.shape[0]=9)" in fn.report(256, 9)
    assert "12,288 B" in fn.report(512)  # x * 2 moves 2 * 512 * 3 floats
    with pytest.raises(TypeError, match=r"3 sizes given, but this function has 2 symbolic dims "
                                        r"\(x.shape\[0\], y.shape\[0\]\)"):
        fn.report(1, 2, 3)
