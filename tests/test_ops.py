"""Every op of the registry (tests/op_cases.py): values against an independent numpy computation,
first derivatives against central finite differences, second derivatives (a gradient of a
function that contains `sg.grad`), on every available backend."""
from __future__ import annotations

import os
import subprocess
import sys
import zlib

import numpy as np
import pytest

import symgrad as sg
from symgrad.ops import OPS

from op_cases import CASES, LARGE, REQUIRED_API, np_sigmoid, np_softmax

# value tolerances against the independent numpy expectation
VALUE_TOL = {"float64": dict(rtol=1e-10, atol=1e-12), "float32": dict(rtol=1e-5, atol=1e-5)}


def rng_for(case_id: str, salt: str = "") -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(f"{case_id}/{salt}".encode()))


def compile_case(case, arrays, backend):
    holders = [sg.placeholder(f"in{i}", a.shape, a.dtype) for i, a in enumerate(arrays)]
    return sg.function(holders, case.fn(*holders), backend=backend)


def assert_backend_agrees(got, ref, what=""):
    """A compiled backend against the numpy backend: float64 to ~1e-12, float32 to ~1e-5
    (relative, with an absolute floor scaled by the values' magnitude)."""
    got, ref = np.asarray(got), np.asarray(ref)
    assert got.dtype == ref.dtype and got.shape == ref.shape, what
    if ref.dtype.kind != "f":
        np.testing.assert_array_equal(got, ref, err_msg=what)
        return
    finite = ref[np.isfinite(ref)]
    scale = max(1.0, float(np.max(np.abs(finite)))) if finite.size else 1.0
    rtol = 1e-12 if ref.dtype == np.float64 else 1e-5
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol * scale, err_msg=what)


VALUE_PARAMS = [pytest.param(c, d, id=f"{c.id}-{d}") for c in CASES for d in c.dtypes]


@pytest.mark.parametrize("case,dtype", VALUE_PARAMS)
def test_value(case, dtype, backend):
    arrays = case.inputs(rng_for(case.id, dtype), np.dtype(dtype))
    originals = [a.copy() for a in arrays]
    for a in arrays:
        a.setflags(write=False)  # a call that wrote into an input would raise
    # numpy's result dtype on the arrays as given; the value computed in float64 (a float32
    # expectation would itself be off by more than float32 rounding, e.g. exp(x - lse) at 1e4)
    expected_dtype = np.asarray(case.expected(*arrays)).dtype
    wide = [a.astype(np.float64) if a.dtype.kind == "f" else a for a in arrays]
    expected = np.asarray(case.expected(*wide))

    got = compile_case(case, arrays, backend)(*arrays)

    assert isinstance(got, np.ndarray)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    assert got.dtype == expected_dtype, (got.dtype, expected_dtype)
    if expected.dtype.kind == "f":
        tol = VALUE_TOL["float32" if got.dtype == np.float32 or dtype == "float32"
                        else "float64"]
        np.testing.assert_allclose(got, expected, **tol)
    else:
        np.testing.assert_array_equal(got, expected)
    for a, o in zip(arrays, originals):
        np.testing.assert_array_equal(a, o)
    if backend != "numpy":
        ref = compile_case(case, arrays, "numpy")(*arrays)
        assert_backend_agrees(got, ref, case.id)


# ---------------------------------------------------------------------------------- gradients
def differentiated(case, arrays):
    if case.wrt is not None:
        return list(case.wrt)
    return [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]


def with_constants(arrays, diff, tensors):
    """The case's full argument list: the differentiated inputs as the given tensors, the others
    baked into the graph as constants."""
    full = [sg.constant(a) for a in arrays]
    for i, t in zip(diff, tensors):
        full[i] = t
    return full


def first_order(case, arrays, diff, rng):
    out_shape = np.shape(case.expected(*arrays))
    w = rng.standard_normal(out_shape)

    def f(*tensors):
        y = case.fn(*with_constants(arrays, diff, tensors))
        return sg.sum(y * sg.constant(w))
    return f


