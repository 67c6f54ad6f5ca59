"""The optimizer: each rewrite (graph before, graph after, equal values, finite where the naive
form overflows), grouping before differentiation, fusion kernel counts, fused == unfused."""
from __future__ import annotations

import numpy as np
import pytest

import symgrad as sg
from symgrad.graph import topo_sort
from symgrad.passes import cse, optimize, stabilize

X = np.array([-1e4, -80.0, -3.0, -0.5, 0.0, 0.25, 2.0, 90.0, 1e4])


def ops_of(tensor):
    return [n.op for n in topo_sort([tensor])]


def values(tensor, x, level):
    holder = [n for n in topo_sort([tensor]) if n.op == "placeholder"][0]
    return sg.function([holder], tensor, backend="numpy", opt_level=level)(x)


# each case: (name, builder of the naive graph, op that must appear after, op that must go,
#             input values, whether the naive form overflows somewhere on them)
REWRITES = [
    ("sigmoid_from_gates", lambda x: 1 / (1 + sg.exp(-x)), "sigmoid", "exp", X, False),
    ("sigmoid_from_ratio", lambda x: sg.exp(x) / (1 + sg.exp(x)), "sigmoid", "exp", X, True),
    ("log_sigmoid", lambda x: sg.log(sg.sigmoid(x)), "softplus", "log", X, True),
    ("log_one_minus_sigmoid", lambda x: sg.log(1 - sg.sigmoid(x)), "softplus", "log", X, True),
    ("softplus_from_gates", lambda x: sg.log(1 + sg.exp(x)), "softplus", "exp", X, True),
    ("log1p", lambda x: sg.log(1 + x), "log1p", "log", np.array([1e-10, 1e-5, 0.5, 3.0]),
     False),
    ("expm1", lambda x: sg.exp(x) - 1, "expm1", "exp", np.array([-1e-9, 1e-8, 0.3, 2.0]), False),
    ("log_softmax", lambda x: sg.log(sg.softmax(x)), "log_softmax", "log",
     X.reshape(3, 3), True),
    ("logsumexp", lambda x: sg.log(sg.sum(sg.exp(x), axis=1)), "logsumexp", "exp",
     X.reshape(3, 3), True),
    ("log_exp", lambda x: sg.log(sg.exp(x)), "placeholder", "exp", X, True),
    ("log_softmax_by_hand", lambda x: (x - sg.max(x, axis=1, keepdims=True)) - sg.log(sg.sum(
        sg.exp(x - sg.max(x, axis=1, keepdims=True)), axis=1, keepdims=True)), "log_softmax",
     "exp", X.reshape(3, 3), False),
    ("softmax_unshifted", lambda x: sg.softmax(x - sg.max(x, axis=1, keepdims=True)),
     "softmax", "max", X.reshape(3, 3), False),
    ("silu_from_gates", lambda x: x / (1 + sg.exp(-x)), "sigmoid", "exp", X, False),
    ("softmax_from_gates", lambda x: sg.exp(x) / sg.sum(sg.exp(x), axis=1, keepdims=True),
     "softmax", "exp", X.reshape(3, 3), True),
    ("softmax_down_axis_0", lambda x: sg.exp(x) / sg.sum(sg.exp(x), axis=0), "softmax", "exp",
     X.reshape(3, 3), True),
    ("softmax_from_reciprocal", lambda x: sg.exp(x) * (1 / sg.sum(sg.exp(x), axis=-1,
                                                                    keepdims=True)),
     "softmax", "exp", X.reshape(3, 3), True),
    ("softmax_shifted_by_hand", lambda x: sg.exp(x - sg.max(x, axis=1, keepdims=True)) / sg.sum(
        sg.exp(x - sg.max(x, axis=1, keepdims=True)), axis=1, keepdims=True), "softmax", "exp",
     X.reshape(3, 3), False),
    ("double_negation", lambda x: -(-x) * 3, "mul", "neg", X, False),
    ("mul_one_add_zero", lambda x: (x * 1 + 0) / 1, "placeholder", "mul", X, False),
]


