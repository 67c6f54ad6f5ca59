"""Property tests (hypothesis): broadcasting binary ops and reductions over random shapes and
axes, values against numpy and gradients against their closed forms; tie rules of the
non-smooth ops."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import symgrad as sg

SETTINGS = settings(max_examples=20, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def broadcast_pair(draw):
    """Two shapes that broadcast: each dim of each operand is the common dim or 1 (or absent)."""
    ndim = draw(st.integers(0, 3))
    common = draw(st.lists(st.integers(1, 3), min_size=ndim, max_size=ndim))
    shapes = []
    for _ in range(2):
        drop = draw(st.integers(0, ndim))
        dims = [d if draw(st.booleans()) else 1 for d in common[drop:]]
        shapes.append(tuple(dims))
    return shapes


OPS = {
    "add": (lambda a, b: a + b, np.add, lambda a, b: (np.ones_like(a), np.ones_like(b))),
    "sub": (lambda a, b: a - b, np.subtract, lambda a, b: (np.ones_like(a), -np.ones_like(b))),
    "mul": (lambda a, b: a * b, np.multiply, lambda a, b: (b, a)),
    "div": (lambda a, b: a / b, np.divide, lambda a, b: (1 / b, -a / b ** 2)),
}


def unbroadcast(g, shape):
    """Sum g down to `shape` (the broadcasting adjoint), written independently of symgrad."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for axis, d in enumerate(shape):
        if d == 1 and g.shape[axis] != 1:
            g = g.sum(axis=axis, keepdims=True)
    return g


@pytest.mark.parametrize("name", sorted(OPS))
@SETTINGS
@given(shapes=broadcast_pair(), seed=st.integers(0, 2 ** 16))
def test_broadcast_binary_values_and_gradients(name, shapes, seed, backend):
    build, np_fn, local = OPS[name]
    (sa, sb), rng = shapes, np.random.default_rng(seed)
    a = rng.uniform(0.5, 2.0, sa) * rng.choice([-1.0, 1.0], sa)
    b = rng.uniform(0.5, 2.0, sb) * rng.choice([-1.0, 1.0], sb)
    pa, pb = sg.placeholder("a", sa, "float64"), sg.placeholder("b", sb, "float64")
    out = build(pa, pb)
    w = rng.standard_normal(np.broadcast_shapes(sa, sb))
    ga, gb = sg.grad(sg.sum(out * sg.constant(w)), [pa, pb])
    value, got_a, got_b = sg.function([pa, pb], [out, ga, gb], backend=backend)(a, b)
    np.testing.assert_allclose(value, np_fn(a, b), rtol=1e-14)
    la, lb = local(np.broadcast_to(a, w.shape), np.broadcast_to(b, w.shape))
    np.testing.assert_allclose(got_a, unbroadcast(w * la, sa), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got_b, unbroadcast(w * lb, sb), rtol=1e-12, atol=1e-14)


@st.composite
def shape_and_axis(draw):
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=4)))
    axes = draw(st.one_of(
        st.none(),
        st.integers(-len(shape), len(shape) - 1),
        st.sets(st.integers(0, len(shape) - 1), min_size=1).map(tuple)))
    return shape, axes, draw(st.booleans())


@SETTINGS
@given(spec=shape_and_axis(), seed=st.integers(0, 2 ** 16))
def test_reductions_random_axes(spec, seed, backend):
    shape, axis, keepdims = spec
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    x = rng.permutation(np.linspace(-2, 2, n)).reshape(shape)  # distinct: no ties
    px = sg.placeholder("x", shape, "float64")
    outs = [sg.sum(px, axis, keepdims), sg.mean(px, axis, keepdims), sg.max(px, axis, keepdims),
            sg.min(px, axis, keepdims), sg.logsumexp(px, axis, keepdims)]
    grads = [sg.grad(sg.sum(o), px) for o in outs]
    got = sg.function([px], outs + grads, backend=backend)(x)
    expected = [np.sum(x, axis, keepdims=keepdims), np.mean(x, axis, keepdims=keepdims),
                np.max(x, axis, keepdims=keepdims), np.min(x, axis, keepdims=keepdims)]
    for g, e in zip(got, expected):
        assert g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=1e-13, atol=1e-14)
    lse = np.log(np.sum(np.exp(x), axis=axis, keepdims=True))
    # a log-sum near 0 (-3.7e-4) is a difference of O(1) terms: its last digits are noise in
    # the reference too, so the bound is absolute there
    np.testing.assert_allclose(got[4], lse if keepdims else np.squeeze(lse, axis=axis),
                               rtol=1e-13, atol=1e-15)
    count = x.size // np.sum(x, axis, keepdims=True).size
    np.testing.assert_allclose(got[5], np.ones_like(x), rtol=1e-14)
    np.testing.assert_allclose(got[6], np.full_like(x, 1 / count), rtol=1e-14)
    is_max = x == np.max(x, axis, keepdims=True)
    is_min = x == np.min(x, axis, keepdims=True)
    np.testing.assert_array_equal(got[7], is_max.astype(float))
    np.testing.assert_array_equal(got[8], is_min.astype(float))
    np.testing.assert_allclose(got[9], np.exp(x - lse), rtol=1e-12)