def second_order(case, arrays, diff, rng):
    """f(x) = sum_i sum(grad(sum(op(x) * w), x_i) * v_i): its gradient is a Hessian-vector
    product, so gradcheck of f checks the gradient of the gradient graph."""
    inner = first_order(case, arrays, diff, rng)
    vs = [rng.standard_normal(arrays[i].shape) for i in diff]

    def f(*tensors):
        grads = sg.grad(inner(*tensors), list(tensors))
        total = sg.sum(grads[0] * sg.constant(vs[0]))
        for g, v in zip(grads[1:], vs[1:]):
            total = total + sg.sum(g * sg.constant(v))
        return total
    return f


def symbolic_gradients(f, arrays, backend):
    holders = [sg.placeholder(f"g{i}", a.shape, a.dtype) for i, a in enumerate(arrays)]
    grads = sg.grad(f(*holders), holders)
    return sg.function(holders, grads, backend=backend)(*arrays)


def check_gradient(f, inputs, backend, what):
    """On the numpy backend: central differences in float64 with API.md's tolerances.  On a
    compiled backend: its symbolic gradient against the (so checked) numpy backend's, to ~1e-12
    (one build instead of gradcheck's two, and a tighter comparison)."""
    if backend == "numpy":
        assert sg.gradcheck(f, inputs, eps=1e-6, rtol=1e-5, atol=1e-7, backend="numpy")
        return
    for got, ref in zip(symbolic_gradients(f, inputs, backend),
                        symbolic_gradients(f, inputs, "numpy")):
        assert_backend_agrees(got, ref, what)


GRAD_CASES = [pytest.param(c, id=c.id) for c in CASES if c.gradcheck and "float64" in c.dtypes]
SECOND_CASES = [pytest.param(c, id=c.id) for c in CASES if c.second_order]


@pytest.mark.parametrize("case", GRAD_CASES)
def test_gradcheck(case, backend):
    arrays = case.inputs(rng_for(case.id, "grad"), np.dtype("float64"))
    diff = differentiated(case, arrays)
    assert diff, f"{case.id}: nothing to differentiate"
    f = first_order(case, arrays, diff, rng_for(case.id, "w"))
    check_gradient(f, [arrays[i] for i in diff], backend, case.id)


@pytest.mark.parametrize("case", SECOND_CASES)
def test_second_order(case, backend):
    arrays = case.inputs(rng_for(case.id, "grad2"), np.dtype("float64"))
    diff = differentiated(case, arrays)
    f = second_order(case, arrays, diff, rng_for(case.id, "wv"))
    check_gradient(f, [arrays[i] for i in diff], backend, case.id)


# ---------------------------------------------------------------------------------- large logits
def _onehot(labels, n):
    return (labels[..., None] == np.arange(n)).astype(np.float64)


LABELS = np.array([1, 0, 3])
TARGETS = np.array([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0]])
# (builder of the scalar cost from x, closed-form gradient of that cost at x)
W = np.random.default_rng(7).standard_normal(LARGE.shape)
LARGE_GRADS = {
    "sigmoid": (lambda x: sg.sum(sg.sigmoid(x) * W),
                lambda x: W * np_sigmoid(x) * np_sigmoid(-x)),
    "softplus": (lambda x: sg.sum(sg.softplus(x) * W), lambda x: W * np_sigmoid(x)),
    "softmax": (lambda x: sg.sum(sg.softmax(x) * W),
                lambda x: np_softmax(x) * (W - np.sum(W * np_softmax(x), -1, keepdims=True))),
    "log_softmax": (lambda x: sg.sum(sg.log_softmax(x) * W),
                    lambda x: W - np_softmax(x) * np.sum(W, -1, keepdims=True)),
    "logsumexp": (lambda x: sg.sum(sg.logsumexp(x, axis=1) * W[:, 0]),
                  lambda x: W[:, :1] * np_softmax(x)),
    "cross_entropy": (lambda x: sg.cross_entropy(x, sg.constant(LABELS)),
                      lambda x: (np_softmax(x) - _onehot(LABELS, 4)) / 3),
    "bce_logits": (lambda x: sg.binary_cross_entropy(logits=x, targets=TARGETS),
                   lambda x: (np_sigmoid(x) - TARGETS) / x.size),
}