@pytest.mark.parametrize("name,build,appears,goes,xs,naive_overflows", REWRITES,
                         ids=[r[0] for r in REWRITES])
def test_rewrite(name, build, appears, goes, xs, naive_overflows):
    x = sg.placeholder("x", xs.shape, "float64")
    naive = build(x)
    (better,) = optimize([naive])
    assert goes in ops_of(naive)
    assert appears in ops_of(better) and goes not in ops_of(better), ops_of(better)
    with np.errstate(all="ignore"):
        before = values(naive, xs, level=0)
    after = values(naive, xs, level=2)
    assert np.all(np.isfinite(after)), after
    if naive_overflows:
        assert not np.all(np.isfinite(before))
    finite = np.isfinite(before)
    np.testing.assert_allclose(after[finite], before[finite], rtol=1e-9, atol=1e-12)


def test_exp_of_log_is_dropped_only_where_log_is_defined():
    """exp(log x) = x for x >= 0 only: a negative x must stay NaN, as numpy computes it."""
    x = sg.placeholder("x", (4,), "float64")
    xs = np.array([-2.0, 0.0, 0.5, 3.0])
    unknown_sign = sg.exp(sg.log(x))
    assert "log" in ops_of(optimize([unknown_sign])[0])
    with np.errstate(all="ignore"):
        expected = np.exp(np.log(xs))
    np.testing.assert_array_equal(values(unknown_sign, xs, level=2), expected)
    squared = sg.exp(sg.log(sg.square(x)))
    assert "log" not in ops_of(optimize([squared])[0])
    np.testing.assert_allclose(values(squared, xs, level=2), xs ** 2, rtol=1e-12)


def test_gradients_of_stabilized_forms_are_finite():
    x = sg.placeholder("x", X.shape, "float64")
    for cost in (sg.sum(sg.log(1 + sg.exp(x))), sg.sum(sg.log(sg.sigmoid(x))),
                 sg.sum(1 / (1 + sg.exp(-x))), sg.sum(x / (1 + sg.exp(-x)))):
        g = sg.function([x], sg.grad(cost, x), backend="numpy")(X)
        assert np.all(np.isfinite(g)), g


def test_sigmoid_as_gates_gets_the_grouped_gradient():
    x = sg.placeholder("x", ("n",))
    g = sg.placeholder("g", ("n",))
    gates = 1 / (1 + sg.exp(-x))
    grouped = sg.sigmoid(x)
    grads = [sg.grad(sg.sum(s * g), x) for s in (gates, grouped)]
    # the adjoint reuses the forward output s: no exp beyond the sigmoid's own
    for d in grads:
        assert "exp" not in ops_of(d) and "sigmoid" in ops_of(d)
    fns = [sg.function([x, g], [s, d]) for s, d in zip((gates, grouped), grads)]
    assert len(fns[0].kernels) == len(fns[1].kernels) == 1
    body = [f.source[f.source.index("/* k0"):f.source.index("/* Workspace")] for f in fns]
    assert body[0].replace(fns[0].kernels[0].name, "K") .count("sg_sigmoid") == 1
    xs = np.array([-1e4, -5, 0, 3, 1e4], np.float32)
    gs = np.ones(5, np.float32)
    a, b = fns[0](xs, gs), fns[1](xs, gs)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert np.all(np.isfinite(a[1]))


def test_grad_wrt_an_interior_node_is_not_grouped_away():
    x = sg.placeholder("x", (4,), "float64")
    e = sg.exp(-x)
    cost = sg.sum(1 / (1 + e))
    de = sg.grad(cost, e)
    xs = np.array([-1.0, 0.0, 0.5, 2.0])
    ev = np.exp(-xs)
    np.testing.assert_allclose(sg.function([x], de, backend="numpy")(xs), -1 / (1 + ev) ** 2)


def test_a_softmax_over_two_axes_or_a_row_sum_elsewhere_is_left_alone():
    x = sg.placeholder("x", (3, 4), "float64")
    for naive in (sg.exp(x) / sg.sum(sg.exp(x), axis=(0, 1), keepdims=True),
                  sg.exp(x) / sg.sum(sg.exp(x), axis=1)[:, None][::-1]):
        assert "softmax" not in ops_of(optimize([naive])[0])