def test_tie_rules(backend):
    """Documented tie rules of the non-smooth ops: maximum/minimum (and so clip) give a tie's
    gradient to the first operand; max/min reductions split it evenly; relu'(0) = 0."""
    x = sg.placeholder("x", (4,), "float64")
    y = sg.placeholder("y", (4,), "float64")
    costs = [sg.sum(sg.maximum(x, y)), sg.sum(sg.minimum(x, y)),
             sg.sum(sg.clip(x, -1.0, 1.0)), sg.max(x), sg.sum(sg.relu(x))]
    grads = [g for c in costs for g in sg.grad(c, [x, y])]
    a = np.array([1.0, -1.0, 1.0, 0.0])
    b = np.array([1.0, 2.0, -3.0, 0.0])
    out = sg.function([x, y], grads, backend=backend)(a, b)
    np.testing.assert_array_equal(out[0], [1, 0, 1, 1])   # maximum: tie -> x
    np.testing.assert_array_equal(out[1], [0, 1, 0, 0])
    np.testing.assert_array_equal(out[2], [1, 1, 0, 1])   # minimum: tie -> x
    np.testing.assert_array_equal(out[3], [0, 0, 1, 0])
    np.testing.assert_array_equal(out[4], [1, 1, 1, 1])   # clip at its bounds passes through
    np.testing.assert_array_equal(out[6], [0.5, 0, 0.5, 0])  # max: split between the two 1.0
    np.testing.assert_array_equal(out[8], [1, 0, 1, 0])   # relu'(0) = 0


def test_integer_results_keep_numpys_dtypes(backend):
    """An int to an int power stays an int (exact past 2**53, wrapping like numpy); sums of
    int32 and bool are int64; argmax over all axes with keepdims keeps every axis."""
    i64 = sg.placeholder("i64", (4,), "int64")
    i32 = sg.placeholder("i32", (3,), "int32")
    flags = sg.placeholder("flags", (3,), "bool")
    x = sg.placeholder("x", (2, 3, 4), "float64")
    outputs = [i64 ** 0, i64 ** 3, i64 ** 7, i32 ** 3, sg.sum(i32), sg.sum(flags),
               sg.argmax(x, keepdims=True)]
    big = np.array([2 ** 20 + 1, 3, -7, 0])
    small = np.array([2 ** 31 - 1, 2 ** 31 - 1, -5], np.int32)
    bits = np.array([True, False, True])
    xv = np.random.default_rng(0).standard_normal((2, 3, 4))
    got = sg.function([i64, i32, flags, x], outputs, backend=backend)(big, small, bits, xv)
    with np.errstate(over="ignore"):
        expected = [big ** 0, big ** 3, big ** 7, small ** 3, np.sum(small), np.sum(bits),
                    np.argmax(xv, keepdims=True)]
    for g, e in zip(got, expected):
        assert g.dtype == e.dtype and g.shape == e.shape, (g.dtype, e.dtype, g.shape, e.shape)
        np.testing.assert_array_equal(g, e)


@pytest.mark.parametrize("opt_level", [0, 2])
def test_integer_overflow_wraps_and_relu_of_minus_zero_is_zero(backend, opt_level):
    """As numpy: int32/int64 arithmetic wraps (the fused C must not fold (j + 1) > j to true),
    and relu(-0.0) is +0.0 (so 1/relu(x) is +inf there)."""
    j = sg.placeholder("j", (2,), "int32")
    k = sg.placeholder("k", (2,), "int64")
    x = sg.placeholder("x", (2,), "float64")
    fn = sg.function([j, k, x], [(j + 1) > j, (k + 1) > k, 1 / sg.relu(x)], backend=backend,
                     opt_level=opt_level)
    with np.errstate(divide="ignore"):
        got = fn(np.array([2 ** 31 - 1, 5], np.int32), np.array([2 ** 63 - 1, 5], np.int64),
                 np.array([-0.0, 2.0]))
    np.testing.assert_array_equal(got[0], [False, True])
    np.testing.assert_array_equal(got[1], [False, True])
    np.testing.assert_array_equal(got[2], [np.inf, 0.5])