@pytest.mark.parametrize("name", sorted(LARGE_GRADS))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_large_logit_gradients(name, dtype, backend):
    """|x| up to 1e4: the gradient is finite and equals its closed form (no overflow, no NaN
    from inf - inf or 0 * inf)."""
    build, closed_form = LARGE_GRADS[name]
    x = sg.placeholder("x", LARGE.shape, dtype)
    cost = build(x)
    fn = sg.function([x], [cost, sg.grad(cost, x)], backend=backend)
    value, g = fn(LARGE.astype(dtype))
    assert np.isfinite(value)
    assert g.dtype == np.dtype(dtype) and np.all(np.isfinite(g))
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == "float64" else dict(rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g, closed_form(LARGE), **tol)


def test_logsumexp_gradient_keeps_float32_precision_far_from_zero(backend):
    """A row around 1e6: exp(x - logsumexp(x)) would carry logsumexp's float32 rounding (0.06
    there) into every element (the gradient summed to 1.023, as torch's does)."""
    x = sg.placeholder("x", (None, 4))
    rows = np.array([[1e6, 1e6 - 1, 1e6 - 2, 1e6 + 0.5]], np.float32)
    g = sg.function([x], sg.grad(sg.sum(sg.logsumexp(x, axis=1)), x), backend=backend)(rows)
    exact = np.exp(rows.astype(np.float64) - rows.max())
    np.testing.assert_allclose(g, exact / exact.sum(), rtol=1e-6)


INF_ROWS = np.array([[100.0, np.inf, 0.0], [1.0, 2.0, 3.0], [-np.inf, -np.inf, -np.inf],
                     [np.inf, np.inf, 0.0], [np.nan, 1.0, 2.0], [-np.inf, 0.0, 1.0],
                     [np.nan, np.inf, 0.0]])