def test_hand_written_softmax_gets_the_softmax_gradient():
    """sg.grad groups first (after CSE, so the two equal shifts are one node): the gradient of
    the hand-written form is the softmax's own, finite where exp overflows."""
    x = sg.placeholder("x", (2, 5), "float64")
    xs = np.array([[-1e4, 1e4, 0, 1, 2], [0.1, 0.2, 0.3, -5, 3]])
    costs = [sg.sum(y * y * sg.constant(np.arange(10.0).reshape(2, 5))) for y in (
        sg.exp(x) / sg.sum(sg.exp(x), axis=1, keepdims=True), sg.softmax(x, axis=1),
        sg.exp(x - sg.max(x, axis=1, keepdims=True)) / sg.sum(
            sg.exp(x - sg.max(x, axis=1, keepdims=True)), axis=1, keepdims=True))]
    grads = [sg.grad(c, x) for c in costs]
    assert all("exp" not in ops_of(g) for g in grads)
    values_ = [sg.function([x], g, backend="numpy")(xs) for g in grads]
    assert np.all(np.isfinite(values_[0]))
    for v in values_[1:]:
        np.testing.assert_allclose(v, values_[0], rtol=1e-12, atol=1e-15)


def test_grad_wrt_a_node_above_a_grouped_chain_and_its_twin():
    """t = 2 * (1 / (1 + exp(-x))): grouping rebuilds what t is computed from, yet the
    gradient is taken with respect to t itself (it was once 0), and not through an equal t2."""
    x = sg.placeholder("x", (3,), "float64")
    h = 1 / (1 + sg.exp(-x))
    t, t2 = h * 2, h * 2
    cost = sg.sum(t * t) + sg.sum(t2)
    grads = [sg.grad(cost, t), *sg.grad(cost, [t, t2]), *sg.grad(cost, [h, x])]
    xs = np.array([0.1, 0.2, 0.3])
    s = 1 / (1 + np.exp(-xs))
    expected = [4 * s, 4 * s, np.ones(3), 8 * s + 2, (8 * s + 2) * s * (1 - s)]
    for backend in ("numpy", "c"):
        for got, want in zip(sg.function([x], grads, backend=backend)(xs), expected):
            np.testing.assert_allclose(got, want, rtol=1e-12)


def test_grad_wrt_a_constant_that_a_fold_would_absorb():
    x = sg.placeholder("x", (3,), "float64")
    c = sg.constant(np.array([1.0, 2.0, 3.0]))
    xs = np.array([0.5, -1.0, 2.0])
    for backend in ("numpy", "c"):
        got = sg.function([x], sg.grad(sg.sum((c + 1.0) * x), c), backend=backend)(xs)
        np.testing.assert_array_equal(got, xs)


def test_stabilize_alone_and_cse():
    x = sg.placeholder("x", (3,))
    a, b = sg.exp(x) + 1, sg.exp(x) + 1
    merged = cse([a * b])[0]
    exps = [n for n in topo_sort([merged]) if n.op == "exp"]
    assert len(exps) == 1
    (s,) = stabilize([1 / (1 + sg.exp(-x))])
    assert s.op == "sigmoid"


def test_nan_is_not_simplified_away():
    x = sg.placeholder("x", (2,))
    f = sg.function([x], x * 0, backend="c")
    out = f(np.array([np.nan, np.inf], np.float32))
    assert np.isnan(out).all()


# ---------------------------------------------------------------------------- fusion
def test_workload_kernel_counts():
    x, g = sg.placeholder("x", ("n",)), sg.placeholder("g", ("n",))
    s = sg.sigmoid(x)
    assert len(sg.function([x, g], g * s * (1 - s)).kernels) == 1
    w2 = sg.tanh(0.5 * x + 0.1) * sg.exp(-x * x) + sg.maximum(x, 0) * g
    assert len(sg.function([x, g], w2).kernels) == 1
    # a reduction swallows its element-wise prologue
    assert len(sg.function([x, g], sg.sum(sg.exp(x) * g)).kernels) == 1