@pytest.mark.parametrize("opt_level", [0, 2])
def test_maximum_and_minimum_match_numpy_bit_for_bit(backend, opt_level):
    """NaN on either side wins, a tie gives the second operand (so the sign of a zero follows
    numpy's), with a tensor or a literal as the second operand."""
    a = sg.placeholder("a", (None,), "float32")
    b = sg.placeholder("b", (None,), "float32")
    outs = [sg.maximum(a, b), sg.minimum(a, b), sg.maximum(a, 0.0), sg.minimum(a, -0.0),
            sg.maximum(a, -np.inf), sg.relu(a)]
    fn = sg.function([a, b], outs, backend=backend, opt_level=opt_level)
    values = np.array([np.nan, -0.0, 0.0, 1.0, -1.0, np.inf, -np.inf], np.float32)
    av, bv = (np.repeat(values, 7), np.tile(values, 7))
    av, bv = np.tile(av, 5), np.tile(bv, 5)  # long enough for the vectorized loop body
    expected = [np.maximum(av, bv), np.minimum(av, bv), np.maximum(av, np.float32(0.0)),
                np.minimum(av, np.float32(-0.0)), np.maximum(av, np.float32(-np.inf)),
                np.maximum(av, np.float32(0.0))]
    for got, want in zip(fn(av, bv), expected):
        assert got.tobytes() == want.tobytes()

@st.composite
def symbolic_reshape(draw):
    """A shape (n, *rest) whose n is symbolic, and a reshape target with -1 that folds n into a
    product with a prefix of rest (the rest of rest kept, or merged into one dim)."""
    rest = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    split = draw(st.integers(0, len(rest)))
    tail = rest[split:]
    if tail and draw(st.booleans()):
        tail = (int(np.prod(tail)),)
    return rest, (-1,) + tail, draw(st.sampled_from([1, 3]))


@SETTINGS
@given(case=symbolic_reshape())
def test_reshape_of_a_symbolic_dim_matches_numpy(backend, case):
    """x of shape (None, *rest) reshaped with -1 (a product of the batch and numbers), then an
    element-wise op, a reduction over the product axis and a gradient back through it."""
    rest, target, n = case
    x = sg.placeholder("x", (None,) + rest, "float64")
    y = x.reshape(target)
    cost = sg.sum(sg.sin(y))
    fn = sg.function([x], [y * 2 + 1, sg.sum(y, axis=0), sg.grad(cost, x)], backend=backend)
    xv = np.random.default_rng(n).standard_normal((n,) + rest)
    yv = xv.reshape(target)
    got = fn(xv)
    np.testing.assert_allclose(got[0], yv * 2 + 1, rtol=1e-15)
    np.testing.assert_allclose(got[1], yv.sum(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[2], np.cos(xv), rtol=1e-15)


@st.composite
def symbolic_slices(draw):
    """Two chained slices along a symbolic axis, each a reversal or a step-1 slice whose bounds
    are None or ints of either sign, and a call length."""
    def one():
        if draw(st.integers(0, 5)) == 0:
            return slice(None, None, -1)
        start = draw(st.sampled_from([None, 0, 1, 2, -1, -2, -3]))
        stop = draw(st.sampled_from([None, 1, 3, -1, -2]))
        return slice(start, stop)
    return one(), one(), draw(st.integers(6, 9))


@SETTINGS
@given(case=symbolic_slices())
def test_slices_of_a_symbolic_dim_match_numpy(backend, case):
    """x (None, 2) sliced twice along the symbolic axis: the value, a reduction and the
    gradient equal numpy's; a slice symgrad cannot express is an IndexError when built."""
    first, second, n = case
    x = sg.placeholder("x", (None, 2), "float64")
    try:
        y = x[first][second]
    except IndexError as exc:
        assert "cannot express" in str(exc)
        return
    xv = np.random.default_rng(n).standard_normal((n, 2))
    yv = xv[first][second]
    fn = sg.function([x], [y * 3, sg.sum(y, axis=0), sg.grad(sg.sum(sg.sin(y)), x)],
                     backend=backend)
    try:
        got = fn(xv)
    except sg.ShapeError as exc:  # a bound past the end: numpy would clamp, symgrad refuses
        assert "the axis is too short" in str(exc)
        return
    want_grad = np.zeros_like(xv)
    rows = np.arange(n)[first][second]
    want_grad[rows] = np.cos(yv)
    np.testing.assert_array_equal(got[0], yv * 3)
    np.testing.assert_allclose(got[1], yv.sum(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[2], want_grad, rtol=1e-15)  # vector cos: 1 ulp