@pytest.mark.parametrize("opt_level", [0, 2])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_rows_with_infinities_agree_with_numpy(dtype, opt_level, backend):
    """The row ops' README rule: a row holding +inf gives x - logsumexp(x) (0, or NaN at the
    inf, for softmax), an all -inf or a NaN row (with +inf too) gives NaN; logsumexp of a +inf
    row is inf.
    The C kernels once computed exp(100) into a float32 inf there and gave NaN for the row."""
    x = sg.placeholder("x", (None, 3), dtype)
    t = sg.placeholder("t", (None,), "int64")
    ce = sg.cross_entropy(x, t)
    outputs = [sg.softmax(x, axis=1), sg.log_softmax(x, axis=1), sg.logsumexp(x, axis=1),
               sg.transpose(sg.softmax(sg.transpose(x), axis=0)),  # the strided row kernel
               x - sg.logsumexp(x, axis=1, keepdims=True), sg.grad(ce, x)]
    fn = sg.function([x, t], outputs, backend=backend, opt_level=opt_level)
    rows, labels = INF_ROWS.astype(dtype), np.array([0, 1, 2, 2, 0, 1, 2])
    with np.errstate(all="ignore"):  # unshifted: these rows' finite values are small
        lse = np.log(np.sum(np.exp(rows), axis=1, keepdims=True))
        logp = rows - lse
    expected = [np.exp(logp), logp, lse[:, 0], np.exp(logp), logp,
                (np.exp(logp) - np.eye(3)[labels]) / len(rows)]
    for got, want in zip(fn(rows, labels), expected):
        np.testing.assert_allclose(got, want.astype(dtype), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(fn(rows, labels)[0][0], [0.0, np.nan, 0.0])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_nan_beside_an_inf_in_a_long_row_makes_the_row_nan(dtype, backend):
    """Rows long enough to vectorize, with the NaN in every lane: gcc 12 once compiled the
    check for a NaN in a +inf row so that it saw the NaN only in a vector's first lane."""
    rows = np.random.default_rng(0).standard_normal((40, 40)).astype(dtype)
    for k in range(40):
        rows[k, (k + 13) % 40], rows[k, k] = np.inf, np.nan
    x = sg.placeholder("x", (None, 40), dtype)
    t = sg.placeholder("t", (None,), "int64")
    ce = sg.cross_entropy(x, t)
    outputs = [sg.softmax(x, axis=1), sg.log_softmax(x, axis=1), sg.logsumexp(x, axis=1),
               sg.transpose(sg.softmax(sg.transpose(x), axis=0)), ce, sg.grad(ce, x)]
    fn = sg.function([x, t], outputs, backend=backend)
    for got in fn(rows, np.zeros(40, np.int64)):
        assert np.all(np.isnan(got)), got


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_binary_cross_entropy_of_probabilities_at_0_and_1_has_torchs_gradient(dtype, backend):
    """Each log clamped at -100 and the adjoint (p - t) / max(p (1 - p), 1e-12), as torch's: the
    chain through the clamped logs gave NaN at p = 0 or 1.  A sigmoid that saturates behind a
    reshape (no stabilizing rewrite sees it) then trains with finite weights."""
    p = sg.placeholder("p", (5,), dtype)
    t = sg.placeholder("t", (5,), dtype)
    loss = sg.binary_cross_entropy(p, t)
    fn = sg.function([p, t], [loss, *sg.grad(loss, [p, t])], backend=backend)
    pv = np.array([0.0, 1.0, 0.0, 0.3, 1.0], dtype)
    tv = np.array([0.0, 1.0, 0.5, 1.0, 0.0], dtype)
    value, dp, dt = fn(pv, tv)
    np.testing.assert_allclose(value, (0 + 0 + 50 - np.log(0.3) + 100) / 5, rtol=1e-6)
    np.testing.assert_allclose(dp, (pv - tv) / np.maximum(pv * (1 - pv), 1e-12) / 5, rtol=1e-6)
    np.testing.assert_array_equal(dt[[0, 1, 2, 4]], np.array([100, -100, 100, -100], dtype) / 5)

    x = sg.placeholder("x", (2, 1), dtype)
    W = sg.shared(np.ones((1, 1), dtype))
    cost = sg.binary_cross_entropy(sg.reshape(sg.sigmoid(x @ W), (2,)), sg.constant([0.0, 1.0]))
    step = sg.function([x], cost, updates=sg.optim.sgd([W], [sg.grad(cost, W)], lr=0.1),
                       backend=backend)
    step(np.array([[-800.0], [0.5]], dtype))  # sigmoid(-800) is exactly 0 in both dtypes
    s = 1 / (1 + np.exp(-0.5))
    np.testing.assert_allclose(W.get_value(), 1 - 0.1 * (0.5 * (s - 1) * 0.5), rtol=1e-6)


@pytest.mark.parametrize("shape", [(3, 2), (2, 3, 2), (4, 5), (17, 33), (129, 3, 2)])
def test_reductions_of_reversed_views_match_numpy(shape, backend):
    """Reduced axes walked backwards are walked forwards: gcc 12.2 -O3 vectorized a sum over
    x[r0*5 - r1] wrongly (sum(x[:, ::-1]) of a 4x5 gave 19.6 for 19.0), and a gradient through
    such a view was wrong everywhere."""
    x = sg.placeholder("x", shape, "float64")
    flipped = x[(slice(None),) * (len(shape) - 1) + (slice(None, None, -1),)]
    twisted = sg.transpose(x, (0, 2, 1))[:, ::-1] if len(shape) == 3 else x[::-1, ::-1]
    weights = sg.constant(np.linspace(-1, 1, int(np.prod(shape))).reshape(shape))
    cost = sg.sum(twisted * sg.transpose(weights, (0, 2, 1))[:, ::-1]) if len(shape) == 3 \
        else sg.sum(twisted * weights[::-1, ::-1])
    outputs = [sg.sum(flipped), sg.mean(flipped), sg.max(flipped), sg.sum(twisted),
               sg.sum(flipped, axis=-1), sg.grad(cost, x)]
    xv = np.arange(np.prod(shape), dtype=np.float64).reshape(shape) / 10
    xf = xv[(slice(None),) * (len(shape) - 1) + (slice(None, None, -1),)]
    expected = [xf.sum(), xf.mean(), xf.max(), xv.sum(), xf.sum(axis=-1),
                np.linspace(-1, 1, xv.size).reshape(shape)]
    for got, want in zip(sg.function([x], outputs, backend=backend)(xv), expected):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_argmax_of_a_computed_value_finds_a_maximum(dtype, backend):
    """argmax(exp(tanh(x))) fuses exp and tanh into its loop: a first vectorized pass (vector
    math) and a second scalar one (scalar math) once disagreed in the last bit, found no match
    and answered 0 for a third of the columns."""
    x = sg.placeholder("x", (31, 112), dtype)
    fns = [lambda v: sg.exp(sg.tanh(v)), sg.sigmoid, sg.sin, lambda v: sg.log1p(v * v)]
    refs = [lambda v: np.exp(np.tanh(v)), lambda v: 1 / (1 + np.exp(-v)), np.sin,
            lambda v: np.log1p(v * v)]
    xv = np.random.default_rng(3).standard_normal((31, 112)).astype(dtype)
    for f, ref in zip(fns, refs):
        values = ref(xv.astype(np.float64))
        # one function each: an f(x) with two consumers would be stored, not fused
        along_0 = sg.function([x], sg.argmax(f(x), axis=0), backend=backend)(xv)
        along_1 = sg.function([x], sg.argmax(f(x), axis=1), backend=backend)(xv)
        np.testing.assert_allclose(values[along_0, np.arange(112)], values.max(axis=0),
                                   rtol=1e-6)
        np.testing.assert_allclose(values[np.arange(31), along_1], values.max(axis=1),
                                   rtol=1e-6)


def test_reductions_over_an_axis_of_one_element(backend):
    """An axis of extent 1 leaves the kernel no loop to vectorize (a simd pragma with no loop
    after it failed to compile)."""
    x = sg.placeholder("x", (5, 1))
    z = sg.placeholder("z", (3, 1, 4), "int32")
    fn = sg.function([x, z], [sg.argmax(x, axis=1), sg.argmax(x[0]), sg.max(x, axis=1),
                              sg.argmax(z, axis=1), sg.min(z, axis=1), sg.sum(z, axis=1)],
                     backend=backend)
    xv = np.random.default_rng(0).standard_normal((5, 1)).astype(np.float32)
    zv = np.arange(12, dtype=np.int32).reshape(3, 1, 4)
    expected = [xv.argmax(1), xv[0].argmax(), xv.max(1), zv.argmax(1), zv.min(1), zv.sum(1)]
    for got, want in zip(fn(xv, zv), expected):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
def test_max_min_and_argmax_of_long_rows_match_numpy(dtype, backend):
    """Rows long enough to vectorize (the C loops take a plain max and note NaNs apart): a NaN
    in any lane wins, repeated maxima give the first index, rows of -inf or of one repeated
    value, and the whole array large enough to be split between threads."""
    rng = np.random.default_rng(1)
    rows = rng.integers(-50, 50, (67, 301)).astype(dtype)
    if dtype.startswith("float"):
        for k in range(0, 40):
            rows[k, (7 * k) % 301] = np.nan
        rows[40] = -np.inf
        rows[41, 100:] = np.inf
    rows[42] = 7
    rows[43, [5, 250]] = 1000  # a tie: the first wins
    big = np.tile(rows, (4, 1))  # 80k elements: the full reductions run on all threads
    x = sg.placeholder("x", (None, 301), dtype)
    fn = sg.function([x], [sg.max(x, axis=1), sg.min(x, axis=1), sg.argmax(x, axis=1),
                           sg.max(x), sg.min(x), sg.argmax(x), sg.argmax(x[:, ::-1], axis=1),
                           sg.max(sg.transpose(x), axis=0)], backend=backend)
    for data in (rows, rows[40:], big):
        expected = [data.max(axis=1), data.min(axis=1), data.argmax(axis=1), data.max(),
                    data.min(), data.argmax(), data[:, ::-1].argmax(axis=1), data.max(axis=1)]
        for got, want in zip(fn(data), expected):
            np.testing.assert_array_equal(got, want)


ARGMAX_ACROSS_BLOCKS = """
import numpy as np, symgrad as sg
rows = {n: np.zeros((12, n), np.float32) for n in (1, 63, 64, 65, 129, 1000)}
for n, r in rows.items():
    for k, pos in enumerate([0, 62, 63, 64, 127, 128, n - 1]):
        r[k, min(pos, n - 1)] = 5
    r[7, [n // 3, n - 1]] = 5              # a tie in two blocks: the first
    r[8, 0], r[8, n - 1] = 3, np.nan      # a NaN in a later block beats a larger value
    r[9, [n // 2, n - 1]] = np.nan         # two NaNs: the first
    r[10] = -np.inf
    r[11, n // 2] = -0.0                    # -0.0 == 0.0: the first zero
# the whole tensor on 3 threads: maxima and NaNs in different threads' runs
whole = np.zeros(3 * 40000 + 17, np.float32)
cases = [whole.copy() for _ in range(4)]
cases[0][[5000, 90000]] = 2                # a tie between threads
cases[1][[100, 119999]] = [1, 3]           # the later thread's larger value
cases[2][[100, 70000, 110000]] = [9, np.nan, np.nan]
cases[3][-1] = 1                            # in the last, partial block
ints = np.full((3, 200), np.iinfo(np.int32).min, np.int32)
ints[1, 130] = 0
x = sg.placeholder("x", (None, None))
v = sg.placeholder("v", (None,))
i = sg.placeholder("i", (None, None), "int32")
by_row = sg.function([x], [sg.argmax(x, axis=1), sg.argmax(x[:, ::-1], axis=1)])
over_all = sg.function([v], sg.argmax(v))
int_rows = sg.function([i], [sg.argmax(i, axis=1), sg.argmax(i)])
for r in rows.values():
    for got, want in zip(by_row(r), [r.argmax(axis=1), r[:, ::-1].argmax(axis=1)]):
        np.testing.assert_array_equal(got, want)
for c in cases:
    assert over_all(c) == c.argmax(), (over_all(c), c.argmax())
for got, want in zip(int_rows(ints), [ints.argmax(axis=1), ints.argmax()]):
    np.testing.assert_array_equal(got, want)
print("ok")
"""


def test_argmax_across_blocks_and_threads_matches_numpy():
    """The C argmax scans 64-element blocks and searches the best block again; on the whole
    tensor each thread scans a run of blocks.  Maxima, ties and NaNs on each side of a block
    and of a thread's run (3 threads, so the runs are uneven)."""
    env = dict(os.environ, OMP_NUM_THREADS="3")
    done = subprocess.run([sys.executable, "-c", ARGMAX_ACROSS_BLOCKS], env=env,
                          capture_output=True, text=True)
    assert done.stdout.strip() == "ok", done.stderr[-3000:]


# ---------------------------------------------------------------------------------- the registry
def test_registry_covers_the_public_api():
    covered = {name for c in CASES for name in c.api}
    missing = [name for name in REQUIRED_API if name not in covered]
    assert not missing, f"no op case exercises {missing}"
    assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"


def test_registry_gradchecks_every_differentiable_function():
    """Each public name that has a gradient is finite-differenced by at least one case."""
    not_differentiable = {"sign", "argmax", "one_hot", "<", "<=", ">", ">=", "==", "!="}
    checked = {name for c in CASES if c.gradcheck for name in c.api}
    missing = [n for n in REQUIRED_API if n not in checked and n not in not_differentiable]
    assert not missing, f"no gradcheck for {missing}"


def test_skipped_gradchecks_give_a_reason():
    for c in CASES:
        floats = any(d.startswith("float") for d in c.dtypes)
        differentiable = not any(name in c.api for name in ("argmax", "one_hot")) and \
            not c.id.startswith("cmp")
        if floats and differentiable and not c.gradcheck:
            assert c.note, f"{c.id}: a float case without gradcheck needs a note saying why"


def test_gradcheck_detects_a_wrong_rule(monkeypatch):
    """The gradient tests can fail: a sin whose rule forgets a factor is caught, and the error
    names the input and the worst element."""
    sin = OPS["sin"]
    monkeypatch.setattr(sin, "grad", lambda node, g: [g * sg.cos(node.inputs[0]) * 1.001])
    x = np.linspace(-1, 1, 5)
    with pytest.raises(sg.GradcheckError, match=r"input 0 \(shape \(5,\)\) at index \(\d,\)"):
        sg.gradcheck(lambda t: sg.sum(sg.sin(t)), [x])


def test_gradcheck_names_the_worst_element_of_all_inputs(monkeypatch):
    """A rule off by 1.001 on both operands of mul: the larger slope (input 1's) is the worse
    error, though input 0 fails too."""
    mul = OPS["mul"]
    monkeypatch.setattr(mul, "grad", lambda node, g: [g * node.inputs[1] * 1.001,
                                                      g * node.inputs[0] * 1.001])
    with pytest.raises(sg.GradcheckError, match=r"input 1 \(shape \(3,\)\) at index \(2,\), "
                                                r"the worst element of all inputs: symbolic 1000.99"):
        sg.gradcheck(lambda a, b: sg.sum(a * b), [np.array([1.0, 2.0, 3.0]),
                                                  np.array([1.0, 10.0, 1000.0])][::-1])


def test_gradcheck_of_a_float32_computation_says_why_it_may_fail():
    with pytest.raises(sg.GradcheckError, match=r"f computes in float32 \(cast node"):
        sg.gradcheck(lambda t: sg.sum(sg.tanh(t.astype("float32")) * 3), [np.array([0.3, 1.0])])


def test_gradcheck_refuses_to_pass_with_nothing_to_check():
    with pytest.raises(ValueError, match="no float input to differentiate"):
        sg.gradcheck(lambda t: sg.sum(t * t), [[1, 2]])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_small_integer_powers_of_floats_are_products(dtype, backend):
    """x ** 3 and x ** 4 multiply (as torch does): pow(x, 3.0f) took glibc's slow path for a
    negative base and ran 13x slower than torch.  Values and gradients stay numpy's."""
    x = sg.placeholder("x", (None,), dtype)
    fn = sg.function([x], [x ** 3, x ** 4.0, sg.grad(sg.sum(x ** 3), x)], backend=backend)
    xv = np.concatenate([[np.nan, np.inf, -np.inf, -0.0, 0.0, -2.5, 3.0],
                         np.random.default_rng(0).standard_normal(50)]).astype(dtype)
    with np.errstate(all="ignore"):
        expected = [xv ** 3, xv ** 4, 3 * xv ** 2]
    for got, want in zip(fn(xv), expected):
        np.testing.assert_allclose(got, want, rtol=2e-6 if dtype == "float32" else 1e-14)
    if backend == "c":
        assert "pow(" not in fn.source


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_a_zero_exponent_has_slope_zero_at_zero(backend):
    """a^0 is 1, so d/da is 0 at a = 0 too; the rule b*a^(b-1) alone gives 0 * inf = NaN there
    (torch gives 0).  Polynomial features with a constant column hit this."""
    x = sg.placeholder("x", (3,), "float64")
    powers = sg.power(sg.reshape(x, (3, 1)), sg.constant(np.arange(4.0)))
    grads = sg.function([x], [sg.grad(sg.sum(powers), x), sg.grad(sg.sum(x ** 0), x),
                              sg.grad(sg.sum(x ** 3), x)], backend=backend)
    values = np.array([0.0, 1.0, 2.0])
    features, constant, cube = grads(values)
    np.testing.assert_array_equal(features, [1.0, 6.0, 17.0])  # 0 + 1 + 2x + 3x^2
    np.testing.assert_array_equal(constant, [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(cube, 3 * values ** 2)
    y = sg.placeholder("y", (3,), "float64")  # an exponent that is itself an input
    mixed = sg.function([x, y], sg.grad(sg.sum(x ** y), x), backend=backend)
    np.testing.assert_array_equal(mixed(values, np.array([0.0, 0.0, 2.0])), [0.0, 0.0, 4.0])