def test_cross_entropy_reads_the_logits_twice_at_most():
    z = sg.placeholder("z", ("rows", 10))
    t = sg.placeholder("t", ("rows",), dtype="int64")
    loss = sg.cross_entropy(z, t)
    f = sg.function([z, t], [loss, sg.grad(loss, z)])
    z_buffer = f._program.schedule.values[f.inputs[0].id].buffer
    readers = [k for k in f._program.schedule.kernels if z_buffer in k.reads]
    assert len(readers) <= 2
    zv = np.random.default_rng(0).standard_normal((6, 10)).astype(np.float32)
    tv = np.array([0, 9, 3, 3, 1, 5])
    ref = sg.function([z, t], [loss, sg.grad(loss, z)], backend="numpy", opt_level=0)(zv, tv)
    for a, b in zip(f(zv, tv), ref):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def mlp_step(level, seed=0):
    x = sg.placeholder("x", ("batch", 20))
    t = sg.placeholder("t", ("batch",), dtype="int64")
    rng = np.random.default_rng(seed)
    ps = [sg.shared(rng.standard_normal(s).astype(np.float32) * 0.3, name=f"p{i}")
          for i, s in enumerate([(20, 32), (32,), (32, 5), (5,)])]
    h = sg.relu(x @ ps[0] + ps[1])
    loss = sg.cross_entropy(h @ ps[2] + ps[3], t)
    updates = sg.optim.adam(ps, sg.grad(loss, ps), lr=0.01)
    return sg.function([x, t], loss, updates=updates, opt_level=level), ps


def test_fused_training_equals_unfused_and_uses_less():
    (fused, p_fused), (plain, p_plain) = mlp_step(2), mlp_step(0)
    rng = np.random.default_rng(3)
    for n in (8, 1, 13):
        xb = rng.standard_normal((n, 20)).astype(np.float32)
        tb = rng.integers(0, 5, n)
        np.testing.assert_allclose(fused(xb, tb), plain(xb, tb), rtol=1e-5)
    for a, b in zip(p_fused, p_plain):
        np.testing.assert_allclose(a.get_value(), b.get_value(), rtol=1e-4, atol=1e-6)
    assert len(fused.kernels) < len(plain.kernels) / 2
    ws = [f._program.workspace_bytes([64]) for f in (fused, plain)]
    assert ws[0] < ws[1]
    # updates are written in place: no copy kernels at opt_level 2
    assert not [k for k in fused.kernels if "_copy" in k.name]


def test_report_and_dot():
    x, g = sg.placeholder("x", ("n",)), sg.placeholder("g", ("n",))
    s = sg.sigmoid(x)
    f = sg.function([x, g], g * s * (1 - s))
    text = f.report(n=1000)
    assert "1 kernel," in text and "12,000 B" in text and "workspace 0 B" in text
    dot = f.to_dot()
    assert dot.startswith("digraph") and dot.count("subgraph cluster_") == 1
    assert "sigmoid" in str(f.graph)


def test_dot_quotes_names_that_hold_quotes_and_backslashes():
    x = sg.placeholder('q"uo\\te', (None, 3))
    dot = sg.function([x], sg.relu(x) * 2).to_dot()
    assert 'placeholder q\\"uo\\\\te' in dot
    for line in dot.splitlines():  # every label's quotes pair up once escapes are taken out
        assert line.replace('\\\\', '').replace('\\"', '').count('"') % 2 == 0, line


def test_a_fused_chain_of_thousands_of_ops_compiles():
    """An unrolled recurrence fuses into one loop; building its expression must not recurse
    once per op (Python's recursion limit is 1000)."""
    x = sg.placeholder("x", (None, 3), "float64")
    y = x
    for _ in range(1500):
        y = y * 1.0001 + 0.5
    fn = sg.function([x], y)
    assert len(fn.kernels) == 1
    values = np.linspace(-1, 1, 6).reshape(2, 3)
    np.testing.assert_allclose(fn(values), sg.function([x], y, backend="numpy")(values),
                               rtol=1e-12)
